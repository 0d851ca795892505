package batch

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vllm-proxy/vllm-proxy/sim"
)

// stepDispatcher holds every line until the test hands out tokens (one line each) or
// opens the gate for all.
type stepDispatcher struct {
	inner  Dispatcher
	tokens chan struct{}
	open   chan struct{}
}

func (s *stepDispatcher) Dispatch(ctx context.Context, req Request) (Response, error) {
	select {
	case <-s.tokens:
	case <-s.open:
	case <-ctx.Done():
		return Response{}, ctx.Err()
	}
	return s.inner.Dispatch(ctx, req)
}

func (s *stepDispatcher) allow(n int) {
	for range n {
		s.tokens <- struct{}{}
	}
}

// TestRequestCountsLive: while a batch is in_progress, request_counts seen through
// another replica's API (API-only, same Redis) follow the lines as they finish.
func TestRequestCountsLive(t *testing.T) {
	rs := statetestRedis(t)
	sm := startSim(t, sim.Config{Instant: true})
	sd := &stepDispatcher{inner: newHTTPDispatcher(sm.URL()), tokens: make(chan struct{}, 100), open: make(chan struct{})}
	cfg := testConfig("a")
	cfg.LeaseTTL = 5 * time.Second // a lease lapsing on a loaded machine would lose a token's line
	a := startReplica(t, cfg, redisStores(t, rs.URL, "a"), sd, true)
	b := startReplica(t, testConfig("b"), redisStores(t, rs.URL, "b"), nil, false)
	const n = 60
	f := upload(t, a.srv.URL, chatLines(n, "m1", 5))
	id := createBatch(t, a.srv.URL, f.ID, chatURL).ID
	waitBatch(t, b.srv.URL, id, 10*time.Second, func(o batchObject) bool { return o.Status == "in_progress" })
	allowed := int64(0)
	for _, want := range []int64{7, 19, 40} {
		sd.allow(int(want - allowed))
		allowed = want
		got := waitBatch(t, b.srv.URL, id, 10*time.Second, func(o batchObject) bool { return o.RequestCounts.Completed >= want })
		if got.Status != "in_progress" || got.RequestCounts != (requestCounts{Total: n, Completed: want}) {
			t.Fatalf("after %d lines: %s %+v", want, got.Status, got.RequestCounts)
		}
		if got.Usage == nil || got.Usage.OutputTokens != 5*want {
			t.Fatalf("after %d lines: usage %+v", want, got.Usage)
		}
	}
	close(sd.open)
	final := waitBatch(t, b.srv.URL, id, 20*time.Second, terminal)
	if final.Status != "completed" || final.RequestCounts != (requestCounts{Total: n, Completed: n}) {
		t.Fatalf("final %s %+v", final.Status, final.RequestCounts)
	}
}

// recordingDispatcher remembers the order lines were sent in.
type recordingDispatcher struct {
	inner Dispatcher
	mu    sync.Mutex
	order []string // the first message's content of each line
}

func (r *recordingDispatcher) Dispatch(ctx context.Context, req Request) (Response, error) {
	i := bytes.Index(req.Body, []byte(`"content":"`))
	r.mu.Lock()
	r.order = append(r.order, string(req.Body[i+11:i+11+4]))
	r.mu.Unlock()
	return r.inner.Dispatch(ctx, req)
}

// TestPrefixNeighbours: lines whose prompts share a prefix are sent one after another
// within a chunk, although the input interleaves them, and the backend sees cache hits.
func TestPrefixNeighbours(t *testing.T) {
	sm := startSim(t, sim.Config{Instant: true})
	rd := &recordingDispatcher{inner: newHTTPDispatcher(sm.URL())}
	cfg := testConfig("r1")
	cfg.MaxConcurrentRequests, cfg.MaxChunks, cfg.ChunkLines = 1, 1, 16 // one line at a time: a deterministic order
	r := startReplica(t, cfg, memoryStores(), rd, true)
	docs := []string{"docA", "docB", "docC", "docD"}
	var in bytes.Buffer
	const n = 64
	for i := range n {
		doc := docs[i%len(docs)]
		fmt.Fprintf(&in, `{"custom_id":"req-%d","method":"POST","url":"/v1/chat/completions","body":{"model":"m1","messages":[{"role":"system","content":"%s %s"},{"role":"user","content":"question %d"}],"max_tokens":3}}`+"\n",
			i, doc, strings.Repeat(doc+" shared context ", 40), i)
	}
	f := upload(t, r.srv.URL, in.Bytes())
	b := waitBatch(t, r.srv.URL, createBatch(t, r.srv.URL, f.ID, chatURL).ID, 20*time.Second, terminal)
	if b.Status != "completed" || b.RequestCounts != (requestCounts{Total: n, Completed: n}) {
		t.Fatalf("batch %s %+v", b.Status, b.RequestCounts)
	}
	checkAll(t, allResults(t, r.srv.URL, b), n)
	rd.mu.Lock()
	order := rd.order
	rd.mu.Unlock()
	if len(order) != n {
		t.Fatalf("%d lines sent, want %d", len(order), n)
	}
	// In input order the prefix changes on every line (63 switches); grouped per chunk of 16
	// it changes at most 3 times inside each of the 4 chunks and once between them.
	switches := 0
	for i := 1; i < len(order); i++ {
		if order[i] != order[i-1] {
			switches++
		}
	}
	if switches > 4*3+3 {
		t.Fatalf("prefix changed %d times in %v", switches, order)
	}
	if b.Usage == nil || b.Usage.InputTokensDetails.CachedTokens == 0 {
		t.Fatalf("no cached tokens reported: %+v", b.Usage)
	}
}

