package batch

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vllm-proxy/vllm-proxy/sim"
)

// gatedDispatcher lets the first `free` calls through and holds later ones until release
// is closed (or their ctx ends).
type gatedDispatcher struct {
	inner   Dispatcher
	mu      sync.Mutex
	free    int
	release chan struct{}
}

func (g *gatedDispatcher) Dispatch(ctx context.Context, req Request) (Response, error) {
	g.mu.Lock()
	pass := g.free > 0
	g.free--
	g.mu.Unlock()
	if !pass {
		select {
		case <-g.release:
		case <-ctx.Done():
			return Response{}, ctx.Err()
		}
	}
	return g.inner.Dispatch(ctx, req)
}

// flakyDispatcher fails the first attempt of every line with ErrRetryable (always when
// always is set).
type flakyDispatcher struct {
	inner  Dispatcher
	always bool
	mu     sync.Mutex
	seen   map[string]int
}

func (f *flakyDispatcher) Dispatch(ctx context.Context, req Request) (Response, error) {
	f.mu.Lock()
	f.seen[string(req.Body)]++
	n := f.seen[string(req.Body)]
	f.mu.Unlock()
	if f.always || n == 1 {
		return Response{Status: 503, Body: []byte(`{"error":{"message":"overloaded","type":"server_error","param":null,"code":null}}`)}, ErrRetryable
	}
	return f.inner.Dispatch(ctx, req)
}

func checkAll(t *testing.T, res map[string]outputLine, n int) {
	t.Helper()
	if len(res) != n {
		t.Fatalf("%d result lines, want %d", len(res), n)
	}
	for i := range n {
		if _, ok := res[fmt.Sprintf("req-%d", i)]; !ok {
			t.Fatalf("req-%d missing from the results", i)
		}
	}
}

// TestBatchMixedAndAllFail is checklist 11 and 12.
func TestBatchMixedAndAllFail(t *testing.T) {
	sm := startSim(t, sim.Config{Instant: true, MaxModelLen: 1024})
	r := startReplica(t, testConfig("r1"), memoryStores(), newHTTPDispatcher(sm.URL()), true)
	// Every third line asks for more tokens than the context holds.
	var in bytes.Buffer
	const n = 30
	for i := range n {
		mt := 5
		if i%3 == 0 {
			mt = 5000
		}
		fmt.Fprintf(&in, `{"custom_id":"req-%d","method":"POST","url":"/v1/chat/completions","body":{"model":"m1","messages":[{"role":"user","content":"x"}],"max_tokens":%d}}`+"\n", i, mt)
	}
	f := upload(t, r.srv.URL, in.Bytes())
	b := waitBatch(t, r.srv.URL, createBatch(t, r.srv.URL, f.ID, chatURL).ID, 20*time.Second, terminal)
	if b.Status != "completed" || b.RequestCounts != (requestCounts{Total: n, Completed: 20, Failed: 10}) || b.OutputFileID == nil || b.ErrorFileID == nil {
		t.Fatalf("mixed batch %s %+v", b.Status, b.RequestCounts)
	}
	// usage sums the successful lines only (5 output tokens each).
	if b.Usage == nil || b.Usage.OutputTokens != 5*20 || b.Usage.TotalTokens != b.Usage.InputTokens+b.Usage.OutputTokens {
		t.Fatalf("mixed batch usage %+v", b.Usage)
	}
	out := map[string]outputLine{}
	resultLines(t, content(t, r.srv.URL, *b.ErrorFileID), out)
	if len(out) != 10 {
		t.Fatalf("%d error lines", len(out))
	}
	for id, o := range out {
		if o.Response == nil || o.Response.StatusCode != 400 || o.Error != nil || !bytes.Contains(o.Response.Body, []byte(`"error"`)) {
			t.Fatalf("%s: %+v", id, o)
		}
	}
	checkAll(t, allResults(t, r.srv.URL, b), n)
	var ef fileObject
	do(t, http.MethodGet, r.srv.URL+"/v1/files/"+*b.ErrorFileID, nil, "", &ef)
	if ef.Purpose != "batch_output" || *ef.ExpiresAt != ef.CreatedAt+30*86400 {
		t.Fatalf("error file %+v", ef)
	}

	// All lines fail: completed, no output file, an error file.
	f = upload(t, r.srv.URL, chatLines(5, "m1", 5000))
	b = waitBatch(t, r.srv.URL, createBatch(t, r.srv.URL, f.ID, chatURL).ID, 20*time.Second, terminal)
	if b.Status != "completed" || b.OutputFileID != nil || b.ErrorFileID == nil || b.RequestCounts != (requestCounts{Total: 5, Failed: 5}) {
		t.Fatalf("all-fail batch %+v", b)
	}
	// 14: cancelling a completed batch is a conflict.
	st, raw := rawDo(t, http.MethodPost, r.srv.URL+"/v1/batches/"+b.ID+"/cancel", nil, "")
	if st != http.StatusConflict || !strings.Contains(string(raw), "invalid_request_error") {
		t.Fatalf("cancel completed: %d %s", st, raw)
	}
}

