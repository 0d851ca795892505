package ui

import (
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/vllm-proxy/vllm-proxy/routing"
)

// serveAPI routes /ui/api/*. Every endpoint is a GET answering JSON; see the package doc
// for the shapes.
func (h *Handler) serveAPI(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Path[len("/ui/api/"):]
	var serve func(http.ResponseWriter, *http.Request) int
	switch name {
	case "config":
		serve = h.serveConfig
	case "backends":
		serve = h.serveBackends
	case "models":
		serve = h.serveModels
	case "routing":
		serve = h.serveRouting
	case "series":
		serve = h.serveSeries
	case "stats":
		serve = h.serveStats
	default:
		writeError(w, notFound(r.Method, r.URL.Path))
		h.m.apiRequests.WithLabelValues("unknown", "404").Inc()
		return
	}
	code := 0
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		code = writeError(w, methodNotAllowed(r.Method, r.URL.Path))
	} else {
		code = serve(w, r)
	}
	h.m.apiRequests.WithLabelValues(name, strconv.Itoa(code)).Inc()
}

// configBody is GET /ui/api/config: what the page needs to know about itself.
type configBody struct {
	Title          string `json:"title"`
	Version        string `json:"version"`
	PollIntervalMS int64  `json:"poll_interval_ms"`
	BucketSeconds  int64  `json:"bucket_seconds"`
	WindowSeconds  int64  `json:"window_seconds"`
	APIBase        string `json:"api_base"`
}

func (h *Handler) serveConfig(w http.ResponseWriter, _ *http.Request) int {
	return writeJSON(w, http.StatusOK, configBody{
		Title: h.cfg.Title, Version: h.cfg.Version, PollIntervalMS: h.cfg.PollInterval.Milliseconds(),
		BucketSeconds: int64(h.cfg.BucketWidth / time.Second), WindowSeconds: int64(h.cfg.Window / time.Second),
		APIBase: h.cfg.APIBase,
	})
}

// backendsBody is GET /ui/api/backends.
type backendsBody struct {
	Time     int64                  `json:"time"` // Unix ms
	Policy   string                 `json:"policy"`
	Healthy  int                    `json:"healthy"`
	Backends []routing.BackendStats `json:"backends"`
}

func (h *Handler) serveBackends(w http.ResponseWriter, _ *http.Request) int {
	stats := h.src.Router.LoadStats()
	body := backendsBody{Time: h.cfg.Now().UnixMilli(), Policy: h.src.Router.Policy().Name(),
		Backends: make([]routing.BackendStats, 0, len(stats))}
	for _, s := range stats {
		if s.Models == nil {
			s.Models = []string{}
		}
		if s.Healthy {
			body.Healthy++
		}
		body.Backends = append(body.Backends, s)
	}
	return writeJSON(w, http.StatusOK, body)
}

// modelRow is one served model with where it runs and how much it was asked for.
type modelRow struct {
	ID       string   `json:"id"`
	Parent   *string  `json:"parent"` // base model of a LoRA adapter, else null
	MaxLen   *int64   `json:"max_model_len"`
	Backends []string `json:"backends"` // backends serving it
	Healthy  int      `json:"healthy"`  // how many of those are healthy
	Requests int64    `json:"requests"` // answered since this replica started
}

// modelsBody is GET /ui/api/models.
type modelsBody struct {
	Models []modelRow `json:"models"`
}

func (h *Handler) serveModels(w http.ResponseWriter, r *http.Request) int {
	h.s.refresh(r.Context())
	v := h.s.snapshot(1)
	stats := h.src.Router.LoadStats()
	models := h.src.Router.Models()
	body := modelsBody{Models: make([]modelRow, 0, len(models))}
	for _, m := range models {
		row := modelRow{ID: m.ID, Parent: m.Parent, MaxLen: m.MaxModelLen, Backends: []string{}, Requests: v.latest.byModel[m.ID]}
		for _, s := range stats {
			if slices.Contains(s.Models, m.ID) {
				row.Backends = append(row.Backends, s.URL)
				if s.Healthy {
					row.Healthy++
				}
			}
		}
		body.Models = append(body.Models, row)
	}
	return writeJSON(w, http.StatusOK, body)
}

