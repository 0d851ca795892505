package batch

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"crypto/rand"
	"encoding/hex"
)

// Config tunes the Files and Batches APIs and the workers. Zero fields take the defaults
// written next to them (applied by New); Validate reports every problem.
type Config struct {
	// MaxFileBytes is the largest upload accepted (413 beyond it). Default 200 MB.
	MaxFileBytes int64
	// MaxLines is the most requests per batch (too_many_tasks beyond it); for
	// /v1/embeddings it also caps the embedding inputs. Default 50,000.
	MaxLines int
	// MaxLineBytes is the longest input line accepted (invalid_json_line beyond). Default 16 MiB.
	MaxLineBytes int
	// MaxResultBytes caps each of a batch's output and error files. Default 2 GB.
	MaxResultBytes int64
	// FileTTL is how long batch input and output files are kept unless the request says
	// otherwise (expires_after, output_expires_after). Default 30 days.
	FileTTL time.Duration
	// CompletionWindow is the real length of the "24h" window; shorten it only in tests.
	// Default 24h.
	CompletionWindow time.Duration

	// ReplicaID names this replica in leases. Default hostname-pid-random.
	ReplicaID string
	// MaxConcurrentRequests bounds the lines this replica has in flight. Default 50.
	MaxConcurrentRequests int
	// ChunkLines is how many lines one work item (chunk) holds. Default 64.
	ChunkLines int
	// MaxChunks is how many chunks one replica works on at once.
	// Default MaxConcurrentRequests/ChunkLines + 2.
	MaxChunks int
	// LeaseTTL is how long a chunk, validation or finalization lease lives without renewal
	// (renewed every LeaseTTL/3). A dead replica's lines are taken over after at most
	// LeaseTTL + PollInterval. Default 15s.
	LeaseTTL time.Duration
	// PollInterval is how often a worker looks for work. Default 500ms.
	PollInterval time.Duration
	// FlushLines and FlushInterval bound how many finished lines, or how long, a chunk
	// keeps results before writing and committing them (what a crash can re-execute).
	// Defaults ChunkLines/MaxChunks lines (32 with the other defaults), so the finished but
	// uncommitted lines of all of a replica's chunks never exceed one chunk, and 500ms.
	FlushLines    int
	FlushInterval time.Duration
	// RetryAttempts is how many times a line failing with ErrRetryable is tried before it
	// is recorded as failed (status 503). Default 5.
	RetryAttempts int
	// RetryBackoff is the first wait before a retry; it doubles up to 30s. Default 1s.
	RetryBackoff time.Duration
	// ModelWait is how long a line whose model no backend serves is held (retried every
	// RetryBackoff) before it is recorded as failed with a 404 body; at the end of the
	// completion window it becomes batch_expired instead. Default 5m.
	ModelWait time.Duration
	// JanitorInterval is how often expired files are deleted. Default 1m.
	JanitorInterval time.Duration

	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Tenant names the tenant a request acts for (cmd passes auth.Tenant when API keys
	// are on). Files and batches belong to the tenant that created them; other tenants
	// get 404 for them and never see them listed. It must be safe for concurrent use.
	// Default: every request is tenant "", which owns everything created with keys off.
	Tenant func(context.Context) string
}

// Config defaults.
const (
	DefaultMaxFileBytes          = 200 << 20
	DefaultMaxLines              = 50_000
	DefaultMaxLineBytes          = 16 << 20
	DefaultMaxResultBytes        = 2 << 30
	DefaultFileTTL               = 30 * 24 * time.Hour
	DefaultCompletionWindow      = 24 * time.Hour
	DefaultMaxConcurrentRequests = 50
	DefaultChunkLines            = 64
	DefaultLeaseTTL              = 15 * time.Second
	DefaultPollInterval          = 500 * time.Millisecond
	DefaultFlushInterval         = 500 * time.Millisecond
	DefaultRetryAttempts         = 5
	DefaultRetryBackoff          = time.Second
	DefaultModelWait             = 5 * time.Minute
	DefaultJanitorInterval       = time.Minute
)

func (c Config) withDefaults() Config {
	c.MaxFileBytes = cmp.Or(c.MaxFileBytes, DefaultMaxFileBytes)
	c.MaxLines = cmp.Or(c.MaxLines, DefaultMaxLines)
	c.MaxLineBytes = cmp.Or(c.MaxLineBytes, DefaultMaxLineBytes)
	c.MaxResultBytes = cmp.Or(c.MaxResultBytes, DefaultMaxResultBytes)
	c.FileTTL = cmp.Or(c.FileTTL, DefaultFileTTL)
	c.CompletionWindow = cmp.Or(c.CompletionWindow, DefaultCompletionWindow)
	if c.ReplicaID == "" {
		c.ReplicaID = defaultReplicaID()
	}
	c.MaxConcurrentRequests = cmp.Or(c.MaxConcurrentRequests, DefaultMaxConcurrentRequests)
	c.ChunkLines = cmp.Or(c.ChunkLines, DefaultChunkLines)
	c.MaxChunks = cmp.Or(c.MaxChunks, c.MaxConcurrentRequests/c.ChunkLines+2)
	c.LeaseTTL = cmp.Or(c.LeaseTTL, DefaultLeaseTTL)
	c.PollInterval = cmp.Or(c.PollInterval, DefaultPollInterval)
	c.FlushLines = cmp.Or(c.FlushLines, max(1, c.ChunkLines/max(1, c.MaxChunks)))
	c.FlushInterval = cmp.Or(c.FlushInterval, DefaultFlushInterval)
	c.RetryAttempts = cmp.Or(c.RetryAttempts, DefaultRetryAttempts)
	c.RetryBackoff = cmp.Or(c.RetryBackoff, DefaultRetryBackoff)
	c.ModelWait = cmp.Or(c.ModelWait, DefaultModelWait)
	c.JanitorInterval = cmp.Or(c.JanitorInterval, DefaultJanitorInterval)
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports every problem with c (after defaults), joined.
func (c Config) Validate() error {
	d := c.withDefaults()
	var errs []error
	neg := func(name string, v int64) {
		if v < 0 {
			errs = append(errs, fmt.Errorf("batch: %s must not be negative (got %d)", name, v))
		}
	}
	neg("max_file_bytes", c.MaxFileBytes)
	neg("max_lines", int64(c.MaxLines))
	neg("max_line_bytes", int64(c.MaxLineBytes))
	neg("max_result_bytes", c.MaxResultBytes)
	neg("max_concurrent_requests", int64(c.MaxConcurrentRequests))
	neg("chunk_lines", int64(c.ChunkLines))
	neg("max_chunks", int64(c.MaxChunks))
	neg("flush_lines", int64(c.FlushLines))
	neg("retry_attempts", int64(c.RetryAttempts))
	for name, v := range map[string]time.Duration{
		"file_ttl": c.FileTTL, "completion_window": c.CompletionWindow, "lease_ttl": c.LeaseTTL,
		"poll_interval": c.PollInterval, "flush_interval": c.FlushInterval, "retry_backoff": c.RetryBackoff,
		"model_wait": c.ModelWait, "janitor_interval": c.JanitorInterval,
	} {
		if v < 0 {
			errs = append(errs, fmt.Errorf("batch: %s must not be negative (got %s)", name, v))
		}
	}
	if d.LeaseTTL < 3*d.PollInterval && c.LeaseTTL >= 0 && c.PollInterval >= 0 {
		errs = append(errs, fmt.Errorf("batch: lease_ttl (%s) must be at least 3 × poll_interval (%s)", d.LeaseTTL, d.PollInterval))
	}
	if d.CompletionWindow > 0 && d.CompletionWindow < time.Second {
		errs = append(errs, fmt.Errorf("batch: completion_window must be at least 1s (got %s)", d.CompletionWindow))
	}
	return errors.Join(errs...)
}

func defaultReplicaID() string {
	h, _ := os.Hostname()
	var b [3]byte
	_, _ = rand.Read(b[:])
	return cmp.Or(h, "replica") + "-" + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(b[:])
}
