package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/vllm-proxy/vllm-proxy/auth"
	"github.com/vllm-proxy/vllm-proxy/backpressure"
	"github.com/vllm-proxy/vllm-proxy/batch"
	"github.com/vllm-proxy/vllm-proxy/logging"
	"github.com/vllm-proxy/vllm-proxy/proxy"
	"github.com/vllm-proxy/vllm-proxy/routing"
	"github.com/vllm-proxy/vllm-proxy/state"
	"github.com/vllm-proxy/vllm-proxy/ui"
)

// stackMode says which parts of the stack a command runs.
type stackMode int

const (
	// modeServe runs the OpenAI API, the Files and Batches APIs and (unless
	// batch.workers is false) the batch workers.
	modeServe stackMode = iota
	// modeWorker runs the batch workers only; HTTP serves /health and /metrics.
	modeWorker
)

// stack is everything serve runs behind its HTTP server: shared state, the router with
// its background services, the proxy handler, the batch API and workers, and the
// metrics registry. It is built once by newStack and torn down by close, in the order
// docs/ARCHITECTURE.md writes down.
type stack struct {
	log     *slog.Logger
	reg     *prometheus.Registry
	store   *state.Store
	router  *routing.Router
	proxy   *proxy.Handler
	budget  *state.BatchBudget
	control *backpressure.Controller
	batch   *batch.Batch
	ui      *ui.Handler
	workers bool // batch workers were started
	mux     *http.ServeMux
	handler http.Handler // mux, behind the API-key check when keys are on
	cancel  context.CancelFunc
}

// newStack opens shared state, starts the router, builds the proxy and the batch
// package for cfg, and starts the batch workers and janitor. The services it starts run
// until close.
func newStack(app *App, cfg *fileConfig, mode stackMode) (*stack, error) {
	authn, err := loadAuth(app.Getenv)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(app.Ctx))
	s := &stack{log: app.Log, reg: prometheus.NewRegistry(), cancel: cancel}
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	state.RouteDriverLogs(app.Log) // state names the component itself

	store, err := state.Open(ctx, app.RedisURL, state.Config{
		PrefixTTL:         cfg.Routing.CacheAware.PrefixTTL,
		PrefixCacheBlocks: cfg.Routing.CacheAware.LocalCacheBlocks,
	}, app.Log, s.reg) // state and batch name their component themselves
	if err != nil {
		cancel()
		return nil, fmt.Errorf("opening shared state: %w", err)
	}
	s.store = store

	rc := toRoutingConfig(cfg)
	rc.BackendAPIKey = authn.backendAPIKey
	router, err := routing.New(rc, app.Log.With(slog.String("component", "routing")), s.reg,
		routing.WithLoadShare(store.InFlight()), routing.WithScrapeCoordinator(store.Scrapes()),
		routing.WithPrefixIndex(store.Prefix()))
	if err != nil {
		s.close()
		return nil, fmt.Errorf("building the router: %w", err)
	}
	s.router = router
	if err := router.Start(ctx); err != nil {
		s.close()
		return nil, fmt.Errorf("starting the router: %w", err)
	}

	if err := s.startBackpressure(ctx, app, cfg); err != nil {
		s.close()
		return nil, err
	}

	pc := toProxyConfig(cfg, app.Version)
	pc.BackendAuth = authn.backendAuth()
	h, err := proxy.New(pc, router, app.Log.With(slog.String("component", "proxy")), s.reg,
		proxy.WithBatchAdmission(s.control))
	if err != nil {
		s.close()
		return nil, fmt.Errorf("building the proxy: %w", err)
	}
	s.proxy = h

	if err := s.startBatch(ctx, app, cfg, mode, auth.Tenant); err != nil {
		s.close()
		return nil, err
	}
	if mode == modeServe {
		dash, err := ui.New(ui.Config{Version: app.Version}, ui.Sources{Router: router, Metrics: s.reg},
			app.Log.With(slog.String("component", "ui")), s.reg)
		if err != nil {
			s.close()
			return nil, fmt.Errorf("building the dashboard: %w", err)
		}
		if err := dash.Start(ctx); err != nil {
			s.close()
			return nil, fmt.Errorf("starting the dashboard: %w", err)
		}
		s.ui = dash
	}

	s.mux = http.NewServeMux()
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{Registry: s.reg}))
	switch mode {
	case modeWorker:
		s.mux.Handle("GET /health", h) // the router's view of the backends the workers use
	default:
		for _, p := range []string{"/v1/files", "/v1/files/", "/v1/batches", "/v1/batches/"} {
			s.mux.Handle(p, s.batch.API)
		}
		s.mux.Handle("/ui", s.ui)
		s.mux.Handle("/ui/", s.ui)
		s.mux.Handle("/", h)
	}
	s.handler, err = authn.wrap(s.mux, app.Log.With(slog.String("component", "auth")), s.reg)
	if err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// startBackpressure starts the shared batch budget (slot leases in Redis, or in memory)
