package proxy

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/vllm-proxy/vllm-proxy/backpressure"
	"github.com/vllm-proxy/vllm-proxy/routing"
	"github.com/vllm-proxy/vllm-proxy/sim"
	"github.com/vllm-proxy/vllm-proxy/state"
)

// gatedEnv is the proxy with batch admission by a backpressure.Controller on the
// in-memory budget, over one simulator running priority scheduling.
type gatedEnv struct {
	*env
	ctl *backpressure.Controller
	sim *sim.Server
	url string
}

func newGatedEnv(t *testing.T, cfg Config, bp backpressure.Config, capacity int, sc sim.Config) *gatedEnv {
	t.Helper()
	sc.SchedulingPolicy = sim.PolicyPriority
	s := startSim(t, sc)
	on := true
	reg := prometheus.NewRegistry()
	r, err := routing.New(routing.Config{Backends: []routing.BackendConfig{
		{URL: s.URL(), Capacity: capacity, Models: []string{"m"}, PriorityScheduling: &on}}}, testLogger(t), reg)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := state.ParseURL("memory")
	st, err := state.Open(t.Context(), u, state.Config{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	budget, err := state.NewBatchBudget(st, state.BudgetConfig{})
	if err != nil {
		t.Fatal(err)
	}
	ctl, err := backpressure.New(bp, r, budget, testLogger(t), reg)
	if err != nil {
		t.Fatal(err)
	}
	if err := ctl.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ctl.Stop)
	h, err := New(cfg, r, testLogger(t), reg, WithBatchAdmission(ctl))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.CloseIdleConnections)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &gatedEnv{env: &env{router: r, h: h, srv: srv, client: srv.Client(), reg: reg}, ctl: ctl, sim: s, url: r.Backends()[0].ID()}
}

