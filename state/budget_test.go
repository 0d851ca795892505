package state_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/vllm-proxy/vllm-proxy/state"
	"github.com/vllm-proxy/vllm-proxy/state/statetest"
)

// budgetFor opens a Store on url for replica and a BatchBudget on it, started, stopped at
// the end of the test; it waits for Redis to be connected.
func budgetFor(t *testing.T, url, replica string, cfg state.BudgetConfig) (*state.Store, *state.BatchBudget) {
	t.Helper()
	s := open(t, url, fastConfig(replica), nil, nil)
	eventually(t, 5*time.Second, "redis connected", s.Connected)
	b, err := state.NewBatchBudget(s, cfg)
	if err != nil {
		t.Fatalf("NewBatchBudget: %v", err)
	}
	if err := b.Start(t.Context()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(b.Stop)
	return s, b
}

func mustAcquire(t *testing.T, b *state.BatchBudget, backend string, target int) (string, state.BudgetView) {
	t.Helper()
	id, v, err := b.Acquire(t.Context(), backend, target)
	if err != nil {
		t.Fatalf("Acquire(%s, %d): %v", backend, target, err)
	}
	return id, v
}

// TestBudgetConformance runs the single-replica rules against the in-memory twin and a
// real redis-server.
func TestBudgetConformance(t *testing.T) {
	for _, tc := range []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"Memory", func(*testing.T) string { return "memory" }},
		{"Redis", func(t *testing.T) string { return statetest.StartRedis(t).URL }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, b := budgetFor(t, tc.url(t), "r1", state.BudgetConfig{LeaseTTL: 2 * time.Second})
			const be = "http://b1"
			a1, v := mustAcquire(t, b, be, 2)
			if a1 == "" || v != (state.BudgetView{Target: 2, InFlight: 1}) {
				t.Fatalf("first Acquire = %q %+v, want a lease and {2 1}", a1, v)
			}
			a2, _ := mustAcquire(t, b, be, 2)
			a3, v := mustAcquire(t, b, be, 2)
			if a2 == "" || a3 != "" || v.InFlight != 2 {
				t.Fatalf("second and third Acquire = %q %q %+v, want a lease, none, 2 in flight", a2, a3, v)
			}
			if other, _ := mustAcquire(t, b, "http://b2", 1); other == "" {
				t.Fatal("another backend's budget is not independent")
			}
			if n := b.Held(be); n != 2 {
				t.Errorf("Held = %d, want 2", n)
			}
			// A lower target holds new slots back; the held ones stay.
			v, err := b.Publish(t.Context(), be, 1)
			if err != nil || v != (state.BudgetView{Target: 1, InFlight: 2}) {
				t.Fatalf("Publish(1) = %+v %v, want {1 2}", v, err)
			}
			for _, id := range []string{a1, a1, a2} { // twice: harmless
				if err := b.Release(t.Context(), be, id); err != nil {
					t.Fatalf("Release: %v", err)
				}
			}
			if v, _ := b.Publish(t.Context(), be, 0); v.InFlight != 0 {
				t.Fatalf("after releases InFlight = %d", v.InFlight)
			}
			if id, _ := mustAcquire(t, b, be, 0); id != "" {
				t.Fatal("target 0 granted a slot")
			}
			// Work conservation at the budget level: the target is the only limit.
			var ids []string
			for range 50 {
				id, _ := mustAcquire(t, b, be, 50)
				if id == "" {
					t.Fatalf("slot %d of 50 refused", len(ids)+1)
				}
				ids = append(ids, id)
			}
			b.Stop() // releases everything
			if v, _ := b.Publish(t.Context(), be, 50); v.InFlight != 0 {
				t.Errorf("after Stop InFlight = %d, want 0", v.InFlight)
			}
		})
	}
}

// TestBudgetSharedByReplicas: two replicas on one Redis obey one budget per backend, and
// the lowest live target is everyone's.
func TestBudgetSharedByReplicas(t *testing.T) {
	r := statetest.StartRedis(t)
	cfg := state.BudgetConfig{LeaseTTL: 2 * time.Second}
	_, a := budgetFor(t, r.URL, "a", cfg)
	_, b := budgetFor(t, r.URL, "b", cfg)
	const be = "http://b1"
	if id, _ := mustAcquire(t, a, be, 3); id == "" {
		t.Fatal("a refused")
	}
	if id, _ := mustAcquire(t, a, be, 3); id == "" {
		t.Fatal("a refused")
	}
	if id, _ := mustAcquire(t, b, be, 3); id == "" {
		t.Fatal("b refused the third slot")
	}
	if id, v := mustAcquire(t, b, be, 3); id != "" || v.InFlight != 3 {
		t.Fatalf("b got a fourth slot (%+v)", v)
	}
	// a sees interactive traffic and lowers its target: b is held back at once.
	if v, _ := a.Publish(t.Context(), be, 1); v.Target != 1 {
		t.Fatalf("effective target %d after a published 1", v.Target)
	}
	if id, v := mustAcquire(t, b, be, 10); id != "" || v.Target != 1 {
		t.Fatalf("b's Acquire with target 10 = %q %+v, want refused under a's target 1", id, v)
	}
}

