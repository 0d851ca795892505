package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/vllm-proxy/vllm-proxy/bench"
)

// BenchCmd runs the load generator (package bench) against one or more OpenAI-compatible
// base URLs and writes its reports. docs/BENCHMARKS.md shows typical invocations.
type BenchCmd struct {
	Targets     []string      `name:"targets" aliases:"target" sep:"," required:"" placeholder:"URL" help:"OpenAI-compatible base URL(s), e.g. http://127.0.0.1:8101/v1 (an empty path gets /v1). Several (comma-separated or repeated) run the same workload interleaved, with ratios against the first."`
	Endpoint    string        `name:"endpoint" default:"chat" enum:"chat,completions" help:"chat (/chat/completions) or completions (/completions). Default: ${default}."`
	Model       string        `name:"model" required:"" help:"The model field of every request."`
	APIKey      string        `name:"api-key" env:"OPENAI_API_KEY" placeholder:"KEY" help:"Sent as 'Authorization: Bearer KEY'. Env: ${env}."`
	Rate        float64       `name:"rate" placeholder:"R" help:"Open loop: Poisson arrivals at R requests/s (seeded). 0 = closed loop."`
	Concurrency int           `name:"concurrency" short:"c" placeholder:"C" help:"Closed loop: C workers (default 1 without --rate). With --rate or -w bursty: cap on requests in flight (default none)."`
	Duration    time.Duration `name:"duration" short:"d" placeholder:"DURATION" help:"Sending time per target. One of --duration and --requests is required; the first reached ends the run."`
	Requests    int           `name:"requests" short:"n" placeholder:"N" help:"Requests per target."`
	NoStream    bool          `name:"no-stream" help:"Send stream=false: TTFT = E2E, no ITL."`
	IgnoreEOS   bool          `name:"ignore-eos" help:"Send vLLM's ignore_eos so outputs run to max_tokens."`
	Timeout     time.Duration `name:"timeout" default:"5m" help:"Per-request timeout. Default: ${default}."`
	MaxConns    int           `name:"max-conns" placeholder:"N" help:"Cap on connections per target (0: unlimited). Use in open loop at high rates to avoid dial storms; waiting for a connection counts as latency."`
	Rounds      int           `name:"rounds" placeholder:"K" help:"Split each target's share into K slices run round-robin across targets (default 1 with one target, 4 with several)."`

	Workload        string        `name:"workload" short:"w" default:"fixed" enum:"fixed,uniform,shared-prefix,multi-turn,bursty" help:"fixed, uniform, shared-prefix, multi-turn or bursty. Default: ${default}."`
	Seed            uint64        `name:"seed" default:"1" help:"Seed of the workload and the arrivals. Default: ${default}."`
	InputTokens     int           `name:"input-tokens" placeholder:"N" help:"fixed/bursty prompt length (default 128)."`
	OutputTokens    int           `name:"output-tokens" placeholder:"N" help:"fixed/bursty/shared-prefix max_tokens (default 64)."`
	MinInputTokens  int           `name:"min-input-tokens" placeholder:"N" help:"uniform: shortest prompt (default 16)."`
	MaxInputTokens  int           `name:"max-input-tokens" placeholder:"N" help:"uniform: longest prompt (default 512)."`
	MinOutputTokens int           `name:"min-output-tokens" placeholder:"N" help:"uniform: shortest max_tokens (default 16)."`
	MaxOutputTokens int           `name:"max-output-tokens" placeholder:"N" help:"uniform: longest max_tokens (default 128)."`
	Groups          int           `name:"groups" placeholder:"G" help:"shared-prefix: number of system prompts (default 8)."`
	SystemTokens    int           `name:"system-tokens" placeholder:"S" help:"shared-prefix: system prompt length (default 1024)."`
	Users           int           `name:"users" placeholder:"V" help:"shared-prefix: distinct questions per system prompt (default 5)."`
	QuestionTokens  int           `name:"question-tokens" placeholder:"Q" help:"shared-prefix: question length (default 128)."`
	Conversations   int           `name:"conversations" placeholder:"N" help:"multi-turn: conversations replayed side by side (default 16)."`
	Turns           int           `name:"turns" placeholder:"N" help:"multi-turn: user turns per conversation (default 5)."`
	TurnTokens      int           `name:"turn-tokens" placeholder:"N" help:"multi-turn: length of each user turn (default 64)."`
	AnswerTokens    int           `name:"answer-tokens" placeholder:"N" help:"multi-turn: length of each replayed answer and max_tokens (default 64)."`
	WaveSize        int           `name:"wave-size" placeholder:"N" help:"bursty: requests per wave (default 32)."`
	WaveInterval    time.Duration `name:"wave-interval" placeholder:"DURATION" help:"bursty: time between waves (default 1s)."`

	Scrape         []string      `name:"scrape" sep:"," placeholder:"URL" help:"vLLM /metrics URL(s) to scrape: engine prefix-cache hit rate (Δhits/Δqueries) and peak waiting, per target slice."`
	ScrapeInterval time.Duration `name:"scrape-interval" default:"250ms" help:"How often --scrape URLs are polled for the peak waiting count. Default: ${default}."`
	CountHeader    string        `name:"count-header" placeholder:"NAME" help:"Count responses by the value of this response header (e.g. which backend served them)."`

	OutMD   string `name:"out-md" default:"-" placeholder:"FILE" help:"Markdown report file; - is stdout, empty disables. Default: ${default}."`
	OutJSON string `name:"out-json" placeholder:"FILE" help:"JSON report file; - is stdout."`
	OutCSV  string `name:"out-csv" placeholder:"FILE" help:"Per-request CSV (start, ttft, e2e, status, target, tokens); - is stdout."`
	Charts  string `name:"charts" placeholder:"DIR" type:"path" help:"Directory for PNG charts: TTFT CDF and throughput over time per target."`
}

