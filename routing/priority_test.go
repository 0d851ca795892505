package routing

import "testing"

func TestPriorityDetection(t *testing.T) {
	on := newFakeVLLM(t, "m")
	on.priority = "on"
	off := newFakeVLLM(t, "m")
	off.priority = "off"
	unknown := newFakeVLLM(t, "m")
	forced := newFakeVLLM(t, "m")
	forced.priority = "off"
	yes := true
	cfg := fastConfig(on.URL, off.URL, unknown.URL)
	cfg.Backends = append(cfg.Backends, BackendConfig{URL: forced.URL, PriorityScheduling: &yes})
	r, _ := startRouter(t, cfg)
	want := map[string]bool{on.URL: true, off.URL: false, unknown.URL: false, forced.URL: true}
	// Detection runs in the background after Start.
	eventually(t, "priority detected", func() bool { return r.Backends()[0].PriorityScheduling() })
	for _, b := range r.Backends() {
		if got := b.PriorityScheduling(); got != want[b.ID()] {
			t.Errorf("%s: PriorityScheduling() = %v, want %v", b.ID(), got, want[b.ID()])
		}
	}
	state := func(b *Backend) priorityState {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.prio
	}
	eventually(t, "fcfs detected on the 400 backend", func() bool { return state(r.Backends()[1]) == priorityOff })
	b := r.Backends()[2]
	b.mu.Lock()
	st := b.prio
	b.mu.Unlock()
	if st != priorityUnknown {
		t.Errorf("an inconclusive probe set the state to %d", st)
	}
	// Detected backends are asked once; an inconclusive one at most maxPriorityProbes times
	// over the following model refreshes (50ms apart here).
	modelsBefore := unknown.modelsHits.Load()
	eventually(t, "several model refreshes", func() bool { return unknown.modelsHits.Load() > modelsBefore+maxPriorityProbes+1 })
	if got := unknown.completeHits.Load(); got != maxPriorityProbes {
		t.Errorf("inconclusive backend probed %d times, want %d", got, maxPriorityProbes)
	}
	if got := on.completeHits.Load() + off.completeHits.Load() + forced.completeHits.Load(); got != 2 {
		t.Errorf("conclusive and configured backends probed %d times in all, want 2", got)
	}
}