// TestBudgetDeadReplicaLeasesLapse: replica a holds slots, renewed while it lives; when
// it dies without releasing them (its loop's ctx is cancelled, as in a crash), replica b
// gets them after the lease runs out, and a's low target stops counting too.
func TestBudgetDeadReplicaLeasesLapse(t *testing.T) {
	r := statetest.StartRedis(t)
	cfg := state.BudgetConfig{LeaseTTL: 400 * time.Millisecond, RenewInterval: 100 * time.Millisecond}
	sa := open(t, r.URL, fastConfig("a"), nil, nil)
	eventually(t, 5*time.Second, "redis connected", sa.Connected)
	a, err := state.NewBatchBudget(sa, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctxA, crash := context.WithCancel(t.Context())
	if err := a.Start(ctxA); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Stop)
	_, b := budgetFor(t, r.URL, "b", cfg)
	const be = "http://b1"
	for range 2 {
		if id, _ := mustAcquire(t, a, be, 2); id == "" {
			t.Fatal("a refused")
		}
	}
	// Renewal keeps a's slots past several lease lengths.
	for range 4 {
		time.Sleep(cfg.LeaseTTL / 2)
		if id, v := mustAcquire(t, b, be, 2); id != "" || v.InFlight != 2 {
			t.Fatalf("b got a slot while a lives (%+v)", v)
		}
	}
	if _, err := a.Publish(t.Context(), be, 0); err != nil { // a's last word: target 0
		t.Fatal(err)
	}
	crash()
	start := time.Now()
	var got []string
	eventually(t, 5*time.Second, "a's slots to come back", func() bool {
		id, _, err := b.Acquire(t.Context(), be, 2)
		if err != nil {
			t.Fatal(err)
		}
		if id != "" {
			got = append(got, id)
		}
		return len(got) == 2
	})
	if d := time.Since(start); d > 3*cfg.LeaseTTL {
		t.Errorf("slots came back after %s, lease is %s", d, cfg.LeaseTTL)
	}
	if v, _ := b.Publish(t.Context(), be, 2); v.Target != 2 || v.InFlight != 2 {
		t.Errorf("after a died the budget is %+v, want b's own target 2 and its 2 slots", v)
	}
}

// TestBudgetRedisDown: with Redis gone, Acquire answers from the local fallback and says
// so; its slots are released locally.
func TestBudgetRedisDown(t *testing.T) {
	r := statetest.StartRedis(t)
	s, b := budgetFor(t, r.URL, "a", state.BudgetConfig{LeaseTTL: time.Second})
	r.Kill()
	eventually(t, 5*time.Second, "redis disconnected", func() bool { return !s.Connected() })
	id, v, err := b.Acquire(t.Context(), "http://b1", 1)
	if !errors.Is(err, state.ErrUnavailable) || id == "" || v.InFlight != 1 {
		t.Fatalf("Acquire with Redis down = %q %+v %v, want a local slot and ErrUnavailable", id, v, err)
	}
	if id2, _, _ := b.Acquire(t.Context(), "http://b1", 1); id2 != "" {
		t.Fatal("the local fallback exceeded the target")
	}
	if err := b.Release(t.Context(), "http://b1", id); err != nil {
		t.Fatalf("Release of a local slot: %v", err)
	}
	if n := b.Held("http://b1"); n != 0 {
		t.Errorf("Held = %d after release", n)
	}
}

func TestBudgetConfigValidate(t *testing.T) {
	err := state.BudgetConfig{LeaseTTL: time.Second, RenewInterval: 600 * time.Millisecond}.Validate()
	if err == nil {
		t.Error("renew interval above half the lease accepted")
	}
	if err := (state.BudgetConfig{LeaseTTL: -1}).Validate(); err == nil {
		t.Error("negative lease accepted")
	}
	if err := (state.BudgetConfig{}).Validate(); err != nil {
		t.Errorf("zero config rejected: %v", err)
	}
}
