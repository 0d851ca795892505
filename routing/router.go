package routing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Router owns the backend pool and picks a backend per request. All methods are safe for
// concurrent use. Pick works right after New (with every backend assumed healthy and only
// static models known); Start runs the first discovery, scrape and health round and then the
// background loops until Stop.
type Router struct {
	cfg     Config
	log     *slog.Logger
	metrics *Metrics
	share   LoadShare
	scrapes ScrapeCoordinator
	policy  Policy
	removed func(id string) // WithBackendRemoved, or nil
	now     func() time.Time
	client  *http.Client
	// prefillRate is the assumed prefill throughput of a backend, tokens/s.
	prefillRate float64

	mu   sync.Mutex           // serializes Update and pool rebuilds
	pool atomic.Pointer[pool] // immutable snapshot read by Pick

	life    sync.Mutex // guards the fields below
	started bool
	stopped bool
	runCtx  context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// pool is an immutable snapshot of the backends and the model index.
type pool struct {
	backends []*Backend // config order
	byID     map[string]*Backend
	byModel  map[string][]*Backend // model id -> backends serving it, config order
	models   []Model               // merged, deduplicated by id, first appearance order
	ids      []string              // ids of models
	base     []string              // ids of models that are not LoRA adapters
	lora     map[string]bool       // ids of models that are LoRA adapters
}

// New builds a Router from cfg (defaults applied to zero fields). reg may be nil.
func New(cfg Config, log *slog.Logger, reg prometheus.Registerer, opts ...Option) (*Router, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	o := options{}
	for _, opt := range opts {
		opt(&o)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// Without WithLoadShare the router's own per-backend counts are the local in-process
	// share (r.share stays nil): no second bookkeeping on the request path.
	if o.scrapes == nil {
		o.scrapes = LocalScrapeCoordinator{}
	}
	if o.now == nil {
		o.now = time.Now
	}
	if o.rnd == nil {
		o.rnd = globalRand{}
	}
	m, err := NewMetrics(reg)
	if err != nil {
		return nil, err
	}
	if o.policy == nil {
		pm, err := NewPolicyMetrics(reg)
		if err != nil {
			return nil, err
		}
		p, err := newPolicy(cfg, o.rnd, o.prefix, pm)
		if err != nil {
			return nil, err
		}
		o.policy = p
	}
	r := &Router{
		cfg: cfg, log: log, metrics: m, share: o.share, scrapes: o.scrapes, policy: o.policy, removed: o.removed, now: o.now,
		prefillRate: cfg.CacheAware.PrefillTokensPerSecond,
		client: &http.Client{
			Transport: &http.Transport{
				DialContext:         (&net.Dialer{Timeout: cfg.ProbeTimeout, KeepAlive: 30 * time.Second}).DialContext,
				MaxIdleConnsPerHost: 4,
				IdleConnTimeout:     90 * time.Second,
			},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	r.pool.Store(&pool{byID: map[string]*Backend{}, byModel: map[string][]*Backend{}})
	if err := r.Update(cfg.Backends); err != nil {
		return nil, err
	}
	return r, nil
}

// Policy returns the policy in use.
func (r *Router) Policy() Policy { return r.policy }

// Backends returns the backends in the pool, in config order.
func (r *Router) Backends() []*Backend { return slices.Clone(r.pool.Load().backends) }

// Update replaces the backend list (hot reload). Backends whose URL stays keep their
// counters, health and metrics; added ones start healthy and are probed at once when the
// Router is running; removed ones leave the pool, their metric series are deleted, and
// their outstanding Picks can still be Done. An invalid list changes nothing.
func (r *Router) Update(backends []BackendConfig) error {
	probs := validateBackends(backends)
	if len(backends) == 0 {
		probs = append(probs, "at least one backend is required")
	}
	if len(probs) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, joinProblems(probs))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.pool.Load()
	list := make([]*Backend, 0, len(backends))
	var added []*Backend
	keep := map[string]bool{}
	for _, bc := range backends {
		bc = bc.withDefaults()
		id, _ := normalizeURL(bc.URL)
		keep[id] = true
		if b := old.byID[id]; b != nil {
			b.mu.Lock()
			b.cfg = bc
			b.mu.Unlock()
			list = append(list, b)
			continue
		}
		b := newBackend(id, bc, r.metrics.forBackend(id))
		list = append(list, b)
		added = append(added, b)
	}
	for _, b := range old.backends {
		if keep[b.id] {
			continue
		}
		b.mu.Lock()
		b.removed = true
		b.mu.Unlock()
		r.metrics.deleteBackend(b.id)
		if r.share != nil {
			r.share.Forget(b.id)
		}
		if f, ok := r.scrapes.(interface{ Forget(backend string) }); ok {
			f.Forget(b.id) // e.g. state.ScrapeLeases drops its cached lease
		}
		if f, ok := r.policy.(BackendForgetter); ok {
			f.BackendRemoved(b.id)
		}
		if r.removed != nil {
			r.removed(b.id)
		}
		r.log.Info("backend removed", attrBackend(b.id))
	}
	r.pool.Store(buildPool(list))
	for _, b := range added {
		r.log.Info("backend added", attrBackend(b.id))
	}
	r.life.Lock()
	defer r.life.Unlock()
	if r.started && !r.stopped && len(added) > 0 {
		ctx := r.runCtx
		r.wg.Go(func() {
			r.refreshBackends(ctx, added)
			r.detectAll(ctx, added)
		})
	}
	return nil
}

// rebuild recomputes the pool snapshot after a backend's models changed.
func (r *Router) rebuild() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pool.Store(buildPool(r.pool.Load().backends))
}

func buildPool(list []*Backend) *pool {
	p := &pool{backends: list, byID: make(map[string]*Backend, len(list)), byModel: map[string][]*Backend{},
		lora: map[string]bool{}}
	seen := map[string]bool{}
	addModel := func(m Model) {
		if !seen[m.ID] {
			seen[m.ID] = true
			p.models = append(p.models, m)
			p.ids = append(p.ids, m.ID)
			if m.IsLoRA() {
				p.lora[m.ID] = true
			} else {
				p.base = append(p.base, m.ID)
			}
		}
	}
	for _, b := range list {
		p.byID[b.id] = b
		b.mu.Lock()
		for _, m := range b.fetched {
			addModel(m)
		}
		for _, s := range b.cfg.Models {
			addModel(staticModel(s))
		}
		for _, id := range b.servedLocked() {
			p.byModel[id] = append(p.byModel[id], b)
		}
		b.mu.Unlock()
	}
	return p
}

// Models returns the merged model list: every backend's models (fetched and static),
// deduplicated by id in first-appearance order, LoRA adapters included. It reads a cache
// and never calls a backend. The caller owns the returned slice.
func (r *Router) Models() []Model { return slices.Clone(r.pool.Load().models) }

// Start runs one discovery, health and scrape round for every backend, concurrently
// (bounded by the probe and scrape timeouts), then starts the background loops, which run until Stop or
// until ctx is cancelled. Start may be called once, and not after Stop.
func (r *Router) Start(ctx context.Context) error { //nolint:contextcheck // the loops outlive this call (WithoutCancel); ctx still stops them (AfterFunc)
	r.life.Lock()
	if r.started || r.stopped {
		r.life.Unlock()
		return errors.New("routing: router already started or stopped")
	}
	r.started = true
	r.runCtx, r.cancel = context.WithCancel(context.WithoutCancel(ctx))
	runCtx := r.runCtx
	r.life.Unlock()
	stop := context.AfterFunc(ctx, r.cancel)

	bs := r.pool.Load().backends
	r.refreshBackends(ctx, bs)
	r.wg.Go(func() { r.detectAll(runCtx, bs) })
	r.wg.Go(func() {
		defer stop()
		r.loop(runCtx, r.cfg.ScrapeInterval, func(ctx context.Context) { r.scrapeDue(ctx, &r.wg) })
	})
	r.wg.Go(func() { r.loop(runCtx, r.cfg.ModelsRefreshInterval, r.discoverAll) })
	r.wg.Go(func() { r.loop(runCtx, r.healthTick(), func(ctx context.Context) { r.probeDue(ctx, &r.wg) }) })
	return nil
}

// Stop stops the background loops and waits for them. It is idempotent.
func (r *Router) Stop() {
	r.life.Lock()
	r.stopped = true
	cancel := r.cancel
	r.life.Unlock()
	if cancel != nil {
		cancel()
	}
	r.wg.Wait()
	r.client.CloseIdleConnections()
}

// loop calls fn every interval until ctx is done.
func (r *Router) loop(ctx context.Context, every time.Duration, fn func(context.Context)) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn(ctx)
		}
	}
}

