package batch

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vllm-proxy/vllm-proxy/state"
)

// Batch bundles the API handler and the background services of the batch package.
// cmd mounts API on /v1/files and /v1/batches, starts Workers unless the replica is
// API-only (--batch-workers=false), and starts Janitor everywhere (it is idempotent).
type Batch struct {
	// API serves /v1/files* and /v1/batches*.
	API *API
	// Workers validate, execute, take over and finalize batches (Start/Stop).
	Workers *Workers
	// Janitor deletes expired files (Start/Stop).
	Janitor *Janitor
	// Metrics are the package's series, registered on the registry given to New.
	Metrics *Metrics
}

// New builds the batch package on a job store (state.NewJobStore), a blob store
// (state.NewBlobStore, or NewDirBlobs for --files-dir) and a dispatcher (nil is allowed for
// an API-only replica; Workers.Start then fails).
func New(cfg Config, jobs state.JobStore, blobs BlobStore, d Dispatcher, log *slog.Logger, reg prometheus.Registerer) (*Batch, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("batch config: %w", err)
	}
	if jobs == nil || blobs == nil {
		return nil, errors.New("batch: job store and blob store are required")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg = cfg.withDefaults()
	log = log.With("component", "batch", "replica", cfg.ReplicaID)
	m := NewMetrics(reg)
	return &Batch{
		API:     newAPI(cfg, jobs, blobs, log, m),
		Workers: newWorkers(cfg, jobs, blobs, d, log, m),
		Janitor: &Janitor{cfg: cfg, jobs: jobs, blobs: blobs, log: log, m: m},
		Metrics: m,
	}, nil
}
