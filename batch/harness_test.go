package batch

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vllm-proxy/vllm-proxy/sim"
	"github.com/vllm-proxy/vllm-proxy/state"
	"github.com/vllm-proxy/vllm-proxy/state/statetest"
)

// httpDispatcher is the test Dispatcher: it POSTs each line over real loopback HTTP to a
// backend (the simulator) and maps statuses the way the cmd adapter does.
type httpDispatcher struct {
	base   func() string
	client *http.Client
	calls  atomic.Int64
}

func newHTTPDispatcher(base string) *httpDispatcher {
	return &httpDispatcher{base: func() string { return base }, client: &http.Client{Timeout: 30 * time.Second}}
}

func (d *httpDispatcher) Dispatch(ctx context.Context, req Request) (Response, error) {
	d.calls.Add(1)
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, d.base()+req.Path, bytes.NewReader(req.Body))
	if err != nil {
		return Response{}, err
	}
	hr.Header.Set("Content-Type", "application/json")
	resp, err := d.client.Do(hr)
	if err != nil {
		return Response{}, fmt.Errorf("%w: %w", ErrRetryable, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return Response{}, fmt.Errorf("%w: %w", ErrRetryable, err)
	}
	out := Response{Status: resp.StatusCode, Body: body}
	switch {
	case resp.StatusCode == http.StatusServiceUnavailable:
		return out, ErrRetryable
	case resp.StatusCode == http.StatusNotFound && bytes.Contains(body, []byte("model")):
		return out, ErrModelUnavailable
	}
	return out, nil
}

// testConfig is a Config with short intervals for tests.
func testConfig(replica string) Config {
	return Config{
		ReplicaID: replica, ChunkLines: 8, MaxConcurrentRequests: 16, LeaseTTL: 600 * time.Millisecond,
		PollInterval: 20 * time.Millisecond, FlushLines: 4, FlushInterval: 20 * time.Millisecond,
		RetryBackoff: 10 * time.Millisecond, RetryAttempts: 3, ModelWait: 100 * time.Millisecond,
		JanitorInterval: 50 * time.Millisecond,
	}
}

// stores are a job store and blob store pair; replicas sharing Redis get separate handles.
type stores struct {
	jobs  state.JobStore
	blobs BlobStore
}

func memoryStores() stores { return stores{jobs: state.NewJobMemory(), blobs: state.NewBlobMemory()} }

// redisStores opens a state.Store on url (one per replica, like separate processes).
func redisStores(t *testing.T, url, replica string) stores {
	t.Helper()
	u, err := state.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	st, err := state.Open(t.Context(), u, state.Config{ReplicaID: replica, CommandTimeout: 5 * time.Second}, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return stores{jobs: state.NewJobStore(st), blobs: state.NewBlobStore(st)}
}

// replica is one batch instance with its API served over loopback.
type replica struct {
	b   *Batch
	srv *httptest.Server
	reg *prometheus.Registry
}

func startReplica(t *testing.T, cfg Config, s stores, d Dispatcher, workers bool) *replica {
	t.Helper()
	return startReplicaCtx(t, t.Context(), cfg, s, d, workers)
}

// startReplicaCtx starts a replica whose workers run until ctx ends: cancelling ctx
// abandons their leases as a crash would.
func startReplicaCtx(t *testing.T, ctx context.Context, cfg Config, s stores, d Dispatcher, workers bool) *replica {
	t.Helper()
	reg := prometheus.NewRegistry()
	b, err := New(cfg, s.jobs, s.blobs, d, testLog(), reg)
	if err != nil {
		t.Fatal(err)
	}
	r := &replica{b: b, srv: httptest.NewServer(b.API), reg: reg}
	t.Cleanup(r.srv.Close)
	if workers {
		if err := b.Workers.Start(ctx); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Workers.Stop)
	}
	return r
}

