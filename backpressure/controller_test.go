package backpressure

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/vllm-proxy/vllm-proxy/routing"
	"github.com/vllm-proxy/vllm-proxy/state"
)

// rig is a controller over a real, not started, Router (no backend is ever contacted:
// Pick and the in-flight counts work without it) and the in-memory batch budget.
type rig struct {
	router *routing.Router
	store  *state.Store
	budget *state.BatchBudget
	ctl    *Controller
	reg    *prometheus.Registry
}

const backendURL = "http://127.0.0.1:9"

func newRig(t *testing.T, cfg Config, capacity int) *rig {
	t.Helper()
	reg := prometheus.NewRegistry()
	r, err := routing.New(routing.Config{Backends: []routing.BackendConfig{{URL: backendURL, Capacity: capacity, Models: []string{"m"}}}},
		slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatalf("routing.New: %v", err)
	}
	u, _ := state.ParseURL("memory")
	s, err := state.Open(t.Context(), u, state.Config{ReplicaID: "r1"}, nil, nil)
	if err != nil {
		t.Fatalf("state.Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	b, err := state.NewBatchBudget(s, state.BudgetConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ctl, err := New(cfg, r, b, nil, reg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &rig{router: r, store: s, budget: b, ctl: ctl, reg: reg}
}

// fill takes slots until one is refused and returns the release functions.
func (r *rig) fill(t *testing.T) []func() {
	t.Helper()
	var rels []func()
	for range 1000 {
		rel, ok := r.ctl.TryAcquire(t.Context(), backendURL)
		if !ok {
			return rels
		}
		rels = append(rels, rel)
	}
	t.Fatal("1000 slots granted")
	return nil
}

func releaseAll(rels []func()) {
	for _, rel := range rels {
		rel()
	}
}

// interactive picks n interactive requests on the backend, as the proxy does when they
// arrive, and returns the picks (Done them when they "finish").
func (r *rig) interactive(t *testing.T, n int) []*routing.Pick {
	t.Helper()
	var picks []*routing.Pick
	for range n {
		p, err := r.router.Pick(t.Context(), &routing.Request{Model: "m", Class: routing.ClassInteractive})
		if err != nil {
			t.Fatalf("Pick: %v", err)
		}
		picks = append(picks, p)
	}
	return picks
}

// TestWorkConservation: with no interactive traffic batch gets the whole backend but the
// reserve, and with no reserve the whole backend.
func TestWorkConservation(t *testing.T) {
	for _, tc := range []struct {
		reserve, capacity, want int
	}{
		{0, 8, 6},   // default reserve 2
		{-1, 8, 8},  // none
		{4, 64, 50}, // MaxConcurrent
	} {
		r := newRig(t, Config{InteractiveReserve: tc.reserve, AdmitGap: -1}, tc.capacity)
		rels := r.fill(t)
		if len(rels) != tc.want {
			t.Errorf("reserve %d capacity %d: batch got %d slots, want %d", tc.reserve, tc.capacity, len(rels), tc.want)
		}
		releaseAll(rels)
		if again := r.fill(t); len(again) != tc.want {
			t.Errorf("after release: %d slots, want %d", len(again), tc.want)
		}
	}
}

// TestReactsToInteractiveArrival: an interactive request picked on the backend lowers the
// batch target for the very next slot request, with no time passing (no poll, no tick);
// when the interactive requests end, the loop raises the target and wakes a batch
// request waiting in Acquire: within one ReactInterval without a peak window, and once
// the peak has left the window with one.
func TestReactsToInteractiveArrival(t *testing.T) {
	for _, tc := range []struct {
		window   time.Duration
		min, max time.Duration // when the waiting batch request gets its slot
	}{
		{0, 0, 100 * time.Millisecond},
		{2 * time.Second, 1700 * time.Millisecond, 2100 * time.Millisecond},
	} {
		t.Run(fmt.Sprint("window ", tc.window), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { reactsToInteractiveArrival(t, tc.window, tc.min, tc.max) })
		})
	}
}

