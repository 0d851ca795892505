package routing

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func fakePool(t *testing.T, n, capacity int) ([]*fakeVLLM, Config) {
	t.Helper()
	var fakes []*fakeVLLM
	var urls []string
	for range n {
		f := newFakeVLLM(t, "m")
		fakes, urls = append(fakes, f), append(urls, f.URL)
	}
	cfg := fastConfig(urls...)
	for i := range cfg.Backends {
		cfg.Backends[i].Capacity = capacity
	}
	return fakes, cfg
}

// TestCacheAwareUniformPromptsSpread: uniformly random prompts through the Router spread
// over four backends with max/mean requests per backend ≤ 1.25, both one at a time and
// with 16 in flight at once (placement counts, not timing).
func TestCacheAwareUniformPromptsSpread(t *testing.T) {
	_, cfg := fakePool(t, 4, 8)
	for _, inFlight := range []int{1, 16} {
		r, _ := newIdleRouter(t, cfg)
		rnd := rand.New(rand.NewPCG(5, uint64(inFlight)))
		count := map[string]int{}
		const requests = 2000
		var open []*Pick
		for range requests {
			prompt := words(rnd.Uint64(), 16+rnd.IntN(112))
			pk, err := r.Pick(t.Context(), &Request{Model: "m", Prompt: prompt})
			if err != nil {
				t.Fatal(err)
			}
			count[pk.Backend.ID()]++
			if open = append(open, pk); len(open) == inFlight {
				for _, p := range open {
					p.Done(Outcome{Status: http.StatusOK})
				}
				open = open[:0]
			}
		}
		for _, p := range open {
			p.Done(Outcome{Status: http.StatusOK})
		}
		mx := 0
		for _, c := range count {
			mx = max(mx, c)
		}
		if ratio := float64(mx) / (requests / 4.0); len(count) != 4 || ratio > 1.25 {
			t.Errorf("%d in flight: counts %v, max/mean %.3f, want ≤ 1.25 over 4 backends", inFlight, count, ratio)
		} else {
			t.Logf("%d in flight: max/mean %.3f", inFlight, ratio)
		}
		r.Stop()
	}
}

// TestCacheAwareSaturationReleaseThroughPick: requests sharing a prefix stay on its
// backend while their own in-flight load stays under capacity, then spill to another
// backend; once the first ones finish the prefix's backend takes requests again.
func TestCacheAwareSaturationReleaseThroughPick(t *testing.T) {
	_, cfg := fakePool(t, 3, 4)
	r, _ := newIdleRouter(t, cfg)
	ca := r.Policy().(*CacheAware)
	system := words(11, 200)
	var held []*Pick
	var home string
	for i := range 4 {
		pk, err := r.Pick(t.Context(), &Request{Model: "m", Prompt: chat(system, fmt.Sprint("question ", i))})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			home = pk.Backend.ID()
		} else if pk.Backend.ID() != home {
			t.Fatalf("request %d left %s at load %d/4", i, home, i)
		}
		held = append(held, pk)
	}
	pk, err := r.Pick(t.Context(), &Request{Model: "m", Prompt: chat(system, "question 4")})
	if err != nil {
		t.Fatal(err)
	}
	if pk.Backend.ID() == home {
		t.Fatalf("fifth request stayed on %s at 4/4", home)
	}
	pk.Done(Outcome{Status: http.StatusOK})
	for _, p := range held {
		p.Done(Outcome{Status: http.StatusOK})
	}
	// Both now hold the prefix; the idle home (or the spill target, equally idle) takes it by affinity.
	got, err := r.Pick(t.Context(), &Request{Model: "m", Prompt: chat(system, "question 5")})
	if err != nil {
		t.Fatal(err)
	}
	got.Done(Outcome{Status: http.StatusOK})
	if id := got.Backend.ID(); id != home && id != pk.Backend.ID() {
		t.Fatalf("after the release the prefix went to a third backend %s", id)
	}
	if a, s, c := testutil.ToFloat64(ca.pc.reasons[0]), testutil.ToFloat64(ca.pc.reasons[1]), testutil.ToFloat64(ca.pc.reasons[2]); a != 4 || s != 1 || c != 1 {
		t.Fatalf("decisions: affinity %v, saturation %v, cold %v; want 4, 1, 1", a, s, c)
	}
}

