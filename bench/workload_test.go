package bench

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

func TestWorkloadsAreDeterministic(t *testing.T) {
	opts := BodyOptions{Endpoint: EndpointChat, Model: "m", Stream: true}
	for _, name := range WorkloadNames {
		t.Run(name, func(t *testing.T) {
			p := Params{SystemTokens: 64, Groups: 3, Users: 2}
			a, err := NewWorkload(name, p, 42)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := NewWorkload(name, p, 42)
			c, _ := NewWorkload(name, p, 43)
			differs := false
			for i := range 50 {
				ba, bb := AppendBody(nil, a.Request(i), opts), AppendBody(nil, b.Request(i), opts)
				if !bytes.Equal(ba, bb) {
					t.Fatalf("request %d differs between two workloads with the same seed", i)
				}
				if !bytes.Equal(ba, AppendBody(nil, c.Request(i), opts)) {
					differs = true
				}
				var v struct {
					Model    string
					Messages []struct{ Role, Content string }
					Stream   bool
				}
				if err := json.Unmarshal(ba, &v); err != nil || v.Model != "m" || len(v.Messages) == 0 || !v.Stream {
					t.Fatalf("body %d is not the expected chat JSON (%v): %s", i, err, ba)
				}
			}
			if !differs {
				t.Error("a different seed gave the same 50 requests")
			}
		})
	}
}

func TestWorkloadShapes(t *testing.T) {
	fixed, _ := NewWorkload(WorkloadFixed, Params{InputTokens: 100, OutputTokens: 7}, 1)
	if r := fixed.Request(3); r.PromptTokens() != 100 || r.MaxTokens != 7 || len(r.Prompt()) != 400 {
		t.Errorf("fixed: %d tokens, %d chars, max %d; want 100, 400, 7", r.PromptTokens(), len(r.Prompt()), r.MaxTokens)
	}
	uni, _ := NewWorkload(WorkloadUniform, Params{MinInputTokens: 10, MaxInputTokens: 20, MinOutputTokens: 3, MaxOutputTokens: 5}, 1)
	for i := range 200 {
		r := uni.Request(i)
		if n := r.PromptTokens(); n < 10 || n > 20 || r.MaxTokens < 3 || r.MaxTokens > 5 {
			t.Fatalf("uniform request %d: %d tokens, max %d out of range", i, n, r.MaxTokens)
		}
	}
	sp, _ := NewWorkload(WorkloadSharedPrefix, Params{Groups: 2, SystemTokens: 32, Users: 3, QuestionTokens: 8, OutputTokens: 5}, 1)
	systems := map[string]bool{}
	for i := range 100 {
		r := sp.Request(i)
		if len(r.Messages) != 2 || r.Messages[0].Role != "system" || len(r.Messages[0].Content) != 128 || len(r.Messages[1].Content) != 32 {
			t.Fatalf("shared-prefix request %d has the wrong shape: %+v", i, r)
		}
		systems[r.Messages[0].Content] = true
	}
	if len(systems) != 2 {
		t.Errorf("shared-prefix used %d system prompts, want 2", len(systems))
	}
	mt, _ := NewWorkload(WorkloadMultiTurn, Params{Conversations: 2, Turns: 3, TurnTokens: 4, AnswerTokens: 2}, 1)
	// Requests 0,1 are turn 0 of conversations 0,1; 2,3 turn 1; 4,5 turn 2; 6 starts anew.
	for i, want := range []int{1, 1, 3, 3, 5, 5, 1} {
		if got := len(mt.Request(i).Messages); got != want {
			t.Errorf("multi-turn request %d has %d messages, want %d", i, got, want)
		}
	}
	if !strings.HasPrefix(mt.Request(4).Prompt(), mt.Request(2).Prompt()) || !strings.HasPrefix(mt.Request(2).Prompt(), mt.Request(0).Prompt()) {
		t.Error("a multi-turn turn does not extend the previous turn of its conversation")
	}
	if mt.Request(6).Prompt() == mt.Request(0).Prompt() {
		t.Error("the second set of conversations repeats the first")
	}
	b, _ := NewWorkload(WorkloadBursty, Params{WaveSize: 4, WaveInterval: time.Second}, 1)
	s := b.(Scheduled)
	if s.Arrival(3) != 0 || s.Arrival(4) != time.Second || s.Arrival(9) != 2*time.Second {
		t.Errorf("bursty arrivals %s %s %s, want 0s 1s 2s", s.Arrival(3), s.Arrival(4), s.Arrival(9))
	}
}

