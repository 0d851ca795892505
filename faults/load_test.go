package faults

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vllm-proxy/vllm-proxy/sim"
)

// newClient returns an HTTP client with its own connection pool, closed at cleanup.
func newClient(t *testing.T) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// chatBody is a chat completion request for model "m".
func chatBody(i, maxTokens int, stream bool) []byte {
	return fmt.Appendf(nil, `{"model":"m","messages":[{"role":"user","content":"request %d: tell me something"}],"max_tokens":%d,"stream":%t}`,
		i, maxTokens, stream)
}

// chatResult is the outcome of one non-streaming request as the client saw it.
type chatResult struct {
	Status  int
	Err     error // transport error, or a 200 whose body is not a chat completion
	Body    []byte
	Latency time.Duration
	// ReadErr: the response started but reading its body failed (the connection broke).
	ReadErr bool
}

// OK reports a 200 with a well-formed chat completion.
func (r chatResult) OK() bool { return r.Err == nil && r.Status == http.StatusOK }

// chat sends one non-streaming chat completion to base and checks a 200's body.
func chat(ctx context.Context, c *http.Client, base string, body []byte) chatResult {
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/chat/completions", bytes.NewReader(body))
	if err != nil {
		return chatResult{Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return chatResult{Err: err, Latency: time.Since(start)}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	r := chatResult{Status: resp.StatusCode, Body: b, Err: err, Latency: time.Since(start), ReadErr: err != nil}
	if r.Err == nil && r.Status == http.StatusOK {
		var v struct {
			Choices []struct {
				Message struct{ Content string } `json:"message"`
			} `json:"choices"`
		}
		switch err := json.Unmarshal(b, &v); {
		case err != nil:
			r.Err = fmt.Errorf("200 without a chat completion: %w: %.200q", err, b)
		case len(v.Choices) == 0:
			r.Err = fmt.Errorf("200 without choices: %.200q", b)
		}
	}
	return r
}

// streamResult is the outcome of one streaming request as the client saw it.
type streamResult struct {
	Status int
	Chunks int   // data events before [DONE] or the cut
	Done   bool  // data: [DONE] was read
	Err    error // transport error while reading (a cut connection)
	// ErrEvent is the message of an in-stream error event (`data: {"error":...}`), the
	// way the proxy, like vLLM, ends a stream that broke off after it started.
	ErrEvent string
	Body     []byte
}

// Clean reports a complete stream: 200, [DONE] seen, no error event, no read error.
func (r streamResult) Clean() bool {
	return r.Status == http.StatusOK && r.Done && r.Err == nil && r.ErrEvent == ""
}

// Cut reports a stream that broke off in a way the client can tell: an error event
// followed by [DONE], or a read error before [DONE].
func (r streamResult) Cut() bool {
	return (r.ErrEvent != "" && r.Done && r.Err == nil) || (!r.Done && r.Err != nil)
}

// streamChat sends a streaming chat completion and reads it to the end. onChunk, when
// set, is called after each data event with the count so far.
func streamChat(ctx context.Context, c *http.Client, base string, body []byte, onChunk func(n int)) streamResult {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/chat/completions", bytes.NewReader(body))
	if err != nil {
		return streamResult{Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return streamResult{Err: err}
	}
	defer resp.Body.Close()
	r := streamResult{Status: resp.StatusCode}
	if resp.StatusCode != http.StatusOK {
		r.Body, r.Err = io.ReadAll(resp.Body)
		return r
	}
	br := bufio.NewReader(resp.Body)
	for {
		line, err := br.ReadString('\n')
		if strings.HasPrefix(line, "data: ") {
			data := []byte(strings.TrimSpace(strings.TrimPrefix(line, "data: ")))
			var ev struct {
				Error *struct {
					Message string `json:"message"`
				} `json:"error"`
			}
			switch {
			case string(data) == "[DONE]":
				r.Done = true
			case json.Unmarshal(data, &ev) != nil:
				r.Err = fmt.Errorf("garbled SSE event %q", line)
				return r
			case ev.Error != nil:
				r.ErrEvent = ev.Error.Message
			default:
				r.Chunks++
				if onChunk != nil {
					onChunk(r.Chunks)
				}
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				r.Err = err
			}
			return r
		}
	}
}

// loadStats collects the outcomes of a load run. Safe for concurrent use.
type loadStats struct {
	mu       sync.Mutex
	n, ok    int
	statuses map[int]int
	errs     []string // first few failures, for messages
	lat      []time.Duration
	failedAt []time.Time
}

func (s *loadStats) add(r chatResult, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.statuses == nil {
		s.statuses = map[int]int{}
	}
	s.n++
	s.statuses[r.Status]++
	s.lat = append(s.lat, r.Latency)
	if r.OK() {
		s.ok++
		return
	}
	s.failedAt = append(s.failedAt, at)
	if len(s.errs) < 5 {
		s.errs = append(s.errs, fmt.Sprintf("status %d err %v body %.300s", r.Status, r.Err, r.Body))
	}
}

// Failed is the number of requests that did not end in a good 200.
func (s *loadStats) Failed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n - s.ok
}

// N is the number of requests finished.
func (s *loadStats) N() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// Summary is a one-line account: count, failures, latency percentiles.
func (s *loadStats) Summary() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	lat := append([]time.Duration(nil), s.lat...)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))].Round(time.Millisecond)
	}
	return fmt.Sprintf("requests=%d errors=%d statuses=%v p50=%s p99=%s max=%s first_errors=%q",
		s.n, s.n-s.ok, s.statuses, pct(0.5), pct(0.99), pct(1), s.errs)
}

// runLoad keeps workers closed-loop non-streaming chat completions going against base
// until ctx ends, then returns once every request in flight has finished. Requests
// themselves are not cancelled by ctx: a request in flight runs to its own end
// (bounded by reqTimeout).
func runLoad(ctx context.Context, c *http.Client, base string, workers, maxTokens int, reqTimeout time.Duration, st *loadStats) (wait func()) {
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), reqTimeout)
				r := chat(rctx, c, base, chatBody(w*100000+i, maxTokens, false))
				cancel()
				st.add(r, time.Now())
			}
		})
	}
	return wg.Wait
}

// startSim starts an in-process simulator serving model "m", closed at cleanup.
func startSim(t *testing.T, cfg sim.Config) *sim.Server {
	t.Helper()
	cfg.Model = "m"
	if cfg.MaxNumSeqs == 0 {
		cfg.MaxNumSeqs = 64
	}
	s, err := sim.Start(t.Context(), cfg, nil)
	if err != nil {
		t.Fatalf("starting simulator: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// served is how many inference responses (any status) s has sent.
func served(s *sim.Server) int64 {
	var n int64
	for _, c := range s.Snapshot().Statuses {
		n += c
	}
	return n
}

// result logs one RESULT line, the figures docs/RELIABILITY.md records.
func result(t *testing.T, format string, args ...any) {
	t.Helper()
	t.Logf("RESULT %s: "+format, append([]any{t.Name()}, args...)...)
}

// openAIError decodes an OpenAI-shaped error body, failing the test when it is not one.
func openAIError(t *testing.T, body []byte) (msg, typ string) {
	t.Helper()
	var v struct {
		Error *struct {
			Message string `json:"message"`
			Type    string `json:"type"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &v); err != nil || v.Error == nil || v.Error.Message == "" || v.Error.Type == "" {
		t.Fatalf("not an OpenAI error body (%v): %.300q", err, body)
	}
	return v.Error.Message, v.Error.Type
}
