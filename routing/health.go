package routing

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// Health is the per-backend health of the pool, as served on the proxy's GET /health.
type Health struct {
	// Backends lists every backend in pool order.
	Backends []BackendHealth `json:"backends"`
}

// Healthy reports whether at least one backend is healthy.
func (h Health) Healthy() bool {
	for _, b := range h.Backends {
		if b.Healthy {
			return true
		}
	}
	return false
}

// BackendHealth is one backend's health.
type BackendHealth struct {
	URL     string `json:"url"`     // backend ID
	Healthy bool   `json:"healthy"` // false while ejected
	// ConsecutiveFailures counts failed attempts since the last success.
	ConsecutiveFailures int `json:"consecutive_failures"`
	// NextProbeMS is the time to the next active probe, in milliseconds.
	NextProbeMS int64 `json:"next_probe_ms"`
	// LastError is the last probe or attempt error, when unhealthy.
	LastError string `json:"last_error,omitempty"`
}

// Health returns every backend's health, in pool order.
func (r *Router) Health() Health {
	now := r.now()
	p := r.pool.Load()
	h := Health{Backends: make([]BackendHealth, 0, len(p.backends))}
	for _, b := range p.backends {
		b.mu.Lock()
		bh := BackendHealth{URL: b.id, Healthy: b.healthy, ConsecutiveFailures: b.fails,
			NextProbeMS: max(0, b.nextProbe.Sub(now).Milliseconds())}
		if !b.healthy {
			bh.LastError = b.lastErr
		}
		b.mu.Unlock()
		h.Backends = append(h.Backends, bh)
	}
	return h
}

// Healthy reports whether at least one backend is healthy.
func (r *Router) Healthy() bool {
	for _, b := range r.pool.Load().backends {
		if b.Healthy() {
			return true
		}
	}
	return false
}

// healthTick is how often the health loop looks for due probes: fine enough for the
// back-off schedule, never busier than every 10ms.
func (r *Router) healthTick() time.Duration {
	return max(10*time.Millisecond, min(r.cfg.HealthCheckInterval, r.cfg.EjectBackoffBase)/4)
}

// probeDue starts a probe (on wg) of every backend whose probe is due and that has none in
// progress, and returns without waiting: a hanging backend delays nobody else's probes.
func (r *Router) probeDue(ctx context.Context, wg *sync.WaitGroup) {
	now := r.now()
	for _, b := range r.pool.Load().backends {
		b.mu.Lock()
		due := !now.Before(b.nextProbe)
		b.mu.Unlock()
		if !due || !b.probing.CompareAndSwap(false, true) {
			continue
		}
		wg.Go(func() {
			defer b.probing.Store(false)
			r.probe(ctx, b)
		})
	}
}

// healthAll probes every due backend and waits for the probes (tests drive it by hand).
func (r *Router) healthAll(ctx context.Context) {
	var wg sync.WaitGroup
	r.probeDue(ctx, &wg)
	wg.Wait()
}

// probe runs one GET /health and applies the result: a healthy answer restores an ejected
// backend (and refreshes its models, as it does for a backend whose last model fetch
// failed), a failure ejects it or doubles its back-off.
func (r *Router) probe(ctx context.Context, b *Backend) {
	err := r.checkHealth(ctx, b)
	if ctx.Err() != nil {
		return // shutting down: say nothing about the backend
	}
	now := r.now()
	b.mu.Lock()
	if err == nil {
		restored := !b.healthy
		if restored {
			b.restoredAt, b.lastBackoff = now, b.backoff
		}
		b.healthy, b.fails, b.backoff, b.lastErr = true, 0, 0, ""
		b.nextProbe = now.Add(r.cfg.HealthCheckInterval)
		if !b.removed {
			b.m.up.Set(1)
		}
		// A healthy backend whose model list could not be read (e.g. it was still
		// starting when the proxy did) is asked again now, not at the next refresh.
		modelsMissing := b.modelsErr != ""
		b.mu.Unlock()
		if restored {
			r.log.LogAttrs(ctx, slogInfo, "backend restored", attrBackend(b.id))
		}
		if restored || modelsMissing {
			if r.refreshModels(ctx, b) {
				r.rebuild()
			}
		}
		return
	}
	b.lastErr = err.Error()
	if b.healthy {
		r.ejectLocked(ctx, b, "health probe failed", err)
	} else {
		b.backoff = min(2*b.backoff, r.cfg.EjectBackoffCap)
		b.nextProbe = now.Add(b.backoff)
		r.log.LogAttrs(ctx, slogDebug, "backend still unhealthy", attrBackend(b.id), errAttr(err),
			durAttr("retry_in", b.backoff))
	}
	b.mu.Unlock()
}

// ejectLocked takes b out of the healthy set and schedules its first re-probe. A backend
// that flaps (ejected again within EjectBackoffCap of being restored, e.g. /health says yes
// but requests fail) resumes its back-off where it left off, doubled, instead of at base.
func (r *Router) ejectLocked(ctx context.Context, b *Backend, why string, err error) {
	now := r.now()
	b.healthy = false
	b.backoff = r.cfg.EjectBackoffBase
	if !b.restoredAt.IsZero() && now.Sub(b.restoredAt) < r.cfg.EjectBackoffCap {
		b.backoff = max(b.backoff, min(2*b.lastBackoff, r.cfg.EjectBackoffCap))
	}
	b.nextProbe = now.Add(b.backoff)
	if !b.removed {
		b.m.up.Set(0)
		b.m.ejections.Inc()
	}
	r.log.LogAttrs(ctx, slogWarn, "backend ejected", attrBackend(b.id), reasonAttr(why), errAttr(err),
		durAttr("retry_in", b.backoff))
}

func (r *Router) checkHealth(ctx context.Context, b *Backend) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.ProbeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.id+"/health", nil)
	if err != nil {
		return fmt.Errorf("building health request for %s: %w", b.id, err)
	}
	resp, err := r.client.Do(req) //nolint:bodyclose // drainClose below closes it
	if err != nil {
		return fmt.Errorf("probing %s/health: %w", b.id, err)
	}
	drainClose(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("probing %s/health: status %d", b.id, resp.StatusCode)
	}
	return nil
}

// observe feeds one attempt's outcome into passive health: MaxFails consecutive failures
// eject; any non-failure response resets the count.
func (r *Router) observe(ctx context.Context, b *Backend, o Outcome) {
	fail := o.failure()
	if !fail && o.Status == 0 && o.Err == nil {
		return // nothing happened (e.g. the proxy gave up before sending)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !fail {
		b.fails = 0
		return
	}
	b.fails++
	if o.Err != nil {
		b.lastErr = o.Err.Error()
	} else {
		b.lastErr = fmt.Sprintf("status %d", o.Status)
	}
	if b.healthy && b.fails >= r.cfg.MaxFails {
		err := o.Err
		if err == nil {
			err = fmt.Errorf("status %d", o.Status)
		}
		r.ejectLocked(ctx, b, "consecutive failures", err)
	}
}
