package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/vllm-proxy/vllm-proxy/logging"
	"github.com/vllm-proxy/vllm-proxy/sim"
)

// startSim starts an in-process simulator for the test and returns its base URL.
func startSim(t *testing.T, cfg sim.Config) string {
	t.Helper()
	return startSimServer(t, cfg).URL()
}

// startSimServer is startSim returning the simulator itself.
func startSimServer(t *testing.T, cfg sim.Config) *sim.Server {
	t.Helper()
	s, err := sim.Start(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// startRun runs run in the background on a free port and waits for the "serving"
// record; it returns the base URL, the output and a stop function that cancels the
// context and returns run's exit code.
func startRun(t *testing.T, args ...string) (string, *syncBuffer, func() int) {
	t.Helper()
	return startCmd(t, "serve", args...)
}

// startCmd is startRun for another command that takes serve's flags (worker).
func startCmd(t *testing.T, command string, args ...string) (string, *syncBuffer, func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	done := make(chan int, 1)
	if !slices.Contains(args, "--backend") && !slices.Contains(args, "--config") {
		args = append(args, "--backend", startSim(t, sim.Config{Model: "m", Instant: true}))
	}
	args = append([]string{command, "-R", "memory", "--listen", "127.0.0.1:0", "--shutdown-timeout", "5s"}, args...)
	go func() { done <- run(ctx, args, envOf(nil), stdout, stderr) }()
	addrRe := regexp.MustCompile(`addr"?[:=] ?"?(127\.0\.0\.1:\d+)`)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if m := addrRe.FindStringSubmatch(stdout.String()); m != nil {
			stopped := false
			stop := func() int {
				if stopped {
					t.Fatal("stopped twice")
				}
				stopped = true
				cancel()
				select {
				case code := <-done:
					return code
				case <-time.After(10 * time.Second):
					t.Fatal("run did not return after cancel")
					return -1
				}
			}
			t.Cleanup(func() {
				if !stopped {
					stop()
				}
			})
			return "http://" + m[1], stdout, stop
		}
		select {
		case code := <-done:
			cancel()
			t.Fatalf("run exited %d before serving; stdout %s stderr %s", code, stdout.String(), stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("no serving record; stdout %s", stdout.String())
		}
		time.Sleep(5 * time.Millisecond) // polling for the record, with a deadline
	}
}

// inOrder reports whether want occur in msgs in this order (other records may come between).
func inOrder(msgs []string, want ...string) bool {
	for _, m := range msgs {
		if len(want) > 0 && m == want[0] {
			want = want[1:]
		}
	}
	return len(want) == 0
}

func getHealth(t *testing.T, base string) {
	t.Helper()
	resp, err := http.Get(base + "/health")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "ok") {
		t.Fatalf("GET /health = %d %q", resp.StatusCode, body)
	}
}

func TestServeJSONLogs(t *testing.T) {
	base, out, stop := startRun(t, "-L", "json", "-vvv")
	getHealth(t, base)
	if code := stop(); code != 0 {
		t.Fatalf("exit %d", code)
	}
	var msgs []string
	sc := bufio.NewScanner(strings.NewReader(out.String()))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("stdout line is not a JSON object: %q", sc.Text())
		}
		msgs = append(msgs, m["msg"].(string))
		if strings.Count(sc.Text(), `"component":`) > 1 {
			t.Errorf("a record names its component twice: %s", sc.Text())
		}
		if m["msg"] == "serving" && (m["redis"] != "memory" || m["level"] != "INFO") {
			t.Errorf("serving record = %v", m)
		}
	}
	if !inOrder(msgs, "settings resolved", "backend added", "serving", "shutting down", "stopped") {
		t.Errorf("records = %v", msgs)
	}
}

func TestServeYAMLLogs(t *testing.T) {
	base, out, stop := startRun(t, "-L", "yaml")
	getHealth(t, base)
	if code := stop(); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if !strings.HasPrefix(out.String(), "---\n") {
		t.Fatalf("not a YAML stream:\n%s", out.String())
	}
	dec := yaml.NewDecoder(strings.NewReader(out.String()))
	var msgs []string
	for {
		var m map[string]any
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("decoding the YAML stream: %v\n%s", err, out.String())
		}
		msgs = append(msgs, m["msg"].(string))
	}
	if !inOrder(msgs, "backend added", "serving", "shutting down", "stopped") || slices.Contains(msgs, "settings resolved") {
		t.Errorf("documents = %v", msgs)
	}
}

