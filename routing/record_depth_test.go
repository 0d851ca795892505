package routing

import (
	"testing"

	"github.com/vllm-proxy/vllm-proxy/state"
	"github.com/vllm-proxy/vllm-proxy/state/statetest"
)

func TestRecordDepth(t *testing.T) {
	for _, tt := range []struct{ m, n, ahead, first, want int }{
		{0, 64, 16, 1, 1},     // first sighting: first blocks
		{0, 64, 16, -1, 16},   // first -1: ahead blocks
		{1, 64, 16, 1, 18},    // a repeat doubles the match, plus ahead
		{18, 64, 16, 1, 52},   //
		{52, 64, 16, 1, 64},   // capped at the chain
		{0, 0, 16, 1, 0},      // nothing to record
		{0, 64, -1, 1, 64},    // ahead -1: the whole chain
		{100, 256, 1, 1, 201}, //
	} {
		if got := RecordDepth(tt.m, tt.n, tt.ahead, tt.first); got != tt.want {
			t.Errorf("RecordDepth(%d, %d, %d, %d) = %d, want %d", tt.m, tt.n, tt.ahead, tt.first, got, tt.want)
		}
	}
}

// TestRecordDepthGrowsWithReuse: a 16 KiB prompt seen once is recorded one block deep;
// every repeat doubles its recorded depth (plus RecordAhead) until the whole chain is
// known, and the repeats keep their backend throughout.
func TestRecordDepthGrowsWithReuse(t *testing.T) {
	p, _ := newTestCacheAware(t, CacheAwareConfig{}, nil)
	cands := idleCands(4, 8)
	prompt := chat(words(7, 4096), "q") // 256+ blocks: capped at MaxBlocks
	hashes := HashPrompt(nil, PrefixSeed("m", "", ""), prompt, DefaultBlockChars, DefaultMaxBlocks)
	first := -1
	for i, want := range []int{1, 18, 52, 120, 256, 256} {
		got := choose(t, p, &Request{Model: "m", Prompt: prompt}, cands)
		if first < 0 {
			first = got
		} else if got != first {
			t.Fatalf("repeat %d went to %d, not %d", i, got, first)
		}
		if m := p.Index().Lookup(t.Context(), hashes)[cands[first].Backend.ID()]; m != want {
			t.Fatalf("after pick %d the index holds %d blocks, want %d", i+1, m, want)
		}
	}
}

// TestRecordAheadMultiTurn: conversations behind a 4 KiB system prompt every backend holds
// spread over the backends and each stays on the backend of its first turn as its turns
// extend the prompt (the blocks past the common part it records tell it apart).
func TestRecordAheadMultiTurn(t *testing.T) {
	p, _ := newTestCacheAware(t, CacheAwareConfig{}, nil)
	cands := idleCands(4, 8)
	system := words(1, 1024) // 4 KiB, 64 blocks, shared by every conversation
	common := HashPrompt(nil, PrefixSeed("m", "", ""), chat(system, ""), DefaultBlockChars, DefaultMaxBlocks)
	for _, c := range cands {
		p.idx.Record(c.Backend.ID(), common)
	}
	home := map[int]int{}
	convo := map[int]string{}
	for turn := range 6 {
		for c := range 16 {
			convo[c] += chat(system, words(uint64(1000*c+turn), 64))
			got := choose(t, p, &Request{Model: "m", Prompt: convo[c]}, cands)
			if turn == 0 {
				home[c] = got
			} else if got != home[c] {
				t.Fatalf("conversation %d turn %d went to %d, not %d", c, turn, got, home[c])
			}
		}
	}
	used := map[int]bool{}
	for _, b := range home {
		used[b] = true
	}
	if len(used) < 3 {
		t.Fatalf("16 conversations used backends %v, want them spread", used)
	}
}

// TestDistinctPromptsBoundedIndex: 1,000 distinct ~4 KB prompts (64 blocks each) through
// a cache_aware router on Redis leave FirstRecordBlocks (1) key per request in Redis, and
// the replica's local cache at its cap.
func TestDistinctPromptsBoundedIndex(t *testing.T) {
	const n, capBlocks = 1000, 800
	run := runDistinct(t, n, CacheAwareConfig{}, state.Config{PrefixCacheBlocks: capBlocks})
	if run.dropped != 0 {
		t.Fatalf("%v records dropped", run.dropped)
	}
	// Every prompt differs from its first block: one key per prompt, plus the store's
	// own keys (epoch, in-flight, …).
	if max := int64(n*DefaultFirstRecordBlocks + 10); run.keys > max || run.keys < n*DefaultFirstRecordBlocks {
		t.Fatalf("redis holds %d keys for %d prompts, want %d..%d", run.keys, n, n*DefaultFirstRecordBlocks, max)
	}
	if got := run.store.Prefix().CachedBlocks(); got != capBlocks {
		t.Fatalf("local cache holds %d blocks, cap %d", got, capBlocks)
	}
}

// TestSecondSightingRecordsDeeper: a prompt seen once by one replica is one key in
// Redis; the same prompt on a second replica goes to the same backend and records
// 2·1 + RecordAhead blocks, which a third replica then sees.
func TestSecondSightingRecordsDeeper(t *testing.T) {
	srv := statetest.StartRedis(t)
	rc := redisClient(t, srv)
	stores := []*state.Store{openFastState(t, srv.URL, "r1"), openFastState(t, srv.URL, "r2"), openFastState(t, srv.URL, "r3")}
	var pols []*CacheAware
	for _, st := range stores {
		p, _ := newTestCacheAware(t, CacheAwareConfig{}, st.Prefix())
		pols = append(pols, p)
	}
	cands := idleCands(4, 8)
	prompt := distinctPrompt(1) // 64 blocks
	hashes := HashPrompt(nil, PrefixSeed("m", "", ""), prompt, DefaultBlockChars, DefaultMaxBlocks)
	prefixKeys := func() int {
		keys, err := rc.Keys(t.Context(), "prefix:*").Result()
		if err != nil {
			t.Fatal(err)
		}
		return len(keys)
	}
	first := choose(t, pols[0], &Request{Model: "m", Prompt: prompt}, cands)
	owner := cands[first].Backend.ID()
	eventually(t, "the first sighting reaches redis", func() bool {
		return stores[1].Prefix().Lookup(t.Context(), hashes)[owner] == 1
	})
	if n := prefixKeys(); n != 1 {
		t.Fatalf("after one sighting redis holds %d prefix keys, want 1", n)
	}
	if got := choose(t, pols[1], &Request{Model: "m", Prompt: prompt}, cands); got != first {
		t.Fatalf("second replica sent the prompt to %d, not %d", got, first)
	}
	eventually(t, "the second sighting's record reaches redis", func() bool {
		return stores[2].Prefix().Lookup(t.Context(), hashes)[owner] == 2*1+DefaultRecordAhead
	})
	if n := prefixKeys(); n != 2*1+DefaultRecordAhead {
		t.Fatalf("after two sightings redis holds %d prefix keys, want %d", n, 2*1+DefaultRecordAhead)
	}
}
