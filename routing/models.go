package routing

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
)

// Model is one entry of vLLM's GET /v1/models list, kept in vLLM's shape. LoRA adapters
// are entries whose Parent is the base model.
type Model struct {
	ID          string          `json:"id"`            // served model name or adapter name
	Object      string          `json:"object"`        // always "model"
	Created     int64           `json:"created"`       // unix seconds, as the backend reported
	OwnedBy     string          `json:"owned_by"`      // "vllm"
	Root        *string         `json:"root"`          // model path (adapter path for LoRA)
	Parent      *string         `json:"parent"`        // base model of a LoRA adapter, else null
	MaxModelLen *int64          `json:"max_model_len"` // context length, when reported
	Permission  json.RawMessage `json:"permission"`    // passed through untouched ([] when absent)
}

// IsLoRA reports whether the entry is a LoRA adapter (it has a parent model).
func (m Model) IsLoRA() bool { return m.Parent != nil && *m.Parent != "" }

// staticModel is the entry for a configured model name no backend has reported yet.
func staticModel(id string) Model {
	return Model{ID: id, Object: "model", OwnedBy: "vllm", Root: &id, Permission: json.RawMessage("[]")}
}

// modelList is the body of GET /v1/models.
type modelList struct {
	Object string  `json:"object"`
	Data   []Model `json:"data"`
}

// maxModelsBytes bounds a /v1/models body.
const maxModelsBytes = 8 << 20

// ParseModels decodes a GET /v1/models body. Entries without an id are dropped; missing
// object/permission fields are filled in so the merged list keeps vLLM's shape.
func ParseModels(r io.Reader) ([]Model, error) {
	var l modelList
	if err := json.NewDecoder(io.LimitReader(r, maxModelsBytes)).Decode(&l); err != nil {
		return nil, fmt.Errorf("decoding model list: %w", err)
	}
	out := l.Data[:0]
	for _, m := range l.Data {
		if m.ID == "" {
			continue
		}
		if m.Object == "" {
			m.Object = "model"
		}
		if len(m.Permission) == 0 || string(m.Permission) == "null" {
			m.Permission = json.RawMessage("[]")
		}
		out = append(out, m)
	}
	return slices.Clip(out), nil
}

// fetchModels reads one backend's model list.
func (r *Router) fetchModels(ctx context.Context, b *Backend) ([]Model, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.ProbeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.id+"/v1/models", nil)
	if err != nil {
		return nil, fmt.Errorf("building model list request for %s: %w", b.id, err)
	}
	req.Header.Set("Accept", "application/json")
	r.authorize(req)
	resp, err := r.client.Do(req) //nolint:bodyclose // drainClose below closes it
	if err != nil {
		return nil, fmt.Errorf("reading model list from %s: %w", b.id, err)
	}
	defer drainClose(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("reading model list from %s: status %d", b.id, resp.StatusCode)
	}
	ms, err := ParseModels(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("reading model list from %s: %w", b.id, err)
	}
	return ms, nil
}

// refreshModels fetches one backend's models and reports whether its served set changed.
// A failed fetch keeps the last good list.
func (r *Router) refreshModels(ctx context.Context, b *Backend) bool {
	ms, err := r.fetchModels(ctx, b)
	b.mu.Lock()
	defer b.mu.Unlock()
	if err != nil {
		if b.modelsErr == "" {
			r.log.LogAttrs(ctx, slog.LevelWarn, "backend model list unavailable",
				attrBackend(b.id), errAttr(err))
		}
		b.modelsErr = err.Error()
		return false
	}
	b.modelsErr = ""
	changed := !slices.EqualFunc(b.fetched, ms, func(a, c Model) bool { return modelEqual(a, c) })
	b.fetched = ms
	return changed
}

func modelEqual(a, b Model) bool {
	return a.ID == b.ID && ptrEq(a.Parent, b.Parent) && ptrEq(a.Root, b.Root) &&
		ptrEq(a.MaxModelLen, b.MaxModelLen) && a.Created == b.Created && a.OwnedBy == b.OwnedBy &&
		string(a.Permission) == string(b.Permission)
}

func ptrEq[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// authorize adds the configured backend API key to a request for a backend's /v1 API.
func (r *Router) authorize(req *http.Request) {
	if r.cfg.BackendAPIKey != "" {
		req.Header.Set("Authorization", "Bearer "+r.cfg.BackendAPIKey)
	}
}

// drainClose reads a little of what is left so the connection can be reused, then closes.
func drainClose(rc io.ReadCloser) {
	_, _ = io.CopyN(io.Discard, rc, 64<<10)
	_ = rc.Close()
}