func (c *BenchCmd) config() bench.Config {
	return bench.Config{
		Targets:      c.Targets,
		Endpoint:     c.Endpoint,
		Model:        c.Model,
		APIKey:       c.APIKey,
		Rate:         c.Rate,
		Concurrency:  c.Concurrency,
		Duration:     c.Duration,
		Requests:     c.Requests,
		NoStream:     c.NoStream,
		IgnoreEOS:    c.IgnoreEOS,
		WorkloadName: c.Workload,
		Seed:         c.Seed,
		Rounds:       c.Rounds,
		MaxConns:     c.MaxConns,
		Timeout:      c.Timeout,
		Params: bench.Params{
			InputTokens: c.InputTokens, OutputTokens: c.OutputTokens,
			MinInputTokens: c.MinInputTokens, MaxInputTokens: c.MaxInputTokens,
			MinOutputTokens: c.MinOutputTokens, MaxOutputTokens: c.MaxOutputTokens,
			Groups: c.Groups, SystemTokens: c.SystemTokens, Users: c.Users, QuestionTokens: c.QuestionTokens,
			Conversations: c.Conversations, Turns: c.Turns, TurnTokens: c.TurnTokens, AnswerTokens: c.AnswerTokens,
			WaveSize: c.WaveSize, WaveInterval: c.WaveInterval,
		},
		Scrape:         c.Scrape,
		ScrapeInterval: c.ScrapeInterval,
		CountHeader:    c.CountHeader,
	}
}

var _ preparer = (*BenchCmd)(nil)

// prepare rejects a bad combination of flags as a usage error, before anything runs.
func (c *BenchCmd) prepare(*App, func(string) source) error {
	if err := c.config().Validate(); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	return nil
}

// Run runs the load generator and writes the reports the flags ask for. An interrupted
// run (SIGINT) still writes its partial reports.
func (c *BenchCmd) Run(app *App) error {
	rep, runErr := bench.Run(app.Ctx, c.config(), app.Log)
	if rep == nil {
		return runErr
	}
	errs := []error{runErr}
	if c.OutMD != "" {
		errs = append(errs, c.write(app, c.OutMD, func(w io.Writer) error {
			_, err := io.WriteString(w, rep.Markdown())
			return err
		}))
	}
	if c.OutJSON != "" {
		errs = append(errs, c.write(app, c.OutJSON, rep.WriteJSON))
	}
	if c.OutCSV != "" {
		errs = append(errs, c.write(app, c.OutCSV, rep.WriteCSV))
	}
	if c.Charts != "" {
		files, err := rep.WriteCharts(c.Charts)
		errs = append(errs, err)
		app.Log.Info("charts written", "files", files)
	}
	return errors.Join(errs...)
}

// write sends one report to path ("-" is app.Stdout).
func (c *BenchCmd) write(app *App, path string, fn func(io.Writer) error) error {
	if path == "-" {
		return fn(app.Stdout)
	}
	f, err := os.Create(path) // #nosec G304 -- the operator names the report file on the command line
	if err != nil {
		return fmt.Errorf("creating report file: %w", err)
	}
	if err := fn(f); err != nil {
		_ = f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", path, err)
	}
	app.Log.Info("report written", "path", path)
	return nil
}
