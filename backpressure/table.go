package backpressure

import "math"

// Table is the seed design's batch concurrency for a backend with waiting requests
// waiting and full concurrency full:
//
//	0 waiting     → full
//	1–5 waiting   → 3
//	6–10 waiting  → 2
//	more than 10  → 1
//
// never above full.
func Table(waiting, full int) int {
	var t int
	switch {
	case waiting <= 0:
		return max(full, 0)
	case waiting <= 5:
		t = 3
	case waiting <= 10:
		t = 2
	default:
		t = 1
	}
	return max(min(t, full), 0)
}

// Signals are what the controller knows about one backend at one instant.
type Signals struct {
	// Capacity is routing's concurrent-request capacity of the backend (its
	// max_num_seqs, when configured to match).
	Capacity int
	// Waiting is the scraped num_requests_waiting (both classes), or NaN when the
	// backend's metrics are missing or stale.
	Waiting float64
	// Interactive and Batch are the requests in flight on the backend by class, as the
	// proxy counts them (every replica's, through routing's load share): they change the
	// moment a request is picked or ends.
	Interactive, Batch int64
	// InteractivePeak is the highest Interactive over the last Config.PeakWindow (never
	// below Interactive); the reserve is kept on top of it.
	InteractivePeak int64
	// Surge is true while interactive arrivals on the backend's group surge
	// (Config.SurgeHorizon): the target is then the floor.
	Surge bool
}

// full is the backend's batch concurrency when nothing is in the way.
func (c Config) full(capacity int) int {
	return max(min(c.MaxConcurrent, capacity-c.InteractiveReserve), 0)
}

// floor bounds a target from below without breaking the reserve.
func (c Config) floorFor(capacity int) int { return min(c.Floor, c.full(capacity)) }

// adaptiveTarget is ModeAdaptive's target (c with defaults applied): the table fed with
// the larger of the scraped waiting count and the queue the proxy's own counts imply
// (interactive + batch in flight beyond capacity), then cut so batch, interactive in
// flight at its recent peak and the reserve fit in the capacity, and to the floor during
// a surge; never below the floor,
// except while the interactive requests in flight alone fill the backend: then 0.
func (c Config) adaptiveTarget(s Signals) int {
	full := c.full(s.Capacity)
	waiting := max(s.Interactive+s.Batch-int64(s.Capacity), 0)
	if !math.IsNaN(s.Waiting) {
		waiting = max(waiting, int64(math.Ceil(s.Waiting)))
	}
	t := Table(int(min(waiting, math.MaxInt32)), full)
	t = int(min(int64(t), int64(s.Capacity-c.InteractiveReserve)-max(s.Interactive, s.InteractivePeak)))
	if s.Surge {
		t = min(t, c.floorFor(s.Capacity))
	}
	if s.Interactive >= int64(s.Capacity) {
		return max(t, 0) // interactive requests alone fill the backend: batch gives the floor up
	}
	return max(t, c.floorFor(s.Capacity))
}

// pollTarget is ModePoll's target, the seed's controller: the table on the waiting count
// of the last poll, with full = min(MaxConcurrent, capacity) and no reserve.
func (c Config) pollTarget(capacity int, polledWaiting float64) int {
	w := 0
	if !math.IsNaN(polledWaiting) {
		w = int(min(math.Ceil(polledWaiting), math.MaxInt32))
	}
	full := max(min(c.MaxConcurrent, capacity), 0)
	return max(Table(w, full), min(c.Floor, full))
}
