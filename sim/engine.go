package sim

import (
	"sync"
	"sync/atomic"
)

// engine is one data-parallel rank: its running slots, waiting queue, KV cache and
// statistics. All mutable state is guarded by mu; load is mirrored in atomics so that
// the server can pick the least loaded engine without taking every lock.
type engine struct {
	index int
	cfg   *Config
	clock *clock

	mu       sync.Mutex
	kv       *kvCache
	running  []*seq // in admission order
	waiting  waitQueue
	arrivals uint64
	vnow     float64 // simulated time of the engine loop, seconds
	stats    engineStats

	load atomic.Int64   // 4*waiting + running, for engine selection
	wake chan struct{}  // capacity 1; wakes the timed loop on submit
	plan []scheduledSeq // reused by the timed loop
}

// scheduledSeq is one sequence's share of a step.
type scheduledSeq struct {
	s *seq
	n int // tokens computed this step
}

func newEngine(index int, cfg *Config, clk *clock) *engine {
	return &engine{
		index: index,
		cfg:   cfg,
		clock: clk,
		kv:    newKVCache(cfg.NumGPUBlocks, !cfg.DisablePrefixCaching),
		wake:  make(chan struct{}, 1),
		stats: newEngineStats(),
	}
}

func (e *engine) updateLoad() {
	e.load.Store(int64(4*len(e.waiting) + len(e.running)))
}

// maxHitBlocks is how many leading blocks of a sequence of n tokens may come from the
// cache: vLLM always recomputes at least the last token, to get its logits.
func (e *engine) maxHitBlocks(n int) int { return (n - 1) / e.cfg.BlockSize }

// blocksFor is the number of blocks that hold n tokens.
func (e *engine) blocksFor(n int) int { return (n + e.cfg.BlockSize - 1) / e.cfg.BlockSize }

