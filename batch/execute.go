package batch

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/vllm-proxy/vllm-proxy/state"
)

// outputLine is one line of an output or error file.
type outputLine struct {
	ID       string        `json:"id"`
	CustomID string        `json:"custom_id"`
	Response *lineResponse `json:"response"`
	Error    *lineError    `json:"error"`
}

type lineResponse struct {
	StatusCode int             `json:"status_code"`
	RequestID  string          `json:"request_id"`
	Body       json.RawMessage `json:"body"`
}

type lineError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// lineOutcome is an executed line ready to be written.
type lineOutcome struct {
	idx    int64
	failed bool
	json   []byte // the output line with its newline
	usage  state.BatchUsage
}

// execute runs one line through the dispatcher with the hold/retry rules of Config. It
// returns false when the line was not finished (stop, shutdown): it stays undone.
func (w *Workers) execute(ctx context.Context, rec state.BatchRecord, l pendingLine, g *gate, s *slot) (lineOutcome, bool) {
	var heldSince time.Time
	backoff := w.cfg.RetryBackoff
	for attempt := 1; ; attempt++ {
		if g.stop(ctx) {
			return lineOutcome{}, false
		}
		w.m.linesDispatched.Inc()
		w.m.linesInFlight.Inc()
		resp, err := w.d.Dispatch(ctx, Request{Path: rec.Endpoint, Body: l.body, Model: l.model})
		w.m.linesInFlight.Dec()
		switch {
		case err == nil:
			return w.outcome(rec.ID, l, resp.Status, resp.Body), true
		case ctx.Err() != nil:
			return lineOutcome{}, false
		case errors.Is(err, ErrModelUnavailable):
			now := w.cfg.Now()
			if heldSince.IsZero() {
				heldSince = now
			}
			if now.Sub(heldSince) >= w.cfg.ModelWait {
				return w.outcome(rec.ID, l, http.StatusNotFound, errorJSON("The model `"+l.model+"` does not exist.", "invalid_request_error", "model", "model_not_found")), true
			}
			if !s.pause(ctx, w.cfg.RetryBackoff) {
				return lineOutcome{}, false
			}
		case errors.Is(err, ErrRetryable) && attempt < w.cfg.RetryAttempts:
			if !s.pause(ctx, backoff) {
				return lineOutcome{}, false
			}
			backoff = min(2*backoff, 30*time.Second)
		case errors.Is(err, ErrRetryable):
			if resp.Status >= 400 && len(resp.Body) > 0 {
				return w.outcome(rec.ID, l, resp.Status, resp.Body), true
			}
			return w.outcome(rec.ID, l, http.StatusServiceUnavailable, errorJSON("No backend could serve the request.", "server_error", "", "")), true
		default:
			w.log.WarnContext(ctx, "batch line dispatch failed", "batch", rec.ID, "line", l.idx, "err", err)
			return w.outcome(rec.ID, l, http.StatusBadGateway, errorJSON("The backend request failed.", "server_error", "", "")), true
		}
	}
}

// slot is one of the replica's MaxConcurrentRequests line slots, owned by one goroutine.
type slot struct {
	sem  chan struct{}
	held bool
}

func (s *slot) acquire(ctx context.Context) bool {
	select {
	case s.sem <- struct{}{}:
		s.held = true
		return true
	case <-ctx.Done():
		return false
	}
}

func (s *slot) release() {
	if s.held {
		<-s.sem
		s.held = false
	}
}

// pause waits d without holding a slot; false when ctx ended (the slot is then not held).
func (s *slot) pause(ctx context.Context, d time.Duration) bool {
	s.release()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	}
	return s.acquire(ctx)
}

func errorJSON(msg, typ, param, code string) []byte {
	var b errorBody
	b.Error.Message, b.Error.Type, b.Error.Param, b.Error.Code = msg, typ, nullable(param), nullable(code)
	out, _ := json.Marshal(b)
	return out
}

// outcome builds the output line of an HTTP response: 2xx → output file, else error file
// with response.status_code and the body.
func (w *Workers) outcome(batch string, l pendingLine, status int, body []byte) lineOutcome {
	raw := json.RawMessage(body)
	if !json.Valid(body) {
		s, _ := json.Marshal(string(body))
		raw = s
	}
	o := lineOutcome{idx: l.idx, failed: status < 200 || status > 299}
	line := outputLine{ID: lineRequestID(batch, l.idx), CustomID: l.customID,
		Response: &lineResponse{StatusCode: status, RequestID: "req_" + randHex(16), Body: raw}}
	if !o.failed {
		o.usage = parseUsage(body)
	}
	b, _ := json.Marshal(line)
	o.json = append(b, '\n')
	return o
}

// undoneLine is the error-file line of a line never executed (cancelled or expired).
func undoneLine(batch string, idx int64, customID, code, msg string) []byte {
	b, _ := json.Marshal(outputLine{ID: lineRequestID(batch, idx), CustomID: customID, Error: &lineError{Code: code, Message: msg}})
	return append(b, '\n')
}

// parseUsage reads usage from a chat/completions/embeddings or responses body.
func parseUsage(body []byte) state.BatchUsage {
	var v struct {
		Usage *struct {
			PromptTokens        int64 `json:"prompt_tokens"`
			CompletionTokens    int64 `json:"completion_tokens"`
			InputTokens         int64 `json:"input_tokens"`
			OutputTokens        int64 `json:"output_tokens"`
			TotalTokens         int64 `json:"total_tokens"`
			PromptTokensDetails *struct {
				CachedTokens int64 `json:"cached_tokens"`
			} `json:"prompt_tokens_details"`
			InputTokensDetails *struct {
				CachedTokens int64 `json:"cached_tokens"`
			} `json:"input_tokens_details"`
			CompletionTokensDetails *struct {
				ReasoningTokens int64 `json:"reasoning_tokens"`
			} `json:"completion_tokens_details"`
			OutputTokensDetails *struct {
				ReasoningTokens int64 `json:"reasoning_tokens"`
			} `json:"output_tokens_details"`
		} `json:"usage"`
	}
	if json.Unmarshal(body, &v) != nil || v.Usage == nil {
		return state.BatchUsage{}
	}
	u := v.Usage
	r := state.BatchUsage{InputTokens: u.PromptTokens + u.InputTokens, OutputTokens: u.CompletionTokens + u.OutputTokens, TotalTokens: u.TotalTokens}
	if u.PromptTokensDetails != nil {
		r.CachedTokens += u.PromptTokensDetails.CachedTokens
	}
	if u.InputTokensDetails != nil {
		r.CachedTokens += u.InputTokensDetails.CachedTokens
	}
	if u.CompletionTokensDetails != nil {
		r.ReasoningTokens += u.CompletionTokensDetails.ReasoningTokens
	}
	if u.OutputTokensDetails != nil {
		r.ReasoningTokens += u.OutputTokensDetails.ReasoningTokens
	}
	if r.TotalTokens == 0 {
		r.TotalTokens = r.InputTokens + r.OutputTokens
	}
	return r
}
