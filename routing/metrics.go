package routing

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the router's Prometheus series. Every series has a `backend` label (the
// backend URL); a backend's series are deleted when it leaves the pool.
type Metrics struct {
	up             *prometheus.GaugeVec
	load           *prometheus.GaugeVec
	stale          *prometheus.GaugeVec
	inFlight       *prometheus.GaugeVec
	ejections      *prometheus.CounterVec
	scrapeErrors   *prometheus.CounterVec
	scrapeDuration *prometheus.HistogramVec
}

// NewMetrics creates the router's metrics and registers them on reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	const ns = "vllm_proxy"
	m := &Metrics{
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Name: "backend_up",
			Help: "Whether the backend is healthy (1) or ejected (0).",
		}, []string{"backend"}),
		load: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Name: "backend_load",
			Help: "Load score of the backend: (running + 0.5*waiting)/capacity, corrected by in-flight requests.",
		}, []string{"backend"}),
		stale: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Name: "backend_metrics_stale",
			Help: "Whether the backend's scraped metrics are stale (1) after repeated scrape failures.",
		}, []string{"backend"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Name: "backend_in_flight_requests",
			Help: "Requests this proxy replica has in flight to the backend, by traffic class.",
		}, []string{"backend", "class"}),
		ejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "backend_ejections_total",
			Help: "Times the backend was ejected from the pool as unhealthy.",
		}, []string{"backend"}),
		scrapeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "backend_scrape_errors_total",
			Help: "Failed scrapes of the backend's /metrics.",
		}, []string{"backend"}),
		scrapeDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Name: "backend_scrape_duration_seconds",
			Help:    "Duration of scrapes of the backend's /metrics.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"backend"}),
	}
	if reg == nil {
		return m, nil
	}
	var errs []error
	for _, c := range []prometheus.Collector{m.up, m.load, m.stale, m.inFlight, m.ejections, m.scrapeErrors, m.scrapeDuration} {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("registering routing metrics: %w", err)
	}
	return m, nil
}

// backendMetrics holds one backend's series. Updating a child after deleteBackend is harmless:
// a deleted child is no longer exported and is never re-created by these handles.
type backendMetrics struct {
	up, load, stale prometheus.Gauge
	inFlight        [len(classes)]prometheus.Gauge
	ejections       prometheus.Counter
	scrapeErrors    prometheus.Counter
	scrapeDuration  prometheus.Observer
}

func (m *Metrics) forBackend(id string) *backendMetrics {
	bm := &backendMetrics{
		up:             m.up.WithLabelValues(id),
		load:           m.load.WithLabelValues(id),
		stale:          m.stale.WithLabelValues(id),
		ejections:      m.ejections.WithLabelValues(id),
		scrapeErrors:   m.scrapeErrors.WithLabelValues(id),
		scrapeDuration: m.scrapeDuration.WithLabelValues(id),
	}
	for i, c := range classes {
		bm.inFlight[i] = m.inFlight.WithLabelValues(id, string(c))
	}
	return bm
}

// deleteBackend removes every series of backend id.
func (m *Metrics) deleteBackend(id string) {
	l := prometheus.Labels{"backend": id}
	m.up.DeletePartialMatch(l)
	m.load.DeletePartialMatch(l)
	m.stale.DeletePartialMatch(l)
	m.inFlight.DeletePartialMatch(l)
	m.ejections.DeletePartialMatch(l)
	m.scrapeErrors.DeletePartialMatch(l)
	m.scrapeDuration.DeletePartialMatch(l)
}
