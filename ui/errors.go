package ui

import (
	"encoding/json"
	"net/http"
)

// apiError is an error with its OpenAI-shaped HTTP answer.
type apiError struct {
	status int
	typ    string
	msg    string
	param  string // "" = null
}

func (e *apiError) Error() string { return e.msg }

func notFound(method, path string) *apiError {
	return &apiError{status: http.StatusNotFound, typ: "invalid_request_error",
		msg: "Unknown request URL: " + method + " " + path + "."}
}

func badRequest(param, msg string) *apiError {
	return &apiError{status: http.StatusBadRequest, typ: "invalid_request_error", msg: msg, param: param}
}

func methodNotAllowed(method, path string) *apiError {
	return &apiError{status: http.StatusMethodNotAllowed, typ: "invalid_request_error",
		msg: "Method " + method + " is not allowed on " + path + "; use GET."}
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

// writeError is the package's one mapping of errors to HTTP answers.
func writeError(w http.ResponseWriter, e *apiError) int {
	var b errorBody
	b.Error.Message, b.Error.Type = e.msg, e.typ
	if e.param != "" {
		b.Error.Param = &e.param
	}
	if e.status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", "GET, HEAD")
	}
	return writeJSON(w, e.status, b)
}

// writeJSON writes v as a JSON answer and returns the status written.
func writeJSON(w http.ResponseWriter, status int, v any) int {
	body, err := json.Marshal(v)
	if err != nil {
		body, status = []byte(`{"error":{"message":"The server had an error while processing your request.","type":"server_error","param":null,"code":null}}`), http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
	return status
}
