package proxy

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vllm-proxy/vllm-proxy/sim"
)

// TestSSEByteForByteSim: the bytes a client receives through the proxy are exactly the
// bytes the simulator wrote.
func TestSSEByteForByteSim(t *testing.T) {
	s := startSim(t, sim.Config{TimeScale: 50, OutputTokens: 12})
	tp := startTap(t, s.Handler())
	e := newEnv(t, envOpts{}, backend(tp.URL, "m"))
	body := `{"model":"m","messages":[{"role":"user","content":"hello"}],"max_tokens":12,"stream":true,"stream_options":{"include_usage":true}}`
	resp, got := e.post(t, "/v1/chat/completions", body)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("status %d content-type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if want := tp.recorded(); got != want {
		t.Fatalf("client got %d bytes that differ from the %d the sim wrote:\n%q\n%q", len(got), len(want), got, want)
	}
	if n := strings.Count(got, "data: "); n < 13 || !strings.HasSuffix(got, "data: [DONE]\n\n") {
		t.Fatalf("stream has %d events / no [DONE]: %q", n, got)
	}
}

// sseScript is a backend that writes a fixed stream in odd pieces (events split across
// writes, CRLF and CR framing, "data:" without a space, comments), flushing each piece.
var sseScript = []string{
	": hello\n\n",
	"data: {\"a\":",
	"1}\n\ndata:{\"b\":2}\r\n\r\n",
	"data: {\"c\":3}\r\rdata: multi\ndata: line\n",
	"\n",
	"data: [DONE]\n\n",
}

func scriptedSSE(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	for _, piece := range sseScript {
		_, _ = io.WriteString(w, piece)
		_ = http.NewResponseController(w).Flush()
	}
}

// TestSSEByteForByteDirect: a stream with unusual framing reads the same direct and
// through the proxy.
func TestSSEByteForByteDirect(t *testing.T) {
	tp := startTap(t, http.HandlerFunc(scriptedSSE))
	e := newEnv(t, envOpts{}, backend(tp.URL, "m"))
	_, direct := doPost(t, e.client, tp.URL+"/v1/chat/completions", streamBody)
	_, proxied := e.post(t, "/v1/chat/completions", streamBody)
	if direct != strings.Join(sseScript, "") {
		t.Fatalf("direct read %q", direct)
	}
	if proxied != direct {
		t.Fatalf("proxied %q\ndirect  %q", proxied, direct)
	}
}

// TestSSEFlushedPerEvent: the backend sends its second event only after the client has
// received the first, which works only if the proxy flushes each event at once.
func TestSSEFlushedPerEvent(t *testing.T) {
	got1 := make(chan struct{})
	tp := startTap(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: 1\n\n")
		_ = http.NewResponseController(w).Flush()
		select {
		case <-got1:
		case <-r.Context().Done():
			return
		}
		_, _ = io.WriteString(w, "data: [DONE]\n\n")
	}))
	e := newEnv(t, envOpts{}, backend(tp.URL, "m"))
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.srv.URL+"/v1/chat/completions", strings.NewReader(streamBody))
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	if err != nil || line != "data: 1\n" {
		t.Fatalf("first line %q, %v (the first event was not flushed)", line, err)
	}
	close(got1)
	rest, err := io.ReadAll(br)
	if err != nil || string(rest) != "\ndata: [DONE]\n\n" {
		t.Fatalf("rest %q, %v", rest, err)
	}
}

// TestStreamCutNotRetried: a backend that cuts the stream after three events is not
// retried (bytes already reached the client); the client's stream ends cleanly with an
// error event and [DONE], and the cut is counted.
func TestStreamCutNotRetried(t *testing.T) {
	faults := sim.Faults{DropStreamAfter: 3}
	s1 := startSim(t, sim.Config{TimeScale: 50, OutputTokens: 10, Faults: faults})
	s2 := startSim(t, sim.Config{TimeScale: 50, OutputTokens: 10, Faults: faults})
	t1, t2 := startTap(t, s1.Handler()), startTap(t, s2.Handler())
	e := newEnv(t, envOpts{}, backend(t1.URL, "m"), backend(t2.URL, "m"))
	resp, got := e.post(t, "/v1/chat/completions", streamBody)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if n := t1.hits.Load() + t2.hits.Load(); n != 1 {
		t.Fatalf("backends saw %d requests, want 1 (no retry after the first byte)", n)
	}
	events := strings.Split(strings.TrimSuffix(got, "\n\n"), "\n\n")
	if len(events) != 5 || !strings.Contains(events[3], `"code":502`) || events[4] != "data: [DONE]" {
		t.Fatalf("want 3 events, an error event and [DONE]; got %q", got)
	}
	cutOn := t1.URL
	if t2.hits.Load() == 1 {
		cutOn = t2.URL
	}
	if n := e.counter(t, e.h.metrics.streamCuts, cutOn); n != 1 {
		t.Fatalf("stream_cuts_total{backend=%s} = %v, want 1", cutOn, n)
	}
	if n := e.counter(t, e.h.metrics.requests, "m", cutOn, "200", "interactive"); n != 1 {
		t.Fatalf("requests_total for the cut stream = %v, want 1", n)
	}
	e.requireIdle(t)
}
