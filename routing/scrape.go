package routing

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// maxMetricsBytes bounds a /metrics page.
const maxMetricsBytes = 16 << 20

// sharedScrape is the payload exchanged through a ScrapeCoordinator.
type sharedScrape struct {
	At      time.Time     `json:"at"`
	Metrics EngineMetrics `json:"metrics"`
}

// scrapeDue starts a scrape (on wg) of every backend that has none in progress, and returns
// without waiting: a hanging backend delays nobody else's scrapes. Each scrape is bounded
// by ScrapeTimeout.
func (r *Router) scrapeDue(ctx context.Context, wg *sync.WaitGroup) {
	for _, b := range r.pool.Load().backends {
		if !b.scraping.CompareAndSwap(false, true) {
			continue
		}
		wg.Go(func() {
			defer b.scraping.Store(false)
			r.scrapeOne(ctx, b)
		})
	}
}

// scrapeOne refreshes one backend's metrics: scraped here when this replica holds the claim,
// otherwise read from the coordinator. No fresh data counts as a missed scrape.
func (r *Router) scrapeOne(parent context.Context, b *Backend) {
	ctx, cancel := context.WithTimeout(parent, r.cfg.ScrapeTimeout)
	defer cancel()
	// The lease outlives one interval so jitter between the holder's ticks does not hand it
	// over; a dead holder is replaced within two intervals, before metrics go stale.
	mine, err := r.scrapes.Claim(ctx, b.id, 2*r.cfg.ScrapeInterval)
	if err != nil {
		r.log.LogAttrs(ctx, slogDebug, "scrape claim failed", attrBackend(b.id), errAttr(err))
		mine = true // scraping twice beats not scraping
	}
	if !mine {
		r.readShared(ctx, b)
		return
	}
	start := time.Now()
	em, err := r.fetchMetrics(ctx, b)
	elapsed := time.Since(start)
	if parent.Err() != nil {
		return // shutting down: say nothing about the backend
	}
	at := r.now()
	if err != nil {
		r.scrapeFailed(ctx, b, err)
		return
	}
	b.mu.Lock()
	if !b.removed {
		b.m.scrapeDuration.Observe(elapsed.Seconds())
	}
	b.mu.Unlock()
	r.applyScrape(ctx, b, em, at)
	if payload, err := json.Marshal(sharedScrape{At: at, Metrics: em}); err == nil {
		if err := r.scrapes.Publish(ctx, b.id, payload, time.Duration(r.cfg.StaleAfter)*r.cfg.ScrapeInterval); err != nil {
			r.log.LogAttrs(ctx, slogDebug, "publishing scrape failed", attrBackend(b.id), errAttr(err))
		}
	}
}

// readShared takes another replica's scrape of b when it is newer than what b has. A
// payload already applied is still good until it is StaleAfter intervals old (the holder
// publishes once per interval, and this replica's ticks are not aligned with its); only a
// missing, unreadable or older payload counts as a missed scrape.
func (r *Router) readShared(ctx context.Context, b *Backend) {
	payload, err := r.scrapes.Latest(ctx, b.id)
	if err != nil {
		r.scrapeFailed(ctx, b, fmt.Errorf("reading shared scrape of %s: %w", b.id, err))
		return
	}
	if payload == nil {
		r.scrapeFailed(ctx, b, fmt.Errorf("no shared scrape of %s", b.id))
		return
	}
	var s sharedScrape
	if err := json.Unmarshal(payload, &s); err != nil {
		r.scrapeFailed(ctx, b, fmt.Errorf("decoding shared scrape of %s: %w", b.id, err))
		return
	}
	b.mu.Lock()
	newer := s.At.After(b.scrapedAt)
	b.mu.Unlock()
	switch {
	case newer:
		r.applyScrape(ctx, b, s.Metrics, s.At)
	case r.now().Sub(s.At) > time.Duration(r.cfg.StaleAfter)*r.cfg.ScrapeInterval:
		r.scrapeFailed(ctx, b, fmt.Errorf("shared scrape of %s is too old", b.id))
	}
}

