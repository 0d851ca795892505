package sim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Server is a simulated vLLM server. Create it with [New] (or [Start]), then Start it;
// Close stops it. All methods are safe for concurrent use.
type Server struct {
	cfg     Config
	log     *slog.Logger
	clock   *clock
	engines []*engine
	models  map[string]modelEntry
	created int64
	modelsJ []byte // /v1/models body

	healthy atomic.Bool
	faults  atomic.Pointer[Faults]
	readyAt time.Time
	rr      atomic.Uint64 // engine selection tie-breaker
	ids     atomic.Uint64 // response ids
	dice    atomic.Uint64 // fault dice counter
	load    atomic.Int64  // requests in flight (GET /load)
	counts  counters

	mux      *http.ServeMux
	ctx      context.Context // cancelled by Close: stops engines, hung and streaming handlers
	cancel   context.CancelFunc
	srv      *http.Server
	url      string
	wg       sync.WaitGroup // serve goroutine and engine loops
	hmu      sync.RWMutex
	closed   bool
	handlers sync.WaitGroup // handlers in flight
	started  atomic.Bool
	once     sync.Once
	stopCtx  func() bool
}

// modelEntry is one name the server answers to; lora is "" for the base model.
type modelEntry struct {
	lora string
}

// ErrClosed is returned by Start on a closed server.
var ErrClosed = errors.New("simulator closed")

// New builds a simulator from cfg (defaults applied, then validated). It does not listen
// until Start.
func New(cfg Config, log *slog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg:     cfg,
		log:     log.With("component", "sim", "model", cfg.ServedModelNames[0]),
		clock:   newClock(cfg.TimeScale),
		models:  map[string]modelEntry{},
		created: time.Now().Unix(),
	}
	for _, n := range cfg.ServedModelNames {
		s.models[n] = modelEntry{}
	}
	for _, n := range cfg.LoRAs {
		s.models[n] = modelEntry{lora: n}
	}
	s.modelsJ = s.renderModels()
	for i := range cfg.DataParallel {
		s.engines = append(s.engines, newEngine(i, &s.cfg, s.clock))
	}
	s.healthy.Store(true)
	f := cfg.Faults
	s.faults.Store(&f)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.counts.init()
	s.mux = s.routes()
	return s, nil
}

// Start builds a simulator with [New] and starts it. The server stops when ctx is
// cancelled or Close is called.
func Start(ctx context.Context, cfg Config, log *slog.Logger) (*Server, error) {
	s, err := New(cfg, log)
	if err != nil {
		return nil, err
	}
	if err := s.Start(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Start listens on Config.Listen, starts the engine loops and serves in the background
// until ctx is cancelled or Close is called. It may be called once.
func (s *Server) Start(ctx context.Context) error {
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("simulator already started")
	}
	s.hmu.RLock()
	closed := s.closed
	s.hmu.RUnlock()
	if closed {
		return ErrClosed
	}
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", s.cfg.Listen, err)
	}
	s.url = "http://" + ln.Addr().String()
	s.readyAt = time.Now().Add(s.cfg.StartupDelay)
	s.srv = &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second}
	if !s.cfg.Instant {
		for _, e := range s.engines {
			s.wg.Go(func() { e.run(s.ctx) })
		}
	}
	s.wg.Go(func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("sim serve failed", "err", err)
		}
	})
	s.stopCtx = context.AfterFunc(ctx, s.Close)
	s.log.Info("sim listening", "url", s.url, "instant", s.cfg.Instant, "engines", len(s.engines))
	return nil
}

// URL is the base URL, "http://127.0.0.1:PORT" (no /v1). Valid after Start.
func (s *Server) URL() string { return s.url }

// Handler returns the HTTP handler, for serving the simulator without Start (for example
// from an httptest.Server). Engine loops only run after Start unless Instant is set.
func (s *Server) Handler() http.Handler { return s.mux }

