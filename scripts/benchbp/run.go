package main

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/vllm-proxy/vllm-proxy/sim"
)

// plan is the timeline and shape shared by every run.
type plan struct {
	duration   time.Duration // whole run
	warm       time.Duration // measurements start here
	burstStart time.Duration // run C: the 3× burst starts here ...
	burstLen   time.Duration // ... and lasts this long
	burstObs   time.Duration // the burst's first part whose TTFT is reported
	shape      shape
	replicas   int // proxy replicas (more than 1: sharing the Redis at redisURL)
	redisURL   string
	batchAPI   bool // the batch goes through /v1/files, /v1/batches and batch workers
	workers    int  // batch lines in flight at most (the replica's batch concurrency)
	backends   int
	seqs       int
	ts         float64 // the simulators' TimeScale; figures are reported in simulated time
}

// simMS converts a real duration to simulated milliseconds.
func (p plan) simMS(d time.Duration) float64 { return ms(d) * p.ts }

// result is one run's raw data and figures.
type result struct {
	sched, controller, run string
	load                   float64
	seed                   uint64 // the repetition's seed: its A run has the same arrivals
	samples                []sample
	batch                  []batchDone
	points                 []point
	bad400                 int64

	ttftP50, ttftP99, itlP99, e2eP99 float64 // simulated ms, interactive, steady window
	interactiveOK, interactiveAll    int
	batchPerS                        float64 // batch lines/s finished in the steady window
	reactMS                          float64 // run C: burst start → batch in flight at floor; NaN never
	targetMS                         float64 // run C: burst start → batch target at floor; NaN never
	burstTTFTP99                     float64 // run C: ms, arrivals in the burst's first burstObs
}

// runNumber numbers the runs of this process, for shape.salt.
var runNumber atomic.Int64

// runOnce runs interactive load at rate (and batch when withBatch, and the burst when
// burst) against a fresh stack over sims.
func runOnce(ctx context.Context, p plan, sims []*sim.Server, prio bool, controller string, rate float64, withBatch, burst bool, seed uint64) (*result, error) {
	if err := waitIdle(ctx, sims); err != nil {
		return nil, err
	}
	before := count400(sims)
	st, err := newStack(ctx, sims, p, prio, controller)
	if err != nil {
		return nil, err
	}
	defer st.close()
	p.shape.salt = fmt.Sprintf("run %d: ", runNumber.Add(1))
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2048, MaxConnsPerHost: 0}}
	defer client.CloseIdleConnections()
	rateAt := func(t time.Duration) float64 {
		if burst && t >= p.burstStart && t < p.burstStart+p.burstLen {
			return 3 * rate
		}
		return rate
	}
	runCtx, cancel := context.WithTimeout(ctx, p.duration)
	defer cancel()
	start := time.Now()
	res := &result{seed: seed}
	done := make(chan struct{}, 3)
	go func() { res.points = sampleInFlight(runCtx, st, start); done <- struct{}{} }()
	var batchErr error
	go func() {
		switch {
		case withBatch && p.batchAPI:
			// More lines than any controller finishes in the run (capacity is ~16/s).
			lines := int(p.duration.Seconds()*p.ts*20) + 100
			res.batch, batchErr = batchViaAPI(runCtx, client, st.urls()[0], p.shape, lines, seed, start)
			if batchErr != nil {
				cancel()
			}
		case withBatch:
			res.batch = batchLoad(runCtx, st.handlers(), p.shape, p.workers, seed, start)
		}
		done <- struct{}{}
	}()
	res.samples = interactive(runCtx, client, st.urls(), p.shape, seed, start, rateAt)
	<-done
	<-done
	if batchErr != nil {
		return nil, batchErr
	}
	res.bad400 = count400(sims) - before
	res.figures(p, burst)
	return res, nil
}

func (r *result) figures(p plan, burst bool) {
	steadyEnd := p.duration
	if burst {
		steadyEnd = p.burstStart
	}
	var ttft, e2e, itl, burstTTFT []float64
	for _, s := range r.samples {
		inSteady := s.at >= p.warm && s.at < steadyEnd
		inBurst := burst && s.at >= p.burstStart && s.at < p.burstStart+p.burstObs
		if inSteady {
			r.interactiveAll++
		}
		if !s.ok {
			continue
		}
		switch {
		case inSteady:
			r.interactiveOK++
			ttft = append(ttft, p.simMS(s.ttft))
			e2e = append(e2e, p.simMS(s.e2e))
			for _, d := range s.itls {
				itl = append(itl, p.simMS(d))
			}
		case inBurst:
			burstTTFT = append(burstTTFT, p.simMS(s.ttft))
		}
	}
	r.ttftP50, r.ttftP99 = pct(ttft, 0.50), pct(ttft, 0.99)
	r.itlP99, r.e2eP99 = pct(itl, 0.99), pct(e2e, 0.99)
	r.burstTTFTP99 = pct(burstTTFT, 0.99)
	n := 0
	for _, b := range r.batch {
		if b.at >= p.warm && b.at < steadyEnd {
			n++
		}
	}
	r.batchPerS = float64(n) / (steadyEnd - p.warm).Seconds() / p.ts // per simulated second
	r.reactMS, r.targetMS = math.NaN(), math.NaN()
	if burst {
		floor := int64(p.backends) // backpressure's default floor: 1 per backend
		for _, pt := range r.points {
			if pt.at >= p.burstStart && pt.target <= int(floor) && math.IsNaN(r.targetMS) {
				r.targetMS = p.simMS(pt.at - p.burstStart)
			}
			if pt.at >= p.burstStart && pt.batch <= floor && math.IsNaN(r.reactMS) {
				r.reactMS = p.simMS(pt.at - p.burstStart)
			}
		}
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// pct is the nearest-rank percentile of xs (NaN when empty).
func pct(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

// capacity measures interactive-only throughput (requests/s) with one closed-loop client
// per sequence slot of every backend, through the proxy.
func capacity(ctx context.Context, p plan, sims []*sim.Server, prio bool) (float64, error) {
	if err := waitIdle(ctx, sims); err != nil {
		return 0, err
	}
	st, err := newStack(ctx, sims, p, prio, "off")
	if err != nil {
		return 0, err
	}
	defer st.close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2048}}
	defer client.CloseIdleConnections()
	runCtx, cancel := context.WithTimeout(ctx, p.warm+10*time.Second)
	defer cancel()
	start := time.Now()
	finished := make(chan time.Duration, 1<<16)
	conc := p.backends * p.seqs
	doneAll := make(chan struct{})
	urls := st.urls()
	for w := range conc {
		go func() {
			rnd := newRand(uint64(w) + 7)
			for runCtx.Err() == nil {
				if s := stream(runCtx, client, urls[w%len(urls)], p.shape.body(rnd, true)); s.ok {
					finished <- time.Since(start)
				}
			}
			doneAll <- struct{}{}
		}()
	}
	for range conc {
		<-doneAll
	}
	close(finished)
	n := 0
	for at := range finished {
		if at >= p.warm {
			n++
		}
	}
	return float64(n) / 10, nil
}
