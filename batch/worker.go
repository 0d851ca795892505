package batch

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vllm-proxy/vllm-proxy/state"
)

// Workers runs this replica's share of batch work: validating new batches, executing
// chunks of lines, taking over chunks whose lease lapsed (a dead replica's), and
// finalizing. Every task holds a lease in the JobStore that a renewer extends every
// LeaseTTL/3; a task whose lease is lost is cancelled.
//
// Lifecycle: Start once; Stop is idempotent, waits for every goroutine, and gives unfinished
// chunks back so other replicas take them at once. Cancelling Start's ctx instead abandons
// leases as a crash would (they lapse after LeaseTTL).
type Workers struct {
	cfg   Config
	jobs  state.JobStore
	blobs BlobStore
	d     Dispatcher
	log   *slog.Logger
	m     *Metrics

	sem chan struct{} // one slot per line in flight
	// results holds one token per finished line whose result is not committed yet: with
	// the lines in flight, they are all a crash can make run again (at most one chunk).
	results chan struct{}
	wake    chan struct{}

	mu     sync.Mutex
	leases map[leaseKey]context.CancelFunc // held leases → cancel of their task
	chunks int                             // chunk tasks running
	valids int                             // validation tasks running

	graceful  atomic.Bool
	started   atomic.Bool
	cancel    context.CancelFunc
	wg        sync.WaitGroup
	startOnce sync.Once
	stopOnce  sync.Once
}

// leaseKey names one lease: chunk ≥ 0, -1 validation, -2 finalization.
type leaseKey struct {
	batch string
	chunk int64
}

const (
	leaseValidation   = -1
	leaseFinalization = -2
	maxValidations    = 2
)

func newWorkers(cfg Config, jobs state.JobStore, blobs BlobStore, d Dispatcher, log *slog.Logger, m *Metrics) *Workers {
	return &Workers{cfg: cfg, jobs: jobs, blobs: blobs, d: d, log: log, m: m,
		sem: make(chan struct{}, cfg.MaxConcurrentRequests), wake: make(chan struct{}, 1),
		results: make(chan struct{}, max(cfg.ChunkLines, cfg.FlushLines*cfg.MaxChunks)),
		leases:  map[leaseKey]context.CancelFunc{}}
}

// Start launches the poll and renew loops. It returns at once.
func (w *Workers) Start(ctx context.Context) error {
	if w.d == nil {
		return errors.New("batch workers: no dispatcher")
	}
	w.startOnce.Do(func() {
		ctx, w.cancel = context.WithCancel(ctx)
		w.started.Store(true)
		w.wg.Add(2)
		go func() { defer w.wg.Done(); w.pollLoop(ctx) }()
		go func() { defer w.wg.Done(); w.renewLoop(ctx) }()
	})
	return nil
}

// Stop stops taking work, gives back held chunks and waits for every goroutine.
func (w *Workers) Stop() {
	w.stopOnce.Do(func() {
		if !w.started.Load() {
			return
		}
		w.graceful.Store(true)
		w.cancel()
		w.wg.Wait()
	})
}

func (w *Workers) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *Workers) pollLoop(ctx context.Context) {
	t := time.NewTicker(w.cfg.PollInterval)
	defer t.Stop()
	for {
		w.pass(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-w.wake:
		}
	}
}

// pass looks at every active batch once and starts the tasks this replica can take.
func (w *Workers) pass(ctx context.Context) {
	pctx, cancel := context.WithTimeout(ctx, w.cfg.LeaseTTL)
	defer cancel()
	ids, err := w.jobs.ActiveBatches(pctx)
	if err != nil {
		w.log.WarnContext(ctx, "listing active batches failed", "err", err)
		return
	}
	rand.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	for _, id := range ids {
		if ctx.Err() != nil {
			return
		}
		if err := w.visit(pctx, ctx, id); err != nil {
			w.log.WarnContext(ctx, "batch work pass failed", "batch", id, "err", err)
		}
	}
}

// visit claims what can be claimed in one batch. pctx bounds store calls; ctx outlives the
// pass and is the parent of started tasks.
func (w *Workers) visit(pctx, ctx context.Context, id string) error {
	rec, err := w.jobs.GetBatch(pctx, id)
	if errors.Is(err, state.ErrBatchNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	now := w.cfg.Now()
	switch rec.Status {
	case state.BatchValidating:
		// The claim script lets a lease's owner claim again (a restarted replica keeps its
		// id), so a validation this replica is already running must be skipped here.
		if w.holds(leaseKey{id, leaseValidation}) || !w.reserve(&w.valids, maxValidations) {
			return nil
		}
		ok, err := w.jobs.ClaimValidation(pctx, id, w.cfg.ReplicaID, now, w.cfg.LeaseTTL)
		if err != nil || !ok {
			w.release(&w.valids)
			return err
		}
		w.run(ctx, leaseKey{id, leaseValidation}, func(tctx context.Context) {
			defer w.release(&w.valids)
			w.validate(tctx, rec)
		})
	case state.BatchInProgress:
		for w.reserve(&w.chunks, w.cfg.MaxChunks) {
			c, reclaimed, ok, err := w.jobs.ClaimChunk(pctx, id, w.cfg.ReplicaID, now, w.cfg.LeaseTTL)
			if err != nil || !ok {
				w.release(&w.chunks)
				if err != nil {
					return err
				}
				break
			}
			kind := "new"
			if reclaimed {
				kind = "reclaimed"
				w.log.InfoContext(ctx, "took over a chunk whose lease lapsed", "batch", id, "chunk", c.Index)
			}
			w.m.chunkClaims.WithLabelValues(kind).Inc()
			w.run(ctx, leaseKey{id, c.Index}, func(tctx context.Context) {
				defer w.release(&w.chunks)
				w.processChunk(tctx, rec, c)
			})
		}
	case state.BatchCompleted, state.BatchFailed, state.BatchExpired, state.BatchCancelled:
		// A finalizer died between finishing and purging: tidy up.
		return w.purge(pctx, id, nil)
	}
	if rec.Status == state.BatchInProgress || rec.Status == state.BatchFinalizing || rec.Status == state.BatchCancelling {
		mode, ok, err := w.jobs.ClaimFinalize(pctx, id, w.cfg.ReplicaID, now, w.cfg.LeaseTTL)
		if err != nil || !ok {
			return err
		}
		w.run(ctx, leaseKey{id, leaseFinalization}, func(tctx context.Context) {
			if err := w.finalize(tctx, id, mode); err != nil && tctx.Err() == nil {
				w.log.WarnContext(tctx, "finalizing batch failed; will retry after the lease lapses", "batch", id, "err", err)
			}
		})
	}
	return nil
}

func (w *Workers) holds(k leaseKey) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.leases[k]
	return ok
}

