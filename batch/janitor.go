package batch

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/vllm-proxy/vllm-proxy/state"
)

// Janitor deletes files whose expires_at passed (30 days by default; expires_after and
// output_expires_after honoured), except input files of batches still running. Any number
// of replicas may run it: deletes are idempotent. Start once; Stop is idempotent and waits.
type Janitor struct {
	cfg   Config
	jobs  state.JobStore
	blobs BlobStore
	log   *slog.Logger
	m     *Metrics

	cancel    context.CancelFunc
	done      chan struct{}
	startOnce sync.Once
	stopOnce  sync.Once
}

// Start launches the sweep loop; the first sweep runs at once.
func (j *Janitor) Start(ctx context.Context) error {
	j.startOnce.Do(func() {
		ctx, j.cancel = context.WithCancel(ctx)
		j.done = make(chan struct{})
		go func() {
			defer close(j.done)
			t := time.NewTicker(j.cfg.JanitorInterval)
			defer t.Stop()
			for {
				sctx, cancel := context.WithTimeout(ctx, j.cfg.JanitorInterval)
				if _, err := j.Sweep(sctx); err != nil && ctx.Err() == nil {
					j.log.WarnContext(ctx, "file janitor sweep failed", "err", err)
				}
				cancel()
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		}()
	})
	return nil
}

// Stop ends the loop and waits for it.
func (j *Janitor) Stop() {
	j.stopOnce.Do(func() {
		if j.cancel != nil {
			j.cancel()
			<-j.done
		}
	})
}

// Sweep deletes expired files once and returns how many it deleted.
func (j *Janitor) Sweep(ctx context.Context) (int, error) {
	deleted := 0
	for {
		ids, err := j.jobs.ExpiredFiles(ctx, j.cfg.Now().Unix(), 100)
		if err != nil {
			return deleted, err
		}
		progress := false
		for _, id := range ids {
			busy, err := j.inUse(ctx, id)
			if err != nil {
				return deleted, err
			}
			if busy {
				continue
			}
			if err := j.jobs.DeleteFile(ctx, id); err != nil && !errors.Is(err, state.ErrFileNotFound) {
				return deleted, err
			}
			if err := j.blobs.Delete(ctx, id); err != nil {
				return deleted, err
			}
			deleted++
			progress = true
			j.m.filesExpired.Inc()
			j.log.InfoContext(ctx, "expired file deleted", "file", id)
		}
		if len(ids) < 100 || !progress {
			return deleted, nil
		}
	}
}

func (j *Janitor) inUse(ctx context.Context, fileID string) (bool, error) {
	users, err := j.jobs.FileBatches(ctx, fileID)
	if err != nil {
		return false, err
	}
	for _, b := range users {
		r, err := j.jobs.GetBatch(ctx, b)
		if errors.Is(err, state.ErrBatchNotFound) {
			continue
		}
		if err != nil {
			return false, err
		}
		if !r.Status.Terminal() {
			return true, nil
		}
	}
	return false, nil
}