// and the per-backend batch concurrency controller the proxy asks before each batch
// attempt.
func (s *stack) startBackpressure(ctx context.Context, app *App, cfg *fileConfig) error {
	budget, err := state.NewBatchBudget(s.store, state.BudgetConfig{})
	if err != nil {
		return fmt.Errorf("building the batch budget: %w", err)
	}
	if err := budget.Start(ctx); err != nil {
		return fmt.Errorf("starting the batch budget: %w", err)
	}
	s.budget = budget
	mode := backpressure.ModeAdaptive
	if !cfg.Batch.BackpressureEnabled {
		mode = backpressure.ModeOff
	}
	ctl, err := backpressure.New(backpressure.Config{
		Mode:          mode,
		MaxConcurrent: cfg.Batch.MaxConcurrentRequests,
		PollInterval:  cfg.Batch.BackpressurePollInterval,
		Evict:         cfg.Batch.BackpressureEvict,
	}, s.router, budget, app.Log.With(slog.String("component", "backpressure")), s.reg,
		backpressure.WithPeers(s.store.Bus("backpressure")))
	if err != nil {
		return fmt.Errorf("building the backpressure controller: %w", err)
	}
	if err := ctl.Start(ctx); err != nil {
		return fmt.Errorf("starting the backpressure controller: %w", err)
	}
	s.control = ctl
	return nil
}

// startBatch builds the batch package on the shared state and, when this replica runs
// workers, starts them and the janitor.
func (s *stack) startBatch(ctx context.Context, app *App, cfg *fileConfig, mode stackMode, tenant func(context.Context) string) error {
	var blobs batch.BlobStore = state.NewBlobStore(s.store)
	if dir := cfg.Batch.FilesDir; dir != "" {
		d, err := batch.NewDirBlobs(dir)
		if err != nil {
			return fmt.Errorf("opening batch.files_dir: %w", err)
		}
		blobs = d
	}
	bc := toBatchConfig(cfg.Batch)
	bc.ReplicaID = s.store.ReplicaID()
	bc.Tenant = tenant
	b, err := batch.New(bc, state.NewJobStore(s.store), blobs, lineDispatcher{h: s.proxy},
		app.Log, s.reg)
	if err != nil {
		return fmt.Errorf("building the batch API: %w", err)
	}
	s.batch = b
	if mode == modeServe && !cfg.Batch.Workers {
		app.Log.Info("batch workers off: this replica serves the batch API only")
		return nil
	}
	if err := b.Workers.Start(ctx); err != nil {
		return fmt.Errorf("starting batch workers: %w", err)
	}
	if err := b.Janitor.Start(ctx); err != nil {
		b.Workers.Stop()
		return fmt.Errorf("starting the file janitor: %w", err)
	}
	s.workers = true
	return nil
}

// reload applies a new configuration's backends to the running router; requests in
// flight are not disturbed. Settings that need a restart (listen, redis, policy,
// intervals, batch) are kept as they were started.
func (s *stack) reload(cfg *fileConfig) error {
	before := s.router.Backends()
	if err := s.router.Update(toRoutingConfig(cfg).Backends); err != nil {
		return fmt.Errorf("updating backends: %w", err)
	}
	after := map[string]bool{}
	for _, b := range s.router.Backends() {
		after[b.ID()] = true
	}
	for _, b := range before {
		if !after[b.ID()] {
			s.proxy.ForgetBackend(b.ID())
		}
	}
	return nil
}

// close stops the services, batch workers first (they dispatch through the router),
// and closes shared state last. It runs after the HTTP server has drained.
func (s *stack) close() {
	if s.workers {
		s.batch.Workers.Stop()
		s.batch.Janitor.Stop()
	}
	if s.ui != nil {
		s.ui.Stop()
	}
	if s.control != nil {
		s.control.Stop()
	}
	if s.budget != nil {
		s.budget.Stop() // gives this replica's batch slots back at once
	}
	if s.router != nil {
		s.router.Stop()
	}
	if s.proxy != nil {
		s.proxy.CloseIdleConnections()
	}
	s.cancel()
	if s.store != nil {
		if err := s.store.Close(); err != nil {
			s.log.Warn("closing shared state", logging.Err(err))
		}
	}
}

