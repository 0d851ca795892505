package proxy

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/vllm-proxy/vllm-proxy/logging"
	"github.com/vllm-proxy/vllm-proxy/routing"
)

// DispatchRequest is one request sent in-process, e.g. one line of a batch.
type DispatchRequest struct {
	// Path is a vLLM POST endpoint, e.g. "/v1/chat/completions".
	Path string
	// Body is the request body; it is forwarded as is and must not be modified until
	// Dispatch returns.
	Body []byte
	// Header holds the request headers to forward (may be nil). Content-Type defaults to
	// application/json.
	Header http.Header
	// Class is the traffic class; empty means routing.ClassBatch.
	Class routing.Class
}

// DispatchResponse is a backend's complete response to a dispatched request.
type DispatchResponse struct {
	// Status is the backend's HTTP status (any status, 4xx and 5xx included, that was not
	// retried away).
	Status int
	// Header is the backend's response headers, hop-by-hop headers removed.
	Header http.Header
	// Body is the complete response body.
	Body []byte
	// Backend is the ID of the backend that answered.
	Backend string
}

// Dispatch sends one request through the same parse, Pick, retry loop, counters and
// metrics as ServeHTTP, without streaming: the response is collected in memory (at most
// Config.MaxDispatchResponseBytes). Any backend response is returned as a
// DispatchResponse. Otherwise the error wraps what went wrong: ErrBadRequest,
// ErrBodyTooLarge, ErrNotFound, routing.ErrNoModel, *routing.UnknownModelError,
// routing.ErrNoBackend, ErrBackendBusy (*BackendStatusError), ErrBackendUnreachable,
// ErrTimeout, ErrStreamCut or ErrClientGone (ctx ended); [ErrorResponse] turns it into
// the status and body ServeHTTP would have sent. Safe for concurrent use.
func (h *Handler) Dispatch(ctx context.Context, req DispatchRequest) (*DispatchResponse, error) {
	h.metrics.inFlightReq.Inc()
	defer h.metrics.inFlightReq.Dec()
	class := req.Class
	if class == "" {
		class = routing.ClassBatch
	}
	in, err := http.NewRequestWithContext(ctx, http.MethodPost, req.Path, http.NoBody)
	if err != nil {
		return nil, fmt.Errorf("dispatching to %q: %w", req.Path,
			&clientError{kind: ErrNotFound, msg: "the path is not a valid URL path", cause: err})
	}
	in.Header = req.Header.Clone()
	if in.Header == nil {
		in.Header = http.Header{}
	}
	if in.Header.Get("Content-Type") == "" {
		in.Header.Set("Content-Type", "application/json")
	}
	x := &exchange{in: in, id: requestID(in.Header.Get(headerRequestID)), path: req.Path, body: req.Body,
		class: class, start: time.Now(), loud: h.log.Enabled(ctx, logging.LevelLoud)}
	h.logReceived(x)
	var res *result
	switch {
	case !postEndpoints[in.URL.Path]:
		res = &result{class: class, err: &clientError{kind: ErrNotFound, msg: "no endpoint POST " + req.Path}}
	case int64(len(req.Body)) > h.cfg.MaxBodyBytes:
		res = &result{class: class, err: &clientError{kind: ErrBodyTooLarge, msg: fmt.Sprintf("the request body exceeds %d bytes", h.cfg.MaxBodyBytes)}}
	default:
		x.info, err = parseBody(in.Header.Get("Content-Type"), req.Body, h.cfg.MaxPromptBytes)
		if err != nil {
			res = &result{class: class, err: err}
		}
	}
	rec := &recorder{header: http.Header{}, limit: h.cfg.MaxDispatchResponseBytes}
	if res == nil {
		res = h.forward(rec, x)
	}
	if res.committed && res.err == nil && rec.overflow {
		res.err = fmt.Errorf("%w: the response exceeds %d bytes", ErrBackendUnreachable, rec.limit)
	}
	if !res.committed || res.err != nil {
		res.status, _ = ErrorResponse(res.err)
		h.finish(x, res)
		return nil, fmt.Errorf("dispatching to %s: %w", req.Path, res.err)
	}
	h.finish(x, res)
	return &DispatchResponse{Status: rec.status, Header: rec.header, Body: rec.body, Backend: res.backend}, nil
}

// recorder is the in-memory http.ResponseWriter Dispatch hands the ReverseProxy.
type recorder struct {
	header   http.Header
	status   int
	body     []byte
	limit    int64
	overflow bool
}

var errResponseTooLarge = errors.New("dispatch response too large")

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *recorder) Write(p []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	if int64(len(r.body)+len(p)) > r.limit {
		r.overflow = true
		return 0, errResponseTooLarge
	}
	r.body = append(r.body, p...)
	return len(p), nil
}

// Flush is a no-op: the whole response is returned at once.
func (r *recorder) Flush() {}
