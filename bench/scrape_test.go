package bench

import (
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const v1Page = `# HELP vllm:prefix_cache_queries_total Prefix cache queries, in terms of number of queried tokens.
# TYPE vllm:prefix_cache_queries_total counter
vllm:prefix_cache_queries_total{engine="0",model_name="m"} %d
vllm:prefix_cache_queries_total{engine="1",model_name="m"} %d
# HELP vllm:prefix_cache_hits_total Prefix cache hits, in terms of number of cached tokens.
# TYPE vllm:prefix_cache_hits_total counter
vllm:prefix_cache_hits_total{engine="0",model_name="m"} %d
vllm:prefix_cache_hits_total{engine="1",model_name="m"} %d
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="m"} %d
vllm:num_requests_waiting{engine="1",model_name="m"} %d
`

const v0Page = `# HELP vllm:gpu_prefix_cache_queries_total GPU prefix cache queries.
# TYPE vllm:gpu_prefix_cache_queries_total counter
vllm:gpu_prefix_cache_queries_total{model_name="m"} %d
# HELP vllm:gpu_prefix_cache_hits_total GPU prefix cache hits.
# TYPE vllm:gpu_prefix_cache_hits_total counter
vllm:gpu_prefix_cache_hits_total{model_name="m"} %d
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{model_name="m"} %d
# HELP vllm:gpu_cache_usage_perc GPU KV-cache usage.
# TYPE vllm:gpu_cache_usage_perc gauge
vllm:gpu_cache_usage_perc{model_name="m"} 0.5
`

func TestParseMetricsV1AndV0(t *testing.T) {
	v1, err := ParseMetrics(strings.NewReader(fmt.Sprintf(v1Page, 100, 300, 40, 60, 2, 5)))
	if err != nil {
		t.Fatal(err)
	}
	if v1 != (MetricsSnapshot{Queries: 400, Hits: 100, HasCounters: true, Waiting: 7}) {
		t.Errorf("v1 snapshot %+v", v1)
	}
	v0, err := ParseMetrics(strings.NewReader(fmt.Sprintf(v0Page, 50, 10, 3)))
	if err != nil {
		t.Fatal(err)
	}
	if v0 != (MetricsSnapshot{Queries: 50, Hits: 10, HasCounters: true, Waiting: 3}) {
		t.Errorf("v0 snapshot %+v", v0)
	}
	none, err := ParseMetrics(strings.NewReader("# TYPE other gauge\nother 1\n"))
	if err != nil || none.HasCounters {
		t.Errorf("page without vLLM metrics: %+v, %v", none, err)
	}
	if _, err := ParseMetrics(strings.NewReader("not{ a metrics page")); err == nil {
		t.Error("garbage page parsed without error")
	}
}

func TestDeltaMath(t *testing.T) {
	d := Delta(MetricsSnapshot{Queries: 1000, Hits: 200, Waiting: 4}, MetricsSnapshot{Queries: 1800, Hits: 800, Waiting: 1})
	if d.PrefixCacheQueries != 800 || d.PrefixCacheHits != 600 || d.PrefixHitRate != 0.75 || d.PeakWaiting != 4 {
		t.Errorf("delta %+v", d)
	}
	// A restarted engine (counters went back) yields zero, not a negative rate.
	d = Delta(MetricsSnapshot{Queries: 1000, Hits: 900}, MetricsSnapshot{Queries: 10, Hits: 5})
	if d.PrefixCacheQueries != 0 || d.PrefixCacheHits != 0 || d.PrefixHitRate != 0 {
		t.Errorf("delta over a reset %+v", d)
	}
	var e EngineStats
	e.add(EngineStats{PrefixCacheQueries: 100, PrefixCacheHits: 50, PeakWaiting: 3})
	e.add(EngineStats{PrefixCacheQueries: 300, PrefixCacheHits: 50, PeakWaiting: 1})
	if e.PrefixHitRate != 0.25 || e.PeakWaiting != 3 {
		t.Errorf("accumulated %+v, want rate 0.25 peak 3", e)
	}
}

// metricsServer serves a V1 (or V0) page whose counters advance by 10 queries and 4 hits
// per scrape and whose waiting gauge follows the value the test sets.
type metricsServer struct {
	srv     *httptest.Server
	scrapes atomic.Int64
	waiting atomic.Int64
}

func startMetrics(t *testing.T, v0 bool) *metricsServer {
	m := &metricsServer{}
	m.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k := int(m.scrapes.Add(1))
		if v0 {
			fmt.Fprintf(w, v0Page, 10*k, 4*k, m.waiting.Load())
			return
		}
		fmt.Fprintf(w, v1Page, 5*k, 5*k, 2*k, 2*k, m.waiting.Load(), 0)
	}))
	t.Cleanup(m.srv.Close)
	return m
}

func TestScrapeDuringRun(t *testing.T) {
	for _, v0 := range []bool{false, true} {
		t.Run(fmt.Sprintf("v0=%t", v0), func(t *testing.T) {
			m := startMetrics(t, v0)
			f := startFake(t, &fakeServer{})
			// The server raises waiting to 9 on its 3rd request and back to 0 on its 20th.
			f.ttft = func(k int) time.Duration {
				switch k {
				case 3:
					m.waiting.Store(9)
					for m.scrapes.Load() < 4 { // hold until a poll has seen it
						time.Sleep(time.Millisecond)
					}
				case 20:
					m.waiting.Store(0)
				}
				return 0
			}
			rep, err := Run(t.Context(), Config{Targets: []string{f.URL()}, Model: "m", Requests: 30,
				Scrape: []string{m.srv.URL + "/metrics"}, ScrapeInterval: 5 * time.Millisecond}, discardLogger())
			if err != nil {
				t.Fatal(err)
			}
			e := rep.Targets[0].Engine
			if e == nil {
				t.Fatal("no engine stats with scrape urls set")
			}
			// Each scrape the server answers adds 10 queries and 4 hits, so the delta
			// between the first and the last scrape read is a multiple of 10/4: the rate is
			// exactly 0.4. A scrape cut off at the end of the run (or late on a loaded
			// machine) is counted by the server but not read, so the queries lie between
			// 10 per read scrape and 10 per served one.
			served := float64(10 * (m.scrapes.Load() - 1))
			q := e.PrefixCacheQueries
			if math.Abs(e.PrefixHitRate-0.4) > 1e-9 || math.Mod(q, 10) != 0 || q < float64(10*(e.Scrapes-1)) || q > served {
				t.Errorf("engine %+v, want hit rate 0.4 and 10 queries per scrape after the first (server answered %d)", e, m.scrapes.Load())
			}
			if e.PeakWaiting != 9 {
				t.Errorf("peak waiting %v, want 9", e.PeakWaiting)
			}
			if e.ScrapeErrors != 0 {
				t.Errorf("scrape errors %d", e.ScrapeErrors)
			}
		})
	}
}