// refreshBackends reads each backend's models, probes its health and scrapes it, all at
// once, and waits: the bound is the longest of ProbeTimeout and ScrapeTimeout, whatever
// the number of backends. Priority detection (another probe) is left to the caller.
func (r *Router) refreshBackends(ctx context.Context, bs []*Backend) {
	var wg sync.WaitGroup
	changed := atomic.Bool{}
	for _, b := range bs {
		wg.Go(func() {
			if r.refreshModels(ctx, b) {
				changed.Store(true)
			}
		})
		wg.Go(func() { r.probe(ctx, b) })
		wg.Go(func() { r.scrapeOne(ctx, b) })
	}
	wg.Wait()
	if changed.Load() {
		r.rebuild()
	}
}

// detectAll runs priority detection for the backends, concurrently, and waits.
func (r *Router) detectAll(ctx context.Context, bs []*Backend) {
	var wg sync.WaitGroup
	for _, b := range bs {
		wg.Go(func() { r.detectPriority(ctx, b) })
	}
	wg.Wait()
}

// discoverAll refreshes every backend's model list and rebuilds the pool on change.
func (r *Router) discoverAll(ctx context.Context) {
	var wg sync.WaitGroup
	changed := atomic.Bool{}
	for _, b := range r.pool.Load().backends {
		wg.Go(func() {
			if r.refreshModels(ctx, b) {
				changed.Store(true)
			}
			r.detectPriority(ctx, b)
		})
	}
	wg.Wait()
	if changed.Load() {
		r.rebuild()
	}
}
