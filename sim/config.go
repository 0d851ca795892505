// Package sim simulates a vLLM OpenAI-compatible server: its HTTP API, error shapes, SSE
// streaming, scheduler (running slots, waiting queue, fcfs or priority policy, preemption
// under KV-cache pressure), paged KV cache with prefix caching, a time model, Prometheus
// metrics with vLLM's names, and injectable faults. Tests use it in-process through
// [Start]; the `vllm-proxy sim` subcommand runs it as a server. docs/SIMULATOR.md
// describes the model and its limits.
package sim

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// Scheduling policies accepted by [Config.SchedulingPolicy].
const (
	PolicyFCFS     = "fcfs"
	PolicyPriority = "priority"
)

// Metrics versions accepted by [Config.MetricsVersion].
const (
	MetricsV1 = "v1"
	MetricsV0 = "v0"
)

// Config configures a simulated vLLM server. Zero values get vLLM-like defaults in [New];
// where zero is itself a meaningful setting (DecodeStepMs, DecodePerSeqMs), a negative
// value means zero.
type Config struct {
	// Listen is the TCP address to listen on. Default "127.0.0.1:0" (a free port).
	Listen string
	// Model is the model path given to `vllm serve`; required. It is the `root` of the
	// base model in /v1/models.
	Model string
	// ServedModelNames are the names clients may use. Default []string{Model}. The first
	// one is the model_name label on metrics.
	ServedModelNames []string
	// LoRAs are adapter names served as extra models whose parent is the base model.
	LoRAs []string
	// MaxModelLen is the context length in tokens. Default 8192.
	MaxModelLen int
	// MaxNumSeqs is the number of running slots per engine. Default 256.
	MaxNumSeqs int
	// MaxNumBatchedTokens is the per-step token budget (decode tokens plus prefill
	// chunks) per engine. Default 8192.
	MaxNumBatchedTokens int
	// BlockSize is the KV-cache block size in tokens. Default 16.
	BlockSize int
	// NumGPUBlocks is the KV-cache capacity in blocks per engine. Default 4096.
	NumGPUBlocks int
	// DisablePrefixCaching turns automatic prefix caching off (vLLM's default is on).
	DisablePrefixCaching bool
	// SchedulingPolicy is PolicyFCFS (default) or PolicyPriority.
	SchedulingPolicy string
	// PrefillTokensPerS is the prefill throughput per engine. Default 10000.
	PrefillTokensPerS float64
	// DecodeStepMs is the fixed cost of one decode step in milliseconds. Default 12;
	// negative means 0.
	DecodeStepMs float64
	// DecodePerSeqMs is the extra cost of one decode step per running sequence in
	// milliseconds. Default 0.15; negative means 0.
	DecodePerSeqMs float64
	// OutputTokens is the output length when a request sets neither max_tokens nor
	// max_completion_tokens. Default 128 (capped by MaxModelLen minus the prompt).
	OutputTokens int
	// TimeScale runs the simulated clock this many times faster than real time.
	// Default 1. Latency metrics are reported in simulated seconds.
	TimeScale float64
	// Instant answers every request at once, with no simulated time; the engine state
	// (prefix cache, counters) is still updated.
	Instant bool
	// EmbeddingDim is the length of embedding vectors. Default 1024.
	EmbeddingDim int
	// MetricsVersion is MetricsV1 (default) or MetricsV0 (pre-V1 metric names).
	MetricsVersion string
	// DataParallel is the number of engines (data-parallel ranks). Default 1. Each engine
	// has its own slots, KV cache and metric series.
	DataParallel int
	// Version is what GET /version reports. Default "0.11.0".
	Version string
	// Seed seeds the fault dice. Default 1.
	Seed uint64
	// StartupDelay keeps /health at 503 (and the API refusing work) for this long after
	// Start.
	StartupDelay time.Duration
	// Faults are the initial injected faults; change them at runtime with
	// [Server.SetFaults] or POST /sim/control.
	Faults Faults
	// Control enables POST /sim/control.
	Control bool
	// MaxBodyBytes bounds request bodies. Default 32 MiB.
	MaxBodyBytes int64
}

// Faults are injected failures. The zero value injects none.
type Faults struct {
	// FailRate is the fraction of inference requests answered with a 500 error.
	FailRate float64 `json:"fail_rate"`
	// HangRate is the fraction of inference requests accepted and never answered (until
	// the client goes away or the server closes).
	HangRate float64 `json:"hang_rate"`
	// DropStreamAfter cuts every streamed response after this many data chunks by closing
	// the connection without the terminating chunk. 0 disables.
	DropStreamAfter int `json:"drop_stream_after"`
}

// ErrInvalidConfig is wrapped by the error [Config.Validate] returns.
var ErrInvalidConfig = errors.New("invalid simulator config")

