package proxy

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/vllm-proxy/vllm-proxy/routing"
)

// exchange is one client request (or Dispatch line) on its way through the retry loop.
type exchange struct {
	in    *http.Request // the client's request; for Dispatch a synthetic one
	loud  bool          // the logger takes logging.LevelLoud records (headers, bodies, events)
	id    string        // X-Request-Id
	path  string
	body  []byte
	info  requestInfo
	class routing.Class
	start time.Time
}

// result is how an exchange ended, for metrics, logs and Dispatch.
type result struct {
	class     routing.Class
	model     string // the routed model; "" until a Pick succeeded (keeps label values bounded)
	backend   string // the last backend tried; "" if none
	status    int    // what the client got
	committed bool   // a backend response went to the client (err may still report a cut)
	err       error
	attempts  int
	duration  time.Duration
	ttft      time.Duration // request start to first response body byte
	stream    bool
	cut       bool
	aborted   bool // the response was cut off mid-body: the client connection must be aborted
}

// forward runs the retry loop: Pick a backend, send one attempt, and try another backend
// (never one already tried) while nothing has reached the client, the failure is
// retryable, and MaxRetries and RequestTimeout allow. Every Pick is Done exactly once.
// When forward returns without res.committed, nothing was written to w.
func (h *Handler) forward(w http.ResponseWriter, x *exchange) *result {
	res := &result{class: x.class, stream: x.info.Stream}
	req := &routing.Request{Model: x.info.Model, Class: x.class, Prompt: x.info.Prompt, CacheSalt: x.info.CacheSalt}
	first, err := h.admitFirst(x, req) // a batch line may wait for room before its timeout starts
	if err != nil {
		res.err = err
		return res
	}
	ctx, cancel := context.WithTimeoutCause(x.in.Context(), h.cfg.RequestTimeout, errRequestTimeout)
	defer cancel()
	var lastErr error
	for {
		pick, err := h.pick(ctx, x, req, &first)
		if err != nil {
			if lastErr != nil && errors.Is(err, routing.ErrNoBackend) {
				err = lastErr // nothing left to try: report what went wrong on the last one
			}
			res.err = err
			return res
		}
		res.model = pick.Model
		if bs, ok := errors.AsType[*BackendStatusError](lastErr); ok && bs.Status == http.StatusTooManyRequests && pick.Load >= 1 {
			pick.done(routing.Outcome{}) // a 429 moves on only to a backend with room
			res.err = lastErr
			return res
		}
		a := &attempt{x: x, reqCtx: ctx, backend: pick.Backend, target: pick.Backend.URL(), start: time.Now(), onFirst: pick.firstByte}
		actx, stopEvict := evictable(ctx, pick.evicted)
		pick.Sent(x.info.Stream)
		h.run(actx, w, a, h.outboundBody(x, pick.Pick))
		stopEvict()
		res.backend = pick.Backend.ID()
		if evictedError(actx, a) && ctx.Err() == nil {
			pick.done(routing.Outcome{}) // says nothing about the backend
			h.metrics.retries.WithLabelValues(res.backend, "evicted").Inc()
			continue // not an attempt: the line starts over, waiting for batch room
		}
		res.attempts++
		err, reason := h.attemptError(ctx, a)
		pick.done(a.outcome(err))
		if a.committed {
			res.committed, res.status, res.err = true, a.status, err
			if errors.Is(err, ErrClientGone) {
				res.status = StatusClientClosedRequest // what the access log should say, as nginx does
			}
			res.cut, res.aborted = a.cut, a.aborted
			if a.firstByte > 0 {
				res.ttft = a.start.Sub(x.start) + a.firstByte
			}
			return res
		}
		lastErr = err
		if reason == "" || res.attempts > h.cfg.MaxRetries {
			res.err = err
			return res
		}
		h.metrics.retries.WithLabelValues(res.backend, reason).Inc()
		h.logRetry(ctx, x, res, reason, err)
		req.Exclude = append(req.Exclude, res.backend)
		if !h.backoff(ctx, res.attempts) {
			res.err = h.contextError(ctx, x)
			return res
		}
	}
}

