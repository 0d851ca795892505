package routing

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// words returns n pseudo-random 4-character words drawn from seed: distinct seeds give
// distinct prompts.
func words(seed uint64, n int) string {
	r := rand.New(rand.NewPCG(seed, 99))
	var b strings.Builder
	for range n {
		for range 3 {
			b.WriteByte(byte('a' + r.IntN(26)))
		}
		b.WriteByte(' ')
	}
	return b.String()
}

func chat(system, user string) string {
	return "<|system|>\n" + system + "\n<|user|>\n" + user + "\n"
}

func newTestCacheAware(t *testing.T, cfg CacheAwareConfig, idx PrefixIndex) (*CacheAware, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	pm, err := NewPolicyMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewCacheAware(cfg, idx, rand.New(rand.NewPCG(1, 2)), pm)
	if err != nil {
		t.Fatal(err)
	}
	return p, reg
}

func decisions(p *CacheAware, reason string) float64 {
	for i, r := range decisionReasons {
		if r == reason {
			return testutil.ToFloat64(p.pc.reasons[i])
		}
	}
	return -1
}

func choose(t *testing.T, p Policy, req *Request, cands []Candidate) int {
	t.Helper()
	ch, err := p.Choose(t.Context(), req, cands)
	if err != nil {
		t.Fatal(err)
	}
	if ch.Index < 0 || ch.Index >= len(cands) {
		t.Fatalf("Choose index %d of %d", ch.Index, len(cands))
	}
	return ch.Index
}

// TestCacheAwareAffinity: requests sharing a system prompt follow the backend that served
// it first, even when another backend would be the cold choice for them, and the
// predicted hit shows up in the histogram and the per-backend rate.
func TestCacheAwareAffinity(t *testing.T) {
	p, reg := newTestCacheAware(t, CacheAwareConfig{}, nil)
	cands := idleCands(4, 8)
	system := words(1, 256) // 1 KiB: 16 blocks
	first := choose(t, p, &Request{Model: "m", Prompt: chat(system, words(2, 32))}, cands)
	if decisions(p, ReasonCold) != 1 {
		t.Fatal("first request was not a cold placement")
	}
	for q := range uint64(20) {
		got := choose(t, p, &Request{Model: "m", Prompt: chat(system, words(100+q, 32))}, cands)
		if got != first {
			t.Fatalf("question %d went to %d, not to %d that holds the system prompt", q, got, first)
		}
	}
	if got := decisions(p, ReasonAffinity); got != 20 {
		t.Fatalf("affinity decisions = %v, want 20", got)
	}
	rate, ok := p.PredictedHitRate(cands[first].Backend.ID())
	if !ok || rate < 0.7 || rate > 0.95 {
		t.Fatalf("predicted hit rate = %v, %v; want about 1024/1170", rate, ok)
	}
	if _, ok := p.PredictedHitRate(cands[(first+1)%4].Backend.ID()); ok {
		t.Fatal("a backend never picked has a predicted hit rate")
	}
	if n := testutil.CollectAndCount(reg, "vllm_proxy_routing_predicted_prefix_hit_ratio"); n != 1 {
		t.Fatalf("histogram series = %d", n)
	}

	// A different first block is a different chain: no affinity.
	other := choose(t, p, &Request{Model: "m", Prompt: chat("X"+system[1:], words(2, 32))}, cands)
	if decisions(p, ReasonCold) != 2 {
		t.Fatalf("a changed first block was not cold (went to %d)", other)
	}
}

// TestCacheAwareCacheSaltScopes: the same prompt under another cache_salt shares nothing.
func TestCacheAwareCacheSaltScopes(t *testing.T) {
	p, _ := newTestCacheAware(t, CacheAwareConfig{}, nil)
	cands := idleCands(4, 8)
	prompt := chat(words(3, 256), words(4, 32))
	choose(t, p, &Request{Model: "m", Prompt: prompt, CacheSalt: "alice"}, cands)
	choose(t, p, &Request{Model: "m", Prompt: prompt, CacheSalt: "alice"}, cands)
	if decisions(p, ReasonAffinity) != 1 {
		t.Fatal("the same salt did not match")
	}
	choose(t, p, &Request{Model: "m", Prompt: prompt, CacheSalt: "bob"}, cands)
	choose(t, p, &Request{Model: "m", Prompt: prompt}, cands)
	choose(t, p, &Request{Model: "m", Prompt: prompt, LoRA: "sql"}, cands)
	if got := decisions(p, ReasonCold); got != 4 {
		t.Fatalf("cold decisions = %v, want 4 (alice once, then bob, no salt, a LoRA)", got)
	}
}