// withDefaults returns a copy of c with defaults applied.
func (c Config) withDefaults() Config {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:0"
	}
	if len(c.ServedModelNames) == 0 && c.Model != "" {
		c.ServedModelNames = []string{c.Model}
	}
	setInt(&c.MaxModelLen, 8192)
	setInt(&c.MaxNumSeqs, 256)
	setInt(&c.MaxNumBatchedTokens, 8192)
	setInt(&c.BlockSize, 16)
	setInt(&c.NumGPUBlocks, 4096)
	setInt(&c.OutputTokens, 128)
	setInt(&c.EmbeddingDim, 1024)
	setInt(&c.DataParallel, 1)
	if c.SchedulingPolicy == "" {
		c.SchedulingPolicy = PolicyFCFS
	}
	if c.MetricsVersion == "" {
		c.MetricsVersion = MetricsV1
	}
	if c.PrefillTokensPerS == 0 {
		c.PrefillTokensPerS = 10000
	}
	switch {
	case c.DecodeStepMs == 0:
		c.DecodeStepMs = 12
	case c.DecodeStepMs < 0:
		c.DecodeStepMs = 0
	}
	switch {
	case c.DecodePerSeqMs == 0:
		c.DecodePerSeqMs = 0.15
	case c.DecodePerSeqMs < 0:
		c.DecodePerSeqMs = 0
	}
	if c.TimeScale == 0 {
		c.TimeScale = 1
	}
	if c.Version == "" {
		c.Version = "0.11.0"
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = 32 << 20
	}
	return c
}

func setInt(p *int, def int) {
	if *p == 0 {
		*p = def
	}
}

// Validate reports every problem of c after defaults are applied, wrapped in
// ErrInvalidConfig.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []string
	add := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if c.Model == "" {
		add("model is required")
	}
	seen := map[string]bool{}
	for _, n := range append(append([]string{}, c.ServedModelNames...), c.LoRAs...) {
		if n == "" {
			add("model and adapter names must not be empty")
		} else if seen[n] {
			add("model name %q given twice", n)
		}
		seen[n] = true
	}
	positive := []struct {
		name string
		v    int
	}{
		{"max-model-len", c.MaxModelLen}, {"max-num-seqs", c.MaxNumSeqs},
		{"max-num-batched-tokens", c.MaxNumBatchedTokens}, {"block-size", c.BlockSize},
		{"num-gpu-blocks", c.NumGPUBlocks}, {"output-tokens", c.OutputTokens},
		{"embedding-dim", c.EmbeddingDim}, {"data-parallel", c.DataParallel},
	}
	for _, p := range positive {
		if p.v < 0 {
			add("%s must be positive, got %d", p.name, p.v)
		}
	}
	if c.MaxModelLen > math.MaxInt32 {
		add("max-model-len must be at most %d, got %d", math.MaxInt32, c.MaxModelLen)
	}
	if c.BlockSize > 0 && c.NumGPUBlocks > 0 && c.MaxModelLen > c.BlockSize*c.NumGPUBlocks {
		add("max-model-len %d exceeds the KV cache (%d blocks of %d tokens)", c.MaxModelLen, c.NumGPUBlocks, c.BlockSize)
	}
	if c.SchedulingPolicy != PolicyFCFS && c.SchedulingPolicy != PolicyPriority {
		add("scheduling-policy must be fcfs or priority, got %q", c.SchedulingPolicy)
	}
	if c.MetricsVersion != MetricsV1 && c.MetricsVersion != MetricsV0 {
		add("metrics-version must be v1 or v0, got %q", c.MetricsVersion)
	}
	if c.PrefillTokensPerS < 0 {
		add("prefill-tokens-per-s must be positive, got %g", c.PrefillTokensPerS)
	}
	if c.TimeScale < 0 {
		add("time-scale must be positive, got %g", c.TimeScale)
	}
	if c.StartupDelay < 0 {
		add("startup-delay must not be negative, got %s", c.StartupDelay)
	}
	if err := c.Faults.validate(); err != nil {
		add("%v", err)
	}
	if c.MaxBodyBytes < 0 {
		add("max-body-bytes must be positive, got %d", c.MaxBodyBytes)
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, strings.Join(errs, "; "))
	}
	return nil
}

func (f Faults) validate() error {
	var errs []string
	if f.FailRate < 0 || f.FailRate > 1 {
		errs = append(errs, fmt.Sprintf("fail-rate must be in [0,1], got %g", f.FailRate))
	}
	if f.HangRate < 0 || f.HangRate > 1 {
		errs = append(errs, fmt.Sprintf("hang-rate must be in [0,1], got %g", f.HangRate))
	}
	if f.DropStreamAfter < 0 {
		errs = append(errs, fmt.Sprintf("drop-stream-after must not be negative, got %d", f.DropStreamAfter))
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}
