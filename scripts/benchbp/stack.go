package main

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/vllm-proxy/vllm-proxy/backpressure"
	"github.com/vllm-proxy/vllm-proxy/batch"
	"github.com/vllm-proxy/vllm-proxy/proxy"
	"github.com/vllm-proxy/vllm-proxy/routing"
	"github.com/vllm-proxy/vllm-proxy/sim"
	"github.com/vllm-proxy/vllm-proxy/state"
)

// stack is the proxy tier: one replica, or several sharing one Redis, each built in
// process as cmd builds one: its state store, the batch budget, a started router over
// the simulators, the backpressure controller in the given mode and the proxy handler
// behind a loopback HTTP server.
type stack struct {
	replicas []*replica
}

// replica is one proxy replica of a stack.
type replica struct {
	router *routing.Router
	store  *state.Store
	budget *state.BatchBudget
	ctl    *backpressure.Controller
	h      *proxy.Handler
	batch  *batch.Batch // with plan.batchAPI
	srv    *httptest.Server
}

// newStack builds p.replicas replicas: with one, on memory state; with more, on the
// Redis at p.redisURL, so they share the in-flight counts and the batch budget.
func newStack(ctx context.Context, sims []*sim.Server, p plan, prio bool, mode string) (*stack, error) {
	s := &stack{}
	if p.redisURL != "" {
		if err := flushRedis(p.redisURL); err != nil { // the last run's leases and targets
			return nil, err
		}
	}
	for i := range max(p.replicas, 1) {
		r, err := newReplica(ctx, sims, p, prio, mode, fmt.Sprintf("bench-%d", i))
		if r != nil {
			s.replicas = append(s.replicas, r)
		}
		if err != nil {
			s.close()
			return nil, err
		}
	}
	return s, nil
}

func newReplica(ctx context.Context, sims []*sim.Server, p plan, prio bool, mode, id string) (*replica, error) {
	log := slog.New(slog.DiscardHandler)
	s := &replica{}
	u, err := state.ParseURL(cmp.Or(p.redisURL, "memory"))
	if err != nil {
		return nil, err
	}
	if s.store, err = state.Open(ctx, u, state.Config{ReplicaID: id}, log, nil); err != nil {
		return nil, err
	}
	if s.budget, err = state.NewBatchBudget(s.store, state.BudgetConfig{}); err != nil {
		return s, err
	}
	if err := s.budget.Start(ctx); err != nil {
		return s, err
	}
	// Intervals follow the simulated clock, so that they relate to request durations as
	// they would in front of a real vLLM.
	scale := func(d time.Duration) time.Duration { return time.Duration(float64(d) / p.ts) }
	// As cmd: evicted batch requests make room, so interactive picks need not count them.
	rc := routing.Config{ScrapeInterval: scale(500 * time.Millisecond), BatchYields: mode == "evict"}
	for _, sm := range sims {
		rc.Backends = append(rc.Backends, routing.BackendConfig{URL: sm.URL(), Capacity: p.seqs, Models: []string{"m"}, PriorityScheduling: &prio})
	}
	if s.router, err = routing.New(rc, log, nil, routing.WithLoadShare(s.store.InFlight())); err != nil {
		return s, err
	}
	if err := s.router.Start(ctx); err != nil {
		return s, err
	}
	bc := backpressure.Config{Mode: mode, PollInterval: scale(2 * time.Second), ReactInterval: scale(100 * time.Millisecond)}
	if mode == "evict" { // ours, with eviction of running batch requests
		bc.Mode, bc.Evict = backpressure.ModeAdaptive, true
	}
	if s.ctl, err = backpressure.New(bc, s.router, s.budget, log, nil, backpressure.WithPeers(s.store.Bus("backpressure"))); err != nil {
		return s, err
	}
	if err := s.ctl.Start(ctx); err != nil {
		return s, err
	}
	if s.h, err = proxy.New(proxy.Config{MaxRetries: -1}, s.router, log, nil, proxy.WithBatchAdmission(s.ctl)); err != nil {
		return s, err
	}
	var handler http.Handler = s.h
	if p.batchAPI { // the Files and Batches APIs and batch workers, as cmd mounts them
		bc := batch.Config{ReplicaID: id, MaxConcurrentRequests: max(p.workers/max(p.replicas, 1), 1), PollInterval: scale(500 * time.Millisecond)}
		if s.batch, err = batch.New(bc, state.NewJobStore(s.store), state.NewBlobStore(s.store), dispatcher{h: s.h}, log, nil); err != nil {
			return s, err
		}
		if err := s.batch.Workers.Start(ctx); err != nil {
			s.batch = nil
			return s, err
		}
		mux := http.NewServeMux()
		for _, path := range []string{"/v1/files", "/v1/files/", "/v1/batches", "/v1/batches/"} {
			mux.Handle(path, s.batch.API)
		}
		mux.Handle("/", s.h)
		handler = mux
	}
	s.srv = httptest.NewServer(handler)
	return s, nil
}

