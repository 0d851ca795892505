package routing

import (
	"slices"
	"testing"
	"time"
)

func TestMarkCrowded(t *testing.T) {
	type c struct {
		load     float64
		prefills int
	}
	tests := []struct {
		name  string
		cands []c
		slack float64
		want  []bool
	}{
		{"one candidate", []c{{0, 3}}, 0.25, []bool{false}},
		{"equal prefills: nothing to prefer", []c{{0, 1}, {0.1, 1}}, 0.25, []bool{false, false}},
		{"fewer prefills within the slack wins", []c{{0, 1}, {0.2, 0}}, 0.25, []bool{true, false}},
		{"fewer prefills beyond the slack does not", []c{{0, 1}, {0.3, 0}}, 0.25, []bool{false, false}},
		{"beyond the slack is passed over while spreading", []c{{0, 1}, {0.1, 0}, {0.5, 0}}, 0.25, []bool{true, false, true}},
		{"ties keep both", []c{{0.1, 2}, {0, 1}, {0.2, 1}}, 0.25, []bool{true, false, false}},
		{"negative slack: off", []c{{0, 3}, {0, 0}}, -1, []bool{false, false}},
		{"zero slack: equal loads only", []c{{0, 1}, {0, 0}, {0.01, 0}}, 0, []bool{true, false, true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var cands []Candidate
			for i, x := range tc.cands {
				cands = append(cands, Candidate{Backend: &Backend{id: string(rune('a' + i))}, Load: x.load, Prefills: x.prefills, Capacity: 16})
			}
			markCrowded(cands, tc.slack)
			var got []bool
			for _, c := range cands {
				got = append(got, c.Crowded)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("crowded = %v, want %v", got, tc.want)
			}
			sub, index := uncrowded(cands)
			for i, s := range sub {
				if s.Crowded || cands[original(index, i)].Backend != s.Backend {
					t.Errorf("uncrowded[%d] = %s maps to %s", i, s.Backend.id, cands[original(index, i)].Backend.id)
				}
			}
		})
	}
}

// TestPrefillSpread: through the Router, a prompt goes to a backend with fewer prompts
// being prefilled: a streamed request until its first byte (Prefilled) or its end, a
// batch line for its estimated prefill time. Checked for least_load and for cache_aware's
// cold placement, which without spreading would hash every copy of one prompt to one
// backend.
func TestPrefillSpread(t *testing.T) {
	for _, policy := range []string{PolicyLeastLoad, PolicyCacheAware} {
		t.Run(policy, func(t *testing.T) {
			_, cfg := fakePool(t, 2, 16)
			cfg.Policy = policy
			clk := newFakeClock()
			r, _ := newIdleRouter(t, cfg, WithClock(clk.Now))
			n := 0
			pick := func(class Class) *Pick { // a new 512-token prompt each time
				t.Helper()
				n++
				prompt := words(uint64(n), 512)[:2048]
				pk, err := r.Pick(t.Context(), &Request{Model: "m", Class: class, Prompt: prompt})
				if err != nil {
					t.Fatal(err)
				}
				return pk
			}
			first := pick(ClassInteractive)
			first.Sent(true)
			second := pick(ClassInteractive)
			second.Sent(true)
			if first.Backend == second.Backend {
				t.Fatalf("two streamed prompts at once both went to %s", first.Backend.ID())
			}
			first.Prefilled()
			for range 3 { // while second is prefilling, the other backend takes every prompt
				pk := pick(ClassInteractive)
				if pk.Backend != first.Backend {
					t.Fatalf("a prompt went to %s, where one is still being prefilled", pk.Backend.ID())
				}
				pk.Done(Outcome{Status: 200}) // Done ends its prefill too
			}
			second.Done(Outcome{Status: 200})
			first.Done(Outcome{Status: 200})

			b := pick(ClassBatch)
			b.Sent(false) // 512 tokens at 10,000 tokens/s: 51.2 ms, plus 20 ms
			clk.Advance(70 * time.Millisecond)
			pk := pick(ClassInteractive)
			if pk.Backend == b.Backend {
				t.Fatalf("a prompt went to %s 70 ms after a batch line's, within its estimated prefill", pk.Backend.ID())
			}
			pk.Done(Outcome{Status: 200})
			clk.Advance(2 * time.Millisecond)
			if got := prefillsOf(b.Backend, clk.Now()); got != 0 {
				t.Errorf("72 ms after the batch line: %d prefills counted, want 0", got)
			}
			b.Done(Outcome{Status: 200})
		})
	}
}