// TestBatchAdmission runs 24 batch lines at once against a backend with 4 slots and a
// reserve of 1, then adds interactive requests: batch never runs on more than capacity −
// reserve slots, does fill them while interactive traffic is absent (work-conserving),
// and every line and request succeeds.
func TestBatchAdmission(t *testing.T) {
	e := newGatedEnv(t, Config{}, backpressure.Config{InteractiveReserve: 1, ReactInterval: 10 * time.Millisecond}, 4,
		sim.Config{MaxNumSeqs: 4, TimeScale: 10, OutputTokens: 40})
	const lines = 24
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range lines {
		wg.Go(func() {
			resp, err := e.h.Dispatch(t.Context(), DispatchRequest{Path: "/v1/completions",
				Body: []byte(`{"model":"m","prompt":"batch line","max_tokens":40}`)})
			if err != nil || resp.Status != http.StatusOK {
				t.Errorf("batch line: %v %+v", err, resp)
				failed.Add(1)
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	peak := 0
	var interactive sync.WaitGroup
	sent := false
	for finished := false; !finished; {
		select {
		case <-done:
			finished = true
		case <-time.After(2 * time.Millisecond):
		}
		snap := e.sim.Snapshot()
		batch := snap.RunningByPriority[DefaultBatchPriority] + snap.WaitingByPriority[DefaultBatchPriority]
		if batch > 3 {
			t.Fatalf("%d batch requests on a backend with 4 slots and reserve 1", batch)
		}
		peak = max(peak, batch)
		if peak == 3 && !sent { // batch filled what it may: now interactive traffic arrives
			sent = true
			for range 3 {
				interactive.Go(func() {
					if resp, body := e.post(t, "/v1/completions", `{"model":"m","prompt":"hi","max_tokens":4}`); resp.StatusCode != http.StatusOK {
						t.Errorf("interactive: %d %s", resp.StatusCode, body)
					}
				})
			}
		}
	}
	interactive.Wait()
	if peak != 3 {
		t.Errorf("batch peaked at %d running, want 3 (capacity 4 − reserve 1)", peak)
	}
	if !sent {
		t.Error("interactive traffic was never sent")
	}
	snap := e.sim.Snapshot()
	if snap.ReceivedByPriority[DefaultBatchPriority] != lines || snap.Statuses[http.StatusBadRequest] != 0 {
		t.Errorf("sim received %v, statuses %v", snap.ReceivedByPriority, snap.Statuses)
	}
	e.requireIdle(t)
}

// TestBatchAdmissionWaitsOutsideTimeout: a line that finds the backend at its batch
// target waits for a slot, and that wait does not count against RequestTimeout.
func TestBatchAdmissionWaitsOutsideTimeout(t *testing.T) {
	e := newGatedEnv(t, Config{RequestTimeout: 300 * time.Millisecond}, backpressure.Config{InteractiveReserve: -1, AdmitGap: -1}, 2,
		sim.Config{Instant: true})
	var held []func()
	for {
		rel, ok := e.ctl.TryAcquire(t.Context(), e.url)
		if !ok {
			break
		}
		held = append(held, rel)
	}
	if len(held) != 2 {
		t.Fatalf("held %d slots, want 2", len(held))
	}
	type out struct {
		resp *DispatchResponse
		err  error
		at   time.Time
	}
	res := make(chan out, 1)
	go func() {
		r, err := e.h.Dispatch(t.Context(), DispatchRequest{Path: "/v1/completions", Body: []byte(`{"model":"m","prompt":"x","max_tokens":1}`)})
		res <- out{r, err, time.Now()}
	}()
	select {
	case o := <-res:
		t.Fatalf("the line was sent while the backend was at its target: %+v %v", o.resp, o.err)
	case <-time.After(500 * time.Millisecond): // longer than RequestTimeout
	}
	released := time.Now()
	held[0]()
	o := <-res
	if o.err != nil || o.resp.Status != http.StatusOK {
		t.Fatalf("after a slot freed: %v %+v", o.err, o.resp)
	}
	if d := o.at.Sub(released); d > 200*time.Millisecond {
		t.Errorf("the line was sent %s after the slot freed", d)
	}
	held[1]()
	if n := e.sim.Snapshot().ReceivedByPriority[DefaultBatchPriority]; n != 1 {
		t.Errorf("sim received %d batch lines, want 1", n)
	}
	e.requireIdle(t)
}

// TestBatchEviction: with eviction on, long batch lines fill the backend's batch room;
// when interactive requests arrive, batch running on the simulator falls to the floor
// within a few ticks (not after a batch request's duration), the interactive requests
// succeed, and every batch line still finishes (evicted ones are sent again).
func TestBatchEviction(t *testing.T) {
	e := newGatedEnv(t, Config{}, backpressure.Config{InteractiveReserve: 1, Evict: true, ReactInterval: 10 * time.Millisecond}, 4,
		sim.Config{MaxNumSeqs: 4, TimeScale: 10, OutputTokens: 40})
	const lines = 3
	var wg sync.WaitGroup
	for range lines {
		wg.Go(func() {
			resp, err := e.h.Dispatch(t.Context(), DispatchRequest{Path: "/v1/completions",
				Body: []byte(`{"model":"m","prompt":"long batch line","max_tokens":1200}`)})
			if err != nil || resp.Status != http.StatusOK {
				t.Errorf("batch line: %v %+v", err, resp)
			}
		})
	}
	batchRunning := func() int { return e.sim.Snapshot().RunningByPriority[DefaultBatchPriority] }
	eventually(t, 5*time.Second, "batch to fill capacity − reserve", func() bool { return batchRunning() == 3 })
	var inter sync.WaitGroup
	for range 3 {
		inter.Go(func() {
			if resp, body := e.post(t, "/v1/completions", `{"model":"m","prompt":"hi","max_tokens":200}`); resp.StatusCode != http.StatusOK {
				t.Errorf("interactive: %d %s", resp.StatusCode, body)
			}
		})
	}
	arrived := time.Now()
	eventually(t, 5*time.Second, "batch to fall to the floor", func() bool { return batchRunning() <= 1 })
	if d := time.Since(arrived); d > 600*time.Millisecond { // a batch line runs ≈ 1.4s here
		t.Errorf("batch fell to the floor %s after the interactive arrivals", d)
	}
	inter.Wait()
	wg.Wait()
	if n := e.sim.Snapshot().ReceivedByPriority[DefaultBatchPriority]; n <= lines {
		t.Errorf("sim received %d batch requests for %d lines: nothing was evicted and resent", n, lines)
	}
	e.requireIdle(t)
}

// TestBatchEvictionOnPick: with a controller whose loop never ticks, an interactive
// request still makes room at once: the handler tells the admission about its pick
// (InteractiveObserver), which evicts a batch request, and the interactive request runs
// without waiting for a batch line to end.
func TestBatchEvictionOnPick(t *testing.T) {
	e := newGatedEnv(t, Config{}, backpressure.Config{InteractiveReserve: -1, Evict: true, PollInterval: time.Hour, ReactInterval: time.Hour, AdmitGap: -1}, 2,
		sim.Config{MaxNumSeqs: 2})
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() { // ≈ 15 s each at the default time model; cancelled below
			_, _ = e.h.Dispatch(ctx, DispatchRequest{Path: "/v1/completions",
				Body: []byte(`{"model":"m","prompt":"long batch line","max_tokens":1200}`)})
		})
	}
	batchRunning := func() int { return e.sim.Snapshot().RunningByPriority[DefaultBatchPriority] }
	eventually(t, 5*time.Second, "batch to fill the backend", func() bool { return batchRunning() == 2 })
	start := time.Now()
	if resp, body := e.post(t, "/v1/completions", `{"model":"m","prompt":"hi","max_tokens":2}`); resp.StatusCode != http.StatusOK {
		t.Fatalf("interactive: %d %s", resp.StatusCode, body)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("interactive request took %s behind a full backend", d)
	}
	if n := testutil.ToFloat64(e.h.metrics.retries.WithLabelValues(e.url, "evicted")); n != 1 {
		t.Errorf("%v batch attempts evicted, want 1", n)
	}
	cancel()
	wg.Wait()
	e.requireIdle(t)
}

// roomBetween is a BatchAdmission that refuses its first slot request and, before
// answering, signals room, as the admission's tick does when it sees a refused request
// and free room (the refusal was only for spacing): then it grants every request.
type roomBetween struct {
	mu      sync.Mutex
	changed chan struct{}
	calls   int
}

func (a *roomBetween) Changed() <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.changed
}

func (a *roomBetween) AdmitBatch(context.Context, string) (func(), <-chan struct{}, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls++
	if a.calls == 1 {
		close(a.changed)
		a.changed = make(chan struct{})
		return nil, nil, false
	}
	return func() {}, nil, true
}

// TestBatchAdmissionWakeBetweenRefusalAndWait: room signalled after a line's refusal and
// before it waits still wakes it. No slot is held anywhere, so no release would wake it
// later: a line that took the channel only after the refusal waited forever (a batch in
// the faults and deploy suites never completed).
func TestBatchAdmissionWakeBetweenRefusalAndWait(t *testing.T) {
	s := startSim(t, sim.Config{Instant: true})
	r, err := routing.New(routing.Config{Backends: []routing.BackendConfig{{URL: s.URL(), Models: []string{"m"}}}}, testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	a := &roomBetween{changed: make(chan struct{})}
	h, err := New(Config{}, r, testLogger(t), nil, WithBatchAdmission(a))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.CloseIdleConnections)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	resp, err := h.Dispatch(ctx, DispatchRequest{Path: "/v1/chat/completions", Class: routing.ClassBatch,
		Body: []byte(`{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":2}`)})
	if err != nil {
		t.Fatalf("the line never got a slot: %v", err)
	}
	if resp.Status != http.StatusOK {
		t.Fatalf("status %d: %s", resp.Status, resp.Body)
	}
	if a.calls != 2 {
		t.Errorf("%d slot requests, want 2 (refused, then granted)", a.calls)
	}
}
