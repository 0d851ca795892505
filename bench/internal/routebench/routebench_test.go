package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vllm-proxy/vllm-proxy/sim"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestSplitRoundRobin sends 30 requests through the splitter to three upstreams: each
// gets exactly 10, in turn.
func TestSplitRoundRobin(t *testing.T) {
	var counts [3]atomic.Int64
	var ups []string
	for i := range counts {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			counts[i].Add(1)
			_, _ = io.Copy(io.Discard, r.Body)
			fmt.Fprintf(w, "%d", i)
		}))
		t.Cleanup(srv.Close)
		ups = append(ups, srv.URL)
	}
	s, err := newSplitter(ups, discard())
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(s)
	t.Cleanup(front.Close)
	var order strings.Builder
	for range 30 {
		resp, err := http.Post(front.URL+"/v1/chat/completions", "application/json", strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		order.Write(b)
	}
	for i := range counts {
		if n := counts[i].Load(); n != 10 {
			t.Errorf("upstream %d got %d requests, want 10", i, n)
		}
	}
	if got := order.String(); got[:6] != "012012" {
		t.Errorf("order %q is not round-robin", got)
	}
}

// TestSplitStreams checks that an SSE event reaches the client while the upstream is
// still holding the stream open.
func TestSplitStreams(t *testing.T) {
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprint(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
		fmt.Fprint(w, "data: [DONE]\n\n")
	}))
	t.Cleanup(up.Close)
	s, err := newSplitter([]string{up.URL}, discard())
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(s)
	t.Cleanup(front.Close)
	resp, err := http.Post(front.URL+"/v1/chat/completions", "application/json", strings.NewReader(`{"stream":true}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	close(release)
	if err != nil || line != "data: first\n" {
		t.Fatalf("first line %q, %v; want the first event before the stream ends", line, err)
	}
}

func TestNewSplitterRejectsBadUpstreams(t *testing.T) {
	for _, ups := range [][]string{nil, {""}, {"not a url"}} {
		if _, err := newSplitter(ups, discard()); err == nil {
			t.Errorf("newSplitter(%q) succeeded", ups)
		}
	}
}

// TestRunSplitStops serves through runSplit and checks it returns nil when its context ends.
func TestRunSplitStops(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- runSplit(ctx, []string{"-listen", addr, "-upstreams", "http://127.0.0.1:1"}, discard())
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadGateway {
				t.Errorf("status %d with a dead upstream, want 502", resp.StatusCode)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("splitter never listened: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("runSplit: %v", err)
	}
}

// TestScrapeSim reads a real simulator's /metrics after two identical requests: two
// finished requests, and prefix hits on the second.
func TestScrapeSim(t *testing.T) {
	s, err := sim.Start(t.Context(), sim.Config{Model: "m1", Instant: true}, discard())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	body := `{"model":"m1","max_tokens":4,"messages":[{"role":"user","content":"` + strings.Repeat("abc ", 64) + `"}]}`
	for range 2 {
		resp, err := http.Post(s.URL()+"/v1/chat/completions", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	ticks := scrapeAll(t.Context(), http.DefaultClient, []group{{name: "g", urls: []string{s.URL() + "/metrics", "http://127.0.0.1:1/metrics"}}}, 1, 2)
	if len(ticks) != 2 {
		t.Fatalf("%d ticks, want 2", len(ticks))
	}
	got := ticks[0]
	if !got.OK || got.Requests != 2 || got.Queries == 0 || got.Hits == 0 || got.Hits >= got.Queries {
		t.Errorf("tick %+v: want ok, 2 requests, 0 < hits < queries", got)
	}
	if ticks[1].OK {
		t.Errorf("scrape of a closed port reported ok")
	}
}