func (r *Router) fetchMetrics(ctx context.Context, b *Backend) (EngineMetrics, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.id+"/metrics", nil)
	if err != nil {
		return EngineMetrics{}, fmt.Errorf("building metrics request for %s: %w", b.id, err)
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := r.client.Do(req) //nolint:bodyclose // drainClose below closes it
	if err != nil {
		return EngineMetrics{}, fmt.Errorf("scraping %s/metrics: %w", b.id, err)
	}
	defer drainClose(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return EngineMetrics{}, fmt.Errorf("scraping %s/metrics: status %d", b.id, resp.StatusCode)
	}
	em, err := ParseMetrics(io.LimitReader(resp.Body, maxMetricsBytes))
	if err != nil {
		return EngineMetrics{}, fmt.Errorf("scraping %s/metrics: %w", b.id, err)
	}
	return em, nil
}

// applyScrape stores fresh metrics: the since-scrape correction restarts, the prefix hit
// rate is Δhits/Δqueries against the previous scrape.
func (r *Router) applyScrape(ctx context.Context, b *Backend, em EngineMetrics, at time.Time) {
	em = em.sanitized()
	b.mu.Lock()
	wasStale := b.hasMetrics && b.missed >= r.cfg.StaleAfter
	switch {
	case em.HasPrefixCounters && b.hasPrev:
		dq, dh := em.PrefixQueries-b.prevQ, em.PrefixHits-b.prevH
		if dq > 0 && dh >= 0 { // dq < 0: counter reset; dq == 0: no traffic, keep the last rate
			b.hitRate = min(1, dh/dq)
		}
	case !em.HasPrefixCounters && em.HasPrefixHitRate:
		b.hitRate = em.PrefixHitRate
	}
	b.prevQ, b.prevH, b.hasPrev = em.PrefixQueries, em.PrefixHits, em.HasPrefixCounters
	b.em, b.hasMetrics, b.scrapedAt, b.missed = em, true, at, 0
	b.gen++
	b.sinceScrape = 0
	r.updateLoadGaugeLocked(b)
	if !b.removed {
		b.m.stale.Set(0)
	}
	b.mu.Unlock()
	if wasStale {
		r.log.LogAttrs(ctx, slogInfo, "backend metrics fresh again", attrBackend(b.id))
	}
}

// scrapeFailed counts a missed scrape; the StaleAfter-th in a row is logged once at Warn,
// every miss at Debug, so a failing backend cannot flood the log.
func (r *Router) scrapeFailed(ctx context.Context, b *Backend, err error) {
	b.mu.Lock()
	b.missed++
	nowStale := b.missed == r.cfg.StaleAfter
	if !b.removed {
		b.m.scrapeErrors.Inc()
		if b.staleLocked(r.cfg.StaleAfter) {
			b.m.stale.Set(1)
		}
	}
	r.updateLoadGaugeLocked(b)
	missed := b.missed
	b.mu.Unlock()
	r.log.LogAttrs(ctx, slogDebug, "scrape failed", attrBackend(b.id), errAttr(err), intAttr("missed", missed))
	if nowStale {
		r.log.LogAttrs(ctx, slogWarn, "backend metrics stale, using in-flight counts",
			attrBackend(b.id), errAttr(err), intAttr("missed", missed))
	}
}

// updateLoadGaugeLocked refreshes the load gauge from the current state.
func (r *Router) updateLoadGaugeLocked(b *Backend) {
	if b.removed {
		return
	}
	c := b.candidateLocked(r.sharedInFlight(b), r.cfg.StaleAfter)
	b.m.load.Set(c.Load)
}

// sanitized clamps values a broken exporter (or a corrupt shared payload) could send, so
// that no load score goes negative and no ratio leaves [0,1].
func (m EngineMetrics) sanitized() EngineMetrics {
	m.Running, m.Waiting = max(0, m.Running), max(0, m.Waiting)
	m.KVCacheUsage = min(1, max(0, m.KVCacheUsage))
	m.PrefixHitRate = min(1, max(0, m.PrefixHitRate))
	m.PrefixQueries, m.PrefixHits = max(0, m.PrefixQueries), max(0, m.PrefixHits)
	m.BlockSize, m.NumGPUBlocks, m.Engines = max(0, m.BlockSize), max(0, m.NumGPUBlocks), max(1, m.Engines)
	return m
}
