package faults

import (
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/vllm-proxy/vllm-proxy/sim"
)

// TestStalledReaders: clients start long streams and then never read (their sockets'
// buffers fill up), while a fast backend keeps generating. Expected: routing.request_timeout
// (3 s here) still ends each request: within a few seconds after it the backend has
// nothing running, the proxy's in-flight gauges are 0, and the proxy's RSS has not grown
// by the streams' size (it does not buffer what the client does not read); a normal
// request is then served.
//
// The proxy sets each inference request's write deadline to its request_timeout (+1 s), so the
// handler blocked writing to a stalled client is released then (this test found that
// gap).
func TestStalledReaders(t *testing.T) {
	t.Parallel()
	be := startSim(t, sim.Config{DecodeStepMs: -1, DecodePerSeqMs: -1, MaxModelLen: 32768, NumGPUBlocks: 65536})
	px, _ := startProxy(t, "proxy", proxyConfig{Backends: []string{be.URL()}, Routing: "  request_timeout: 3s\n"}, "", nil, procOpts{})
	c := newClient(t)

	before, err := readSample(c, px.Pid(), px.URL)
	if err != nil {
		t.Fatal(err)
	}
	n := scale(10, 40)
	for i := range n {
		conn, err := net.Dial("tcp", px.Addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		body := chatBody(i, 30000, true)
		req := fmt.Sprintf("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		if _, err := conn.Write([]byte(req)); err != nil {
			t.Fatal(err)
		}
		// never read
	}
	if !poll(5*time.Second, func() bool { return be.Snapshot().InFlight > 0 }) {
		t.Fatalf("the streams never started on the backend")
	}
	start := time.Now()
	var peakRSS int
	var backendFree time.Duration
	ok := poll(20*time.Second, func() bool {
		if s, err := readSample(c, px.Pid(), px.URL); err == nil {
			peakRSS = max(peakRSS, s.rssKB)
		}
		if backendFree == 0 && be.Snapshot().InFlight == 0 {
			backendFree = time.Since(start)
		}
		inflight, _ := metric(c, px.URL, "vllm_proxy_in_flight_requests")
		return backendFree != 0 && inflight == 0
	})
	released := time.Since(start)
	if !ok {
		inflight, _ := metric(c, px.URL, "vllm_proxy_in_flight_requests")
		t.Errorf("20s later: backend in flight %d, proxy in flight %v: stalled readers hold their requests", be.Snapshot().InFlight, inflight)
	} else if released > 8*time.Second { // request_timeout 3 s + 1 s grace, from the streams' start
		t.Errorf("stalled readers released only %s after they started (request_timeout 3s)", released)
	}
	grew := peakRSS - before.rssKB
	if grew > 64<<10 {
		t.Errorf("proxy RSS grew by %d KiB while clients did not read", grew)
	}
	if r := chat(t.Context(), c, px.URL, chatBody(0, 2, false)); !r.OK() {
		t.Errorf("normal request afterwards: %d %v", r.Status, r.Err)
	}
	result(t, "%d stalled readers of 30000-token streams: backend free %s and proxy requests released %s after they started (request_timeout 3s); proxy RSS +%d KiB at peak",
		n, backendFree.Round(100*time.Millisecond), released.Round(100*time.Millisecond), grew)
}
