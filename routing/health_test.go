package routing

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestPassiveEjection(t *testing.T) {
	tests := []struct {
		name     string
		outcomes []Outcome
		ejected  bool
	}{
		{"three 5xx eject", []Outcome{{Status: 502}, {Status: 500}, {Status: 503}}, true},
		{"connect errors eject", []Outcome{{Err: syscall.ECONNREFUSED}, {Err: syscall.ECONNREFUSED}, {Err: syscall.ECONNREFUSED}}, true},
		{"timeouts eject", []Outcome{{Err: context.DeadlineExceeded}, {Err: fmt.Errorf("awaiting headers: %w", context.DeadlineExceeded)}, {Status: 504}}, true},
		{"client 4xx never count", []Outcome{{Status: 400}, {Status: 404}, {Status: 429}, {Status: 400}, {Status: 413}}, false},
		{"client cancel never counts", []Outcome{{Err: context.Canceled}, {Err: fmt.Errorf("copying body: %w", context.Canceled)}, {Err: context.Canceled}}, false},
		{"success resets the count", []Outcome{{Status: 500}, {Status: 500}, {Status: 200}, {Status: 500}, {Status: 500}}, false},
		{"a 4xx is a success for the backend", []Outcome{{Status: 500}, {Status: 500}, {Status: 400}, {Status: 500}}, false},
		{"two failures are not enough", []Outcome{{Status: 500}, {Err: errors.New("eof")}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newFakeVLLM(t, "m")
			b := newFakeVLLM(t, "m")
			r, _ := newIdleRouter(t, fastConfig(a.URL, b.URL))
			for _, o := range tt.outcomes {
				pk, err := r.Pick(t.Context(), &Request{Model: "m", Exclude: []string{b.URL}})
				if err != nil {
					t.Fatal(err)
				}
				pk.Done(o)
			}
			h := r.Health()
			if got := !h.Backends[0].Healthy; got != tt.ejected {
				t.Fatalf("ejected = %v, want %v (%+v)", got, tt.ejected, h.Backends[0])
			}
			wantEj := 0.0
			if tt.ejected {
				wantEj = 1
			}
			if got := testutil.ToFloat64(r.metrics.ejections.WithLabelValues(a.URL)); got != wantEj {
				t.Fatalf("ejections_total = %v, want %v", got, wantEj)
			}
			if got := testutil.ToFloat64(r.metrics.up.WithLabelValues(a.URL)); got != 1-wantEj {
				t.Fatalf("backend_up = %v, want %v", got, 1-wantEj)
			}
			if !tt.ejected {
				return
			}
			if !h.Healthy() || !r.Healthy() {
				t.Fatal("pool reported unhealthy with one healthy backend left")
			}
			for range 10 {
				pk, err := r.Pick(t.Context(), &Request{Model: "m"})
				if err != nil {
					t.Fatal(err)
				}
				if pk.Backend.ID() != b.URL {
					t.Fatalf("picked ejected backend %s", pk.Backend.ID())
				}
				pk.Done(Outcome{Status: 200})
			}
			if _, err := r.Pick(t.Context(), &Request{Model: "m", Exclude: []string{b.URL}}); !errors.Is(err, ErrNoBackend) {
				t.Fatalf("Pick with the only healthy backend excluded: %v, want ErrNoBackend", err)
			}
		})
	}
}

// TestReprobeBackoff drives the health loop by hand with a fake clock: an ejected backend is
// re-probed after base, 2×base, 4×base (capped), and one healthy probe restores it.
func TestReprobeBackoff(t *testing.T) {
	f := newFakeVLLM(t, "m")
	clock := newFakeClock()
	cfg := fastConfig(f.URL)
	cfg.EjectBackoffBase, cfg.EjectBackoffCap = 100*time.Millisecond, 300*time.Millisecond
	cfg.HealthCheckInterval = time.Hour
	r, _ := newIdleRouter(t, cfg, WithClock(clock.Now))
	ctx := t.Context()
	f.setHealth(http.StatusServiceUnavailable)

	r.healthAll(ctx) // first probe is due at once, fails, ejects
	if r.Healthy() {
		t.Fatal("backend healthy after a failed probe")
	}
	probes := f.healthHits.Load()
	expectProbe := func(after time.Duration, want bool) {
		t.Helper()
		clock.Advance(after)
		before := f.healthHits.Load()
		r.healthAll(ctx)
		if got := f.healthHits.Load() > before; got != want {
			t.Fatalf("probe at +%s: probed = %v, want %v", after, got, want)
		}
	}
	expectProbe(99*time.Millisecond, false)
	expectProbe(1*time.Millisecond, true) // +100ms: first re-probe fails, back-off 200ms
	expectProbe(199*time.Millisecond, false)
	expectProbe(1*time.Millisecond, true) // +200ms: fails, back-off 300ms (cap)
	expectProbe(299*time.Millisecond, false)
	expectProbe(1*time.Millisecond, true) // +300ms: fails, back-off stays 300ms
	if got := r.Health().Backends[0].NextProbeMS; got != 300 {
		t.Fatalf("next_probe_ms = %d, want the 300ms cap", got)
	}
	f.setHealth(http.StatusOK)
	expectProbe(300*time.Millisecond, true)
	if !r.Healthy() {
		t.Fatal("healthy probe did not restore the backend")
	}
	if got := f.healthHits.Load() - probes; got != 4 {
		t.Fatalf("re-probes = %d, want 4", got)
	}
	expectProbe(time.Minute, false) // healthy again: next probe after HealthCheckInterval
}

