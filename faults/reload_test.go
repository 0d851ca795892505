package faults

import (
	"context"
	"os"
	"strings"
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
