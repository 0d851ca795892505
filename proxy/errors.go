package proxy

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/vllm-proxy/vllm-proxy/routing"
)

// Sentinels classifying the errors [Handler.Dispatch] returns and [ErrorResponse] maps.
// Routing's own errors (routing.ErrNoModel, *routing.UnknownModelError,
// routing.ErrNoBackend) are returned wrapped, not translated.
var (
	// ErrBadRequest: the request body is malformed (400).
	ErrBadRequest = errors.New("bad request")
	// ErrBodyTooLarge: the request body exceeds Config.MaxBodyBytes (413).
	ErrBodyTooLarge = errors.New("request body too large")
	// ErrNotFound: no such endpoint (404).
	ErrNotFound = errors.New("not found")
	// ErrMethodNotAllowed: the endpoint exists for another method (405).
	ErrMethodNotAllowed = errors.New("method not allowed")
	// ErrClientGone: the client disconnected or cancelled before the response was
	// complete (499). Never a backend failure.
	ErrClientGone = errors.New("client closed request")
	// ErrTimeout: Config.RequestTimeout expired before a response was complete (504).
	ErrTimeout = errors.New("request timed out")
	// ErrBackendUnreachable: every attempt failed at the transport level, with no
	// response (502).
	ErrBackendUnreachable = errors.New("backend unreachable")
	// ErrStreamCut: the backend's response broke off after bytes had reached the client.
	ErrStreamCut = errors.New("backend stream cut")
	// ErrBackendBusy: every attempt was answered 502, 503, 504 or 429 and no other backend
	// was left to try; see [*BackendStatusError] for the status.
	ErrBackendBusy = errors.New("backend busy")
)

// clientError is a problem with the request itself; its message is safe to show the client.
type clientError struct {
	kind  error  // ErrBadRequest, ErrBodyTooLarge, ErrNotFound or ErrMethodNotAllowed
	param string // the offending field, if any
	msg   string
	cause error
}

func (e *clientError) Error() string {
	if e.cause != nil {
		return e.msg + ": " + e.cause.Error()
	}
	return e.msg
}

func (e *clientError) Unwrap() []error {
	if e.cause != nil {
		return []error{e.kind, e.cause}
	}
	return []error{e.kind}
}

func badRequest(param, msg string, cause error) error {
	return &clientError{kind: ErrBadRequest, param: param, msg: msg, cause: cause}
}

// BackendStatusError is the last attempt's status when every attempt was answered with a
// retryable status (502, 503, 504, 429). It wraps [ErrBackendBusy].
type BackendStatusError struct {
	// Status is the backend's HTTP status.
	Status int
	// RetryAfter is the backend's Retry-After header, if it sent one.
	RetryAfter string
}

func (e *BackendStatusError) Error() string {
	return fmt.Sprintf("backend answered %d", e.Status)
}

func (e *BackendStatusError) Unwrap() error { return ErrBackendBusy }

// errorBody is vLLM's (and OpenAI's) error shape.
type errorBody struct {
	Error errorInfo `json:"error"`
}

type errorInfo struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    int     `json:"code"`
}

// StatusClientClosedRequest is nginx's non-standard status for a client that went away.
const StatusClientClosedRequest = 499

// errorInfoFor is the one place an error becomes an HTTP status and an OpenAI-shaped
// body. Messages of 4xx errors describe the client's mistake; messages of 5xx errors are
// fixed strings that leak no internals. Unknown errors are 500.
func errorInfoFor(err error) (int, errorInfo) {
	var (
		status int
		msg    string
		param  string
	)
	ce, isClient := errors.AsType[*clientError](err)
	um, isUnknown := errors.AsType[*routing.UnknownModelError](err)
	bs, isBusy := errors.AsType[*BackendStatusError](err)
	switch {
	case isClient:
		status, msg, param = statusOfKind(ce.kind), ce.Error(), ce.param
	case isUnknown:
		status, param = http.StatusNotFound, "model"
		msg = fmt.Sprintf("The model `%s` does not exist. Available models: %s.", um.Model, strings.Join(um.Available, ", "))
	case errors.Is(err, routing.ErrNoModel):
		status, param = http.StatusBadRequest, "model"
		msg = "The model field is required because this server serves several models."
	case errors.Is(err, ErrClientGone):
		status, msg = StatusClientClosedRequest, "The client closed the request."
	case errors.Is(err, ErrTimeout):
		status, msg = http.StatusGatewayTimeout, "The request timed out before a backend answered."
	case errors.Is(err, routing.ErrNoBackend):
		status, msg = http.StatusServiceUnavailable, "No backend is available for this model; retry later."
	case isBusy:
		status = bs.Status
		msg = "The backends are overloaded or unavailable; retry later."
	case errors.Is(err, ErrStreamCut):
		status, msg = http.StatusBadGateway, "The backend's response broke off before it was complete."
	case errors.Is(err, ErrBackendUnreachable):
		status, msg = http.StatusBadGateway, "The backend could not be reached."
	default:
		status, msg = http.StatusInternalServerError, "The proxy failed to handle the request."
	}
	info := errorInfo{Message: msg, Type: errorType(status), Code: status}
	if param != "" {
		info.Param = &param
	}
	return status, info
}

func statusOfKind(kind error) int {
	switch kind {
	case ErrBodyTooLarge: //nolint:errorlint // kind is one of the sentinels itself, never wrapped
		return http.StatusRequestEntityTooLarge
	case ErrNotFound:
		return http.StatusNotFound
	case ErrMethodNotAllowed:
		return http.StatusMethodNotAllowed
	default:
		return http.StatusBadRequest
	}
}

// errorType names a status the way vLLM's error responses do.
func errorType(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "BadRequestError"
	case http.StatusNotFound:
		return "NotFoundError"
	case http.StatusMethodNotAllowed:
		return "MethodNotAllowedError"
	case http.StatusRequestEntityTooLarge:
		return "RequestEntityTooLargeError"
	case http.StatusTooManyRequests:
		return "RateLimitError"
	case StatusClientClosedRequest:
		return "ClientClosedRequestError"
	case http.StatusBadGateway:
		return "BadGatewayError"
	case http.StatusServiceUnavailable:
		return "ServiceUnavailableError"
	case http.StatusGatewayTimeout:
		return "GatewayTimeoutError"
	default:
		return "InternalServerError"
	}
}

// ErrorResponse maps an error from [Handler.Dispatch] (or any proxy error) to the status
// and OpenAI-shaped JSON body a client would have received from ServeHTTP, so the batch
// API reports failed lines in the same shape.
func ErrorResponse(err error) (status int, body []byte) {
	status, info := errorInfoFor(err)
	body, _ = json.Marshal(errorBody{Error: info}) // cannot fail: plain strings and ints
	return status, body
}

// writeError writes err as an OpenAI-shaped error response. The caller has checked that
// nothing was written yet.
func writeError(w http.ResponseWriter, err error) int {
	status, body := ErrorResponse(err)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if bs, ok := errors.AsType[*BackendStatusError](err); ok && bs.RetryAfter != "" {
		h.Set("Retry-After", bs.RetryAfter)
	}
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n')) // #nosec G705 -- json.Marshal output (<, >, & escaped) served as application/json, never HTML
	return status
}
