package proxy

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/vllm-proxy/vllm-proxy/routing"
	"github.com/vllm-proxy/vllm-proxy/sim"
)

func TestDispatch(t *testing.T) {
	busy := startTap(t, fixed(http.StatusServiceUnavailable, `{}`))
	bad := startTap(t, fixed(http.StatusBadRequest, `{"error":{"message":"nope","type":"BadRequestError","param":null,"code":400}}`))
	ok := startSim(t, sim.Config{Instant: true})
	e := newEnv(t, envOpts{routing: routing.Config{Policy: routing.PolicyRoundRobin, MaxFails: 100}},
		backend(busy.URL, "m"), backend(ok.URL(), "m"), backend(bad.URL, "b"))
	ctx := t.Context()

	t.Run("retried onto a healthy backend, counted as batch", func(t *testing.T) {
		for range 3 {
			resp, err := e.h.Dispatch(ctx, DispatchRequest{Path: "/v1/chat/completions", Body: []byte(chatBody)})
			if err != nil {
				t.Fatal(err)
			}
			if resp.Status != 200 || resp.Backend != ok.URL() || !strings.Contains(string(resp.Body), `"choices"`) ||
				!strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
				t.Fatalf("response %d from %s: %s", resp.Status, resp.Backend, resp.Body)
			}
		}
		if n := testCounter(e.h.metrics.requests, "m", ok.URL(), "200", "batch"); n != 3 {
			t.Fatalf("requests_total{class=batch} = %v, want 3", n)
		}
	})
	t.Run("a backend 4xx is a response, not an error", func(t *testing.T) {
		resp, err := e.h.Dispatch(ctx, DispatchRequest{Path: "/v1/completions", Body: []byte(`{"model":"b","prompt":"x"}`)})
		if err != nil || resp.Status != 400 || !strings.Contains(string(resp.Body), "nope") {
			t.Fatalf("resp %+v err %v", resp, err)
		}
	})
	t.Run("stream requests are collected whole", func(t *testing.T) {
		resp, err := e.h.Dispatch(ctx, DispatchRequest{Path: "/v1/chat/completions", Body: []byte(streamBody)})
		if err != nil || resp.Status != 200 || !strings.HasSuffix(string(resp.Body), "data: [DONE]\n\n") {
			t.Fatalf("resp %+v err %v", resp, err)
		}
	})
	t.Run("routing errors come back wrapped", func(t *testing.T) {
		_, err := e.h.Dispatch(ctx, DispatchRequest{Path: "/v1/chat/completions", Body: []byte(`{"model":"zzz"}`)})
		um, ok := errors.AsType[*routing.UnknownModelError](err)
		if !ok || um.Model != "zzz" {
			t.Fatalf("err = %v, want *routing.UnknownModelError", err)
		}
		if status, body := ErrorResponse(err); status != 404 || !strings.Contains(string(body), "zzz") {
			t.Fatalf("ErrorResponse = %d %s", status, body)
		}
		_, err = e.h.Dispatch(ctx, DispatchRequest{Path: "/v1/chat/completions", Body: []byte(`{"prompt":"no model"}`)})
		if !errors.Is(err, routing.ErrNoModel) {
			t.Fatalf("err = %v, want routing.ErrNoModel", err)
		}
	})
	t.Run("no backend left", func(t *testing.T) {
		only := newEnv(t, envOpts{}, backend(busy.URL, "m"))
		_, err := only.h.Dispatch(ctx, DispatchRequest{Path: "/v1/chat/completions", Body: []byte(chatBody)})
		if bs, ok := errors.AsType[*BackendStatusError](err); !ok || bs.Status != 503 || !errors.Is(err, ErrBackendBusy) {
			t.Fatalf("err = %v, want a 503 BackendStatusError", err)
		}
	})
	t.Run("bad input", func(t *testing.T) {
		for _, tc := range []struct {
			req  DispatchRequest
			want error
		}{
			{DispatchRequest{Path: "/v1/files", Body: []byte(chatBody)}, ErrNotFound},
			{DispatchRequest{Path: "/v1/chat/completions", Body: []byte(`{`)}, ErrBadRequest},
			{DispatchRequest{Path: "/v1/chat/completions", Body: make([]byte, DefaultMaxBodyBytes+1)}, ErrBodyTooLarge},
		} {
			if _, err := e.h.Dispatch(ctx, tc.req); !errors.Is(err, tc.want) {
				t.Errorf("%s: err = %v, want %v", tc.req.Path, err, tc.want)
			}
		}
	})
	t.Run("every pick was done", func(t *testing.T) { e.requireIdle(t) })
	t.Run("cancelled context", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := e.h.Dispatch(cctx, DispatchRequest{Path: "/v1/chat/completions", Body: []byte(chatBody)}); !errors.Is(err, ErrClientGone) {
			t.Fatalf("err = %v, want ErrClientGone", err)
		}
	})
}
