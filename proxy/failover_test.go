package proxy

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vllm-proxy/vllm-proxy/routing"
	"github.com/vllm-proxy/vllm-proxy/sim"
)

// TestKillOneOfThreeUnderLoad: with non-streaming requests in flight, killing one of three
// simulators costs the clients nothing: every request is answered 200 with a complete body.
// The kill is a crash: the listener closes and every open connection is reset, requests
// in flight included.
func TestKillOneOfThreeUnderLoad(t *testing.T) {
	var taps []*tap
	var bcs []routing.BackendConfig
	for range 3 {
		tp := startTap(t, startSim(t, sim.Config{TimeScale: 20, OutputTokens: 8}).Handler())
		taps = append(taps, tp)
		bcs = append(bcs, backend(tp.URL, "m"))
	}
	e := newEnv(t, envOpts{}, bcs...)
	const workers, total, killAt = 12, 360, 120
	var done, bad atomic.Int64
	var firstBad atomic.Value
	var kill sync.Once
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for done.Load() < total {
				resp, body := e.post(t, "/v1/chat/completions", chatBody)
				var out struct {
					Choices []json.RawMessage `json:"choices"`
				}
				if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &out) != nil || len(out.Choices) != 1 {
					bad.Add(1)
					firstBad.CompareAndSwap(nil, fmt.Sprintf("%d %q", resp.StatusCode, body))
				}
				if done.Add(1) == killAt {
					kill.Do(taps[0].crash)
				}
			}
		})
	}
	wg.Wait()
	if n := bad.Load(); n != 0 {
		t.Fatalf("%d of %d requests failed; first: %v", n, done.Load(), firstBad.Load())
	}
	e.requireIdle(t)
	var retries float64
	for _, reason := range []string{"connect", "transport"} {
		retries += e.counter(t, e.h.metrics.retries, taps[0].URL, reason)
	}
	if retries == 0 {
		t.Errorf("no retries were counted off the killed backend")
	}
	t.Logf("%d requests, %v retried off the killed backend", done.Load(), retries)
}

// TestHangingBackendRequestTimeout: a backend that never answers costs the client no more
// than request_timeout, then a 504, and counts against the backend.
func TestHangingBackendRequestTimeout(t *testing.T) {
	s := startSim(t, sim.Config{Faults: sim.Faults{HangRate: 1}})
	const timeout = 300 * time.Millisecond
	e := newEnv(t, envOpts{cfg: Config{RequestTimeout: timeout}}, backend(s.URL(), "m"))
	start := time.Now()
	resp, body := e.post(t, "/v1/chat/completions", chatBody)
	took := time.Since(start)
	if resp.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("status %d %s, want 504", resp.StatusCode, body)
	}
	if _, typ, _ := apiErr(t, body); typ != "GatewayTimeoutError" {
		t.Fatalf("type %s", typ)
	}
	if took < timeout || took > timeout+2*time.Second {
		t.Fatalf("answered after %s, want about the request timeout %s", took, timeout)
	}
	if f := e.router.Health().Backends[0].ConsecutiveFailures; f != 1 {
		t.Fatalf("consecutive failures = %d, want 1 (a timeout counts against the backend)", f)
	}
	e.requireIdle(t)
}

// TestHangingBackendRetriedOnHeaderTimeout: with a per-attempt header timeout, requests
// that land on a hanging backend are retried on a healthy one.
func TestHangingBackendRetriedOnHeaderTimeout(t *testing.T) {
	hang := startSim(t, sim.Config{Faults: sim.Faults{HangRate: 1}})
	ok := startSim(t, sim.Config{Instant: true})
	th := startTap(t, hang.Handler())
	e := newEnv(t, envOpts{
		cfg:     Config{RequestTimeout: 5 * time.Second, ResponseHeaderTimeout: 100 * time.Millisecond},
		routing: routing.Config{Policy: routing.PolicyRoundRobin, MaxFails: 100},
	}, backend(th.URL, "m"), backend(ok.URL(), "m"))
	for range 4 {
		if resp, body := e.post(t, "/v1/chat/completions", chatBody); resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d %s", resp.StatusCode, body)
		}
	}
	if h := th.hits.Load(); h == 0 || float64(h) != e.counter(t, e.h.metrics.retries, th.URL, "header_timeout") {
		t.Fatalf("hanging backend hits %d, header_timeout retries %v: want equal and > 0", h,
			e.counter(t, e.h.metrics.retries, th.URL, "header_timeout"))
	}
}

