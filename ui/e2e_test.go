//go:build e2e

package ui

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vllm-proxy/vllm-proxy/routing"
	"github.com/vllm-proxy/vllm-proxy/sim"
)

// The browser test runs with `go test -tags e2e ./ui/` (make test sets the tag). It never
// skips: without chromium, node or playwright-core it fails and says how to install them.

const chromiumPath = "/usr/bin/chromium"

// requireBrowserTools fails the test loudly when a tool the browser test needs is missing.
// It installs the npm dependencies (from package-lock.json) when node_modules is absent.
func requireBrowserTools(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("the browser test needs Debian's chromium at %s (apt-get install -y chromium): %v", chromiumPath, err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("the browser test needs node and npm (apt-get install -y nodejs npm): %v", err)
	}
	dir, err := filepath.Abs("e2e")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "playwright-core", "package.json")); err != nil {
		npm, lerr := exec.LookPath("npm")
		if lerr != nil {
			t.Fatalf("playwright-core is not installed in %s and npm is missing: %v", dir, lerr)
		}
		cmd := exec.CommandContext(t.Context(), npm, "ci", "--no-audit", "--no-fund")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm ci in %s failed: %v\n%s", dir, err, out)
		}
	}
	return node
}

// TestBrowserDashboard starts simulators, the router, the proxy, batch workers and the
// dashboard, submits a batch slow enough to watch, and runs ui/e2e/dashboard.mjs in
// headless chromium: backend rows, progress advancing, cancel showing cancelling then
// cancelled, deleting the batch's files, the phone layout, and screenshots.
func TestBrowserDashboard(t *testing.T) {
	node := requireBrowserTools(t)
	// Each line decodes 30 tokens at 25 ms a step (~0.75 s); 4 lines run at a time over
	// two simulators, so 120 lines take ~25 s: long enough to watch and cancel.
	st := startStack(t, stackOpts{sims: 2, sim: sim.Config{DecodeStepMs: 25, MaxNumSeqs: 4}, policy: routing.PolicyCacheAware,
		ui: Config{PollInterval: 300 * time.Millisecond, SampleInterval: time.Second, Title: "vllm-proxy e2e", Version: "test"}})
	// Interactive requests sharing a long prefix give the routing mix affinity decisions
	// and the backends a predicted hit rate.
	shared := strings.Repeat("You are a careful assistant answering questions about the manual. ", 20)
	for i := range 4 {
		if code := chatPrompt(t, st.srv.URL, shared+fmt.Sprintf("Question %d?", i)); code != 200 {
			t.Fatalf("chat: %d", code)
		}
	}
	id, _ := submitBatch(t, st.srv.URL, chatLines(120, "m1", 30))
	waitFor(t, 20*time.Second, "the batch to start", func() bool { return getBatch(t, st.srv.URL, id).Status == "in_progress" })

	shots, err := filepath.Abs(filepath.Join("e2e", "screenshots"))
	if err != nil {
		t.Fatal(err)
	}
	_ = os.RemoveAll(shots)
	backends := make([]string, len(st.sims))
	for i, s := range st.sims {
		backends[i] = s.URL()
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "dashboard.mjs")
	cmd.Dir = filepath.Dir(shots)
	cmd.Env = append(os.Environ(), "UI_URL="+st.srv.URL+"/ui/", "BACKENDS="+strings.Join(backends, ","),
		"BATCH_ID="+id, "SCREENSHOT_DIR="+shots, "CHROMIUM="+chromiumPath)
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	t.Logf("dashboard.mjs output:\n%s", out)
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("the browser test failed (exit %d); see the output above", ee.ExitCode())
		}
		t.Fatalf("running the browser test: %v", err)
	}
	if !strings.Contains(string(out), "all checks passed") {
		t.Fatal("the browser test did not report success")
	}
	if b := getBatch(t, st.srv.URL, id); b.Status != "cancelled" || b.RequestCounts.Completed == 0 || b.RequestCounts.Completed >= 120 {
		t.Errorf("batch after the browser test: %+v, want cancelled part-way", b)
	}
	for _, name := range []string{"desktop-running.png", "desktop-cancelled.png", "phone.png"} {
		if fi, err := os.Stat(filepath.Join(shots, name)); err != nil || fi.Size() < 1000 {
			t.Errorf("screenshot %s: %v", name, err)
		}
	}
}
