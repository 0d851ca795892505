// Package backpressure keeps batch traffic from slowing interactive traffic down: per
// backend, it decides how many batch requests may be in flight (the batch target) and
// hands out batch slots under that target through a budget shared by every replica
// (state.BatchBudget, leases in Redis).
//
// vLLM's priority scheduling orders only its waiting queue: a waiting priority-0 request
// does not evict running batch requests when the max_num_seqs slots are full (vLLM issue
// #40004). So the first line of defence is here, in front of the backend.
//
// The target (ModeAdaptive, the default) is the seed design's table
//
//	0 waiting → MaxConcurrent, 1–5 → 3, 6–10 → 2, more than 10 → 1
//
// fed by the larger of two waiting counts: the scraped num_requests_waiting (it lags by
// a scrape and counts both classes) and the queue the proxy's own live counts imply
// (interactive + batch in flight beyond the backend's capacity). It is then cut so that
// batch, the interactive requests in flight (optionally at their peak over the last
// PeakWindow) and InteractiveReserve fit in the capacity, and never goes below Floor
// (1), except to 0 while the interactive requests in flight alone fill the backend. The
// live counts are routing's per-backend in-flight counts by class, which change the moment
// a request is picked, on any replica through the load share: a slot request made right
// after an interactive arrival already sees it; no poll is involved. With no interactive
// traffic the table and the cut leave batch the whole capacity but the reserve
// (work-conserving).
//
// Lowering a target stops new batch requests only: vLLM will not preempt running ones for
// a waiting interactive request. With Config.Evict the controller also stops (evicts) the
// newest running batch requests beyond the target when a backend's slots are over-full,
// that is when an interactive request would otherwise wait for a slot (a batch request
// admitted before interactive traffic rose may keep running in the reserve until then);
// the proxy then sends those lines again once there is room. An interactive request
// routed by this replica finds its slot at once, others within about one ReactInterval,
// at the price of the evicted work.
//
// This replica admits batch requests on a backend at least AdmitGap (100 ms) apart, so
// that their prefills do not pile into one engine step that every running interactive
// request waits for, whether interactive requests are in flight or not (batch requests
// admitted together would finish and be replaced together, again and again); once batch
// requests have finished there, the gap is at most their mean duration over the batch
// target, so it never keeps batch below its target.
//
// While a streamed interactive request this replica routed to a backend waits for its
// first byte, no batch request is admitted there (PrefillHold, at most 500 ms per
// request): its prompt would be prefilled in the same engine step or in the one the
// interactive request waits for. InteractivePicked returns the function the proxy calls
// at the first byte; it wakes the lines refused meanwhile.
//
// An interactive burst fills a backend faster than lazy eviction empties it: it frees a
// batch slot only when an interactive request needs that slot. So the controller also
// watches the interactive arrivals on each group of backends serving the same models
// (the surge type, a CUSUM test for the arrival rate doubling against its weighted rate
// over SurgeHorizon, 10 s). When a surge starts, the group's targets drop to the floor and
// with Evict the batch requests beyond it are stopped at once; the targets rise again when
// arrivals slow down, or within about a horizon when the new rate lasts. With WithPeers
// (cmd wires a state.Bus, Redis pub/sub) the replicas publish the backends they routed
// interactive requests to and count each other's arrivals, so every replica's test sees
// the whole rate and notices a surge about as soon as a single replica would (while
// Redis is unreachable, each sees its own arrivals only).
//
// ModePoll is the seed's controller alone (the table on the waiting count read every
// PollInterval), and ModeOff no backpressure; both exist to compare against.
//
// The batch path calls TryAcquire(ctx, backend) once routing picked a backend for a line
// (or Acquire to wait for one), and the release function when the line ends; AdmitBatch
// is the same with the eviction signal, for proxy.WithBatchAdmission. Changed returns a
// channel closed when room may have appeared, so a caller that found every backend full
// can wait for it.
//
// Metrics (NewMetrics): vllm_proxy_backpressure_batch_target, _in_flight_requests{class},
// _throttle_events_total, _refused_slots_total and _evictions_total, per backend, and
// _surges_total.
package backpressure
