package ui

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vllm-proxy/vllm-proxy/routing"
)

// Router is what the dashboard reads about the backends. *routing.Router implements it.
type Router interface {
	LoadStats() []routing.BackendStats
	Models() []routing.Model
	Policy() routing.Policy
}

var _ Router = (*routing.Router)(nil)

// Sources are where the dashboard's figures come from. Batches and files are not among
// them: the page calls the proxy's own /v1/batches and /v1/files.
type Sources struct {
	// Router gives backends, models and the policy. Required.
	Router Router
	// Metrics is the registry the process exports on /metrics; the throughput, upload
	// and routing-mix figures are read from it. nil: those figures stay zero.
	Metrics prometheus.Gatherer
}

//go:embed assets
var assetsFS embed.FS

// Handler serves the dashboard: the page and its assets under /ui/ and the JSON endpoints
// under /ui/api/. Mount it on both "/ui" and "/ui/". It owns one background service, the
// sampler that fills the time series (Start/Stop). Safe for concurrent use.
type Handler struct {
	cfg    Config
	src    Sources
	log    *slog.Logger
	m      *Metrics
	s      *sampler
	assets http.Handler
}

// New builds the dashboard handler. It fails when cfg is invalid, Router is missing or
// the metrics cannot be registered on reg (nil: not registered).
func New(cfg Config, src Sources, log *slog.Logger, reg prometheus.Registerer) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if src.Router == nil {
		return nil, fmt.Errorf("%w: sources: router is required", ErrInvalidConfig)
	}
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m, err := NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	sub, err := fs.Sub(assetsFS, "assets")
	if err != nil {
		return nil, fmt.Errorf("opening embedded assets: %w", err)
	}
	h := &Handler{cfg: cfg, src: src, log: log, m: m, s: newSampler(cfg, src.Metrics, log, m)}
	h.assets = http.StripPrefix("/ui/", http.FileServerFS(sub))
	return h, nil
}

// Start takes the first reading of the metrics registry and samples it every
// SampleInterval until ctx ends or Stop is called. It fails if called twice.
func (h *Handler) Start(ctx context.Context) error {
	if err := h.s.Start(ctx); err != nil {
		return fmt.Errorf("starting the dashboard sampler: %w", err)
	}
	return nil
}

// Stop stops the sampler and waits for it. Idempotent; safe before Start.
func (h *Handler) Stop() { h.s.Stop() }

// securityHeaders keep the page to its own origin: scripts, styles, images and fetches
// come from the proxy itself or nowhere.
func securityHeaders(w http.ResponseWriter) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
}

// ServeHTTP serves /ui (redirect to /ui/), /ui/ (the page), /ui/<asset> and /ui/api/*.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w)
	path := r.URL.Path
	switch {
	case path == "/ui":
		http.Redirect(w, r, "/ui/", http.StatusMovedPermanently)
	case strings.HasPrefix(path, "/ui/api/"):
		h.serveAPI(w, r)
	case strings.HasPrefix(path, "/ui/"):
		h.serveAsset(w, r)
	default:
		writeError(w, notFound(r.Method, path))
	}
}

// serveAsset serves an embedded file; /ui/ is index.html.
func (h *Handler) serveAsset(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeError(w, methodNotAllowed(r.Method, r.URL.Path))
		return
	}
	name := strings.TrimPrefix(r.URL.Path, "/ui/")
	if name != "" {
		if _, err := fs.Stat(assetsFS, "assets/"+name); err != nil || strings.HasSuffix(name, "/") {
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				h.log.WarnContext(r.Context(), "reading an embedded dashboard asset", slog.String("asset", name), slog.String("err", err.Error()))
			}
			writeError(w, notFound(r.Method, r.URL.Path))
			return
		}
	}
	w.Header().Set("Cache-Control", "no-cache")
	h.assets.ServeHTTP(w, r)
}
