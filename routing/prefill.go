package routing

import "time"

// Prefill spreading. A vLLM engine step that prefills a prompt takes far longer than a
// decode step (512 tokens at 10,000 tokens/s add 51 ms to a ~14 ms step), and every
// sequence running on the engine waits for it: its time to first token if it is new, one
// inter-token gap if it is decoding. Two prompts that reach one engine in the same step
// make a step twice as long. Load scores cannot see this: a backend that has just been sent
// a prompt looks no busier than one that has not. So the router counts, per backend, the
// prompts this replica sent there that are still being prefilled, and load-based choices
// prefer a backend with fewer of them when its load is about the same (Config.PrefillSpread).
//
// A streamed request is being prefilled until its first response byte (the proxy calls
// Pick.Prefilled): exact, as NVIDIA Dynamo's router clears a request's prefill blocks at
// its first token. Any other request (every batch line) answers at its end, so its prefill
// is estimated from its uncached prompt tokens at CacheAwareConfig.PrefillTokensPerSecond,
// one after another on the backend. Counts are per replica: they change within
// milliseconds, faster than the shared in-flight counts travel.

// DefaultPrefillSpread is Config.PrefillSpread's default: a quarter of a backend's capacity.
const DefaultPrefillSpread = 0.25

// prefillStartSlack is added to a batch request's estimated prefill: about one decode step,
// which it may wait for before the engine schedules it.
const prefillStartSlack = 20 * time.Millisecond

// Sent tells routing the pick's request is being sent to the backend now. A streamed one
// (its first response byte comes with its first token) counts as being prefilled there
// until Prefilled (or Done); any other for its estimated prefill time. Call it once per
// attempt, right before sending; a pick that is never sent (a batch slot refused) must not
// call it.
func (p *Pick) Sent(stream bool) {
	b := p.Backend
	if stream {
		if p.prefilling.CompareAndSwap(false, true) {
			b.mu.Lock()
			b.prefills++
			b.mu.Unlock()
		}
		return
	}
	d := time.Duration(float64(p.tokens)/p.r.prefillRate*float64(time.Second)) + prefillStartSlack
	now := p.r.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	from := b.batchPrefillDone
	if from.Before(now) {
		from = now
	}
	b.batchPrefillDone = from.Add(d) // the engine prefills them one after another
}

// Prefilled tells routing the attempt's first response byte arrived, so its prompt has
// been prefilled. Done implies it; calling it again, or for a pick not Sent as streamed,
// does nothing.
func (p *Pick) Prefilled() {
	if !p.prefilling.CompareAndSwap(true, false) {
		return
	}
	p.Backend.mu.Lock()
	p.Backend.prefills--
	p.Backend.mu.Unlock()
}

// prefillViewLocked fills c's prefill fields and, for an interactive pick when batch
// yields (Config.BatchYields), takes the batch requests in flight (batch, over all
// replicas) out of c's load. b.mu must be held.
func (r *Router) prefillViewLocked(b *Backend, c *Candidate, class Class, batch int64, now time.Time) {
	c.Prefills = int(b.prefills)
	if b.batchPrefillDone.After(now) {
		c.Prefills++
	}
	if class == ClassInteractive && r.cfg.BatchYields {
		c.Load = max(0, c.Load-float64(batch)/float64(max(b.cfg.Capacity, 1)))
	}
}

// markCrowded marks the candidates that load-based choices pass over: those with more
// prefills pending than the fewest among the candidates at most slack more loaded than the
// least loaded one, and those more loaded than that. Nothing is marked when slack is
// negative or every candidate within it has as many prefills pending.
func markCrowded(cands []Candidate, slack float64) {
	if slack < 0 || len(cands) < 2 {
		return
	}
	least := cands[0].Load
	for _, c := range cands[1:] {
		least = min(least, c.Load)
	}
	fewest, most := -1, -1
	for _, c := range cands {
		if c.Load <= least+slack+loadEpsilon {
			if fewest < 0 || c.Prefills < fewest {
				fewest = c.Prefills
			}
			most = max(most, c.Prefills)
		}
	}
	if fewest == most {
		return // nothing to prefer within the slack: the policy's own load rule decides
	}
	for i := range cands {
		c := &cands[i]
		c.Crowded = c.Load > least+slack+loadEpsilon || c.Prefills > fewest
	}
}

// uncrowded returns the candidates not Crowded and, when some were left out, the index in
// cands of each one returned (nil when it is cands itself).
func uncrowded(cands []Candidate) (sub []Candidate, index []int) {
	n := 0
	for _, c := range cands {
		if !c.Crowded {
			n++
		}
	}
	if n == len(cands) || n == 0 {
		return cands, nil
	}
	sub, index = make([]Candidate, 0, n), make([]int, 0, n)
	for i, c := range cands {
		if !c.Crowded {
			sub, index = append(sub, c), append(index, i)
		}
	}
	return sub, index
}

// original maps an index into uncrowded's sub back to cands.
func original(index []int, i int) int {
	if index == nil {
		return i
	}
	return index[i]
}
