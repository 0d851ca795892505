package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vllm-proxy/vllm-proxy/sim"
)

// TestSignal runs the real main in a child process, then sends SIGTERM and SIGINT: each
// time the server logs its shutdown and the process exits 0.
func TestSignal(t *testing.T) {
	backend := startSim(t, sim.Config{Model: "m", Instant: true})
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "serve", "-R", "memory", "--listen", "127.0.0.1:0", "-L", "json", "--shutdown-timeout", "5s", "--backend", backend)
			cmd.Env = []string{runMainEnv + "=1", "PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

			lines := make(chan map[string]any, 16)
			go func() {
				defer close(lines)
				sc := bufio.NewScanner(stdout)
				for sc.Scan() {
					var m map[string]any
					if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
						m = map[string]any{"msg": "NOT JSON: " + sc.Text()}
					}
					lines <- m
				}
			}()
			next := func(want string) map[string]any {
				t.Helper()
				timeout := time.After(30 * time.Second)
				for {
					select {
					case m, ok := <-lines:
						if !ok {
							t.Fatalf("stdout closed before %q", want)
						}
						if m["msg"] == want {
							return m
						}
						if strings.HasPrefix(m["msg"].(string), "NOT JSON") {
							t.Fatalf("%v", m["msg"])
						}
					case <-timeout:
						t.Fatalf("no %q record", want)
					}
				}
			}
			serving := next("serving")
			getHealth(t, "http://"+serving["addr"].(string))
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			next("shutting down")
			next("stopped")
			for range lines { // drain until the child closes stdout
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("after %v: %v, want exit status 0", sig, err)
			}
		})
	}
}
