// Command benchbp measures how much batch traffic slows interactive traffic down, by the
// method of ../shared/reference/batch-anchors.md c.7, on simulators with the default
// (realistic) time model, with the backends in fcfs and in priority mode, for three batch
// controllers side by side: none ("off"), the seed's table on a 2 s poll ("poll") and
// vllm-proxy's ("adaptive"), plus vllm-proxy's with eviction of running batch requests
// ("evict").
//
// Everything runs in this process, built the way cmd builds one proxy replica (memory
// state): N simulators, the router, the batch budget, the backpressure controller and the
// proxy handler behind a loopback HTTP server. Interactive load is open-loop Poisson
// streaming chat through HTTP; the batch is W workers sending lines through
// proxy.Handler.Dispatch (the path batch workers take) for the whole run.
//
//	go run ./scripts/benchbp -out /tmp/benchbp
//
// Runs per scheduling mode and load: A (interactive alone), A+burst (A with C's burst, when
// C is run), then per controller B (A plus the batch) and C (B plus a 3× interactive
// burst). It prints markdown tables and writes raw CSVs and a PNG of interactive TTFT over
// time with batch in flight overlaid.
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vllm-proxy/vllm-proxy/sim"
)

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 1)) }

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "benchbp:", err)
		os.Exit(1)
	}
}

func run() error {
	out := flag.String("out", "/tmp/benchbp", "directory for CSVs and the PNG")
	loads := flag.String("loads", "0.6,0.8", "interactive loads, fractions of measured capacity")
	scheds := flag.String("sched", "fcfs,priority", "backend scheduling policies")
	ctls := flag.String("controllers", "off,poll,adaptive,evict", "batch controllers (evict: adaptive with Config.Evict)")
	reps := flag.Int("reps", 1, "repetitions of every run (medians are reported)")
	seed0 := flag.Uint64("seed", 1, "seed of the first repetition (the next ones count up), so separate invocations can add repetitions")
	dur := flag.Duration("duration", 24*time.Second, "length of each run")
	backends := flag.Int("backends", 2, "simulators")
	seqs := flag.Int("seqs", 16, "max_num_seqs of each simulator (and routing capacity)")
	workers := flag.Int("workers", 50, "batch lines in flight at most (VLLM_PXY_BATCH_MAX_CONCURRENT_REQUESTS)")
	budget := flag.Int("batched-tokens", 8192, "the simulators' max_num_batched_tokens (vLLM's per-step token budget; smaller bounds a step's prefill and so ITL)")
	runs := flag.String("runs", "B,C", "runs with batch traffic, per controller (run A is always measured)")
	replicas := flag.Int("replicas", 1, "proxy replicas; more than 1 share a redis-server this starts on a free loopback port (interactive requests and batch workers are spread over them)")
	batchAPI := flag.Bool("batch-api", false, "send the batch as a client does: a file uploaded to /v1/files and a batch created on /v1/batches, executed by the replicas' batch workers (default: lines sent through proxy.Handler.Dispatch by -workers goroutines)")
	fixedCap := flag.Float64("capacity", 0, "interactive capacity in req/s of simulated time, instead of measuring it (so that runs compare at the same rate)")
	ts := flag.Float64("timescale", 0.5, "simulator TimeScale (below 1: slower than real time, less sensitive to CPU contention); figures are in simulated time")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	p := plan{duration: *dur, warm: 4 * time.Second, burstStart: *dur / 2, burstLen: 6 * time.Second,
		burstObs: 5 * time.Second, shape: shape{promptChars: 2048, maxTokens: 64},
		replicas: *replicas, batchAPI: *batchAPI, workers: *workers, backends: *backends, seqs: *seqs, ts: *ts}
	if *replicas > 1 {
		url, stopRedis, err := startRedis(ctx, *out)
		if err != nil {
			return err
		}
		defer stopRedis()
		p.redisURL = url
	}
	var all []*result
	for _, sched := range split(*scheds) {
		sims, err := startSims(ctx, *backends, *seqs, *budget, sched, *ts)
		if err != nil {
			return err
		}
		prio := sched == sim.PolicyPriority
		capRate := *fixedCap * *ts
		if capRate <= 0 {
			if capRate, err = capacity(ctx, p, sims, prio); err != nil {
				return err
			}
		}
		fmt.Printf("# %s: interactive capacity %.2f req/s of simulated time (%d backends × %d seqs, max_num_batched_tokens %d, time scale %g, %d proxy replicas)\n", sched, capRate / *ts, *backends, *seqs, *budget, *ts, max(*replicas, 1))
		for _, ls := range split(*loads) {
			load, _ := strconv.ParseFloat(ls, 64)
			rate := load * capRate
			for rep := range *reps {
				seed := *seed0 + uint64(rep)
				a, err := runOnce(ctx, p, sims, prio, "off", rate, false, false, seed)
				if err != nil {
					return err
				}
				a.sched, a.controller, a.run, a.load = sched, "-", "A", load
				all = append(all, a)
				progress(a)
				if slices.Contains(split(*runs), "C") {
					// Interactive alone with C's burst: what the burst costs without any
					// batch, against which C's burst TTFT is compared.
					ab, err := runOnce(ctx, p, sims, prio, "off", rate, false, true, seed)
					if err != nil {
						return err
					}
					ab.sched, ab.controller, ab.run, ab.load = sched, "-", runABurst, load
					all = append(all, ab)
					progress(ab)
				}
				for _, c := range split(*ctls) {
					for _, r := range split(*runs) {
						res, err := runOnce(ctx, p, sims, prio, c, rate, true, r == "C", seed)
						if err != nil {
							return err
						}
						res.sched, res.controller, res.run, res.load = sched, c, r, load
						all = append(all, res)
						progress(res)
					}
				}
			}
			printTables(os.Stdout, all, sched, load, capRate / *ts)
		}
		for _, s := range sims {
			s.Close()
		}
	}
	if err := writeCSVs(*out, all); err != nil {
		return err
	}
	png := filepath.Join(*out, "ttft_batch_inflight.png")
	if err := plotBurst(png, all, p); err != nil {
		return err
	}
	fmt.Println("wrote", *out)
	return nil
}

func split(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func progress(r *result) {
	fmt.Fprintf(os.Stderr, "%s load %.0f%% %s %-8s ttft p50/p99 %.0f/%.0f ms itl p99 %.0f ms batch %.2f lines/s react %.0f ms burst ttft p99 %.0f ms 400s %d (%d/%d ok)\n",
		r.sched, 100*r.load, r.run, r.controller, r.ttftP50, r.ttftP99, r.itlP99, r.batchPerS, r.reactMS, r.burstTTFTP99, r.bad400,
		r.interactiveOK, r.interactiveAll)
}
