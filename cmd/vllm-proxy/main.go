// Command vllm-proxy makes many vLLM servers look like one OpenAI-compatible server.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/alecthomas/kong"

	"github.com/vllm-proxy/vllm-proxy/logging"
	"github.com/vllm-proxy/vllm-proxy/state"
)

// App is what every subcommand's Run method receives. run builds it once from the
// global flags; subcommands never read flags, env or files of their own.
type App struct {
	// Ctx is cancelled on SIGINT or SIGTERM.
	Ctx context.Context
	// Log writes structured records to Stdout.
	Log *slog.Logger
	// Stdout is where logs and command output go.
	Stdout io.Writer
	// Redis is the validated -R value as given (flag > env > config file > "local").
	Redis string
	// RedisURL is Redis parsed; print it with %v or Redacted, never field by field.
	RedisURL state.URL
	// Level is the logger's minimum level; setting it changes Log at once.
	Level *slog.LevelVar
	// Format is the log format in use.
	Format logging.Format
	// Version is the build's version string (see version.go).
	Version string
	// Getenv looks up environment variables (os.LookupEnv outside tests).
	Getenv func(string) (string, bool)

	redisFile *fileSetting // the config file's redis key, set by serve's prepare
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the command ran and failed
	exitUsage = 2 // bad flags, env or config: nothing was started
)

// run is main without the process: it parses args, resolves every setting (flag > env >
// config file > default), and runs the chosen subcommand. Usage errors print to stderr
// and return 2 before anything starts.
func run(ctx context.Context, args []string, getenv func(string) (string, bool), stdout, stderr io.Writer) int {
	kctx, app, code := setup(ctx, args, getenv, stdout, stderr)
	if kctx == nil {
		return code
	}
	app.Log.Debug("settings resolved", slog.String("command", kctx.Command()), slog.String(logging.KeyRedis, app.RedisURL.Redacted()))
	if err := kctx.Run(app); err != nil {
		app.Log.Error("command failed", slog.String("command", kctx.Command()), logging.Err(err))
		return exitError
	}
	return exitOK
}

// setup parses and resolves everything run needs. A nil context means run must return
// code at once (help, version, or a usage error already printed).
func setup(ctx context.Context, args []string, getenv func(string) (string, bool), stdout, stderr io.Writer) (*kong.Context, *App, int) {
	var cli CLI
	p, err := newParser(&cli, getenv, stdout, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "vllm-proxy: internal error: %v\n", err)
		return nil, nil, exitError
	}
	kctx, err := p.parser.Parse(args)
	if p.exited != nil { // --help or --version
		return nil, nil, *p.exited
	}
	if len(p.envErrs) > 0 { // reported instead of kong's "missing flag" they may cause
		return nil, nil, usageError(stderr, errors.Join(p.envErrs...))
	}
	if err != nil {
		return nil, nil, usageError(stderr, err)
	}
	app := &App{Ctx: ctx, Stdout: stdout, Getenv: getenv, Version: version(), Level: new(slog.LevelVar)}
	if err := p.resolve(kctx, app, &cli); err != nil {
		return nil, nil, usageError(stderr, err)
	}
	return kctx, app, exitOK
}

// usageError prints err, one problem per line, and returns exitUsage.
func usageError(stderr io.Writer, err error) int {
	for line := range strings.Lines(err.Error()) {
		fmt.Fprintf(stderr, "vllm-proxy: error: %s", line)
		if !strings.HasSuffix(line, "\n") {
			fmt.Fprintln(stderr)
		}
	}
	return exitUsage
}
