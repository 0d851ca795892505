package routing

import (
	"slices"
	"strings"
	"testing"
)

func TestHashPromptChain(t *testing.T) {
	seed := PrefixSeed("llama", "", "")
	base := strings.Repeat("a", 64) + strings.Repeat("b", 64) + strings.Repeat("c", 64) + "tail"
	h := HashPrompt(nil, seed, base, 64, 256)
	if len(h) != 3 {
		t.Fatalf("got %d hashes for 3 full blocks and a partial one, want 3", len(h))
	}
	if len(slices.Compact(slices.Clone(h))) != 3 {
		t.Fatalf("hashes repeat: %x", h)
	}

	// Chain invalidation: changing block 1 keeps hash 0 and changes every later hash,
	// even though block 2 is the same text.
	changed := strings.Repeat("a", 64) + strings.Repeat("B", 64) + strings.Repeat("c", 64)
	h2 := HashPrompt(nil, seed, changed, 64, 256)
	if h2[0] != h[0] || h2[1] == h[1] || h2[2] == h[2] {
		t.Fatalf("chain: %x vs %x; want equal at 0, different at 1 and 2", h, h2)
	}
	// The same block text at another position hashes differently (a chain, not a set).
	if HashPrompt(nil, seed, strings.Repeat("c", 64), 64, 1)[0] == h[2] {
		t.Fatal("block 2 hashes like a first block: the chain does not cover the prefix")
	}
	// An extension shares the prefix's hashes.
	longer := HashPrompt(nil, seed, base+strings.Repeat("d", 200), 64, 256)
	if !slices.Equal(longer[:3], h) {
		t.Fatal("a longer prompt does not share its prefix's hashes")
	}
	// Cap and degenerate sizes.
	if got := HashPrompt(nil, seed, base, 64, 2); !slices.Equal(got, h[:2]) {
		t.Fatalf("max_blocks 2 gave %x", got)
	}
	if got := HashPrompt(nil, seed, base, 0, 10); len(got) != 0 {
		t.Fatalf("block_chars 0 gave %d hashes", len(got))
	}
	if got := HashPrompt(nil, seed, "short", 64, 10); len(got) != 0 {
		t.Fatalf("a prompt shorter than a block gave %d hashes", len(got))
	}
	// dst is appended to.
	if got := HashPrompt([]uint64{7}, seed, base, 64, 256); got[0] != 7 || !slices.Equal(got[1:], h) {
		t.Fatal("HashPrompt does not append to dst")
	}
}

func TestPrefixSeedScopes(t *testing.T) {
	prompt := strings.Repeat("x", 128)
	first := func(model, salt, lora string) uint64 {
		return HashPrompt(nil, PrefixSeed(model, salt, lora), prompt, 64, 1)[0]
	}
	ref := first("llama", "", "")
	for name, got := range map[string]uint64{
		"cache_salt":     first("llama", "tenant-a", ""),
		"other salt":     first("llama", "tenant-b", ""),
		"model":          first("qwen", "", ""),
		"lora":           first("llama", "", "sql"),
		"part boundary":  first("llam", "a", ""),
		"salt vs lora":   first("llama", "", "tenant-a"),
		"model and lora": first("sql", "", "sql"),
	} {
		if got == ref {
			t.Errorf("%s does not change the hash", name)
		}
	}
	if a, b := first("llama", "tenant-a", ""), first("llama", "tenant-a", ""); a != b {
		t.Error("the same scope hashes differently")
	}
	if first("llama", "tenant-a", "") == first("llama", "", "tenant-a") {
		t.Error("a salt and a LoRA of the same name share a scope")
	}
}

func TestBlockCharsFor(t *testing.T) {
	c := func(bs int) Candidate { return Candidate{BlockSize: bs} }
	for _, tt := range []struct {
		name       string
		configured int
		cands      []Candidate
		want       int
	}{
		{"nothing published", 0, []Candidate{c(0), c(0)}, 64},
		{"vLLM default 16", 0, []Candidate{c(16)}, 64},
		{"smallest published wins", 0, []Candidate{c(32), c(0), c(8)}, 32},
		{"configured overrides", 100, []Candidate{c(16)}, 100},
	} {
		if got := blockCharsFor(tt.configured, tt.cands); got != tt.want {
			t.Errorf("%s: blockCharsFor = %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestHashPromptDoesNotAllocate(t *testing.T) {
	prompt := strings.Repeat("lorem ipsum ", 1000)
	buf := make([]uint64, 0, DefaultMaxBlocks)
	seed := PrefixSeed("m", "s", "l")
	if n := testing.AllocsPerRun(100, func() { buf = HashPrompt(buf[:0], seed, prompt, 64, DefaultMaxBlocks) }); n != 0 {
		t.Fatalf("HashPrompt allocates %v times per call", n)
	}
}

func BenchmarkHashPrompt(b *testing.B) {
	prompt := strings.Repeat("lorem ipsum ", 1400) // 16.8 KB: the 256-block cap
	buf := make([]uint64, 0, DefaultMaxBlocks)
	seed := PrefixSeed("m", "", "")
	b.SetBytes(int64(len(prompt)))
	for b.Loop() {
		buf = HashPrompt(buf[:0], seed, prompt, 64, DefaultMaxBlocks)
	}
}
