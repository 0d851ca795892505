package routing

import (
	"context"
	"sync"
	"time"
)

// LoadShare counts in-flight requests per backend and class across every proxy replica.
// The Router calls Add(+1) when it hands out a Pick and Add(-1) when the Pick is done, and
// InFlight when it scores candidates. The interface uses plain strings so package state can
// implement it without importing routing.
//
// Implementations must be safe for concurrent use, and Add and InFlight must not block on
// I/O (a shared implementation batches writes and serves reads from a local cache).
type LoadShare interface {
	// Add adds delta to the in-flight count of (backend, class).
	Add(backend, class string, delta int64)
	// InFlight returns the in-flight count of (backend, class) summed over all replicas.
	InFlight(backend, class string) int64
	// Forget drops the counts of a backend that left the pool.
	Forget(backend string)
}

// ScrapeCoordinator lets proxy replicas share /metrics scrapes so that N replicas do not
// scrape every backend N times. Each interval a replica asks Claim; the winner scrapes and
// Publishes the encoded result, the others read Latest. The payload is opaque to the
// coordinator. Implementations must be safe for concurrent use.
type ScrapeCoordinator interface {
	// Claim reports whether this replica should scrape backend now; a claim lasts ttl.
	Claim(ctx context.Context, backend string, ttl time.Duration) (bool, error)
	// Publish stores this replica's scrape result for backend, kept for ttl.
	Publish(ctx context.Context, backend string, payload []byte, ttl time.Duration) error
	// Latest returns the newest published result for backend, or nil when there is none.
	Latest(ctx context.Context, backend string) ([]byte, error)
}

// LocalLoadShare is the in-process LoadShare: the counts of this replica only.
// The zero value is ready to use; it is safe for concurrent use.
type LocalLoadShare struct {
	mu     sync.Mutex
	counts map[string]map[string]int64
}

var _ LoadShare = (*LocalLoadShare)(nil)

// Add implements LoadShare.
func (s *LocalLoadShare) Add(backend, class string, delta int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.counts == nil {
		s.counts = map[string]map[string]int64{}
	}
	m := s.counts[backend]
	if m == nil {
		m = map[string]int64{}
		s.counts[backend] = m
	}
	m[class] += delta
}

// InFlight implements LoadShare.
func (s *LocalLoadShare) InFlight(backend, class string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[backend][class]
}

// Forget implements LoadShare.
func (s *LocalLoadShare) Forget(backend string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.counts, backend)
}

// LocalScrapeCoordinator is the single-replica ScrapeCoordinator: this replica always
// scrapes and nothing is shared. It is stateless and safe for concurrent use.
type LocalScrapeCoordinator struct{}

var _ ScrapeCoordinator = LocalScrapeCoordinator{}

// Claim always returns true.
func (LocalScrapeCoordinator) Claim(context.Context, string, time.Duration) (bool, error) {
	return true, nil
}

// Publish does nothing.
func (LocalScrapeCoordinator) Publish(context.Context, string, []byte, time.Duration) error {
	return nil
}

// Latest always returns nil.
func (LocalScrapeCoordinator) Latest(context.Context, string) ([]byte, error) { return nil, nil }

// Option customizes a Router beyond its Config.
type Option func(*options)

type options struct {
	share   LoadShare
	scrapes ScrapeCoordinator
	policy  Policy
	prefix  PrefixIndex
	removed func(id string)
	now     func() time.Time
	rnd     Rand
}

// WithLoadShare shares in-flight counts across replicas. By default only this replica's
// requests are counted (the router's own counters, equivalent to a LocalLoadShare).
func WithLoadShare(s LoadShare) Option { return func(o *options) { o.share = s } }

// WithScrapeCoordinator shares scrapes across replicas (default: LocalScrapeCoordinator).
func WithScrapeCoordinator(c ScrapeCoordinator) Option { return func(o *options) { o.scrapes = c } }

// WithPrefixIndex shares prefix ownership across replicas for the cache_aware policy
// (cmd passes state.Store.Prefix()). By default, or with nil, cache_aware keeps a
// LocalPrefixIndex of this replica's own decisions.
func WithPrefixIndex(p PrefixIndex) Option { return func(o *options) { o.prefix = p } }

// WithBackendRemoved registers fn to be called with a backend's ID when Update removes it
// from the pool, after the router has dropped the backend's own series and shared counts
// (for example so the proxy can delete its per-backend series). fn runs under Update's
// lock: it must not call Update.
func WithBackendRemoved(fn func(id string)) Option { return func(o *options) { o.removed = fn } }

// WithPolicy overrides Config.Policy with a ready-made Policy.
func WithPolicy(p Policy) Option { return func(o *options) { o.policy = p } }

// WithClock replaces time.Now for metrics ages and back-off schedules (tests).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithRand replaces the random source of the built-in policies (tests). r must be safe for
// concurrent use if the Router is used concurrently.
func WithRand(r Rand) Option { return func(o *options) { o.rnd = r } }
