package proxy

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vllm-proxy/vllm-proxy/routing"
	"github.com/vllm-proxy/vllm-proxy/sim"
)

// cancelObserver is a backend that reports when a request arrives and when the proxy
// cancels it. With stream set it sends one SSE event first.
func cancelObserver(t *testing.T, stream bool) (*tap, chan struct{}, chan time.Time) {
	arrived, cancelled := make(chan struct{}, 1), make(chan time.Time, 1)
	tp := startTap(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if stream {
			w.Header().Set("Content-Type", "text/event-stream")
			_, _ = io.WriteString(w, "data: 1\n\n")
			_ = http.NewResponseController(w).Flush()
		}
		arrived <- struct{}{}
		<-r.Context().Done()
		cancelled <- time.Now()
	}))
	return tp, arrived, cancelled
}

// TestClientDisconnectCancelsBackend: a client that goes away cancels the backend request
// within 100 ms, before or after the response started; that is a 499 and no backend
// failure.
func TestClientDisconnectCancelsBackend(t *testing.T) {
	for _, stream := range []bool{false, true} {
		t.Run(fmt.Sprintf("stream=%v", stream), func(t *testing.T) {
			tp, arrived, cancelled := cancelObserver(t, stream)
			e := newEnv(t, envOpts{routing: routing.Config{MaxFails: 1}}, backend(tp.URL, "m"))
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			errc := make(chan error, 1)
			go func() {
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.srv.URL+"/v1/chat/completions", strings.NewReader(streamBody))
				resp, err := e.client.Do(req)
				if err == nil {
					_, err = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
				errc <- err
			}()
			select {
			case <-arrived:
			case <-time.After(5 * time.Second):
				t.Fatal("the request never reached the backend")
			}
			start := time.Now()
			cancel()
			select {
			case at := <-cancelled:
				if d := at.Sub(start); d > 100*time.Millisecond {
					t.Fatalf("backend saw the cancellation after %s, want within 100ms", d)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the backend request was never cancelled")
			}
			if err := <-errc; err == nil {
				t.Fatal("the cancelled client request succeeded")
			}
			eventually(t, 5*time.Second, "a 499 in requests_total", func() bool {
				return testCounter(e.h.metrics.requests, "m", tp.URL, "499", "interactive") == 1
			})
			if h := e.router.Health().Backends[0]; !h.Healthy || h.ConsecutiveFailures != 0 {
				t.Fatalf("a client disconnect counted against the backend: %+v", h)
			}
			if n := testCounter(e.h.metrics.streamCuts, tp.URL); n != 0 {
				t.Fatalf("a client disconnect counted as a stream cut")
			}
			e.requireIdle(t)
		})
	}
}

func TestBodyTooLarge(t *testing.T) {
	tp := startTap(t, fixed(http.StatusOK, `{}`))
	e := newEnv(t, envOpts{cfg: Config{MaxBodyBytes: 1024}}, backend(tp.URL, "m"))
	big := `{"model":"m","prompt":"` + strings.Repeat("x", 2000) + `"}`
	resp, body := e.post(t, "/v1/completions", big)
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d, want 413", resp.StatusCode)
	}
	if _, typ, code := apiErr(t, body); typ != "RequestEntityTooLargeError" || code != 413 {
		t.Fatalf("type %s code %d", typ, code)
	}
	// Without a Content-Length the limit holds while reading.
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, e.srv.URL+"/v1/completions", io.MultiReader(strings.NewReader(big)))
	req.ContentLength = -1
	resp2, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked: status %d, want 413", resp2.StatusCode)
	}
	if tp.hits.Load() != 0 {
		t.Fatalf("an oversized body reached the backend")
	}
	if resp, _ := e.post(t, "/v1/completions", `{"model":"m","prompt":"ok"}`); resp.StatusCode != http.StatusOK {
		t.Fatalf("a small body: status %d", resp.StatusCode)
	}
}

func TestModelRouting(t *testing.T) {
	s1 := startSim(t, sim.Config{Model: "m1", Instant: true})
	s2 := startSim(t, sim.Config{Model: "m2", Instant: true})
	e := newEnv(t, envOpts{}, backend(s1.URL(), "m1"), backend(s2.URL(), "m2"))

	resp, body := e.post(t, "/v1/chat/completions", `{"model":"nope","messages":[]}`)
	msg, typ, code := apiErr(t, body)
	if resp.StatusCode != 404 || typ != "NotFoundError" || code != 404 ||
		!strings.Contains(msg, "The model `nope` does not exist.") || !strings.Contains(msg, "m1, m2") {
		t.Fatalf("unknown model: %d %s", resp.StatusCode, body)
	}
	resp, body = e.post(t, "/v1/chat/completions", `{"messages":[{"role":"user","content":"x"}]}`)
	if _, typ, _ := apiErr(t, body); resp.StatusCode != 400 || typ != "BadRequestError" || !strings.Contains(body, `"param":"model"`) {
		t.Fatalf("no model with two served: %d %s", resp.StatusCode, body)
	}
	resp, body = e.post(t, "/v1/chat/completions", `{"model":"m2","messages":[{"role":"user","content":"x"}]}`)
	if resp.StatusCode != 200 || !strings.Contains(body, `"model":"m2"`) {
		t.Fatalf("model m2: %d %s", resp.StatusCode, body)
	}

	single := newEnv(t, envOpts{}, backend(s1.URL(), "m1"))
	resp, body = single.post(t, "/v1/chat/completions", `{"messages":[{"role":"user","content":"x"}]}`)
	if resp.StatusCode != 200 || !strings.Contains(body, `"model":"m1"`) {
		t.Fatalf("no model with one served: %d %s", resp.StatusCode, body)
	}
	if n := testCounter(single.h.metrics.requests, "m1", s1.URL(), "200", "interactive"); n != 1 {
		t.Fatalf("the defaulted request is not counted under model m1: %v", n)
	}
}

