package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// Error kinds of a Sample that is not a success. HTTP errors use the status code instead.
const (
	ErrKindTransport = "transport" // connection refused, reset, ...
	ErrKindTimeout   = "timeout"   // Config.Timeout elapsed
	ErrKindCanceled  = "canceled"  // the run's context ended
	ErrKindStream    = "stream"    // stream cut before [DONE], or an error event in it
	ErrKindStatus    = "status"    // non-200 status; see Sample.Status
)

// newTransport is the one shared transport: keep-alive pool sized for the concurrency,
// no compression (bodies are small and gzip costs CPU), HTTP/1.1 like vLLM's uvicorn.
func newTransport(maxIdlePerHost, maxConns int) *http.Transport {
	return &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        0,
		MaxIdleConnsPerHost: maxIdlePerHost,
		MaxConnsPerHost:     maxConns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
		WriteBufferSize:     16 << 10,
		ReadBufferSize:      16 << 10,
	}
}

// worker holds the per-goroutine buffers reused across requests. Not safe for concurrent use.
type worker struct {
	br   *bufio.Reader
	resp bytes.Buffer
	gaps []time.Duration
	last time.Time
	// first is the time of the first token of the current request (zero until then).
	first time.Time
}

func newWorker() *worker { return &worker{br: bufio.NewReaderSize(nil, 16<<10)} }

// token implements streamEvents.
func (w *worker) token() {
	now := time.Now()
	if w.first.IsZero() {
		w.first = now
	} else {
		w.gaps = append(w.gaps, now.Sub(w.last))
	}
	w.last = now
}

// target is one base URL being driven, with its collected results.
type target struct {
	index  int
	base   string
	url    string
	run    *runner
	mu     sync.Mutex
	coll   collector
	active time.Duration // sum of slice wall times; written between slices only
	engine EngineStats   // engine-side deltas of its slices; written between slices only
}

// do sends request i to t and records the outcome; due is its scheduled send time (zero
// in closed loop).
func (t *target) do(ctx context.Context, w *worker, i int, due time.Time) {
	r := t.run
	req := r.workload.Request(i)
	// A fresh body per request: the transport may still read it after Do returns, and a
	// *bytes.Reader lets it write headers and body in one syscall (a custom reader type
	// makes it flush the headers first).
	body := AppendBody(make([]byte, 0, r.bodySize(req)), req, r.bodyOpts)

	s := Sample{Target: t.index, Index: i, PromptTokens: req.PromptTokens()}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, bytes.NewReader(body))
	if err != nil {
		s.Err = ErrKindTransport
		t.record(&s, w)
		return
	}
	hreq.Header = r.header
	w.gaps, w.first = w.gaps[:0], time.Time{}

	start := time.Now()
	s.Start = start.Sub(r.start)
	if !due.IsZero() {
		s.Lag = max(start.Sub(due), 0)
	}
	resp, err := r.client.Do(hreq)
	if err != nil {
		s.E2E = time.Since(start)
		s.Err = classify(ctx, err)
		t.record(&s, w)
		return
	}
	s.Status = resp.StatusCode
	if r.cfg.CountHeader != "" {
		s.Header = resp.Header.Get(r.cfg.CountHeader)
	}
	var u usage
	switch {
	case resp.StatusCode != http.StatusOK:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		s.Err = ErrKindStatus
	case r.cfg.NoStream:
		w.resp.Reset()
		_, err = w.resp.ReadFrom(io.LimitReader(resp.Body, 64<<20))
		if err != nil {
			s.Err = classify(ctx, err)
		}
		u = parseUsage(w.resp.Bytes())
	default:
		w.br.Reset(resp.Body)
		u, err = readStream(w.br, w)
		w.br.Reset(nil)
		if err != nil {
			s.Err = classify(ctx, err)
		}
	}
	// Drain what follows [DONE] (the chunked terminator) so the connection is reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	end := time.Now()
	s.E2E = end.Sub(start)
	s.TTFT = s.E2E
	if !w.first.IsZero() {
		s.TTFT = w.first.Sub(start)
	}
	if u.ok {
		s.PromptTokens, s.OutputTokens = u.prompt, u.completion
	} else if !r.cfg.NoStream {
		s.OutputTokens = len(w.gaps) + btoi(!w.first.IsZero())
	}
	t.record(&s, w)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// classify maps a request error to an error kind.
func classify(ctx context.Context, err error) string {
	switch {
	case errors.Is(err, errStreamTruncated), errors.Is(err, errStreamError):
		return ErrKindStream
	case ctx.Err() != nil:
		return ErrKindCanceled
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, http.ErrHandlerTimeout), isTimeout(err):
		return ErrKindTimeout
	}
	return ErrKindTransport
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// record stores one finished request.
func (t *target) record(s *Sample, w *worker) {
	t.mu.Lock()
	t.coll.add(s, w.gaps)
	t.mu.Unlock()
}
