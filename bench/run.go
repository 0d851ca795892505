package bench

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// streamArrival seeds the Poisson arrival process of each round.
const streamArrival uint64 = 100

// runner is the state of one Run.
type runner struct {
	cfg      Config
	log      *slog.Logger
	workload Workload
	bodyOpts BodyOptions
	header   http.Header
	client   *http.Client
	start    time.Time
	targets  []*target
	scrape   *scraper
}

// Run drives cfg.Targets with the configured workload and returns the report. Requests to
// one target are only ever in flight during that target's slices, so targets never share
// the machine at the same moment. If ctx ends early, Run returns the partial report
// together with ctx's error. Run owns every goroutine it starts and waits for them.
func Run(ctx context.Context, cfg Config, log *slog.Logger) (*Report, error) {
	cfg.applyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid bench config: %w", err)
	}
	wl := cfg.Workload
	if wl == nil {
		var err error
		if wl, err = NewWorkload(cfg.WorkloadName, cfg.Params, cfg.Seed); err != nil {
			return nil, err
		}
	}
	tr := newTransport(cfg.MaxIdleConnsPerHost, cfg.MaxConns)
	defer tr.CloseIdleConnections()
	r := &runner{
		cfg:      cfg,
		log:      log,
		workload: wl,
		bodyOpts: BodyOptions{Endpoint: cfg.Endpoint, Model: cfg.Model, Stream: !cfg.NoStream, IgnoreEOS: cfg.IgnoreEOS},
		header:   http.Header{"Content-Type": {"application/json"}},
		client:   &http.Client{Transport: tr, Timeout: cfg.Timeout},
	}
	if cfg.APIKey != "" {
		r.header.Set("Authorization", "Bearer "+cfg.APIKey)
	}
	if len(cfg.Scrape) > 0 {
		r.scrape = newScraper(cfg.Scrape, cfg.ScrapeInterval, tr)
	}
	for i, t := range cfg.Targets {
		base, _ := baseURL(t) // validated above
		r.targets = append(r.targets, &target{index: i, base: base, url: cfg.endpointURL(base), run: r})
	}
	log.InfoContext(ctx, "bench starting", "workload", wl.Name(), "targets", len(r.targets),
		"rate", cfg.Rate, "concurrency", cfg.Concurrency, "duration", cfg.Duration,
		"requests", cfg.Requests, "rounds", cfg.Rounds, "stream", !cfg.NoStream)

	r.start = time.Now()
	next := make([]int, len(r.targets))
	for round := 0; round < cfg.Rounds && ctx.Err() == nil; round++ {
		for k := range r.targets {
			if ctx.Err() != nil {
				break
			}
			ti := (round + k) % len(r.targets)
			t := r.targets[ti]
			lo, hi := next[ti], -1
			if cfg.Requests > 0 {
				lo, hi = round*cfg.Requests/cfg.Rounds, (round+1)*cfg.Requests/cfg.Rounds
			}
			next[ti] = r.slice(ctx, t, round, lo, hi, cfg.Duration/time.Duration(cfg.Rounds))
			log.DebugContext(ctx, "bench slice done", "target", t.base, "round", round, "next_index", next[ti])
		}
	}
	rep := r.report(next)
	log.InfoContext(ctx, "bench finished", "elapsed", time.Since(r.start))
	if err := ctx.Err(); err != nil {
		return rep, fmt.Errorf("bench interrupted: %w", err)
	}
	return rep, nil
}

// slice runs one target for one round: requests lo..hi-1 (hi < 0: unbounded) for at most
// d (d == 0: unbounded). It returns the index after the last request sent.
func (r *runner) slice(ctx context.Context, t *target, round, lo, hi int, d time.Duration) int {
	dispatch, cancel := ctx, context.CancelFunc(func() {})
	if d > 0 {
		dispatch, cancel = context.WithTimeout(ctx, d)
	}
	defer cancel()
	var stopScrape func() EngineStats
	if r.scrape != nil {
		stopScrape = r.scrape.watch(ctx)
	}
	began := time.Now()
	var next int
	if sched, ok := r.workload.(Scheduled); ok || r.cfg.Rate > 0 {
		next = r.openLoop(ctx, dispatch, t, round, lo, hi, sched)
	} else {
		next = r.closedLoop(ctx, dispatch, t, lo, hi)
	}
	t.active += time.Since(began)
	if stopScrape != nil {
		t.engine.add(stopScrape())
	}
	return next
}

// closedLoop runs Concurrency workers, each sending its next request when the last ends.
func (r *runner) closedLoop(ctx, dispatch context.Context, t *target, lo, hi int) int {
	var next atomic.Int64
	next.Store(int64(lo))
	var wg sync.WaitGroup
	for range r.cfg.Concurrency {
		wg.Go(func() {
			w := newWorker()
			for dispatch.Err() == nil {
				i := int(next.Add(1) - 1)
				if hi >= 0 && i >= hi {
					return
				}
				t.do(ctx, w, i, time.Time{})
			}
		})
	}
	wg.Wait()
	n := int(next.Load())
	if hi >= 0 {
		n = min(n, hi)
	}
	return n
}

// openLoop sends requests at Poisson arrival times (or the workload's own schedule),
// whether or not earlier ones have finished; Concurrency > 0 caps requests in flight.
func (r *runner) openLoop(ctx, dispatch context.Context, t *target, round, lo, hi int, sched Scheduled) int {
	rng := newRand(r.cfg.Seed, streamArrival, uint64(round)) // #nosec G115 -- a non-negative index used as a random stream key: wrap-around would only pick another stream
	var sem chan struct{}
	if r.cfg.Concurrency > 0 {
		sem = make(chan struct{}, r.cfg.Concurrency)
	}
	workers := sync.Pool{New: func() any { return newWorker() }}
	var wg sync.WaitGroup
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	began := time.Now()
	deadline, hasDeadline := dispatch.Deadline()
	offset := 0.0
	i := lo
	for ; hi < 0 || i < hi; i++ {
		var at time.Duration
		if sched != nil {
			at = sched.Arrival(i) - sched.Arrival(lo)
		} else {
			offset += rng.ExpFloat64() / r.cfg.Rate
			at = time.Duration(offset * float64(time.Second))
		}
		when := began.Add(at)
		if hasDeadline && !when.Before(deadline) {
			break
		}
		if wait := time.Until(when); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-dispatch.Done():
			}
		}
		if dispatch.Err() != nil {
			break
		}
		if sem != nil {
			select {
			case sem <- struct{}{}:
			case <-dispatch.Done():
			}
			if dispatch.Err() != nil {
				break
			}
		}
		idx := i // i outlives the iteration: it is the return value
		wg.Go(func() {
			w := workers.Get().(*worker)
			t.do(ctx, w, idx, when)
			workers.Put(w)
			if sem != nil {
				<-sem
			}
		})
	}
	wg.Wait()
	return i
}

// bodySize estimates the JSON body size of req, so that AppendBody rarely grows.
func (r *runner) bodySize(req Request) int {
	n := 192 + len(r.cfg.Model)
	for _, m := range req.Messages {
		n += len(m.Content) + 32
	}
	return n
}
