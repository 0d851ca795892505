package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"

	"github.com/vllm-proxy/vllm-proxy/logging"
	"github.com/vllm-proxy/vllm-proxy/routing"
)

// One attempt sends the request to one picked backend through the shared ReverseProxy.
// The ReverseProxy's hooks run on the goroutine that calls its ServeHTTP, so they record
// what happened in the attempt (found through the request context) without locks, and
// the retry loop reads it afterwards. Nothing reaches the client unless ModifyResponse
// accepts the response: a retryable status or a transport error ends in ErrorHandler,
// which writes nothing, so the retry loop may still try another backend.

// attempt is the state of one try on one backend.
type attempt struct {
	x       *exchange
	reqCtx  context.Context // the request's context: client cancellation and request timeout
	backend *routing.Backend
	target  *url.URL
	start   time.Time
	cancel  context.CancelCauseFunc
	timer   *time.Timer // per-attempt response header timeout, or nil

	// Written by the ReverseProxy hooks and the body watcher.
	committed bool  // headers accepted and sent to the client
	status    int   // backend status, once headers arrived
	err       error // why no response was accepted (ErrorHandler)
	sse       bool
	firstByte time.Duration // since start; 0 until a body byte (or empty body end) was seen
	onFirst   func()        // nil, or called once with the first byte (prefill spreading)
	readErr   error         // what ended the response body early
	cut       bool          // readErr was the backend's fault, not the client's
	aborted   bool          // the ReverseProxy aborted the response (http.ErrAbortHandler)
}

type attemptKey struct{}

func attemptFrom(ctx context.Context) *attempt {
	a, _ := ctx.Value(attemptKey{}).(*attempt)
	return a
}

// Causes recorded on the contexts the proxy cancels.
var (
	errRequestTimeout = errors.New("request timeout expired")
	errHeaderTimeout  = errors.New("response header timeout expired")
)

// newTransport is the one Transport shared by every attempt: a keep-alive pool sized for
// many concurrent streams, bounded dials, and no transparent compression so bodies pass
// through byte for byte.
func newTransport(cfg Config) *http.Transport {
	return &http.Transport{
		Proxy: nil, // backends are reached directly, never through an environment proxy
		DialContext: (&net.Dialer{
			Timeout:   cfg.DialTimeout,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		TLSHandshakeTimeout: cfg.DialTimeout,
		MaxIdleConns:        0, // no global cap; MaxIdleConnsPerHost bounds each backend
		MaxIdleConnsPerHost: cfg.MaxIdleConnsPerHost,
		IdleConnTimeout:     cfg.IdleConnTimeout,
		DisableCompression:  true,
		WriteBufferSize:     32 << 10,
		ReadBufferSize:      32 << 10,
	}
}

// newReverseProxy builds the one ReverseProxy every attempt goes through.
func (h *Handler) newReverseProxy() *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite:        func(pr *httputil.ProxyRequest) { rewrite(pr); h.cfg.BackendAuth.apply(pr.Out.Header) },
		Transport:      h.transport,
		ModifyResponse: h.modifyResponse,
		ErrorHandler:   recordError,
		BufferPool:     &h.buffers,
		ErrorLog:       slog.NewLogLogger(h.log.Handler(), logging.LevelVerbose),
		// FlushInterval 0: text/event-stream and unknown-length bodies are flushed after
		// every write anyway (the stdlib's flushInterval), and bodyWatch hands SSE over
		// one whole event at a time.
	}
}

// rewrite points the outbound request at the attempt's backend. The client's headers,
// Authorization included, pass untouched (then Config.BackendAuth may replace the
// credentials); the ReverseProxy has already removed hop-by-hop
// headers. X-Forwarded-For extends the client's chain with the client's address.
func rewrite(pr *httputil.ProxyRequest) {
	a := attemptFrom(pr.In.Context())
	pr.SetURL(a.target)
	// The ReverseProxy wraps the outbound body in its own close-guard, which hides from
	// the Transport that the body is in memory: the Transport then flushes the headers
	// and writes the body in a second write (two syscalls, two segments, two wake-ups of
	// the backend). run's body is an io.NopCloser over a bytes.Reader of a slice nobody
	// mutates, so closing or reading it late is harmless: hand it over unwrapped and the
	// headers and a small body leave in one write.
	if pr.Out.Body != nil {
		pr.Out.Body = pr.In.Body
	}
	pr.Out.Header.Set(headerRequestID, a.x.id)
	// The body is already buffered: waiting for 100 Continue would only add a round trip.
	pr.Out.Header.Del("Expect")
	if pr.In.RemoteAddr == "" {
		return // an in-process Dispatch: there is no client address to forward
	}
	if prior := pr.In.Header["X-Forwarded-For"]; len(prior) > 0 {
		pr.Out.Header["X-Forwarded-For"] = prior
	}
	pr.SetXForwarded()
}