// TestCacheAwareSaturationRelease: the sticky backend keeps requests while under budget,
// past it only within 1.25× the mean pressure, and otherwise releases them to least_load;
// pressure comes from the load score or from uncached tokens in flight.
func TestCacheAwareSaturationRelease(t *testing.T) {
	prompt := chat(words(5, 256), words(6, 32))
	for _, tt := range []struct {
		name    string
		sticky  Candidate // a's state; b, c idle unless busyAll
		busyAll float64   // load of the others
		release bool
	}{
		{"under budget stays", Candidate{Load: 0.9}, 0, false},
		{"at capacity, others idle: release", Candidate{Load: 1.0}, 0, true},
		{"everyone saturated: cache wins", Candidate{Load: 1.3}, 1.0, false},   // mean 1.1 × 1.25 = 1.375
		{"saturated past the bound: release", Candidate{Load: 1.5}, 1.0, true}, // mean 1.17 × 1.25 = 1.46
		{"uncached tokens over budget: release", Candidate{Load: 0.2, InFlightTokens: 25_000, OwnInFlight: 5, InFlight: 5}, 0, true},
		{"uncached tokens under budget stay", Candidate{Load: 0.2, InFlightTokens: 15_000, OwnInFlight: 5, InFlight: 5}, 0, false},
		// Other replicas' requests count at this replica's average: 5 own of 10 → 2×.
		{"other replicas' tokens count", Candidate{Load: 0.2, InFlightTokens: 12_000, OwnInFlight: 5, InFlight: 10}, 0, true},
		// None of our own there: each of theirs counts as this request (~293 tokens) until
		// this replica has picked before.
		{"other replicas' requests only, few", Candidate{Load: 0.2, InFlight: 40}, 0, false},
		{"other replicas' requests only, many", Candidate{Load: 0.2, InFlight: 100}, 0, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, _ := newTestCacheAware(t, CacheAwareConfig{}, nil)
			cands := idleCands(3, 8)
			p.idx.Record(cands[0].Backend.ID(), HashPrompt(nil, PrefixSeed("m", "", ""), prompt, 64, 256))
			s := tt.sticky
			s.Backend, s.Capacity = cands[0].Backend, 8
			cands[0] = s
			cands[1].Load, cands[2].Load = tt.busyAll, tt.busyAll
			got := choose(t, p, &Request{Model: "m", Prompt: prompt}, cands)
			if tt.release {
				if got == 0 || decisions(p, ReasonSaturation) != 1 {
					t.Fatalf("chose %d (saturation releases %v), want a release off 0", got, decisions(p, ReasonSaturation))
				}
				return
			}
			if got != 0 || decisions(p, ReasonAffinity) != 1 {
				t.Fatalf("chose %d, want sticky 0 by affinity", got)
			}
		})
	}
}

