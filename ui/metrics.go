package ui

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the dashboard's own Prometheus series. Safe for concurrent use.
type Metrics struct {
	apiRequests  *prometheus.CounterVec
	samples      prometheus.Counter
	sampleErrors prometheus.Counter
}

// NewMetrics creates the dashboard's metrics and registers them on reg (nil: not
// registered).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		apiRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "vllm_proxy", Subsystem: "ui", Name: "api_requests_total",
			Help: "Requests to the dashboard's JSON endpoints, by endpoint and HTTP status code.",
		}, []string{"endpoint", "code"}),
		samples: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "vllm_proxy", Subsystem: "ui", Name: "samples_total",
			Help: "Readings of the metrics registry taken for the dashboard's time series.",
		}),
		sampleErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "vllm_proxy", Subsystem: "ui", Name: "sample_errors_total",
			Help: "Readings of the metrics registry that reported an error (the families read are still used).",
		}),
	}
	if reg == nil {
		return m, nil
	}
	var errs []error
	for _, c := range []prometheus.Collector{m.apiRequests, m.samples, m.sampleErrors} {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("registering ui metrics: %w", err)
	}
	return m, nil
}