func TestNewWorkloadErrors(t *testing.T) {
	if _, err := NewWorkload("nope", Params{}, 1); err == nil || !strings.Contains(err.Error(), "unknown workload") {
		t.Errorf("unknown name: err = %v", err)
	}
	_, err := NewWorkload(WorkloadUniform, Params{MinInputTokens: 10, MaxInputTokens: 5, Groups: -1}, 1)
	if err == nil || !strings.Contains(err.Error(), "max input tokens") || !strings.Contains(err.Error(), "groups") {
		t.Errorf("bad params: err = %v, want both problems listed", err)
	}
}

// TestOracleHandComputed checks the oracle on prompts built from 64-char blocks A, B, C.
func TestOracleHandComputed(t *testing.T) {
	blk := func(c byte) string { return strings.Repeat(string(c), BlockChars) }
	A, B, C := blk('a'), blk('b'), blk('c')
	o := NewOracle()
	steps := []struct {
		prompt string
		hits   int
	}{
		{A + B + "tail", 0},     // 34 tokens, all new
		{A + B + C, 32},         // A, B repeat: 32 of 48
		{A + C, 16},             // A repeats, then the chain diverges
		{B + A, 0},              // B alone never began a prompt
		{A + B + C + "xyz", 48}, // 49 tokens (ceil(195/4)), three blocks repeat
		{"short", 0},            // no full block
	}
	for i, s := range steps {
		if got := o.Add(s.prompt); got != s.hits {
			t.Errorf("step %d: %d hit tokens, want %d", i, got, s.hits)
		}
	}
	// Hits 0+32+16+0+48+0 = 96; tokens 33+48+32+32+49+2 = 196.
	if got, want := o.Fraction(), 96.0/196.0; math.Abs(got-want) > 1e-12 {
		t.Errorf("fraction %v, want %v", got, want)
	}
	if NewOracle().Fraction() != 0 {
		t.Error("empty oracle fraction is not 0")
	}
}

func TestOracleOnWorkloads(t *testing.T) {
	// One group, one user: every request is the same 64+64-token prompt, so every request
	// after the first hits on all 8 blocks.
	sp, _ := NewWorkload(WorkloadSharedPrefix, Params{Groups: 1, Users: 1, SystemTokens: 64, QuestionTokens: 64}, 1)
	if got, want := OracleHitFraction(sp, 10), 9.0/10.0; math.Abs(got-want) > 1e-12 {
		t.Errorf("shared-prefix oracle %v, want %v", got, want)
	}
	fixed, _ := NewWorkload(WorkloadFixed, Params{InputTokens: 256}, 1)
	if got := OracleHitFraction(fixed, 50); got != 0 {
		t.Errorf("fixed (random prompts) oracle %v, want 0", got)
	}
	// Multi-turn, one conversation of 2 turns of 16 user + 16 answer tokens: turn 1 is
	// 48 tokens and repeats turn 0's single block: 16 / (16 + 48).
	mt, _ := NewWorkload(WorkloadMultiTurn, Params{Conversations: 1, Turns: 2, TurnTokens: 16, AnswerTokens: 16}, 1)
	if got, want := OracleHitFraction(mt, 2), 16.0/64.0; math.Abs(got-want) > 1e-12 {
		t.Errorf("multi-turn oracle %v, want %v", got, want)
	}
}

func TestAppendBodyEscapesAndCompletions(t *testing.T) {
	r := Request{Messages: []Message{{Role: "system", Content: "a\"b\\c\n\t\x01é\xff"}, {Role: "user", Content: "q"}}, MaxTokens: 3}
	b := AppendBody(nil, r, BodyOptions{Endpoint: EndpointCompletions, Model: "m\"x", IgnoreEOS: true})
	var v struct {
		Model     string `json:"model"`
		Prompt    string `json:"prompt"`
		MaxTokens int    `json:"max_tokens"`
		IgnoreEOS bool   `json:"ignore_eos"`
		Stream    *bool  `json:"stream"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("invalid JSON %s: %v", b, err)
	}
	if v.Model != "m\"x" || v.Prompt != "a\"b\\c\n\t\x01é\uFFFDq" || v.MaxTokens != 3 || !v.IgnoreEOS || v.Stream != nil {
		t.Errorf("decoded %+v", v)
	}
}
