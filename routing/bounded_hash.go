package routing

import (
	"math"

	"github.com/cespare/xxhash/v2"
)

// DefaultLoadFactor is the bound of consistent hashing with bounded load: a backend takes
// a request only while its load, this request included, stays within 1.25 times its
// capacity-weighted share of the total (KubeAI's meanLoadPercentage 125).
const DefaultLoadFactor = 1.25

// boundedHash places a key by consistent hashing with bounded load (Mirrokni, Thorup and
// Zadimoghaddam). The hash is rendezvous (highest random weight) hashing weighted by
// capacity: every candidate gets a score from hash(key, backend ID), and the key goes to
// the highest-scoring candidate whose load stays within the bound. Rendezvous hashing needs
// no ring to build or cache, so every replica computes the same order from the same key
// and candidates without shared state, and a backend joining or leaving moves only the
// keys it wins or held.
//
// Load is counted in requests, Load×Capacity (the load score already folds in scraped
// running/waiting and in-flight requests over all replicas). Candidate i is within the
// bound when load_i + 1 ≤ ceil(factor × (Σload + 1) × cap_i/Σcap). When no candidate is
// (rounding with many idle backends), the lowest relative load wins, ties by hash order.
// A non-nil eligible restricts the choice further (the bound still counts every
// candidate's load). It returns the chosen index and whether the first choice was taken
// (not overflowed).
func boundedHash(key uint64, cands []Candidate, factor float64, eligible func(Candidate) bool) (idx int, first bool) {
	total, capSum := 1.0, 0.0
	for _, c := range cands {
		total += max(c.Load, 0) * float64(capOf(c))
		capSum += float64(capOf(c))
	}
	best, top := -1, -1
	bestScore, topScore := math.Inf(-1), math.Inf(-1)
	fallback, fallbackLoad, fallbackScore := -1, math.Inf(1), math.Inf(-1)
	for i, c := range cands {
		s := hrwScore(key, c.Backend.ID(), capOf(c))
		if s > topScore {
			top, topScore = i, s
		}
		cp := float64(capOf(c))
		load := max(c.Load, 0) * cp
		bound := math.Ceil(factor * total * cp / capSum)
		if load+1 <= bound+loadEpsilon && s > bestScore && (eligible == nil || eligible(c)) {
			best, bestScore = i, s
		}
		if rel := max(c.Load, 0); rel < fallbackLoad-loadEpsilon || (rel <= fallbackLoad+loadEpsilon && s > fallbackScore) {
			fallback, fallbackLoad, fallbackScore = i, rel, s
		}
	}
	if best < 0 {
		return fallback, fallback == top
	}
	return best, best == top
}

// capOf is a candidate's capacity as a weight (at least 1).
func capOf(c Candidate) int { return max(c.Capacity, 1) }

// hrwScore is the weighted rendezvous score of (key, backend): −w/ln(u) for u uniform in
// (0,1) from the hash, which gives each backend a share of keys proportional to w.
func hrwScore(key uint64, backend string, weight int) float64 {
	var d xxhash.Digest
	d.ResetWithSeed(key)
	_, _ = d.WriteString(backend)
	h := d.Sum64()
	u := (float64(h>>11) + 0.5) / (1 << 53) // in (0,1)
	return -float64(weight) / math.Log(u)
}
