package backpressure

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/vllm-proxy/vllm-proxy/routing"
	"github.com/vllm-proxy/vllm-proxy/state"
	"github.com/vllm-proxy/vllm-proxy/state/statetest"
)

// replica is one proxy replica's routing, budget and controller on a shared Redis.
type replica struct {
	store  *state.Store
	router *routing.Router
	budget *state.BatchBudget
	ctl    *Controller
	crash  context.CancelFunc // abandons the budget's leases, as a killed process would
}

func newReplica(t *testing.T, redisURL, id string, capacity int, admitGap time.Duration) *replica {
	t.Helper()
	return newReplicaWith(t, redisURL, id, capacity, Config{ReactInterval: 20 * time.Millisecond, AdmitGap: admitGap})
}

// newReplicaWith is newReplica with the controller's whole Config; the replicas exchange
// their interactive arrivals (WithPeers).
func newReplicaWith(t *testing.T, redisURL, id string, capacity int, cfg Config) *replica {
	t.Helper()
	u, err := state.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	s, err := state.Open(t.Context(), u, state.Config{ReplicaID: id, HealthInterval: 50 * time.Millisecond,
		HeartbeatInterval: 30 * time.Millisecond, InFlightLease: 300 * time.Millisecond}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	waitFor(t, 5*time.Second, "redis connected", s.Connected)
	r, err := routing.New(routing.Config{Backends: []routing.BackendConfig{{URL: backendURL, Capacity: capacity, Models: []string{"m"}}}},
		slog.New(slog.DiscardHandler), nil, routing.WithLoadShare(s.InFlight()))
	if err != nil {
		t.Fatal(err)
	}
	b, err := state.NewBatchBudget(s, state.BudgetConfig{LeaseTTL: 400 * time.Millisecond, RenewInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, crash := context.WithCancel(t.Context())
	if err := b.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Stop)
	ctl, err := New(cfg, r, b, nil, nil, WithPeers(s.Bus("backpressure")))
	if err != nil {
		t.Fatal(err)
	}
	if err := ctl.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ctl.Stop)
	return &replica{store: s, router: r, budget: b, ctl: ctl, crash: crash}
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func tryFill(t *testing.T, c *Controller) []func() {
	t.Helper()
	var rels []func()
	for range 100 {
		rel, ok := c.TryAcquire(t.Context(), backendURL)
		if !ok {
			break
		}
		rels = append(rels, rel)
	}
	return rels
}

// TestReplicasShareOneBudget: two replicas on one Redis: batch on both together holds at
// most capacity − reserve of the backend; an interactive arrival on one replica holds the
// other's batch back at once (through the published target, before any heartbeat), even
// when that replica's next slot request is refused for its admission gap; and when a
// replica dies holding slots, they come back to the other after the lease.
func TestReplicasShareOneBudget(t *testing.T) {
	r := statetest.StartRedis(t)
	a := newReplica(t, r.URL, "a", 8, time.Hour) // one admission, then only gap refusals
	b := newReplica(t, r.URL, "b", 8, -1)

	relB := tryFill(t, b.ctl)
	relA := tryFill(t, a.ctl)
	if len(relB) != 6 || len(relA) != 0 {
		t.Fatalf("b got %d slots and a %d, want 6 and 0 (capacity 8 − reserve 2, shared)", len(relB), len(relA))
	}
	releaseAll(relB)

	// a admits one batch request; three interactive requests arrive on a; a's next batch
	// slot request is refused for the gap but publishes the lowered target (8 − 2 − 3 =
	// 3), which binds b at once: b gets the 2 slots a's request leaves.
	relA = tryFill(t, a.ctl)
	if len(relA) != 1 {
		t.Fatalf("a got %d slots, want 1 (then its gap)", len(relA))
	}
	var picks []*routing.Pick
	for range 3 {
		p, err := a.router.Pick(t.Context(), &routing.Request{Model: "m", Class: routing.ClassInteractive})
		if err != nil {
			t.Fatal(err)
		}
		picks = append(picks, p)
	}
	if more := tryFill(t, a.ctl); len(more) != 0 {
		t.Fatalf("a got %d more slots inside its gap", len(more))
	}
	relB = tryFill(t, b.ctl)
	if len(relA)+len(relB) != 3 {
		t.Fatalf("with 3 interactive in flight on a, batch got %d+%d slots, want 3 in all", len(relA), len(relB))
	}
	for _, p := range picks {
		p.Done(routing.Outcome{Status: 200})
	}
	releaseAll(relB)

	// a dies holding its slots: b gets them back after the lease (400ms), not before.
	a.crash()
	a.ctl.Stop()
	held := len(relA)
	died := time.Now()
	var got []func()
	waitFor(t, 5*time.Second, "a's slots to come back to b", func() bool {
		got = append(got, tryFill(t, b.ctl)...)
		return len(got) == 6
	})
	if d := time.Since(died); held > 0 && d < 300*time.Millisecond {
		t.Errorf("a's %d slots came back after %s, before its lease ran out", held, d)
	}
	releaseAll(got)
}

// TestSurgeSeenByEveryReplica: interactive requests all arrive on one replica while
// another holds the batch. When they suddenly come much faster, the other replica
// notices the surge from the arrivals the first one publishes, and cuts its own batch to
// the floor at once, although no interactive request went through it (without peers it
// would never know: its routing sees the requests in flight, not their rate, and they
// are too few to fill the backend).
func TestSurgeSeenByEveryReplica(t *testing.T) {
	r := statetest.StartRedis(t)
	cfg := Config{ReactInterval: 20 * time.Millisecond, AdmitGap: -1, Evict: true, SurgeHorizon: 500 * time.Millisecond}
	a := newReplicaWith(t, r.URL, "a", 16, cfg)
	b := newReplicaWith(t, r.URL, "b", 16, cfg)
	waitFor(t, 5*time.Second, "b to know the backend", func() bool { _, ok := b.ctl.Target(backendURL); return ok })
	var slots []*Slot
	for range 14 {
		sl, ok := b.ctl.TryAcquireSlot(t.Context(), backendURL)
		if !ok {
			break
		}
		slots = append(slots, sl)
	}
	t.Cleanup(func() {
		for _, sl := range slots {
			sl.Release()
		}
	})
	if len(slots) != 14 {
		t.Fatalf("b got %d batch slots, want 14 (16 − reserve 2)", len(slots))
	}
	pick := func() {
		p, err := a.router.Pick(t.Context(), &routing.Request{Model: "m", Class: routing.ClassInteractive})
		if err != nil {
			t.Fatal(err)
		}
		a.ctl.InteractivePicked(backendURL)
		p.Done(routing.Outcome{Status: 200})
	}
	pick() // a learns the backend (its first tick may not have run)
	// The baseline: 20/s on a for longer than the horizon, paced by the clock.
	for until := time.Now().Add(700 * time.Millisecond); time.Now().Before(until); {
		pick()
		time.Sleep(50 * time.Millisecond)
	}
	if n := countEvicted(slots); n != 0 {
		t.Fatalf("%d batch slots evicted at a steady rate", n)
	}
	for range 12 { // 12 arrivals at once
		pick()
	}
	waitFor(t, 5*time.Second, "b to evict its batch beyond the floor", func() bool { return countEvicted(slots) == 13 })
	if n := testutil.ToFloat64(b.ctl.m.surges); n != 1 {
		t.Errorf("b counted %v surges, want 1", n)
	}
	if tg, _ := b.ctl.Target(backendURL); tg != 1 {
		t.Errorf("b's target %d during the surge, want the floor, 1", tg)
	}
}