// TestBatchValidationFailure is checklist 9 through the API.
func TestBatchValidationFailure(t *testing.T) {
	r := startReplica(t, testConfig("r1"), memoryStores(), newHTTPDispatcher("http://127.0.0.1:1"), true)
	lines := strings.Split(strings.TrimSpace(string(chatLines(8, "m1", 5))), "\n")
	lines[6] = `{"custom_id": "broken",`
	f := upload(t, r.srv.URL, []byte(strings.Join(lines, "\n")+"\n"))
	b := waitBatch(t, r.srv.URL, createBatch(t, r.srv.URL, f.ID, chatURL).ID, 10*time.Second, terminal)
	if b.Status != "failed" || b.FailedAt == nil || b.Errors == nil || b.Errors.Object != "list" || len(b.Errors.Data) != 1 ||
		b.Errors.Data[0].Code != "invalid_json_line" || *b.Errors.Data[0].Line != 7 || b.OutputFileID != nil || b.ErrorFileID != nil {
		t.Fatalf("failed batch %+v errors %+v", b, b.Errors)
	}
	st, _ := rawDo(t, http.MethodPost, r.srv.URL+"/v1/batches/"+b.ID+"/cancel", nil, "")
	if st != http.StatusConflict {
		t.Fatalf("cancel failed batch: %d", st)
	}
}

// TestBatchCancel is checklist 13 and 14: cancelling at once; in-flight lines finish,
// never-sent lines are batch_cancelled and not counted; second cancel → 200.
func TestBatchCancel(t *testing.T) {
	sm := startSim(t, sim.Config{Instant: true})
	gd := &gatedDispatcher{inner: newHTTPDispatcher(sm.URL()), free: 10, release: make(chan struct{})}
	r := startReplica(t, testConfig("r1"), memoryStores(), gd, true)
	const n = 200
	f := upload(t, r.srv.URL, chatLines(n, "m1", 5))
	b := createBatch(t, r.srv.URL, f.ID, chatURL)
	waitBatch(t, r.srv.URL, b.ID, 10*time.Second, func(b batchObject) bool { return b.RequestCounts.Completed == 10 })
	var c batchObject
	if st := do(t, http.MethodPost, r.srv.URL+"/v1/batches/"+b.ID+"/cancel", nil, "", &c); st != 200 || c.Status != "cancelling" || c.CancellingAt == nil {
		t.Fatalf("cancel: %d %+v", st, c)
	}
	close(gd.release)
	b = waitBatch(t, r.srv.URL, b.ID, 10*time.Second, terminal)
	if b.Status != "cancelled" || b.CancelledAt == nil || b.RequestCounts.Failed != 0 || b.RequestCounts.Total != n ||
		b.RequestCounts.Completed < 10 || b.RequestCounts.Completed >= n {
		t.Fatalf("cancelled batch %+v counts %+v", b, b.RequestCounts)
	}
	res := allResults(t, r.srv.URL, b)
	checkAll(t, res, n)
	var ok, cancelled int64
	for id, o := range res {
		switch {
		case o.Response != nil && o.Response.StatusCode == 200:
			ok++
		case o.Response == nil && o.Error != nil && o.Error.Code == "batch_cancelled":
			cancelled++
		default:
			t.Fatalf("%s: %+v", id, o)
		}
	}
	if ok != b.RequestCounts.Completed || ok+cancelled != n {
		t.Fatalf("%d ok + %d cancelled lines, counts %+v", ok, cancelled, b.RequestCounts)
	}
	if st := do(t, http.MethodPost, r.srv.URL+"/v1/batches/"+b.ID+"/cancel", nil, "", &c); st != 200 || c.Status != "cancelled" {
		t.Fatalf("second cancel: %d %s", st, c.Status)
	}
}

// TestBatchCancelWhileValidating: no lines, no files.
func TestBatchCancelWhileValidating(t *testing.T) {
	s := memoryStores()
	a := startReplica(t, testConfig("a"), s, nil, false) // API only: nothing validates yet
	f := upload(t, a.srv.URL, chatLines(3, "m1", 5))
	b := createBatch(t, a.srv.URL, f.ID, chatURL)
	var c batchObject
	if st := do(t, http.MethodPost, a.srv.URL+"/v1/batches/"+b.ID+"/cancel", nil, "", &c); st != 200 || c.Status != "cancelling" {
		t.Fatalf("cancel: %d %+v", st, c)
	}
	startReplica(t, testConfig("w"), s, newHTTPDispatcher("http://127.0.0.1:1"), true)
	b = waitBatch(t, a.srv.URL, b.ID, 10*time.Second, terminal)
	if b.Status != "cancelled" || b.OutputFileID != nil || b.ErrorFileID != nil || b.InProgressAt != nil {
		t.Fatalf("batch %+v", b)
	}
}