// Shutdown stops accepting requests and waits until those in flight finish or ctx ends,
// then closes the server like Close.
func (s *Server) Shutdown(ctx context.Context) error {
	var err error
	if s.srv != nil {
		err = s.srv.Shutdown(ctx)
	}
	s.Close()
	if err != nil {
		return fmt.Errorf("shutting down simulator: %w", err)
	}
	return nil
}

// Close stops the listener, aborts hung and in-flight requests, stops the engines and
// waits for every goroutine it owns. It is idempotent.
func (s *Server) Close() {
	s.once.Do(func() {
		if s.stopCtx != nil {
			s.stopCtx()
		}
		s.hmu.Lock()
		s.closed = true
		s.hmu.Unlock()
		if s.srv != nil {
			_ = s.srv.Close() // errors only report listeners already closed
		}
		s.cancel()
		s.wg.Wait()
		s.handlers.Wait()
	})
}

// SetHealthy switches GET /health between 200 and 503. Inference keeps working; use
// SetFaults to make requests fail.
func (s *Server) SetHealthy(ok bool) { s.healthy.Store(ok) }

// SetFaults replaces the injected faults. Invalid rates are clamped to [0,1].
func (s *Server) SetFaults(f Faults) {
	f.FailRate = min(max(f.FailRate, 0), 1)
	f.HangRate = min(max(f.HangRate, 0), 1)
	f.DropStreamAfter = max(f.DropStreamAfter, 0)
	s.faults.Store(&f)
}

// Faults returns the faults in force.
func (s *Server) Faults() Faults { return *s.faults.Load() }

// ready reports whether the startup delay is over.
func (s *Server) ready() bool { return !time.Now().Before(s.readyAt) }

// roll returns a deterministic pseudo-random number in [0,1) from the seed and a counter.
func (s *Server) roll() float64 {
	return float64(splitmix(s.cfg.Seed*0x9e3779b97f4a7c15+s.dice.Add(1))>>11) / float64(1<<53)
}

// pickEngine returns the engine with the least load (4*waiting + running), as vLLM's
// data-parallel balancer does, breaking ties round-robin.
func (s *Server) pickEngine() *engine {
	if len(s.engines) == 1 {
		return s.engines[0]
	}
	start := int(s.rr.Add(1) % uint64(len(s.engines))) // #nosec G115 -- the remainder is below len(s.engines), so it fits in an int
	best := s.engines[start]
	bestLoad := best.load.Load()
	for i := 1; i < len(s.engines); i++ {
		e := s.engines[(start+i)%len(s.engines)]
		if l := e.load.Load(); l < bestLoad {
			best, bestLoad = e, l
		}
	}
	return best
}

// track wraps a handler so that Close can wait for it, and refuses work once closed.
func (s *Server) track(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.hmu.RLock()
		if s.closed {
			s.hmu.RUnlock()
			s.writeError(w, apiError{Status: http.StatusServiceUnavailable, Message: "server is shutting down"})
			return
		}
		s.handlers.Add(1)
		s.hmu.RUnlock()
		defer s.handlers.Done()
		h(w, r)
	}
}

func (s *Server) routes() *http.ServeMux {
	m := http.NewServeMux()
	handle := func(pattern string, h http.HandlerFunc) { m.HandleFunc(pattern, s.track(h)) }
	handle("GET /health", s.handleHealth)
	handle("GET /ping", s.handleHealth)
	handle("GET /version", s.handleVersion)
	handle("GET /v1/models", s.handleModels)
	handle("GET /metrics", s.handleMetrics)
	handle("GET /load", s.handleLoad)
	handle("POST /v1/chat/completions", s.handleChat)
	handle("POST /v1/completions", s.handleCompletions)
	handle("POST /v1/embeddings", s.handleEmbeddings)
	handle("POST /v1/responses", s.handleResponses)
	handle("POST /tokenize", s.handleTokenize)
	handle("POST /detokenize", s.handleDetokenize)
	if s.cfg.Control {
		handle("GET /sim/control", s.handleControl)
		handle("POST /sim/control", s.handleControl)
	}
	handle("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, apiError{Status: http.StatusNotFound, Message: "Not Found"})
	})
	return m
}
