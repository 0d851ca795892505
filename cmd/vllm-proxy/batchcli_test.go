package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/vllm-proxy/vllm-proxy/sim"
)

// cli runs the command line in-process with env and returns the exit code, stdout and
// stderr.
func cli(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr syncBuffer
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	code := run(ctx, args, envOf(env), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// writeLines writes a batch input file of n lines for model and returns its path.
func writeLines(t *testing.T, n int, model string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "in.jsonl")
	if err := os.WriteFile(path, batchLines(n, model), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// slowStack starts serve in front of a simulator that takes tens of milliseconds per
// line, with 2 batch lines in flight at most, so a batch of 60 lines runs for seconds.
func slowStack(t *testing.T) string {
	t.Helper()
	backend := startSim(t, sim.Config{Model: "m", DecodeStepMs: 20})
	base, _, _ := startRun(t, "--backend", backend, "--batch-max-concurrent-requests", "2")
	return base
}

var progressRe = regexp.MustCompile(`^(batch_\S+) (\S+) \[[ =>]*\] +(\d+)/(\d+) +(\d+)%`)

// TestBatchSubmitWait: submit --wait uploads, creates, prints one progress line per
// change (stdout is not a terminal) with done counts that only grow, some between 0 and
// the total, with a rate and ETA while it runs, and writes the output file with every
// custom_id once.
func TestBatchSubmitWait(t *testing.T) {
	base := slowStack(t)
	in := writeLines(t, 60, "m")
	out := filepath.Join(t.TempDir(), "results")
	code, stdout, stderr := cli(t, map[string]string{"VLLM_PXY_URL": base},
		"batch", "submit", in, "--wait", "--output", out, "--poll-interval", "50ms", "--metadata", "team=cli")
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	var id string
	last, partial, rated := -1, 0, false
	for line := range strings.Lines(stdout) {
		m := progressRe.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		id = m[1]
		done, _ := strconv.Atoi(m[3])
		total, _ := strconv.Atoi(m[4])
		if done < last {
			t.Errorf("done went back from %d: %q", last, line)
		}
		last = done
		if m[2] == "in_progress" && done > 0 && done < total {
			partial++
			if strings.Contains(line, "/s") && strings.Contains(line, "ETA ") {
				rated = true
			}
		}
	}
	if id == "" || last != 60 || !strings.Contains(stdout, id+" completed [") {
		t.Fatalf("no progress ending at 60/60 completed:\n%s", stdout)
	}
	if partial == 0 || !rated {
		t.Errorf("no in-progress line between 0 and 60 with rate and ETA (partial lines %d):\n%s", partial, stdout)
	}
	path := filepath.Join(out, id+"_output.jsonl")
	if !strings.Contains(stdout, "wrote "+path+" (60 lines,") {
		t.Errorf("stdout does not report the output file:\n%s", stdout)
	}
	seen := customIDs(t, path)
	if len(seen) != 60 {
		t.Errorf("output has %d custom_ids, want 60", len(seen))
	}
	if _, err := os.Stat(filepath.Join(out, id+"_errors.jsonl")); !os.IsNotExist(err) {
		t.Errorf("an error file was written for a batch without failures: %v", err)
	}

	// status shows what the batch ended as, metadata included.
	code, stdout, _ = cli(t, nil, "batch", "status", id, "--url", base)
	if code != 0 || !regexp.MustCompile(`status:\s+completed`).MatchString(stdout) ||
		!regexp.MustCompile(`requests:\s+60 total, 60 completed, 0 failed`).MatchString(stdout) ||
		!regexp.MustCompile(`metadata.team:\s+cli`).MatchString(stdout) {
		t.Errorf("batch status = %d:\n%s", code, stdout)
	}
}

// customIDs reads a result file and counts each custom_id.
func customIDs(t *testing.T, path string) map[string]int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l struct {
			CustomID string `json:"custom_id"`
		}
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("%s: %q: %v", path, sc.Text(), err)
		}
		seen[l.CustomID]++
	}
	return seen
}

