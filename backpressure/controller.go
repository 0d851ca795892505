package backpressure

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vllm-proxy/vllm-proxy/routing"
	"github.com/vllm-proxy/vllm-proxy/state"
)

// Source is the live view of the backend pool the controller reads: capacity, scraped
// waiting count and in-flight requests by class. *routing.Router implements it.
type Source interface {
	LoadStats() []routing.BackendStats
}

// Budget is the global per-backend batch budget shared by every replica.
// *state.BatchBudget implements it (in memory for -R memory).
type Budget interface {
	Acquire(ctx context.Context, backend string, target int) (lease string, view state.BudgetView, err error)
	Publish(ctx context.Context, backend string, target int) (state.BudgetView, error)
	Release(ctx context.Context, backend, lease string) error
}

var (
	_ Source = (*routing.Router)(nil)
	_ Budget = (*state.BatchBudget)(nil)
)

// releaseTimeout bounds giving a slot back to the budget.
const releaseTimeout = time.Second

// Controller decides, per backend, how many batch requests may be in flight, and hands
// out batch slots under that target through the shared budget. The batch path asks for
// a slot before it sends a line to a backend (TryAcquire after routing picked it, or
// Acquire to wait) and gives it back when the line ends.
//
// In ModeAdaptive a slot request computes the backend's target from the live counts at
// that instant, so an interactive request picked a moment before lowers the target for
// the very next batch line; the loop started by Start raises targets again once
// interactive traffic left and republishes them. All methods are safe for concurrent
// use; Start once, Stop is idempotent and waits.
type Controller struct {
	cfg    Config
	src    Source
	budget Budget
	log    *slog.Logger
	m      *Metrics

	mu       sync.Mutex
	backends map[string]*backendState
	surges   map[string]*surge // by group (groupOf): interactive arrival surges
	changed  chan struct{}     // closed and replaced when batch room may have appeared
	refused  bool              // a slot was refused since the last broadcast: someone waits
	pending  map[string]int    // interactive arrivals by backend not yet sent to the peers
	peers    Peers             // nil: this replica's arrivals alone (WithPeers)
	kick     chan struct{}     // pending has arrivals to send

	life    sync.Mutex
	started bool
	cancel  context.CancelFunc
	done    chan struct{}
}

// backendState is the controller's memory of one backend, guarded by Controller.mu.
type backendState struct {
	target    int       // this replica's last target; -1 before the first
	polled    float64   // ModePoll: the waiting count of the last poll (NaN: none yet)
	polledAt  time.Time // ModePoll: when it was read
	published time.Time // when the target was last published to the budget
	view      state.BudgetView
	slots     map[*Slot]struct{}      // this replica's slots on the backend (for eviction)
	peak      peak                    // recent peak of interactive in flight
	admitted  time.Time               // this replica's last batch admission (Config.AdmitGap)
	held      float64                 // seconds a batch request held its slot, weighted mean (0: none seen)
	group     string                  // groupOf its models: the surge detector it shares
	prefills  map[*time.Time]struct{} // interactive prefills pending here (Config.PrefillHold), by start
}

// groupOf names the group of backends that serve exactly models: an interactive surge on
// a model reaches all of them (routing spreads it), and none other.
func groupOf(models []string) string {
	return strings.Join(slices.Sorted(slices.Values(models)), "\x00")
}

// surging reports whether interactive arrivals on group surge at now (false when surge
// detection is off). c.mu must be held.
func (c *Controller) surging(group string, now time.Time) bool {
	sg := c.surges[group]
	return sg != nil && sg.active(now)
}

