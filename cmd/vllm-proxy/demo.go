package main

import (
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/vllm-proxy/vllm-proxy/sim"
	"github.com/vllm-proxy/vllm-proxy/state"
)

// DemoCmd runs the proxy in front of three in-process simulated vLLM servers, with
// in-memory state: no Redis, no GPU, nothing to configure.
type DemoCmd struct {
	Listen    string  `name:"listen" default:":8010" placeholder:"ADDR" help:"Address the proxy serves on. Default: ${default}."`
	ModelA    string  `name:"model-a" default:"meta-llama/Llama-3.1-8B-Instruct" help:"Model served by two simulated backends. Default: ${default}."`
	ModelB    string  `name:"model-b" default:"Qwen/Qwen2.5-7B-Instruct" help:"Model served by one simulated backend. Default: ${default}."`
	TimeScale float64 `name:"time-scale" default:"1" help:"Run the simulated GPUs this many times faster than real time. Default: ${default}."`
}

// Run starts the simulators and the proxy and serves until SIGINT or SIGTERM.
func (c *DemoCmd) Run(app *App) error {
	models := []string{c.ModelA, c.ModelA, c.ModelB}
	cfg := defaultConfig()
	cfg.Listen = c.Listen
	cfg.Redis = "memory"
	cfg.Routing.HealthCheckInterval = time.Second
	for i, m := range models {
		s, err := sim.Start(app.Ctx, sim.Config{
			Model:            m,
			SchedulingPolicy: sim.PolicyPriority,
			TimeScale:        c.TimeScale,
			MaxNumSeqs:       64,
			Seed:             uint64(i + 1),
		}, app.Log.With(slog.Int("sim", i)))
		if err != nil {
			return fmt.Errorf("starting simulated backend %d: %w", i, err)
		}
		defer s.Close()
		cfg.Backends = append(cfg.Backends, backendConfig{URL: s.URL(), Capacity: 64, Models: []string{m}})
		app.Log.Info("simulated backend ready", slog.String("url", s.URL()), slog.String("model", m))
	}
	mem, err := state.ParseURL("memory")
	if err != nil {
		return fmt.Errorf("parsing the demo's state URL: %w", err)
	}
	app.RedisURL, app.Redis = mem, "memory"

	st, err := newStack(app, cfg, modeServe)
	if err != nil {
		return err
	}
	defer st.close()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w", cfg.Listen, err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	fmt.Fprintf(app.Stdout, `
vllm-proxy demo: one OpenAI endpoint at http://localhost:%[1]d over three simulated vLLM servers
(two serve %[2]s, one serves %[3]s). Try:

  curl -s http://localhost:%[1]d/v1/chat/completions -H 'Content-Type: application/json' \
    -d '{"model":"%[2]s","messages":[{"role":"user","content":"Hello!"}],"max_tokens":32}'

Then look at:
  http://localhost:%[1]d/ui/          the live dashboard
  http://localhost:%[1]d/v1/models    the merged model list
  http://localhost:%[1]d/load-stats   per-backend load, health and cache figures
  http://localhost:%[1]d/metrics      Prometheus metrics
Stop with Ctrl-C.

`, port, c.ModelA, c.ModelB)
	return serveListener(app, ln, st.handler, 10*time.Second)
}