func startSim(t *testing.T, cfg sim.Config) *sim.Server {
	t.Helper()
	if cfg.Model == "" {
		cfg.Model = "m1"
	}
	s, err := sim.Start(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// do sends a request and decodes a JSON answer into out (when non-nil); it returns the status.
func do(t *testing.T, method, url string, body io.Reader, ctype string, out any) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: status %d, decoding %q: %v", method, url, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode
}

// multipartBody builds an upload form; fields are written in order.
func multipartBody(t testing.TB, filename string, content []byte, fields ...string) (*bytes.Buffer, string) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for i := 0; i+1 < len(fields); i += 2 {
		if fields[i] == "file" {
			fw, _ := mw.CreateFormFile("file", filename)
			_, _ = fw.Write(content)
			continue
		}
		_ = mw.WriteField(fields[i], fields[i+1])
	}
	_ = mw.Close()
	return &buf, mw.FormDataContentType()
}

func upload(t *testing.T, base string, content []byte) fileObject {
	t.Helper()
	body, ct := multipartBody(t, "in.jsonl", content, "purpose", "batch", "file", "")
	var f fileObject
	if st := do(t, http.MethodPost, base+"/v1/files", body, ct, &f); st != http.StatusOK {
		t.Fatalf("upload status %d", st)
	}
	return f
}

func createBatch(t *testing.T, base, fileID, endpoint string) batchObject {
	t.Helper()
	var b batchObject
	body := fmt.Sprintf(`{"input_file_id":%q,"endpoint":%q,"completion_window":"24h","metadata":{"k":"v"}}`, fileID, endpoint)
	if st := do(t, http.MethodPost, base+"/v1/batches", strings.NewReader(body), "application/json", &b); st != http.StatusOK {
		t.Fatalf("create batch status %d", st)
	}
	return b
}

func getBatch(t *testing.T, base, id string) batchObject {
	t.Helper()
	var b batchObject
	if st := do(t, http.MethodGet, base+"/v1/batches/"+id, nil, "", &b); st != http.StatusOK {
		t.Fatalf("get batch status %d", st)
	}
	return b
}

// waitBatch polls until cond holds or the deadline passes.
func waitBatch(t *testing.T, base, id string, timeout time.Duration, cond func(batchObject) bool) batchObject {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		b := getBatch(t, base, id)
		if cond(b) {
			return b
		}
		if time.Now().After(deadline) {
			t.Fatalf("batch %s: condition not met within %s; last %+v", id, timeout, b)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func terminal(b batchObject) bool { return state.BatchStatus(b.Status).Terminal() }

func content(t *testing.T, base, fileID string) []byte {
	t.Helper()
	resp, err := http.Get(base + "/v1/files/" + fileID + "/content")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("content of %s: status %d", fileID, resp.StatusCode)
	}
	b, _ := io.ReadAll(resp.Body)
	return b
}

// resultLines decodes an output or error file keyed by custom_id, failing on duplicates.
func resultLines(t *testing.T, data []byte, into map[string]outputLine) {
	t.Helper()
	for _, l := range bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		var o outputLine
		if err := json.Unmarshal(l, &o); err != nil {
			t.Fatalf("result line %q: %v", l, err)
		}
		if _, dup := into[o.CustomID]; dup {
			t.Fatalf("custom_id %s appears twice in the results", o.CustomID)
		}
		into[o.CustomID] = o
	}
}

// allResults downloads both files of a finished batch.
func allResults(t *testing.T, base string, b batchObject) map[string]outputLine {
	t.Helper()
	out := map[string]outputLine{}
	if b.OutputFileID != nil {
		resultLines(t, content(t, base, *b.OutputFileID), out)
	}
	if b.ErrorFileID != nil {
		resultLines(t, content(t, base, *b.ErrorFileID), out)
	}
	return out
}

// chatLines builds n chat lines for model; maxTokens per line.
func chatLines(n int, model string, maxTokens int) []byte {
	var b bytes.Buffer
	for i := range n {
		fmt.Fprintf(&b, `{"custom_id":"req-%d","method":"POST","url":"/v1/chat/completions","body":{"model":%q,"messages":[{"role":"user","content":"hello %d"}],"max_tokens":%d}}`+"\n", i, model, i%7, maxTokens)
	}
	return b.Bytes()
}

func statetestRedis(t *testing.T, opts ...statetest.Options) *statetest.Redis {
	t.Helper()
	return statetest.StartRedis(t, opts...)
}

func discardLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

// testLog discards logs unless BATCH_TEST_LOG is set.
func testLog() *slog.Logger {
	if os.Getenv("BATCH_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
}
