package ui

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vllm-proxy/vllm-proxy/batch"
	"github.com/vllm-proxy/vllm-proxy/proxy"
	"github.com/vllm-proxy/vllm-proxy/routing"
	"github.com/vllm-proxy/vllm-proxy/sim"
	"github.com/vllm-proxy/vllm-proxy/state"
)

// The test stack is the proxy as cmd wires it, built here from the packages so the
// dashboard is tested without cmd: simulators behind a router, the proxy handler, the
// batch API and workers dispatching through the proxy, and the dashboard, all on one
// registry and one loopback server.

// stackOpts tune startStack.
type stackOpts struct {
	sims     int
	sim      sim.Config // template for every simulator; Model defaults to "m1"
	policy   string     // routing policy; default least_load
	ui       Config
	batchCfg batch.Config
}

type testStack struct {
	sims   []*sim.Server
	router *routing.Router
	proxy  *proxy.Handler
	batch  *batch.Batch
	ui     *Handler
	reg    *prometheus.Registry
	srv    *httptest.Server
}

func testLog() *slog.Logger {
	if os.Getenv("UI_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// lineDispatcher is the cmd adapter in small: batch lines go through proxy.Dispatch.
type lineDispatcher struct{ h *proxy.Handler }

func (d lineDispatcher) Dispatch(ctx context.Context, req batch.Request) (batch.Response, error) {
	resp, err := d.h.Dispatch(ctx, proxy.DispatchRequest{Path: req.Path, Body: req.Body, Class: routing.ClassBatch})
	if err == nil {
		out := batch.Response{Status: resp.Status, Body: resp.Body}
		switch resp.Status {
		case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return out, fmt.Errorf("%w: status %d", batch.ErrRetryable, resp.Status)
		}
		return out, nil
	}
	if ctx.Err() != nil || errors.Is(err, proxy.ErrClientGone) {
		return batch.Response{}, fmt.Errorf("dispatching a batch line: %w", err)
	}
	status, body := proxy.ErrorResponse(err)
	return batch.Response{Status: status, Body: body}, fmt.Errorf("%w: %w", batch.ErrRetryable, err)
}

func startStack(t testing.TB, o stackOpts) *testStack {
	t.Helper()
	ctx := t.Context()
	log := testLog()
	st := &testStack{reg: prometheus.NewRegistry()}
	if o.sims == 0 {
		o.sims = 2
	}
	if o.sim.Model == "" {
		o.sim.Model = "m1"
	}
	var backends []routing.BackendConfig
	for range o.sims {
		s, err := sim.Start(ctx, o.sim, log)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.Close)
		st.sims = append(st.sims, s)
		backends = append(backends, routing.BackendConfig{URL: s.URL(), Capacity: 4})
	}
	if o.policy == "" {
		o.policy = routing.PolicyLeastLoad
	}
	router, err := routing.New(routing.Config{Backends: backends, Policy: o.policy,
		ScrapeInterval: 100 * time.Millisecond, HealthCheckInterval: 200 * time.Millisecond,
		ModelsRefreshInterval: time.Second}, log, st.reg)
	if err != nil {
		t.Fatal(err)
	}
	if err := router.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(router.Stop)
	st.router = router
	ph, err := proxy.New(proxy.Config{Version: "test"}, router, log, st.reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ph.CloseIdleConnections)
	st.proxy = ph
	bc := o.batchCfg
	if bc.ReplicaID == "" {
		bc = batch.Config{ReplicaID: "ui-test", ChunkLines: 4, MaxConcurrentRequests: 4, LeaseTTL: 3 * time.Second,
			PollInterval: 50 * time.Millisecond, FlushLines: 1, FlushInterval: 50 * time.Millisecond,
			RetryBackoff: 50 * time.Millisecond, JanitorInterval: time.Minute}
	}
	b, err := batch.New(bc, state.NewJobMemory(), state.NewBlobMemory(), lineDispatcher{ph}, log, st.reg)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Workers.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Workers.Stop)
	st.batch = b
	uh, err := New(o.ui, Sources{Router: router, Metrics: st.reg}, log, st.reg)
	if err != nil {
		t.Fatal(err)
	}
	if err := uh.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(uh.Stop)
	st.ui = uh

	mux := http.NewServeMux()
	mux.Handle("/v1/files", b.API)
	mux.Handle("/v1/files/", b.API)
	mux.Handle("/v1/batches", b.API)
	mux.Handle("/v1/batches/", b.API)
	mux.Handle("/ui", uh)
	mux.Handle("/ui/", uh)
	mux.Handle("/", ph)
	st.srv = httptest.NewServer(mux)
	t.Cleanup(st.srv.Close)
	waitFor(t, 10*time.Second, "every backend healthy with metrics", func() bool {
		for _, s := range router.LoadStats() {
			if !s.Healthy || s.MetricsAgeMS < 0 || len(s.Models) == 0 {
				return false
			}
		}
		return true
	})
	return st
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// reply is a response read to the end (its body closed).
type reply struct {
	StatusCode int
	Header     http.Header
}

// call sends a request to the stack and returns the status, headers and body.
func call(t testing.TB, method, url string, body io.Reader, ctype string) (reply, []byte) {
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
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{StatusCode: resp.StatusCode, Header: resp.Header}, b
}

// getJSON GETs url, requires 200 and application/json, and decodes into out.
func getJSON(t testing.TB, url string, out any) {
	t.Helper()
	resp, body := call(t, http.MethodGet, url, nil, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d: %s", url, resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("GET %s: content type %q", url, ct)
	}
	if err := json.Unmarshal(body, out); err != nil {
		t.Fatalf("GET %s: decoding %s: %v", url, body, err)
	}
}

// chat sends one interactive chat request through the proxy.
func chat(t testing.TB, base, model string) int {
	t.Helper()
	body := fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":"hi"}],"max_tokens":3}`, model)
	resp, _ := call(t, http.MethodPost, base+"/v1/chat/completions", strings.NewReader(body), "application/json")
	return resp.StatusCode
}

// chatLines builds n batch lines for model.
func chatLines(n int, model string, maxTokens int) []byte {
	var b bytes.Buffer
	for i := range n {
		fmt.Fprintf(&b, `{"custom_id":"req-%d","method":"POST","url":"/v1/chat/completions","body":{"model":%q,"messages":[{"role":"user","content":"hello %d"}],"max_tokens":%d}}`+"\n", i, model, i, maxTokens)
	}
	return b.Bytes()
}

// submitBatch uploads lines and creates a batch; it returns the batch id and the file id.
func submitBatch(t testing.TB, base string, lines []byte) (batchID, fileID string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	_ = mw.WriteField("purpose", "batch")
	fw, _ := mw.CreateFormFile("file", "lines.jsonl")
	_, _ = fw.Write(lines)
	_ = mw.Close()
	resp, body := call(t, http.MethodPost, base+"/v1/files", &buf, mw.FormDataContentType())
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("upload: status %d: %s", resp.StatusCode, body)
	}
	var f struct{ ID string }
	if err := json.Unmarshal(body, &f); err != nil {
		t.Fatal(err)
	}
	req := fmt.Sprintf(`{"input_file_id":%q,"endpoint":"/v1/chat/completions","completion_window":"24h","metadata":{"job":"ui-test"}}`, f.ID)
	resp, body = call(t, http.MethodPost, base+"/v1/batches", strings.NewReader(req), "application/json")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("create batch: status %d: %s", resp.StatusCode, body)
	}
	var b struct{ ID string }
	if err := json.Unmarshal(body, &b); err != nil {
		t.Fatal(err)
	}
	return b.ID, f.ID
}

// batchState reads a batch's status and counts through the API.
type batchState struct {
	Status        string `json:"status"`
	RequestCounts struct {
		Total, Completed, Failed int64
	} `json:"request_counts"`
}

func getBatch(t testing.TB, base, id string) batchState {
	t.Helper()
	var b batchState
	getJSON(t, base+"/v1/batches/"+id, &b)
	return b
}
