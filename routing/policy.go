package routing

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
)

// Policy chooses one backend among the candidates for a request. The Router calls Choose
// with at least one candidate: the healthy, non-excluded backends serving the request's
// model, in pool order. Choose must be safe for concurrent use and must not block on slow
// I/O (it runs on the request path; ctx is the request's context).
//
// A new policy is a new type in its own file plus a case in newPolicy (or a ScorerPolicy
// combining Scorers, or a value passed with WithPolicy); the proxy never changes when one is
// added.
type Policy interface {
	// Name is the policy's Config.Policy name.
	Name() string
	// Choose returns the index into cands of the chosen backend.
	Choose(ctx context.Context, req *Request, cands []Candidate) (Choice, error)
}

// BackendForgetter is implemented by policies that keep per-backend state; the Router calls
// BackendRemoved when a backend leaves the pool.
type BackendForgetter interface {
	BackendRemoved(id string)
}

// Choice is a Policy's decision.
type Choice struct {
	// Index of the chosen candidate.
	Index int
	// UncachedTokens is the policy's estimate of the prompt tokens the chosen backend must
	// prefill (not in its prefix cache). Zero means "the whole prompt" (no estimate).
	UncachedTokens int
}

// Candidate is a snapshot of one backend taken for a single Pick. Counts are this
// replica's view at snapshot time.
type Candidate struct {
	// Backend is the backend itself; policies use its ID.
	Backend *Backend
	// Load is the load score: (running + 0.5*waiting)/capacity from the latest scrape,
	// corrected by in-flight requests (see Router.Pick); 0 = idle, 1 = at capacity.
	Load float64
	// InFlight counts requests in flight to the backend from all proxy replicas, all classes.
	InFlight int64
	// OwnInFlight counts this replica's requests in flight to the backend, all classes.
	OwnInFlight int64
	// InFlightTokens estimates the uncached prompt tokens of this replica's in-flight
	// requests to the backend.
	InFlightTokens int64
	// Capacity is the configured concurrent-request capacity.
	Capacity int
	// Running and Waiting are the latest scraped gauges, summed over engines.
	Running, Waiting float64
	// KVCacheUsage is the latest scraped KV cache usage (0..1), averaged over engines.
	KVCacheUsage float64
	// PrefixCacheHitRate is the engine-reported prefix cache hit rate (0..1) between the
	// last two scrapes.
	PrefixCacheHitRate float64
	// BlockSize and NumGPUBlocks come from vllm:cache_config_info (0 when unknown).
	BlockSize, NumGPUBlocks int
	// MetricsStale is true when the last StaleAfter scrapes failed; Load then comes from
	// in-flight counts alone.
	MetricsStale bool
	// Prefills counts the prompts this replica sent to the backend that are still being
	// prefilled: streamed requests awaiting their first byte, plus one while the others
	// (batch lines) are within their estimated prefill time.
	Prefills int
	// Crowded is set when another candidate, at most Config.PrefillSpread more loaded than
	// the least loaded, has fewer Prefills: load-based choices pass over this one.
	Crowded bool
}

// Rand is the randomness the built-in policies use. math/rand/v2's *rand.Rand satisfies it
// (but is not safe for concurrent use).
type Rand interface {
	Float64() float64
	IntN(n int) int
}

// globalRand uses math/rand/v2's goroutine-safe top-level functions.
type globalRand struct{}

func (globalRand) Float64() float64 { return rand.Float64() } // #nosec G404 -- load spreading (random pick, power of two choices), not a secret
func (globalRand) IntN(n int) int   { return rand.IntN(n) }   // #nosec G404 -- load spreading (random pick, power of two choices), not a secret

// PolicyNames lists the Config.Policy values New accepts, for cmd's config validation.
func PolicyNames() []string { return policyNames() }

// policyNames lists the names newPolicy knows.
func policyNames() []string {
	return []string{PolicyCacheAware, PolicyLeastLoad, PolicyRoundRobin, PolicyRandom, PolicyCHWBL}
}

func knownPolicy(name string) bool { return slices.Contains(policyNames(), name) }

// newPolicy builds the named built-in policy. idx is the prefix index of cache_aware (nil:
// its local one); m receives the prefix-aware policies' metrics.
func newPolicy(cfg Config, rnd Rand, idx PrefixIndex, m *PolicyMetrics) (Policy, error) {
	switch name := cfg.Policy; name {
	case PolicyCacheAware:
		return NewCacheAware(cfg.CacheAware, idx, rnd, m)
	case PolicyCHWBL:
		return NewCHWBL(cfg.CHWBL, rnd, m)
	case PolicyLeastLoad:
		return NewLeastLoad(rnd), nil
	case PolicyRoundRobin:
		return &RoundRobin{}, nil
	case PolicyRandom:
		return NewRandom(rnd), nil
	default:
		return nil, fmt.Errorf("%w: policy %q is unknown", ErrInvalidConfig, name)
	}
}
