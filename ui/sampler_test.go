package ui

import (
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// fakeClock is a test clock advanced by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

// exportedCounters registers, on a fresh registry, counters with the names and labels
// the proxy, batch and routing packages export.
type exportedCounters struct {
	reg       *prometheus.Registry
	requests  *prometheus.CounterVec
	lines     *prometheus.CounterVec
	bytes     prometheus.Counter
	uploads   prometheus.Counter
	decisions *prometheus.CounterVec
}

func newExportedCounters(t *testing.T) *exportedCounters {
	t.Helper()
	e := &exportedCounters{reg: prometheus.NewRegistry()}
	e.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vllm_proxy_requests_total", Help: "h"}, []string{"model", "backend", "code", "class"})
	e.lines = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vllm_proxy_batch_lines_recorded_total", Help: "h"}, []string{"outcome"})
	e.bytes = prometheus.NewCounter(prometheus.CounterOpts{Name: "vllm_proxy_batch_upload_bytes_total", Help: "h"})
	e.uploads = prometheus.NewCounter(prometheus.CounterOpts{Name: "vllm_proxy_batch_files_uploaded_total", Help: "h"})
	e.decisions = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vllm_proxy_routing_decisions_total", Help: "h"}, []string{"policy", "reason"})
	// A gauge and a histogram whose names would match must be ignored.
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "vllm_proxy_decision_ratio", Help: "h"})
	g.Set(99)
	e.reg.MustRegister(e.requests, e.lines, e.bytes, e.uploads, e.decisions, g)
	return e
}

func newTestSampler(t *testing.T, g prometheus.Gatherer, clk *fakeClock) *sampler {
	t.Helper()
	m, err := NewMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{BucketWidth: time.Minute, Window: 10 * time.Minute, Now: clk.now}.withDefaults()
	return newSampler(cfg, g, testLog(), m)
}

func TestSamplerBucketsDeltas(t *testing.T) {
	e := newExportedCounters(t)
	clk := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	s := newTestSampler(t, e.reg, clk)

	// Counts before the first reading are the baseline, not traffic of a bucket.
	e.requests.WithLabelValues("m1", "http://a", "200", "interactive").Add(100)
	s.sample(t.Context())

	clk.t = clk.t.Add(10 * time.Second)
	e.requests.WithLabelValues("m1", "http://a", "200", "interactive").Add(3)
	e.requests.WithLabelValues("m1", "http://b", "503", "interactive").Add(1)
	e.requests.WithLabelValues("m2", "http://b", "200", "batch").Add(5)
	e.requests.WithLabelValues("m2", "", "400", "batch").Add(2)
	e.lines.WithLabelValues("completed").Add(5)
	e.lines.WithLabelValues("failed").Add(2)
	e.bytes.Add(1234)
	e.uploads.Inc()
	e.decisions.WithLabelValues("cache_aware", "affinity").Add(6)
	e.decisions.WithLabelValues("cache_aware", "cold_placement").Add(2)
	s.sample(t.Context())

	clk.t = clk.t.Add(time.Minute)
	e.requests.WithLabelValues("m1", "http://a", "200", "interactive").Add(4)
	s.sample(t.Context())

	v := s.snapshot(3)
	want := []Counts{
		{},
		{Requests: 4, BatchRequests: 7, Errors: 3, LinesCompleted: 5, LinesFailed: 2, Uploads: 1, UploadBytes: 1234},
		{Requests: 4},
	}
	for i, w := range want {
		if v.buckets[i].Counts != w {
			t.Errorf("bucket %d = %+v, want %+v", i, v.buckets[i].Counts, w)
		}
	}
	if v.summary.Total.Requests != 8 || v.summary.Peak.BatchRequests != 7 {
		t.Errorf("summary %+v", v.summary)
	}
	if got := v.latest.counts.Requests; got != 108 {
		t.Errorf("lifetime interactive requests = %d, want 108", got)
	}
	if v.latest.byBackend["http://a"] != 107 || v.latest.byBackend["http://b"] != 6 || len(v.latest.byBackend) != 2 {
		t.Errorf("by backend %v", v.latest.byBackend)
	}
	if v.latest.byModel["m1"] != 108 || v.latest.byModel["m2"] != 7 {
		t.Errorf("by model %v", v.latest.byModel)
	}
	if v.latest.decisions["affinity"] != 6 || v.latest.decisions["cold_placement"] != 2 || len(v.latest.decisions) != 2 {
		t.Errorf("decisions %v (the gauge must not count)", v.latest.decisions)
	}
	if !v.hasSample || !v.started.Equal(time.Unix(1_800_000_000, 0)) {
		t.Errorf("started %v, hasSample %v", v.started, v.hasSample)
	}
}

