package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/vllm-proxy/vllm-proxy/sim"
	"github.com/vllm-proxy/vllm-proxy/state/statetest"
)

// batchLines is a JSONL batch input of n chat lines for model.
func batchLines(n int, model string) []byte {
	var b bytes.Buffer
	for i := range n {
		fmt.Fprintf(&b, `{"custom_id":"req-%d","method":"POST","url":"/v1/chat/completions","body":{"model":%q,"messages":[{"role":"user","content":"line %d"}],"max_tokens":3}}`+"\n", i, model, i)
	}
	return b.Bytes()
}

// waitFor polls cond every 20ms until it holds or the deadline passes.
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

// get returns the status and body of GET url.
func get(t *testing.T, url string) (int, string) {
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
	return resp.StatusCode, string(b)
}

// TestServeFullStack runs serve on a real Redis in front of two simulators and drives it
// with the official OpenAI SDK: interactive chat, the merged model list, the metrics
// page, and a full Files and Batches cycle whose lines the replica's own workers execute
// through the same routing (class batch).
func TestServeFullStack(t *testing.T) {
	rs := statetest.StartRedis(t, statetest.Options{})
	a := startSim(t, sim.Config{Model: "m1", Instant: true})
	b := startSim(t, sim.Config{Model: "m2", Instant: true})
	base, _, stop := startRun(t, "-R", rs.URL, "--backend", a, "--backend", b)
	defer stop()

	c := openai.NewClient(option.WithBaseURL(base+"/v1"), option.WithAPIKey("k"), option.WithMaxRetries(0))
	ctx := t.Context()
	models, err := c.Models.List(ctx)
	if err != nil || len(models.Data) != 2 {
		t.Fatalf("models: %v %+v", err, models)
	}
	chat, err := c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model: "m2", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}, MaxTokens: openai.Int(4),
	})
	if err != nil || chat.Model != "m2" || chat.Usage.CompletionTokens != 4 {
		t.Fatalf("chat: %v %+v", err, chat)
	}

	// Files: create, retrieve, list (auto-paging), content, and later delete.
	const n = 40
	input := batchLines(n, "m1")
	f, err := c.Files.New(ctx, openai.FileNewParams{File: openai.File(bytes.NewReader(input), "in.jsonl", "application/jsonl"), Purpose: openai.FilePurposeBatch})
	if err != nil || f.Bytes != int64(len(input)) || f.Purpose != "batch" {
		t.Fatalf("files.create: %v %+v", err, f)
	}
	if got, err := c.Files.Get(ctx, f.ID); err != nil || got.ID != f.ID || got.Filename != "in.jsonl" {
		t.Fatalf("files.retrieve: %v %+v", err, got)
	}
	found := false
	for it := c.Files.ListAutoPaging(ctx, openai.FileListParams{Limit: openai.Int(1)}); it.Next(); {
		found = found || it.Current().ID == f.ID
	}
	if !found {
		t.Fatal("files.list does not show the upload")
	}
	resp, err := c.Files.Content(ctx, f.ID)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if !bytes.Equal(body, input) {
		t.Fatal("files.content differs from the upload")
	}

	// Batches: create, retrieve until done, list, then the output holds every line once.
	bt, err := c.Batches.New(ctx, openai.BatchNewParams{InputFileID: f.ID, Endpoint: openai.BatchNewParamsEndpointV1ChatCompletions, CompletionWindow: openai.BatchNewParamsCompletionWindow24h})
	if err != nil || bt.Status != openai.BatchStatusValidating {
		t.Fatalf("batches.create: %v %+v", err, bt)
	}
	waitFor(t, 30*time.Second, "the batch to complete", func() bool {
		bt, err = c.Batches.Get(ctx, bt.ID)
		return err == nil && bt.Status == openai.BatchStatusCompleted
	})
	if bt.RequestCounts.Total != n || bt.RequestCounts.Completed != n || bt.OutputFileID == "" {
		t.Fatalf("batch %+v", bt.RequestCounts)
	}
	listed := false
	for it := c.Batches.ListAutoPaging(ctx, openai.BatchListParams{Limit: openai.Int(1)}); it.Next(); {
		listed = listed || it.Current().ID == bt.ID
	}
	if !listed {
		t.Fatal("batches.list does not show the batch")
	}
	out, err := c.Files.Content(ctx, bt.OutputFileID)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	sc := bufio.NewScanner(out.Body)
	for sc.Scan() {
		var line struct {
			CustomID string `json:"custom_id"`
			Response struct {
				StatusCode int `json:"status_code"`
				Body       struct {
					Model string `json:"model"`
				} `json:"body"`
			} `json:"response"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil || line.Response.StatusCode != 200 || line.Response.Body.Model != "m1" {
			t.Fatalf("output line %q: %v", sc.Text(), err)
		}
		seen[line.CustomID]++
	}
	_ = out.Body.Close()
	if len(seen) != n {
		t.Fatalf("output holds %d custom_ids, want %d", len(seen), n)
	}
	if d, err := c.Files.Delete(ctx, f.ID); err != nil || !d.Deleted {
		t.Fatalf("files.delete: %v %+v", err, d)
	}

	// Cancel: a batch on a model nobody serves is held, then cancelled.
	f2, err := c.Files.New(ctx, openai.FileNewParams{File: openai.File(bytes.NewReader(batchLines(3, "nobody")), "held.jsonl", "application/jsonl"), Purpose: openai.FilePurposeBatch})
	if err != nil {
		t.Fatal(err)
	}
	held, err := c.Batches.New(ctx, openai.BatchNewParams{InputFileID: f2.ID, Endpoint: openai.BatchNewParamsEndpointV1ChatCompletions, CompletionWindow: openai.BatchNewParamsCompletionWindow24h})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the held batch to start", func() bool {
		held, err = c.Batches.Get(ctx, held.ID)
		return err == nil && held.Status == openai.BatchStatusInProgress
	})
	if held, err = c.Batches.Cancel(ctx, held.ID); err != nil || (held.Status != openai.BatchStatusCancelling && held.Status != openai.BatchStatusCancelled) {
		t.Fatalf("batches.cancel: %v %+v", err, held)
	}
	waitFor(t, 10*time.Second, "the batch to be cancelled", func() bool {
		held, err = c.Batches.Get(ctx, held.ID)
		return err == nil && held.Status == openai.BatchStatusCancelled
	})

	// The dashboard and its JSON are mounted.
	if code, page := get(t, base+"/ui/"); code != 200 || !strings.Contains(page, "<html") {
		t.Errorf("/ui/ = %d", code)
	}
	if code, js := get(t, base+"/ui/api/backends"); code != 200 || !strings.Contains(js, a) || !strings.Contains(js, `"policy":"cache_aware"`) {
		t.Errorf("/ui/api/backends = %d %s", code, js)
	}

	// Both classes went through the proxy's counters; the metrics page shows them.
	code, metrics := get(t, base+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics = %d", code)
	}
	for _, want := range []string{`class="batch"`, `class="interactive"`, "vllm_proxy_backend_up", "vllm_proxy_batch_", "go_goroutines", `vllm_proxy_routing_decisions_total{policy="cache_aware"`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestWorkerCommand: an API-only serve replica (--batch-workers=false) accepts a batch
// and a separate `vllm-proxy worker` on the same Redis executes it.
func TestWorkerCommand(t *testing.T) {
	rs := statetest.StartRedis(t, statetest.Options{})
	a := startSim(t, sim.Config{Model: "m1", Instant: true})
	api, _, stopAPI := startRun(t, "-R", rs.URL, "--backend", a, "--batch-workers=false")
	defer stopAPI()
	c := openai.NewClient(option.WithBaseURL(api+"/v1"), option.WithAPIKey("k"), option.WithMaxRetries(0))
	ctx := t.Context()
	f, err := c.Files.New(ctx, openai.FileNewParams{File: openai.File(bytes.NewReader(batchLines(10, "m1")), "in.jsonl", "application/jsonl"), Purpose: openai.FilePurposeBatch})
	if err != nil {
		t.Fatal(err)
	}
	bt, err := c.Batches.New(ctx, openai.BatchNewParams{InputFileID: f.ID, Endpoint: openai.BatchNewParamsEndpointV1ChatCompletions, CompletionWindow: openai.BatchNewParamsCompletionWindow24h})
	if err != nil {
		t.Fatal(err)
	}
	worker, _, stopWorker := startCmd(t, "worker", "-R", rs.URL, "--backend", a)
	defer stopWorker()
	waitFor(t, 30*time.Second, "the worker to finish the batch", func() bool {
		got, err := c.Batches.Get(ctx, bt.ID)
		return err == nil && got.Status == openai.BatchStatusCompleted && got.RequestCounts.Completed == 10
	})
	// The lines went through the worker's proxy path, none through the API replica's.
	batchSeries := regexp.MustCompile(`(?m)^vllm_proxy_requests_total\{[^}]*class="batch"[^}]*\} 10$`)
	if _, m := get(t, api+"/metrics"); strings.Contains(m, "vllm_proxy_requests_total{") && batchSeries.MatchString(m) {
		t.Error("the API-only replica dispatched batch lines")
	}
	if _, m := get(t, worker+"/metrics"); !batchSeries.MatchString(m) {
		t.Errorf("the worker's metrics do not count 10 batch lines:\n%s", m)
	}
	if code, _ := get(t, worker+"/v1/models"); code != http.StatusNotFound {
		t.Errorf("worker serves the OpenAI API: GET /v1/models = %d", code)
	}
}

// modelIDs returns the ids GET /v1/models lists.
func modelIDs(t *testing.T, base string) []string {
	t.Helper()
	code, body := get(t, base+"/v1/models")
	if code != 200 {
		t.Fatalf("/v1/models = %d %s", code, body)
	}
	var list struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range list.Data {
		ids = append(ids, m.ID)
	}
	return ids
}

// TestHotReload: serve --config picks up an edited file (a backend added, then removed)
// and SIGHUP, without a restart; a broken file is rejected with one error record and the
// running configuration stays.
func TestHotReload(t *testing.T) {
	a := startSim(t, sim.Config{Model: "m1", Instant: true})
	b := startSim(t, sim.Config{Model: "m2", Instant: true})
	file := writeFile(t, "proxy.yaml", "backends:\n  - url: "+a+"\n")
	base, out, stop := startRun(t, "-L", "json", "--config", file)
	defer stop()
	if ids := modelIDs(t, base); !slices.Equal(ids, []string{"m1"}) {
		t.Fatalf("models before reload = %v", ids)
	}
	count := func(msg string) int { return strings.Count(out.String(), `"msg":"`+msg+`"`) }

	if err := writeFileAt(file, "backends:\n  - url: "+a+"\n  - url: "+b+"\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "m2 to be served after the file changed", func() bool {
		return slices.Contains(modelIDs(t, base), "m2")
	})
	chat := func(model string) int {
		resp, err := http.Post(base+"/v1/chat/completions", "application/json",
			strings.NewReader(`{"model":"`+model+`","messages":[{"role":"user","content":"hi"}],"max_tokens":2}`))
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	if code := chat("m2"); code != 200 {
		t.Fatalf("chat on the added backend = %d", code)
	}

	if err := writeFileAt(file, "backends:\n  - url: "+a+"\n  - url: 12\nrouting:\n  policy: nope\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the broken file to be rejected", func() bool { return count("config reload rejected; the running configuration stays") == 1 })
	if code := chat("m2"); code != 200 {
		t.Fatalf("chat after a rejected reload = %d", code)
	}
	if !strings.Contains(out.String(), "proxy.yaml:3:10: backends[1].url") {
		t.Errorf("the rejection does not name the bad key:\n%s", out.String())
	}

	if err := writeFileAt(file, "backends:\n  - url: "+a+"\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "m2 to leave after its backend was removed", func() bool {
		return !slices.Contains(modelIDs(t, base), "m2")
	})
	if code := chat("m2"); code != http.StatusNotFound {
		t.Fatalf("chat on a removed model = %d, want 404", code)
	}
	if n := count("config reload rejected; the running configuration stays"); n != 1 {
		t.Errorf("%d rejection records, want 1", n)
	}

	before := strings.Count(out.String(), `"trigger":"SIGHUP"`)
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "a SIGHUP reload", func() bool { return strings.Count(out.String(), `"trigger":"SIGHUP"`) > before })
}

// TestDemo runs `vllm-proxy demo` and the curl line it prints, as pasted, through sh.
func TestDemo(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatalf("curl is needed to check the demo's printed command: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"-q", "demo", "--listen", "127.0.0.1:0", "--time-scale", "100"}, envOf(nil), stdout, stderr)
	}()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("demo exited %d: %s", code, stderr.String())
		}
	}()
	var cmdLine string
	waitFor(t, 20*time.Second, "the demo's curl line", func() bool {
		s := stdout.String()
		i := strings.Index(s, "  curl ")
		j := strings.Index(s, "Then look at")
		if i < 0 || j < i {
			return false
		}
		cmdLine = strings.TrimSpace(s[i:j])
		return true
	})
	base := regexp.MustCompile(`http://localhost:\d+`).FindString(cmdLine)
	waitFor(t, 20*time.Second, "the demo's backends to be healthy", func() bool {
		code, _ := get(t, strings.Replace(base, "localhost", "127.0.0.1", 1)+"/health")
		return code == 200
	})
	out, err := exec.CommandContext(t.Context(), "sh", "-c", cmdLine).CombinedOutput()
	if err != nil {
		t.Fatalf("the printed command failed: %v\n%s\n%s", err, cmdLine, out)
	}
	var resp struct {
		Model   string `json:"model"`
		Choices []struct {
			Message struct {
				Content string `json:"content"`
			} `json:"message"`
		} `json:"choices"`
	}
	if err := json.Unmarshal(out, &resp); err != nil || resp.Model != "meta-llama/Llama-3.1-8B-Instruct" || len(resp.Choices) != 1 || resp.Choices[0].Message.Content == "" {
		t.Fatalf("the printed command answered %s (%v)", out, err)
	}
	if ids := modelIDs(t, strings.Replace(base, "localhost", "127.0.0.1", 1)); len(ids) != 2 {
		t.Errorf("demo serves %v, want two models", ids)
	}
}