// submit queues s for the timed loop.
func (e *engine) submit(s *seq) {
	e.mu.Lock()
	e.arrivals++
	s.arrival = e.arrivals
	s.arrivedAt = e.clock.now()
	s.hashes = blockHashes(s.hashes[:0], s.root, s.prompt, e.cfg.BlockSize*bytesPerToken)
	s.state = seqWaiting
	e.waiting.push(s)
	e.updateLoad()
	e.mu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// abort removes s from the engine (the client went away). Safe to call in any state.
func (e *engine) abort(s *seq) {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch s.state {
	case seqWaiting:
		e.waiting.remove(s.heapIndex)
	case seqRunning:
		e.removeRunning(s)
		e.kv.free(s.blocks)
		s.blocks = s.blocks[:0]
	default:
		return
	}
	s.state = seqAborted
	e.stats.aborted++
	e.updateLoad()
}

func (e *engine) removeRunning(s *seq) {
	for i, r := range e.running {
		if r == s {
			copy(e.running[i:], e.running[i+1:])
			e.running[len(e.running)-1] = nil
			e.running = e.running[:len(e.running)-1]
			return
		}
	}
}

// runInstant processes s to completion at once: prefix-cache lookup, allocation, commit
// of every full block of prompt+output, release. The caller has computed s.hashes over
// the whole prompt+output text.
func (e *engine) runInstant(s *seq) {
	e.mu.Lock()
	e.arrivals++
	s.arrival = e.arrivals
	total := s.prompTok + s.maxTokens
	hits := e.kv.lookup(s.hashes, e.maxHitBlocks(s.prompTok))
	need := e.blocksFor(total)
	cached := hits * e.cfg.BlockSize
	e.stats.prefixQueries += int64(s.prompTok)
	e.stats.prefixHits += int64(cached)
	if e.kv.canAllocate(s.hashes, hits, need-hits) {
		s.blocks = e.kv.takeHits(s.blocks[:0], s.hashes, hits)
		for len(s.blocks) < need {
			id, _ := e.kv.allocate()
			s.blocks = append(s.blocks, id)
		}
		for i, h := range s.hashes {
			e.kv.commit(s.blocks[i], h)
		}
		e.kv.free(s.blocks)
		s.blocks = s.blocks[:0]
	}
	e.stats.promptTokens += int64(s.prompTok)
	e.stats.generationTokens += int64(s.maxTokens)
	e.stats.observeInstant(s.maxTokens)
	e.mu.Unlock()
	s.cachedTokens = cached
	s.cached.Store(tokens32(cached))
	s.gen = s.maxTokens
	s.generated.Store(tokens32(s.maxTokens))
	s.finished.Store(true)
}

// victim returns the running sequence to preempt: the largest (priority, arrival). Under
// fcfs that is the most recently admitted one, as vLLM's running.pop().
func (e *engine) victim() *seq {
	v := e.running[len(e.running)-1]
	for _, r := range e.running {
		if v.less(r) {
			v = r
		}
	}
	return v
}

// preempt frees v's blocks and sends it back to waiting; it will be recomputed.
func (e *engine) preempt(v *seq) {
	e.removeRunning(v)
	e.kv.free(v.blocks)
	v.blocks = v.blocks[:0]
	v.committed = 0
	v.computed = 0
	v.state = seqWaiting
	e.waiting.push(v)
	e.stats.preemptions++
}

// growTo makes s hold blocks for n tokens, preempting others (or s itself) when the
// cache is full. It reports whether s is still running.
func (e *engine) growTo(s *seq, n int) bool {
	need := e.blocksFor(n)
	for len(s.blocks) < need {
		if id, ok := e.kv.allocate(); ok {
			s.blocks = append(s.blocks, id)
			continue
		}
		v := e.victim()
		e.preempt(v)
		if v == s {
			return false
		}
	}
	return true
}

// schedule plans one step: running sequences first (decode one token, or the next
// prefill chunk), then admission from the waiting queue while slots, token budget and
// KV blocks allow. It returns the simulated duration of the step in seconds.
func (e *engine) schedule() float64 {
	budget := e.cfg.MaxNumBatchedTokens
	e.plan = e.plan[:0]
	prefill := 0
	preempted := false
	for i := 0; i < len(e.running) && budget > 0; {
		s := e.running[i]
		n := min(s.totalTokens()-s.computed, budget)
		before := len(e.running)
		if !e.growTo(s, s.computed+n) {
			preempted = true
			continue // s went back to waiting; e.running[i] is now the next one
		}
		if len(e.running) != before {
			preempted = true
		}
		e.plan = append(e.plan, scheduledSeq{s, n})
		if n != 1 || s.gen <= 0 || s.computed < s.prompTok { // not a plain decode step
			prefill += n
		}
		budget -= n
		i++
	}
	for !preempted && len(e.waiting) > 0 && len(e.running) < e.cfg.MaxNumSeqs && budget > 0 {
		s := e.waiting.peek()
		total := s.totalTokens()
		hits := e.kv.lookup(s.hashes, e.maxHitBlocks(total))
		cached := hits * e.cfg.BlockSize
		n := min(total-cached, budget)
		need := e.blocksFor(cached + n)
		if !e.kv.canAllocate(s.hashes, hits, need-hits) {
			break
		}
		e.waiting.pop()
		s.blocks = e.kv.takeHits(s.blocks[:0], s.hashes, hits)
		for len(s.blocks) < need {
			id, _ := e.kv.allocate()
			s.blocks = append(s.blocks, id)
		}
		s.committed = hits
		s.computed = cached
		s.state = seqRunning
		e.stats.prefixQueries += int64(total)
		e.stats.prefixHits += int64(cached)
		if !s.scheduled {
			s.scheduled = true
			s.cachedTokens = cached
			s.cached.Store(tokens32(cached))
			e.stats.queue.observe(max(0, e.vnow-s.arrivedAt))
		}
		e.running = append(e.running, s)
		e.plan = append(e.plan, scheduledSeq{s, n})
		prefill += n
		budget -= n
	}
	e.updateLoad()
	if len(e.plan) == 0 {
		return 0
	}
	d := e.cfg.DecodeStepMs/1000 + e.cfg.DecodePerSeqMs/1000*float64(len(e.plan))
	if e.cfg.PrefillTokensPerS > 0 {
		d += float64(prefill) / e.cfg.PrefillTokensPerS
	}
	return d
}

// apply completes the planned step at simulated time now: computed tokens advance,
// sequences that reached the end of their input emit a token, full blocks are committed
// to the prefix cache, and finished sequences release their blocks.
func (e *engine) apply(now float64) {
	for _, p := range e.plan {
		s := p.s
		if s.state != seqRunning {
			continue // aborted or preempted meanwhile
		}
		s.computed += p.n
		if s.computed == s.totalTokens() {
			e.emit(s, now)
		}
		// Commit blocks whose KV is fully computed.
		full := s.computed / e.cfg.BlockSize
		s.extendHashes(e.cfg.BlockSize, full)
		for s.committed < min(full, len(s.hashes), len(s.blocks)) {
			e.kv.commit(s.blocks[s.committed], s.hashes[s.committed])
			s.committed++
		}
		if s.gen >= s.maxTokens {
			e.finish(s, now)
		}
	}
	e.updateLoad()
}

// emit records one generated token of s at time now.
func (e *engine) emit(s *seq, now float64) {
	if s.maxTokens == 0 {
		return // embeddings: prefill only
	}
	if s.gen == 0 {
		s.firstTokenAt = now
		e.stats.ttft.observe(now - s.arrivedAt)
	} else {
		e.stats.itl.observe(now - s.lastTokenAt)
	}
	s.lastTokenAt = now
	s.gen++
	e.stats.generationTokens++
	s.generated.Store(tokens32(s.gen))
	s.signal()
}

func (e *engine) finish(s *seq, now float64) {
	e.removeRunning(s)
	e.kv.free(s.blocks)
	s.blocks = s.blocks[:0]
	s.state = seqFinished
	e.stats.promptTokens += int64(s.prompTok)
	e.stats.e2e.observe(now - s.arrivedAt)
	e.stats.finished++
	s.finished.Store(true)
	s.signal()
}
