package routing

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
)

func TestFirstUserText(t *testing.T) {
	long := strings.Repeat("0123456789", 15)
	for _, tt := range []struct {
		name, prompt string
		n            int
		want         string
	}{
		{"completion prompt", "once upon a time", 100, "once upon a time"},
		{"completion capped", long, 100, long[:100]},
		{"skips system", "<|system|>\nbe nice\n<|user|>\nhello\n", 100, "hello"},
		{"first of several", "<|user|>\nhi\n<|assistant|>\nyo\n<|user|>\nagain\n", 100, "hi"},
		{"named user", "<|user|> bob\nhi bob\n", 100, "hi bob"},
		{"multi-line content", "<|user|>\nline1\nline2\n<|assistant|>\nx\n", 100, "line1\nline2"},
		{"content ending in newline", "<|user|>\nhi\n\n", 100, "hi\n"},
		{"marker inside content is not a message", "<|system|>\nsay <|user|> now\n<|user|>\nreal\n", 100, "real"},
		{"capped message", "<|user|>\n" + long + "\n", 100, long[:100]},
		{"no user message", "<|system|>\nonly system\n", 100, "<|system|>\nonly system\n"},
		{"marker without newline", "<|user|>", 100, ""},
		{"utf-8 not split", "héllo", 2, "h"},
		{"zero length", "abc", 0, ""},
	} {
		if got := FirstUserText(tt.prompt, tt.n); got != tt.want {
			t.Errorf("%s: FirstUserText = %q, want %q", tt.name, got, tt.want)
		}
	}
}

// TestCHWBLMultiTurnSticksAndReplicasAgree: later turns of a conversation carry the same
// first user message, so they land where turn 1 went, on any replica; different first
// messages spread.
func TestCHWBLMultiTurnSticksAndReplicasAgree(t *testing.T) {
	pm, _ := NewPolicyMetrics(prometheus.NewRegistry())
	a, err := NewCHWBL(CHWBLConfig{}, nil, pm)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewCHWBL(CHWBLConfig{}, nil, nil) // a second replica
	cands := idleCands(4, 8)
	seen := map[int]bool{}
	for conv := range uint64(40) {
		user := words(conv, 40)
		turn1 := "<|system|>\nsys\n<|user|>\n" + user + "\n"
		turn2 := turn1 + "<|assistant|>\n" + words(1000+conv, 30) + "\n<|user|>\nmore\n"
		x := choose(t, a, &Request{Model: "m", Prompt: turn1}, cands)
		if y := choose(t, a, &Request{Model: "m", Prompt: turn2}, cands); y != x {
			t.Fatalf("conversation %d: turn 1 → %d, turn 2 → %d", conv, x, y)
		}
		if y := choose(t, b, &Request{Model: "m", Prompt: turn2}, cands); y != x {
			t.Fatalf("conversation %d: replicas disagree (%d vs %d)", conv, x, y)
		}
		seen[x] = true
	}
	if len(seen) != 4 {
		t.Fatalf("40 conversations used only backends %v", seen)
	}
	// Only the first 100 characters count: a system prompt or a later suffix does not.
	base := strings.Repeat("k", 100)
	x := choose(t, a, &Request{Model: "m", Prompt: "<|user|>\n" + base + "tail one\n"}, cands)
	if y := choose(t, a, &Request{Model: "m", Prompt: "<|system|>\nother\n<|user|>\n" + base + "tail two\n"}, cands); y != x {
		t.Fatal("characters past the key or the system prompt changed the placement")
	}
}

// TestCHWBLBoundedLoad: one hot key spreads once its backend carries 1.25× its share.
func TestCHWBLBoundedLoad(t *testing.T) {
	p, _ := NewCHWBL(CHWBLConfig{}, nil, nil)
	cands := idleCands(4, 8)
	req := &Request{Model: "m", Prompt: "<|user|>\nthe same question every time\n"}
	home := choose(t, p, req, cands)
	cands[home].Load = 3.0 / 8 // 3 in flight, nobody else busy: bound ceil(1.25·4/4) = 2
	if got := choose(t, p, req, cands); got == home {
		t.Fatal("hot key stayed on its home backend past the bound")
	}
	cands[home].Load = 0
	if got := choose(t, p, req, cands); got != home {
		t.Fatal("hot key did not come home once under the bound")
	}
	// Empty key: least_load.
	cands[0].Load, cands[1].Load, cands[2].Load, cands[3].Load = 0.9, 0.9, 0.1, 0.9
	if got := choose(t, p, &Request{Model: "m"}, cands); got != 2 {
		t.Fatalf("empty prompt went to %d, want least loaded 2", got)
	}
}

func FuzzFirstUserText(f *testing.F) {
	for _, s := range []string{"", "plain", "<|user|>\nhi\n", "<|system|>\nx\n<|user|> n\nq\n<|assistant|>\na\n",
		"<|user|>", "<|<|user|>\n\n<|", "<|user|>\nhé\xffllo\n", "\n<|user|>\n"} {
		f.Add(s, 100)
		f.Add(s, 3)
	}
	f.Fuzz(func(t *testing.T, prompt string, n int) {
		n = n % 1000
		got := FirstUserText(prompt, n)
		if len(got) > max(n, 0) {
			t.Fatalf("FirstUserText(%q, %d) = %q, longer than %d", prompt, n, got, n)
		}
		if !strings.Contains(prompt, got) {
			t.Fatalf("FirstUserText(%q, %d) = %q, not a substring", prompt, n, got)
		}
		if utf8.ValidString(prompt) && !utf8.ValidString(got) {
			t.Fatalf("FirstUserText(%q, %d) = %q split a UTF-8 sequence", prompt, n, got)
		}
	})
}
