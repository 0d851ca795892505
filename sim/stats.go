package sim

// Histogram buckets are vLLM's (vllm/v1/metrics/loggers.py).
var (
	ttftBuckets = []float64{0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5,
		0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0}
	itlBuckets = []float64{0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75,
		1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0}
	requestBuckets = []float64{0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0,
		30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0}
)

// histogram is a Prometheus-style histogram guarded by its engine's mutex.
type histogram struct {
	bounds []float64
	counts []uint64 // per bucket, not cumulative; the last one is +Inf
	sum    float64
	count  uint64
}

func newHistogram(bounds []float64) histogram {
	return histogram{bounds: bounds, counts: make([]uint64, len(bounds)+1)}
}

func (h *histogram) observe(v float64) {
	i := 0
	for i < len(h.bounds) && v > h.bounds[i] {
		i++
	}
	h.counts[i]++
	h.sum += v
	h.count++
}

// observeN records n observations of v.
func (h *histogram) observeN(v float64, n int) {
	if n <= 0 {
		return
	}
	i := 0
	for i < len(h.bounds) && v > h.bounds[i] {
		i++
	}
	h.counts[i] += uint64(n)
	h.sum += v * float64(n)
	h.count += uint64(n)
}

func (h *histogram) clone() histogram {
	c := *h
	c.counts = append([]uint64(nil), h.counts...)
	return c
}

func (h *histogram) add(o *histogram) {
	for i := range h.counts {
		h.counts[i] += o.counts[i]
	}
	h.sum += o.sum
	h.count += o.count
}

// engineStats are an engine's cumulative counters, guarded by its mutex.
type engineStats struct {
	prefixQueries    int64 // prompt tokens looked up in the prefix cache
	prefixHits       int64 // of which found
	preemptions      int64
	promptTokens     int64
	generationTokens int64
	finished         int64
	aborted          int64
	ttft, itl        histogram
	e2e, queue       histogram
}

func newEngineStats() engineStats {
	return engineStats{
		ttft:  newHistogram(ttftBuckets),
		itl:   newHistogram(itlBuckets),
		e2e:   newHistogram(requestBuckets),
		queue: newHistogram(requestBuckets),
	}
}

func (s *engineStats) clone() engineStats {
	c := *s
	c.ttft, c.itl, c.e2e, c.queue = s.ttft.clone(), s.itl.clone(), s.e2e.clone(), s.queue.clone()
	return c
}

// observeInstant records a request answered without simulated time.
func (s *engineStats) observeInstant(outputTokens int) {
	s.queue.observe(0)
	if outputTokens > 0 {
		s.ttft.observe(0)
		s.itl.observeN(0, outputTokens-1)
	}
	s.e2e.observe(0)
	s.finished++
}