func (w *Workers) reserve(n *int, max int) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if *n >= max {
		return false
	}
	*n++
	return true
}

func (w *Workers) release(n *int) {
	w.mu.Lock()
	*n--
	w.mu.Unlock()
	w.poke()
}

// run starts fn as the task holding lease k; the renewer cancels its ctx if the lease is lost.
func (w *Workers) run(ctx context.Context, k leaseKey, fn func(ctx context.Context)) {
	tctx, cancel := context.WithCancel(ctx)
	w.mu.Lock()
	w.leases[k] = cancel
	w.mu.Unlock()
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer func() {
			w.mu.Lock()
			delete(w.leases, k)
			w.mu.Unlock()
			cancel()
		}()
		fn(tctx)
	}()
}

func (w *Workers) renewLoop(ctx context.Context) {
	t := time.NewTicker(w.cfg.LeaseTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		w.mu.Lock()
		held := make(map[leaseKey]context.CancelFunc, len(w.leases))
		for k, c := range w.leases {
			held[k] = c
		}
		w.mu.Unlock()
		for k, cancel := range held {
			rctx, rcancel := context.WithTimeout(ctx, w.cfg.LeaseTTL/3)
			ok, err := w.jobs.Renew(rctx, k.batch, w.cfg.ReplicaID, k.chunk, w.cfg.Now(), w.cfg.LeaseTTL)
			rcancel()
			if err == nil && !ok {
				w.mu.Lock()
				_, running := w.leases[k] // a task that just released its lease is no loss
				w.mu.Unlock()
				if running {
					w.log.WarnContext(ctx, "lease lost; stopping its task", "batch", k.batch, "chunk", k.chunk)
					cancel()
				}
			}
		}
	}
}

// storeCtx is a short context for a store call made while stopping: Stop gives chunks
// back even though the task's ctx is done, but a crash-like cancel of Start's ctx doesn't.
func (w *Workers) storeCtx(ctx context.Context) (context.Context, context.CancelFunc, bool) {
	if ctx.Err() != nil && !w.graceful.Load() {
		return ctx, func() {}, false
	}
	c, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.cfg.LeaseTTL/3)
	return c, cancel, true
}

// validate checks the input file of a validating batch and starts or fails it.
func (w *Workers) validate(ctx context.Context, rec state.BatchRecord) {
	start := time.Now()
	rc, err := w.blobs.Open(ctx, rec.InputFileID, 0)
	if errors.Is(err, state.ErrBlobNotFound) {
		w.failValidation(ctx, rec.ID, []state.BatchError{{Code: "invalid_file", Message: "The input file no longer exists.", Param: "input_file_id"}})
		return
	}
	if err != nil {
		w.log.WarnContext(ctx, "opening batch input failed", "batch", rec.ID, "err", err)
		return
	}
	v, errs, err := validateInput(rc, rec.Endpoint, validationLimits{
		maxLines: w.cfg.MaxLines, maxLineBytes: w.cfg.MaxLineBytes, chunkLines: w.cfg.ChunkLines})
	_ = rc.Close()
	if err != nil {
		w.log.WarnContext(ctx, "reading batch input failed", "batch", rec.ID, "err", err)
		return
	}
	w.m.validation.Observe(time.Since(start).Seconds())
	if len(errs) > 0 {
		w.failValidation(ctx, rec.ID, errs)
		return
	}
	st, err := w.jobs.StartBatch(ctx, rec.ID, v, w.cfg.Now())
	if err != nil {
		w.log.WarnContext(ctx, "starting batch failed", "batch", rec.ID, "err", err)
		return
	}
	w.log.InfoContext(ctx, "batch validated", "batch", rec.ID, "lines", v.Total, "chunks", len(v.Chunks), "status", string(st))
	w.poke()
}

func (w *Workers) failValidation(ctx context.Context, id string, errs []state.BatchError) {
	st, err := w.jobs.FailBatch(ctx, id, errs, w.cfg.Now())
	if err != nil {
		w.log.WarnContext(ctx, "failing batch failed", "batch", id, "err", err)
		return
	}
	if st == state.BatchFailed {
		w.m.batchesFinished.WithLabelValues(string(st)).Inc()
		if err := w.jobs.PurgeBatchWork(ctx, id); err != nil {
			w.log.WarnContext(ctx, "purging failed batch", "batch", id, "err", err)
		}
	}
	w.log.InfoContext(ctx, "batch failed validation", "batch", id, "errors", len(errs), "first", errs[0].Code)
}
