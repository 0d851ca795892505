package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/vllm-proxy/vllm-proxy/sim"
)

// TestTopOnce: top --once prints one plain frame (no escapes) with the backend's row.
func TestTopOnce(t *testing.T) {
	backend := startSim(t, sim.Config{Model: "m", Instant: true})
	base, _, _ := startRun(t, "--backend", backend, "--policy", "round_robin")
	code, stdout, stderr := cli(t, map[string]string{"VLLM_PXY_URL": base}, "top", "--once")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, want := range []string{"vllm-proxy top  " + base, "policy round_robin", "backends 1, healthy 1",
		"BACKEND", "HEALTH", "LOAD", "RUN", "WAIT", "INT", "BATCH", "KV%", "HIT%", "PRED%", "METRICS", backend + "  up"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("frame lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "\x1b") {
		t.Errorf("plain frame has escapes: %q", stdout)
	}
}

// TestTopPlainRefreshes: with stdout not a terminal, top prints a frame per interval
// until cancelled, then exits 0.
func TestTopPlainRefreshes(t *testing.T) {
	base, _, _ := startRun(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"top", "--url", base, "-i", "20ms"}, envOf(nil), &out, &out) }()
	waitFor(t, 10*time.Second, "three frames", func() bool { return strings.Count(out.String(), "vllm-proxy top") >= 3 })
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d after cancel:\n%s", code, out.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("top did not return after cancel")
	}
}

// TestTopTerminal runs the real main in a child process on a pseudo-terminal: top takes
// the alternate screen, shows the backends, follows a backend going down, and on q or
// Ctrl-C leaves the alternate screen, restores the terminal's mode and exits 0.
func TestTopTerminal(t *testing.T) {
	for _, key := range []string{"q", "\x03"} {
		t.Run(fmt.Sprintf("%q", key), func(t *testing.T) {
			s, err := sim.Start(t.Context(), sim.Config{Model: "m", Instant: true}, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(s.Close)
			cfg := filepath.Join(t.TempDir(), "config.yaml")
			yaml := fmt.Sprintf("backends:\n  - url: %s\nrouting:\n  health_check_interval: 50ms\n  max_fails: 1\n", s.URL())
			if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			base, _, _ := startRun(t, "--config", cfg)

			ptmx, tty, err := pty.Open()
			if err != nil {
				t.Fatal(err)
			}
			defer ptmx.Close()
			if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 24, Cols: 150}); err != nil {
				t.Fatal(err)
			}
			before, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(os.Args[0], "top", "--url", base, "--interval", "50ms")
			cmd.Env = []string{runMainEnv + "=1", "PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TERM=xterm"}
			cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			t.Cleanup(func() {
				_ = cmd.Process.Kill()
				t.Logf("top ended: %v", <-exited)
			})
			var screen syncBuffer
			readDone := make(chan struct{})
			go func() { defer close(readDone); _, _ = io.Copy(&screen, ptmx) }()

			waitFor(t, 15*time.Second, "the backend row", func() bool {
				return strings.Contains(screen.String(), s.URL()) && strings.Contains(screen.String(), "HEALTH")
			})
			if !strings.Contains(screen.String(), escEnter) {
				t.Errorf("top did not enter the alternate screen: %q", screen.String())
			}
			s.SetHealthy(false)
			waitFor(t, 15*time.Second, "the backend shown DOWN", func() bool {
				return strings.Contains(screen.String(), "DOWN") && strings.Contains(screen.String(), "healthy 0")
			})
			if _, err := ptmx.Write([]byte(key)); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-exited:
				exited <- err // for the cleanup
				if err != nil {
					t.Fatalf("top exited with %v after %q:\n%q", err, key, screen.String())
				}
			case <-time.After(15 * time.Second):
				t.Fatalf("top still running 15 s after %q", key)
			}
			after, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
			if err != nil {
				t.Fatal(err)
			}
			if after.Lflag != before.Lflag || after.Iflag != before.Iflag || after.Oflag != before.Oflag {
				t.Errorf("terminal mode not restored: lflag %#x -> %#x, iflag %#x -> %#x, oflag %#x -> %#x",
					before.Lflag, after.Lflag, before.Iflag, after.Iflag, before.Oflag, after.Oflag)
			}
			flags, err := unix.FcntlInt(tty.Fd(), unix.F_GETFL, 0)
			if err != nil || flags&unix.O_NONBLOCK != 0 {
				t.Errorf("the terminal was left non-blocking (flags %#x, %v)", flags, err)
			}
			_ = tty.Close()
			<-readDone
			out := screen.String()
			if i, j := strings.LastIndex(out, escLeave), strings.LastIndex(out, "DOWN"); i < 0 || i < j {
				t.Errorf("top did not leave the alternate screen after its last frame: %q", out[max(0, len(out)-300):])
			}
		})
	}
}
