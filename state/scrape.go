package state

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrUnavailable is returned (wrapped) when an operation needs Redis and Redis is not
// reachable. Callers degrade to local behaviour.
var ErrUnavailable = errors.New("redis unavailable")

// ScrapeLeases lets proxy replicas share /metrics scrapes: one replica per backend holds a
// short lease and scrapes, publishes the result, and the others read it instead of
// scraping. It implements routing.ScrapeCoordinator; payloads are opaque bytes.
//
// While Redis is unreachable Claim always grants the lease, so every replica scrapes for
// itself. In memory mode there is one replica and the twin keeps the lease and the latest
// payload in process with the same expiry rules. Safe for concurrent use.
type ScrapeLeases struct {
	s *Store

	mu   sync.Mutex
	data map[string]scrapeData // memory twin only
	held map[string]bool       // backends whose lease this replica last got
}

type scrapeData struct {
	payload []byte
	until   time.Time
}

func newScrapeLeases(s *Store) *ScrapeLeases {
	return &ScrapeLeases{s: s, data: map[string]scrapeData{}, held: map[string]bool{}}
}

// Scrapes returns the store's scrape coordinator.
func (s *Store) Scrapes() *ScrapeLeases { return s.scrapes }

// Claim reports whether this replica should scrape backend now. The lease lasts ttl (or
// Config.ScrapeLeaseTTL when ttl is 0) and is renewed by each Claim of its holder, so the
// same replica keeps scraping while it lives. When Redis fails Claim returns true with the
// error, and without asking when Redis is known to be down: scraping twice beats not at all.
func (l *ScrapeLeases) Claim(ctx context.Context, backend string, ttl time.Duration) (bool, error) {
	if ttl <= 0 {
		ttl = l.s.cfg.ScrapeLeaseTTL
	}
	if l.s.rdb == nil {
		l.s.metrics.ScrapeClaims.WithLabelValues("mine").Inc()
		return true, nil // one replica: the lease is always ours
	}
	if !l.s.Connected() {
		l.s.metrics.ScrapeClaims.WithLabelValues("local").Inc()
		return true, nil
	}
	ok, err := l.s.scripts.scrapeClaim.Run(ctx, l.s.rdb, []string{scrapeLeaseKey(backend)},
		l.s.cfg.ReplicaID, max(ttl.Milliseconds(), 1)).Bool()
	if err != nil {
		l.s.health.observe(err)
		l.s.metrics.ScrapeClaims.WithLabelValues("local").Inc()
		return true, fmt.Errorf("claiming the scrape of %s: %w", backend, err)
	}
	l.mu.Lock()
	if ok {
		l.held[backend] = true
	} else {
		delete(l.held, backend)
	}
	l.mu.Unlock()
	if ok {
		l.s.metrics.ScrapeClaims.WithLabelValues("mine").Inc()
	} else {
		l.s.metrics.ScrapeClaims.WithLabelValues("shared").Inc()
	}
	return ok, nil
}

// Publish stores payload as the latest scrape of backend, kept for ttl (or
// Config.ScrapeSnapshotTTL when ttl is 0).
func (l *ScrapeLeases) Publish(ctx context.Context, backend string, payload []byte, ttl time.Duration) error {
	if ttl <= 0 {
		ttl = l.s.cfg.ScrapeSnapshotTTL
	}
	if l.s.rdb == nil {
		l.mu.Lock()
		l.data[backend] = scrapeData{payload: append([]byte(nil), payload...), until: time.Now().Add(ttl)}
		l.mu.Unlock()
		return nil
	}
	if !l.s.Connected() {
		return fmt.Errorf("publishing the scrape of %s: %w", backend, ErrUnavailable)
	}
	if err := l.s.rdb.Set(ctx, scrapeDataKey(backend), payload, ttl).Err(); err != nil {
		l.s.health.observe(err)
		return fmt.Errorf("publishing the scrape of %s: %w", backend, err)
	}
	return nil
}

// Latest returns the newest published payload for backend, or nil when there is none.
func (l *ScrapeLeases) Latest(ctx context.Context, backend string) ([]byte, error) {
	if l.s.rdb == nil {
		l.mu.Lock()
		defer l.mu.Unlock()
		d, ok := l.data[backend]
		if !ok || !time.Now().Before(d.until) {
			return nil, nil
		}
		return append([]byte(nil), d.payload...), nil
	}
	if !l.s.Connected() {
		return nil, fmt.Errorf("reading the shared scrape of %s: %w", backend, ErrUnavailable)
	}
	b, err := l.s.rdb.Get(ctx, scrapeDataKey(backend)).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		return nil, nil
	case err != nil:
		l.s.health.observe(err)
		return nil, fmt.Errorf("reading the shared scrape of %s: %w", backend, err)
	}
	return b, nil
}

// Forget drops a backend that left the pool from the memory twin; Redis keys expire.
func (l *ScrapeLeases) Forget(backend string) {
	l.mu.Lock()
	delete(l.data, backend)
	delete(l.held, backend)
	l.mu.Unlock()
}

// release gives up every lease this replica holds, so another replica takes over the
// scraping at its next Claim instead of after the lease runs out. Called by Store.Close.
func (l *ScrapeLeases) release(ctx context.Context) {
	l.mu.Lock()
	backends := make([]string, 0, len(l.held))
	for b := range l.held {
		backends = append(backends, b)
	}
	clear(l.held)
	l.mu.Unlock()
	if l.s.rdb == nil || len(backends) == 0 || !l.s.Connected() {
		return
	}
	// One call per lease (Run reloads a script Redis lost); a replica holds few leases.
	for _, b := range backends {
		if err := l.s.scripts.scrapeRelease.Run(ctx, l.s.rdb, []string{scrapeLeaseKey(b)}, l.s.cfg.ReplicaID).Err(); err != nil {
			l.s.log.DebugContext(ctx, "releasing a scrape lease failed", "backend", b, "error", err)
			return
		}
	}
}

// scrapeClaimSrc takes or renews the scrape lease of one backend.
//
// KEYS[1]  scrapeLeaseKey(backend): string, the holder's replica id, with a TTL
// ARGV[1]  replica id
// ARGV[2]  lease in ms
// Returns  1 when the caller holds the lease (taken or renewed), 0 when another replica does.
const scrapeClaimSrc = `
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not cur then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
`

// scrapeReleaseSrc gives up the scrape lease of one backend if the caller holds it.
//
// KEYS[1]  scrapeLeaseKey(backend)
// ARGV[1]  replica id
// Returns  1 when the lease was the caller's and is gone, else 0.
const scrapeReleaseSrc = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`
