package backpressure

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Slot is one batch slot held on a backend, from TryAcquireSlot. Release gives it back;
// Evicted is closed when the controller wants the request stopped (Config.Evict). Safe
// for concurrent use.
type Slot struct {
	c       *Controller // nil: a slot nobody accounts (ModeOff, unknown backend)
	ctx     context.Context
	backend string
	lease   string
	at      time.Time
	evicted chan struct{}

	evictOnce   sync.Once
	releaseOnce sync.Once
}

func (c *Controller) newSlot(ctx context.Context, backend, lease string) *Slot {
	sl := &Slot{c: c, ctx: context.WithoutCancel(ctx), backend: backend, lease: lease, at: time.Now()}
	if c.cfg.Evict {
		sl.evicted = make(chan struct{})
	}
	c.mu.Lock()
	if st := c.backends[backend]; st != nil {
		st.slots[sl] = struct{}{}
	}
	c.mu.Unlock()
	return sl
}

// Release gives the slot back to the budget and wakes waiters. Later calls do nothing.
func (s *Slot) Release() {
	if s.c == nil {
		return
	}
	s.releaseOnce.Do(func() {
		c := s.c
		if !isClosed(s.evicted) {
			c.observeHeld(s.backend, time.Since(s.at))
		}
		c.mu.Lock()
		if st := c.backends[s.backend]; st != nil {
			delete(st.slots, s)
		}
		c.mu.Unlock()
		rctx, cancel := context.WithTimeout(s.ctx, releaseTimeout)
		defer cancel()
		if err := c.budget.Release(rctx, s.backend, s.lease); err != nil {
			c.log.LogAttrs(rctx, slog.LevelDebug, "releasing a batch slot failed", slog.String("backend", s.backend), slog.Any("error", err))
		}
		c.broadcast()
	})
}

// Evicted returns a channel closed when the controller evicts the slot's request; nil
// (never) unless Config.Evict.
func (s *Slot) Evicted() <-chan struct{} { return s.evictedChan() }

func (s *Slot) evictedChan() <-chan struct{} {
	if s.evicted == nil {
		return nil
	}
	return s.evicted
}

// isClosed reports whether ch is closed (false for nil: a Slot's evicted channel without
// Evict).
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// evict signals the slot's holder to stop; the slot stays held until released.
func (s *Slot) evict() bool {
	done := false
	s.evictOnce.Do(func() {
		close(s.evicted)
		done = true
	})
	return done
}
