package proxy

import (
	"fmt"

	"github.com/vllm-proxy/vllm-proxy/routing"
)

// vLLM's "priority" request field (lower is served earlier) is accepted only by a server
// running --scheduling-policy priority; any other value than 0 makes a server running
// fcfs answer 400. So the proxy decides the field per attempt, once the backend is known
// (outboundBody):
//
//   - on a backend whose priority scheduling is configured or detected
//     (routing.Backend.PriorityScheduling): an interactive request without its own
//     priority gets PriorityConfig.Interactive; one with its own keeps it, clamped to
//     [ClientMin, ClientMax] when those are set; a batch line gets PriorityConfig.Batch,
//     or its own value when that is larger (a line can never overtake interactive
//     traffic);
//   - on every other backend (fcfs, or not yet known) any priority other than 0 or null
//     is replaced by 0, so such a backend never sees a non-zero priority.
//
// Only the JSON endpoints that take the field are touched (priorityEndpoints); the rest
// of the body is forwarded byte for byte.

// DefaultBatchPriority is the priority of batch lines when PriorityConfig.Batch is nil.
const DefaultBatchPriority = 10

// PriorityConfig sets the vLLM "priority" field per traffic class. The zero value sends
// interactive requests at 0 and batch lines at 10.
type PriorityConfig struct {
	// Interactive is the priority of interactive requests that set none
	// (VLLM_PXY_CHAT_COMPLETION_PRIORITY). Default 0.
	Interactive int
	// Batch is the priority of batch lines (VLLM_PXY_BATCH_PRIORITY); nil means 10.
	Batch *int
	// ClientMin and ClientMax, when set, clamp the priority an interactive client sends
	// itself (e.g. ClientMin 0 keeps clients from jumping ahead of everyone with a
	// negative value). nil means unbounded.
	ClientMin, ClientMax *int
}

// batch returns the effective batch priority.
func (c PriorityConfig) batch() int {
	if c.Batch == nil {
		return DefaultBatchPriority
	}
	return *c.Batch
}

// problems lists what is wrong with c.
func (c PriorityConfig) problems() []string {
	var p []string
	if c.ClientMin != nil && c.ClientMax != nil && *c.ClientMin > *c.ClientMax {
		p = append(p, fmt.Sprintf("priority.client_min (%d) must not exceed priority.client_max (%d)", *c.ClientMin, *c.ClientMax))
	}
	if c.batch() < c.Interactive {
		p = append(p, fmt.Sprintf("priority.batch (%d) must not be below priority.interactive (%d): lower is served earlier", c.batch(), c.Interactive))
	}
	return p
}

// clamp bounds a client's own priority.
func (c PriorityConfig) clamp(n int) int {
	if c.ClientMin != nil {
		n = max(n, *c.ClientMin)
	}
	if c.ClientMax != nil {
		n = min(n, *c.ClientMax)
	}
	return n
}

// priorityEndpoints are the endpoints whose vLLM request model has a "priority" field.
var priorityEndpoints = map[string]bool{
	"/v1/chat/completions": true,
	"/v1/completions":      true,
	"/v1/embeddings":       true,
	"/v1/responses":        true,
}

// withPriority returns the body to send to a backend: body itself when nothing changes,
// else a rewritten copy. prioritySched says whether the backend accepts priorities.
func (c PriorityConfig) withPriority(path string, body []byte, class routing.Class, prioritySched bool) []byte {
	if !priorityEndpoints[path] {
		return body
	}
	f, ok := scanPriority(body)
	if !ok {
		return body
	}
	if !prioritySched {
		for _, sp := range f.values {
			if !isZeroOrNull(body[sp.start:sp.end]) {
				return setPriority(body, f, 0)
			}
		}
		return body
	}
	own, has := 0, false
	if len(f.values) > 0 {
		last := f.values[len(f.values)-1]
		raw := body[last.start:last.end]
		if string(raw) != "null" {
			own, has = priorityValue(raw)
			if !has {
				return body // a mistyped priority is the backend's to reject
			}
		}
	}
	want := c.Interactive
	switch {
	case class == routing.ClassBatch && has:
		want = max(own, c.batch())
	case class == routing.ClassBatch:
		want = c.batch()
	case has:
		want = c.clamp(own)
	}
	if has && want == own && len(f.values) == 1 && string(body[f.values[0].start:f.values[0].end]) == fmt.Sprint(own) {
		return body // already exactly what we would write
	}
	if !has && want == 0 && len(f.values) == 0 {
		return body // 0 is vLLM's default: no need to write it
	}
	return setPriority(body, f, want)
}
