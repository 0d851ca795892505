package routing

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/vllm-proxy/vllm-proxy/sim"
)

// sendVia picks a backend for prompt through r and sends it there as a completion.
func sendVia(ctx context.Context, t *testing.T, r *Router, req *Request) string {
	t.Helper()
	pk, err := r.Pick(ctx, req)
	if err != nil {
		t.Fatalf("Pick: %v", err)
	}
	err = complete(ctx, pk.Backend.URL().String(), req.Model, req.Prompt, 1)
	pk.Done(Outcome{Status: http.StatusOK})
	if err != nil {
		t.Fatalf("completion on %s: %v", pk.Backend.ID(), err)
	}
	return pk.Backend.ID()
}

// engineHitRate is the pool's engine-reported prefix hit rate: hits over queries, in
// tokens, summed over the simulators.
func engineHitRate(sims []*sim.Server) float64 {
	var q, h int64
	for _, s := range sims {
		snap := s.Snapshot()
		q, h = q+snap.PrefixQueries, h+snap.PrefixHits
	}
	if q == 0 {
		return 0
	}
	return float64(h) / float64(q)
}

// TestCacheAwareRaisesEngineHitRate runs the same shared-prefix traffic (4 system prompts
// of 256 tokens, 5 questions each) through cache_aware and round_robin onto three
// simulators whose KV cache holds about three of the groups each: cache_aware keeps each
// group on one backend and the engines report a far higher hit rate.
func TestCacheAwareRaisesEngineHitRate(t *testing.T) {
	const groups, users, rounds = 4, 5, 3
	prompt := func(g, u int) string {
		return chat(words(uint64(1000+g), 256), words(uint64(2000+10*g+u), 32))
	}
	rates := map[string]float64{}
	for _, policy := range []string{PolicyCacheAware, PolicyRoundRobin} {
		var sims []*sim.Server
		var urls []string
		for range 3 {
			s := startSim(t, sim.Config{Model: "m", Instant: true, NumGPUBlocks: 64, MaxModelLen: 1024})
			sims, urls = append(sims, s), append(urls, s.URL())
		}
		cfg := fastConfig(urls...)
		cfg.Policy = policy
		r, _ := startRouter(t, cfg)
		home := map[int]map[string]bool{}
		for range rounds {
			for g := range groups {
				for u := range users {
					id := sendVia(t.Context(), t, r, &Request{Model: "m", Prompt: prompt(g, u)})
					if home[g] == nil {
						home[g] = map[string]bool{}
					}
					home[g][id] = true
				}
			}
		}
		rates[policy] = engineHitRate(sims)
		if policy != PolicyCacheAware {
			continue
		}
		for g, ids := range home {
			if len(ids) != 1 {
				t.Errorf("cache_aware sent group %d to %d backends: %v", g, len(ids), ids)
			}
		}
		predicted := 0
		for _, s := range r.LoadStats() {
			if s.PredictedPrefixCacheHitRate != nil {
				predicted++
				if *s.PredictedPrefixCacheHitRate < 0.5 {
					t.Errorf("%s: predicted hit rate %v, want most of the prompt", s.URL, *s.PredictedPrefixCacheHitRate)
				}
			}
		}
		if predicted == 0 {
			t.Error("load stats show no predicted hit rate")
		}
	}
	t.Logf("engine-reported hit rate: %v", rates)
	// 60 requests over 20 distinct prompts sharing 4 prefixes: every request after its
	// group's first hits at least the system prompt (256 of ~300 tokens).
	// Measured 0.70-0.75 (0.697 once on a loaded machine); the bound leaves room for that
	// noise, and the margin over round_robin below is the real check.
	if rates[PolicyCacheAware] < 0.65 {
		t.Errorf("cache_aware engine hit rate %.3f, want ≥ 0.65", rates[PolicyCacheAware])
	}
	if rates[PolicyCacheAware] < rates[PolicyRoundRobin]+0.2 {
		t.Errorf("cache_aware hit rate %.3f is not well above round_robin's %.3f", rates[PolicyCacheAware], rates[PolicyRoundRobin])
	}
}

// TestEveryPolicyByName: each name in PolicyNames builds a router that serves picks
// through real simulators.
func TestEveryPolicyByName(t *testing.T) {
	a := startSim(t, sim.Config{Model: "m", Instant: true})
	b := startSim(t, sim.Config{Model: "m", Instant: true})
	for _, name := range PolicyNames() {
		t.Run(name, func(t *testing.T) {
			cfg := fastConfig(a.URL(), b.URL())
			cfg.Policy = name
			r, _ := startRouter(t, cfg)
			if r.Policy().Name() != name {
				t.Fatalf("policy %s, want %s", r.Policy().Name(), name)
			}
			for i := range 4 {
				sendVia(t.Context(), t, r, &Request{Model: "m", Prompt: chat(words(uint64(i), 40), fmt.Sprint(i))})
			}
		})
	}
}
