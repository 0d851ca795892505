package routing

import (
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Backend is one vLLM server in the pool. Its identity (ID, URL) never changes; its
// configuration, discovered models, scraped metrics, health and in-flight counts are
// guarded by an internal mutex. All methods are safe for concurrent use. A Backend stays
// valid after it leaves the pool, so outstanding Picks on it can still be Done.
type Backend struct {
	id  string
	url *url.URL
	m   *backendMetrics

	// One scrape and one probe at a time per backend (the loops skip a busy backend).
	scraping atomic.Bool
	probing  atomic.Bool

	mu  sync.Mutex
	cfg BackendConfig

	// Discovery.
	fetched   []Model // from GET /v1/models, last successful read
	modelsErr string

	// Scraping.
	em          EngineMetrics
	hasMetrics  bool
	scrapedAt   time.Time // when the latest successful scrape was taken
	missed      int       // consecutive missed scrapes
	gen         uint64    // bumped on every fresh scrape
	sinceScrape int64     // in-flight requests dispatched since the latest scrape
	prevQ       float64   // prefix counters of the previous scrape
	prevH       float64
	hasPrev     bool
	hitRate     float64

	// Health.
	healthy   bool
	fails     int // consecutive passive failures
	backoff   time.Duration
	nextProbe time.Time
	lastErr   string
	// Flap damping: when the backend was last restored and the back-off it had then.
	restoredAt  time.Time
	lastBackoff time.Duration

	// Prompts this replica sent here that are being prefilled (prefill.go): streamed
	// requests awaiting their first byte, and when the others' estimated prefills end.
	prefills         int64
	batchPrefillDone time.Time

	// This replica's in-flight requests.
	inFlight       [len(classes)]int64
	inFlightTokens int64

	prio       priorityState // detected scheduling policy, when cfg.PriorityScheduling is nil
	prioProbes int           // detection probes sent

	removed bool
}

func newBackend(id string, cfg BackendConfig, m *backendMetrics) *Backend {
	u, _ := url.Parse(id) // id comes from normalizeURL, so it parses
	b := &Backend{id: id, url: u, m: m, cfg: cfg, healthy: true}
	m.up.Set(1)
	return b
}

// ID is the backend's canonical URL string; it identifies the backend in Request.Exclude,
// LoadShare and metrics labels.
func (b *Backend) ID() string { return b.id }

// URL is the backend's base URL. It is shared: callers must not modify it.
func (b *Backend) URL() *url.URL { return b.url }

// PriorityScheduling reports whether the backend accepts a non-zero "priority" field: as
// configured, else as detected (see priority.go); false while unknown.
func (b *Backend) PriorityScheduling() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cfg.PriorityScheduling != nil {
		return *b.cfg.PriorityScheduling
	}
	return b.prio == priorityOn
}

// Capacity is the configured concurrent-request capacity.
func (b *Backend) Capacity() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cfg.Capacity
}

// Healthy reports whether the backend is in the pool's healthy set.
func (b *Backend) Healthy() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.healthy
}

// servedLocked returns the model ids the backend serves: fetched ones, then static ones.
func (b *Backend) servedLocked() []string {
	ids := make([]string, 0, len(b.fetched)+len(b.cfg.Models))
	for _, m := range b.fetched {
		ids = append(ids, m.ID)
	}
	for _, s := range b.cfg.Models {
		if !slices.Contains(ids, s) {
			ids = append(ids, s)
		}
	}
	return ids
}

// staleLocked reports whether load must come from in-flight counts alone.
func (b *Backend) staleLocked(staleAfter int) bool {
	return !b.hasMetrics || b.missed >= staleAfter
}

// loadScore is the least_load score. Fresh metrics: (running + waiting/2 + dispatched
// since the scrape)/capacity, but never below inFlight/capacity because the scrape lags
// reality (vLLM #49538) and other replicas' requests show only in the shared in-flight
// count. Stale metrics: inFlight/capacity.
func loadScore(running, waiting float64, sinceScrape, inFlight int64, capacity int, stale bool) float64 {
	c := float64(max(capacity, 1))
	if stale {
		return float64(inFlight) / c
	}
	return max(running+waiting*0.5+float64(sinceScrape), float64(inFlight)) / c
}

// OwnInFlight is the requests of class this replica has in flight to the backend: its
// own count, without the other replicas' shares that BackendStats.InFlightByClass adds.
func (b *Backend) OwnInFlight(c Class) int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.inFlight[classIndex(c)]
}

// ownInFlightLocked is this replica's in-flight count to the backend, all classes.
func (b *Backend) ownInFlightLocked() int64 {
	var n int64
	for _, v := range b.inFlight {
		n += v
	}
	return n
}

// candidate snapshots the backend for one Pick. inFlight is the shared total.
func (b *Backend) candidateLocked(inFlight int64, staleAfter int) Candidate {
	stale := b.staleLocked(staleAfter)
	return Candidate{
		Backend:            b,
		Load:               loadScore(b.em.Running, b.em.Waiting, b.sinceScrape, inFlight, b.cfg.Capacity, stale),
		InFlight:           inFlight,
		OwnInFlight:        b.ownInFlightLocked(),
		InFlightTokens:     b.inFlightTokens,
		Capacity:           b.cfg.Capacity,
		Running:            b.em.Running,
		Waiting:            b.em.Waiting,
		KVCacheUsage:       b.em.KVCacheUsage,
		PrefixCacheHitRate: b.hitRate,
		BlockSize:          b.em.BlockSize,
		NumGPUBlocks:       b.em.NumGPUBlocks,
		MetricsStale:       stale,
	}
}