// TestBatchSubmitFailures: lines for an unknown model fail; submit --wait still exits 0
// for a completed batch and writes both files, the failures in the error file.
func TestBatchSubmitFailures(t *testing.T) {
	base, _, _ := startRun(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "mixed.jsonl")
	content := append(batchLines(4, "m"), []byte(`{"custom_id":"bad-1","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":"not a list"}}`+"\n")...)
	if err := os.WriteFile(in, content, 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := cli(t, nil, "batch", "submit", in, "--url", base, "-o", dir, "--poll-interval", "20ms")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	m := regexp.MustCompile(`created (batch_\S+)`).FindStringSubmatch(stdout)
	if m == nil {
		t.Fatalf("no batch id:\n%s", stdout)
	}
	if !strings.Contains(stdout, "1 failed") {
		t.Errorf("progress does not show the failed line:\n%s", stdout)
	}
	if got := customIDs(t, filepath.Join(dir, m[1]+"_output.jsonl")); len(got) != 4 {
		t.Errorf("output custom_ids = %v, want 4", got)
	}
	if got := customIDs(t, filepath.Join(dir, m[1]+"_errors.jsonl")); got["bad-1"] != 1 || len(got) != 1 {
		t.Errorf("error file custom_ids = %v, want bad-1", got)
	}
}

// TestBatchSubmitInvalid: a file that fails validation ends the batch failed; submit
// prints the validation error with its line and exits 1.
func TestBatchSubmitInvalid(t *testing.T) {
	base, _, _ := startRun(t)
	in := filepath.Join(t.TempDir(), "bad.jsonl")
	if err := os.WriteFile(in, append(batchLines(2, "m"), []byte("{not json\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, _ := cli(t, nil, "batch", "submit", in, "--url", base, "--wait", "-o", t.TempDir(), "--poll-interval", "20ms", "-L", "json")
	if code != 1 {
		t.Fatalf("exit %d, want 1\n%s", code, stdout)
	}
	if !regexp.MustCompile(`error: line 3: `).MatchString(stdout) || !strings.Contains(stdout, "ended failed") {
		t.Errorf("stdout does not show the validation error and the failure:\n%s", stdout)
	}
}

// TestBatchListCancelDownload: a batch held on a model nobody serves shows in list, is
// cancelled by cancel --wait, and download then reports that it has no files.
func TestBatchListCancelDownload(t *testing.T) {
	base, _, _ := startRun(t)
	env := map[string]string{"VLLM_PXY_URL": base}
	code, stdout, stderr := cli(t, env, "batch", "submit", writeLines(t, 3, "nobody"))
	m := regexp.MustCompile(`created (batch_\S+)`).FindStringSubmatch(stdout)
	if code != 0 || m == nil || !strings.Contains(stdout, "vllm-proxy batch status --wait "+m[1]) {
		t.Fatalf("submit without --wait = %d:\n%s\n%s", code, stdout, stderr)
	}
	id := m[1]
	waitFor(t, 10*time.Second, "the batch to start", func() bool {
		_, out, _ := cli(t, env, "batch", "status", id)
		return regexp.MustCompile(`status:\s+in_progress`).MatchString(out)
	})
	code, stdout, _ = cli(t, env, "batch", "list")
	if code != 0 || !regexp.MustCompile(`(?m)^ID\s+STATUS\s+ENDPOINT`).MatchString(stdout) ||
		!regexp.MustCompile(`(?m)^`+id+`\s+in_progress\s+/v1/chat/completions\s+0/3\s+0`).MatchString(stdout) {
		t.Errorf("batch list = %d:\n%s", code, stdout)
	}
	code, stdout, _ = cli(t, env, "batch", "cancel", id, "--wait", "--poll-interval", "20ms")
	if code != 0 || !strings.Contains(stdout, id+" cancelling\n") || !strings.Contains(stdout, id+" cancelled\n") {
		t.Errorf("batch cancel --wait = %d:\n%s", code, stdout)
	}
	dir := t.TempDir()
	code, stdout, _ = cli(t, env, "batch", "download", id, "-o", dir)
	entries, _ := os.ReadDir(dir)
	if code != 0 || len(entries) != 0 && !strings.Contains(stdout, "wrote ") {
		t.Errorf("batch download = %d, files %v:\n%s", code, entries, stdout)
	}
	// A second cancel of a cancelled batch is idempotent; of an unknown batch, a 404.
	if code, _, _ := cli(t, env, "batch", "cancel", id); code != 0 {
		t.Errorf("second cancel exit %d", code)
	}
	code, stdout, _ = cli(t, env, "batch", "status", "batch_nope", "-L", "json")
	if code != 1 || !strings.Contains(stdout, "404") {
		t.Errorf("status of an unknown batch = %d:\n%s", code, stdout)
	}
}

// TestRemoteCommandErrors: bad input is a usage error (exit 2) before anything is
// sent; an unreachable proxy is a failure (exit 1) naming the URL.
func TestRemoteCommandErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		code int
		want string
	}{
		{[]string{"batch", "submit", "/does/not/exist.jsonl"}, nil, 2, "does/not/exist.jsonl"},
		{[]string{"batch", "status"}, nil, 2, "expected \"<id>\""},
		{[]string{"batch", "list", "--timeout", "soon"}, nil, 2, "--timeout"},
		{[]string{"files", "list"}, map[string]string{"VLLM_PXY_URL": "ftp://x"}, 2, "want http://host:port"},
		{[]string{"files", "delete", "f", "--timeout=-1s"}, nil, 2, "must not be negative"},
		{[]string{"batch", "status", "b", "--wait", "--poll-interval", "0s"}, nil, 2, "--poll-interval 0s: must be positive"},
		{[]string{"batch", "list", "--limit", "0"}, nil, 2, "--limit 0: must be at least 1"},
		{[]string{"top", "-i", "0s", "--url", "x"}, nil, 2, "--interval 0s: must be positive"},
		{[]string{"files", "list", "--url", "http://127.0.0.1:1"}, nil, 1, "127.0.0.1:1"},
		{[]string{"top", "--once", "--url", "http://127.0.0.1:1"}, nil, 1, "127.0.0.1:1"},
	} {
		code, stdout, stderr := cli(t, tc.env, append(tc.args, "-L", "json")...)
		if code != tc.code || !strings.Contains(stdout+stderr, tc.want) {
			t.Errorf("%v: exit %d (want %d), output lacks %q:\n%s%s", tc.args, code, tc.code, tc.want, stdout, stderr)
		}
	}
}

// TestRemoteAPIKey: --api-key, else VLLM_PXY_API_KEY, else OPENAI_API_KEY, is sent as
// a bearer token.
func TestRemoteAPIKey(t *testing.T) {
	got := make(chan string, 8)
	srv := newRecorder(t, got)
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--api-key", "flag"}, map[string]string{"VLLM_PXY_API_KEY": "env"}, "Bearer flag"},
		{nil, map[string]string{"VLLM_PXY_API_KEY": "env", "OPENAI_API_KEY": "openai"}, "Bearer env"},
		{nil, map[string]string{"OPENAI_API_KEY": "openai"}, "Bearer openai"},
		{nil, nil, ""},
	} {
		args := append([]string{"files", "list", "--url", srv}, tc.args...)
		if code, out, _ := cli(t, tc.env, args...); code != 0 {
			t.Fatalf("%v: exit %d\n%s", args, code, out)
		}
		if h := <-got; h != tc.want {
			t.Errorf("%v %v: Authorization %q, want %q", tc.args, tc.env, h, tc.want)
		}
	}
}

// TestRemoteHelp: the help names the flags, their variables and defaults.
func TestRemoteHelp(t *testing.T) {
	code, stdout, _ := cli(t, nil, "batch", "submit", "--help")
	for _, want := range []string{"--url=URL", "VLLM_PXY_URL", "http://localhost:8010", "--wait", "--output=DIR", "--endpoint=PATH", "VLLM_PXY_API_KEY"} {
		if code != 0 || !strings.Contains(stdout, want) {
			t.Errorf("batch submit --help (exit %d) lacks %q", code, want)
		}
	}
}

// newRecorder serves an empty file list over loopback and sends each request's
// Authorization header to got.
func newRecorder(t *testing.T, got chan<- string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("Authorization")
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"object":"list","data":[],"first_id":null,"last_id":null,"has_more":false}`))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestBatchSubmitInterrupted: Ctrl-C while submit --wait follows a batch stops the
// command (exit 1, saying how to follow it again) and leaves the batch running.
func TestBatchSubmitInterrupted(t *testing.T) {
	base, _, _ := startRun(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out syncBuffer
	done := make(chan int, 1)
	args := []string{"batch", "submit", writeLines(t, 3, "nobody"), "--url", base, "--wait", "--poll-interval", "20ms", "-L", "json"}
	go func() { done <- run(ctx, args, envOf(nil), &out, &out) }()
	waitFor(t, 10*time.Second, "the batch in progress", func() bool { return strings.Contains(out.String(), " in_progress [") })
	cancel()
	var code int
	select {
	case code = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("submit --wait did not return after cancel")
	}
	id := regexp.MustCompile(`created (batch_\S+)`).FindStringSubmatch(out.String())
	if code != 1 || id == nil || !strings.Contains(out.String(), "stopped following batch "+id[1]+"; it goes on (vllm-proxy batch status --wait "+id[1]+")") {
		t.Fatalf("exit %d:\n%s", code, out.String())
	}
	if _, stdout, _ := cli(t, nil, "batch", "status", id[1], "--url", base); !regexp.MustCompile(`status:\s+in_progress`).MatchString(stdout) {
		t.Errorf("the batch did not go on:\n%s", stdout)
	}
}

// TestBatchSubmitTerminal runs submit --wait in a child process on a pseudo-terminal:
// the progress line is redrawn in place (carriage return, erase to end of line) rather
// than printed once per change, and ends with the completed line and a newline.
func TestBatchSubmitTerminal(t *testing.T) {
	base := slowStack(t)
	in := writeLines(t, 40, "m")
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 24, Cols: 120}); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "batch", "submit", in, "--url", base, "--wait", "-o", t.TempDir(), "--poll-interval", "50ms")
	cmd.Env = []string{runMainEnv + "=1", "PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TERM=xterm"}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var screen syncBuffer
	readDone := make(chan struct{})
	go func() { defer close(readDone); _, _ = io.Copy(&screen, ptmx) }()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("submit --wait: %v\n%q", err, screen.String())
		}
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("submit --wait still running after 60 s: %q (%v)", screen.String(), <-exited)
	}
	_ = tty.Close()
	<-readDone
	out := screen.String()
	redraws := regexp.MustCompile(`\rbatch_\S+ \S+ \[[ =>]*\][^\r\n]*\x1b\[K`).FindAllStringIndex(out, -1)
	done := regexp.MustCompile(`\rbatch_\S+ completed \[=+\] 40/40 100%\x1b\[K\r?\n`).FindStringIndex(out)
	switch {
	case len(redraws) < 3:
		t.Errorf("%d in-place redraws of the progress line, want several:\n%q", len(redraws), out)
	case done == nil:
		t.Errorf("the progress does not end with the completed line and a newline:\n%q", out)
	case strings.Contains(out[redraws[0][0]:done[0]], "\n"):
		t.Errorf("the progress line was not redrawn in place (a newline between redraws):\n%q", out[redraws[0][0]:done[1]])
	}
}
