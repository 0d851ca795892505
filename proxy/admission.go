package proxy

import (
	"context"
	"errors"
	"fmt"

	"github.com/vllm-proxy/vllm-proxy/routing"
)

// BatchAdmission holds batch traffic back per backend so it cannot take the room
// interactive traffic needs (cmd wires backpressure.Controller). Every batch-class
// attempt takes a slot on the backend routing picked before it is sent, and gives it
// back when the attempt ends. Implementations must be safe for concurrent use.
type BatchAdmission interface {
	// AdmitBatch takes one batch slot on backend without waiting; release gives it back
	// (called exactly once). ok is false when the backend has no batch room now. When
	// evicted (may be nil) is closed, the attempt is stopped and the request is tried
	// again, as if new: an eviction counts against no retry budget.
	AdmitBatch(ctx context.Context, backend string) (release func(), evicted <-chan struct{}, ok bool)
	// Changed returns a channel closed the next time batch room may have appeared.
	Changed() <-chan struct{}
}

// InteractiveObserver is an optional interface of a BatchAdmission: the handler calls
// InteractivePicked right after routing chose backend for an interactive attempt (counted
// in flight already), so batch requests can make room at once instead of at the
// admission's next tick (backpressure.Controller evicts them then). It must not block.
// The handler calls the returned prefilled (at least once; it must be idempotent and must
// not block) when the attempt's prompt has been prefilled: at the first response byte of a
// streamed request, at once for any other, and at the end of an attempt in any case.
type InteractiveObserver interface {
	InteractivePicked(backend string) (prefilled func())
}

// Option configures a Handler at construction.
type Option func(*Handler)

// WithBatchAdmission makes batch-class requests (Dispatch) obey a. A line for which
// every backend serving its model is at its batch target waits, before its
// RequestTimeout starts, until one has room or its context ends. Interactive traffic
// never waits.
func WithBatchAdmission(a BatchAdmission) Option {
	return func(h *Handler) {
		h.admission = a
		h.observer, _ = a.(InteractiveObserver)
	}
}

// admitted is a Pick with the batch slot it holds (release is a no-op without one).
type admitted struct {
	*routing.Pick
	release   func()
	evicted   <-chan struct{} // nil: never
	prefilled func()          // nil, or the InteractiveObserver's: at the first byte or the end
}

// done ends the attempt in routing and gives the slot back.
func (a admitted) done(o routing.Outcome) {
	a.Done(o)
	a.release()
	if a.prefilled != nil {
		a.prefilled()
	}
}

// firstByte tells routing and the observer that the attempt's prompt has been prefilled.
func (a admitted) firstByte() {
	a.Prefilled()
	if a.prefilled != nil {
		a.prefilled()
	}
}

func noRelease() {}

// gated reports whether x's attempts need a batch slot.
func (h *Handler) gated(x *exchange) bool {
	return h.admission != nil && x.class == routing.ClassBatch
}

// admitFirst picks the first backend of a gated exchange, waiting on the caller's
// context (not the request timeout) for batch room; nil for other exchanges.
func (h *Handler) admitFirst(x *exchange, req *routing.Request) (*admitted, error) {
	if !h.gated(x) {
		return nil, nil
	}
	a, err := h.admit(x.in.Context(), req)
	if err != nil {
		return nil, err
	}
	return &a, nil
}

// pick chooses the backend of the next attempt: the one admitFirst already chose, else
// routing's pick, admitted for a gated exchange.
func (h *Handler) pick(ctx context.Context, x *exchange, req *routing.Request, first **admitted) (admitted, error) {
	if *first != nil {
		a := **first
		*first = nil
		return a, nil
	}
	if !h.gated(x) {
		p, err := h.router.Pick(ctx, req)
		a := admitted{Pick: p, release: noRelease}
		if err == nil && h.observer != nil && x.class == routing.ClassInteractive {
			a.prefilled = h.observer.InteractivePicked(p.Backend.ID())
			if !x.info.Stream { // its first byte is its last: no telling when its prefill ends
				a.prefilled()
				a.prefilled = nil
			}
		}
		return a, err
	}
	return h.admit(ctx, req)
}

// admit picks a backend with batch room: routing's choice when it has room, else its next
// choice among the others, and when none has room it waits for room and starts over.
//
// The channel it waits on is taken before the round's first refusal, not after the last:
// room that appears in between (a tick that saw the refusals) closes it, so the wait ends
// at once instead of missing the only wake-up when no batch slot is held to release.
func (h *Handler) admit(ctx context.Context, req *routing.Request) (admitted, error) {
	base := len(req.Exclude)
	defer func() { req.Exclude = req.Exclude[:base] }()
	changed := h.admission.Changed()
	for {
		p, err := h.router.Pick(ctx, req)
		if err != nil {
			if errors.Is(err, routing.ErrNoBackend) && len(req.Exclude) > base {
				req.Exclude = req.Exclude[:base] // every candidate is full: wait for room
				select {
				case <-changed:
					changed = h.admission.Changed()
					continue
				case <-ctx.Done():
					return admitted{}, h.waitError(ctx)
				}
			}
			return admitted{}, err
		}
		if rel, evicted, ok := h.admission.AdmitBatch(ctx, p.Backend.ID()); ok {
			return admitted{Pick: p, release: rel, evicted: evicted}, nil
		}
		p.Done(routing.Outcome{}) // not sent: says nothing about the backend
		req.Exclude = append(req.Exclude, p.Backend.ID())
	}
}

// waitError is the error of a line whose context ended while it waited for batch room.
func (h *Handler) waitError(ctx context.Context) error {
	if errors.Is(context.Cause(ctx), errRequestTimeout) {
		return fmt.Errorf("%w: waiting for batch room", ErrTimeout)
	}
	return clientGoneError()
}

// errEvicted is the cause of an attempt stopped because batch admission evicted it.
var errEvicted = errors.New("batch request evicted for interactive traffic")

// evictable returns the context of one attempt: ctx, also cancelled with errEvicted when
// evicted closes. stop ends the watch and waits for it; call it when the attempt ended.
func evictable(ctx context.Context, evicted <-chan struct{}) (actx context.Context, stop func()) {
	if evicted == nil {
		return ctx, func() {}
	}
	actx, cancel := context.WithCancelCause(ctx)
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		select {
		case <-evicted:
			cancel(errEvicted)
		case <-done:
		}
	}()
	return actx, func() {
		close(done)
		<-exited
		cancel(nil)
	}
}

// evictedError reports an attempt stopped by an eviction before any response, so the
// retry loop tries the line again without counting it.
func evictedError(actx context.Context, a *attempt) bool {
	return !a.committed && errors.Is(context.Cause(actx), errEvicted)
}