// TestCHWBLRoutersAgree: two routers running chwbl over the same backends, each with its
// own state, send every conversation to the same backend.
func TestCHWBLRoutersAgree(t *testing.T) {
	_, cfg := fakePool(t, 4, 8)
	cfg.Policy = PolicyCHWBL
	r1, _ := newIdleRouter(t, cfg)
	r2, _ := newIdleRouter(t, cfg)
	used := map[string]bool{}
	for conv := range uint64(50) {
		req := &Request{Model: "m", Prompt: chat("system", words(conv, 30))}
		p1, err := r1.Pick(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		p2, err := r2.Pick(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		if p1.Backend.ID() != p2.Backend.ID() {
			t.Fatalf("conversation %d: %s vs %s", conv, p1.Backend.ID(), p2.Backend.ID())
		}
		used[p1.Backend.ID()] = true
		p1.Done(Outcome{Status: http.StatusOK})
		p2.Done(Outcome{Status: http.StatusOK})
	}
	if len(used) != 4 {
		t.Fatalf("50 conversations used %d of 4 backends", len(used))
	}
}

// recordingPolicy remembers the requests it was asked about and chooses the first candidate.
type recordingPolicy struct {
	mu   sync.Mutex
	seen []Request
}

func (p *recordingPolicy) Name() string { return "recording" }
func (p *recordingPolicy) Choose(_ context.Context, req *Request, _ []Candidate) (Choice, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seen = append(p.seen, *req)
	return Choice{}, nil
}

// TestPickFillsModelAndLoRA: the policy sees the routed model when the request names none,
// and the adapter name when the model is a LoRA adapter, so prefix hashes are scoped the
// way vLLM scopes its cache; the caller's Request is left alone.
func TestPickFillsModelAndLoRA(t *testing.T) {
	f := newFakeVLLM(t, "llama", "sql@llama")
	rec := &recordingPolicy{}
	r, _ := newIdleRouter(t, fastConfig(f.URL), WithPolicy(rec))
	for _, req := range []*Request{{}, {Model: "sql"}, {Model: "sql", LoRA: "given"}, {Model: "llama"}} {
		orig := *req
		pk, err := r.Pick(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		pk.Done(Outcome{Status: http.StatusOK})
		if !reflect.DeepEqual(*req, orig) {
			t.Fatalf("Pick changed the request: %+v → %+v", orig, *req)
		}
	}
	want := []struct{ model, lora string }{{"llama", ""}, {"sql", "sql"}, {"sql", "given"}, {"llama", ""}}
	for i, w := range want {
		if got := rec.seen[i]; got.Model != w.model || got.LoRA != w.lora {
			t.Errorf("request %d: policy saw model %q lora %q, want %q %q", i, got.Model, got.LoRA, w.model, w.lora)
		}
	}
}

// TestBackendRemovedForgetsPrefixes: Update removing a backend calls the
// WithBackendRemoved hook and drops the backend's prefix ownership and predicted rate.
func TestBackendRemovedForgetsPrefixes(t *testing.T) {
	fakes, cfg := fakePool(t, 2, 8)
	var removed []string
	r, _ := newIdleRouter(t, cfg, WithBackendRemoved(func(id string) { removed = append(removed, id) }))
	ca := r.Policy().(*CacheAware)
	prompt := chat(words(21, 64), "q")
	pk, err := r.Pick(t.Context(), &Request{Model: "m", Prompt: prompt})
	if err != nil {
		t.Fatal(err)
	}
	pk.Done(Outcome{Status: http.StatusOK})
	gone := pk.Backend.ID()
	hashes := HashPrompt(nil, PrefixSeed("m", "", ""), prompt, DefaultBlockChars, DefaultMaxBlocks)
	if ca.Index().Lookup(t.Context(), hashes)[gone] != RecordDepth(0, len(hashes), DefaultRecordAhead, DefaultFirstRecordBlocks) {
		t.Fatal("the pick was not recorded")
	}
	var keep string
	for _, f := range fakes {
		if f.URL != gone {
			keep = f.URL
		}
	}
	if err := r.Update([]BackendConfig{{URL: keep}}); err != nil {
		t.Fatal(err)
	}
	if len(removed) != 1 || removed[0] != gone {
		t.Fatalf("hook saw %v, want [%s]", removed, gone)
	}
	if m := ca.Index().Lookup(t.Context(), hashes); len(m) != 0 {
		t.Fatalf("removed backend still owns the prefix: %v", m)
	}
	if _, ok := ca.PredictedHitRate(gone); ok {
		t.Fatal("removed backend still has a predicted hit rate")
	}
}

// TestPolicyMetricsExposition: the decision counters and the predicted-hit histogram as
// exposed, after a fallback, a cold placement and an affinity hit.
func TestPolicyMetricsExposition(t *testing.T) {
	_, cfg := fakePool(t, 2, 8)
	r, reg := newIdleRouter(t, cfg)
	prompt := chat(words(31, 60), "q") // 240+ characters: 4 blocks of a 4.1-block prompt
	for _, p := range []string{"", prompt, prompt} {
		pk, err := r.Pick(t.Context(), &Request{Model: "m", Prompt: p})
		if err != nil {
			t.Fatal(err)
		}
		pk.Done(Outcome{Status: http.StatusOK})
	}
	want := `
# HELP vllm_proxy_routing_decisions_total Routing decisions of the prefix-aware policies, by reason (affinity, saturation_release, cold_placement, fallback).
# TYPE vllm_proxy_routing_decisions_total counter
vllm_proxy_routing_decisions_total{policy="cache_aware",reason="affinity"} 1
vllm_proxy_routing_decisions_total{policy="cache_aware",reason="cold_placement"} 1
vllm_proxy_routing_decisions_total{policy="cache_aware",reason="fallback"} 1
vllm_proxy_routing_decisions_total{policy="cache_aware",reason="saturation_release"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "vllm_proxy_routing_decisions_total"); err != nil {
		t.Fatal(err)
	}
	// Two hashed picks observed: 0 (cold) and 1/5 blocks (affinity: a first sighting
	// records FirstRecordBlocks, one block).
	if n, err := testutil.GatherAndCount(reg, "vllm_proxy_routing_predicted_prefix_hit_ratio"); err != nil || n != 1 {
		t.Fatalf("histogram series %d, %v", n, err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "vllm_proxy_routing_predicted_prefix_hit_ratio" {
			continue
		}
		h := mf.GetMetric()[0].GetHistogram()
		if h.GetSampleCount() != 2 || h.GetSampleSum() < 0.15 || h.GetSampleSum() > 0.25 {
			t.Fatalf("histogram count %d sum %v, want 2 and 0.2", h.GetSampleCount(), h.GetSampleSum())
		}
	}
}
