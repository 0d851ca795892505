package routing

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Decision reasons counted in vllm_proxy_routing_decisions_total{policy,reason}.
const (
	// ReasonAffinity: the request went to the backend holding its longest cached prefix.
	ReasonAffinity = "affinity"
	// ReasonSaturation: the backend holding the prefix was saturated, so the request was
	// released to least_load.
	ReasonSaturation = "saturation_release"
	// ReasonCold: no backend had an edge (no match), so the request was placed by
	// consistent hashing with bounded load.
	ReasonCold = "cold_placement"
	// ReasonFallback: the request had nothing to hash (no prompt, or shorter than a block)
	// and went to least_load.
	ReasonFallback = "fallback"
)

var decisionReasons = [...]string{ReasonAffinity, ReasonSaturation, ReasonCold, ReasonFallback}

// PolicyMetrics are the series of the prefix-aware policies (cache_aware, chwbl). They
// have no backend label. Safe for concurrent use.
type PolicyMetrics struct {
	decisions    *prometheus.CounterVec
	predictedHit *prometheus.HistogramVec
}

// NewPolicyMetrics creates the policy metrics and registers them on reg (nil: not
// registered):
//
//	vllm_proxy_routing_decisions_total{policy,reason}       counter
//	vllm_proxy_routing_predicted_prefix_hit_ratio{policy}   histogram of matched/total blocks
func NewPolicyMetrics(reg prometheus.Registerer) (*PolicyMetrics, error) {
	const ns = "vllm_proxy"
	m := &PolicyMetrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "routing_decisions_total",
			Help: "Routing decisions of the prefix-aware policies, by reason (affinity, saturation_release, cold_placement, fallback).",
		}, []string{"policy", "reason"}),
		predictedHit: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Name: "routing_predicted_prefix_hit_ratio",
			Help:    "Predicted prefix-cache hit of each routed request: blocks the chosen backend holds over blocks in the prompt.",
			Buckets: []float64{0, .1, .2, .3, .4, .5, .6, .7, .8, .9, .95, 1},
		}, []string{"policy"}),
	}
	if reg == nil {
		return m, nil
	}
	var errs []error
	for _, c := range []prometheus.Collector{m.decisions, m.predictedHit} {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("registering routing policy metrics: %w", err)
	}
	return m, nil
}

// policyCounters are one policy's series, resolved once so the request path does no
// label lookups.
type policyCounters struct {
	reasons      [len(decisionReasons)]prometheus.Counter
	predictedHit prometheus.Observer
}

// forPolicy resolves (and so exports at zero) the series of one policy. A nil m gives
// unregistered series.
func (m *PolicyMetrics) forPolicy(name string) *policyCounters {
	if m == nil {
		m, _ = NewPolicyMetrics(nil)
	}
	pc := &policyCounters{predictedHit: m.predictedHit.WithLabelValues(name)}
	for i, r := range decisionReasons {
		pc.reasons[i] = m.decisions.WithLabelValues(name, r)
	}
	return pc
}

// decided counts one decision.
func (pc *policyCounters) decided(reason string) {
	for i, r := range decisionReasons {
		if r == reason {
			pc.reasons[i].Inc()
			return
		}
	}
}