func reactsToInteractiveArrival(t *testing.T, window, minWait, maxWait time.Duration) {
	r := newRig(t, Config{ReactInterval: 100 * time.Millisecond, PollInterval: 2 * time.Second, PeakWindow: window, AdmitGap: -1}, 8)
	if err := r.ctl.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer r.ctl.Stop()
	start := time.Now()

	rels := r.fill(t) // 6: capacity 8 − reserve 2
	if len(rels) != 6 {
		t.Fatalf("idle: %d slots, want 6", len(rels))
	}
	releaseAll(rels[3:])
	rels = rels[:3]

	picks := r.interactive(t, 3) // 3 interactive arrive: 8 − 2 − 3 = 3 left for batch
	if _, ok := r.ctl.TryAcquire(t.Context(), backendURL); ok {
		t.Fatal("a 4th batch slot was granted right after 3 interactive arrivals")
	}
	if got, _ := r.ctl.Target(backendURL); got != 3 {
		t.Errorf("target after the arrivals = %d, want 3", got)
	}
	if d := time.Since(start); d != 0 {
		t.Errorf("reaction took %s of virtual time, want none", d)
	}
	if n := testutil.ToFloat64(r.ctl.m.throttles.WithLabelValues(backendURL)); n < 1 {
		t.Errorf("throttle events = %v, want at least 1", n)
	}

	// A batch request waits for a slot; the interactive requests end.
	got := make(chan time.Time, 1)
	go func() {
		rel, err := r.ctl.Acquire(t.Context(), backendURL)
		if err != nil {
			t.Errorf("Acquire: %v", err)
			return
		}
		got <- time.Now()
		rel()
	}()
	synctest.Wait()
	select {
	case <-got:
		t.Fatal("Acquire returned while the backend was at its target")
	default:
	}
	ended := time.Now()
	for _, p := range picks {
		p.Done(routing.Outcome{Status: 200})
	}
	at := <-got
	if d := at.Sub(ended); d < minWait || d > maxWait {
		t.Errorf("the waiting batch request got its slot %s after interactive traffic left, want %s–%s", d, minWait, maxWait)
	}
	releaseAll(rels)
}

// TestAcquireWakesOnRelease: a batch request waiting for a full backend gets the slot
// the moment another batch request releases one, without waiting for a tick.
func TestAcquireWakesOnRelease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, Config{InteractiveReserve: -1, AdmitGap: -1}, 2) // no loop started: only releases wake
		rels := r.fill(t)
		got := make(chan func(), 1)
		go func() {
			rel, err := r.ctl.Acquire(t.Context(), backendURL)
			if err != nil {
				t.Errorf("Acquire: %v", err)
			}
			got <- rel
		}()
		synctest.Wait()
		start := time.Now()
		rels[0]()
		rel := <-got
		if d := time.Since(start); d != 0 {
			t.Errorf("woke after %s", d)
		}
		rel()
		rels[1]()

		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		rels = r.fill(t)
		if _, err := r.ctl.Acquire(ctx, backendURL); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Acquire on a full backend until ctx ended = %v, want DeadlineExceeded", err)
		}
		releaseAll(rels)
	})
}

// TestPollModeIgnoresLiveSignals: the seed's controller does not see interactive
// arrivals (it reads only the scraped waiting count on its poll).
func TestPollModeIgnoresLiveSignals(t *testing.T) {
	r := newRig(t, Config{Mode: ModePoll}, 8)
	r.interactive(t, 6)
	if rels := r.fill(t); len(rels) != 8 {
		t.Errorf("poll mode granted %d slots, want the full 8 (no reserve, no live signal)", len(rels))
	}
}

func TestModeOffGrantsEverything(t *testing.T) {
	r := newRig(t, Config{Mode: ModeOff}, 1)
	for range 100 {
		if _, ok := r.ctl.TryAcquire(t.Context(), backendURL); !ok {
			t.Fatal("mode off refused a slot")
		}
	}
}

// TestMetricsAndForget checks the gauges' exposition and that a backend's series go when
// it leaves the pool.
func TestMetricsAndForget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, Config{ReactInterval: 50 * time.Millisecond, AdmitGap: -1}, 8)
		if err := r.ctl.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		defer r.ctl.Stop()
		picks := r.interactive(t, 2)
		rels := r.fill(t) // 8 − 2 − 2 = 4
		if len(rels) != 4 {
			t.Fatalf("got %d slots, want 4", len(rels))
		}
		want := `
# HELP vllm_proxy_backpressure_batch_target Batch concurrency target of the backend (the lowest any live replica set).
# TYPE vllm_proxy_backpressure_batch_target gauge
vllm_proxy_backpressure_batch_target{backend="http://127.0.0.1:9"} 4
# HELP vllm_proxy_backpressure_in_flight_requests Requests in flight on the backend over every replica, by traffic class, as the controller last saw them.
# TYPE vllm_proxy_backpressure_in_flight_requests gauge
vllm_proxy_backpressure_in_flight_requests{backend="http://127.0.0.1:9",class="batch"} 4
vllm_proxy_backpressure_in_flight_requests{backend="http://127.0.0.1:9",class="interactive"} 2
# HELP vllm_proxy_backpressure_refused_slots_total Batch slot requests refused because the backend was at its batch target.
# TYPE vllm_proxy_backpressure_refused_slots_total counter
vllm_proxy_backpressure_refused_slots_total{backend="http://127.0.0.1:9"} 1
`
		if err := testutil.GatherAndCompare(r.reg, strings.NewReader(want),
			"vllm_proxy_backpressure_batch_target", "vllm_proxy_backpressure_in_flight_requests",
			"vllm_proxy_backpressure_refused_slots_total"); err != nil {
			t.Error(err)
		}
		releaseAll(rels)
		for _, p := range picks {
			p.Done(routing.Outcome{})
		}
		if err := r.router.Update([]routing.BackendConfig{{URL: "http://127.0.0.1:10", Models: []string{"m"}}}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(60 * time.Millisecond) // one tick, virtual time
		synctest.Wait()
		if n, err := testutil.GatherAndCount(r.reg, "vllm_proxy_backpressure_batch_target"); err != nil || n != 1 {
			t.Errorf("after the backend left: %d target series (%v), want only the new backend's", n, err)
		}
		if _, ok := r.ctl.Target(backendURL); ok {
			t.Error("the removed backend still has a target")
		}
	})
}

