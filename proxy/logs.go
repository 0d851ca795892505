package proxy

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/vllm-proxy/vllm-proxy/logging"
)

// The proxy's records follow the level contract of package logging: Loud adds headers,
// bodies and one record per forwarded SSE event; Verbose one record per request and per
// retry; Debug requests that failed in a way the client saw; Warning a retry budget
// exhausted or a backend stream cut. Every record of a request carries its request_id.

// logReceived is the Loud record of a request's headers (credentials masked) and body.
func (h *Handler) logReceived(x *exchange) {
	if !x.loud {
		return
	}
	h.log.LogAttrs(x.in.Context(), logging.LevelLoud, "request received",
		slog.String(logging.KeyRequestID, x.id), slog.String(logging.KeyPath, x.path),
		logging.Headers(logging.KeyHeaders, x.in.Header), logging.Body(logging.KeyBody, x.body))
}

// logResponse is the Loud record of the response headers a backend sent.
func (h *Handler) logResponse(a *attempt, res *http.Response) {
	if !a.x.loud {
		return
	}
	h.log.LogAttrs(a.x.in.Context(), logging.LevelLoud, "response headers",
		slog.String(logging.KeyRequestID, a.x.id), slog.String(logging.KeyBackend, a.backend.ID()),
		slog.Int(logging.KeyStatus, res.StatusCode), logging.Headers(logging.KeyHeaders, res.Header))
}

// logEvents writes one Loud record per SSE event in piece (whole events, as bodyWatch
// hands them on).
func logEvents(log *slog.Logger, a *attempt, piece []byte) {
	for len(piece) > 0 {
		n := firstEventEnd(piece)
		if n == 0 {
			n = len(piece)
		}
		log.LogAttrs(a.x.in.Context(), logging.LevelLoud, "sse event forwarded",
			slog.String(logging.KeyRequestID, a.x.id), logging.Body("event", piece[:n]))
		piece = piece[n:]
	}
}

// firstEventEnd is the offset just past the first event boundary in b, or 0.
func firstEventEnd(b []byte) int {
	var s sseScanner
	for i := 1; i <= len(b); i++ {
		if end := s.scan(b[:i]); end > 0 {
			// A "\r" boundary may be followed by the "\n" of a CRLF; keep it with the event.
			if end < len(b) && b[end-1] == '\r' && b[end] == '\n' {
				end++
			}
			return end
		}
	}
	return 0
}

// logRetry is the Verbose record of one retry and why.
func (h *Handler) logRetry(ctx context.Context, x *exchange, res *result, reason string, err error) {
	h.log.LogAttrs(ctx, logging.LevelVerbose, "retrying on another backend",
		slog.String(logging.KeyRequestID, x.id), slog.String(logging.KeyBackend, res.backend),
		slog.String("reason", reason), slog.Int(logging.KeyAttempt, res.attempts), logging.Err(err))
}

// logRejected is the Debug record of a request for an unknown path or method.
func (h *Handler) logRejected(r *http.Request, id string, status int) {
	h.log.LogAttrs(r.Context(), logging.LevelDebug, "request rejected",
		slog.String(logging.KeyRequestID, id), slog.String(logging.KeyMethod, r.Method),
		slog.String(logging.KeyPath, r.URL.Path), slog.Int(logging.KeyStatus, status))
}

// logFinished is the one record of a finished request, at a level that says how it went.
func (h *Handler) logFinished(x *exchange, res *result) {
	level, msg := logging.LevelVerbose, "request served"
	switch {
	case res.cut:
		level, msg = logging.LevelWarning, "backend stream cut"
	case errors.Is(res.err, ErrClientGone):
		msg = "client went away"
	case res.err != nil && res.attempts > 1:
		level, msg = logging.LevelWarning, "retries exhausted"
	case res.err != nil:
		level, msg = logging.LevelDebug, "request failed"
	}
	ctx := x.in.Context()
	if !h.log.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{
		slog.String(logging.KeyRequestID, x.id), slog.String(logging.KeyPath, x.path),
		slog.String("class", string(x.class)), slog.String(logging.KeyModel, x.info.Model),
		slog.String(logging.KeyBackend, res.backend), slog.Int(logging.KeyStatus, res.status),
		slog.Int("attempts", res.attempts), slog.Duration(logging.KeyDuration, res.duration),
		slog.Bool("stream", res.stream),
	}
	if res.err != nil {
		attrs = append(attrs, logging.Err(res.err))
	}
	h.log.LogAttrs(ctx, level, msg, attrs...) //nolint:sloglint // msg is one of the constant messages above
}
