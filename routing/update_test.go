package routing

import (
	"errors"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestUpdateKeepsInFlightPicks(t *testing.T) {
	a := newFakeVLLM(t, "m")
	b := newFakeVLLM(t, "m")
	c := newFakeVLLM(t, "m", "other")
	r, reg := startRouter(t, fastConfig(a.URL, b.URL))

	pa, err := r.Pick(t.Context(), &Request{Model: "m", Exclude: []string{b.URL}})
	if err != nil {
		t.Fatal(err)
	}
	pb, err := r.Pick(t.Context(), &Request{Model: "m", Exclude: []string{a.URL}, Class: ClassBatch})
	if err != nil {
		t.Fatal(err)
	}
	series := func() int {
		n, err := testutil.GatherAndCount(reg, "vllm_proxy_backend_up", "vllm_proxy_backend_load",
			"vllm_proxy_backend_in_flight_requests", "vllm_proxy_backend_ejections_total",
			"vllm_proxy_backend_scrape_errors_total", "vllm_proxy_backend_metrics_stale")
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	perBackend := series() / 2

	// Remove a, keep b with a new capacity, add c.
	if err := r.Update([]BackendConfig{{URL: b.URL, Capacity: 2}, {URL: c.URL}}); err != nil {
		t.Fatal(err)
	}
	if got := series(); got != 2*perBackend {
		t.Fatalf("series after swapping a for c = %d, want %d", got, 2*perBackend)
	}
	out, err := testutil.GatherAndCount(reg, "vllm_proxy_backend_up")
	if err != nil || out != 2 {
		t.Fatalf("backend_up series = %d, %v", out, err)
	}
	for _, s := range r.LoadStats() {
		if s.URL == a.URL {
			t.Fatalf("removed backend still in load stats")
		}
		if s.URL == b.URL && (s.Capacity != 2 || s.InFlightByClass[ClassBatch] != 1 || s.InFlight != 1) {
			t.Fatalf("kept backend lost its state or missed the new capacity: %+v", s)
		}
	}
	// The removed backend's outstanding pick is still Done without touching its deleted series.
	pa.Done(Outcome{Status: 500})
	pa.Done(Outcome{Status: 500}) // a second Done is ignored
	pb.Done(Outcome{Status: 200})
	if got := series(); got != 2*perBackend {
		t.Fatalf("Done on a removed backend re-created series: %d, want %d", got, 2*perBackend)
	}
	eventually(t, "c's models discovered", func() bool {
		pk, err := r.Pick(t.Context(), &Request{Model: "other"})
		if err != nil {
			return false
		}
		pk.Done(Outcome{Status: 200})
		return pk.Backend.ID() == c.URL
	})
	if s := statsOf(t, r, b.URL); s.InFlight != 0 {
		t.Fatalf("b in-flight after Done = %d", s.InFlight)
	}
	if err := r.Update(nil); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Update(nil) = %v, want ErrInvalidConfig", err)
	}
	if err := r.Update([]BackendConfig{{URL: "ftp://x"}, {URL: b.URL}, {URL: b.URL + "/"}}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Update(bad) = %v, want ErrInvalidConfig", err)
	}
	if got := len(r.LoadStats()); got != 2 {
		t.Fatalf("a rejected update changed the pool: %d backends", got)
	}
}

func TestMetricsLint(t *testing.T) {
	a := newFakeVLLM(t, "m")
	r, reg := startRouter(t, fastConfig(a.URL))
	pk, err := r.Pick(t.Context(), &Request{Model: "m"})
	if err != nil {
		t.Fatal(err)
	}
	defer pk.Done(Outcome{Status: 200})
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	want := `
# HELP vllm_proxy_backend_in_flight_requests Requests this proxy replica has in flight to the backend, by traffic class.
# TYPE vllm_proxy_backend_in_flight_requests gauge
vllm_proxy_backend_in_flight_requests{backend="` + a.URL + `",class="batch"} 0
vllm_proxy_backend_in_flight_requests{backend="` + a.URL + `",class="interactive"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "vllm_proxy_backend_in_flight_requests"); err != nil {
		t.Fatal(err)
	}
}
