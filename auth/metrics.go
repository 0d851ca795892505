package auth

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the auth package's series. Safe for concurrent use.
type Metrics struct {
	rejected *prometheus.CounterVec
}

// NewMetrics registers the package's series on reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "vllm_proxy", Subsystem: "auth", Name: "rejected_total",
			Help: "Requests rejected for a missing or invalid API key, by reason (missing, invalid).",
		}, []string{"reason"}),
	}
	if reg != nil {
		reg.MustRegister(m.rejected)
	}
	return m
}
