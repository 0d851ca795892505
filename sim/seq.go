package sim

import (
	"math"
	"sync/atomic"
)

// seqState is where a sequence is in its engine.
type seqState uint8

const (
	seqNew seqState = iota
	seqWaiting
	seqRunning
	seqFinished
	seqAborted
)

// seq is one generation request inside an engine. The handler fills the immutable
// fields before submitting it; after that, the engine owns the mutable fields under its
// mutex, and publishes progress to the handler through generated, finished and notify.
type seq struct {
	// Immutable after submit.
	priority  int
	prompt    []byte // canonical prompt text
	prompTok  int    // prompt tokens, countTokens(len(prompt))
	maxTokens int    // output tokens to generate; 0 for embeddings (prefill only)
	seed      uint64 // output text seed
	root      uint64 // block chain root (cache salt, adapter)
	lora      string // adapter name, "" for the base model

	// Engine-owned, under engine.mu.
	arrival      uint64   // arrival order within the engine
	hashes       []uint64 // chained hashes of the full blocks of prompt+output text so far
	blocks       []int32  // KV blocks held
	committed    int      // blocks whose hash has been committed to the cache
	computed     int      // tokens whose KV has been computed
	cachedTokens int      // prefix-cache hit at first admission (usage.cached_tokens)
	scheduled    bool     // has been admitted at least once
	state        seqState
	heapIndex    int
	gen          int // tokens generated (mirror of generated, for the engine)
	arrivedAt    float64
	firstTokenAt float64
	lastTokenAt  float64
	scratch      []byte

	// Published to the handler.
	generated atomic.Int32
	finished  atomic.Bool
	cached    atomic.Int32  // cachedTokens, published at first admission
	notify    chan struct{} // capacity 1; signalled on progress and at the end
}

// signal wakes the handler waiting on s without blocking the engine.
func (s *seq) signal() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// tokens32 converts a token count for the int32 atomics that publish it. Counts are at most
// MaxModelLen, which Config.Validate caps at math.MaxInt32, so the clamp never applies.
func tokens32(n int) int32 {
	if n > math.MaxInt32 {
		return math.MaxInt32
	}
	if n < 0 {
		return 0
	}
	return int32(n)
}

// totalTokens is the number of tokens whose KV the sequence needs now.
func (s *seq) totalTokens() int { return s.prompTok + s.gen }

// textLen is the byte length of the prompt plus the generated output.
func (s *seq) textLen() int { return len(s.prompt) + s.gen*bytesPerToken }

// appendText appends bytes [from, to) of prompt+output text to dst.
func (s *seq) appendText(dst []byte, from, to int) []byte {
	if from < len(s.prompt) {
		dst = append(dst, s.prompt[from:min(to, len(s.prompt))]...)
		from = len(s.prompt)
	}
	for from < to {
		off := from - len(s.prompt)
		tok := outputToken(s.seed, off/bytesPerToken)
		chunk := tok[off%bytesPerToken:]
		if len(chunk) > to-from {
			chunk = chunk[:to-from]
		}
		dst = append(dst, chunk...)
		from += len(chunk)
	}
	return dst
}

// extendHashes adds the hashes of blocks that became full in the text, up to limit
// blocks.
func (s *seq) extendHashes(blockSize, limit int) {
	bb := blockSize * bytesPerToken
	for len(s.hashes) < limit && (len(s.hashes)+1)*bb <= s.textLen() {
		k := len(s.hashes)
		parent := s.root
		if k > 0 {
			parent = s.hashes[k-1]
		}
		s.scratch = s.appendText(s.scratch[:0], k*bb, (k+1)*bb)
		s.hashes = append(s.hashes, fnv64(mixHash(fnvOffset, parent), s.scratch))
	}
}

// key orders sequences for scheduling: lower priority value first, then earlier arrival.
func (s *seq) less(o *seq) bool {
	if s.priority != o.priority {
		return s.priority < o.priority
	}
	return s.arrival < o.arrival
}

// waitQueue is a binary heap of waiting sequences ordered by (priority, arrival). Under
// fcfs every priority is 0, so it is arrival order, and a preempted sequence (which
// arrived before everything still waiting) goes back to the front, as in vLLM.
type waitQueue []*seq

func (q waitQueue) Len() int { return len(q) }

func (q *waitQueue) push(s *seq) {
	*q = append(*q, s)
	s.heapIndex = len(*q) - 1
	q.up(s.heapIndex)
}

func (q waitQueue) peek() *seq { return q[0] }

func (q *waitQueue) pop() *seq { return q.remove(0) }

func (q *waitQueue) remove(i int) *seq {
	old := *q
	n := len(old) - 1
	s := old[i]
	if i != n {
		old[i] = old[n]
		old[i].heapIndex = i
	}
	old[n] = nil
	*q = old[:n]
	if i != n {
		q.down(i)
		q.up(i)
	}
	s.heapIndex = -1
	return s
}

func (q waitQueue) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !q[i].less(q[p]) {
			return
		}
		q.swap(i, p)
		i = p
	}
}

func (q waitQueue) down(i int) {
	for {
		l := 2*i + 1
		if l >= len(q) {
			return
		}
		m := l
		if r := l + 1; r < len(q) && q[r].less(q[l]) {
			m = r
		}
		if !q[m].less(q[i]) {
			return
		}
		q.swap(i, m)
		i = m
	}
}

func (q waitQueue) swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].heapIndex = i
	q[j].heapIndex = j
}