// New builds a Controller over src and budget. log may be nil (discard); reg may be nil
// (metrics not registered).
func New(cfg Config, src Source, budget Budget, log *slog.Logger, reg prometheus.Registerer, opts ...Option) (*Controller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if src == nil || budget == nil {
		return nil, fmt.Errorf("%w: a source and a budget are required", ErrInvalidConfig)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	c := &Controller{cfg: cfg.withDefaults(), src: src, budget: budget, log: log, m: m,
		backends: map[string]*backendState{}, surges: map[string]*surge{}, changed: make(chan struct{}),
		pending: map[string]int{}, kick: make(chan struct{}, 1)}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// TryAcquire takes one batch slot on backend if its target leaves room, without waiting.
// It returns the function that gives the slot back (call it exactly once, when the
// request ended; later calls do nothing), or ok false when the backend is at its target.
// In ModeOff every request is granted.
func (c *Controller) TryAcquire(ctx context.Context, backend string) (release func(), ok bool) {
	sl, ok := c.TryAcquireSlot(ctx, backend)
	if !ok {
		return nil, false
	}
	return sl.Release, true
}

// AdmitBatch is TryAcquire with the slot's eviction signal (nil unless Config.Evict): it
// implements proxy.BatchAdmission.
func (c *Controller) AdmitBatch(ctx context.Context, backend string) (release func(), evicted <-chan struct{}, ok bool) {
	sl, ok := c.TryAcquireSlot(ctx, backend)
	if !ok {
		return nil, nil, false
	}
	return sl.Release, sl.evictedChan(), true
}

// TryAcquireSlot is TryAcquire returning the Slot itself.
func (c *Controller) TryAcquireSlot(ctx context.Context, backend string) (*Slot, bool) {
	if c.cfg.Mode == ModeOff {
		return &Slot{}, true
	}
	stats, found := c.statsOf(backend)
	if !found {
		return &Slot{}, true // not in the pool (removed meanwhile): nothing to protect
	}
	now := time.Now()
	t := c.target(backend, stats, now)
	prev, ok := c.takeAdmission(backend, t, now)
	if !ok {
		c.publish(ctx, backend, stats, t) // refused for the gap, the target still binds every replica at once
		return nil, false
	}
	lease, view, err := c.budget.Acquire(ctx, backend, t)
	if err != nil {
		c.log.LogAttrs(ctx, slog.LevelDebug, "batch budget degraded to this replica", slog.String("backend", backend), slog.Any("error", err))
	}
	c.record(backend, stats, view)
	if lease == "" {
		c.m.refused.WithLabelValues(backend).Inc()
		c.mu.Lock()
		c.refused = true
		if st := c.backends[backend]; st != nil && st.admitted.Equal(now) {
			st.admitted = prev // nothing was admitted: the gap does not start
		}
		c.mu.Unlock()
		return nil, false
	}
	return c.newSlot(ctx, backend, lease), true
}

// takeAdmission enforces Config.AdmitGap and Config.PrefillHold: it refuses while the
// last batch admission on backend is less than the gap ago or an interactive prefill there
// is pending (not counted in _refused_slots_total, which counts refusals at the target);
// otherwise it records now as the last admission and returns the one before, for
// TryAcquireSlot to restore when the budget refuses.
func (c *Controller) takeAdmission(backend string, target int, now time.Time) (prev time.Time, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.backends[backend]
	if st == nil || c.cfg.Mode != ModeAdaptive {
		return time.Time{}, true
	}
	if st.prefillPending(now, c.cfg.PrefillHold) ||
		(c.cfg.AdmitGap > 0 && now.Sub(st.admitted) < st.gap(c.cfg.AdmitGap, target)) {
		c.refused = true // the next tick wakes the lines waiting for room
		return time.Time{}, false
	}
	prev, st.admitted = st.admitted, now
	return prev, true
}

// gap is the spacing of batch admissions on the backend: AdmitGap, or less when batch
// requests there are short for its target. Target batch requests of mean duration held
// free a slot every held/target on average, so admissions spaced that far apart keep
// batch at its target; a fixed 100 ms would cap batch at 10 admissions a second, which a
// backend with hundreds of slots outruns.
func (st *backendState) gap(admitGap time.Duration, target int) time.Duration {
	if st.held <= 0 || target <= 0 {
		return admitGap
	}
	return min(admitGap, time.Duration(st.held/float64(target)*float64(time.Second)))
}

// heldWeight is the weight of the newest batch request in backendState.held.
const heldWeight = 0.1

// observeHeld records that a batch request held its slot on backend for d and ended on
// its own (an evicted one says nothing about how long batch requests last).
func (c *Controller) observeHeld(backend string, d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.backends[backend]
	if st == nil {
		return
	}
	if st.held <= 0 {
		st.held = d.Seconds()
		return
	}
	st.held += heldWeight * (d.Seconds() - st.held)
}

// Acquire waits until a batch slot on backend is free and takes it; see TryAcquire. It
// wakes as soon as a slot is released on this replica or the loop sees room (a target
// raised, a slot freed by another replica). The error is ctx's when it ends first.
func (c *Controller) Acquire(ctx context.Context, backend string) (release func(), err error) {
	for {
		ch := c.Changed()
		if rel, ok := c.TryAcquire(ctx, backend); ok {
			return rel, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for a batch slot on %s: %w", backend, context.Cause(ctx))
		}
	}
}

// Changed returns a channel that is closed the next time batch room may have appeared on
// some backend. Take it before a TryAcquire that may fail, then wait on it.
func (c *Controller) Changed() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changed
}

// Target returns backend's current batch target as this replica computed it last, and
// false when the controller has not seen the backend yet.
func (c *Controller) Target(backend string) (int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.backends[backend]
	if st == nil || st.target < 0 {
		return 0, false
	}
	return st.target, true
}

func (c *Controller) broadcast() {
	c.mu.Lock()
	close(c.changed)
	c.changed = make(chan struct{})
	c.refused = false
	c.mu.Unlock()
}

// statsOf finds backend in the source's current view.
func (c *Controller) statsOf(backend string) (routing.BackendStats, bool) {
	for _, s := range c.src.LoadStats() {
		if s.URL == backend {
			return s, true
		}
	}
	return routing.BackendStats{}, false
}

// signals turns routing's view of a backend into the controller's inputs.
func signals(s routing.BackendStats) Signals {
	sig := Signals{Capacity: s.Capacity, Waiting: s.Waiting,
		Interactive: s.InFlightByClass[routing.ClassInteractive], Batch: s.InFlightByClass[routing.ClassBatch]}
	if s.MetricsStale || s.MetricsAgeMS < 0 {
		sig.Waiting = math.NaN()
	}
	return sig
}

// target computes backend's target now (counting a cut as a throttle event) and returns it.
func (c *Controller) target(backend string, s routing.BackendStats, now time.Time) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.backends[backend]
	if st == nil {
		st = &backendState{target: -1, polled: math.NaN(), slots: map[*Slot]struct{}{}, peak: newPeak(c.cfg.PeakWindow), group: groupOf(s.Models)}
		c.backends[backend] = st
		c.m.touch(backend)
	}
	var t int
	switch c.cfg.Mode {
	case ModePoll:
		if st.polledAt.IsZero() || now.Sub(st.polledAt) >= c.cfg.PollInterval {
			st.polled, st.polledAt = signals(s).Waiting, now
		}
		t = c.cfg.pollTarget(s.Capacity, st.polled)
	default:
		sig := signals(s)
		sig.InteractivePeak = st.peak.observe(now, sig.Interactive)
		sig.Surge = c.surging(st.group, now)
		t = c.cfg.adaptiveTarget(sig)
	}
	if st.target >= 0 && t < st.target {
		c.m.throttles.WithLabelValues(backend).Inc()
	}
	st.target = t
	return t
}