func (s *stack) close() {
	for _, r := range s.replicas {
		r.close()
	}
}

func (r *replica) close() {
	if r.srv != nil {
		r.srv.Close()
	}
	if r.batch != nil {
		r.batch.Workers.Stop()
	}
	if r.h != nil {
		r.h.CloseIdleConnections()
	}
	if r.ctl != nil {
		r.ctl.Stop()
	}
	if r.router != nil {
		r.router.Stop()
	}
	if r.budget != nil {
		r.budget.Stop()
	}
	_ = r.store.Close()
}

// urls are the replicas' base URLs, for the load generator to spread requests over.
func (s *stack) urls() []string {
	var out []string
	for _, r := range s.replicas {
		out = append(out, r.srv.URL)
	}
	return out
}

// handlers are the replicas' proxy handlers, for the batch workers.
func (s *stack) handlers() []*proxy.Handler {
	var out []*proxy.Handler
	for _, r := range s.replicas {
		out = append(out, r.h)
	}
	return out
}

// inFlight sums the batch and interactive requests in flight, as the replicas' routers
// count their own.
func (s *stack) inFlight() (batch, interactive int64) {
	for _, r := range s.replicas {
		for _, b := range r.router.Backends() {
			batch += b.OwnInFlight(routing.ClassBatch)
			interactive += b.OwnInFlight(routing.ClassInteractive)
		}
	}
	return batch, interactive
}

// targets sums the effective batch targets over the backends (the lowest any replica
// computed, which is what the shared budget enforces).
func (s *stack) targets() int {
	n := 0
	for _, b := range s.replicas[0].router.Backends() {
		low := -1
		for _, r := range s.replicas {
			if t, ok := r.ctl.Target(b.ID()); ok && (low < 0 || t < low) {
				low = t
			}
		}
		n += max(low, 0)
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

// startRedis starts a redis-server without persistence on a free loopback port, with its
// files under dir, and returns its URL and the function that stops it.
func startRedis(ctx context.Context, dir string) (url string, stop func(), err error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("finding a free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	cmd := exec.CommandContext(ctx, "redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir) // #nosec G204 -- fixed program, a port number
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("starting redis-server (apt-get install redis-server): %w", err)
	}
	stop = func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for deadline := time.Now().Add(10 * time.Second); ; {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			_ = c.Close()
			return "redis://" + addr + "/0", stop, nil
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, fmt.Errorf("redis-server on %s did not start", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// flushRedis empties the database at url (redis://host:port/0), in plain RESP: only
// package state may import go-redis (depguard), and state has no flush.
func flushRedis(url string) error {
	addr := strings.TrimSuffix(strings.TrimPrefix(url, "redis://"), "/0")
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return fmt.Errorf("flushing redis: %w", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("*1\r\n$7\r\nFLUSHDB\r\n")); err != nil {
		return fmt.Errorf("flushing redis: %w", err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("flushing redis: %w", err)
	}
	if !strings.HasPrefix(line, "+OK") {
		return fmt.Errorf("flushing redis: %q", line)
	}
	return nil
}
