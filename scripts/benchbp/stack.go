package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/vllm-proxy/vllm-proxy/backpressure"
	"github.com/vllm-proxy/vllm-proxy/proxy"
	"github.com/vllm-proxy/vllm-proxy/routing"
	"github.com/vllm-proxy/vllm-proxy/sim"
	"github.com/vllm-proxy/vllm-proxy/state"
)

// stack is one proxy replica in process, as cmd builds it: memory state, the batch
// budget, a started router over the simulators, the backpressure controller in the given
// mode and the proxy handler behind a loopback HTTP server.
type stack struct {
	router *routing.Router
	store  *state.Store
	budget *state.BatchBudget
	ctl    *backpressure.Controller
	h      *proxy.Handler
	srv    *httptest.Server
}

func newStack(ctx context.Context, sims []*sim.Server, p plan, prio bool, mode string) (*stack, error) {
	log := slog.New(slog.DiscardHandler)
	s := &stack{}
	u, _ := state.ParseURL("memory")
	var err error
	if s.store, err = state.Open(ctx, u, state.Config{}, log, nil); err != nil {
		return nil, err
	}
	if s.budget, err = state.NewBatchBudget(s.store, state.BudgetConfig{}); err != nil {
		return nil, err
	}
	if err := s.budget.Start(ctx); err != nil {
		return nil, err
	}
	// Intervals follow the simulated clock, so that they relate to request durations as
	// they would in front of a real vLLM.
	scale := func(d time.Duration) time.Duration { return time.Duration(float64(d) / p.ts) }
	rc := routing.Config{ScrapeInterval: scale(500 * time.Millisecond)}
	for _, sm := range sims {
		rc.Backends = append(rc.Backends, routing.BackendConfig{URL: sm.URL(), Capacity: p.seqs, Models: []string{"m"}, PriorityScheduling: &prio})
	}
	if s.router, err = routing.New(rc, log, nil, routing.WithLoadShare(s.store.InFlight())); err != nil {
		return nil, err
	}
	if err := s.router.Start(ctx); err != nil {
		return nil, err
	}
	bc := backpressure.Config{Mode: mode, PollInterval: scale(2 * time.Second), ReactInterval: scale(100 * time.Millisecond)}
	if mode == "evict" { // ours, with eviction of running batch requests
		bc.Mode, bc.Evict = backpressure.ModeAdaptive, true
	}
	if s.ctl, err = backpressure.New(bc, s.router, s.budget, log, nil); err != nil {
		return nil, err
	}
	if err := s.ctl.Start(ctx); err != nil {
		return nil, err
	}
	if s.h, err = proxy.New(proxy.Config{MaxRetries: -1}, s.router, log, nil, proxy.WithBatchAdmission(s.ctl)); err != nil {
		return nil, err
	}
	s.srv = httptest.NewServer(s.h)
	return s, nil
}

func (s *stack) close() {
	s.srv.Close()
	s.h.CloseIdleConnections()
	s.ctl.Stop()
	s.budget.Stop()
	s.router.Stop()
	_ = s.store.Close()
}

// batchInFlight sums the batch and interactive requests routing counts in flight.
func (s *stack) inFlight() (batch, interactive int64) {
	for _, b := range s.router.LoadStats() {
		batch += b.InFlightByClass[routing.ClassBatch]
		interactive += b.InFlightByClass[routing.ClassInteractive]
	}
	return batch, interactive
}

// targets sums the controller's batch targets over the backends.
func (s *stack) targets() int {
	n := 0
	for _, b := range s.router.Backends() {
		t, _ := s.ctl.Target(b.ID())
		n += t
	}
	return n
}

// startSims starts n simulators with the default (realistic) time model and a per-step
// token budget of budget.
func startSims(ctx context.Context, n, seqs, budget int, policy string, ts float64) ([]*sim.Server, error) {
	var out []*sim.Server
	for range n {
		s, err := sim.Start(ctx, sim.Config{Model: "m", MaxNumSeqs: seqs, MaxNumBatchedTokens: budget, SchedulingPolicy: policy, TimeScale: ts}, slog.New(slog.DiscardHandler))
		if err != nil {
			return nil, fmt.Errorf("starting sim: %w", err)
		}
		out = append(out, s)
	}
	return out, nil
}

// waitIdle waits until no simulator runs or queues anything.
func waitIdle(ctx context.Context, sims []*sim.Server) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		busy := 0
		for _, s := range sims {
			snap := s.Snapshot()
			busy += snap.Running + snap.Waiting
		}
		if busy == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("simulators still busy (%d) after 60s", busy)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// count400 sums the 400 answers of the simulators.
func count400(sims []*sim.Server) int64 {
	var n int64
	for _, s := range sims {
		n += s.Snapshot().Statuses[http.StatusBadRequest]
	}
	return n
}
