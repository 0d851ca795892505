package backpressure

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"github.com/vllm-proxy/vllm-proxy/routing"
)

// InteractivePicked implements proxy.InteractiveObserver: with Config.Evict, an
// interactive request just routed to backend makes this replica evict at once the batch
// requests it needs room from (see evictExcess), instead of at the next ReactInterval
// tick, so it waits for a backend slot no longer than an aborted request takes to free
// one. Without Evict, or while this replica holds no batch slot on backend, it does
// nothing (a map lookup: interactive traffic alone pays nothing for it).
func (c *Controller) InteractivePicked(backend string) {
	if !c.cfg.Evict || c.cfg.Mode != ModeAdaptive {
		return
	}
	c.mu.Lock()
	st := c.backends[backend]
	holds := st != nil && len(st.slots) > 0
	c.mu.Unlock()
	if !holds {
		return
	}
	s, ok := c.statsOf(backend)
	if !ok {
		return
	}
	c.target(backend, s, time.Now())
	c.evictExcess(context.Background(), s)
}

// evictExcess evicts this replica's newest batch slots on one backend while its slots
// are over-full (interactive plus batch in flight beyond its capacity: an interactive
// request would wait) and batch holds more than its target (Config.Evict). The count is
// the smaller of the two excesses; with several replicas each evicts its share, in
// proportion to the slots it holds. The reserve does not count here: it limits what
// batch is admitted, while a batch request admitted before interactive traffic rose
// keeps running in the reserve until a slot is actually needed. Evicting it earlier
// wastes its work: at 80% load that cost 40% of batch goodput and raised TTFT p99
// (docs/BENCHMARKS.md, "Lazy eviction").
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
