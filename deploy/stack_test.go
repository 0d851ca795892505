package deploy

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/vllm-proxy/vllm-proxy/client"
	"github.com/vllm-proxy/vllm-proxy/sim"
	"github.com/vllm-proxy/vllm-proxy/state/statetest"
)

// family is one metric family the proxy exported, with the label names its series carry.
type family struct {
	typ    string
	labels map[string]bool
}

// exported starts the real vllm-proxy binary on a real redis-server in front of
// simulators (a healthy one, one failing every request, one cutting every stream, one
// behind a front that answers every completion 503 so that the proxy retries) and an
// address where nothing listens,
// drives interactive traffic, a batch and a Redis outage through it, and returns the
// metric families of its /metrics: the proxy's real list, conditional series included.
func exported(t *testing.T) map[string]family {
	t.Helper()
	bin := buildProxy(t)
	rs := statetest.StartRedis(t, statetest.Options{})
	good := startSim(t, sim.Config{Model: "m", Instant: true})
	failing := startSim(t, sim.Config{Model: "m", Instant: true, Faults: sim.Faults{FailRate: 1}})
	cutting := startSim(t, sim.Config{Model: "cut", Instant: true, Faults: sim.Faults{DropStreamAfter: 1}})
	busy := busyBackend(t, startSim(t, sim.Config{Model: "m", Instant: true}))
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	yaml := fmt.Sprintf(`backends:
  - url: %s
  - url: %s
  - url: %s
  - url: %s
  - url: http://127.0.0.1:1
routing:
  policy: cache_aware
  health_check_interval: 100ms
  scrape_interval: 100ms
  max_fails: 1
`, good, failing, cutting, busy)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	base := runProxy(t, bin, "serve", "-R", rs.URL, "--listen", "127.0.0.1:0", "--config", cfg, "-L", "json", "--shutdown-timeout", "5s")

	// Interactive traffic, plain and streamed, with prompts long enough for prefix
	// hashing and distinct so that cold placement spreads them: sent until some were
	// retried off the failing backend.
	prefix := strings.Repeat("a long shared system prompt for the prefix cache; ", 20)
	i := 0
	waitFor(t, 30*time.Second, "a retried request", func() bool {
		for range 4 {
			i++
			post(t, base+"/v1/chat/completions", fmt.Sprintf(`{"model":"m","messages":[{"role":"user","content":"%d %s"}],"max_tokens":4,"stream":%v}`, i, prefix, i%2 == 0))
		}
		return strings.Contains(get(t, base+"/metrics"), "vllm_proxy_retries_total{")
	})
	// The same prompt again, for prefix affinity; and streams the cutting backend breaks.
	for range 3 {
		post(t, base+"/v1/chat/completions", `{"model":"m","messages":[{"role":"user","content":"1 `+prefix+`"}],"max_tokens":4}`)
		post(t, base+"/v1/chat/completions", `{"model":"cut","messages":[{"role":"user","content":"cut me"}],"max_tokens":8,"stream":true}`)
	}

	// A batch, through the CLI's client, to completion.
	c, err := client.New(client.Config{URL: base})
	if err != nil {
		t.Fatal(err)
	}
	var lines strings.Builder
	for i := range 5 {
		fmt.Fprintf(&lines, `{"custom_id":"r%d","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[{"role":"user","content":"line %d"}],"max_tokens":2}}`+"\n", i, i)
	}
	f, err := c.UploadFile(t.Context(), "in.jsonl", strings.NewReader(lines.String()))
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.CreateBatch(t.Context(), client.BatchRequest{InputFileID: f.ID, Endpoint: "/v1/chat/completions", CompletionWindow: "24h"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the batch to complete", func() bool {
		b, err = c.GetBatch(t.Context(), b.ID)
		return err == nil && b.Status == "completed"
	})

	// A Redis outage: commands fail and are counted, the proxy reconnects.
	rs.Kill()
	waitFor(t, 30*time.Second, "Redis errors to be counted", func() bool {
		_, _ = c.ListBatches(t.Context(), 1)
		return strings.Contains(get(t, base+"/metrics"), "vllm_proxy_redis_errors_total{")
	})
	rs.Restart()
	waitFor(t, 30*time.Second, "the proxy to reconnect", func() bool {
		return strings.Contains(get(t, base+"/metrics"), "vllm_proxy_redis_connected 1")
	})

	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(get(t, base+"/metrics")))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]family{}
	for name, mf := range fams {
		fam := family{typ: strings.ToLower(mf.GetType().String()), labels: map[string]bool{}}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				fam.labels[l.GetName()] = true
			}
		}
		out[name] = fam
	}
	return out
}

// busyBackend fronts the simulator at simURL with a server that answers every chat
// completion 503 (an overloaded vLLM), a status the proxy retries on another backend,
// and passes everything else (health, models, metrics) through.
func busyBackend(t *testing.T, simURL string) string {
	t.Helper()
	u, err := url.Parse(simURL)
	if err != nil {
		t.Fatal(err)
	}
	pass := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/v1/chat/completions" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `{"error":{"message":"overloaded","type":"server_error","param":null,"code":null}}`)
			return
		}
		pass.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

var buildOnce struct {
	sync.Once
	path string
	err  error
	out  []byte
}

// buildProxy builds cmd/vllm-proxy once per test binary.
func buildProxy(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "deploy-bin-")
		if err != nil {
			buildOnce.err = err
			return
		}
		buildOnce.path = filepath.Join(dir, "vllm-proxy")
		cmd := exec.Command(goTool(), "build", "-o", buildOnce.path, "./cmd/vllm-proxy")
		cmd.Dir = ".."
		buildOnce.out, buildOnce.err = cmd.CombinedOutput()
	})
	if buildOnce.err != nil {
		t.Fatalf("building vllm-proxy: %v\n%s", buildOnce.err, buildOnce.out)
	}
	return buildOnce.path
}

// goTool is the go command running this test: the one on PATH, else the one in GOROOT.
func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if root := os.Getenv("GOROOT"); root != "" {
		return filepath.Join(root, "bin", "go")
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go") //nolint:staticcheck // the fallback of last resort
}

// runProxy starts the binary with args, waits for its "serving" record and returns the
// base URL; the process is stopped with SIGTERM when the test ends.
func runProxy(t *testing.T, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var rec map[string]any
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["msg"] == "serving" {
				if a, ok := rec["addr"].(string); ok {
					select {
					case addr <- a:
					default:
					}
				}
			}
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		<-drained
	})
	select {
	case a := <-addr:
		return "http://" + a
	case <-time.After(30 * time.Second):
		t.Fatal("the proxy logged no serving record")
		return ""
	}
}

// startSim starts an in-process simulator for the test and returns its base URL.
func startSim(t *testing.T, cfg sim.Config) string {
	t.Helper()
	s, err := sim.Start(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s.URL()
}

// post sends body to url and reads the whole answer, whatever its status.
func post(t *testing.T, url, body string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return // a cut stream may end in a transport error: that is what it tests
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
}

// get returns the body of GET url.
func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// waitFor polls cond every 20 ms until it holds or within passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
}
