package ui

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// The metric families the sampler reads. They are the proxy's own exported names; a family
// that is missing (a package not wired, a counter not yet added) reads as zero.
const (
	metricRequests     = "vllm_proxy_requests_total"
	metricLines        = "vllm_proxy_batch_lines_recorded_total"
	metricUploadBytes  = "vllm_proxy_batch_upload_bytes_total"
	metricUploads      = "vllm_proxy_batch_files_uploaded_total"
	decisionSubstring  = "decision" // counters named vllm_proxy_*decision*_total
	metricNamespace    = "vllm_proxy_"
	minOnDemandSpacing = 250 * time.Millisecond
)

// reading is one pass over the registry: cumulative totals since the process started.
type reading struct {
	counts    Counts
	byBackend map[string]int64 // requests_total by backend (both classes)
	byModel   map[string]int64 // requests_total by model (both classes)
	decisions map[string]int64 // decision counters by their label values
}

// read sums the families the dashboard uses out of a Gather result.
func read(mfs []*dto.MetricFamily) reading {
	r := reading{byBackend: map[string]int64{}, byModel: map[string]int64{}, decisions: map[string]int64{}}
	var c struct{ req, batch, errs, done, failed, uploads, bytes float64 }
	for _, mf := range mfs {
		name := mf.GetName()
		if mf.GetType() != dto.MetricType_COUNTER {
			continue
		}
		for _, m := range mf.GetMetric() {
			v := m.GetCounter().GetValue()
			if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
				continue
			}
			switch {
			case name == metricRequests:
				labels := labelMap(m)
				if labels["class"] == "batch" {
					c.batch += v
				} else {
					c.req += v
				}
				if code := labels["code"]; len(code) != 3 || code[0] != '2' {
					c.errs += v
				}
				if b := labels["backend"]; b != "" {
					r.byBackend[b] += round(v)
				}
				if mo := labels["model"]; mo != "" {
					r.byModel[mo] += round(v)
				}
			case name == metricLines:
				if labelMap(m)["outcome"] == "failed" {
					c.failed += v
				} else {
					c.done += v
				}
			case name == metricUploadBytes:
				c.bytes += v
			case name == metricUploads:
				c.uploads += v
			case strings.HasPrefix(name, metricNamespace) && strings.Contains(name, decisionSubstring):
				r.decisions[decisionKey(m)] += round(v)
			}
		}
	}
	r.counts = Counts{Requests: round(c.req), BatchRequests: round(c.batch), Errors: round(c.errs),
		LinesCompleted: round(c.done), LinesFailed: round(c.failed), Uploads: round(c.uploads), UploadBytes: round(c.bytes)}
	return r
}

func round(v float64) int64 { return int64(math.Round(v)) }

