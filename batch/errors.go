package batch

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/vllm-proxy/vllm-proxy/state"
)

// apiError is an error with its OpenAI-shaped HTTP answer.
type apiError struct {
	status int
	typ    string
	msg    string
	param  string // "" = null
	code   string // "" = null
}

func (e *apiError) Error() string { return e.msg }

// badRequest is a 400 invalid_request_error naming param ("" = null).
func badRequest(param, msg string) *apiError {
	return &apiError{status: http.StatusBadRequest, typ: "invalid_request_error", msg: msg, param: param}
}

// errorBody is the OpenAI error envelope; all four keys are always present.
type errorBody struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Param   *string `json:"param"`
		Code    *string `json:"code"`
	} `json:"error"`
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// toAPIError maps any error to its HTTP answer; it is the package's one error mapping.
// 5xx messages leak no internals.
func toAPIError(err error) *apiError {
	var ae *apiError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, state.ErrFileNotFound):
		return &apiError{status: http.StatusNotFound, typ: "invalid_request_error", msg: "No such File object.", param: "id"}
	case errors.Is(err, state.ErrBatchNotFound):
		return &apiError{status: http.StatusNotFound, typ: "invalid_request_error", msg: "No such Batch object.", param: "id"}
	case errors.Is(err, state.ErrBlobTooLarge), errors.As(err, &mbe):
		return &apiError{status: http.StatusRequestEntityTooLarge, typ: "invalid_request_error", msg: "The file exceeds the maximum upload size.", param: "file"}
	case errors.Is(err, context.Canceled):
		return &apiError{status: 499, typ: "invalid_request_error", msg: "Client closed the request."}
	case errors.Is(err, context.DeadlineExceeded):
		return &apiError{status: http.StatusGatewayTimeout, typ: "server_error", msg: "The request timed out."}
	default:
		return &apiError{status: http.StatusInternalServerError, typ: "server_error", msg: "The server had an error while processing your request."}
	}
}

// writeError writes err as an OpenAI error; 5xx causes are logged.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	ae := toAPIError(err)
	if ae.status >= 500 {
		log.ErrorContext(r.Context(), "batch api request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	var b errorBody
	b.Error.Message, b.Error.Type = ae.msg, ae.typ
	b.Error.Param, b.Error.Code = nullable(ae.param), nullable(ae.code)
	writeJSON(w, ae.status, b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