func TestActiveHealth(t *testing.T) {
	a := newFakeVLLM(t, "m")
	b := newFakeVLLM(t, "m")
	r, _ := startRouter(t, fastConfig(a.URL, b.URL))
	a.setHealth(http.StatusInternalServerError)
	eventually(t, "a ejected by the active check", func() bool { return !r.Health().Backends[0].Healthy })
	if !r.Healthy() {
		t.Fatal("router unhealthy with b still healthy")
	}
	b.setHealth(http.StatusServiceUnavailable)
	eventually(t, "no healthy backend", func() bool { return !r.Healthy() })
	if _, err := r.Pick(t.Context(), &Request{Model: "m"}); !errors.Is(err, ErrNoBackend) {
		t.Fatalf("Pick with every backend down: %v, want ErrNoBackend", err)
	}
	a.setHealth(http.StatusOK)
	eventually(t, "a restored", func() bool { return r.Health().Backends[0].Healthy })
	pk, err := r.Pick(t.Context(), &Request{Model: "m"})
	if err != nil || pk.Backend.ID() != a.URL {
		t.Fatalf("Pick after restore = %v, %v; want %s", pk, err, a.URL)
	}
	pk.Done(Outcome{Status: 200})
}

func TestDeadBackendAtStart(t *testing.T) {
	a := newFakeVLLM(t, "m")
	dead := newFakeVLLM(t, "m")
	dead.Close() // connection refused from now on
	r, _ := startRouter(t, fastConfig(a.URL, dead.URL))
	h := r.Health()
	if !h.Backends[0].Healthy || h.Backends[1].Healthy || h.Backends[1].LastError == "" {
		t.Fatalf("health after start = %+v, want a healthy, dead ejected with an error", h)
	}
	for _, s := range r.LoadStats() {
		if s.URL == dead.URL && (!s.MetricsStale || s.Healthy) {
			t.Fatalf("dead backend stats %+v", s)
		}
	}
}

// TestFlappingBackendBacksOffFurther: /health answers yes but every request fails, so the
// backend is restored and ejected again and again; each round waits longer, up to the cap.
func TestFlappingBackendBacksOffFurther(t *testing.T) {
	f := newFakeVLLM(t, "m")
	clock := newFakeClock()
	cfg := fastConfig(f.URL)
	cfg.EjectBackoffBase, cfg.EjectBackoffCap = 100*time.Millisecond, 350*time.Millisecond
	cfg.HealthCheckInterval = time.Hour
	r, _ := newIdleRouter(t, cfg, WithClock(clock.Now))
	fail3 := func() {
		t.Helper()
		for range 3 {
			pk, err := r.Pick(t.Context(), &Request{Model: "m"})
			if err != nil {
				t.Fatal(err)
			}
			pk.Done(Outcome{Status: http.StatusInternalServerError})
		}
		if r.Healthy() {
			t.Fatal("not ejected after 3 failures")
		}
	}
	for _, want := range []int64{100, 200, 350, 350} {
		fail3()
		if got := r.Health().Backends[0].NextProbeMS; got != want {
			t.Fatalf("back-off after a flap = %dms, want %dms", got, want)
		}
		clock.Advance(time.Duration(want) * time.Millisecond)
		r.healthAll(t.Context()) // /health is fine: restored
		if !r.Healthy() {
			t.Fatal("not restored by a healthy probe")
		}
	}
	// Stable for longer than the cap: the next ejection starts from base again.
	clock.Advance(time.Second)
	fail3()
	if got := r.Health().Backends[0].NextProbeMS; got != 100 {
		t.Fatalf("back-off after a long healthy spell = %dms, want 100ms", got)
	}
}
