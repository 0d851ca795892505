package ui

import "time"

// Counts are the figures of one bucket, or of a whole window. Requests and errors come from
// the proxy's vllm_proxy_requests_total; lines from vllm_proxy_batch_lines_recorded_total;
// uploads from vllm_proxy_batch_files_uploaded_total (when the batch package exports it)
// and vllm_proxy_batch_upload_bytes_total.
type Counts struct {
	// Requests is interactive requests answered (class "interactive"), any status.
	Requests int64 `json:"requests"`
	// BatchRequests is batch lines answered through the proxy (class "batch"), any status.
	BatchRequests int64 `json:"batch_requests"`
	// Errors is requests of either class answered with a status other than 2xx.
	Errors int64 `json:"errors"`
	// LinesCompleted and LinesFailed are batch line results committed by this replica.
	LinesCompleted int64 `json:"lines_completed"`
	LinesFailed    int64 `json:"lines_failed"`
	// Uploads is files accepted by POST /v1/files; UploadBytes their size.
	Uploads     int64 `json:"uploads"`
	UploadBytes int64 `json:"upload_bytes"`
}

// add adds o to c.
func (c *Counts) add(o Counts) {
	c.Requests += o.Requests
	c.BatchRequests += o.BatchRequests
	c.Errors += o.Errors
	c.LinesCompleted += o.LinesCompleted
	c.LinesFailed += o.LinesFailed
	c.Uploads += o.Uploads
	c.UploadBytes += o.UploadBytes
}

// maxOf raises each field of c to o's where o's is larger.
func (c *Counts) maxOf(o Counts) {
	c.Requests = max(c.Requests, o.Requests)
	c.BatchRequests = max(c.BatchRequests, o.BatchRequests)
	c.Errors = max(c.Errors, o.Errors)
	c.LinesCompleted = max(c.LinesCompleted, o.LinesCompleted)
	c.LinesFailed = max(c.LinesFailed, o.LinesFailed)
	c.Uploads = max(c.Uploads, o.Uploads)
	c.UploadBytes = max(c.UploadBytes, o.UploadBytes)
}

// Bucket is one time slot of a Series.
type Bucket struct {
	// Start is the bucket's start, Unix seconds, aligned to the bucket width.
	Start int64 `json:"start"`
	Counts
}

// Series keeps Counts in fixed-width buckets over a window, as a ring: a slot is reused
// when time moves a whole window past it. It is not safe for concurrent use; the sampler
// guards it.
type Series struct {
	width int64 // seconds
	slots []Bucket
	valid []bool
}

// NewSeries returns an empty series of n buckets of width w (w ≥ 1s, n ≥ 1).
func NewSeries(w time.Duration, n int) *Series {
	return &Series{width: int64(w / time.Second), slots: make([]Bucket, n), valid: make([]bool, n)}
}

// index is the absolute bucket number of t.
func (s *Series) index(t time.Time) int64 {
	u := t.Unix()
	i := u / s.width
	if u < 0 && u%s.width != 0 {
		i-- // floor for times before 1970, so buckets stay aligned
	}
	return i
}

// slot returns the ring position of absolute bucket i.
func (s *Series) slot(i int64) int {
	n := int64(len(s.slots))
	return int(((i % n) + n) % n)
}

// Add adds c to the bucket holding t.
func (s *Series) Add(t time.Time, c Counts) {
	i := s.index(t)
	k := s.slot(i)
	start := i * s.width
	if !s.valid[k] || s.slots[k].Start != start {
		if s.valid[k] && s.slots[k].Start > start {
			return // older than the window the ring now holds
		}
		s.slots[k], s.valid[k] = Bucket{Start: start}, true
	}
	s.slots[k].add(c)
}

// Last returns the n buckets ending with the one holding now, oldest first; buckets
// without data are zero. n is clamped to [1, the series length].
func (s *Series) Last(now time.Time, n int) []Bucket {
	n = min(max(n, 1), len(s.slots))
	last := s.index(now)
	out := make([]Bucket, n)
	for j := range n {
		i := last - int64(n-1-j)
		out[j].Start = i * s.width
		if k := s.slot(i); s.valid[k] && s.slots[k].Start == out[j].Start {
			out[j].Counts = s.slots[k].Counts
		}
	}
	return out
}

// Summary is the sum and the busiest bucket of a series over its window.
type Summary struct {
	// Total sums every bucket in the window.
	Total Counts `json:"total"`
	// Peak holds, per field, the largest value of any one bucket.
	Peak Counts `json:"peak"`
}

// Summarize sums the whole window ending with now.
func (s *Series) Summarize(now time.Time) Summary {
	var sum Summary
	for _, b := range s.Last(now, len(s.slots)) {
		sum.Total.add(b.Counts)
		sum.Peak.maxOf(b.Counts)
	}
	return sum
}
