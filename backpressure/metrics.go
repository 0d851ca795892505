package backpressure

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the controller's series, labelled by backend (routing's backend ID); a
// backend's series are deleted when it leaves the pool.
type Metrics struct {
	target    *prometheus.GaugeVec
	inFlight  *prometheus.GaugeVec
	throttles *prometheus.CounterVec
	refused   *prometheus.CounterVec
	evictions *prometheus.CounterVec
	surges    prometheus.Counter
}

// NewMetrics creates the controller's metrics and registers them on reg (nil: not
// registered).
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	const ns, sub = "vllm_proxy", "backpressure"
	m := &Metrics{
		target: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "batch_target",
			Help: "Batch concurrency target of the backend (the lowest any live replica set).",
		}, []string{"backend"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Subsystem: sub, Name: "in_flight_requests",
			Help: "Requests in flight on the backend over every replica, by traffic class, as the controller last saw them.",
		}, []string{"backend", "class"}),
		throttles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "throttle_events_total",
			Help: "Times this replica lowered the backend's batch target.",
		}, []string{"backend"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "refused_slots_total",
			Help: "Batch slot requests refused because the backend was at its batch target.",
		}, []string{"backend"}),
		evictions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "evictions_total",
			Help: "Running batch requests stopped to give their slot to interactive traffic (evict mode).",
		}, []string{"backend"}),
		surges: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: ns, Subsystem: sub, Name: "surges_total",
			Help: "Interactive surges this replica detected (batch cut to its floor at once).",
		}),
	}
	if reg == nil {
		return m, nil
	}
	var errs []error
	for _, c := range []prometheus.Collector{m.target, m.inFlight, m.throttles, m.refused, m.evictions, m.surges} {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("registering backpressure metrics: %w", err)
	}
	return m, nil
}

// touch creates backend's counters at 0, so they are exported (and rate() works) before
// their first event.
func (m *Metrics) touch(backend string) {
	m.throttles.WithLabelValues(backend)
	m.refused.WithLabelValues(backend)
	m.evictions.WithLabelValues(backend)
}

func (m *Metrics) forget(backend string) {
	m.target.DeleteLabelValues(backend)
	m.inFlight.DeleteLabelValues(backend, "interactive")
	m.inFlight.DeleteLabelValues(backend, "batch")
	m.throttles.DeleteLabelValues(backend)
	m.refused.DeleteLabelValues(backend)
	m.evictions.DeleteLabelValues(backend)
}
