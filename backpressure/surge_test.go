package backpressure

import (
	"math/rand/v2"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/vllm-proxy/vllm-proxy/routing"
)

// poisson returns arrival times at rate per second from start until end.
func poisson(rnd *rand.Rand, start, end time.Time, rate float64) []time.Time {
	var out []time.Time
	for t := start; ; {
		t = t.Add(time.Duration(rnd.ExpFloat64() / rate * float64(time.Second)))
		if !t.Before(end) {
			return out
		}
		out = append(out, t)
	}
}

// TestSurgeDetection: on Poisson arrivals at 10/s the detector stays quiet through its
// first horizon, raises few false alarms over ten minutes, notices a 3× rise within a
// second, and takes a rise that lasts as the new baseline.
func TestSurgeDetection(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	alarms, detected := 0, 0
	var delays []time.Duration
	for seed := range uint64(20) {
		rnd := rand.New(rand.NewPCG(seed, 1))
		s := &surge{horizon: 10 * time.Second}
		burstAt := t0.Add(10 * time.Minute)
		for _, at := range poisson(rnd, t0, burstAt, 10) {
			if s.arrive(at) {
				if at.Sub(t0) < 10*time.Second {
					t.Fatalf("seed %d: a surge %s after the first arrival, before a horizon of history", seed, at.Sub(t0))
				}
				alarms++
			}
		}
		for s.active(burstAt) { // let a false alarm end first
			burstAt = burstAt.Add(100 * time.Millisecond)
		}
		for _, at := range poisson(rnd, burstAt, burstAt.Add(time.Minute), 30) {
			if s.arrive(at) && !at.After(burstAt.Add(time.Second)) {
				detected++
				delays = append(delays, at.Sub(burstAt))
				break
			}
		}
		if s.active(burstAt.Add(time.Minute)) {
			t.Errorf("seed %d: still surging after a minute at the new rate", seed)
		}
	}
	// 20 runs of 10 minutes: the simulation behind surgeThreshold says ~2.6 a minute.
	if perMin := float64(alarms) / 200; perMin > 5 || perMin < 0.5 {
		t.Errorf("%.2f false alarms a minute at a steady 10/s, want 0.5–5", perMin)
	}
	if detected < 17 {
		t.Errorf("a 3× rise detected within 1s in %d of 20 runs (delays %v), want at least 17", detected, delays)
	}
}

// TestSurgeCutsBatchToFloor: when interactive arrivals suddenly come much faster than
// their baseline, the controller cuts the backend's batch target to the floor and
// evicts the batch requests beyond it at once, although the interactive requests do not
// need their slots yet (lazy eviction alone would wait); once arrivals slow down the
// surge ends and the target rises again.
func TestSurgeCutsBatchToFloor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, Config{Evict: true, SurgeHorizon: 2 * time.Second, AdmitGap: -1}, 16)
		if err := r.ctl.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		defer r.ctl.Stop()
		time.Sleep(150 * time.Millisecond) // a tick: the controller knows the backend
		slots := r.fillSlots(t, time.Millisecond)
		if len(slots) != 14 {
			t.Fatalf("%d slots, want 14 (16 − reserve 2)", len(slots))
		}
		arrive := func(n int, every time.Duration) {
			for range n {
				for _, p := range r.interactive(t, 1) {
					r.ctl.InteractivePicked(backendURL)
					p.Done(routing.Outcome{})
				}
				time.Sleep(every)
			}
		}
		arrive(15, 200*time.Millisecond) // 3 s at 5/s: the baseline
		if n := countEvicted(slots); n != 0 {
			t.Fatalf("%d batch slots evicted by steady traffic that never filled the backend", n)
		}
		if n := testutil.ToFloat64(r.ctl.m.surges); n != 0 {
			t.Fatalf("surges_total = %v at a steady rate", n)
		}
		arrive(8, 10*time.Millisecond) // 8 arrivals in 80 ms
		if n := testutil.ToFloat64(r.ctl.m.surges); n != 1 {
			t.Fatalf("surges_total = %v after a burst, want 1", n)
		}
		if n := countEvicted(slots); n != 13 {
			t.Errorf("%d of 14 batch slots evicted at the surge, want 13 (all but the floor)", n)
		}
		if tg, _ := r.ctl.Target(backendURL); tg != 1 {
			t.Errorf("target %d during the surge, want the floor, 1", tg)
		}
		if _, ok := r.ctl.TryAcquireSlot(t.Context(), backendURL); ok {
			t.Error("a batch slot beyond the floor was granted during the surge")
		}
		for _, sl := range slots {
			sl.Release()
		}
		time.Sleep(2 * time.Second) // no arrivals: the score falls, the surge ends
		synctest.Wait()
		if tg, _ := r.ctl.Target(backendURL); tg != 14 {
			t.Errorf("target %d after the surge, want 14 again", tg)
		}
	})
}

// TestGroupOf: backends serving the same models share a group whatever the order.
func TestGroupOf(t *testing.T) {
	if groupOf([]string{"a", "b"}) != groupOf([]string{"b", "a"}) {
		t.Error("the order of models changed the group")
	}
	if groupOf([]string{"a", "b"}) == groupOf([]string{"ab"}) || groupOf([]string{"a"}) == groupOf([]string{"b"}) {
		t.Error("different models share a group")
	}
}
