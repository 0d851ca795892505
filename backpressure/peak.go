package backpressure

import "time"

// peakBuckets is how many buckets a peak window is split into.
const peakBuckets = 10

// peak is the highest interactive in-flight count seen on a backend over the last
// window, kept as the maxima of peakBuckets consecutive time buckets. A batch request
// admitted now holds its slot for a batch request's duration, so the room it may take is
// what interactive traffic left at its recent peak, not at this instant. Not safe for
// concurrent use (Controller.mu guards it).
type peak struct {
	width time.Duration // window / peakBuckets; 0: no window (the peak is the current count)
	max   [peakBuckets]int64
	start time.Time // start of the current bucket, max[cur]
	cur   int
}

func newPeak(window time.Duration) peak { return peak{width: window / peakBuckets} }

// observe records n at now and returns the peak over the window, n included.
func (p *peak) observe(now time.Time, n int64) int64 {
	if p.width <= 0 {
		return n
	}
	if p.start.IsZero() {
		p.start = now
	}
	for steps := 0; now.Sub(p.start) >= p.width && steps < peakBuckets; steps++ {
		p.cur = (p.cur + 1) % peakBuckets
		p.max[p.cur] = 0
		p.start = p.start.Add(p.width)
	}
	if now.Sub(p.start) >= p.width { // idle for a whole window: start afresh
		p.start = now
	}
	p.max[p.cur] = max(p.max[p.cur], n)
	m := n
	for _, v := range p.max {
		m = max(m, v)
	}
	return m
}
