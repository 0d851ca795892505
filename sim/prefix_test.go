package sim

import (
	"encoding/json"
	"strings"
	"testing"
)

// block returns text of one full block (16 tokens = 64 bytes) made of c.
func block(c string) string { return strings.Repeat(c, 64)[:64] }

// cachedTokens sends a completion of prompt and returns usage.prompt_tokens_details.cached_tokens.
func cachedTokens(t *testing.T, s *Server, prompt, salt string) int {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"model": "m1", "prompt": prompt, "max_tokens": 1, "cache_salt": salt})
	status, resp := post(t, s.URL()+"/v1/completions", string(body))
	if status != 200 {
		t.Fatalf("completion: %d %s", status, resp)
	}
	var r struct {
		Usage struct {
			PromptTokensDetails struct {
				CachedTokens int `json:"cached_tokens"`
			} `json:"prompt_tokens_details"`
		} `json:"usage"`
	}
	if err := json.Unmarshal([]byte(resp), &r); err != nil {
		t.Fatal(err)
	}
	return r.Usage.PromptTokensDetails.CachedTokens
}

func TestPrefixCacheHitsOnRepeat(t *testing.T) {
	modes(t, Config{Model: "m1"}, func(t *testing.T, s *Server) {
		prompt := block("a") + block("b") + block("c") + "tail"
		if got := cachedTokens(t, s, prompt, ""); got != 0 {
			t.Fatalf("first request cached %d tokens, want 0", got)
		}
		if got := cachedTokens(t, s, prompt, ""); got != 48 {
			t.Fatalf("repeat cached %d tokens, want 48 (three full blocks)", got)
		}
		// A prompt of exactly three blocks may hit only two: vLLM recomputes the last token.
		if got := cachedTokens(t, s, block("a")+block("b")+block("c"), ""); got != 32 {
			t.Fatalf("block-aligned prompt cached %d tokens, want 32", got)
		}
		snap := s.Snapshot()
		if snap.PrefixHits != 80 || snap.PrefixQueries != int64(2*49+48) {
			t.Errorf("snapshot hits %d queries %d, want 80 and %d", snap.PrefixHits, snap.PrefixQueries, 2*49+48)
		}
	})
}

func TestPrefixCacheChainInvalidation(t *testing.T) {
	s := startSim(t, Config{Model: "m1", Instant: true})
	cachedTokens(t, s, block("x")+block("y")+block("z")+"tail", "")
	// The first block differs: later identical blocks must not hit.
	if got := cachedTokens(t, s, block("q")+block("y")+block("z")+"tail", ""); got != 0 {
		t.Errorf("different first block: cached %d, want 0", got)
	}
	// The second block differs: only the first hits.
	if got := cachedTokens(t, s, block("x")+block("q")+block("z")+"tail", ""); got != 16 {
		t.Errorf("different second block: cached %d, want 16", got)
	}
}

func TestPrefixCacheSalt(t *testing.T) {
	s := startSim(t, Config{Model: "m1", Instant: true})
	prompt := block("s") + block("t") + "tail"
	cachedTokens(t, s, prompt, "alice")
	if got := cachedTokens(t, s, prompt, "bob"); got != 0 {
		t.Errorf("other salt: cached %d, want 0", got)
	}
	if got := cachedTokens(t, s, prompt, ""); got != 0 {
		t.Errorf("no salt: cached %d, want 0", got)
	}
	if got := cachedTokens(t, s, prompt, "alice"); got != 32 {
		t.Errorf("same salt: cached %d, want 32", got)
	}
}

func TestPrefixCacheLRUEviction(t *testing.T) {
	// Six blocks. Each request holds three (two full prompt blocks and one for the last
	// prompt token and the output), and leaves its two full blocks cached when it ends.
	s := startSim(t, Config{Model: "m1", Instant: true, NumGPUBlocks: 6, MaxModelLen: 64})
	a := block("a") + block("A") + "t"
	b := block("b") + block("B") + "t"
	c := block("c") + block("C") + "t"
	cachedTokens(t, s, a, "")
	cachedTokens(t, s, b, "")
	cachedTokens(t, s, c, "") // needs three blocks: evicts the least recently used, A's tail first
	if got := cachedTokens(t, s, b, ""); got != 32 {
		t.Errorf("B (recent) cached %d, want 32", got)
	}
	if got := cachedTokens(t, s, a, ""); got != 16 {
		t.Errorf("A (least recent) cached %d, want 16: its second block evicted, its first kept", got)
	}
}

func TestPrefixCacheDisabled(t *testing.T) {
	s := startSim(t, Config{Model: "m1", Instant: true, DisablePrefixCaching: true})
	prompt := block("a") + block("b") + "tail"
	cachedTokens(t, s, prompt, "")
	if got := cachedTokens(t, s, prompt, ""); got != 0 {
		t.Errorf("caching disabled: cached %d, want 0", got)
	}
}

func TestPrefixCacheMultiTurn(t *testing.T) {
	// The previous turn's prompt and answer are a prefix of the next turn's prompt.
	modes(t, Config{Model: "m1"}, func(t *testing.T, s *Server) {
		sys := strings.Repeat("You are a careful assistant. ", 10)
		turn1 := `{"model":"m1","max_tokens":40,"messages":[{"role":"system","content":"` + sys + `"},{"role":"user","content":"hi"}]}`
		status, resp := post(t, s.URL()+"/v1/chat/completions", turn1)
		if status != 200 {
			t.Fatalf("turn 1: %d %s", status, resp)
		}
		var r struct {
			Choices []struct {
				Message struct{ Content string } `json:"message"`
			} `json:"choices"`
			Usage struct {
				PromptTokens        int `json:"prompt_tokens"`
				PromptTokensDetails struct {
					CachedTokens int `json:"cached_tokens"`
				} `json:"prompt_tokens_details"`
			} `json:"usage"`
		}
		if err := json.Unmarshal([]byte(resp), &r); err != nil {
			t.Fatal(err)
		}
		answer, _ := json.Marshal(r.Choices[0].Message.Content)
		turn2 := `{"model":"m1","max_tokens":4,"messages":[{"role":"system","content":"` + sys +
			`"},{"role":"user","content":"hi"},{"role":"assistant","content":` + string(answer) +
			`},{"role":"user","content":"and then?"}]}`
		prev := r.Usage.PromptTokens + 40
		status, resp = post(t, s.URL()+"/v1/chat/completions", turn2)
		if status != 200 {
			t.Fatalf("turn 2: %d %s", status, resp)
		}
		if err := json.Unmarshal([]byte(resp), &r); err != nil {
			t.Fatal(err)
		}
		// Every full block of turn 1's prompt+answer is reusable.
		if got, want := r.Usage.PromptTokensDetails.CachedTokens, (prev*bytesPerToken/64)*16; got < want-16 || got > want {
			t.Errorf("turn 2 cached %d tokens, want about %d of turn 1's %d", got, want, prev)
		}
	})
}
