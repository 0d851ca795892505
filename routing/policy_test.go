package routing

import (
	"math"
	"math/rand/v2"
	"testing"
)

// scriptRand returns fixed values, so a test can steer the policies' dice.
type scriptRand struct {
	f float64 // every Float64
	n int     // IntN returns min(n, bound-1)
}

func (s scriptRand) Float64() float64 { return s.f }
func (s scriptRand) IntN(bound int) int {
	return min(s.n, bound-1)
}

func cand(id string, load float64, capacity int) Candidate {
	return Candidate{Backend: &Backend{id: id}, Load: load, Capacity: capacity}
}

func TestLoadScore(t *testing.T) {
	tests := []struct {
		name             string
		running, waiting float64
		since, inFlight  int64
		capacity         int
		stale            bool
		want             float64
	}{
		{"idle", 0, 0, 0, 0, 8, false, 0},
		{"running only", 4, 0, 0, 0, 8, false, 0.5},
		{"waiting counts half", 2, 4, 0, 0, 8, false, 0.5},
		{"dispatched since scrape add", 2, 0, 2, 2, 8, false, 0.5},
		{"in-flight floor when scrape lags", 0, 0, 0, 6, 8, false, 0.75},
		{"scrape above in-flight wins", 6, 4, 0, 2, 8, false, 1},
		{"stale uses in-flight alone", 100, 100, 5, 2, 8, true, 0.25},
		{"zero capacity treated as one", 1, 0, 0, 0, 0, false, 1},
		{"over capacity exceeds one", 16, 0, 0, 0, 8, false, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := loadScore(tt.running, tt.waiting, tt.since, tt.inFlight, tt.capacity, tt.stale)
			if math.Abs(got-tt.want) > 1e-12 {
				t.Fatalf("loadScore = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestLeastLoadChoose(t *testing.T) {
	tests := []struct {
		name  string
		cands []Candidate
		rnd   scriptRand
		want  int
	}{
		{"only one under threshold", []Candidate{cand("a", 0.9, 8), cand("b", 0.4, 8), cand("c", 0.5, 8)}, scriptRand{f: 0.99}, 1},
		// Free capacity a: 8*(1-0.25)=6, b: 4*(1-0)=4; total 10. x=0.59*10=5.9 → a; x=0.61*10=6.1 → b.
		{"weighted by free capacity, low draw", []Candidate{cand("a", 0.25, 8), cand("b", 0, 4)}, scriptRand{f: 0.59}, 0},
		{"weighted by free capacity, high draw", []Candidate{cand("a", 0.25, 8), cand("b", 0, 4)}, scriptRand{f: 0.61}, 1},
		{"over-threshold ones skipped while weighting", []Candidate{cand("a", 0.7, 8), cand("b", 0.1, 8), cand("c", 0.6, 8), cand("d", 0.1, 8)}, scriptRand{f: 0.75}, 3},
		{"none under threshold: lowest", []Candidate{cand("a", 0.9, 8), cand("b", 0.6, 8), cand("c", 1.5, 8)}, scriptRand{}, 1},
		{"exactly 0.5 is not under", []Candidate{cand("a", 0.5, 8), cand("b", 0.75, 8)}, scriptRand{f: 0}, 0},
		{"ties: first of equal lows when dice say keep", []Candidate{cand("a", 0.8, 8), cand("b", 0.6, 8), cand("c", 0.6, 8)}, scriptRand{n: 1}, 1},
		{"ties: later equal low when dice say switch", []Candidate{cand("a", 0.8, 8), cand("b", 0.6, 8), cand("c", 0.6, 8)}, scriptRand{n: 0}, 2},
		{"zero capacity everywhere falls back to lowest", []Candidate{cand("a", 0.2, 0), cand("b", 0.1, 0)}, scriptRand{}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NewLeastLoad(tt.rnd).Choose(t.Context(), &Request{}, tt.cands)
			if err != nil {
				t.Fatal(err)
			}
			if got.Index != tt.want {
				t.Fatalf("Choose = %d (%s), want %d (%s)", got.Index, tt.cands[got.Index].Backend.ID(), tt.want, tt.cands[tt.want].Backend.ID())
			}
		})
	}
}

// TestLeastLoadDistribution checks the shape of the random choices with a seeded source:
// weights follow free capacity, and ties at the lowest load are shared evenly.
func TestLeastLoadDistribution(t *testing.T) {
	const n = 20000
	rnd := rand.New(rand.NewPCG(1, 2))
	p := NewLeastLoad(rnd)
	count := func(cands []Candidate) []int {
		got := make([]int, len(cands))
		for range n {
			c, _ := p.Choose(t.Context(), &Request{}, cands)
			got[c.Index]++
		}
		return got
	}
	// Free capacity 6 : 5 : 0 (over threshold) → 6/11 : 5/11 : 0.
	got := count([]Candidate{cand("a", 0.25, 8), cand("b", 0.375, 8) /* free 5 */, cand("c", 0.9, 8)})
	wantA := 6.0 / 11.0
	if frac := float64(got[0]) / n; math.Abs(frac-wantA) > 0.02 {
		t.Errorf("share of a = %.3f, want %.3f ± 0.02 (counts %v)", frac, wantA, got)
	}
	if got[2] != 0 {
		t.Errorf("over-threshold backend chosen %d times, want 0", got[2])
	}
	// Three-way tie at the lowest load: each about a third.
	got = count([]Candidate{cand("a", 0.7, 8), cand("b", 0.7, 8), cand("c", 0.9, 8), cand("d", 0.7, 8)})
	for _, i := range []int{0, 1, 3} {
		if frac := float64(got[i]) / n; math.Abs(frac-1.0/3) > 0.02 {
			t.Errorf("tie share of %d = %.3f, want 0.333 ± 0.02 (counts %v)", i, frac, got)
		}
	}
	if got[2] != 0 {
		t.Errorf("higher-load backend chosen %d times in a tie, want 0", got[2])
	}
}

func TestRoundRobinAndRandom(t *testing.T) {
	cands := []Candidate{cand("a", 0.9, 8), cand("b", 0, 8), cand("c", 0.5, 8)}
	rr := &RoundRobin{}
	for i := range 7 {
		c, _ := rr.Choose(t.Context(), &Request{}, cands)
		if c.Index != i%3 {
			t.Fatalf("round robin call %d = %d, want %d", i, c.Index, i%3)
		}
	}
	seen := map[int]int{}
	rnd := NewRandom(rand.New(rand.NewPCG(3, 4)))
	for range 3000 {
		c, _ := rnd.Choose(t.Context(), &Request{}, cands)
		seen[c.Index]++
	}
	for i := range cands {
		if seen[i] < 800 {
			t.Errorf("random chose %d only %d of 3000 times (%v)", i, seen[i], seen)
		}
	}
	for _, name := range policyNames() {
		p, err := newPolicy(Config{Policy: name}, nil, nil, nil)
		if err != nil || p.Name() != name {
			t.Errorf("newPolicy(%q) = %v, %v", name, p, err)
		}
	}
	if _, err := newPolicy(Config{Policy: "nope"}, nil, nil, nil); err == nil {
		t.Error("newPolicy(nope) succeeded")
	}
}

// TestBurstBetweenScrapesSpreads: twelve picks between two scrapes (the scrape still says
// every backend is idle) end up 4/4/4 on three backends of capacity 4, because each pick
// counts at once in the load of its backend.
func TestBurstBetweenScrapesSpreads(t *testing.T) {
	fakes := []*fakeVLLM{newFakeVLLM(t, "m"), newFakeVLLM(t, "m"), newFakeVLLM(t, "m")}
	cfg := fastConfig(fakes[0].URL, fakes[1].URL, fakes[2].URL)
	for i := range cfg.Backends {
		cfg.Backends[i].Capacity = 4
	}
	for seed := range uint64(20) {
		r, _ := newIdleRouter(t, cfg, WithRand(rand.New(rand.NewPCG(seed, 7))))
		for _, b := range r.Backends() {
			r.scrapeOne(t.Context(), b) // running 0, waiting 0, fresh
		}
		count := map[string]int{}
		for range 12 {
			pk, err := r.Pick(t.Context(), &Request{Model: "m"})
			if err != nil {
				t.Fatal(err)
			}
			count[pk.Backend.ID()]++
			defer pk.Done(Outcome{Status: 200})
		}
		for _, f := range fakes {
			if count[f.URL] != 4 {
				t.Fatalf("seed %d: burst split %v, want 4 each", seed, count)
			}
		}
		r.Stop()
	}
}
