package faults

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vllm-proxy/vllm-proxy/state/statetest"
)

// proc is one vllm-proxy process (serve, worker or sim) started by a test. Its output is
// kept in memory and printed when the test fails. t.Cleanup stops it. Kill and Stop are
// safe to call from the test goroutine only.
type proc struct {
	t    *testing.T
	name string
	Addr string // host:port it listens on
	URL  string // http://Addr
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{} // closed when the process has exited
}

// procOpts tune startProc.
type procOpts struct {
	// Wrap is a command prefix, e.g. {"unshare", "-m", "--"}; the process keeps the pid
	// of the wrapped program only when the wrapper execs it.
	Wrap []string
	// Cred runs the process as another user.
	Cred *syscall.Credential
	// Env are extra KEY=VALUE pairs.
	Env []string
}

// startProc starts `vllm-proxy -L json ARGS... --listen 127.0.0.1:PORT` on a free port.
func startProc(t *testing.T, name string, args []string, o procOpts) *proc {
	t.Helper()
	addr := "127.0.0.1:" + strconv.Itoa(statetest.FreePort(t))
	argv := append([]string{binary, "-L", "json"}, args...)
	argv = append(argv, "--listen", addr)
	argv = append(append([]string(nil), o.Wrap...), argv...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = cleanEnv(o.Env)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if o.Cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: o.Cred}
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	p := &proc{t: t, name: name, Addr: addr, URL: "http://" + addr, cmd: cmd, out: out, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("--- output of %s (pid %d, %s):\n%s", name, cmd.Process.Pid, strings.Join(args, " "), tail(out.String(), 6000))
		}
	})
	return p
}

// cleanEnv is this process's environment without VLLM_PXY_* variables, plus extra.
func cleanEnv(extra []string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "VLLM_PXY_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// Pid is the process id.
func (p *proc) Pid() int { return p.cmd.Process.Pid }

// Exited reports whether the process has exited.
func (p *proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Kill sends SIGKILL and waits for the process to be gone.
func (p *proc) Kill() {
	p.t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.t.Fatalf("%s did not exit after SIGKILL", p.name)
	}
}

// Stop sends SIGTERM, waits up to 10 s, then kills. It is idempotent.
func (p *proc) Stop() {
	if p.Exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
	}
}

// Output is everything the process wrote so far.
func (p *proc) Output() string { return p.out.String() }

// waitLog polls the output until it contains substr or timeout passes.
func (p *proc) waitLog(substr string, timeout time.Duration) {
	p.t.Helper()
	if !poll(timeout, func() bool { return strings.Contains(p.out.String(), substr) }) {
		p.t.Fatalf("%s did not log %q within %s", p.name, substr, timeout)
	}
}

// waitHTTP polls GET URL+path until it answers want, or fails the test after timeout.
func (p *proc) waitHTTP(path string, want int, timeout time.Duration) {
	p.t.Helper()
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var last string
	ok := poll(timeout, func() bool {
		if p.Exited() {
			last = "process exited"
			return true
		}
		resp, err := c.Get(p.URL + path)
		if err != nil {
			last = err.Error()
			return false
		}
		_ = resp.Body.Close()
		last = resp.Status
		return resp.StatusCode == want
	})
	if !ok || p.Exited() {
		p.t.Fatalf("%s: GET %s did not answer %d within %s (last: %s)", p.name, path, want, timeout, last)
	}
}

// poll calls cond every 20 ms until it returns true (true) or timeout passes (false).
func poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// tail returns the last n bytes of s.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// proxyConfig is what startProxy writes into the config file.
type proxyConfig struct {
	// Backends are backend base URLs, each serving model "m".
	Backends []string
	// Routing is extra YAML under routing: (indented by the caller with two spaces).
	Routing string
	// Batch is extra YAML under batch:.
	Batch string
}

// yaml renders the config file. Intervals are short so that tests see health and
// load changes quickly.
func (c proxyConfig) yaml() string {
	var b strings.Builder
	b.WriteString("backends:\n")
	for _, u := range c.Backends {
		fmt.Fprintf(&b, "  - url: %s\n    capacity: 16\n    models: [m]\n", u)
	}
	b.WriteString("routing:\n  health_check_interval: 300ms\n  scrape_interval: 100ms\n  models_refresh_interval: 1s\n")
	b.WriteString(c.Routing)
	if c.Batch != "" {
		b.WriteString("batch:\n" + c.Batch)
	}
	return b.String()
}

// startProxy writes cfg to a config file in a fresh directory and starts `vllm-proxy
// serve` on it with -R redis ("memory" when empty) and extra flags, then waits until
// GET /health answers 200.
func startProxy(t *testing.T, name string, cfg proxyConfig, redis string, extra []string, o procOpts) (*proc, string) {
	t.Helper()
	return startStack(t, "serve", name, cfg, redis, extra, o)
}

// startStack is startProxy for subcommand cmd: "serve" or "worker".
func startStack(t *testing.T, cmd, name string, cfg proxyConfig, redis string, extra []string, o procOpts) (*proc, string) {
	t.Helper()
	dir := t.TempDir()
	path := dir + "/config.yaml"
	if o.Cred != nil { // another user must read the config file
		for _, p := range []string{filepath.Dir(dir), dir} {
			if err := os.Chmod(p, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.WriteFile(path, []byte(cfg.yaml()), 0o644); err != nil {
		t.Fatal(err)
	}
	if redis == "" {
		redis = "memory"
	}
	args := append([]string{"-R", redis, cmd, "--config", path, "--shutdown-timeout", "3s"}, extra...)
	p := startProc(t, name, args, o)
	p.waitHTTP("/health", http.StatusOK, 20*time.Second)
	return p, path
}

// startSimProc starts `vllm-proxy sim` serving model "m" (a backend a test can SIGKILL)
// and waits until it is healthy.
func startSimProc(t *testing.T, name string, extra ...string) *proc {
	t.Helper()
	args := append([]string{"sim", "--model", "m", "--max-num-seqs", "64"}, extra...)
	p := startProc(t, name, args, procOpts{})
	p.waitHTTP("/health", http.StatusOK, 10*time.Second)
	return p
}
