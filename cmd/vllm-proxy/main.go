// Command vllm-proxy makes many vLLM servers look like one OpenAI-compatible server.
package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/alecthomas/kong"
)

// App is what every subcommand's Run method receives. main builds it once from the
// global flags; subcommands never read flags, env or files of their own.
type App struct {
	// Ctx is cancelled on SIGINT or SIGTERM.
	Ctx context.Context
	// Log writes structured records to Stdout.
	Log *slog.Logger
	// Stdout is where logs and command output go.
	Stdout io.Writer
	// Redis is the validated -R value.
	Redis string
}

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	var cli CLI
	parser, err := kong.New(&cli, kong.Name("vllm-proxy"), kong.UsageOnError())
	if err != nil {
		return 2
	}
	kctx, err := parser.Parse(args)
	if err != nil {
		parser.FatalIfErrorf(err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	app := &App{Ctx: ctx, Log: slog.New(slog.NewJSONHandler(os.Stdout, nil)), Stdout: os.Stdout, Redis: cli.Redis}
	if err := kctx.Run(app); err != nil {
		app.Log.Error("command failed", "err", err)
		return 1
	}
	return 0
}
