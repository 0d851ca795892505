package routing

import (
	"context"
	"sync/atomic"
)

// LeastLoadThreshold is the load under which least_load spreads requests at random.
const LeastLoadThreshold = 0.5

// LeastLoad is the least_load policy: among candidates under LeastLoadThreshold, choose at
// random weighted by free capacity (capacity × (1 − load)); when none is under it, choose
// the lowest load, breaking ties at random. It is safe for concurrent use if its Rand is.
type LeastLoad struct {
	rnd Rand
}

var _ Policy = (*LeastLoad)(nil)

// NewLeastLoad returns the least_load policy; a nil rnd uses math/rand/v2.
func NewLeastLoad(rnd Rand) *LeastLoad {
	if rnd == nil {
		rnd = globalRand{}
	}
	return &LeastLoad{rnd: rnd}
}

// Name implements Policy.
func (*LeastLoad) Name() string { return PolicyLeastLoad }

// Choose implements Policy. Candidates marked Crowded (prefill spreading) are passed over
// while another is not.
func (p *LeastLoad) Choose(_ context.Context, _ *Request, all []Candidate) (Choice, error) {
	cands, index := uncrowded(all)
	i := p.choose(cands)
	return Choice{Index: original(index, i)}, nil
}

// choose is Choose over cands, returning the index into cands.
func (p *LeastLoad) choose(cands []Candidate) int {
	total := 0.0
	for _, c := range cands {
		if c.Load < LeastLoadThreshold {
			total += freeCapacity(c)
		}
	}
	if total > 0 {
		x := p.rnd.Float64() * total
		last := -1
		for i, c := range cands {
			if c.Load >= LeastLoadThreshold {
				continue
			}
			last = i
			if x -= freeCapacity(c); x < 0 {
				return i
			}
		}
		return last // rounding left x at ~0
	}
	// Nobody under the threshold (or every one has zero capacity): lowest load wins.
	best, ties := 0, 0
	for i, c := range cands {
		switch {
		case c.Load < cands[best].Load-loadEpsilon:
			best, ties = i, 1
		case c.Load <= cands[best].Load+loadEpsilon:
			ties++
			// Reservoir sampling keeps a uniform choice among equal loads in one pass.
			if ties > 1 && p.rnd.IntN(ties) == 0 {
				best = i
			}
		}
	}
	return best
}

// loadEpsilon treats loads this close as equal.
const loadEpsilon = 1e-9

func freeCapacity(c Candidate) float64 {
	return max(0, float64(c.Capacity)*(1-c.Load))
}

// RoundRobin is the round_robin policy: candidates in turn, ignoring load. The zero value
// is ready to use and safe for concurrent use.
type RoundRobin struct {
	next atomic.Uint64
}

var _ Policy = (*RoundRobin)(nil)

// Name implements Policy.
func (*RoundRobin) Name() string { return PolicyRoundRobin }

// Choose implements Policy.
func (p *RoundRobin) Choose(_ context.Context, _ *Request, cands []Candidate) (Choice, error) {
	n := p.next.Add(1) - 1
	return Choice{Index: int(n % uint64(len(cands)))}, nil // #nosec G115 -- the remainder is below len(cands), so it fits in an int
}

// Random is the random policy: a uniform choice, ignoring load.
type Random struct {
	rnd Rand
}

var _ Policy = (*Random)(nil)

// NewRandom returns the random policy; a nil rnd uses math/rand/v2.
func NewRandom(rnd Rand) *Random {
	if rnd == nil {
		rnd = globalRand{}
	}
	return &Random{rnd: rnd}
}

// Name implements Policy.
func (*Random) Name() string { return PolicyRandom }

// Choose implements Policy.
func (p *Random) Choose(_ context.Context, _ *Request, cands []Candidate) (Choice, error) {
	return Choice{Index: p.rnd.IntN(len(cands))}, nil
}