func labelMap(m *dto.Metric) map[string]string {
	out := make(map[string]string, len(m.GetLabel()))
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// decisionKey names a decision series by its label values other than policy, backend and
// model, in label-name order: "affinity" for routing_decisions_total{policy,reason}.
func decisionKey(m *dto.Metric) string {
	var parts []string
	for _, l := range m.GetLabel() {
		if n := l.GetName(); n != "backend" && n != "model" && n != "policy" {
			parts = append(parts, l.GetValue())
		}
	}
	if len(parts) == 0 {
		return "total"
	}
	return strings.Join(parts, "/")
}

// delta is cur − prev per field; a field that went down (a counter reset, a backend's
// series deleted) counts as zero.
func delta(cur, prev Counts) Counts {
	d := func(a, b int64) int64 { return max(0, a-b) }
	return Counts{Requests: d(cur.Requests, prev.Requests), BatchRequests: d(cur.BatchRequests, prev.BatchRequests),
		Errors: d(cur.Errors, prev.Errors), LinesCompleted: d(cur.LinesCompleted, prev.LinesCompleted),
		LinesFailed: d(cur.LinesFailed, prev.LinesFailed), Uploads: d(cur.Uploads, prev.Uploads),
		UploadBytes: d(cur.UploadBytes, prev.UploadBytes)}
}

// sampler turns the registry's cumulative counters into Series buckets: every
// SampleInterval, and on demand when the dashboard asks (at most every 250ms), it adds
// what changed since the previous reading to the bucket of now. Safe for concurrent use.
type sampler struct {
	g   prometheus.Gatherer // nil: nothing to read
	cfg Config
	log *slog.Logger
	m   *Metrics

	gather  sync.Mutex // serializes readings so each delta is taken against the one before
	mu      sync.Mutex // guards the fields below
	series  *Series
	prev    *reading // nil before the first reading
	latest  reading
	last    time.Time // time of the latest reading
	started time.Time // time of the first reading

	life   sync.Mutex // guards cancel/done/stopped
	cancel context.CancelFunc
	done   chan struct{}
	ran    bool
}

func newSampler(cfg Config, g prometheus.Gatherer, log *slog.Logger, m *Metrics) *sampler {
	return &sampler{g: g, cfg: cfg, log: log, m: m, series: NewSeries(cfg.BucketWidth, cfg.buckets()),
		latest: reading{byBackend: map[string]int64{}, byModel: map[string]int64{}, decisions: map[string]int64{}}}
}

// errStarted is returned by a second Start.
var errStarted = errors.New("ui sampler already started")

// Start takes the first reading and runs the sampling loop until ctx ends or Stop.
func (s *sampler) Start(ctx context.Context) error {
	s.life.Lock()
	defer s.life.Unlock()
	if s.ran {
		return errStarted
	}
	s.ran = true
	ctx, s.cancel = context.WithCancel(ctx)
	s.done = make(chan struct{})
	s.sample(ctx)
	go s.loop(ctx)
	return nil
}

// Stop ends the loop and waits for it. It is idempotent and safe before Start.
func (s *sampler) Stop() {
	s.life.Lock()
	defer s.life.Unlock()
	if s.cancel == nil {
		return
	}
	s.cancel()
	<-s.done
}

func (s *sampler) loop(ctx context.Context) {
	defer close(s.done)
	t := time.NewTicker(s.cfg.SampleInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.sample(ctx)
		}
	}
}

// refresh samples if the latest reading is older than minOnDemandSpacing, so a page sees fresh
// figures without every poll of every open page gathering the registry.
func (s *sampler) refresh(ctx context.Context) {
	s.mu.Lock()
	fresh := !s.last.IsZero() && s.cfg.Now().Sub(s.last) < minOnDemandSpacing
	s.mu.Unlock()
	if !fresh {
		s.sample(ctx)
	}
}

// sample reads the registry and adds the change since the previous reading to the
// current bucket. The first reading is only a baseline.
func (s *sampler) sample(ctx context.Context) {
	if s.g == nil {
		return
	}
	s.gather.Lock()
	defer s.gather.Unlock()
	mfs, err := s.g.Gather()
	if err != nil {
		// A partly failed Gather still returns every family it could read.
		s.m.sampleErrors.Inc()
		s.log.WarnContext(ctx, "reading the metrics registry for the dashboard", slog.String("err", fmt.Errorf("gathering: %w", err).Error()))
	}
	r := read(mfs)
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.prev != nil {
		s.series.Add(now, delta(r.counts, s.prev.counts))
	} else {
		s.started = now
	}
	s.prev, s.latest, s.last = &r, r, now
	s.m.samples.Inc()
}

// view is a consistent copy of what the API endpoints show.
type view struct {
	buckets   []Bucket
	summary   Summary
	latest    reading
	last      time.Time
	started   time.Time
	hasSample bool
}

// snapshot copies the series (the last n buckets) and the latest reading.
func (s *sampler) snapshot(n int) view {
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	v := view{buckets: s.series.Last(now, n), summary: s.series.Summarize(now), last: s.last,
		started: s.started, hasSample: s.prev != nil}
	v.latest = reading{counts: s.latest.counts, byBackend: clone(s.latest.byBackend),
		byModel: clone(s.latest.byModel), decisions: clone(s.latest.decisions)}
	return v
}

func clone(m map[string]int64) map[string]int64 { return maps.Clone(m) }

// sortedKeys returns m's keys, largest value first, then by name.
func sortedKeys(m map[string]int64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if m[a] != m[b] {
			if m[a] > m[b] {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	return keys
}