func TestBadRequests(t *testing.T) {
	tp := startTap(t, fixed(http.StatusOK, `{}`))
	e := newEnv(t, envOpts{}, backend(tp.URL, "m"))
	for _, tc := range []struct {
		method, path, body string
		status             int
	}{
		{"POST", "/v1/chat/completions", `{"model":`, 400},
		{"POST", "/v1/chat/completions", `{"model":3}`, 400},
		{"POST", "/v1/nope", `{}`, 404},
		{"GET", "/v1/chat/completions", ``, 405},
		{"POST", "/v1/models", ``, 405},
		{"DELETE", "/", ``, 404},
	} {
		req, _ := http.NewRequestWithContext(t.Context(), tc.method, e.srv.URL+tc.path, strings.NewReader(tc.body))
		resp, err := e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if _, _, code := apiErr(t, string(b)); resp.StatusCode != tc.status || code != tc.status {
			t.Errorf("%s %s: status %d body %s, want %d", tc.method, tc.path, resp.StatusCode, b, tc.status)
		}
		if resp.Header.Get(headerRequestID) == "" {
			t.Errorf("%s %s: no X-Request-Id on an error", tc.method, tc.path)
		}
	}
	if tp.hits.Load() != 0 {
		t.Fatal("a rejected request reached the backend")
	}
}

// TestAudioMultipartRouting: the audio endpoints route by the form's model field and the
// form reaches the backend byte for byte.
func TestAudioMultipartRouting(t *testing.T) {
	var got []byte
	tp := startTap(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = io.ReadAll(r.Body)
		_, _ = io.WriteString(w, `{"text":"hi"}`)
	}))
	other := startTap(t, fixed(http.StatusOK, `{}`))
	e := newEnv(t, envOpts{}, backend(tp.URL, "whisper"), backend(other.URL, "m"))
	ct, body := multipartBody(t, map[string]string{"model": "whisper"})
	resp, out := e.post(t, "/v1/audio/transcriptions", string(body), "Content-Type", ct)
	if resp.StatusCode != 200 || out != `{"text":"hi"}` || string(got) != string(body) {
		t.Fatalf("status %d out %q; form forwarded intact: %v", resp.StatusCode, out, string(got) == string(body))
	}
}

// echoHeaders is a backend that answers with the request headers it received.
func echoHeaders(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set(headerRequestID, "backend-own-id")
	_ = json.NewEncoder(w).Encode(r.Header)
}

func TestRequestIDRoundTrip(t *testing.T) {
	tp := startTap(t, http.HandlerFunc(echoHeaders))
	e := newEnv(t, envOpts{}, backend(tp.URL, "m"))
	for _, sent := range []string{"client-id-123", ""} {
		resp, body := e.post(t, "/v1/chat/completions", chatBody, headerRequestID, sent)
		var seen http.Header
		if err := json.Unmarshal([]byte(body), &seen); err != nil {
			t.Fatal(err)
		}
		got := resp.Header.Values(headerRequestID)
		if len(got) != 1 || got[0] == "" || seen.Get(headerRequestID) != got[0] || (sent != "" && got[0] != sent) {
			t.Fatalf("sent %q: client got %q, backend saw %q", sent, got, seen.Get(headerRequestID))
		}
	}
}

// TestHeadersHopByHopAndForwarded: client headers (Authorization included) reach the
// backend untouched, hop-by-hop headers do not, and X-Forwarded-For extends the chain.
func TestHeadersHopByHopAndForwarded(t *testing.T) {
	tp := startTap(t, http.HandlerFunc(echoHeaders))
	e := newEnv(t, envOpts{}, backend(tp.URL, "m"))
	conn, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	raw := "POST /v1/chat/completions HTTP/1.1\r\nHost: proxy\r\n" +
		"Authorization: Bearer sk-secret\r\nX-Custom: kept\r\n" +
		"Connection: keep-alive, X-Hop\r\nX-Hop: dropped\r\nKeep-Alive: timeout=5\r\n" +
		"Proxy-Authorization: Basic eA==\r\nX-Forwarded-For: 203.0.113.9\r\n" +
		"Content-Type: application/json\r\nContent-Length: " + fmt.Sprint(len(chatBody)) + "\r\n\r\n" + chatBody
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var seen http.Header
	if err := json.NewDecoder(resp.Body).Decode(&seen); err != nil {
		t.Fatal(err)
	}
	if seen.Get("Authorization") != "Bearer sk-secret" || seen.Get("X-Custom") != "kept" {
		t.Errorf("end-to-end headers changed: %v", seen)
	}
	for _, hop := range []string{"X-Hop", "Keep-Alive", "Proxy-Authorization"} {
		if v := seen.Values(hop); len(v) > 0 {
			t.Errorf("hop-by-hop header %s reached the backend: %q", hop, v)
		}
	}
	if xff := seen.Get("X-Forwarded-For"); xff != "203.0.113.9, 127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q, want the client chain plus 127.0.0.1", xff)
	}
}
