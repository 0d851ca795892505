package faults

import (
	"bufio"
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vllm-proxy/vllm-proxy/sim"
	"github.com/vllm-proxy/vllm-proxy/state/statetest"
)

// metric sums every series of the named metric in base's GET /metrics; ok is false
// when the metric is absent or /metrics cannot be read.
func metric(c *http.Client, base, name string) (v float64, ok bool) {
	resp, err := c.Get(base + "/metrics")
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+" ") && !strings.HasPrefix(line, name+"{") {
			continue
		}
		f, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err == nil {
			v, ok = v+f, true
		}
	}
	return v, ok
}

// filesStatus is the status of GET /v1/files, which needs shared state.
func filesStatus(c *http.Client, base string) int {
	resp, err := c.Get(base + "/v1/files")
	if err != nil {
		return 0
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

// TestRedisFaults: a proxy on a real Redis serves steady interactive load while Redis
// (a) is SIGKILLed, stays down, and restarts on the same port, (b) loses every key
// (FLUSHALL), and (c) stalls (DEBUG SLEEP). Expected: zero interactive client errors in
// every phase (shared in-flight counts and scrape leases degrade to local state); the
// Files API, which needs Redis, answers an OpenAI-shaped 5xx while Redis is down and
// 200 again soon after it is back (the recovery times are recorded), and the proxy
// reports vllm_proxy_redis_connected 1 again.
func TestRedisFaults(t *testing.T) {
	t.Parallel()
	rd := statetest.StartRedis(t, statetest.Options{Extra: []string{"--enable-debug-command", "yes"}})
	b1 := startSim(t, sim.Config{DecodeStepMs: 3})
	b2 := startSim(t, sim.Config{DecodeStepMs: 3})
	px, _ := startProxy(t, "proxy", proxyConfig{Backends: []string{b1.URL(), b2.URL()}}, rd.URL, nil, procOpts{})
	c := newClient(t)
	if s := filesStatus(c, px.URL); s != http.StatusOK {
		t.Fatalf("GET /v1/files with Redis up: %d", s)
	}

	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	var st loadStats
	waitLoad := runLoad(ctx, c, px.URL, scale(4, 12), 8, 30*time.Second, &st)
	defer waitLoad() // also on a failed phase
	phase := func(name string, f func()) {
		before := st.Failed()
		f()
		time.Sleep(scale(500*time.Millisecond, 3*time.Second)) // load keeps running after the fault
		if d := st.Failed() - before; d != 0 {
			t.Errorf("%s: %d interactive client errors", name, d)
		}
	}
	time.Sleep(300 * time.Millisecond)

	var down, filesBack, connectedBack time.Duration
	phase("redis killed and restarted", func() {
		rd.Kill()
		outage := scale(1500*time.Millisecond, 10*time.Second)
		end := time.Now().Add(outage)
		sawError := false
		for time.Now().Before(end) {
			resp, err := c.Get(px.URL + "/v1/files")
			if err == nil {
				b := readAll(resp)
				if resp.StatusCode >= 500 {
					openAIError(t, b)
					sawError = true
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
		if !sawError {
			t.Errorf("GET /v1/files never failed while Redis was down")
		}
		down = outage
		restarted := time.Now()
		rd.Restart()
		if !poll(30*time.Second, func() bool { return filesStatus(c, px.URL) == http.StatusOK }) {
			t.Errorf("GET /v1/files not 200 within 30s of the restart")
		}
		filesBack = time.Since(restarted)
		if !poll(30*time.Second, func() bool { v, ok := metric(c, px.URL, "vllm_proxy_redis_connected"); return ok && v >= 1 }) {
			t.Errorf("vllm_proxy_redis_connected not 1 within 30s of the restart")
		}
		connectedBack = time.Since(restarted)
	})
	phase("FLUSHALL", func() {
		if r, err := rd.Do("FLUSHALL"); err != nil || r != "+OK" {
			t.Fatalf("FLUSHALL: %q %v", r, err)
		}
		if s := filesStatus(c, px.URL); s != http.StatusOK {
			t.Errorf("GET /v1/files after FLUSHALL: %d", s)
		}
	})
	var slept int
	phase("DEBUG SLEEP", func() {
		for range scale(3, 10) {
			if r, err := rd.Do("DEBUG", "SLEEP", "0.5"); err != nil || r != "+OK" {
				t.Fatalf("DEBUG SLEEP: %q %v", r, err)
			}
			slept++
		}
	})
	stop()
	waitLoad()
	if st.Failed() != 0 {
		t.Errorf("interactive errors over the whole run: %s", st.Summary())
	}
	result(t, "redis down %s: /v1/files 200 again %s after restart, redis_connected=1 after %s; FLUSHALL; %d×DEBUG SLEEP 0.5s; interactive %s",
		down, filesBack.Round(time.Millisecond), connectedBack.Round(time.Millisecond), slept, st.Summary())
}

// readAll reads and closes a response body.
func readAll(resp *http.Response) []byte {
	defer resp.Body.Close()
	var b strings.Builder
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 8<<20)
	for sc.Scan() {
		b.WriteString(sc.Text())
		b.WriteByte('\n')
	}
	return []byte(b.String())
}