// TestServeDrains: after the context is cancelled (what SIGINT/SIGTERM do), the server
// stops accepting, lets the in-flight request finish, and returns nil (exit 0).
func TestServeDrains(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	entered, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		_, _ = io.WriteString(w, "finished")
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs syncBuffer
	app := &App{Ctx: ctx, Log: logging.New(&logs, logging.Options{Level: logging.LevelDebug}), Stdout: &logs}
	served := make(chan error, 1)
	go func() { served <- serveListener(app, ln, h, 10*time.Second) }()

	type result struct {
		body string
		err  error
	}
	inflight := make(chan result, 1)
	go func() {
		resp, err := http.Get("http://" + addr + "/slow")
		if err != nil {
			inflight <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		inflight <- result{string(b), err}
	}()
	<-entered
	cancel()
	// Stops accepting: new connections are refused once the listener is closed.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			break
		}
		_ = c.Close()
		if time.Now().After(deadline) {
			t.Fatal("still accepting connections after shutdown began")
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case err := <-served:
		t.Fatalf("returned %v before the in-flight request finished", err)
	default:
	}
	close(release)
	if r := <-inflight; r.err != nil || r.body != "finished" {
		t.Fatalf("in-flight request: %q, %v", r.body, r.err)
	}
	if err := <-served; err != nil {
		t.Fatalf("serveListener = %v, want nil after a clean drain", err)
	}
	if !strings.Contains(logs.String(), `"msg":"stopped"`) {
		t.Errorf("no stopped record:\n%s", logs.String())
	}
}

// TestServeDrainTimeout: a request outliving --shutdown-timeout makes Run fail (exit 1).
func TestServeDrainTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	app := &App{Ctx: ctx, Log: slog.New(slog.DiscardHandler)}
	served := make(chan error, 1)
	go func() { served <- serveListener(app, ln, h, 50*time.Millisecond) }()
	reqDone := make(chan struct{})
	go func() {
		defer close(reqDone)
		resp, err := http.Get("http://" + ln.Addr().String() + "/hang")
		if err == nil {
			_ = resp.Body.Close()
		}
	}()
	<-entered
	cancel()
	err = <-served
	close(release)
	<-reqDone
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "draining in-flight requests within 50ms") {
		t.Fatalf("serveListener = %v, want a drain deadline error", err)
	}
}

func TestServeListenError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"-R", "memory", "--listen", ln.Addr().String(), "-L", "json", "--backend", startSim(t, sim.Config{Model: "m", Instant: true})}, envOf(nil), &stdout, &stderr)
	if code != exitError || !strings.Contains(stdout.String(), `"msg":"command failed"`) || !strings.Contains(stdout.String(), "address already in use") {
		t.Fatalf("code %d stdout %s", code, stdout.String())
	}
}

func TestServerLimits(t *testing.T) {
	if readHeaderTimeout <= 0 || idleTimeout <= 0 || maxHeaderBytes <= 0 {
		t.Fatal("server limits must be set")
	}
}

func TestReload(t *testing.T) {
	file := writeFile(t, "c.yaml", "backends:\n  - url: http://a:1\nrouting:\n  max_retries: 1\n")
	_, s, code, errs := setupT(t, []string{"--config", file, "--listen", ":9999"}, nil)
	if code != 0 {
		t.Fatal(errs)
	}
	if err := writeFileAt(file, "backends:\n  - url: http://b:1\nrouting:\n  max_retries: 4\nlisten: :1234\n"); err != nil {
		t.Fatal(err)
	}
	cfg, err := s.Reload()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Routing.MaxRetries != 4 || cfg.Backends[0].URL != "http://b:1" || cfg.Listen != ":9999" {
		t.Errorf("reloaded %+v: want the file's new values under the --listen flag", cfg)
	}
	if s.cfg.Routing.MaxRetries != 1 {
		t.Error("Reload changed the running config")
	}
	if err := writeFileAt(file, "routing:\n  max_retries: x\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reload(); err == nil || !strings.Contains(err.Error(), file+":2:16: routing.max_retries") {
		t.Errorf("Reload of a bad file = %v", err)
	}
	_, s, _, _ = setupT(t, nil, nil)
	if _, err := s.Reload(); err == nil {
		t.Error("Reload without --config succeeded")
	}
}
