package main

import (
	"time"

	"github.com/alecthomas/kong"
)

// CLI is the kong command tree. A new subcommand is one field here plus a type with
// `Run(app *App) error` in its own file; flags may use env:"" and default:"" tags, which
// run resolves through the injected environment (see parser.go). A command that needs
// checks beyond kong's before anything starts implements preparer.
type CLI struct {
	Redis     string           `name:"redis" short:"R" env:"VLLM_PXY_REDIS" default:"local" placeholder:"URL" help:"Shared state: local (= redis://localhost:6379/0), memory (one replica, no Redis), redis://[user:pass@]host:port/db, rediss://..., unix:///path?db=N, redis+sentinel://h:p[,h:p...]/MASTER[/db] or redis+cluster://h:p[,h:p...]. Env: ${env}. Default: ${default}; the config file's redis key comes between env and default."`
	Verbosity string           `name:"verbosity" env:"VLLM_PXY_VERBOSITY" default:"info" placeholder:"LEVEL" help:"Base log level: 1/loud, verbose, debug, info, warning, or 0/quiet/error (case-insensitive); -v and -q move from it. Env: ${env}. Default: ${default}."`
	Verbose   int              `name:"verbose" short:"v" type:"counter" help:"One level louder, repeatable (-vv), up to loud."`
	Quiet     int              `name:"quiet" short:"q" type:"counter" help:"One level quieter, repeatable (-qq), down to error: logging is never off."`
	LogFormat string           `name:"log-format" short:"L" env:"VLLM_PXY_LOGFORMAT" placeholder:"txt|json|yaml" help:"Log format: txt (one line per record), json (one object per line) or yaml/yml (one document per record). Env: ${env}. Default: txt when stdout is a terminal, json otherwise."`
	Version   kong.VersionFlag `name:"version" help:"Print the version and exit."`

	Serve  ServeCmd  `cmd:"" default:"withargs" help:"Run the proxy (the default command)."`
	Worker WorkerCmd `cmd:"" help:"Run batch workers only: no OpenAI API, just /health and /metrics on --listen."`
	Demo   DemoCmd   `cmd:"" help:"Run the proxy in front of three simulated vLLM servers, with in-memory state."`
	Sim    SimCmd    `cmd:"" help:"Run the vLLM simulator."`
	Bench  BenchCmd  `cmd:"" help:"Run the load generator."`
	Batch  BatchCmd  `cmd:"" help:"Submit, follow, list, cancel and download batches on a running proxy (--url)."`
	Files  FilesCmd  `cmd:"" help:"List and delete files on a running proxy (--url)."`
	Top    TopCmd    `cmd:"" help:"Full-screen view of a running proxy's backends (GET /load-stats); q quits."`
}

// ServeCmd runs the proxy. Its flags override the config file's keys.
type ServeCmd struct {
	Listen          string        `name:"listen" env:"VLLM_PXY_LISTEN" default:":8010" placeholder:"ADDR" help:"Address to serve the OpenAI API on. Env: ${env}. Default: ${default}; the config file's listen key comes between env and default."`
	Config          string        `name:"config" env:"VLLM_PXY_CONFIG" placeholder:"FILE" type:"path" help:"YAML config file (see docs/CONFIG.md). Env: ${env}. Default: none."`
	Backends        []string      `name:"backend" env:"VLLM_PXY_BACKENDS" sep:"," placeholder:"URL" help:"A vLLM server's base URL, e.g. http://10.0.0.5:8000; repeatable. Replaces the config file's backends (each gets capacity 8). Env: ${env} (comma-separated). Default: the config file's backends."`
	ShutdownTimeout time.Duration `name:"shutdown-timeout" default:"30s" placeholder:"DURATION" help:"On SIGINT or SIGTERM, how long in-flight requests may take to finish. Default: ${default}."`
	Policy          string        `name:"policy" env:"VLLM_PXY_POLICY" placeholder:"NAME" help:"Routing policy (routing.policy). Env: ${env}. Default: the config file's, else the built-in default."`

	BatchWorkers             bool          `name:"batch-workers" env:"VLLM_PXY_BATCH_WORKERS" default:"true" help:"Run batch workers in this replica; --batch-workers=false makes an API-only replica (batch.workers). Env: ${env}. Default: ${default}."`
	FilesDir                 string        `name:"files-dir" env:"VLLM_PXY_FILES_DIR" placeholder:"DIR" help:"Keep uploaded and result files in this shared directory instead of Redis (batch.files_dir). Env: ${env}. Default: in Redis."`
	BatchMaxConcurrent       int           `name:"batch-max-concurrent-requests" env:"VLLM_PXY_BATCH_MAX_CONCURRENT_REQUESTS" default:"50" placeholder:"N" help:"Batch lines this replica keeps in flight at most (batch.max_concurrent_requests). Env: ${env}. Default: ${default}."`
	BatchLeaseTTL            time.Duration `name:"batch-lease-ttl" env:"VLLM_PXY_BATCH_LEASE_TTL" placeholder:"DURATION" help:"How long a batch chunk lease lives without renewal: a killed replica's lines are taken over after about this long (batch.lease_ttl). Env: ${env}. Default: 15s."`
	BackpressureEnabled      bool          `name:"backpressure" env:"VLLM_PXY_BACKPRESSURE_ENABLED" default:"true" help:"Cut batch concurrency while interactive requests wait (batch.backpressure_enabled). Env: ${env}. Default: ${default}."`
	BackpressurePollInterval time.Duration `name:"backpressure-poll-interval" env:"VLLM_PXY_BACKPRESSURE_POLL_INTERVAL" default:"2s" placeholder:"DURATION" help:"How often backpressure re-reads the backends' waiting counts (batch.backpressure_poll_interval). Env: ${env}. Default: ${default}."`
	ChatPriority             int           `name:"chat-completion-priority" env:"VLLM_PXY_CHAT_COMPLETION_PRIORITY" default:"0" placeholder:"N" help:"vLLM priority of interactive requests (batch.chat_completion_priority). Env: ${env}. Default: ${default}."`
	BatchPriority            int           `name:"batch-priority" env:"VLLM_PXY_BATCH_PRIORITY" default:"10" placeholder:"N" help:"vLLM priority of batch lines; higher runs later (batch.batch_priority). Env: ${env}. Default: ${default}."`

	// cfg is the merged configuration prepare builds and Run serves.
	cfg *fileConfig
	// over are the flag and env values that beat the file, kept for Reload.
	over overrides
}

// WorkerCmd runs batch workers without the OpenAI API. It takes serve's flags; --listen
// serves only /health and /metrics.
type WorkerCmd struct {
	ServeCmd `embed:""`
}
