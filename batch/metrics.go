package batch

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the batch package's Prometheus series. Safe for concurrent use.
type Metrics struct {
	linesDispatched prometheus.Counter
	linesRecorded   *prometheus.CounterVec
	linesDuplicate  prometheus.Counter
	linesInFlight   prometheus.Gauge
	chunkClaims     *prometheus.CounterVec
	batchesFinished *prometheus.CounterVec
	validation      prometheus.Histogram
	uploadBytes     prometheus.Counter
	filesExpired    prometheus.Counter
}

// NewMetrics registers the batch metrics on reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		linesDispatched: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "vllm_proxy", Subsystem: "batch", Name: "lines_dispatched_total",
			Help: "Batch line executions started (a re-executed line counts again).",
		}),
		linesRecorded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "vllm_proxy", Subsystem: "batch", Name: "lines_recorded_total",
			Help: "Batch line results committed by this replica, by outcome (completed, failed).",
		}, []string{"outcome"}),
		linesDuplicate: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "vllm_proxy", Subsystem: "batch", Name: "lines_duplicate_total",
			Help: "Line results dropped because another worker had already recorded the line.",
		}),
		linesInFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "vllm_proxy", Subsystem: "batch", Name: "lines_in_flight",
			Help: "Batch lines this replica is executing now.",
		}),
		chunkClaims: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "vllm_proxy", Subsystem: "batch", Name: "chunk_claims_total",
			Help: "Chunks of lines claimed, by kind (new, reclaimed from a lapsed lease).",
		}, []string{"kind"}),
		batchesFinished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "vllm_proxy", Subsystem: "batch", Name: "batches_finished_total",
			Help: "Batches this replica moved to a terminal status, by status.",
		}, []string{"status"}),
		validation: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "vllm_proxy", Subsystem: "batch", Name: "validation_duration_seconds",
			Help:    "Time to validate a batch input file.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}),
		uploadBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "vllm_proxy", Subsystem: "batch", Name: "upload_bytes_total",
			Help: "Bytes of files accepted by POST /v1/files.",
		}),
		filesExpired: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "vllm_proxy", Subsystem: "batch", Name: "files_expired_total",
			Help: "Files deleted by the janitor because they expired.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.linesDispatched, m.linesRecorded, m.linesDuplicate, m.linesInFlight,
			m.chunkClaims, m.batchesFinished, m.validation, m.uploadBytes, m.filesExpired)
	}
	return m
}