// share is one slice of a mix.
type share struct {
	Name  string  `json:"name"`
	Count int64   `json:"count"`
	Share float64 `json:"share"` // of the mix's total, 0..1
}

// routingBody is GET /ui/api/routing: the policy, the decision counters it exports
// (none for policies without any), and where requests went.
type routingBody struct {
	Policy    string  `json:"policy"`
	Decisions []share `json:"decisions"`
	Backends  []share `json:"backends"`
	SampledAt int64   `json:"sampled_at"` // Unix ms of the reading; 0 before the first
}

func mix(m map[string]int64) []share {
	var total int64
	for _, v := range m {
		total += v
	}
	out := make([]share, 0, len(m))
	for _, k := range sortedKeys(m) {
		s := share{Name: k, Count: m[k]}
		if total > 0 {
			s.Share = float64(m[k]) / float64(total)
		}
		out = append(out, s)
	}
	return out
}

func (h *Handler) serveRouting(w http.ResponseWriter, r *http.Request) int {
	h.s.refresh(r.Context())
	v := h.s.snapshot(1)
	body := routingBody{Policy: h.src.Router.Policy().Name(), Decisions: mix(v.latest.decisions),
		Backends: mix(v.latest.byBackend)}
	if !v.last.IsZero() {
		body.SampledAt = v.last.UnixMilli()
	}
	return writeJSON(w, http.StatusOK, body)
}

// seriesBody is GET /ui/api/series.
type seriesBody struct {
	BucketSeconds int64    `json:"bucket_seconds"`
	Now           int64    `json:"now"`   // Unix ms
	Since         int64    `json:"since"` // Unix ms of the first reading; 0 before it
	Buckets       []Bucket `json:"buckets"`
}

// parseBuckets reads ?buckets=N within [1, max]; absent means max.
func parseBuckets(q string, maxN int) (int, *apiError) {
	if q == "" {
		return maxN, nil
	}
	n, err := strconv.Atoi(q)
	if err != nil || n < 1 || n > maxN {
		return 0, badRequest("buckets", "buckets must be an integer between 1 and "+strconv.Itoa(maxN)+".")
	}
	return n, nil
}

func (h *Handler) serveSeries(w http.ResponseWriter, r *http.Request) int {
	n, aerr := parseBuckets(r.URL.Query().Get("buckets"), h.cfg.buckets())
	if aerr != nil {
		return writeError(w, aerr)
	}
	h.s.refresh(r.Context())
	v := h.s.snapshot(n)
	body := seriesBody{BucketSeconds: int64(h.cfg.BucketWidth / time.Second), Now: h.cfg.Now().UnixMilli(), Buckets: v.buckets}
	if v.hasSample {
		body.Since = v.started.UnixMilli()
	}
	return writeJSON(w, http.StatusOK, body)
}

// statsBody is GET /ui/api/stats: the window's totals and busiest bucket, and the
// counters' values since this replica started.
type statsBody struct {
	WindowSeconds int64  `json:"window_seconds"`
	BucketSeconds int64  `json:"bucket_seconds"`
	Since         int64  `json:"since"` // Unix ms of the first reading; 0 before it
	Window        Counts `json:"window"`
	Peak          Counts `json:"peak"`
	Lifetime      Counts `json:"lifetime"`
}

func (h *Handler) serveStats(w http.ResponseWriter, r *http.Request) int {
	h.s.refresh(r.Context())
	v := h.s.snapshot(1)
	body := statsBody{WindowSeconds: int64(h.cfg.Window / time.Second), BucketSeconds: int64(h.cfg.BucketWidth / time.Second),
		Window: v.summary.Total, Peak: v.summary.Peak, Lifetime: v.latest.counts}
	if v.hasSample {
		body.Since = v.started.UnixMilli()
	}
	return writeJSON(w, http.StatusOK, body)
}