// publish sends backend's target t to the shared budget and records its answer.
func (c *Controller) publish(ctx context.Context, backend string, s routing.BackendStats, t int) state.BudgetView {
	view, err := c.budget.Publish(ctx, backend, t)
	if err != nil {
		c.log.LogAttrs(ctx, slog.LevelDebug, "publishing a batch target failed", slog.String("backend", backend), slog.Any("error", err))
	}
	c.record(backend, s, view)
	return view
}

// record updates the gauges after the budget answered.
func (c *Controller) record(backend string, s routing.BackendStats, view state.BudgetView) {
	c.mu.Lock()
	if st := c.backends[backend]; st != nil {
		st.view = view
		st.published = time.Now()
	}
	c.mu.Unlock()
	c.m.target.WithLabelValues(backend).Set(float64(view.Target))
	c.m.inFlight.WithLabelValues(backend, string(routing.ClassInteractive)).Set(float64(s.InFlightByClass[routing.ClassInteractive]))
	c.m.inFlight.WithLabelValues(backend, string(routing.ClassBatch)).Set(float64(view.InFlight))
}

// Start launches the loop that re-reads the live counts every ReactInterval and, with
// WithPeers, the exchange of interactive arrivals with the other replicas. It returns at
// once; they run until Stop or until ctx ends.
func (c *Controller) Start(ctx context.Context) error {
	c.life.Lock()
	defer c.life.Unlock()
	if c.started {
		return errors.New("backpressure: controller already started")
	}
	c.started = true
	ctx, c.cancel = context.WithCancel(ctx)
	c.done = make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { c.run(ctx) })
	if c.peers != nil && c.cfg.Mode == ModeAdaptive && c.cfg.SurgeHorizon > 0 {
		wg.Go(func() { c.publishPicks(ctx) })
		wg.Go(func() { c.receivePicks(ctx) })
	}
	go func() {
		wg.Wait()
		close(c.done)
	}()
	return nil
}

// Stop stops the loop and waits for it. It is idempotent. Slots still held stay valid
// until released.
func (c *Controller) Stop() {
	c.life.Lock()
	cancel, done := c.cancel, c.done
	c.cancel = nil
	c.life.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
}

func (c *Controller) run(ctx context.Context) {
	if c.cfg.Mode == ModeOff {
		return
	}
	t := time.NewTicker(c.cfg.ReactInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.tick(ctx)
	}
}

// tick recomputes every backend's target, publishes those that changed or are due, and
// wakes waiters when room may have appeared.
func (c *Controller) tick(ctx context.Context) {
	now := time.Now()
	stats := c.src.LoadStats()
	seen := make(map[string]bool, len(stats))
	room := false
	for _, s := range stats {
		seen[s.URL] = true
		c.mu.Lock()
		prev, published, waiting := -1, time.Time{}, c.refused
		if st := c.backends[s.URL]; st != nil {
			prev, published = st.target, st.published
		}
		c.mu.Unlock()
		t := c.target(s.URL, s, now)
		if t == prev && !waiting && now.Sub(published) < c.cfg.PollInterval {
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, c.cfg.PollInterval)
		view := c.publish(pctx, s.URL, s, t)
		cancel()
		if t > prev || (waiting && view.InFlight < view.Target) {
			room = true
		}
	}
	if c.cfg.Evict && c.cfg.Mode == ModeAdaptive {
		for _, s := range stats {
			c.evictExcess(ctx, s)
		}
	}
	c.mu.Lock()
	groups := map[string]bool{}
	for id, st := range c.backends {
		if !seen[id] {
			delete(c.backends, id)
			c.m.forget(id)
			continue
		}
		groups[st.group] = true
	}
	for g := range c.surges {
		if !groups[g] {
			delete(c.surges, g)
		}
	}
	c.mu.Unlock()
	if room {
		c.broadcast()
	}
}
