package faults

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vllm-proxy/vllm-proxy/sim"
)

// TestClientGoesAway: clients abandon requests midway, non-streaming ones while the
// backend generates and streaming ones after a few events, many at once. Expected: the
// proxy cancels each backend request promptly: within 2 s of the last client leaving,
// the backend has nothing running or waiting and the proxy's in-flight gauges
// (vllm_proxy_in_flight_requests, vllm_proxy_backend_in_flight_requests) are back to 0;
// the proxy then serves a normal request.
func TestClientGoesAway(t *testing.T) {
	t.Parallel()
	be := startSim(t, sim.Config{DecodeStepMs: 20})
	px, _ := startProxy(t, "proxy", proxyConfig{Backends: []string{be.URL()}}, "", nil, procOpts{})
	c := newClient(t)

	n := scale(10, 50)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { // non-streaming: give up after 300 ms of a ~40 s generation
			ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
			defer cancel()
			if r := chat(ctx, c, px.URL, chatBody(i, 2000, false)); r.OK() {
				t.Errorf("a 2000-token request finished in 300 ms")
			}
		})
		wg.Go(func() { // streaming: read 3 events, then hang up
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, px.URL+"/v1/chat/completions", bytes.NewReader(chatBody(1000+i, 2000, true)))
			req.Header.Set("Content-Type", "application/json")
			resp, err := c.Do(req)
			if err != nil {
				t.Errorf("stream: %v", err)
				return
			}
			defer resp.Body.Close()
			br := bufio.NewReader(resp.Body)
			for events := 0; events < 3; {
				line, err := br.ReadString('\n')
				if err != nil {
					t.Errorf("stream ended early: %v", err)
					return
				}
				if strings.HasPrefix(line, "data: ") {
					events++
				}
			}
		})
	}
	peak := 0
	poll(2*time.Second, func() bool { // the most requests the backend held at once
		s := be.Snapshot()
		peak = max(peak, s.Running+s.Waiting)
		return peak >= 2*n
	})
	if peak == 0 {
		t.Fatalf("nothing ever ran on the backend")
	}
	wg.Wait()
	left := time.Now()
	var idle time.Duration
	if !poll(5*time.Second, func() bool {
		s := be.Snapshot()
		return s.Running == 0 && s.Waiting == 0 && s.InFlight == 0
	}) {
		t.Errorf("backend still busy 5s after every client left: %+v", be.Snapshot())
	} else {
		idle = time.Since(left)
	}
	if idle > 2*time.Second {
		t.Errorf("backend requests cancelled only %s after the clients left", idle)
	}
	for _, m := range []string{"vllm_proxy_in_flight_requests", "vllm_proxy_backend_in_flight_requests"} {
		if !poll(5*time.Second, func() bool { v, ok := metric(c, px.URL, m); return ok && v == 0 }) {
			v, _ := metric(c, px.URL, m)
			t.Errorf("%s is %v 5s after every client left", m, v)
		}
	}
	if r := chat(t.Context(), c, px.URL, chatBody(0, 2, false)); !r.OK() {
		t.Errorf("normal request afterwards: %d %v", r.Status, r.Err)
	}
	result(t, "%d clients gave up (half streaming), backend peak running+waiting=%d; backend idle %s after the last left; in-flight gauges 0",
		2*n, peak, idle.Round(time.Millisecond))
}
