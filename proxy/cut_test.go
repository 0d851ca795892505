package proxy

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vllm-proxy/vllm-proxy/routing"
	"github.com/vllm-proxy/vllm-proxy/sim"
)

// TestPlainBodyCutRetried: a non-streaming body that breaks off after the backend's
// headers, with or without a Content-Length, is read whole before anything goes to the
// client, so the request is retried on another backend and the client gets that
// backend's complete answer, never the partial one.
func TestPlainBodyCutRetried(t *testing.T) {
	for _, withLength := range []bool{true, false} {
		name := "chunked"
		if withLength {
			name = "content-length"
		}
		t.Run(name, func(t *testing.T) {
			tp := startTap(t, cutHandler(`{"id":"cmpl-1","choices":[`, withLength))
			other := startTap(t, fixed(200, `{}`))
			e := newEnv(t, envOpts{routing: routing.Config{Policy: routing.PolicyRoundRobin}}, backend(tp.URL, "m"), backend(other.URL, "m"))
			for i := 0; tp.hits.Load() < 2; i++ { // round robin: the cutting backend comes up every other request
				if i > 20 {
					t.Fatalf("the cutting backend got %d of 20 requests", tp.hits.Load())
				}
				resp, body := e.post(t, "/v1/chat/completions", chatBody)
				if resp.StatusCode != http.StatusOK || body != `{}` {
					t.Fatalf("status %d body %q, want the other backend's complete answer", resp.StatusCode, body)
				}
			}
			if n := testutil.ToFloat64(e.h.metrics.retries.WithLabelValues(tp.URL, "transport")); n < 2 {
				t.Errorf("%v retries after a cut body, want one per cut", n)
			}
			e.requireIdle(t)
		})
	}
}

// TestLargePlainBodyCutAbortsClient: a non-streaming body longer than maxBufferedBody
// passes through as it arrives, so when it breaks off the client's connection is
// aborted: the client never reads a cut body as complete.
func TestLargePlainBodyCutAbortsClient(t *testing.T) {
	tp := startTap(t, cutHandler(`{"data":"`+strings.Repeat("x", maxBufferedBody+100), false))
	e := newEnv(t, envOpts{}, backend(tp.URL, "m"))
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, e.srv.URL+"/v1/embeddings", strings.NewReader(`{"model":"m","input":"x"}`))
	resp, err := e.client.Do(req)
	if err == nil {
		var b []byte
		b, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil {
			t.Fatalf("the client read a cut body of %d bytes as complete", len(b))
		}
	}
	e.requireIdle(t)
}

// cutHandler answers 200 with the start of a JSON body (announcing a longer one when
// withLength), then breaks the connection.
func cutHandler(partial string, withLength bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		if withLength {
			w.Header().Set("Content-Length", strconv.Itoa(len(partial)+100))
		}
		_, _ = io.WriteString(w, partial)
		_ = http.NewResponseController(w).Flush()
		panic(http.ErrAbortHandler)
	})
}

// TestStreamPastRequestTimeout: a stream still running at request_timeout is ended with a
// 504 error event and [DONE].
func TestStreamPastRequestTimeout(t *testing.T) {
	s := startSim(t, sim.Config{TimeScale: 1, OutputTokens: 1000})
	e := newEnv(t, envOpts{cfg: Config{RequestTimeout: 300 * time.Millisecond}}, backend(s.URL(), "m"))
	resp, body := e.post(t, "/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":1000,"stream":true}`)
	if resp.StatusCode != 200 || !strings.Contains(body, `"code":504`) || !strings.HasSuffix(body, "data: [DONE]\n\n") {
		t.Fatalf("status %d body tail %q", resp.StatusCode, body[max(0, len(body)-300):])
	}
	if strings.Count(body, "data: ") < 3 {
		t.Fatalf("too few events before the timeout: %q", body)
	}
	e.requireIdle(t)
}

// deadAddr returns a loopback URL nothing listens on.
func deadAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return "http://" + addr
}

// TestConnectErrorRetried: a backend that refuses connections is skipped for another.
func TestConnectErrorRetried(t *testing.T) {
	dead := deadAddr(t)
	ok := startSim(t, sim.Config{Instant: true})
	e := newEnv(t, envOpts{routing: routing.Config{Policy: routing.PolicyRoundRobin, MaxFails: 100}},
		backend(dead, "m"), backend(ok.URL(), "m"))
	for range 4 {
		if resp, body := e.post(t, "/v1/chat/completions", chatBody); resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, body)
		}
	}
	if n := testCounter(e.h.metrics.retries, dead, "connect"); n < 1 {
		t.Fatalf("connect retries = %v, want ≥ 1", n)
	}
	only := newEnv(t, envOpts{}, backend(dead, "m"))
	resp, body := only.post(t, "/v1/chat/completions", chatBody)
	if _, typ, _ := apiErr(t, body); resp.StatusCode != http.StatusBadGateway || typ != "BadGatewayError" || strings.Contains(body, "127.0.0.1") {
		t.Fatalf("all dead: %d %s", resp.StatusCode, body)
	}
}

// TestHotReloadKeepsStreams: removing a backend from the pool while it streams does not
// disturb the stream; new requests go to the remaining backend.
func TestHotReloadKeepsStreams(t *testing.T) {
	slow := startSim(t, sim.Config{TimeScale: 10, OutputTokens: 40})
	tp := startTap(t, slow.Handler())
	other := startSim(t, sim.Config{Instant: true})
	e := newEnv(t, envOpts{}, backend(tp.URL, "m"))
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, e.srv.URL+"/v1/chat/completions",
		strings.NewReader(`{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":40,"stream":true}`))
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	first := make([]byte, 16)
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatal(err)
	}
	if err := e.router.Update([]routing.BackendConfig{backend(other.URL(), "m")}); err != nil {
		t.Fatal(err)
	}
	e.h.ForgetBackend(tp.URL)
	if r, body := e.post(t, "/v1/chat/completions", chatBody); r.StatusCode != 200 || tp.hits.Load() != 1 {
		t.Fatalf("after reload: %d %s, removed backend hits %d", r.StatusCode, body, tp.hits.Load())
	}
	rest, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	got := string(first) + string(rest)
	if got != tp.recorded() || !strings.HasSuffix(got, "data: [DONE]\n\n") {
		t.Fatalf("the in-flight stream changed across the reload: %q", got)
	}
}

// TestHandlerRejectsBadConfig: Validate reports every problem.
func TestHandlerRejectsBadConfig(t *testing.T) {
	err := Config{MaxBodyBytes: -1, RequestTimeout: -time.Second, RetryBackoff: time.Second, RetryBackoffMax: time.Millisecond}.Validate()
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{"max_body_bytes", "request_timeout", "retry_backoff_max"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	if _, err := New(Config{}, nil, nil, nil); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("nil router: err = %v", err)
	}
}
