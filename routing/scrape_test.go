package routing

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// fakeClock is a settable clock for WithClock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// newIdleRouter builds a Router that is not started: tests drive scrapes and probes by hand.
func newIdleRouter(t *testing.T, cfg Config, opts ...Option) (*Router, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	r, err := New(cfg, nil, reg, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(r.Stop)
	r.discoverAll(t.Context())
	return r, reg
}

func statsOf(t *testing.T, r *Router, id string) BackendStats {
	t.Helper()
	for _, s := range r.LoadStats() {
		if s.URL == id {
			return s
		}
	}
	t.Fatalf("no load stats for %s", id)
	return BackendStats{}
}

func TestScrapeStaleAfterThreeMisses(t *testing.T) {
	f := newFakeVLLM(t, "m")
	f.setLoad(6, 4)
	clock := newFakeClock()
	r, reg := newIdleRouter(t, fastConfig(f.URL), WithClock(clock.Now))
	b := r.Backends()[0]
	ctx := t.Context()

	r.scrapeOne(ctx, b)
	s := statsOf(t, r, f.URL)
	if s.MetricsStale || s.Running != 6 || s.Waiting != 4 || s.Load != 1 || s.MetricsAgeMS != 0 {
		t.Fatalf("after a good scrape: %+v", s)
	}
	clock.Advance(1500 * time.Millisecond)
	if got := statsOf(t, r, f.URL).MetricsAgeMS; got != 1500 {
		t.Fatalf("metrics_age_ms = %d, want 1500", got)
	}

	pk, err := r.Pick(ctx, &Request{Model: "m"})
	if err != nil {
		t.Fatal(err)
	}
	defer pk.Done(Outcome{Status: 200})
	f.setMetricsStatus(500)
	for miss := 1; miss <= 3; miss++ {
		r.scrapeOne(ctx, b)
		s = statsOf(t, r, f.URL)
		if stale := miss >= 3; s.MetricsStale != stale {
			t.Fatalf("after %d missed scrapes metrics_stale = %v, want %v", miss, s.MetricsStale, stale)
		}
	}
	// Stale: load is in-flight alone (1 of capacity 8), not the last scrape's 10/8.
	if s.Load != 1.0/8 {
		t.Fatalf("stale load = %v, want %v", s.Load, 1.0/8)
	}
	errs := testutil.ToFloat64(r.metrics.scrapeErrors.WithLabelValues(f.URL))
	if errs != 3 {
		t.Fatalf("scrape_errors_total = %v, want 3", errs)
	}
	if v := testutil.ToFloat64(r.metrics.stale.WithLabelValues(f.URL)); v != 1 {
		t.Fatalf("backend_metrics_stale = %v, want 1", v)
	}
	f.setMetricsStatus(200)
	r.scrapeOne(ctx, b)
	if s = statsOf(t, r, f.URL); s.MetricsStale {
		t.Fatalf("metrics still stale after a good scrape: %+v", s)
	}
	if n, err := testutil.GatherAndCount(reg, "vllm_proxy_backend_scrape_duration_seconds"); err != nil || n != 1 {
		t.Fatalf("scrape duration series = %d, %v; want 1", n, err)
	}
}

func TestScrapeNotVLLMCountsAsMiss(t *testing.T) {
	f := newFakeVLLM(t, "m")
	f.setMetrics("# TYPE go_goroutines gauge\ngo_goroutines 3\n")
	r, _ := newIdleRouter(t, fastConfig(f.URL))
	b := r.Backends()[0]
	for range 3 {
		r.scrapeOne(t.Context(), b)
	}
	if s := statsOf(t, r, f.URL); !s.MetricsStale || s.MetricsAgeMS != -1 {
		t.Fatalf("a page without vllm gauges should leave metrics stale and unset: %+v", s)
	}
}

// TestLoadCorrectedByDispatchesSinceScrape: a burst between scrapes shows in the load at once,
// and the correction restarts when a scrape sees the requests.
func TestLoadCorrectedByDispatchesSinceScrape(t *testing.T) {
	f := newFakeVLLM(t, "m")
	f.setLoad(2, 0)
	r, _ := newIdleRouter(t, fastConfig(f.URL))
	b := r.Backends()[0]
	ctx := t.Context()
	r.scrapeOne(ctx, b)
	if got := statsOf(t, r, f.URL).Load; got != 2.0/8 {
		t.Fatalf("load after scrape = %v, want 0.25", got)
	}
	var picks []*Pick
	for range 3 {
		pk, err := r.Pick(ctx, &Request{Model: "m"})
		if err != nil {
			t.Fatal(err)
		}
		picks = append(picks, pk)
	}
	if got := statsOf(t, r, f.URL).Load; got != 5.0/8 {
		t.Fatalf("load after a burst of 3 = %v, want %v", got, 5.0/8)
	}
	picks[0].Done(Outcome{Status: 200})
	if got := statsOf(t, r, f.URL).Load; got != 4.0/8 {
		t.Fatalf("load after one finished = %v, want %v", got, 4.0/8)
	}
	// The next scrape sees the two remaining requests running: no double counting.
	f.setLoad(4, 0)
	r.scrapeOne(ctx, b)
	if got := statsOf(t, r, f.URL).Load; got != 4.0/8 {
		t.Fatalf("load after the scrape caught up = %v, want %v", got, 4.0/8)
	}
	// Requests dispatched before that scrape do not decrement the new correction.
	picks[1].Done(Outcome{Status: 200})
	picks[2].Done(Outcome{Status: 200})
	if s := statsOf(t, r, f.URL); s.InFlight != 0 || s.Load != 4.0/8 {
		t.Fatalf("after all done: %+v, want in_flight 0 and load 0.5 until the next scrape", s)
	}
}

func TestPrefixHitRateFromCounterDeltas(t *testing.T) {
	f := newFakeVLLM(t, "m")
	r, _ := newIdleRouter(t, fastConfig(f.URL))
	b := r.Backends()[0]
	page := func(q, h float64) string {
		return fmt.Sprintf("vllm:num_requests_running{engine=\"0\"} 0\n"+
			"vllm:prefix_cache_queries_total{engine=\"0\"} %g\nvllm:prefix_cache_hits_total{engine=\"0\"} %g\n"+
			"vllm:prefix_cache_queries_total{engine=\"1\"} %g\nvllm:prefix_cache_hits_total{engine=\"1\"} %g\n", q, h, q, h)
	}
	steps := []struct {
		q, h float64
		want float64
	}{
		{100, 10, 0},    // first scrape: no delta yet
		{200, 90, 0.8},  // Δq 200, Δh 160
		{200, 90, 0.8},  // no traffic: keep the last rate
		{50, 5, 0.8},    // counter reset: keep the last rate
		{150, 105, 1.0}, // Δq 200, Δh 200
	}
	for i, st := range steps {
		f.setMetrics(page(st.q, st.h))
		r.scrapeOne(t.Context(), b)
		if got := statsOf(t, r, f.URL).PrefixCacheHitRate; got != st.want {
			t.Fatalf("step %d: prefix_cache_hit_rate = %v, want %v", i, got, st.want)
		}
	}
}

// memCoordinator is an in-memory ScrapeCoordinator shared by two routers, standing in for
// the Redis one: the first router to claim a backend scrapes it for the TTL.
type memCoordinator struct {
	*coordState
	self string
}

type coordState struct {
	mu      sync.Mutex
	owner   map[string]string
	payload map[string][]byte
}

func newCoordState() *coordState {
	return &coordState{owner: map[string]string{}, payload: map[string][]byte{}}
}

func (s *coordState) as(self string) *memCoordinator {
	return &memCoordinator{coordState: s, self: self}
}

func (c *memCoordinator) Claim(_ context.Context, backend string, _ time.Duration) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if o, ok := c.owner[backend]; ok && o != c.self {
		return false, nil
	}
	c.owner[backend] = c.self
	return true, nil
}

