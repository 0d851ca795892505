package faults

import (
	"context"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vllm-proxy/vllm-proxy/sim"
)

// TestReloadBrokenConfig: while interactive load runs, the config file is replaced by
// (a) YAML that does not parse, (b) YAML with invalid values, and (c) a broken file
// plus SIGHUP; then (d) by a valid file adding a backend. Expected: each broken file
// is rejected with one "config reload rejected" record and the old configuration keeps
// serving (zero client errors, the old backend still listed); the valid file is applied
// (the new backend appears in /health and takes requests).
func TestReloadBrokenConfig(t *testing.T) {
	t.Parallel()
	s1 := startSim(t, sim.Config{DecodeStepMs: 2})
	s2 := startSim(t, sim.Config{DecodeStepMs: 2})
	px, path := startProxy(t, "proxy", proxyConfig{Backends: []string{s1.URL()}}, "", nil, procOpts{})
	c := newClient(t)

	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	var st loadStats
	waitLoad := runLoad(ctx, c, px.URL, 3, 4, 30*time.Second, &st)
	defer waitLoad()

	const rejected = "config reload rejected"
	replace := func(content string) {
		t.Helper()
		tmp := path + ".new"
		if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil { // as editors and ConfigMaps do
			t.Fatal(err)
		}
	}
	expectRejections := func(n int, why string) time.Duration {
		t.Helper()
		start := time.Now()
		if !poll(10*time.Second, func() bool { return strings.Count(px.Output(), rejected) >= n }) {
			t.Fatalf("%s: no %q record within 10s", why, rejected)
		}
		if !backendHealthy(t, c, px.URL, s1.URL()) {
			t.Errorf("%s: the old backend is no longer served", why)
		}
		return time.Since(start)
	}

	time.Sleep(300 * time.Millisecond)
	replace("backends: [\n  - url: http://x\n")
	d1 := expectRejections(1, "unparsable YAML")
	replace("backends:\n  - url: ftp://nowhere\n    capacity: 0\nrouting:\n  policy: nope\n")
	d2 := expectRejections(2, "invalid values")
	if err := syscall.Kill(px.Pid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	expectRejections(3, "SIGHUP with an invalid file")

	before := served(s2)
	replace(proxyConfig{Backends: []string{s1.URL(), s2.URL()}}.yaml())
	px.waitLog("config reloaded", 10*time.Second)
	if !poll(10*time.Second, func() bool { return served(s2) > before }) {
		t.Errorf("the backend added by the valid file took no request")
	}
	stop()
	waitLoad()
	if st.Failed() != 0 {
		t.Errorf("client errors across the reloads: %s", st.Summary())
	}
	if n := strings.Count(px.Output(), rejected); n != 3 {
		t.Errorf("%d rejection records, want 3", n)
	}
	result(t, "3 broken files rejected (seen %s and %s after the write), old config kept; valid file applied; %s",
		d1.Round(time.Millisecond), d2.Round(time.Millisecond), st.Summary())
}

// TestReloadRemovesBackendMidStream: streams are running on two backends when a config
// reload removes one of them. Expected: every stream that was running completes cleanly
// (in-flight requests survive a reload), no request fails, and once the reload is logged
// the removed backend gets no new request.
func TestReloadRemovesBackendMidStream(t *testing.T) {
	t.Parallel()
	keep := startSim(t, sim.Config{DecodeStepMs: 10})
	drop := startSim(t, sim.Config{DecodeStepMs: 10})
	px, path := startProxy(t, "proxy", proxyConfig{Backends: []string{keep.URL(), drop.URL()},
		Routing: "  policy: round_robin\n"}, "", nil, procOpts{})
	c := newClient(t)

	n := 8
	results := make([]streamResult, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { results[i] = streamChat(t.Context(), c, px.URL, chatBody(i, 100, true), nil) }) // ~1 s each
	}
	if !poll(5*time.Second, func() bool { return drop.Snapshot().InFlight > 0 && keep.Snapshot().InFlight > 0 }) {
		t.Fatalf("the streams did not reach both backends")
	}
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(proxyConfig{Backends: []string{keep.URL()}, Routing: "  policy: round_robin\n"}.yaml()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	px.waitLog("config reloaded", 10*time.Second)
	inflightAtReload := drop.Snapshot().InFlight
	after := served(drop) + drop.Snapshot().InFlight
	var st loadStats
	for i := range 20 {
		st.add(chat(t.Context(), c, px.URL, chatBody(100+i, 2, false)), time.Now())
	}
	wg.Wait()
	for i, r := range results {
		if !r.Clean() {
			t.Errorf("stream %d across the reload: %+v", i, r)
		}
	}
	if st.Failed() != 0 {
		t.Errorf("requests after the reload: %s", st.Summary())
	}
	if got := served(drop); got > after {
		t.Errorf("the removed backend got %d new requests after the reload", got-after)
	}
	result(t, "%d streams (%d on the removed backend at the reload) all completed cleanly; 20 requests after the reload, 0 errors, none on the removed backend",
		n, inflightAtReload)
}
