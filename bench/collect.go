package bench

import (
	"strconv"
	"time"
)

// Sample is the outcome of one request, as seen by the client.
type Sample struct {
	// Target is the index of the target in Config.Targets.
	Target int `json:"target"`
	// Index is the workload request index.
	Index int `json:"index"`
	// Start is when the request was sent, since the start of the run.
	Start time.Duration `json:"start_ns"`
	// Lag is how late the request was sent against its scheduled arrival (open loop
	// only): large values mean the generator, not the target, was the bottleneck.
	Lag time.Duration `json:"lag_ns"`
	// TTFT is the time to the first generated token (E2E when not streaming or no token).
	TTFT time.Duration `json:"ttft_ns"`
	// E2E is the time to the end of the response.
	E2E time.Duration `json:"e2e_ns"`
	// Status is the HTTP status (0 when there was no response).
	Status int `json:"status"`
	// Err is "" on success, else one of the ErrKind constants.
	Err string `json:"err,omitempty"`
	// PromptTokens and OutputTokens come from the response usage when present, else
	// from the estimate (prompt) and the count of token chunks (output).
	PromptTokens int `json:"prompt_tokens"`
	OutputTokens int `json:"output_tokens"`
	// Header is the value of Config.CountHeader in the response.
	Header string `json:"header,omitempty"`
}

// OK reports whether the request succeeded.
func (s *Sample) OK() bool { return s.Err == "" }

// ErrorKey is the key this sample is counted under in TargetReport.Errors: the status
// code for HTTP errors, else the error kind.
func (s *Sample) ErrorKey() string {
	if s.Err == ErrKindStatus {
		return strconv.Itoa(s.Status)
	}
	return s.Err
}

// collector accumulates one target's samples. Guarded by target.mu.
type collector struct {
	samples []Sample
	itl     *Histogram
}

func (c *collector) add(s *Sample, gaps []time.Duration) {
	c.samples = append(c.samples, *s)
	if s.OK() && len(gaps) > 0 {
		if c.itl == nil {
			c.itl = NewHistogram()
		}
		for _, g := range gaps {
			c.itl.Add(g.Seconds())
		}
	}
}
