package faults

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vllm-proxy/vllm-proxy/sim"
)

// garbageTap is a loopback backend that passes /health, /metrics and /v1/models through
// to a real simulator (so the proxy sees a healthy backend serving "m") and answers
// every inference request with one kind of broken HTTP, written on the raw connection.
type garbageTap struct {
	srv  *httptest.Server
	hits atomic.Int64
}

// The kinds of broken answer.
const (
	tapBadStatus = "bad status line"   // not HTTP at all
	tapClose     = "close at once"     // the connection closes before any byte
	tapTruncated = "truncated body"    // 200 with Content-Length 4096 and 40 bytes, then close
	tapBadChunk  = "bad chunked frame" // 200 chunked with a malformed chunk size
	// tapOverloaded answers every other inference request with an OpenAI-shaped 503 and
	// passes the rest to the simulator.
	tapOverloaded = "overloaded"
)

func startGarbageTap(t *testing.T, kind string, upstream *sim.Server) *garbageTap {
	t.Helper()
	u, err := url.Parse(upstream.URL())
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	g := &garbageTap{}
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			rp.ServeHTTP(w, r)
			return
		}
		if n := g.hits.Add(1); kind == tapOverloaded {
			if n%2 == 0 {
				rp.ServeHTTP(w, r)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error":{"message":"server overloaded","type":"ServiceUnavailableError","param":null,"code":503}}`))
			return
		}
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		defer conn.Close()
		switch kind {
		case tapBadStatus:
			_, _ = buf.WriteString("garbage \x00\xff not http\r\n\r\n")
		case tapClose:
		case tapTruncated:
			_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",")
		case tapBadChunk:
			_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n")
		}
		_ = buf.Flush()
	}))
	t.Cleanup(g.srv.Close)
	return g
}

// TestGarbageBackend: one of two backends answers every inference request with broken
// HTTP: a bad status line, a close at once, a truncated body, a bad chunked frame.
// Expected under closed-loop load: zero client errors. The first two break before any
// byte could reach the client; in the last two the backend's headers arrived and its
// body broke off, but the proxy reads a non-streaming body (up to 1 MiB) whole before
// it commits the response, so every kind is retried on the good backend.
//
// In every case the proxy keeps serving and the garbage backend was really hit.
func TestGarbageBackend(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{tapBadStatus, tapClose, tapTruncated, tapBadChunk} {
		t.Run(strings.ReplaceAll(kind, " ", "_"), func(t *testing.T) {
			t.Parallel()
			good := startSim(t, sim.Config{DecodeStepMs: 2})
			behind := startSim(t, sim.Config{Instant: true})
			tap := startGarbageTap(t, kind, behind)
			px, _ := startProxy(t, "proxy", proxyConfig{Backends: []string{good.URL(), tap.srv.URL},
				Routing: "  policy: round_robin\n  max_retries: 2\n  max_fails: 1000\n"}, "", nil, procOpts{})
			c := newClient(t)
			ctx, stop := context.WithTimeout(t.Context(), scale(time.Second, 5*time.Second))
			defer stop()
			var (
				mu       sync.Mutex
				results  []chatResult
				wg       sync.WaitGroup
				statuses = map[int]int{}
			)
			for w := range 4 {
				wg.Go(func() {
					for i := 0; ctx.Err() == nil; i++ {
						rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
						r := chat(rctx, c, px.URL, chatBody(w*1000+i, 4, false))
						cancel()
						mu.Lock()
						results = append(results, r)
						statuses[r.Status]++
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			if tap.hits.Load() == 0 {
				t.Fatalf("the garbage backend was never tried")
			}
			failed := 0
			for _, r := range results {
				if r.OK() {
					continue
				}
				failed++
				if failed <= 5 {
					t.Errorf("client error where a retry was possible: status %d err %v body %.200q", r.Status, r.Err, r.Body)
				}
			}
			result(t, "requests=%d garbage-backend hits=%d client failures=%d statuses=%v",
				len(results), tap.hits.Load(), failed, statuses)
		})
	}
}
