package routing

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Priority detection. vLLM does not publish its scheduling policy, but it rejects a
// non-zero "priority" with HTTP 400 ("... Priority scheduling is not enabled.") unless it
// runs --scheduling-policy priority. So for a backend whose BackendConfig.PriorityScheduling
// is nil, the router sends one tiny completion (one prompt character, max_tokens 1,
// priority 1) after its model list is known, and keeps the answer:
//
//	200                           → priority scheduling
//	400 mentioning "priority"     → fcfs
//	anything else / network error → unknown, asked again at the next model refresh,
//	                                  at most maxPriorityProbes times
//
// Until known, PriorityScheduling() is false, so nobody sends a non-zero priority there.

// maxPriorityProbes bounds inconclusive probes (e.g. a pooling-only backend that has no
// completions endpoint); after them the backend stays "unknown", treated as fcfs.
const maxPriorityProbes = 3

// priorityState is the detection result: unknown until probed.
type priorityState uint8

const (
	priorityUnknown priorityState = iota
	priorityOn
	priorityOff
)

// detectPriority probes b when its scheduling policy is neither configured nor known.
func (r *Router) detectPriority(ctx context.Context, b *Backend) {
	b.mu.Lock()
	need := b.cfg.PriorityScheduling == nil && b.prio == priorityUnknown && b.prioProbes < maxPriorityProbes &&
		b.healthy && !b.removed
	model := ""
	for _, m := range b.fetched {
		if !m.IsLoRA() {
			model = m.ID
			break
		}
	}
	if !need || model == "" {
		b.mu.Unlock()
		return
	}
	b.prioProbes++
	b.mu.Unlock()
	st, err := r.probePriority(ctx, b, model)
	if err != nil {
		r.log.LogAttrs(ctx, slogDebug, "priority scheduling detection inconclusive", attrBackend(b.id), errAttr(err))
		return
	}
	b.mu.Lock()
	b.prio = st
	b.mu.Unlock()
	r.log.LogAttrs(ctx, slogInfo, "priority scheduling detected", attrBackend(b.id),
		boolAttr("priority_scheduling", st == priorityOn))
}

func (r *Router) probePriority(ctx context.Context, b *Backend, model string) (priorityState, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.ProbeTimeout)
	defer cancel()
	body, err := json.Marshal(map[string]any{"model": model, "prompt": "a", "max_tokens": 1, "priority": 1})
	if err != nil {
		return priorityUnknown, fmt.Errorf("encoding priority probe: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.id+"/v1/completions", bytes.NewReader(body))
	if err != nil {
		return priorityUnknown, fmt.Errorf("building priority probe for %s: %w", b.id, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-Id", "vllm-proxy-priority-probe")
	r.authorize(req)
	resp, err := r.client.Do(req) //nolint:bodyclose // drainClose below closes it
	if err != nil {
		return priorityUnknown, fmt.Errorf("priority probe to %s: %w", b.id, err)
	}
	defer drainClose(resp.Body)
	switch resp.StatusCode {
	case http.StatusOK:
		return priorityOn, nil
	case http.StatusBadRequest:
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if strings.Contains(strings.ToLower(string(msg)), "priority") {
			return priorityOff, nil
		}
		return priorityUnknown, fmt.Errorf("priority probe to %s: status 400 not about priority", b.id)
	default:
		return priorityUnknown, fmt.Errorf("priority probe to %s: status %d", b.id, resp.StatusCode)
	}
}
