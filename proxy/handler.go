package proxy

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vllm-proxy/vllm-proxy/logging"
	"github.com/vllm-proxy/vllm-proxy/routing"
)

const headerRequestID = "X-Request-Id"

// postEndpoints are vLLM's POST endpoints; every one routes by the body's model field
// (a form field for the audio endpoints).
var postEndpoints = map[string]bool{
	"/v1/chat/completions":     true,
	"/v1/completions":          true,
	"/v1/embeddings":           true,
	"/v1/responses":            true,
	"/tokenize":                true,
	"/detokenize":              true,
	"/pooling":                 true,
	"/classify":                true,
	"/score":                   true,
	"/v1/score":                true,
	"/rerank":                  true,
	"/v1/rerank":               true,
	"/v2/rerank":               true,
	"/v1/audio/transcriptions": true,
	"/v1/audio/translations":   true,
}

// Handler is the proxy. It serves every vLLM POST endpoint plus GET /v1/models, /version,
// /health and /load-stats, and answers anything else with an OpenAI-shaped 404. It is
// safe for concurrent use; the Router it was built with must outlive it.
type Handler struct {
	cfg       Config
	router    *routing.Router
	log       *slog.Logger
	metrics   *Metrics
	transport *http.Transport
	rp        *httputil.ReverseProxy
	buffers   bufferPool
	admission BatchAdmission      // nil: batch lines are not held back (admission.go)
	observer  InteractiveObserver // admission, when it implements it; else nil
}

// New builds a Handler over router. log may be nil (discard); reg may be nil (metrics
// not registered).
func New(cfg Config, router *routing.Router, log *slog.Logger, reg prometheus.Registerer, opts ...Option) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if router == nil {
		return nil, fmt.Errorf("%w: a router is required", ErrInvalidConfig)
	}
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Handler{cfg: cfg, router: router, log: log, metrics: NewMetrics(reg), transport: newTransport(cfg)}
	h.rp = h.newReverseProxy()
	for _, opt := range opts {
		opt(h)
	}
	return h, nil
}

// ForgetBackend deletes the proxy's metric series for a backend that left the pool. cmd
// calls it after routing.Router.Update removed the backend.
func (h *Handler) ForgetBackend(id string) { h.metrics.ForgetBackend(id) }

// CloseIdleConnections closes the shared transport's idle keep-alive connections (at
// shutdown, after the server drained).
func (h *Handler) CloseIdleConnections() { h.transport.CloseIdleConnections() }

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := requestID(r.Header.Get(headerRequestID))
	w.Header().Set(headerRequestID, id)
	if postEndpoints[r.URL.Path] {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			h.reject(w, r, id, &clientError{kind: ErrMethodNotAllowed, msg: "method " + r.Method + " is not allowed on " + r.URL.Path})
			return
		}
		h.servePost(w, r, id)
		return
	}
	if get := h.getEndpoint(r.URL.Path); get != nil {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			h.reject(w, r, id, &clientError{kind: ErrMethodNotAllowed, msg: "method " + r.Method + " is not allowed on " + r.URL.Path})
			return
		}
		get(w)
		return
	}
	h.reject(w, r, id, &clientError{kind: ErrNotFound, msg: "no endpoint " + r.Method + " " + r.URL.Path})
}

// writeGrace is how long past request_timeout a response may still be written: enough
// for the closing events of a stream cut at the timeout, not for a client that stopped
// reading.
const writeGrace = time.Second

// servePost proxies one inference request.
func (h *Handler) servePost(w http.ResponseWriter, r *http.Request, id string) {
	h.metrics.inFlightReq.Inc()
	defer h.metrics.inFlightReq.Dec()
	x := &exchange{in: r, id: id, path: r.URL.Path, class: routing.ClassInteractive, start: time.Now()}
	x.loud = h.log.Enabled(r.Context(), logging.LevelLoud)
	body, err := readBody(w, r, h.cfg.MaxBodyBytes)
	if err == nil {
		x.body = body
		h.logReceived(x)
		x.info, err = parseBody(r.Header.Get("Content-Type"), body, h.cfg.MaxPromptBytes)
	}
	// A client that stops reading must not hold its request past request_timeout: writes
	// to it fail from then on, after a grace that lets a stream cut at the timeout still
	// end with its error event and [DONE]. The deadline is cleared again for the next
	// request on the connection (the server sets no WriteTimeout of its own).
	rc := http.NewResponseController(w)
	if rc.SetWriteDeadline(x.start.Add(h.cfg.RequestTimeout+writeGrace)) == nil {
		defer func() { _ = rc.SetWriteDeadline(time.Time{}) }()
	}
	var res *result
	if err != nil {
		res = &result{class: x.class, err: err}
	} else {
		res = h.forward(w, x)
	}
	if !res.committed {
		res.status = writeError(w, res.err)
	}
	h.finish(x, res)
	if res.aborted {
		panic(http.ErrAbortHandler) // the body broke off: the client must not see a complete response
	}
}

// reject answers a request the proxy does not route.
func (h *Handler) reject(w http.ResponseWriter, r *http.Request, id string, err error) {
	status := writeError(w, err)
	h.metrics.requests.WithLabelValues("", "", strconv.Itoa(status), string(routing.ClassInteractive)).Inc()
	h.logRejected(r, id, status)
}

// finish records a finished exchange in the metrics and the log.
func (h *Handler) finish(x *exchange, res *result) {
	res.duration = time.Since(x.start)
	h.metrics.observe(res)
	h.logFinished(x, res)
}

// readBody reads the whole request body, at most limit bytes.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	tooLarge := func() error {
		return &clientError{kind: ErrBodyTooLarge, msg: fmt.Sprintf("the request body exceeds %d bytes", limit)}
	}
	if r.ContentLength > limit {
		return nil, tooLarge()
	}
	size := 512
	if r.ContentLength > 0 {
		size = int(r.ContentLength) + 1 // +1 so the final read sees EOF without growing
	}
	buf := make([]byte, 0, size)
	body := http.MaxBytesReader(w, r.Body, limit)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, tooLarge()
		}
		if err != nil {
			if r.Context().Err() != nil {
				return nil, clientGoneError()
			}
			return nil, badRequest("", "reading the request body failed", err)
		}
	}
}

// requestID returns the client's X-Request-Id when it is safe to log and forward (1–128
// printable ASCII bytes), and a fresh random one otherwise.
func requestID(id string) string {
	if len(id) > 0 && len(id) <= 128 {
		ok := true
		for i := 0; i < len(id); i++ {
			if id[i] < 0x21 || id[i] > 0x7e {
				ok = false
				break
			}
		}
		if ok {
			return id
		}
	}
	return rand.Text()
}
