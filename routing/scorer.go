package routing

import (
	"context"
	"errors"
	"fmt"
)

// Scorer rates every candidate for a request in [0,1] (1 = best), the llm-d style of
// policy building block. Score writes one value per candidate into out (len(out) ==
// len(cands)); values outside [0,1] are clamped. Implementations must be safe for
// concurrent use and must not block on slow I/O.
type Scorer interface {
	// Name identifies the scorer in errors.
	Name() string
	// Score fills out with one score per candidate.
	Score(ctx context.Context, req *Request, cands []Candidate, out []float64) error
}

// WeightedScorer is a Scorer and its weight in a ScorerPolicy.
type WeightedScorer struct {
	Scorer Scorer
	Weight float64
}

// ScorerPolicy is the one runner that combines scorers: each candidate's total is the
// weighted sum of its scores, the highest total wins, ties are broken at random. Safe for
// concurrent use if its scorers and Rand are.
type ScorerPolicy struct {
	name    string
	scorers []WeightedScorer
	rnd     Rand
}

var _ Policy = (*ScorerPolicy)(nil)

// NewScorerPolicy builds a policy named name from weighted scorers; a nil rnd uses
// math/rand/v2. Weights must be positive.
func NewScorerPolicy(name string, rnd Rand, scorers ...WeightedScorer) (*ScorerPolicy, error) {
	if len(scorers) == 0 {
		return nil, errors.New("scorer policy needs at least one scorer")
	}
	for _, s := range scorers {
		if s.Scorer == nil || !(s.Weight > 0) {
			return nil, fmt.Errorf("scorer policy %s: every scorer needs a positive weight", name)
		}
	}
	if rnd == nil {
		rnd = globalRand{}
	}
	return &ScorerPolicy{name: name, scorers: scorers, rnd: rnd}, nil
}

// Name implements Policy.
func (p *ScorerPolicy) Name() string { return p.name }

// Choose implements Policy.
func (p *ScorerPolicy) Choose(ctx context.Context, req *Request, cands []Candidate) (Choice, error) {
	total := make([]float64, len(cands))
	buf := make([]float64, len(cands))
	for _, ws := range p.scorers {
		clear(buf)
		if err := ws.Scorer.Score(ctx, req, cands, buf); err != nil {
			return Choice{}, fmt.Errorf("scorer %s: %w", ws.Scorer.Name(), err)
		}
		for i, v := range buf {
			if v != v { // NaN scores nothing
				v = 0
			}
			total[i] += ws.Weight * min(1, max(0, v))
		}
	}
	best, ties := 0, 0
	for i, v := range total {
		switch {
		case v > total[best]+loadEpsilon:
			best, ties = i, 1
		case v >= total[best]-loadEpsilon:
			ties++
			if ties > 1 && p.rnd.IntN(ties) == 0 {
				best = i
			}
		}
	}
	return Choice{Index: best}, nil
}

// LoadScorer scores 1 − load, clamped to [0,1]: idle backends score 1, full ones 0.
type LoadScorer struct{}

var _ Scorer = LoadScorer{}

// Name implements Scorer.
func (LoadScorer) Name() string { return "load" }

// Score implements Scorer.
func (LoadScorer) Score(_ context.Context, _ *Request, cands []Candidate, out []float64) error {
	for i, c := range cands {
		out[i] = 1 - c.Load
	}
	return nil
}

// KVCacheScorer scores 1 − KV cache usage (llm-d's kv-cache-utilization-scorer). A backend
// with stale metrics scores 0.5, neither rewarded nor punished.
type KVCacheScorer struct{}

var _ Scorer = KVCacheScorer{}

// Name implements Scorer.
func (KVCacheScorer) Name() string { return "kv_cache" }

// Score implements Scorer.
func (KVCacheScorer) Score(_ context.Context, _ *Request, cands []Candidate, out []float64) error {
	for i, c := range cands {
		if c.MetricsStale {
			out[i] = 0.5
			continue
		}
		out[i] = 1 - c.KVCacheUsage
	}
	return nil
}