// TestRetryOn503PicksAnotherBackend: a 503 is retried on a different backend, never the
// same one twice for one request.
func TestRetryOn503PicksAnotherBackend(t *testing.T) {
	busy := startTap(t, fixed(http.StatusServiceUnavailable, `{"error":{"message":"busy"}}`))
	ok := startSim(t, sim.Config{Instant: true})
	e := newEnv(t, envOpts{routing: routing.Config{Policy: routing.PolicyRoundRobin, MaxFails: 100}},
		backend(busy.URL, "m"), backend(ok.URL(), "m"))
	const n = 6
	for range n {
		if resp, body := e.post(t, "/v1/chat/completions", chatBody); resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d %s", resp.StatusCode, body)
		}
	}
	hits := busy.hits.Load()
	if hits == 0 || hits > n {
		t.Fatalf("503 backend saw %d requests, want 1..%d (each request tries it at most once)", hits, n)
	}
	if r := e.counter(t, e.h.metrics.retries, busy.URL, "status_503"); r != float64(hits) {
		t.Fatalf("retries_total{status_503} = %v, want %d", r, hits)
	}
	e.requireIdle(t)
}

// TestAll503ReturnsGeneric503: when every backend answers 503, the client gets the
// proxy's own 503 (no backend internals) after each backend was tried once.
func TestAll503ReturnsGeneric503(t *testing.T) {
	a := startTap(t, fixed(http.StatusServiceUnavailable, `{"error":{"message":"internal detail 10.0.0.1"}}`))
	b := startTap(t, fixed(http.StatusServiceUnavailable, `{"error":{"message":"internal detail 10.0.0.2"}}`))
	e := newEnv(t, envOpts{}, backend(a.URL, "m"), backend(b.URL, "m"))
	resp, body := e.post(t, "/v1/chat/completions", chatBody)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if msg, _, _ := apiErr(t, body); msg == "" || containsAny(body, "10.0.0", "internal detail") {
		t.Fatalf("body %s leaks backend text", body)
	}
	if a.hits.Load() != 1 || b.hits.Load() != 1 {
		t.Fatalf("hits %d/%d, want each backend tried once", a.hits.Load(), b.hits.Load())
	}
}

// TestRetryOn429WhenAnotherHasRoom: a 429 moves to a backend with room; with no other
// backend the client gets the 429 and the backend's Retry-After.
func TestRetryOn429WhenAnotherHasRoom(t *testing.T) {
	limited := startTap(t, fixedH(http.StatusTooManyRequests, `{}`, http.Header{"Retry-After": {"7"}}))
	ok := startSim(t, sim.Config{Instant: true})
	e := newEnv(t, envOpts{routing: routing.Config{Policy: routing.PolicyRoundRobin}},
		backend(limited.URL, "m"), backend(ok.URL(), "m"))
	for range 4 {
		if resp, body := e.post(t, "/v1/chat/completions", chatBody); resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d %s", resp.StatusCode, body)
		}
	}
	if limited.hits.Load() == 0 {
		t.Fatal("the 429 backend was never tried")
	}
	if h := e.router.Health().Backends[0]; !h.Healthy || h.ConsecutiveFailures != 0 {
		t.Fatalf("429 counted against the backend: %+v", h)
	}

	alone := newEnv(t, envOpts{}, backend(limited.URL, "m"))
	resp, body := alone.post(t, "/v1/chat/completions", chatBody)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "7" {
		t.Fatalf("status %d retry-after %q body %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if _, typ, _ := apiErr(t, body); typ != "RateLimitError" {
		t.Fatalf("type %s", typ)
	}
	e.requireIdle(t)
	alone.requireIdle(t)
}

// TestClient4xxNotRetriedNorCounted: a backend's 4xx goes to the client as is, once, and
// never counts against the backend.
func TestClient4xxNotRetriedNorCounted(t *testing.T) {
	const vllm400 = `{"error":{"message":"max_tokens must be at least 1","type":"BadRequestError","param":"max_tokens","code":400}}`
	a, b := startTap(t, fixed(http.StatusBadRequest, vllm400)), startTap(t, fixed(http.StatusBadRequest, vllm400))
	e := newEnv(t, envOpts{routing: routing.Config{MaxFails: 1}}, backend(a.URL, "m"), backend(b.URL, "m"))
	for range 5 {
		resp, body := e.post(t, "/v1/chat/completions", chatBody)
		if resp.StatusCode != http.StatusBadRequest || body != vllm400 {
			t.Fatalf("status %d body %q, want the backend's 400 untouched", resp.StatusCode, body)
		}
	}
	if n := a.hits.Load() + b.hits.Load(); n != 5 {
		t.Fatalf("backends saw %d requests, want 5 (no retries)", n)
	}
	for _, h := range e.router.Health().Backends {
		if !h.Healthy || h.ConsecutiveFailures != 0 {
			t.Fatalf("a 4xx counted against %s: %+v", h.URL, h)
		}
	}
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if len(sub) > 0 && len(s) >= len(sub) && indexOf(s, sub) >= 0 {
			return true
		}
	}
	return false
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}
