package faults

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/vllm-proxy/vllm-proxy/sim"
)

// TestBackendErrors: one of three backends fails half of its inference requests, under
// closed-loop load with max_retries 2. Expected, per kind of failure:
//   - 503 (overloaded, with Retry-After): the proxy retries on another backend before any
//     byte reached the client: zero client errors, and vllm_proxy_retries_total counts
//     the retries;
//   - 500 (the request failed on the backend): by design not retried (the failure may be
//     the request's own, and a retry doubles the GPU work): the client gets exactly the
//     backend's 500s, each an OpenAI-shaped error, and no other failure.
func TestBackendErrors(t *testing.T) {
	t.Parallel()
	for _, kind := range []int{503, 500} {
		t.Run(strconv.Itoa(kind), func(t *testing.T) {
			t.Parallel()
			good1 := startSim(t, sim.Config{DecodeStepMs: 2})
			good2 := startSim(t, sim.Config{DecodeStepMs: 2})
			var badURL string
			var badFailures func() int64
			if kind == 500 {
				bad := startSim(t, sim.Config{DecodeStepMs: 2, Faults: sim.Faults{FailRate: 0.5}})
				badURL, badFailures = bad.URL(), func() int64 { return bad.Snapshot().Statuses[500] }
			} else {
				tap := startGarbageTap(t, tapOverloaded, startSim(t, sim.Config{DecodeStepMs: 2}))
				badURL, badFailures = tap.srv.URL, func() int64 { return (tap.hits.Load() + 1) / 2 }
			}
			px, _ := startProxy(t, "proxy", proxyConfig{Backends: []string{good1.URL(), good2.URL(), badURL},
				Routing: "  policy: round_robin\n  max_retries: 2\n  max_fails: 1000\n"}, "", nil, procOpts{})
			c := newClient(t)

			ctx, stop := context.WithTimeout(t.Context(), scale(2*time.Second, 10*time.Second))
			defer stop()
			var st loadStats
			runLoad(ctx, c, px.URL, 6, 4, 30*time.Second, &st)()
			failed := badFailures()
			retries, _ := metric(c, px.URL, "vllm_proxy_retries_total")
			if failed == 0 {
				t.Fatalf("the failing backend never failed")
			}
			switch kind {
			case 503:
				if st.Failed() != 0 {
					t.Errorf("client errors: %s", st.Summary())
				}
				if retries == 0 {
					t.Errorf("vllm_proxy_retries_total is 0 after %d backend 503s", failed)
				}
			case 500:
				st.mu.Lock()
				got, other := int64(st.statuses[500]), st.n-st.ok-st.statuses[500]
				st.mu.Unlock()
				if got != failed || other != 0 {
					t.Errorf("clients got %d 500s and %d other failures; the backend sent %d 500s", got, other, failed)
				}
			}
			result(t, "backend %ds=%d, proxy retries=%v; clients %s", kind, failed, retries, st.Summary())
		})
	}
}

// TestHealthFlapping: one of two backends flips its /health between 200 and 503 every
// 200 ms while load runs (inference keeps working on it). Expected: zero client errors,
// whatever the router's view of that backend at each moment.
func TestHealthFlapping(t *testing.T) {
	t.Parallel()
	steady := startSim(t, sim.Config{DecodeStepMs: 2})
	flappy := startSim(t, sim.Config{DecodeStepMs: 2})
	px, _ := startProxy(t, "proxy", proxyConfig{Backends: []string{steady.URL(), flappy.URL()}}, "", nil, procOpts{})
	c := newClient(t)

	ctx, stop := context.WithTimeout(t.Context(), scale(3*time.Second, 15*time.Second))
	defer stop()
	var st loadStats
	wait := runLoad(ctx, c, px.URL, 4, 4, 30*time.Second, &st)
	flips := 0
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for up := false; ctx.Err() == nil; up = !up {
		select {
		case <-ctx.Done():
		case <-tick.C:
			flappy.SetHealthy(up)
			flips++
		}
	}
	wait()
	flappy.SetHealthy(true)
	if st.Failed() != 0 {
		t.Errorf("client errors: %s", st.Summary())
	}
	result(t, "%d health flips; requests served by the flapping backend=%d; clients %s", flips, served(flappy), st.Summary())
}
