package proxy

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// Metrics are the proxy's Prometheus series. Every series that names a backend is deleted
// by [Metrics.ForgetBackend]. Safe for concurrent use.
type Metrics struct {
	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	ttft        *prometheus.HistogramVec
	retries     *prometheus.CounterVec
	streamCuts  *prometheus.CounterVec
	inFlightReq prometheus.Gauge
}

// latencyBuckets span an instant simulator (sub-millisecond) to long generations.
var latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}

// NewMetrics registers the proxy's metrics on reg (nil: not registered, for tests that do
// not look). Registering twice on one registry panics, as with promauto.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	f := promauto.With(reg)
	return &Metrics{
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: "vllm_proxy",
			Name:      "requests_total",
			Help:      "Requests answered by the proxy, by model, final backend (empty if none), HTTP status code and traffic class.",
		}, []string{"model", "backend", "code", "class"}),
		duration: f.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "vllm_proxy",
			Name:      "request_duration_seconds",
			Help:      "Time from receiving a request to the end of its response, retries and streaming included.",
			Buckets:   latencyBuckets,
		}, []string{"model", "backend", "class"}),
		ttft: f.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "vllm_proxy",
			Name:      "time_to_first_token_seconds",
			Help:      "Time from receiving a streaming request to forwarding the first byte of its response body, as the proxy measures it.",
			Buckets:   latencyBuckets,
		}, []string{"model", "backend", "class"}),
		retries: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: "vllm_proxy",
			Name:      "retries_total",
			Help:      "Attempts that failed before any byte reached the client and were retried on another backend, by the failed backend and reason.",
		}, []string{"backend", "reason"}),
		streamCuts: f.NewCounterVec(prometheus.CounterOpts{
			Namespace: "vllm_proxy",
			Name:      "stream_cuts_total",
			Help:      "Responses whose backend stream broke after bytes had reached the client.",
		}, []string{"backend"}),
		inFlightReq: f.NewGauge(prometheus.GaugeOpts{
			Namespace: "vllm_proxy",
			Name:      "in_flight_requests",
			Help:      "Requests the proxy is handling now, interactive and batch.",
		}),
	}
}

// ForgetBackend deletes every series labelled with the backend id. cmd calls it when a
// backend leaves the pool (config reload), so a removed backend's series do not linger.
func (m *Metrics) ForgetBackend(id string) {
	l := prometheus.Labels{"backend": id}
	m.requests.DeletePartialMatch(l)
	m.duration.DeletePartialMatch(l)
	m.ttft.DeletePartialMatch(l)
	m.retries.DeletePartialMatch(l)
	m.streamCuts.DeletePartialMatch(l)
}

// observe records a finished request.
func (m *Metrics) observe(r *result) {
	class := string(r.class)
	m.requests.WithLabelValues(r.model, r.backend, strconv.Itoa(r.status), class).Inc()
	m.duration.WithLabelValues(r.model, r.backend, class).Observe(r.duration.Seconds())
	if r.stream && r.ttft > 0 {
		m.ttft.WithLabelValues(r.model, r.backend, class).Observe(r.ttft.Seconds())
	}
	if r.cut {
		m.streamCuts.WithLabelValues(r.backend).Inc()
	}
}