// TestBatchExpiry is checklist 15, with the completion window shortened by the config knob.
func TestBatchExpiry(t *testing.T) {
	sm := startSim(t, sim.Config{Instant: true})
	gd := &gatedDispatcher{inner: newHTTPDispatcher(sm.URL()), free: 6, release: make(chan struct{})}
	cfg := testConfig("r1")
	cfg.CompletionWindow = 1500 * time.Millisecond
	r := startReplica(t, cfg, memoryStores(), gd, true)
	const n = 40
	f := upload(t, r.srv.URL, chatLines(n, "m1", 5))
	b := createBatch(t, r.srv.URL, f.ID, chatURL)
	if *b.ExpiresAt > b.CreatedAt+2 {
		t.Fatalf("expires_at %d for created_at %d", *b.ExpiresAt, b.CreatedAt)
	}
	waitBatch(t, r.srv.URL, b.ID, 10*time.Second, func(b batchObject) bool { return b.RequestCounts.Completed == 6 })
	for time.Now().Unix() < *b.ExpiresAt { // held lines wait for the window to end
		time.Sleep(20 * time.Millisecond)
	}
	close(gd.release)
	b = waitBatch(t, r.srv.URL, b.ID, 10*time.Second, terminal)
	if b.Status != "expired" || b.ExpiredAt == nil || b.RequestCounts.Total != n || b.RequestCounts.Completed+b.RequestCounts.Failed != n {
		t.Fatalf("expired batch %+v counts %+v", b.Status, b.RequestCounts)
	}
	res := allResults(t, r.srv.URL, b)
	checkAll(t, res, n)
	var expired int64
	for id, o := range res {
		if o.Error != nil {
			if o.Error.Code != "batch_expired" || o.Response != nil {
				t.Fatalf("%s: %+v", id, o)
			}
			expired++
		}
	}
	if expired != b.RequestCounts.Failed || expired == 0 {
		t.Fatalf("%d expired lines, counts %+v", expired, b.RequestCounts)
	}
}

// TestBatchRetriesAndHeldModel: retryable failures are retried, then recorded as 503; a
// model nobody serves is held for ModelWait, then recorded with a 404 body.
func TestBatchRetriesAndHeldModel(t *testing.T) {
	sm := startSim(t, sim.Config{Instant: true})
	fd := &flakyDispatcher{inner: newHTTPDispatcher(sm.URL()), seen: map[string]int{}}
	r := startReplica(t, testConfig("r1"), memoryStores(), fd, true)
	var in bytes.Buffer
	for i := range 12 {
		fmt.Fprintf(&in, `{"custom_id":"req-%d","method":"POST","url":"/v1/chat/completions","body":{"model":"m1","messages":[{"role":"user","content":"line %d"}],"max_tokens":5}}`+"\n", i, i)
	}
	f := upload(t, r.srv.URL, in.Bytes())
	b := waitBatch(t, r.srv.URL, createBatch(t, r.srv.URL, f.ID, chatURL).ID, 20*time.Second, terminal)
	if b.Status != "completed" || b.RequestCounts != (requestCounts{Total: 12, Completed: 12}) || len(fd.seen) != 12 {
		t.Fatalf("flaky batch %+v", b.RequestCounts)
	}
	for body, n := range fd.seen {
		if n != 2 {
			t.Fatalf("line sent %d times: %s", n, body)
		}
	}

	always := &flakyDispatcher{always: true, seen: map[string]int{}}
	r2 := startReplica(t, testConfig("r2"), memoryStores(), always, true)
	f = upload(t, r2.srv.URL, chatLines(2, "m1", 5))
	b = waitBatch(t, r2.srv.URL, createBatch(t, r2.srv.URL, f.ID, chatURL).ID, 20*time.Second, terminal)
	res := allResults(t, r2.srv.URL, b)
	if b.RequestCounts.Failed != 2 || res["req-0"].Response.StatusCode != 503 {
		t.Fatalf("always-503 batch %+v %+v", b.RequestCounts, res["req-0"])
	}
	for _, n := range always.seen {
		if n != 3 {
			t.Fatalf("retryable line tried %d times, want RetryAttempts=3", n)
		}
	}

	r3 := startReplica(t, testConfig("r3"), memoryStores(), newHTTPDispatcher(sm.URL()), true)
	f = upload(t, r3.srv.URL, chatLines(3, "no-such-model", 5))
	b = waitBatch(t, r3.srv.URL, createBatch(t, r3.srv.URL, f.ID, chatURL).ID, 20*time.Second, terminal)
	res = allResults(t, r3.srv.URL, b)
	if b.Status != "completed" || b.RequestCounts.Failed != 3 || res["req-1"].Response.StatusCode != 404 || res["req-1"].Error != nil {
		t.Fatalf("unknown model batch %+v %+v", b.RequestCounts, res["req-1"])
	}
}