// TestPriorityWiring: --chat-completion-priority and --batch-priority reach a backend that
// runs priority scheduling (detected), while one running fcfs sees only priority 0 beyond
// the one detection probe.
func TestPriorityWiring(t *testing.T) {
	prio := startSimServer(t, sim.Config{Model: "m1", Instant: true, SchedulingPolicy: sim.PolicyPriority})
	fcfs := startSimServer(t, sim.Config{Model: "m1", Instant: true})
	base, _, stop := startRun(t, "--backend", prio.URL(), "--backend", fcfs.URL(), "--policy", "round_robin",
		"--chat-completion-priority", "3", "--batch-priority", "7")
	defer stop()
	c := openai.NewClient(option.WithBaseURL(base+"/v1"), option.WithAPIKey("k"), option.WithMaxRetries(0))
	ctx := t.Context()
	// Wait until priority detection has classified both backends.
	waitFor(t, 10*time.Second, "priority detection", func() bool {
		return prio.Snapshot().ReceivedByPriority[1] > 0 // the one-token probe
	})
	for range 8 {
		if _, err := c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
			Model: "m1", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}, MaxTokens: openai.Int(2),
		}); err != nil {
			t.Fatal(err)
		}
	}
	f, err := c.Files.New(ctx, openai.FileNewParams{File: openai.File(bytes.NewReader(batchLines(8, "m1")), "in.jsonl", "application/jsonl"), Purpose: openai.FilePurposeBatch})
	if err != nil {
		t.Fatal(err)
	}
	bt, err := c.Batches.New(ctx, openai.BatchNewParams{InputFileID: f.ID, Endpoint: openai.BatchNewParamsEndpointV1ChatCompletions, CompletionWindow: openai.BatchNewParamsCompletionWindow24h})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the batch", func() bool {
		got, err := c.Batches.Get(ctx, bt.ID)
		return err == nil && got.Status == openai.BatchStatusCompleted && got.RequestCounts.Completed == 8
	})
	p, q := prio.Snapshot().ReceivedByPriority, fcfs.Snapshot().ReceivedByPriority
	if p[3] == 0 || p[7] == 0 {
		t.Errorf("the priority backend received %v, want interactive at 3 and batch at 7", p)
	}
	// Detection itself is one priority-1 probe (a 400 from an fcfs backend says what it
	// runs); traffic never carries a non-zero priority there.
	for v, n := range q {
		if v != 0 && n > 0 && (v != 1 || n > 1) {
			t.Errorf("the fcfs backend received %d requests at priority %d", n, v)
		}
	}
}

