// Command routebench is the helper of scripts/bench-routing.sh, the cache-aware routing
// benchmark of docs/BENCHMARKS.md ("Cache-aware routing"). It has three subcommands:
//
//	routebench split -listen 127.0.0.1:19590 -upstreams http://a,http://b,http://c
//	    a round-robin HTTP splitter: each request goes to the next upstream (proxy
//	    replica), streaming responses are flushed as they arrive. It stands in for the
//	    load balancer in front of several proxy replicas, since one bench target is one URL.
//	routebench watch -interval 1s -out watch.jsonl -group cache_aware=URL,URL,... ...
//	    scrapes the simulators' /metrics pages until SIGINT/SIGTERM and writes one JSON
//	    line per backend per tick (cumulative prefix-cache counters, finished requests,
//	    waiting), from which per-backend request counts, peak waiting and hit rate over
//	    time are computed.
//	routebench summarize -dir RESULTS
//	    reads the bench reports and watch files of every run under RESULTS and prints the
//	    Markdown tables (medians over repeats) and the goal checks.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: routebench split|watch|summarize [flags]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch os.Args[1] {
	case "split":
		err = runSplit(ctx, os.Args[2:], log)
	case "watch":
		err = runWatch(ctx, os.Args[2:], log)
	case "summarize":
		err = runSummarize(os.Args[2:], os.Stdout)
	default:
		fmt.Fprintf(os.Stderr, "unknown subcommand %q\n", os.Args[1])
		os.Exit(2)
	}
	if err != nil {
		log.Error("routebench failed", "cmd", os.Args[1], "err", err)
		os.Exit(1)
	}
}
