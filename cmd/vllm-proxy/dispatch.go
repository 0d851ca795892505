package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/vllm-proxy/vllm-proxy/batch"
	"github.com/vllm-proxy/vllm-proxy/proxy"
	"github.com/vllm-proxy/vllm-proxy/routing"
)

// lineDispatcher sends batch lines through the proxy's in-process path: the same
// parse, routing, counters, failover and metrics as interactive traffic, as class
// "batch". It translates the proxy's outcomes into the batch package's retry rules.
type lineDispatcher struct {
	h *proxy.Handler
}

var _ batch.Dispatcher = lineDispatcher{}

// Dispatch implements batch.Dispatcher.
//   - A backend's answer is the line's result, except 502/503/504/429, which the proxy
//     already retried on other backends: those are retried later (batch.ErrRetryable).
//   - No backend serves the model: the line is held (batch.ErrModelUnavailable).
//   - Backends down, unreachable, timing out or cutting the response: retried later.
//   - The request itself is bad (400, 413, unknown path): recorded as failed with the
//     error body the proxy would have sent a client.
//   - ctx ended: the error is returned as is; the line is not recorded.
func (d lineDispatcher) Dispatch(ctx context.Context, req batch.Request) (batch.Response, error) {
	resp, err := d.h.Dispatch(ctx, proxy.DispatchRequest{Path: req.Path, Body: req.Body, Class: routing.ClassBatch})
	if err == nil {
		out := batch.Response{Status: resp.Status, Body: resp.Body}
		if retryableStatus(resp.Status) {
			return out, fmt.Errorf("%w: backend %s answered %d", batch.ErrRetryable, resp.Backend, resp.Status)
		}
		return out, nil
	}
	if ctx.Err() != nil || errors.Is(err, proxy.ErrClientGone) {
		return batch.Response{}, fmt.Errorf("dispatching a batch line: %w", err)
	}
	status, body := proxy.ErrorResponse(err)
	out := batch.Response{Status: status, Body: body}
	var unknown *routing.UnknownModelError
	switch {
	case errors.As(err, &unknown):
		return out, fmt.Errorf("%w: %w", batch.ErrModelUnavailable, err)
	case errors.Is(err, routing.ErrNoBackend), errors.Is(err, proxy.ErrBackendBusy),
		errors.Is(err, proxy.ErrBackendUnreachable), errors.Is(err, proxy.ErrTimeout),
		errors.Is(err, proxy.ErrStreamCut):
		return out, fmt.Errorf("%w: %w", batch.ErrRetryable, err)
	}
	return out, nil // the line itself is bad: its error is its result
}

// retryableStatus reports the statuses a line is tried again for.
func retryableStatus(code int) bool {
	switch code {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}
