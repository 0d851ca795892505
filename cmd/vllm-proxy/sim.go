package main

import (
	"context"
	"fmt"
	"time"

	"github.com/vllm-proxy/vllm-proxy/sim"
)

// SimCmd runs the vLLM simulator. docs/SIMULATOR.md documents every flag and the model
// behind it.
type SimCmd struct {
	Listen                string        `default:"127.0.0.1:8101" help:"Address to listen on."`
	Model                 string        `required:"" help:"Model path, as given to 'vllm serve'."`
	ServedModelName       []string      `help:"Names clients may use (default: --model). Repeat or comma-separate."`
	Lora                  []string      `help:"LoRA adapter names, served as extra models whose parent is the base model."`
	MaxModelLen           int           `default:"8192" help:"Context length in tokens."`
	MaxNumSeqs            int           `default:"256" help:"Running slots per engine."`
	MaxNumBatchedTokens   int           `default:"8192" help:"Token budget of one engine step."`
	BlockSize             int           `default:"16" help:"KV-cache block size in tokens."`
	NumGpuBlocks          int           `default:"4096" help:"KV-cache capacity in blocks, per engine."`
	NoEnablePrefixCaching bool          `help:"Disable automatic prefix caching."`
	SchedulingPolicy      string        `default:"fcfs" enum:"fcfs,priority" help:"fcfs or priority."`
	PrefillTokensPerS     float64       `default:"10000" help:"Prefill throughput per engine, tokens/s."`
	DecodeStepMs          float64       `default:"12" help:"Fixed cost of one decode step, ms (0 allowed)."`
	DecodePerSeqMs        float64       `default:"0.15" help:"Extra decode step cost per running sequence, ms (0 allowed)."`
	OutputTokens          int           `default:"128" help:"Output length when a request sets no max_tokens."`
	TimeScale             float64       `default:"1" help:"Run the simulated clock this many times faster."`
	Instant               bool          `help:"Answer at once, with no simulated time."`
	EmbeddingDim          int           `default:"1024" help:"Length of embedding vectors."`
	MetricsVersion        string        `default:"v1" enum:"v1,v0" help:"Metric names: v1 (current) or v0 (old)."`
	DataParallel          int           `default:"1" help:"Number of engines (data-parallel ranks)."`
	ReportVersion         string        `default:"0.11.0" help:"vLLM version reported by GET /version."`
	Seed                  uint64        `default:"1" help:"Seed of the fault dice."`
	StartupDelay          time.Duration `default:"0s" help:"Answer /health with 503 for this long after start."`
	FailRate              float64       `default:"0" help:"Fraction of inference requests answered with 500."`
	HangRate              float64       `default:"0" help:"Fraction of inference requests accepted and never answered."`
	DropStreamAfter       int           `default:"0" help:"Cut every stream after N chunks (0: never)."`
	Control               bool          `help:"Enable POST /sim/control to switch health and faults at runtime."`
	ShutdownTimeout       time.Duration `default:"5s" help:"How long to drain in-flight requests on shutdown."`
}

func (c *SimCmd) config() sim.Config {
	return sim.Config{
		Listen:               c.Listen,
		Model:                c.Model,
		ServedModelNames:     c.ServedModelName,
		LoRAs:                c.Lora,
		MaxModelLen:          c.MaxModelLen,
		MaxNumSeqs:           c.MaxNumSeqs,
		MaxNumBatchedTokens:  c.MaxNumBatchedTokens,
		BlockSize:            c.BlockSize,
		NumGPUBlocks:         c.NumGpuBlocks,
		DisablePrefixCaching: c.NoEnablePrefixCaching,
		SchedulingPolicy:     c.SchedulingPolicy,
		PrefillTokensPerS:    c.PrefillTokensPerS,
		DecodeStepMs:         zeroAsNegative(c.DecodeStepMs),
		DecodePerSeqMs:       zeroAsNegative(c.DecodePerSeqMs),
		OutputTokens:         c.OutputTokens,
		TimeScale:            c.TimeScale,
		Instant:              c.Instant,
		EmbeddingDim:         c.EmbeddingDim,
		MetricsVersion:       c.MetricsVersion,
		DataParallel:         c.DataParallel,
		Version:              c.ReportVersion,
		Seed:                 c.Seed,
		StartupDelay:         c.StartupDelay,
		Faults:               sim.Faults{FailRate: c.FailRate, HangRate: c.HangRate, DropStreamAfter: c.DropStreamAfter},
		Control:              c.Control,
	}
}

// zeroAsNegative maps an explicit 0 flag to the package's "negative means zero".
func zeroAsNegative(v float64) float64 {
	if v == 0 {
		return -1
	}
	return v
}

// Run serves the simulator until app.Ctx is cancelled, then drains in-flight requests
// for up to --shutdown-timeout.
func (c *SimCmd) Run(app *App) error {
	s, err := sim.New(c.config(), app.Log)
	if err != nil {
		return fmt.Errorf("configuring simulator: %w", err)
	}
	// The server's own lifetime is managed here (graceful drain), not through Start's ctx.
	if err := s.Start(context.WithoutCancel(app.Ctx)); err != nil {
		return fmt.Errorf("starting simulator: %w", err)
	}
	<-app.Ctx.Done()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(app.Ctx), c.ShutdownTimeout)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		app.Log.Warn("simulator shutdown incomplete", "err", err)
	}
	return nil
}