// outboundBody is the one place the body sent to a backend is chosen: the client's body
// byte for byte, except for the "priority" field, which is set per backend (priority.go).
func (h *Handler) outboundBody(x *exchange, pick *routing.Pick) []byte {
	return h.cfg.Priority.withPriority(x.path, x.body, x.class, pick.Backend.PriorityScheduling())
}

// attemptError classifies how an attempt ended. err is nil for a response that was
// forwarded completely; reason is non-empty when another backend may be tried.
func (h *Handler) attemptError(ctx context.Context, a *attempt) (err error, reason string) { //nolint:staticcheck // ST1008: reason qualifies err
	clientGone := a.x.in.Context().Err() != nil
	timedOut := errors.Is(context.Cause(ctx), errRequestTimeout)
	if a.committed {
		switch {
		case a.readErr == nil && !a.aborted:
			return nil, ""
		case clientGone || a.readErr == nil: // the write to the client failed
			return clientGoneError(), ""
		case timedOut:
			return fmt.Errorf("%w: streaming the response: %w", ErrTimeout, a.readErr), ""
		default:
			return fmt.Errorf("%w: %w", ErrStreamCut, a.readErr), ""
		}
	}
	switch {
	case clientGone:
		return clientGoneError(), ""
	case timedOut:
		return fmt.Errorf("%w: waiting for %s", ErrTimeout, a.backend.ID()), ""
	}
	if bs, ok := errors.AsType[*BackendStatusError](a.err); ok {
		return bs, "status_" + strconv.Itoa(bs.Status)
	}
	if errors.Is(a.err, errHeaderTimeout) {
		return fmt.Errorf("%w: no response headers from %s within %s", ErrTimeout, a.backend.ID(), h.headerTimeout(a.x.info.Stream)), "header_timeout"
	}
	if ne, ok := errors.AsType[net.Error](a.err); ok && ne.Timeout() {
		return fmt.Errorf("%w: reaching %s: %w", ErrTimeout, a.backend.ID(), a.err), "timeout"
	}
	if oe, ok := errors.AsType[*net.OpError](a.err); ok && oe.Op == "dial" {
		return fmt.Errorf("%w: connecting to %s: %w", ErrBackendUnreachable, a.backend.ID(), a.err), "connect"
	}
	// Any other failure before the response headers (a reset, an EOF from a backend that
	// died with the request in flight): the client has seen nothing, so another backend
	// may answer. Inference requests have no side effects beyond the compute spent.
	return fmt.Errorf("%w: sending to %s: %w", ErrBackendUnreachable, a.backend.ID(), a.err), "transport"
}

func clientGoneError() error { return fmt.Errorf("%w: %w", ErrClientGone, context.Canceled) }

// contextError is the error for a request whose context ended outside an attempt.
func (h *Handler) contextError(ctx context.Context, x *exchange) error {
	if x.in.Context().Err() != nil {
		return clientGoneError()
	}
	if errors.Is(context.Cause(ctx), errRequestTimeout) {
		return fmt.Errorf("%w: between attempts", ErrTimeout)
	}
	return fmt.Errorf("%w: %w", ErrClientGone, context.Cause(ctx))
}

// outcome is what routing learns about the attempt. Client cancellation never counts
// against the backend; a retryable status is reported as that status (5xx counts, 429
// does not); with no response, the error is the failure.
func (a *attempt) outcome(err error) routing.Outcome {
	o := routing.Outcome{Status: a.status, FirstByte: a.firstByte, Streamed: a.committed}
	switch {
	case err == nil:
	case errors.Is(err, ErrClientGone) && a.status == 0:
		return routing.Outcome{} // nothing happened that says anything about the backend
	case errors.Is(err, ErrBackendBusy):
	default:
		o.Err = err
	}
	return o
}

// backoff waits before retry number n (1-based): RetryBackoff doubled per retry, capped
// by RetryBackoffMax, jittered to between half and all of it. It reports false when ctx
// ended first.
func (h *Handler) backoff(ctx context.Context, n int) bool {
	d := h.cfg.RetryBackoff << min(n-1, 16)
	d = min(d, h.cfg.RetryBackoffMax)
	if d > 0 {
		d = d/2 + rand.N(d/2+1) // #nosec G404 -- retry backoff jitter, not a secret
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
