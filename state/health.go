package state

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	mrand "math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// health owns the Store's view of Redis reachability. One goroutine probes Redis: every
// HealthInterval while it answers, with exponential back-off (ReconnectMin..ReconnectMax,
// jittered) while it does not. Each probe also reads the epoch key, so a FLUSHALL or a
// restart without persistence is noticed even when no connection broke. Transitions log
// once (a warning when Redis is lost, an info line when it is back) and trigger a resync
// of local state into Redis.
type health struct {
	s         *Store
	connected atomic.Bool
	kick      chan struct{}
	resync    []func(ctx context.Context) // fixed before run starts
	epoch     string                      // last epoch value seen; owned by run
}

func newHealth(s *Store) *health {
	h := &health{s: s, kick: make(chan struct{}, 1)}
	if s.rdb == nil {
		h.connected.Store(true)
		s.metrics.Connected.Set(1)
	}
	return h
}

// onResync registers fn to run (on the health goroutine, with a bounded ctx) after Redis
// comes back or loses its data. Call it only from Open, before the loop starts.
func (h *health) onResync(fn func(ctx context.Context)) { h.resync = append(h.resync, fn) }

// observe tells the health loop about the outcome of a Redis call made elsewhere: a
// failure that is not a Redis error reply makes it probe now instead of at the next tick.
func (h *health) observe(err error) {
	if err == nil || errors.Is(err, redis.Nil) {
		return
	}
	var re redis.Error
	if errors.As(err, &re) && !isTransient(err) {
		return // Redis answered: it is reachable
	}
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// isTransient reports Redis replies that mean "not serving right now".
func isTransient(err error) bool {
	for _, p := range []string{"LOADING", "CLUSTERDOWN", "MASTERDOWN", "TRYAGAIN", "READONLY"} {
		if redis.HasErrorPrefix(err, p) {
			return true
		}
	}
	return false
}

// run is the health loop; it returns when ctx is done.
func (h *health) run(ctx context.Context) {
	if h.s.rdb == nil {
		return
	}
	cfg, log := h.s.cfg, h.s.log
	timer := time.NewTimer(0)
	defer timer.Stop()
	up, first := false, true
	backoff := cfg.ReconnectMin
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-h.kick:
			if !up {
				continue // already probing on the back-off schedule
			}
			if !timer.Stop() {
				<-timer.C
			}
		}
		lost, err := h.probe(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			if up || first {
				log.WarnContext(ctx, "redis unavailable, serving from local state", "error", err)
				h.s.metrics.Disconnects.Inc()
			}
			up, first = false, false
			h.connected.Store(false)
			h.s.metrics.Connected.Set(0)
			timer.Reset(jitter(backoff))
			backoff = min(backoff*2, cfg.ReconnectMax)
			continue
		}
		backoff = cfg.ReconnectMin
		if !up {
			if first {
				log.InfoContext(ctx, "redis connected")
			} else {
				log.InfoContext(ctx, "redis reachable again, resyncing local state")
			}
			h.connected.Store(true)
			h.s.metrics.Connected.Set(1)
			lost = true
		}
		up, first = true, false
		if lost {
			h.runResync(ctx)
		}
		timer.Reset(cfg.HealthInterval)
	}
}

// probe checks Redis and reports whether its data was lost since the last probe.
func (h *health) probe(ctx context.Context) (lost bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, h.s.cfg.CommandTimeout)
	defer cancel()
	fresh := newEpoch()
	seen, err := h.s.rdb.SetArgs(ctx, epochKey(), fresh, redis.SetArgs{Mode: "NX", Get: true}).Result()
	switch {
	case errors.Is(err, redis.Nil):
		seen = fresh // the key was missing: ours is the new epoch
	case err != nil:
		return false, err
	}
	lost = h.epoch != "" && seen != h.epoch
	h.epoch = seen
	return lost, nil
}

func (h *health) runResync(ctx context.Context) {
	h.s.metrics.Resyncs.Inc()
	for _, fn := range h.resync {
		rctx, cancel := context.WithTimeout(ctx, h.s.cfg.CommandTimeout)
		fn(rctx)
		cancel()
	}
}

func newEpoch() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// jitter spreads d over [0.75d, 1.25d) so replicas do not probe in lockstep.
func jitter(d time.Duration) time.Duration {
	return d*3/4 + time.Duration(mrand.Int64N(int64(d/2)+1)) // #nosec G404 -- probe timing jitter, not a secret
}