// toRoutingConfig maps the file's backends and routing section onto routing.Config.
func toRoutingConfig(cfg *fileConfig) routing.Config {
	rc := routing.Config{
		Policy:                cfg.Routing.Policy,
		ScrapeInterval:        cfg.Routing.ScrapeInterval,
		HealthCheckInterval:   cfg.Routing.HealthCheckInterval,
		ModelsRefreshInterval: cfg.Routing.ModelsRefreshInterval,
		MaxFails:              cfg.Routing.MaxFails,
		PrefillSpread:         cfg.Routing.PrefillSpread,
		// Evicted batch requests make room for interactive ones, so interactive picks
		// need not count them as load.
		BatchYields: cfg.Batch.BackpressureEnabled && cfg.Batch.BackpressureEvict,
		CacheAware:  toCacheAware(cfg.Routing.CacheAware),
		CHWBL:       toCHWBL(cfg.Routing.CHWBL),
	}
	for _, b := range cfg.Backends {
		rc.Backends = append(rc.Backends, routing.BackendConfig{
			URL:                b.URL,
			Capacity:           b.Capacity,
			Models:             b.Models,
			PriorityScheduling: b.PriorityScheduling.Bool(),
		})
	}
	return rc
}

// toBatchConfig maps the batch section onto batch.Config (zero = the batch default).
func toBatchConfig(c batchConfig) batch.Config {
	return batch.Config{
		MaxConcurrentRequests: c.MaxConcurrentRequests,
		LeaseTTL:              c.LeaseTTL,
		ChunkLines:            c.ChunkLines,
		MaxFileBytes:          int64(c.MaxFileBytes),
		MaxLines:              c.MaxLines,
		MaxResultBytes:        int64(c.MaxResultBytes),
		FileTTL:               c.FileTTL,
		CompletionWindow:      c.CompletionWindow,
		ModelWait:             c.ModelWait,
		RetryAttempts:         c.RetryAttempts,
		RetryBackoff:          c.RetryBackoff,
	}
}

// toCacheAware maps routing.cache_aware onto routing's config (zero = default).
func toCacheAware(c cacheAwareConfig) routing.CacheAwareConfig {
	return routing.CacheAwareConfig{
		BlockChars: c.BlockChars, MaxBlocks: c.MaxBlocks, PrefillTokensPerSecond: c.PrefillTokensPerSecond,
		QueueBudget: c.QueueBudget, SaturationLoad: c.SaturationLoad, LoadFactor: c.LoadFactor,
		LocalIndexBlocks: c.LocalIndexBlocks, PrefixTTL: c.PrefixTTL,
		RecordAhead: c.RecordAhead, FirstRecordBlocks: c.FirstRecordBlocks,
	}
}

// toCHWBL maps routing.chwbl onto routing's config (zero = default).
func toCHWBL(c chwblConfig) routing.CHWBLConfig {
	return routing.CHWBLConfig{KeyChars: c.KeyChars, LoadFactor: c.LoadFactor}
}

// toProxyConfig maps the file's routing section onto proxy.Config.
func toProxyConfig(cfg *fileConfig, version string) proxy.Config {
	batchPriority := cfg.Batch.BatchPriority
	pc := proxy.Config{
		Version:               version,
		MaxBodyBytes:          int64(cfg.Routing.MaxBodyBytes),
		MaxRetries:            cfg.Routing.MaxRetries,
		RequestTimeout:        cfg.Routing.RequestTimeout,
		DialTimeout:           cfg.Routing.DialTimeout,
		ResponseHeaderTimeout: cfg.Routing.ResponseHeaderTimeout,
		StreamHeaderTimeout:   cfg.Routing.StreamHeaderTimeout,
		Priority: proxy.PriorityConfig{
			Interactive: cfg.Batch.ChatCompletionPriority,
			Batch:       &batchPriority,
		},
	}
	if pc.MaxRetries == 0 {
		pc.MaxRetries = -1 // the file's 0 means "no retries"; proxy's zero means default
	}
	return pc
}
