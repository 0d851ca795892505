// Package statetest starts real redis-server processes for tests. It is imported only by
// _test.go files; production code never depends on it.
package statetest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Redis is one redis-server process started for a test on a free loopback port.
// It is stopped by t.Cleanup. Methods are safe for concurrent use.
type Redis struct {
	// Addr is host:port.
	Addr string
	// URL is redis://Addr/0, the form the -R flag takes.
	URL string

	// Password is the requirepass value, or empty.
	Password string

	t       testing.TB
	dir     string
	args    []string
	cmd     *exec.Cmd
	stopped bool
}

// Options tune a started server.
type Options struct {
	// Password, when set, is required by the server (requirepass).
	Password string
	// AppendOnly turns on AOF with appendfsync everysec, so Restart keeps data.
	AppendOnly bool
	// Extra are further redis-server arguments, e.g. "--cluster-enabled", "yes".
	Extra []string
}

// RequireServer fails the test loudly when redis-server is not installed; `make test`
// installs it, so a missing binary is an environment error, never a silent skip.
func RequireServer(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("redis-server not found on PATH (run `make test`, which installs it): %v", err)
	}
	return path
}

// StartRedis starts a redis-server on a free port and waits until it answers PING.
func StartRedis(t testing.TB, opts ...Options) *Redis {
	t.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	RequireServer(t)
	port := FreePort(t)
	dir := t.TempDir()
	args := []string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--protected-mode", "no", "--daemonize", "no", "--loglevel", "warning",
	}
	if o.AppendOnly {
		args = append(args, "--appendonly", "yes", "--appendfsync", "everysec")
	} else {
		args = append(args, "--appendonly", "no")
	}
	if o.Password != "" {
		args = append(args, "--requirepass", o.Password)
	}
	args = append(args, o.Extra...)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	r := &Redis{Addr: addr, URL: "redis://" + addr + "/0", Password: o.Password, t: t, dir: dir, args: args}
	if o.Password != "" {
		r.URL = "redis://:" + o.Password + "@" + addr + "/0"
	}
	r.start()
	t.Cleanup(r.Stop)
	return r
}

func (r *Redis) start() {
	r.t.Helper()
	cmd := exec.Command("redis-server", r.args...) // #nosec G204 -- test helper: fixed binary, args (port, dir, password) built by this package
	cmd.Dir = r.dir
	logf, err := os.Create(filepath.Join(r.dir, "redis.log"))
	if err != nil {
		r.t.Fatalf("creating redis log: %v", err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		r.t.Fatalf("starting redis-server: %v", err)
	}
	r.cmd, r.stopped = cmd, false
	go func() { _ = cmd.Wait(); _ = logf.Close() }()
	if err := WaitPing(r.Addr, r.Password, 10*time.Second); err != nil {
		log, _ := os.ReadFile(filepath.Join(r.dir, "redis.log"))
		r.t.Fatalf("redis-server on %s did not answer: %v\n%s", r.Addr, err, log)
	}
}

// Kill stops the server with SIGKILL, as a crash would.
func (r *Redis) Kill() {
	if r.cmd != nil && !r.stopped {
		_ = r.cmd.Process.Kill()
		r.waitGone()
		r.stopped = true
	}
}

// Stop stops the server. It is idempotent.
func (r *Redis) Stop() { r.Kill() }

// Restart starts the server again on the same port and directory (AOF data survives).
func (r *Redis) Restart() {
	r.t.Helper()
	r.Kill()
	r.start()
}

// Dir is the server's working directory (AOF files live here).
func (r *Redis) Dir() string { return r.dir }

func (r *Redis) waitGone() {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", r.Addr, 100*time.Millisecond)
		if err != nil {
			return
		}
		_ = c.Close()
		time.Sleep(10 * time.Millisecond)
	}
}

// Do sends one command over a fresh connection and returns the raw first reply line.
// It is for test set-up (FLUSHALL, DEBUG SLEEP, CONFIG SET) without a client library.
func (r *Redis) Do(args ...string) (string, error) { return Do(r.Addr, r.Password, args...) }

// Do sends one RESP command to addr (authenticating with password when set) and returns
// the first line of the reply.
func Do(addr, password string, args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", fmt.Errorf("dialing %s: %w", addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(c)
	send := func(a []string) (string, error) {
		var b strings.Builder
		fmt.Fprintf(&b, "*%d\r\n", len(a))
		for _, s := range a {
			fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(s), s)
		}
		if _, err := c.Write([]byte(b.String())); err != nil {
			return "", fmt.Errorf("writing command: %w", err)
		}
		line, err := br.ReadString('\n')
		if err != nil {
			return "", fmt.Errorf("reading reply: %w", err)
		}
		return strings.TrimRight(line, "\r\n"), nil
	}
	if password != "" {
		if _, err := send([]string{"AUTH", password}); err != nil {
			return "", err
		}
	}
	return send(args)
}

// WaitPing polls addr until it answers PING with PONG or the timeout passes.
func WaitPing(addr, password string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last error
	for ctx.Err() == nil {
		reply, err := Do(addr, password, "PING")
		if err == nil && reply == "+PONG" {
			return nil
		}
		last = fmt.Errorf("reply %q: %w", reply, err)
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("waiting for PONG from %s: %w", addr, last)
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
