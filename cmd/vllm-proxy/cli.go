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

	Serve ServeCmd `cmd:"" default:"withargs" help:"Run the proxy (the default command)."`
	Sim   SimCmd   `cmd:"" help:"Run the vLLM simulator."`
	Bench BenchCmd `cmd:"" help:"Run the load generator."`
}

// ServeCmd runs the proxy. Its flags override the config file's keys.
type ServeCmd struct {
	Listen          string        `name:"listen" env:"VLLM_PXY_LISTEN" default:":8010" placeholder:"ADDR" help:"Address to serve the OpenAI API on. Env: ${env}. Default: ${default}; the config file's listen key comes between env and default."`
	Config          string        `name:"config" env:"VLLM_PXY_CONFIG" placeholder:"FILE" type:"path" help:"YAML config file (see docs/CONFIG.md). Env: ${env}. Default: none."`
	Backends        []string      `name:"backend" env:"VLLM_PXY_BACKENDS" sep:"," placeholder:"URL" help:"A vLLM server's base URL, e.g. http://10.0.0.5:8000; repeatable. Replaces the config file's backends (each gets capacity 8). Env: ${env} (comma-separated). Default: the config file's backends."`
	ShutdownTimeout time.Duration `name:"shutdown-timeout" default:"30s" placeholder:"DURATION" help:"On SIGINT or SIGTERM, how long in-flight requests may take to finish. Default: ${default}."`

	// cfg is the merged configuration prepare builds and Run serves.
	cfg *fileConfig
	// over are the flag and env values that beat the file, kept for Reload.
	over overrides
}
