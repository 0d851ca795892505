package proxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/vllm-proxy/vllm-proxy/routing"
)

func TestErrorResponse(t *testing.T) {
	secret := errors.New("dial tcp 10.1.2.3:8000: connect: connection refused")
	tests := []struct {
		name      string
		err       error
		status    int
		typ       string
		param     string // "" means null
		msgHas    string
		msgHasNot string
	}{
		{"bad request", badRequest("model", "the model field must be a string", nil), 400, "BadRequestError", "model", "must be a string", ""},
		{"too large", &clientError{kind: ErrBodyTooLarge, msg: "too big"}, 413, "RequestEntityTooLargeError", "", "too big", ""},
		{"not found", &clientError{kind: ErrNotFound, msg: "no endpoint GET /x"}, 404, "NotFoundError", "", "/x", ""},
		{"unknown model", fmt.Errorf("routing: %w", &routing.UnknownModelError{Model: "nope", Available: []string{"a", "b"}}),
			404, "NotFoundError", "model", "The model `nope` does not exist. Available models: a, b.", ""},
		{"no model", fmt.Errorf("x: %w", routing.ErrNoModel), 400, "BadRequestError", "model", "model field is required", ""},
		{"no backend", fmt.Errorf("routing model %q: %w", "m", routing.ErrNoBackend), 503, "ServiceUnavailableError", "", "retry later", ""},
		{"client gone", clientGoneError(), 499, "ClientClosedRequestError", "", "closed", ""},
		{"timeout", fmt.Errorf("%w: reaching x: %w", ErrTimeout, secret), 504, "GatewayTimeoutError", "", "timed out", "10.1.2.3"},
		{"unreachable", fmt.Errorf("%w: connecting: %w", ErrBackendUnreachable, secret), 502, "BadGatewayError", "", "could not be reached", "10.1.2.3"},
		{"busy 503", &BackendStatusError{Status: 503}, 503, "ServiceUnavailableError", "", "retry later", ""},
		{"busy 429", &BackendStatusError{Status: 429, RetryAfter: "2"}, 429, "RateLimitError", "", "retry later", ""},
		{"stream cut", fmt.Errorf("%w: %w", ErrStreamCut, secret), 502, "BadGatewayError", "", "broke off", "10.1.2.3"},
		{"unknown error", secret, 500, "InternalServerError", "", "failed", "10.1.2.3"},
		{"context canceled alone", context.Canceled, 500, "InternalServerError", "", "failed", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := ErrorResponse(tc.err)
			if status != tc.status {
				t.Errorf("status = %d, want %d", status, tc.status)
			}
			var got struct {
				Error struct {
					Message string  `json:"message"`
					Type    string  `json:"type"`
					Param   *string `json:"param"`
					Code    int     `json:"code"`
				} `json:"error"`
			}
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("body %s: %v", body, err)
			}
			e := got.Error
			if e.Type != tc.typ || e.Code != tc.status {
				t.Errorf("type/code = %s/%d, want %s/%d", e.Type, e.Code, tc.typ, tc.status)
			}
			if (e.Param == nil) != (tc.param == "") || (e.Param != nil && *e.Param != tc.param) {
				t.Errorf("param = %v, want %q", e.Param, tc.param)
			}
			if !strings.Contains(e.Message, tc.msgHas) {
				t.Errorf("message %q lacks %q", e.Message, tc.msgHas)
			}
			if tc.msgHasNot != "" && strings.Contains(string(body), tc.msgHasNot) {
				t.Errorf("body %s leaks %q", body, tc.msgHasNot)
			}
			if !strings.Contains(string(body), `"param":`) {
				t.Errorf("body %s has no param key", body)
			}
		})
	}
}

func TestBackendStatusErrorIs(t *testing.T) {
	err := fmt.Errorf("dispatching: %w", &BackendStatusError{Status: 503})
	if !errors.Is(err, ErrBackendBusy) {
		t.Fatal("BackendStatusError does not wrap ErrBackendBusy")
	}
	if bs, ok := errors.AsType[*BackendStatusError](err); !ok || bs.Status != http.StatusServiceUnavailable {
		t.Fatalf("AsType = %v, %v", bs, ok)
	}
}