// prefillsOf is the Candidate.Prefills a pick at now would see.
func prefillsOf(b *Backend, now time.Time) int {
	var c Candidate
	r := &Router{}
	b.mu.Lock()
	defer b.mu.Unlock()
	r.prefillViewLocked(b, &c, ClassBatch, 0, now)
	return c.Prefills
}

// TestPrefillSpreadKeepsAffinity: a cache_aware request whose prefix one backend holds
// stays there even while a prompt is being prefilled there.
func TestPrefillSpreadKeepsAffinity(t *testing.T) {
	_, cfg := fakePool(t, 2, 16)
	r, _ := newIdleRouter(t, cfg)
	prompt := chat(words(7, 300), "question")
	first, err := r.Pick(t.Context(), &Request{Model: "m", Prompt: prompt})
	if err != nil {
		t.Fatal(err)
	}
	first.Sent(true)
	defer first.Done(Outcome{Status: 200})
	for range 3 {
		pk, err := r.Pick(t.Context(), &Request{Model: "m", Prompt: prompt})
		if err != nil {
			t.Fatal(err)
		}
		pk.Done(Outcome{Status: 200})
		if pk.Backend != first.Backend {
			t.Fatalf("a repeat of a cached prompt went to %s, not to %s that holds it", pk.Backend.ID(), first.Backend.ID())
		}
	}
}

// TestBatchYields: with Config.BatchYields an interactive pick leaves the batch requests
// in flight out of a backend's load, so a backend full of batch work still draws it;
// batch picks still count them.
func TestBatchYields(t *testing.T) {
	for _, yields := range []bool{false, true} {
		_, cfg := fakePool(t, 2, 8)
		cfg.Policy = PolicyLeastLoad
		cfg.BatchYields = yields
		r, _ := newIdleRouter(t, cfg)
		backends := r.pool.Load().backends
		full, busy := backends[0], backends[1]
		var open []*Pick
		hold := func(b *Backend, class Class, n int) {
			for range n {
				pk, err := r.Pick(t.Context(), &Request{Model: "m", Class: class, Exclude: []string{otherThan(backends, b)}})
				if err != nil {
					t.Fatal(err)
				}
				open = append(open, pk)
			}
		}
		hold(full, ClassBatch, 8)       // load 1.0, all of it batch
		hold(busy, ClassInteractive, 5) // load 0.625
		pk, err := r.Pick(t.Context(), &Request{Model: "m", Class: ClassInteractive})
		if err != nil {
			t.Fatal(err)
		}
		want := busy
		if yields {
			want = full
		}
		if pk.Backend != want {
			t.Errorf("BatchYields %v: interactive pick went to %s, want %s", yields, pk.Backend.ID(), want.ID())
		}
		pk.Done(Outcome{})
		bp, err := r.Pick(t.Context(), &Request{Model: "m", Class: ClassBatch})
		if err != nil {
			t.Fatal(err)
		}
		if bp.Backend != busy {
			t.Errorf("BatchYields %v: batch pick went to %s, want the less loaded %s", yields, bp.Backend.ID(), busy.ID())
		}
		bp.Done(Outcome{})
		for _, p := range open {
			p.Done(Outcome{})
		}
	}
}

func otherThan(bs []*Backend, b *Backend) string {
	for _, o := range bs {
		if o != b {
			return o.ID()
		}
	}
	return ""
}
