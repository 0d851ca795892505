package routing

import (
	"context"
	"fmt"
	"sync/atomic"
)

// Pick is one backend handed out for one attempt. The caller must call Done exactly once
// when the attempt ends (later calls are ignored). Done works even after the backend has
// left the pool.
type Pick struct {
	// Backend is where to send the attempt.
	Backend *Backend
	// Model is the routed model: Request.Model, or the single served model when that was empty.
	Model string
	// Load is the backend's load score at pick time.
	Load float64

	r      *Router
	ctx    context.Context
	class  Class
	gen    uint64
	tokens int64
	shared bool // counted in the LoadShare
	done   atomic.Bool
	// prefilling is true from Sent until Prefilled (or Done) for a streamed request.
	prefilling atomic.Bool
}

// Pick chooses a backend for req among the healthy backends serving its model that are not
// in req.Exclude, using the configured policy. Errors: ErrNoModel (no model and several
// served), *UnknownModelError (no backend serves the model), ErrNoBackend (none of the
// backends serving it is healthy and not excluded), or the policy's error.
func (r *Router) Pick(ctx context.Context, req *Request) (*Pick, error) {
	p := r.pool.Load()
	model := req.Model
	if model == "" {
		if len(p.base) != 1 {
			return nil, ErrNoModel
		}
		model = p.base[0]
	}
	serving, ok := p.byModel[model]
	if !ok {
		return nil, &UnknownModelError{Model: model, Available: append([]string(nil), p.ids...)}
	}
	cands := make([]Candidate, 0, len(serving))
	now := r.now()
	for _, b := range serving {
		if req.excluded(b.id) {
			continue
		}
		b.mu.Lock()
		if b.healthy {
			counts := r.inFlightByClassLocked(b) // read once: the share may take a lock
			c := b.candidateLocked(sum(counts), r.cfg.StaleAfter)
			r.prefillViewLocked(b, &c, normalizeClass(req.Class), counts[classIndex(ClassBatch)], now)
			cands = append(cands, c)
		}
		b.mu.Unlock()
	}
	if len(cands) == 0 {
		return nil, fmt.Errorf("routing model %q: %w", model, ErrNoBackend)
	}
	markCrowded(cands, r.cfg.PrefillSpread)
	if req.Model != model || (req.LoRA == "" && p.lora[model]) {
		// Policies hash the routed model and adapter: fill them in on a copy.
		rc := *req
		rc.Model = model
		if rc.LoRA == "" && p.lora[model] {
			rc.LoRA = model
		}
		req = &rc
	}
	choice, err := r.policy.Choose(ctx, req, cands)
	if err != nil {
		return nil, fmt.Errorf("routing model %q with policy %s: %w", model, r.policy.Name(), err)
	}
	if choice.Index < 0 || choice.Index >= len(cands) {
		return nil, fmt.Errorf("routing model %q: policy %s chose index %d of %d", model, r.policy.Name(), choice.Index, len(cands))
	}
	c := cands[choice.Index]
	tokens := choice.UncachedTokens
	if tokens <= 0 {
		tokens = req.PromptTokens()
	}
	pk := &Pick{Backend: c.Backend, Model: model, Load: c.Load, r: r, ctx: ctx,
		class: normalizeClass(req.Class), tokens: int64(tokens)}
	r.acquire(pk)
	return pk, nil
}

// acquire counts the pick as in flight on its backend.
func (r *Router) acquire(pk *Pick) {
	b, ci := pk.Backend, classIndex(pk.class)
	b.mu.Lock()
	defer b.mu.Unlock()
	pk.gen = b.gen
	b.sinceScrape++
	b.inFlight[ci]++
	b.inFlightTokens += pk.tokens
	// A backend already removed was Forgotten by the share: counting it there would leak.
	if r.share != nil && !b.removed {
		r.share.Add(b.id, string(pk.class), 1)
		pk.shared = true
	}
	if !b.removed {
		b.m.inFlight[ci].Inc()
	}
	r.updateLoadGaugeLocked(b)
}

// Done ends the attempt: it releases the in-flight count and feeds passive health (connect
// errors, timeouts and 5xx count as failures; 4xx and client cancellation do not).
func (p *Pick) Done(o Outcome) {
	if !p.done.CompareAndSwap(false, true) {
		return
	}
	p.Prefilled()
	r, b, ci := p.r, p.Backend, classIndex(p.class)
	b.mu.Lock()
	if b.gen == p.gen && b.sinceScrape > 0 {
		b.sinceScrape-- // still uncounted by any scrape
	}
	b.inFlight[ci]--
	b.inFlightTokens -= p.tokens
	if p.shared && !b.removed { // once removed, Forget has dropped the count already
		r.share.Add(b.id, string(p.class), -1)
	}
	if !b.removed {
		b.m.inFlight[ci].Dec()
	}
	r.updateLoadGaugeLocked(b)
	b.mu.Unlock()
	r.observe(p.ctx, b, o)
}

// sharedInFlight is the backend's in-flight count over all replicas and classes.
func (r *Router) sharedInFlight(b *Backend) int64 { return sum(r.inFlightByClassLocked(b)) }

// sum adds up per-class counts.
func sum(counts [len(classes)]int64) int64 {
	var n int64
	for _, v := range counts {
		n += v
	}
	return n
}

// inFlightByClassLocked is the backend's in-flight count per class over all replicas: never
// below this replica's own count, which a lagging shared view may not include yet.
func (r *Router) inFlightByClassLocked(b *Backend) [len(classes)]int64 {
	counts := b.inFlight
	if r.share != nil {
		for i, c := range classes {
			counts[i] = max(counts[i], r.share.InFlight(b.id, string(c)))
		}
	}
	return counts
}
