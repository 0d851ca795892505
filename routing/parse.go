package routing

import (
	"errors"
	"fmt"
	"io"
	"strconv"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// vLLM metric names, V1 first, then the older (V0 / early V1) names accepted too.
const (
	metricRunning        = "vllm:num_requests_running"
	metricWaiting        = "vllm:num_requests_waiting"
	metricKVUsage        = "vllm:kv_cache_usage_perc"
	metricKVUsageV0      = "vllm:gpu_cache_usage_perc"
	metricPrefixQueries  = "vllm:prefix_cache_queries_total"
	metricPrefixHits     = "vllm:prefix_cache_hits_total"
	metricPrefixQueriesO = "vllm:gpu_prefix_cache_queries_total"
	metricPrefixHitsO    = "vllm:gpu_prefix_cache_hits_total"
	metricPrefixRateV0   = "vllm:gpu_prefix_cache_hit_rate"
	metricCacheConfig    = "vllm:cache_config_info"
	metricPreemptions    = "vllm:num_preemptions_total"
)

// maxGPUBlocks bounds the summed num_gpu_blocks so hostile labels cannot overflow it.
const maxGPUBlocks = 1 << 40

// ErrNotVLLM is returned by ParseMetrics when the page has neither
// vllm:num_requests_running nor vllm:num_requests_waiting.
var ErrNotVLLM = errors.New("metrics page has no vllm request gauges")

// EngineMetrics is what the router reads from one vLLM /metrics page. Counts are summed
// over every series (the `engine` label of data-parallel ranks, and `model_name`); ratios
// are averaged over series.
type EngineMetrics struct {
	// Running and Waiting are vllm:num_requests_running / _waiting, summed.
	Running float64 `json:"running"`
	Waiting float64 `json:"waiting"`
	// KVCacheUsage is vllm:kv_cache_usage_perc (or V0 vllm:gpu_cache_usage_perc), averaged.
	KVCacheUsage float64 `json:"kv_cache_usage"`
	// PrefixQueries and PrefixHits are the prefix cache counters (tokens), summed; valid
	// when HasPrefixCounters.
	PrefixQueries     float64 `json:"prefix_queries"`
	PrefixHits        float64 `json:"prefix_hits"`
	HasPrefixCounters bool    `json:"has_prefix_counters"`
	// PrefixHitRate is V0's vllm:gpu_prefix_cache_hit_rate gauge, averaged; valid when
	// HasPrefixHitRate.
	PrefixHitRate    float64 `json:"prefix_hit_rate"`
	HasPrefixHitRate bool    `json:"has_prefix_hit_rate"`
	// BlockSize is the block_size label of vllm:cache_config_info (0 when absent).
	BlockSize int `json:"block_size"`
	// NumGPUBlocks is the num_gpu_blocks label of vllm:cache_config_info, summed over engines.
	NumGPUBlocks int `json:"num_gpu_blocks"`
	// Preemptions is vllm:num_preemptions_total, summed.
	Preemptions float64 `json:"preemptions"`
	// Engines counts the distinct `engine` label values (1 when the label is absent).
	Engines int `json:"engines"`
}

// ParseMetrics parses a Prometheus text page from a vLLM server. It accepts V1 and V0
// metric names and sums data-parallel engines. It is safe for concurrent use.
func ParseMetrics(r io.Reader) (EngineMetrics, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return EngineMetrics{}, fmt.Errorf("parsing metrics text: %w", err)
	}
	var m EngineMetrics
	runF, okR := fams[metricRunning]
	waitF, okW := fams[metricWaiting]
	if !okR && !okW {
		return EngineMetrics{}, ErrNotVLLM
	}
	engines := map[string]bool{}
	m.Running = sumValues(runF, engines)
	m.Waiting = sumValues(waitF, engines)
	if f := firstFamily(fams, metricKVUsage, metricKVUsageV0); f != nil {
		m.KVCacheUsage = meanValues(f)
	}
	q := firstFamily(fams, metricPrefixQueries, metricPrefixQueriesO)
	h := firstFamily(fams, metricPrefixHits, metricPrefixHitsO)
	if q != nil && h != nil {
		m.PrefixQueries, m.PrefixHits, m.HasPrefixCounters = sumValues(q, nil), sumValues(h, nil), true
	}
	if f := fams[metricPrefixRateV0]; f != nil && len(f.GetMetric()) > 0 {
		m.PrefixHitRate, m.HasPrefixHitRate = meanValues(f), true
	}
	if f := fams[metricPreemptions]; f != nil {
		m.Preemptions = sumValues(f, nil)
	}
	if f := fams[metricCacheConfig]; f != nil {
		for _, s := range f.GetMetric() {
			if v, err := strconv.Atoi(label(s, "block_size")); err == nil && v > 0 && m.BlockSize == 0 {
				m.BlockSize = v
			}
			if v, err := strconv.Atoi(label(s, "num_gpu_blocks")); err == nil && v > 0 && v <= maxGPUBlocks-m.NumGPUBlocks {
				m.NumGPUBlocks += v
			}
		}
	}
	m.Engines = max(1, len(engines))
	return m, nil
}

func firstFamily(fams map[string]*dto.MetricFamily, names ...string) *dto.MetricFamily {
	for _, n := range names {
		if f := fams[n]; f != nil && len(f.GetMetric()) > 0 {
			return f
		}
	}
	return nil
}

// value reads a sample as a number whatever the family's declared type.
func value(s *dto.Metric) float64 {
	switch {
	case s.Gauge != nil:
		return s.GetGauge().GetValue()
	case s.Counter != nil:
		return s.GetCounter().GetValue()
	case s.Untyped != nil:
		return s.GetUntyped().GetValue()
	default:
		return 0
	}
}

// usable drops NaN and infinities, which a broken exporter could send.
func usable(v float64) bool { return v == v && v < 1e300 && v > -1e300 }

func sumValues(f *dto.MetricFamily, engines map[string]bool) float64 {
	total := 0.0
	for _, s := range f.GetMetric() {
		if v := value(s); usable(v) {
			total += v
		}
		if engines != nil {
			if e := label(s, "engine"); e != "" {
				engines[e] = true
			}
		}
	}
	return total
}

func meanValues(f *dto.MetricFamily) float64 {
	total, n := 0.0, 0
	for _, s := range f.GetMetric() {
		if v := value(s); usable(v) {
			total += v
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return total / float64(n)
}

func label(s *dto.Metric, name string) string {
	for _, l := range s.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
