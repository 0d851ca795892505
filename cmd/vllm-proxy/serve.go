package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/vllm-proxy/vllm-proxy/logging"
)

// HTTP server limits of serve.
const (
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 120 * time.Second
	maxHeaderBytes    = 1 << 20
)

// prepare loads the config file (when given) and lays the serve flags and env values on
// top of it. Every problem is reported; any problem exits 2 before anything starts.
func (s *ServeCmd) prepare(app *App, src func(flag string) source) error {
	s.over = overrides{}
	if ls := src("listen"); ls.kind == "flag" || ls.kind == "env" {
		s.over.listen, s.over.listenSrc = s.Listen, &ls
	}
	if bs := src("backend"); bs.kind == "flag" || bs.kind == "env" {
		s.over.backends, s.over.backendsSrc = s.Backends, &bs
	}
	s.over.settings = s.settingsFrom(src)
	cfg := defaultConfig()
	var fileErr error
	if s.Config != "" {
		c, err := loadConfig(s.Config)
		switch {
		case err != nil:
			fileErr = err // still check the flags below, to report everything at once
		default:
			cfg = c
			if p, ok := cfg.pos["redis"]; ok {
				app.redisFile = &fileSetting{value: cfg.Redis, src: source{"file", fmt.Sprintf("%s:%d:%d", s.Config, p.line, p.col)}}
			}
		}
	}
	var overErr error
	if errs := s.over.apply(cfg); len(errs) > 0 {
		overErr = errs
	}
	if err := errors.Join(fileErr, overErr); err != nil {
		return err
	}
	s.cfg = cfg
	return nil
}

// Reload re-reads the config file and lays the same flag and env values on top, for hot
// reload. It returns the new configuration, or every problem found (a configErrors);
// the running configuration is not touched either way. Not safe to call concurrently
// with itself.
func (s *ServeCmd) Reload() (*fileConfig, error) {
	if s.Config == "" {
		return nil, errors.New("reloading config: serve runs without --config")
	}
	cfg, err := loadConfig(s.Config)
	if err != nil {
		return nil, err
	}
	if errs := s.over.apply(cfg); len(errs) > 0 {
		return nil, errs
	}
	return cfg, nil
}

// Run serves until app.Ctx is cancelled (SIGINT, SIGTERM), then stops accepting
// connections and waits up to --shutdown-timeout for in-flight requests before
// returning. A clean drain returns nil, so the process exits 0. With --config, the file
// is reloaded when it changes or on SIGHUP.
func (s *ServeCmd) Run(app *App) error {
	return s.run(app, modeServe)
}

// run builds the stack for mode, serves it and tears it down after the drain.
func (s *ServeCmd) run(app *App, mode stackMode) error {
	cfg := s.cfg
	if cfg == nil { // run always prepares; this guards direct calls
		cfg = defaultConfig()
	}
	if len(cfg.Backends) == 0 {
		return errors.New("no backends to serve: give --backend URL (repeatable), VLLM_PXY_BACKENDS, or a config file with backends")
	}
	st, err := newStack(app, cfg, mode)
	if err != nil {
		return err
	}
	defer st.close()
	if s.Config != "" {
		rl := newReloader(s.Config, s.Reload, st.reload, app.Log.With(slog.String("component", "config")))
		if err := rl.Start(app.Ctx); err != nil {
			app.Log.Warn("config hot reload is off: cannot watch the file", slog.String("path", s.Config), logging.Err(err))
		} else {
			defer rl.Stop()
		}
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listening: %w", err)
	}
	return serveListener(app, ln, st.handler, s.ShutdownTimeout)
}

// Run runs the batch workers until app.Ctx is cancelled, serving /health and /metrics.
func (w *WorkerCmd) Run(app *App) error {
	return w.run(app, modeWorker)
}

// serveListener serves handler on ln until app.Ctx ends, then drains within timeout.
func serveListener(app *App, ln net.Listener, handler http.Handler, timeout time.Duration) error {
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(app.Log.Handler(), logging.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(app.Ctx) },
	}
	app.Log.Info("serving", slog.String(logging.KeyAddr, ln.Addr().String()),
		slog.String(logging.KeyRedis, app.RedisURL.Redacted()), slog.String("version", app.Version))
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serving: %w", err)
	case <-app.Ctx.Done():
	}
	app.Log.Info("shutting down", slog.Duration("timeout", timeout))
	// app.Ctx is already cancelled; the drain gets its own deadline.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(app.Ctx), timeout)
	defer cancel()
	err := srv.Shutdown(ctx)
	if serveErr := <-errc; !errors.Is(serveErr, http.ErrServerClosed) {
		app.Log.Warn("server stopped unexpectedly", logging.Err(serveErr))
	}
	if err != nil {
		_ = srv.Close()
		return fmt.Errorf("draining in-flight requests within %s: %w", timeout, err)
	}
	app.Log.Info("stopped")
	return nil
}
