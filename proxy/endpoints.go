package proxy

import (
	"encoding/json"
	"net/http"

	"github.com/vllm-proxy/vllm-proxy/routing"
)

// The proxy's own GET endpoints. Each reads the router's cached state and never calls a
// backend.

// getEndpoint returns the handler of a GET path, or nil.
func (h *Handler) getEndpoint(path string) func(http.ResponseWriter) {
	switch path {
	case "/v1/models":
		return h.serveModels
	case "/version":
		return h.serveVersion
	case "/health":
		return h.serveHealth
	case "/load-stats":
		return h.serveLoadStats
	}
	return nil
}

// modelList is vLLM's GET /v1/models shape.
type modelList struct {
	Object string          `json:"object"`
	Data   []routing.Model `json:"data"`
}

// serveModels answers with every backend's models merged (deduplicated by id, LoRA
// adapters included), from routing's cache.
func (h *Handler) serveModels(w http.ResponseWriter) {
	models := h.router.Models()
	if models == nil {
		models = []routing.Model{}
	}
	writeJSON(w, http.StatusOK, modelList{Object: "list", Data: models})
}

// serveVersion reports the proxy's own version in vLLM's shape.
func (h *Handler) serveVersion(w http.ResponseWriter) {
	writeJSON(w, http.StatusOK, struct {
		Version string `json:"version"`
	}{h.cfg.Version})
}

// healthBody is GET /health: an overall status and every backend's health.
type healthBody struct {
	Status string `json:"status"`
	routing.Health
}

// serveHealth is 200 while at least one backend is healthy, 503 otherwise.
func (h *Handler) serveHealth(w http.ResponseWriter) {
	health := h.router.Health()
	if health.Backends == nil {
		health.Backends = []routing.BackendHealth{}
	}
	if health.Healthy() {
		writeJSON(w, http.StatusOK, healthBody{Status: "ok", Health: health})
		return
	}
	writeJSON(w, http.StatusServiceUnavailable, healthBody{Status: "unavailable", Health: health})
}

// loadStatsBody is GET /load-stats.
type loadStatsBody struct {
	Policy   string                 `json:"policy"`
	Backends []routing.BackendStats `json:"backends"`
}

func (h *Handler) serveLoadStats(w http.ResponseWriter) {
	stats := h.router.LoadStats()
	if stats == nil {
		stats = []routing.BackendStats{}
	}
	writeJSON(w, http.StatusOK, loadStatsBody{Policy: h.router.Policy().Name(), Backends: stats})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		writeError(w, err) // a 500 that leaks nothing
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}
