package backpressure

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/vllm-proxy/vllm-proxy/routing"
)

// TestEvictNewestOnInteractiveArrival: with Evict, when interactive requests arrive on a
// backend that batch fills, the next tick evicts the newest batch slots, as many as the
// interactive requests need beyond the free slots (not down to the target: the reserve
// only limits admission), and no more once the evicted ones are gone.
func TestEvictNewestOnInteractiveArrival(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, Config{Evict: true, ReactInterval: 100 * time.Millisecond, AdmitGap: -1}, 8)
		if err := r.ctl.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		defer r.ctl.Stop()
		slots := r.fillSlots(t, time.Millisecond) // distinct admission times
		if len(slots) != 6 {
			t.Fatalf("%d slots, want 6", len(slots))
		}
		time.Sleep(150 * time.Millisecond)
		synctest.Wait()
		for i, sl := range slots {
			if isClosed(sl.Evicted()) {
				t.Fatalf("slot %d evicted without interactive traffic", i)
			}
		}
		// 4 interactive arrive on 8 slots with 6 batch: 2 over-full, so the 2 newest batch
		// slots go (the target, 8 − 2 − 4 = 2, would allow evicting 4).
		r.interactive(t, 4)
		arrived := time.Now()
		time.Sleep(100 * time.Millisecond)
		synctest.Wait()
		if d := time.Since(arrived); d > 100*time.Millisecond {
			t.Fatalf("checked after %s", d)
		}
		for i, sl := range slots {
			if want := i >= 4; isClosed(sl.Evicted()) != want {
				t.Errorf("slot %d (admitted #%d) evicted = %v, want %v", i, i+1, !want, want)
			}
		}
		if n := testutil.ToFloat64(r.ctl.m.evictions.WithLabelValues(backendURL)); n != 2 {
			t.Errorf("evictions_total = %v, want 2", n)
		}
		for _, sl := range slots[4:] {
			sl.Release()
		}
		time.Sleep(300 * time.Millisecond)
		synctest.Wait()
		if n := testutil.ToFloat64(r.ctl.m.evictions.WithLabelValues(backendURL)); n != 2 {
			t.Errorf("evictions_total = %v after the evicted slots left, want still 2", n)
		}
		for _, sl := range slots[:4] {
			sl.Release()
		}
	})
}

// fillSlots takes batch slots until one is refused, waiting gap between them (in a
// synctest bubble, gap gives each slot its own admission time).
func (r *rig) fillSlots(t *testing.T, gap time.Duration) []*Slot {
	t.Helper()
	var slots []*Slot
	for range 1000 {
		sl, ok := r.ctl.TryAcquireSlot(t.Context(), backendURL)
		if !ok {
			return slots
		}
		slots = append(slots, sl)
		if gap > 0 {
			time.Sleep(gap)
		}
	}
	t.Fatal("1000 slots granted")
	return nil
}

// countEvicted counts the slots the controller asked to stop.
func countEvicted(slots []*Slot) int {
	n := 0
	for _, sl := range slots {
		if isClosed(sl.Evicted()) {
			n++
		}
	}
	return n
}

// TestEvictOnInteractivePick: InteractivePicked evicts at the moment of the pick, with no
// tick (the loop is not even started), one batch slot per interactive request that finds
// the backend full; arrivals that fit in the reserve evict nothing. Without Evict it
// does nothing.
func TestEvictOnInteractivePick(t *testing.T) {
	for _, evict := range []bool{true, false} {
		r := newRig(t, Config{Evict: evict, AdmitGap: -1}, 8)
		slots := r.fillSlots(t, 0)
		if len(slots) != 6 {
			t.Fatalf("evict=%v: %d slots, want 6", evict, len(slots))
		}
		for i, want := range []int{0, 0, 1, 2} { // 6 batch + 2 reserve = 8: the first two fit
			r.interactive(t, 1)
			r.ctl.InteractivePicked(backendURL)
			if !evict {
				want = 0
			}
			if got := countEvicted(slots); got != want {
				t.Errorf("evict=%v: after interactive #%d, %d batch slots evicted, want %d", evict, i+1, got, want)
			}
		}
		for _, sl := range slots {
			sl.Release()
		}
	}
}

// TestFloorYieldsToInteractive: once interactive requests alone fill a backend, the
// controller evicts every batch request there (target 0, below the floor) and grants no
// new one; one interactive request fewer and the floor's batch request stays.
func TestFloorYieldsToInteractive(t *testing.T) {
	for _, c := range []struct{ interactive, evicted int }{{8, 6}, {7, 5}} {
		r := newRig(t, Config{Evict: true, AdmitGap: -1}, 8)
		slots := r.fillSlots(t, 0)
		if len(slots) != 6 {
			t.Fatalf("%d slots, want 6", len(slots))
		}
		picks := r.interactive(t, c.interactive)
		r.ctl.InteractivePicked(backendURL)
		if n := countEvicted(slots); n != c.evicted {
			t.Errorf("%d interactive on 8 slots: %d of 6 batch slots evicted, want %d", c.interactive, n, c.evicted)
		}
		if _, ok := r.ctl.TryAcquireSlot(t.Context(), backendURL); ok {
			t.Errorf("%d interactive on 8 slots: a new batch slot was granted", c.interactive)
		}
		for _, sl := range slots {
			sl.Release()
		}
		for _, p := range picks {
			p.Done(routing.Outcome{})
		}
	}
}