// TestAdmitGapScales: once batch requests have finished on a backend, the gap is their
// mean duration over the backend's batch target when that is below AdmitGap (80 ms for a
// target of 8 − 2 − 1 = 5: 16 ms), so batch can stay at its target on a backend whose
// slots free faster than one per AdmitGap; an evicted request's short stay does not
// shrink it.
func TestAdmitGapScales(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, Config{Evict: true}, 8)
		picks := r.interactive(t, 1)
		sl, ok := r.ctl.TryAcquireSlot(t.Context(), backendURL)
		if !ok {
			t.Fatal("first batch slot refused")
		}
		time.Sleep(80 * time.Millisecond)
		sl.Release()
		time.Sleep(20 * time.Millisecond)
		first, ok := r.ctl.TryAcquireSlot(t.Context(), backendURL)
		if !ok {
			t.Fatal("refused 100 ms after the last admission")
		}
		time.Sleep(10 * time.Millisecond)
		if _, ok := r.ctl.TryAcquireSlot(t.Context(), backendURL); ok {
			t.Fatal("granted 10 ms after the last admission, inside the 16 ms gap")
		}
		time.Sleep(6 * time.Millisecond)
		second, ok := r.ctl.TryAcquireSlot(t.Context(), backendURL)
		if !ok {
			t.Fatal("refused 16 ms after the last admission: the gap did not scale")
		}
		first.evict()
		first.Release() // held 16 ms, but evicted: counted, it would make the gap 14.7 ms
		time.Sleep(15500 * time.Microsecond)
		if _, ok := r.ctl.TryAcquireSlot(t.Context(), backendURL); ok {
			t.Error("granted 15.5 ms after the last admission: an evicted request shrank the gap")
		}
		second.Release()
		for _, p := range picks {
			p.Done(routing.Outcome{})
		}
	})
}

// TestAdmitGap: this replica's batch admissions on a backend are at least AdmitGap apart
// (so batch prefills do not share an engine step), with interactive traffic in flight or
// not, and the loop wakes a line waiting out the gap; with the gap off admissions are back
// to back; a refusal by the budget does not start a gap.
func TestAdmitGap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, Config{ReactInterval: 100 * time.Millisecond}, 8)
		if err := r.ctl.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		defer r.ctl.Stop()
		if rels := r.fill(t); len(rels) != 1 {
			t.Fatalf("no interactive traffic: %d slots back to back, want 1 (then the gap)", len(rels))
		} else {
			releaseAll(rels)
		}
		picks := r.interactive(t, 1)
		if _, ok := r.ctl.TryAcquire(t.Context(), backendURL); ok {
			t.Fatal("a batch slot was granted at once after another, with interactive traffic")
		}
		start := time.Now()
		got := make(chan time.Duration, 1)
		go func() {
			rel, err := r.ctl.Acquire(t.Context(), backendURL)
			if err != nil {
				t.Errorf("Acquire: %v", err)
				return
			}
			got <- time.Since(start)
			rel()
		}()
		if d := <-got; d < 100*time.Millisecond || d > 200*time.Millisecond {
			t.Errorf("the waiting line got its slot after %s, want 100–200ms", d)
		}
		for _, p := range picks {
			p.Done(routing.Outcome{})
		}
	})
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, Config{AdmitGap: -1}, 8)
		r.interactive(t, 1)
		if rels := r.fill(t); len(rels) != 5 {
			t.Errorf("gap off: %d slots back to back, want 5 (8 − 2 − 1)", len(rels))
		}
	})
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, Config{}, 4)
		r.interactive(t, 1) // target 4 − 2 − 1 = 1
		rel, ok := r.ctl.TryAcquire(t.Context(), backendURL)
		if !ok {
			t.Fatal("first batch slot refused")
		}
		time.Sleep(100 * time.Millisecond)
		if _, ok := r.ctl.TryAcquire(t.Context(), backendURL); ok {
			t.Fatal("a slot beyond the target was granted")
		}
		rel()
		if _, ok := r.ctl.TryAcquire(t.Context(), backendURL); !ok {
			t.Error("refused after the gap: the budget's refusal started a new gap")
		}
	})
}
