package backpressure

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/vllm-proxy/vllm-proxy/routing"
)

// InteractivePicked implements proxy.InteractiveObserver. It counts the arrival for surge
// detection (Config.SurgeHorizon), and with WithPeers queues it for the other replicas'
// detectors (a non-blocking send; the publishing goroutine owned by Start talks to
// Redis); when it starts a surge, every backend of the group
// gets its target cut to the floor and, with Config.Evict, its batch requests beyond it
// evicted at once. Otherwise, with Evict, an interactive request just routed to backend
// makes this replica evict at once the batch requests it needs room from (see
// evictExcess), instead of at the next ReactInterval tick, so it waits for a backend slot
// no longer than an aborted request takes to free one. Without a surge, while this
// replica holds no batch slot on backend, it does nothing more than a map lookup and the
// arrival's count. Until prefilled is called (or Config.PrefillHold passed) no batch
// request is admitted on backend by this replica.
func (c *Controller) InteractivePicked(backend string) (prefilled func()) {
	if c.cfg.Mode != ModeAdaptive {
		return func() {}
	}
	now := time.Now()
	c.mu.Lock()
	st := c.backends[backend]
	prefilled = c.holdForPrefill(st, now)
	started := st != nil && c.arrive(st.group, 1, now)
	if c.cfg.SurgeHorizon > 0 {
		c.notePick(backend)
	}
	holds := st != nil && len(st.slots) > 0
	c.mu.Unlock()
	if started {
		c.surgeStarted(context.Background(), st.group)
		return prefilled
	}
	if !c.cfg.Evict || !holds {
		return prefilled
	}
	s, ok := c.statsOf(backend)
	if !ok {
		return prefilled
	}
	c.target(backend, s, now)
	c.evictExcess(context.Background(), s)
	return prefilled
}

// arrive counts n interactive arrivals on group at now for surge detection (nothing when
// it is off) and reports whether a surge started with them. c.mu must be held.
func (c *Controller) arrive(group string, n int, now time.Time) bool {
	if c.cfg.SurgeHorizon <= 0 {
		return false
	}
	sg := c.surges[group]
	if sg == nil {
		sg = &surge{horizon: c.cfg.SurgeHorizon}
		c.surges[group] = sg
	}
	return sg.arriveN(now, n)
}

// surgeStarted counts a surge that started on group and cuts its batch (cutGroup).
func (c *Controller) surgeStarted(ctx context.Context, group string) {
	c.m.surges.Inc()
	c.log.LogAttrs(ctx, slog.LevelDebug, "interactive surge: batch cut to its floor", slog.String("models", strings.ReplaceAll(group, "\x00", ",")))
	c.cutGroup(ctx, group)
}

// cutGroup recomputes the target of every backend of group (a surge started), so this
// replica admits no batch beyond it, and with Evict evicts the batch requests beyond it.
// The next tick publishes the targets to the other replicas: this runs on an interactive
// request's path, which must not wait for Redis.
func (c *Controller) cutGroup(ctx context.Context, group string) {
	now := time.Now()
	for _, s := range c.src.LoadStats() {
		if groupOf(s.Models) != group {
			continue
		}
		c.target(s.URL, s, now)
		if c.cfg.Evict {
			c.evictExcess(ctx, s)
		}
	}
}

// evictExcess evicts this replica's newest batch slots on one backend while its slots
// are over-full (interactive plus batch in flight beyond its capacity: an interactive
// request would wait) and batch holds more than its target (Config.Evict). The count is
// the smaller of the two excesses, or during a surge the excess over the target alone;
// with several replicas each evicts its share, in proportion to the slots it holds. The
// reserve does not count here: it limits what batch is admitted, while a batch request
// admitted before interactive traffic rose keeps running in the reserve until a slot is
// actually needed. Evicting it earlier wastes its work: at 80% load that cost 40% of
// batch goodput and raised TTFT p99 (docs/BENCHMARKS.md, "Lazy eviction"). A surge is the
// exception: a burst is about to need every slot.
func (c *Controller) evictExcess(ctx context.Context, s routing.BackendStats) {
	sig := signals(s)
	c.mu.Lock()
	st := c.backends[s.URL]
	if st == nil || len(st.slots) == 0 || st.target < 0 {
		c.mu.Unlock()
		return
	}
	// Routing's count covers every replica's batch requests; this replica's own slots
	// are exact even before routing counts them (the budget's view may be a tick old).
	batch := max(sig.Batch, int64(len(st.slots)))
	pressure := sig.Interactive + batch - int64(sig.Capacity)
	excess := batch - int64(st.target)
	if c.surging(st.group, time.Now()) {
		pressure = excess // a burst is coming: make room before it needs it
	}
	var live []*Slot
	for sl := range st.slots {
		select {
		case <-sl.evicted: // already asked to stop
			pressure--
			excess--
		default:
			live = append(live, sl)
		}
	}
	n := min(pressure, excess)
	if n <= 0 || len(live) == 0 {
		c.mu.Unlock()
		return
	}
	if batch > int64(len(live)) { // other replicas hold slots too: evict our share
		n = (n*int64(len(live)) + batch - 1) / batch
	}
	slices.SortFunc(live, func(a, b *Slot) int { return b.at.Compare(a.at) }) // newest first
	victims := live[:min(int(n), len(live))]
	c.mu.Unlock()
	for _, sl := range victims {
		if sl.evict() {
			c.m.evictions.WithLabelValues(s.URL).Inc()
		}
	}
	c.log.LogAttrs(ctx, slog.LevelDebug, "evicted batch requests for interactive traffic",
		slog.String("backend", s.URL), slog.Int("count", len(victims)))
}
