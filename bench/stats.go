package bench

import (
	"math"
	"slices"
	"time"
)

// Percentile returns the p-th percentile (0..100) of sorted values by linear interpolation
// between closest ranks (numpy's default). It returns 0 for an empty slice.
func Percentile(sorted []float64, p float64) float64 {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	if p <= 0 {
		return sorted[0]
	}
	if p >= 100 {
		return sorted[n-1]
	}
	rank := p / 100 * float64(n-1)
	lo := int(math.Floor(rank))
	frac := rank - float64(lo)
	if lo+1 >= n {
		return sorted[n-1]
	}
	return sorted[lo] + frac*(sorted[lo+1]-sorted[lo])
}

// Latency summarises a latency distribution, in seconds.
type Latency struct {
	Count int     `json:"count"`
	Mean  float64 `json:"mean_s"`
	P50   float64 `json:"p50_s"`
	P90   float64 `json:"p90_s"`
	P99   float64 `json:"p99_s"`
	Max   float64 `json:"max_s"`
}

// Summarize computes a Latency from durations; it does not modify ds.
func Summarize(ds []time.Duration) Latency {
	s := make([]float64, len(ds))
	for i, d := range ds {
		s[i] = d.Seconds()
	}
	return SummarizeSeconds(s)
}

// SummarizeSeconds computes a Latency from values in seconds; it sorts s in place.
func SummarizeSeconds(s []float64) Latency {
	if len(s) == 0 {
		return Latency{}
	}
	slices.Sort(s)
	sum := 0.0
	for _, v := range s {
		sum += v
	}
	return Latency{
		Count: len(s),
		Mean:  sum / float64(len(s)),
		P50:   Percentile(s, 50),
		P90:   Percentile(s, 90),
		P99:   Percentile(s, 99),
		Max:   s[len(s)-1],
	}
}

// Histogram is a log-linear latency histogram with about 1% relative error, used for
// inter-token gaps, which are too many to keep one by one. The zero value is not usable;
// call NewHistogram. Not safe for concurrent use.
type Histogram struct {
	counts []uint64
	total  uint64
	sum    float64
	max    float64
}

const (
	histMin     = 1e-6 // 1 µs: anything faster lands in bucket 0
	histGrowth  = 1.01
	histBuckets = 2200 // histMin * 1.01^2200 ≈ 3e3 s
)

var histLogGrowth = math.Log(histGrowth)

// NewHistogram returns an empty Histogram.
func NewHistogram() *Histogram { return &Histogram{counts: make([]uint64, histBuckets)} }

// Add records one value in seconds.
func (h *Histogram) Add(v float64) {
	i := 0
	if v > histMin {
		i = int(math.Log(v/histMin)/histLogGrowth) + 1
		if i >= histBuckets {
			i = histBuckets - 1
		}
	}
	h.counts[i]++
	h.total++
	h.sum += v
	h.max = max(h.max, v)
}

// Merge adds every value of o to h.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
	h.sum += o.sum
	h.max = max(h.max, o.max)
}

// Quantile returns the value at quantile p (0..100): the geometric middle of the bucket
// holding the p-th percentile (0 when empty).
func (h *Histogram) Quantile(p float64) float64 {
	if h.total == 0 {
		return 0
	}
	target := uint64(math.Ceil(p / 100 * float64(h.total)))
	target = max(target, 1)
	var cum uint64
	for i, c := range h.counts {
		cum += c
		if cum >= target {
			if i == 0 {
				return histMin
			}
			lo := histMin * math.Pow(histGrowth, float64(i-1))
			return min(lo*math.Sqrt(histGrowth), h.max)
		}
	}
	return h.max
}

// Summary returns the histogram as a Latency.
func (h *Histogram) Summary() Latency {
	if h.total == 0 {
		return Latency{}
	}
	return Latency{
		Count: int(min(h.total, math.MaxInt)),
		Mean:  h.sum / float64(h.total),
		P50:   h.Quantile(50),
		P90:   h.Quantile(90),
		P99:   h.Quantile(99),
		Max:   h.max,
	}
}
