package sim

import (
	"strings"
	"testing"
)

// newTestEngine builds an engine without a loop; tests drive it step by step.
func newTestEngine(t *testing.T, cfg Config) *engine {
	t.Helper()
	if cfg.Model == "" {
		cfg.Model = "m1"
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	cfg = cfg.withDefaults()
	return newEngine(0, &cfg, newClock(1))
}

// testSeq makes a sequence with a prompt of promptTokens tokens (distinct per tag).
func testSeq(tag string, promptTokens, maxTokens, priority int) *seq {
	p := []byte(strings.Repeat(tag, promptTokens*bytesPerToken)[:promptTokens*bytesPerToken])
	return &seq{prompt: p, prompTok: promptTokens, maxTokens: maxTokens, priority: priority,
		seed: outputSeed(p), root: chainRoot("", ""), heapIndex: -1, notify: make(chan struct{}, 1)}
}

// step runs one engine step with simulated time and returns the sequences admitted for
// the first time in it.
func step(e *engine) (admitted []*seq) {
	e.mu.Lock()
	defer e.mu.Unlock()
	before := map[*seq]bool{}
	for _, s := range e.waiting {
		before[s] = s.scheduled
	}
	d := e.schedule()
	for _, p := range e.plan {
		if was, ok := before[p.s]; ok && !was {
			admitted = append(admitted, p.s)
		}
	}
	e.vnow += d
	e.apply(e.vnow)
	return admitted
}

func (e *engine) counts() (running, waiting int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.running), len(e.waiting)
}

func TestSchedulerMaxNumSeqsCap(t *testing.T) {
	e := newTestEngine(t, Config{MaxNumSeqs: 3})
	var seqs []*seq
	for i := range 5 {
		s := testSeq(string(rune('a'+i)), 10, 4, 0)
		seqs = append(seqs, s)
		e.submit(s)
	}
	step(e)
	if r, w := e.counts(); r != 3 || w != 2 {
		t.Fatalf("after one step running=%d waiting=%d, want 3 and 2", r, w)
	}
	for i := 0; i < 100 && !seqs[4].finished.Load(); i++ {
		step(e)
		if r, _ := e.counts(); r > 3 {
			t.Fatalf("running %d exceeds max-num-seqs 3", r)
		}
	}
	for i, s := range seqs {
		if !s.finished.Load() || s.generated.Load() != 4 {
			t.Errorf("seq %d finished=%v generated=%d", i, s.finished.Load(), s.generated.Load())
		}
	}
	if r, w := e.counts(); r != 0 || w != 0 || e.kv.used() != 0 {
		t.Errorf("idle engine has running=%d waiting=%d used blocks=%d", r, w, e.kv.used())
	}
}

func TestSchedulerPriorityOrder(t *testing.T) {
	e := newTestEngine(t, Config{MaxNumSeqs: 1, SchedulingPolicy: PolicyPriority})
	first := testSeq("a", 8, 2, 0)
	e.submit(first)
	step(e) // first occupies the only slot
	b, c, d, f := testSeq("b", 8, 2, 5), testSeq("c", 8, 2, 1), testSeq("d", 8, 2, 1), testSeq("f", 8, 2, -3)
	for _, s := range []*seq{b, c, d, f} {
		e.submit(s)
	}
	var order []*seq
	for i := 0; i < 50 && len(order) < 4; i++ {
		order = append(order, step(e)...)
	}
	want := []*seq{f, c, d, b} // (priority, arrival) ascending
	if len(order) != 4 {
		t.Fatalf("admitted %d sequences, want 4", len(order))
	}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("admission %d has priority %d arrival %d, want priority %d arrival %d",
				i, order[i].priority, order[i].arrival, want[i].priority, want[i].arrival)
		}
	}
}

func TestSchedulerFCFSOrder(t *testing.T) {
	e := newTestEngine(t, Config{MaxNumSeqs: 1})
	seqs := []*seq{testSeq("a", 4, 1, 0), testSeq("b", 4, 1, 0), testSeq("c", 4, 1, 0)}
	for _, s := range seqs {
		e.submit(s)
	}
	var order []*seq
	for i := 0; i < 20 && len(order) < 3; i++ {
		order = append(order, step(e)...)
	}
	for i := range seqs {
		if order[i] != seqs[i] {
			t.Fatalf("admission %d is arrival %d, want %d", i, order[i].arrival, seqs[i].arrival)
		}
	}
}