// TestServeEvictsBatchForInteractive runs serve's defaults end to end: a batch submitted
// through the Batches API fills a priority backend's batch room (capacity 8 − reserve 2),
// then interactive requests arrive; the proxy evicts running batch requests for them
// (vllm_proxy_backpressure_evictions_total), the evicted lines run again, and the batch
// completes with every custom_id exactly once.
func TestServeEvictsBatchForInteractive(t *testing.T) {
	s := startSimServer(t, sim.Config{Model: "m1", MaxNumSeqs: 8, SchedulingPolicy: sim.PolicyPriority, TimeScale: 5})
	base, _, stop := startRun(t, "--backend", s.URL())
	defer stop()
	c := openai.NewClient(option.WithBaseURL(base+"/v1"), option.WithAPIKey("k"), option.WithMaxRetries(0))
	ctx := t.Context()
	const n = 16
	var in bytes.Buffer
	for i := range n { // ≈ 1 s each at time scale 5
		fmt.Fprintf(&in, `{"custom_id":"req-%d","method":"POST","url":"/v1/chat/completions","body":{"model":"m1","messages":[{"role":"user","content":"line %d"}],"max_tokens":400,"ignore_eos":true}}`+"\n", i, i)
	}
	f, err := c.Files.New(ctx, openai.FileNewParams{File: openai.File(&in, "in.jsonl", "application/jsonl"), Purpose: openai.FilePurposeBatch})
	if err != nil {
		t.Fatal(err)
	}
	bt, err := c.Batches.New(ctx, openai.BatchNewParams{InputFileID: f.ID, Endpoint: openai.BatchNewParamsEndpointV1ChatCompletions, CompletionWindow: openai.BatchNewParamsCompletionWindow24h})
	if err != nil {
		t.Fatal(err)
	}
	batchRunning := func() int { return s.Snapshot().RunningByPriority[10] }
	waitFor(t, 20*time.Second, "batch to fill its room (6 of 8 slots)", func() bool { return batchRunning() == 6 })
	done := make(chan error, 3)
	for range 3 {
		go func() {
			_, err := c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
				Model: "m1", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}, MaxTokens: openai.Int(20),
			})
			done <- err
		}()
	}
	for range 3 {
		if err := <-done; err != nil {
			t.Fatalf("interactive request: %v", err)
		}
	}
	_, metrics := get(t, base+"/metrics")
	m := regexp.MustCompile(`(?m)^vllm_proxy_backpressure_evictions_total\{[^}]*\} (\d+)`).FindStringSubmatch(metrics)
	if m == nil || m[1] == "0" {
		t.Fatalf("no eviction counted for 3 interactive requests on a backend batch filled: %v", m)
	}
	waitFor(t, 60*time.Second, "the batch to complete", func() bool {
		bt, err = c.Batches.Get(ctx, bt.ID)
		return err == nil && bt.Status == openai.BatchStatusCompleted
	})
	if bt.RequestCounts.Total != n || bt.RequestCounts.Completed != n || bt.RequestCounts.Failed != 0 {
		t.Fatalf("batch counts %+v", bt.RequestCounts)
	}
	out, err := c.Files.Content(ctx, bt.OutputFileID)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Body.Close()
	seen := map[string]int{}
	sc := bufio.NewScanner(out.Body)
	for sc.Scan() {
		var line struct {
			CustomID string `json:"custom_id"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("output line %q: %v", sc.Text(), err)
		}
		seen[line.CustomID]++
	}
	for i := range n {
		if id := fmt.Sprintf("req-%d", i); seen[id] != 1 {
			t.Errorf("%s appears %d times in the output", id, seen[id])
		}
	}
	if got := s.Snapshot().ReceivedByPriority[10]; got <= n {
		t.Errorf("the backend received %d batch requests for %d lines: none was evicted and sent again", got, n)
	}
}