// TestCacheAwareTiesAndCommonPrefix: among equal longest matches the one first in
// rendezvous order of the chain's root keeps the prefix while it may (not the least
// loaded, so copies do not spread it), the next holder takes the overflow before
// least_load does; a prefix every candidate holds gives no affinity and places by the
// first block past it.
func TestCacheAwareTiesAndCommonPrefix(t *testing.T) {
	p, _ := newTestCacheAware(t, CacheAwareConfig{}, nil)
	cands := idleCands(3, 8)
	prompt := chat(words(7, 256), words(8, 32))
	hashes := HashPrompt(nil, PrefixSeed("m", "", ""), prompt, 64, 256)
	p.idx.Record(cands[0].Backend.ID(), hashes)
	p.idx.Record(cands[2].Backend.ID(), hashes)
	first, second := 0, 2
	if hrwScore(hashes[0], cands[2].Backend.ID(), 8) > hrwScore(hashes[0], cands[0].Backend.ID(), 8) {
		first, second = 2, 0
	}
	cands[first].Load = 0.6
	if got := choose(t, p, &Request{Model: "m", Prompt: prompt}, cands); got != first {
		t.Fatalf("holders %d (preferred, load 0.6) and %d (idle): went to %d", first, second, got)
	}
	cands[first].Load = 1.2 // over budget, and over 1.25× the mean 0.4
	if got := choose(t, p, &Request{Model: "m", Prompt: prompt}, cands); got != second {
		t.Fatalf("preferred holder over budget: went to %d, want the other holder %d", got, second)
	}
	cands[second].Load = 1.1
	if got := choose(t, p, &Request{Model: "m", Prompt: prompt}, cands); got != 1 || decisions(p, ReasonSaturation) != 1 {
		t.Fatalf("both holders over budget: went to %d, want a release to 1", got)
	}
	cands[0].Load, cands[1].Load, cands[2].Load = 0, 0, 0

	q := NewLocalPrefixIndex(0, 0, nil)
	p2, _ := newTestCacheAware(t, CacheAwareConfig{}, q)
	for _, c := range cands {
		q.Record(c.Backend.ID(), hashes[:10]) // a boilerplate prefix everyone holds
	}
	got := choose(t, p2, &Request{Model: "m", Prompt: prompt}, cands)
	want, _ := boundedHash(hashes[10], cands, DefaultLoadFactor, nil)
	if got != want || decisions(p2, ReasonCold) != 1 {
		t.Fatalf("common prefix: chose %d, want cold placement on block 10 → %d", got, want)
	}
}

// TestCacheAwareFallback: prompts shorter than a block go to least_load.
func TestCacheAwareFallback(t *testing.T) {
	p, _ := newTestCacheAware(t, CacheAwareConfig{}, nil)
	cands := idleCands(2, 8)
	cands[0].Load = 0.9
	for _, prompt := range []string{"", "hello"} {
		if got := choose(t, p, &Request{Model: "m", Prompt: prompt}, cands); got != 1 {
			t.Fatalf("prompt %q went to %d, want least loaded 1", prompt, got)
		}
	}
	if decisions(p, ReasonFallback) != 2 {
		t.Fatal("fallbacks not counted")
	}
}

// emptyIndex is an index that has lost everything (Redis flushed or gone).
type emptyIndex struct{}

func (emptyIndex) Lookup(context.Context, []uint64) map[string]int { return map[string]int{} }
func (emptyIndex) Record(string, []uint64)                         {}

// TestCacheAwareIndexLost: with an index that knows nothing every request is a cold
// placement, and the same prompt still goes to the same backend.
func TestCacheAwareIndexLost(t *testing.T) {
	p, _ := newTestCacheAware(t, CacheAwareConfig{}, emptyIndex{})
	cands := idleCands(4, 8)
	prompt := chat(words(9, 64), "q")
	first := choose(t, p, &Request{Model: "m", Prompt: prompt}, cands)
	for range 5 {
		if got := choose(t, p, &Request{Model: "m", Prompt: prompt}, cands); got != first {
			t.Fatalf("same prompt went to %d then %d", first, got)
		}
	}
	if decisions(p, ReasonCold) != 6 {
		t.Fatal("not all cold")
	}
}

// TestCacheAwareColdPlacementUnderLoad: below half load a cold request goes where its key
// hashes; when backends are busier it goes to one within a request of the least loaded,
// as least_load would, whatever the key.
func TestCacheAwareColdPlacementUnderLoad(t *testing.T) {
	p, _ := newTestCacheAware(t, CacheAwareConfig{}, emptyIndex{})
	cands := idleCands(4, 8)
	for k := range uint64(200) {
		prompt := words(k, 32)
		key := HashPrompt(nil, PrefixSeed("m", "", ""), prompt, 64, 1)[0]
		for i := range cands {
			cands[i].Load = float64(k%3) / 8 // light load: the key decides
		}
		want, _ := boundedHash(key, cands, DefaultLoadFactor, nil)
		if got := choose(t, p, &Request{Model: "m", Prompt: prompt}, cands); got != want {
			t.Fatalf("key %d at light load went to %d, want its home %d", k, got, want)
		}
		for i, l := range []float64{6, 4, 7, 5} {
			cands[i].Load = (l + float64(k%2)) / 8 // busy: the least loaded is 1
		}
		if got := choose(t, p, &Request{Model: "m", Prompt: prompt}, cands); got != 1 && got != 3 {
			t.Fatalf("key %d under load went to %d (load %v), want 1 or 3", k, got, cands[got].Load)
		}
	}
}