func (c *memCoordinator) Publish(_ context.Context, backend string, p []byte, _ time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.payload[backend] = append([]byte(nil), p...)
	return nil
}

func (c *memCoordinator) Latest(_ context.Context, backend string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.payload[backend], nil
}

func TestScrapeCoordinatorSharesOneScrape(t *testing.T) {
	f := newFakeVLLM(t, "m")
	f.setLoad(3, 2)
	shared := newCoordState()
	clock := newFakeClock()
	r1, _ := newIdleRouter(t, fastConfig(f.URL), WithScrapeCoordinator(shared.as("r1")), WithClock(clock.Now))
	r2, _ := newIdleRouter(t, fastConfig(f.URL), WithScrapeCoordinator(shared.as("r2")), WithClock(clock.Now))
	ctx := t.Context()

	r1.scrapeOne(ctx, r1.Backends()[0])
	hits := f.metricsHits.Load()
	r2.scrapeOne(ctx, r2.Backends()[0])
	if got := f.metricsHits.Load(); got != hits {
		t.Fatalf("replica without the claim scraped the backend (%d -> %d hits)", hits, got)
	}
	if s := statsOf(t, r2, f.URL); s.Running != 3 || s.Waiting != 2 || s.MetricsStale {
		t.Fatalf("replica 2 did not take the shared scrape: %+v", s)
	}
	// Reading the same payload again within StaleAfter intervals is not a miss.
	for range 5 {
		r2.scrapeOne(ctx, r2.Backends()[0])
	}
	if got := testutil.ToFloat64(r2.metrics.scrapeErrors.WithLabelValues(f.URL)); got != 0 {
		t.Fatalf("re-reading a current shared scrape counted %v errors", got)
	}
	// The owner stops publishing: once the payload is older than 3 intervals (3×20ms),
	// every read is a miss and replica 2 goes stale after 3 of them.
	clock.Advance(61 * time.Millisecond)
	for i := 1; i <= 3; i++ {
		r2.scrapeOne(ctx, r2.Backends()[0])
		if s := statsOf(t, r2, f.URL); s.MetricsStale != (i == 3) {
			t.Fatalf("after %d reads of an old shared scrape, stale = %v", i, s.MetricsStale)
		}
	}
}

