package routing

import (
	"context"
	"errors"
	"testing"
)

// fixedScorer returns preset scores.
type fixedScorer []float64

func (fixedScorer) Name() string { return "fixed" }
func (f fixedScorer) Score(_ context.Context, _ *Request, _ []Candidate, out []float64) error {
	copy(out, f)
	return nil
}

type failingScorer struct{}

func (failingScorer) Name() string { return "failing" }
func (failingScorer) Score(context.Context, *Request, []Candidate, []float64) error {
	return errors.New("index unavailable")
}

func TestScorerPolicy(t *testing.T) {
	cands := []Candidate{cand("a", 0.9, 8), cand("b", 0.2, 8), cand("c", 0.2, 8)}
	cands[0].KVCacheUsage, cands[1].KVCacheUsage, cands[2].KVCacheUsage = 0.1, 0.9, 0.5
	nan := 0.0
	nan /= nan
	tests := []struct {
		name    string
		scorers []WeightedScorer
		rnd     scriptRand
		want    int
	}{
		{"load alone prefers the idle ones, tie kept", []WeightedScorer{{LoadScorer{}, 1}}, scriptRand{n: 1}, 1},
		{"load alone, tie switched", []WeightedScorer{{LoadScorer{}, 1}}, scriptRand{n: 0}, 2},
		// a: 0.1*1 + 0.9*3 = 2.8; b: 0.8 + 0.3 = 1.1; c: 0.8 + 1.5 = 2.3
		{"kv weighted higher", []WeightedScorer{{LoadScorer{}, 1}, {KVCacheScorer{}, 3}}, scriptRand{}, 0},
		{"scores clamped and NaN ignored", []WeightedScorer{{fixedScorer{5, nan, 0.9}, 1}}, scriptRand{}, 0},
		{"negative clamps to zero", []WeightedScorer{{fixedScorer{-3, 0.1, 0}, 1}}, scriptRand{}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewScorerPolicy("test", tt.rnd, tt.scorers...)
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.Choose(t.Context(), &Request{}, cands)
			if err != nil || got.Index != tt.want {
				t.Fatalf("Choose = %d, %v; want %d", got.Index, err, tt.want)
			}
		})
	}
	p, _ := NewScorerPolicy("test", nil, WeightedScorer{failingScorer{}, 1})
	if _, err := p.Choose(t.Context(), &Request{}, cands); err == nil {
		t.Fatal("a failing scorer did not fail the choice")
	}
	if _, err := NewScorerPolicy("x", nil); err == nil {
		t.Fatal("no scorers accepted")
	}
	if _, err := NewScorerPolicy("x", nil, WeightedScorer{LoadScorer{}, 0}); err == nil {
		t.Fatal("zero weight accepted")
	}
}

// TestPolicyErrorSurfacesFromPick: a policy error reaches the caller wrapped, and nothing is
// counted in flight.
func TestPolicyErrorSurfacesFromPick(t *testing.T) {
	p, _ := NewScorerPolicy("broken", nil, WeightedScorer{failingScorer{}, 1})
	cfg := Config{Backends: []BackendConfig{{URL: "http://127.0.0.1:1", Models: []string{"m"}}}}
	r, err := New(cfg, nil, nil, WithPolicy(p))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Pick(t.Context(), &Request{Model: "m"}); err == nil {
		t.Fatal("Pick succeeded with a failing policy")
	}
	if s := r.LoadStats()[0]; s.InFlight != 0 {
		t.Fatalf("in-flight %d after a failed Pick", s.InFlight)
	}
}