// lateModelDispatcher answers ErrModelUnavailable for model "late" until ready is set.
type lateModelDispatcher struct {
	inner Dispatcher
	ready atomic.Bool
	held  atomic.Int64
}

func (l *lateModelDispatcher) Dispatch(ctx context.Context, req Request) (Response, error) {
	if req.Model == "late" && !l.ready.Load() {
		l.held.Add(1)
		return Response{Status: 404, Body: []byte(`{"error":{"message":"no backend","type":"invalid_request_error","param":"model","code":"model_not_found"}}`)}, ErrModelUnavailable
	}
	req.Body = bytes.Replace(req.Body, []byte(`"late"`), []byte(`"m1"`), 1)
	return l.inner.Dispatch(ctx, req)
}

// TestHeldModel: a line whose model has no backend is held, not failed: it succeeds when
// a backend appears within ModelWait, and becomes batch_expired when the window ends first.
func TestHeldModel(t *testing.T) {
	sm := startSim(t, sim.Config{Instant: true})
	t.Run("backend appears", func(t *testing.T) {
		ld := &lateModelDispatcher{inner: newHTTPDispatcher(sm.URL())}
		cfg := testConfig("r1")
		cfg.ModelWait = time.Hour
		r := startReplica(t, cfg, memoryStores(), ld, true)
		f := upload(t, r.srv.URL, chatLines(4, "late", 5))
		id := createBatch(t, r.srv.URL, f.ID, chatURL).ID
		waitBatch(t, r.srv.URL, id, 10*time.Second, func(batchObject) bool { return ld.held.Load() >= 12 })
		if got := getBatch(t, r.srv.URL, id); got.Status != "in_progress" || got.RequestCounts.Failed != 0 || got.RequestCounts.Completed != 0 {
			t.Fatalf("while held: %s %+v", got.Status, got.RequestCounts)
		}
		ld.ready.Store(true)
		b := waitBatch(t, r.srv.URL, id, 10*time.Second, terminal)
		if b.Status != "completed" || b.RequestCounts != (requestCounts{Total: 4, Completed: 4}) {
			t.Fatalf("batch %s %+v", b.Status, b.RequestCounts)
		}
	})
	t.Run("window ends first", func(t *testing.T) {
		ld := &lateModelDispatcher{inner: newHTTPDispatcher(sm.URL())}
		cfg := testConfig("r2")
		cfg.ModelWait, cfg.CompletionWindow = time.Hour, 1500*time.Millisecond
		r := startReplica(t, cfg, memoryStores(), ld, true)
		in := chatLines(3, "m1", 5)
		for i := 3; i < 6; i++ {
			in = fmt.Appendf(in, `{"custom_id":"req-%d","method":"POST","url":"/v1/chat/completions","body":{"model":"late","messages":[{"role":"user","content":"x"}],"max_tokens":5}}`+"\n", i)
		}
		f := upload(t, r.srv.URL, in)
		b := waitBatch(t, r.srv.URL, createBatch(t, r.srv.URL, f.ID, chatURL).ID, 15*time.Second, terminal)
		if b.Status != "expired" || b.RequestCounts != (requestCounts{Total: 6, Completed: 3, Failed: 3}) {
			t.Fatalf("batch %s %+v", b.Status, b.RequestCounts)
		}
		res := allResults(t, r.srv.URL, b)
		checkAll(t, res, 6)
		for i := 3; i < 6; i++ {
			o := res[fmt.Sprintf("req-%d", i)]
			if o.Response != nil || o.Error == nil || o.Error.Code != "batch_expired" {
				t.Fatalf("held line %d: %+v", i, o)
			}
		}
	})
}