func TestSamplerCounterGoingDownCountsZero(t *testing.T) {
	e := newExportedCounters(t)
	clk := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	s := newTestSampler(t, e.reg, clk)
	e.requests.WithLabelValues("m1", "http://gone", "200", "interactive").Add(50)
	s.sample(t.Context())
	// The backend leaves the pool and its series are deleted: the sum drops.
	e.requests.DeletePartialMatch(prometheus.Labels{"backend": "http://gone"})
	e.requests.WithLabelValues("m1", "http://new", "200", "interactive").Add(2)
	s.sample(t.Context())
	e.requests.WithLabelValues("m1", "http://new", "200", "interactive").Add(3)
	s.sample(t.Context())
	if got := s.snapshot(1).buckets[0].Requests; got != 3 {
		t.Fatalf("bucket requests = %d, want 3 (the drop counts zero, growth after it counts)", got)
	}
}

// failingGatherer returns what it can and an error, as a registry with one broken
// collector does.
type failingGatherer struct{ g prometheus.Gatherer }

func (f failingGatherer) Gather() ([]*dto.MetricFamily, error) {
	mfs, _ := f.g.Gather()
	return mfs, errors.New("one collector failed")
}

func TestSamplerUsesPartialGather(t *testing.T) {
	e := newExportedCounters(t)
	clk := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	s := newTestSampler(t, failingGatherer{e.reg}, clk)
	s.sample(t.Context())
	e.bytes.Add(10)
	s.sample(t.Context())
	if got := s.snapshot(1).buckets[0].UploadBytes; got != 10 {
		t.Fatalf("upload bytes = %d, want 10 despite the gather error", got)
	}
}

func TestSamplerWithoutRegistry(t *testing.T) {
	clk := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	s := newTestSampler(t, nil, clk)
	s.sample(t.Context())
	if v := s.snapshot(5); v.hasSample || len(v.buckets) != 5 {
		t.Fatalf("snapshot %+v", v)
	}
}

func TestSamplerRefreshIsRateLimited(t *testing.T) {
	e := newExportedCounters(t)
	clk := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	s := newTestSampler(t, e.reg, clk)
	s.refresh(t.Context()) // first reading
	e.bytes.Add(5)
	clk.t = clk.t.Add(minOnDemandSpacing - time.Millisecond)
	s.refresh(t.Context()) // too soon: no reading
	if got := s.snapshot(1).latest.counts.UploadBytes; got != 0 {
		t.Fatalf("refresh too soon read the registry (bytes %d)", got)
	}
	clk.t = clk.t.Add(time.Millisecond)
	s.refresh(t.Context())
	if got := s.snapshot(1).latest.counts.UploadBytes; got != 5 {
		t.Fatalf("refresh after a second: bytes %d, want 5", got)
	}
}

func TestSamplerStartStop(t *testing.T) {
	e := newExportedCounters(t)
	clk := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	s := newTestSampler(t, e.reg, clk)
	s.Stop() // before Start: no-op
	s.cfg.SampleInterval = 5 * time.Millisecond
	if err := s.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(t.Context()); !errors.Is(err, errStarted) {
		t.Fatalf("second Start: %v", err)
	}
	e.bytes.Add(7)
	waitFor(t, 5*time.Second, "the loop to take a reading", func() bool {
		return s.snapshot(1).latest.counts.UploadBytes == 7
	})
	s.Stop()
	s.Stop() // idempotent
}