// modifyResponse decides whether the backend's response goes to the client. Retryable
// statuses become a *BackendStatusError, which the retry loop sees through recordError.
func (h *Handler) modifyResponse(res *http.Response) error {
	a := attemptFrom(res.Request.Context())
	if a.timer != nil && !a.timer.Stop() {
		return errHeaderTimeout // it fired: the attempt's context is already cancelled
	}
	a.status = res.StatusCode
	if retryableStatus(res.StatusCode) {
		// Drain a little so the connection can be reused; the ReverseProxy closes it.
		_, _ = io.CopyN(io.Discard, res.Body, 4<<10)
		return &BackendStatusError{Status: res.StatusCode, RetryAfter: res.Header.Get("Retry-After")}
	}
	// The proxy's own X-Request-Id is already on the client response.
	res.Header.Del(headerRequestID)
	a.sse = isEventStream(res.Header.Get("Content-Type"))
	res.Body = newBodyWatch(res.Body, a, h.log)
	if !a.sse {
		if err := bufferBody(res); err != nil {
			return err // nothing reached the client: the retry loop may try another backend
		}
	}
	h.logResponse(a, res)
	a.committed = true
	return nil
}

// maxBufferedBody is the largest non-streaming response body read whole before the
// response is committed. vLLM's JSON answers are a few KB; a larger body (big embedding
// batches) is passed through as it arrives.
const maxBufferedBody = 1 << 20

// errBodyBroken wraps the read error of a non-streaming body that broke off before the
// proxy committed the response.
var errBodyBroken = errors.New("response body broke off")

// bufferBody reads a non-streaming body of up to maxBufferedBody bytes before the response
// is committed, so that a body that breaks off (a backend dying between its headers and
// the end of its JSON) is retried on another backend instead of aborting the client's
// connection. A longer body passes through: what was read, then the rest as it arrives.
func bufferBody(res *http.Response) error {
	if res.ContentLength > maxBufferedBody {
		return nil
	}
	limit := int64(maxBufferedBody + 1)
	if res.ContentLength >= 0 {
		limit = res.ContentLength + 1 // reads the EOF, so the connection can be reused
	}
	buf, err := io.ReadAll(io.LimitReader(res.Body, limit))
	if err != nil {
		return fmt.Errorf("%w after %d bytes: %w", errBodyBroken, len(buf), err)
	}
	if int64(len(buf)) > maxBufferedBody {
		res.Body = readCloser{io.MultiReader(bytes.NewReader(buf), res.Body), res.Body}
		return nil
	}
	if res.ContentLength >= 0 && int64(len(buf)) != res.ContentLength {
		return fmt.Errorf("%w: %d bytes of a %d-byte body", errBodyBroken, len(buf), res.ContentLength)
	}
	res.Body = readCloser{bytes.NewReader(buf), res.Body}
	return nil
}

// readCloser reads from one reader and closes another (the backend body).
type readCloser struct {
	io.Reader
	io.Closer
}

// recordError is the ReverseProxy's ErrorHandler. It writes nothing: the retry loop
// decides between another attempt and an error response.
func recordError(_ http.ResponseWriter, r *http.Request, err error) {
	if a := attemptFrom(r.Context()); a != nil && a.err == nil {
		a.err = err
	}
}

// retryableStatus lists the backend statuses worth another backend: the backend could
// not take the request now (429 only when another one has room; see forward).
func retryableStatus(code int) bool {
	switch code {
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout, http.StatusTooManyRequests:
		return true
	}
	return false
}

func isEventStream(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "text/event-stream"
}

// run sends one attempt through the ReverseProxy. w is the client's writer (or the
// Dispatch recorder); a panic with http.ErrAbortHandler (the body copy failed after the
// headers went out) is recorded in a.aborted and re-raised by the caller once the
// accounting is done.
func (h *Handler) run(ctx context.Context, w http.ResponseWriter, a *attempt, body []byte) {
	actx, cancel := context.WithCancelCause(ctx)
	a.cancel = cancel
	defer cancel(nil)
	if t := h.headerTimeout(a.x.info.Stream); t > 0 {
		a.timer = time.AfterFunc(t, func() { cancel(errHeaderTimeout) })
		defer a.timer.Stop()
	}
	req := a.x.in.WithContext(context.WithValue(actx, attemptKey{}, a))
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.ContentLength = int64(len(body))
	req.GetBody = nil
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler { //nolint:errorlint // the sentinel is panicked, not wrapped
				panic(v)
			}
			a.aborted = true
		}
	}()
	h.rp.ServeHTTP(w, req)
	if !a.committed && errors.Is(context.Cause(actx), errHeaderTimeout) {
		a.err = errHeaderTimeout
	}
}

func (h *Handler) headerTimeout(stream bool) time.Duration {
	if stream && h.cfg.StreamHeaderTimeout > 0 {
		return h.cfg.StreamHeaderTimeout
	}
	return h.cfg.ResponseHeaderTimeout
}

// bufferPool is the ReverseProxy's BufferPool: 32 KiB copy buffers reused across
// responses instead of one allocation per response.
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[]byte); ok {
		return *v
	}
	return make([]byte, 32<<10)
}

func (b *bufferPool) Put(buf []byte) { b.p.Put(&buf) }