// A waiting high-priority request does not evict a running one when the slots are full
// (vLLM issue #40004); it waits.
func TestSchedulerNoSlotPreemption(t *testing.T) {
	e := newTestEngine(t, Config{MaxNumSeqs: 1, SchedulingPolicy: PolicyPriority})
	low := testSeq("l", 4, 10, 9)
	e.submit(low)
	step(e)
	high := testSeq("h", 4, 1, -9)
	e.submit(high)
	step(e)
	if high.scheduled || e.stats.preemptions != 0 {
		t.Fatalf("high-priority request preempted a running one for a slot")
	}
}

func TestSchedulerPreemptionUnderKVPressure(t *testing.T) {
	// 8 blocks of 16 tokens; each sequence grows to 40+60 = 100 tokens (7 blocks), so
	// both cannot run to the end together.
	e := newTestEngine(t, Config{NumGPUBlocks: 8, MaxModelLen: 128, SchedulingPolicy: PolicyPriority})
	lowPrio := testSeq("a", 40, 60, 1) // arrives first, but larger priority value
	highPrio := testSeq("b", 40, 60, 0)
	e.submit(lowPrio)
	e.submit(highPrio)
	var preemptedLow, preemptedHigh bool
	for i := 0; i < 1000 && (!lowPrio.finished.Load() || !highPrio.finished.Load()); i++ {
		step(e)
		e.mu.Lock()
		if lowPrio.state == seqWaiting && lowPrio.scheduled {
			preemptedLow = true
		}
		if highPrio.state == seqWaiting && highPrio.scheduled {
			preemptedHigh = true
		}
		if e.kv.used() > e.kv.total() {
			t.Fatalf("used %d of %d blocks", e.kv.used(), e.kv.total())
		}
		e.mu.Unlock()
	}
	if !lowPrio.finished.Load() || !highPrio.finished.Load() {
		t.Fatal("sequences did not finish")
	}
	if e.stats.preemptions == 0 || !preemptedLow || preemptedHigh {
		t.Fatalf("preemptions=%d low preempted=%v high preempted=%v; want the larger priority value preempted only",
			e.stats.preemptions, preemptedLow, preemptedHigh)
	}
	if lowPrio.generated.Load() != 60 || highPrio.generated.Load() != 60 {
		t.Errorf("generated %d and %d tokens, want 60 each (recompute must not repeat tokens)",
			lowPrio.generated.Load(), highPrio.generated.Load())
	}
	if highPrio.firstTokenAt > lowPrio.lastTokenAt {
		t.Errorf("high priority finished after low priority")
	}
	if e.kv.used() != 0 {
		t.Errorf("%d blocks still used after both finished", e.kv.used())
	}
}

func TestSchedulerChunkedPrefill(t *testing.T) {
	e := newTestEngine(t, Config{MaxNumBatchedTokens: 100, MaxModelLen: 1024})
	s := testSeq("p", 250, 2, 0)
	e.submit(s)
	steps := 0
	for !s.finished.Load() && steps < 20 {
		step(e)
		steps++
	}
	// 250 prompt tokens at 100 per step: 3 steps of prefill (first token at the third),
	// then one decode step.
	if steps != 4 {
		t.Errorf("took %d steps, want 4", steps)
	}
}

func TestSchedulerAbort(t *testing.T) {
	e := newTestEngine(t, Config{MaxNumSeqs: 1})
	a, b := testSeq("a", 20, 50, 0), testSeq("b", 20, 50, 0)
	e.submit(a)
	e.submit(b)
	step(e)
	e.abort(b) // waiting
	e.abort(a) // running
	e.abort(a) // twice is fine
	if r, w := e.counts(); r != 0 || w != 0 || e.kv.used() != 0 {
		t.Fatalf("after aborts running=%d waiting=%d used=%d", r, w, e.kv.used())
	}
	step(e) // the plan of an empty engine is empty
}