// TestUploadTooLargeStoresNothing: an upload over the limit gets 413 and leaves no blob
// chunk, temporary file or record behind, in both blob stores, even when several chunks
// were written before the limit was hit.
func TestUploadTooLargeStoresNothing(t *testing.T) {
	rs := statetestRedis(t)
	dir := t.TempDir()
	dirBlobs, err := NewDirBlobs(dir)
	if err != nil {
		t.Fatal(err)
	}
	rst := redisStores(t, rs.URL, "r1")
	for name, s := range map[string]stores{"redis": rst, "dir": {jobs: rst.jobs, blobs: dirBlobs}} {
		t.Run(name, func(t *testing.T) {
			cfg := testConfig("r1")
			cfg.MaxFileBytes = 5 << 20 / 2 // two and a half blob chunks
			r := startReplica(t, cfg, s, nil, false)
			data := chatLines(40000, "m1", 5) // ~5 MB
			body, ct := multipartBody(t, "big.jsonl", data, "purpose", "batch", "file", "")
			st, raw := rawDo(t, http.MethodPost, r.srv.URL+"/v1/files", body, ct)
			if st != http.StatusRequestEntityTooLarge {
				t.Fatalf("status %d: %s", st, raw)
			}
			checkEnvelope(t, raw, "file")
			if n, err := rs.Do("EVAL", "return #redis.call('KEYS', 'blob:*') + #redis.call('KEYS', 'file:*')", "0"); err != nil || n != ":0" {
				t.Fatalf("redis keys left: %s %v", n, err)
			}
			ents, err := os.ReadDir(dir)
			if err != nil || len(ents) != 0 {
				t.Fatalf("files left in %s: %v %v", dir, ents, err)
			}
			var list listObject[fileObject]
			do(t, http.MethodGet, r.srv.URL+"/v1/files", nil, "", &list)
			if len(list.Data) != 0 {
				t.Fatalf("%d files listed", len(list.Data))
			}
		})
	}
}

// TestParseUsage: usage is read from every endpoint's body shape.
func TestParseUsage(t *testing.T) {
	cases := []struct {
		name, body                        string
		in, cached, out, reasoning, total int64
	}{
		{"chat", `{"usage":{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15,"prompt_tokens_details":{"cached_tokens":8},"completion_tokens_details":{"reasoning_tokens":2}}}`, 10, 8, 5, 2, 15},
		{"responses", `{"usage":{"input_tokens":7,"output_tokens":3,"total_tokens":10,"input_tokens_details":{"cached_tokens":4},"output_tokens_details":{"reasoning_tokens":1}}}`, 7, 4, 3, 1, 10},
		{"embeddings", `{"usage":{"prompt_tokens":9,"total_tokens":9}}`, 9, 0, 0, 0, 9},
		{"no total", `{"usage":{"prompt_tokens":2,"completion_tokens":3}}`, 2, 0, 3, 0, 5},
		{"null details", `{"usage":{"prompt_tokens":2,"completion_tokens":3,"total_tokens":5,"prompt_tokens_details":null}}`, 2, 0, 3, 0, 5},
		{"no usage", `{"object":"chat.completion"}`, 0, 0, 0, 0, 0},
		{"not json", `<html>`, 0, 0, 0, 0, 0},
	}
	for _, tc := range cases {
		u := parseUsage([]byte(tc.body))
		if u.InputTokens != tc.in || u.CachedTokens != tc.cached || u.OutputTokens != tc.out || u.ReasoningTokens != tc.reasoning || u.TotalTokens != tc.total {
			t.Errorf("%s: %+v", tc.name, u)
		}
	}
}

// slowOpenBlobs delays every Open, so a validation outlasts many worker passes.
type slowOpenBlobs struct {
	BlobStore
	delay time.Duration
}

func (s slowOpenBlobs) Open(ctx context.Context, id string, offset int64) (io.ReadCloser, error) {
	select {
	case <-time.After(s.delay):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return s.BlobStore.Open(ctx, id, offset)
}

// TestValidatedOnce: a replica that already validates a batch does not start a second
// validation of it on its next passes (the claim script lets the lease owner re-claim).
func TestValidatedOnce(t *testing.T) {
	sm := startSim(t, sim.Config{Instant: true})
	s := memoryStores()
	s.blobs = slowOpenBlobs{BlobStore: s.blobs, delay: 300 * time.Millisecond} // 15 polls
	r := startReplica(t, testConfig("r1"), s, newHTTPDispatcher(sm.URL()), true)
	f := upload(t, r.srv.URL, chatLines(20, "m1", 5))
	b := waitBatch(t, r.srv.URL, createBatch(t, r.srv.URL, f.ID, chatURL).ID, 20*time.Second, terminal)
	if b.Status != "completed" {
		t.Fatalf("batch %s", b.Status)
	}
	mfs, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "vllm_proxy_batch_validation_duration_seconds" {
			if n := mf.GetMetric()[0].GetHistogram().GetSampleCount(); n != 1 {
				t.Fatalf("batch validated %d times", n)
			}
			return
		}
	}
	t.Fatal("no validation metric")
}