// TestHangingBackendDelaysNobody: a backend whose /metrics and /health never answer does not
// slow the scrapes of the others (each backend is scraped on its own schedule).
func TestHangingBackendDelaysNobody(t *testing.T) {
	good := newFakeVLLM(t, "m")
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // until the router gives up
	}))
	t.Cleanup(hang.Close)
	cfg := fastConfig(good.URL, hang.URL)
	cfg.ScrapeTimeout = 1500 * time.Millisecond
	cfg.ProbeTimeout = 1500 * time.Millisecond
	cfg.Backends[1].Models = []string{"m"}
	start := time.Now()
	r, _ := startRouter(t, cfg) // Start's first round waits for the hanging backend once
	startup := time.Since(start)
	if limit := 2 * cfg.ProbeTimeout; startup > limit {
		t.Fatalf("Start took %s with one hanging backend, want under %s (models, health and scrape run at once)", startup, limit)
	}
	before := good.metricsHits.Load()
	begin := time.Now()
	eventually(t, "ten scrapes of the good backend", func() bool { return good.metricsHits.Load() >= before+10 })
	if took := time.Since(begin); took >= cfg.ScrapeTimeout {
		t.Fatalf("10 scrapes at a 20ms interval took %s (startup %s): the hanging backend held them up", took, startup)
	}
	if s := statsOf(t, r, good.URL); s.MetricsStale {
		t.Fatalf("good backend stale: %+v", s)
	}
}

func TestScrapeSanitizesValues(t *testing.T) {
	f := newFakeVLLM(t, "m")
	f.setMetrics("vllm:num_requests_running -5\nvllm:num_requests_waiting -3\nvllm:kv_cache_usage_perc 7\n")
	r, _ := newIdleRouter(t, fastConfig(f.URL))
	r.scrapeOne(t.Context(), r.Backends()[0])
	if s := statsOf(t, r, f.URL); s.Running != 0 || s.Waiting != 0 || s.Load != 0 || s.KVCacheUsage != 1 || s.MetricsStale {
		t.Fatalf("stats from a broken exporter = %+v, want running/waiting/load 0 and kv 1", s)
	}
	// A corrupt shared payload is clamped the same way.
	r.applyScrape(t.Context(), r.Backends()[0], EngineMetrics{Running: -100, KVCacheUsage: -1}, time.Now())
	if s := statsOf(t, r, f.URL); s.Running != 0 || s.KVCacheUsage != 0 || s.Load != 0 {
		t.Fatalf("stats from a corrupt shared scrape = %+v", s)
	}
}
