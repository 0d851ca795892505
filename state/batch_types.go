package state

import (
	"context"
	"errors"
	"time"
)

// BatchStatus is a Batch object's status, as the OpenAI API spells it.
type BatchStatus string

// Batch statuses. Allowed transitions: validating → in_progress | failed | cancelling;
// in_progress → finalizing | cancelling | expired; finalizing → completed;
// cancelling → cancelled.
const (
	BatchValidating BatchStatus = "validating"
	BatchFailed     BatchStatus = "failed"
	BatchInProgress BatchStatus = "in_progress"
	BatchFinalizing BatchStatus = "finalizing"
	BatchCompleted  BatchStatus = "completed"
	BatchExpired    BatchStatus = "expired"
	BatchCancelling BatchStatus = "cancelling"
	BatchCancelled  BatchStatus = "cancelled"
)

// Terminal reports whether no further transition can happen.
func (s BatchStatus) Terminal() bool {
	return s == BatchFailed || s == BatchCompleted || s == BatchExpired || s == BatchCancelled
}

var (
	// ErrBatchNotFound is returned for an unknown batch id.
	ErrBatchNotFound = errors.New("batch not found")
	// ErrBatchConflict is returned when a transition is not allowed from the current status
	// (e.g. cancelling a completed batch). The record returned with it is current.
	ErrBatchConflict = errors.New("batch status does not allow this")
	// ErrFileNotFound is returned for an unknown file id.
	ErrFileNotFound = errors.New("file not found")
)

// FileRecord is a stored File object. Timestamps are Unix seconds; ExpiresAt 0 = never.
type FileRecord struct {
	ID        string `json:"id"`
	Bytes     int64  `json:"bytes"`
	CreatedAt int64  `json:"created_at"`
	ExpiresAt int64  `json:"expires_at"`
	Filename  string `json:"filename"`
	Purpose   string `json:"purpose"`
	Status    string `json:"status"`
	// CreatedMS orders files created in the same second.
	CreatedMS int64 `json:"created_ms"`
	// Owner is the tenant that created the file (or whose batch wrote it); "" when API
	// keys are off. Stores keep it opaquely; package batch enforces it.
	Owner string `json:"owner,omitempty"`
}

// FileQuery selects a page of files.
type FileQuery struct {
	Purpose string // "" = any
	After   string // id of the last file of the previous page; unknown → empty page
	Limit   int
	Asc     bool // oldest first; default newest first
}

// BatchError is one entry of a Batch's errors.data. Param "" and Line 0 mean null.
type BatchError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Param   string `json:"param,omitempty"`
	Line    int64  `json:"line,omitempty"`
}

// BatchUsage sums the backends' token usage over successful lines.
type BatchUsage struct {
	InputTokens     int64
	CachedTokens    int64
	OutputTokens    int64
	ReasoningTokens int64
	TotalTokens     int64
}

// Add adds o to u.
func (u *BatchUsage) Add(o BatchUsage) {
	u.InputTokens += o.InputTokens
	u.CachedTokens += o.CachedTokens
	u.OutputTokens += o.OutputTokens
	u.ReasoningTokens += o.ReasoningTokens
	u.TotalTokens += o.TotalTokens
}

// BatchSpec is what a batch is created with; it never changes.
type BatchSpec struct {
	ID                 string            `json:"id"`
	Endpoint           string            `json:"endpoint"`
	InputFileID        string            `json:"input_file_id"`
	CompletionWindow   string            `json:"completion_window"`
	CreatedAt          int64             `json:"created_at"`
	CreatedMS          int64             `json:"created_ms"`
	ExpiresAt          int64             `json:"expires_at"`
	Metadata           map[string]string `json:"metadata"` // nil = null
	OutputExpiresAfter int64             `json:"output_expires_after"`
	// Owner is the tenant that created the batch; "" when API keys are off. Its output
	// and error files get the same owner.
	Owner string `json:"owner,omitempty"`
}

// BatchRecord is the full stored state of a batch. Timestamps are Unix seconds, 0 = unset.
type BatchRecord struct {
	BatchSpec
	Status       BatchStatus
	Model        string
	InProgressAt int64
	FinalizingAt int64
	CompletedAt  int64
	FailedAt     int64
	ExpiredAt    int64
	CancellingAt int64
	CancelledAt  int64
	OutputFileID string
	ErrorFileID  string
	Errors       []BatchError
	Total        int64
	Completed    int64
	Failed       int64
	Usage        BatchUsage
	Chunks       int64 // chunks of lines, known once validated
	ChunksDone   int64
}

// JobChunk is one chunk of consecutive input lines handed to one worker at a time.
type JobChunk struct {
	Index  int64 // 0-based chunk number
	Offset int64 // byte offset of the chunk's first line in the input blob
	Length int64 // bytes up to the end of the chunk's last line
	First  int64 // 0-based task number of the first line
	N      int64 // number of task lines (blank lines in between are not counted)
}

// BatchValidated is the outcome of a successful validation.
type BatchValidated struct {
	Total  int64
	Model  string // "" when lines name different models
	Chunks []JobChunk
}

// LineResult is one line's outcome inside a committed part.
type LineResult struct {
	Line   int64 // 0-based task number
	Failed bool  // went to the error file
}

// LinePart is a set of line results already written to blob parts, committed at once.
type LinePart struct {
	OKBlob  string // blob holding the success lines; "" when none
	ErrBlob string // blob holding the error lines; "" when none
	Lines   []LineResult
	Usage   BatchUsage
	// Staged is the name StagePart recorded before the part's blobs were written ("" when
	// none); committing the part removes it from the staged set. Parts does not return it.
	Staged string
}

// FinalizeMode says why a batch is being finalized.
type FinalizeMode string

// Finalize modes.
const (
	FinalizeComplete FinalizeMode = "complete" // every line has a result
	FinalizeExpire   FinalizeMode = "expire"   // the completion window passed
	FinalizeCancel   FinalizeMode = "cancel"   // the batch was cancelled
)

// BatchFinish is what the finalizer writes at the end.
type BatchFinish struct {
	Status       BatchStatus // completed, expired or cancelled
	OutputFileID string
	ErrorFileID  string
	AddFailed    int64 // expired lines, counted as failed
}

// JobStore keeps file metadata, batch state, leases on chunks and per-line progress. The
// Redis implementation is durable and shared by replicas; the in-memory twin (-R memory)
// is neither. Times are passed in by the caller (its clock), so tests control them. All
// methods are safe for concurrent use.
type JobStore interface {
	// CreateFile stores a file record.
	CreateFile(ctx context.Context, f FileRecord) error
	// GetFile returns a file record or ErrFileNotFound.
	GetFile(ctx context.Context, id string) (FileRecord, error)
	// ListFiles returns a page of files and whether more follow.
	ListFiles(ctx context.Context, q FileQuery) ([]FileRecord, bool, error)
	// DeleteFile removes a file record; ErrFileNotFound if absent.
	DeleteFile(ctx context.Context, id string) error
	// ExpiredFiles returns up to limit ids of files whose ExpiresAt ≤ now (Unix s).
	ExpiredFiles(ctx context.Context, now int64, limit int) ([]string, error)
	// FileBatches returns the ids of batches created with this input file.
	FileBatches(ctx context.Context, fileID string) ([]string, error)

	// CreateBatch stores a new batch in status validating.
	CreateBatch(ctx context.Context, spec BatchSpec) (BatchRecord, error)
	// GetBatch returns a batch or ErrBatchNotFound.
	GetBatch(ctx context.Context, id string) (BatchRecord, error)
	// ListBatches returns a page of batches, newest first, and whether more follow.
	ListBatches(ctx context.Context, after string, limit int) ([]BatchRecord, bool, error)
	// ActiveBatches returns the ids of batches that may still need work.
	ActiveBatches(ctx context.Context) ([]string, error)
	// CancelBatch moves validating/in_progress to cancelling; cancelling, cancelled and
	// finalizing are returned unchanged; other statuses give ErrBatchConflict.
	CancelBatch(ctx context.Context, id string, now time.Time) (BatchRecord, error)

	// ClaimValidation takes the validation lease of a validating batch.
	ClaimValidation(ctx context.Context, id, owner string, now time.Time, lease time.Duration) (bool, error)
	// StartBatch records a validation result and moves validating → in_progress. It
	// returns the resulting status (cancelling if the batch was cancelled meanwhile).
	StartBatch(ctx context.Context, id string, v BatchValidated, now time.Time) (BatchStatus, error)
	// FailBatch moves validating → failed with errs.
	FailBatch(ctx context.Context, id string, errs []BatchError, now time.Time) (BatchStatus, error)

	// ClaimChunk leases a chunk of an in_progress batch before its expiry: first a chunk
	// whose lease lapsed (reclaimed = true), else the next never-claimed one.
	ClaimChunk(ctx context.Context, id, owner string, now time.Time, lease time.Duration) (c JobChunk, reclaimed, ok bool, err error)
	// Renew extends owner's lease on a chunk (chunk ≥ 0), the validation (-1) or the
	// finalization (-2). It reports false when the lease is no longer owner's.
	Renew(ctx context.Context, id, owner string, chunk int64, now time.Time, lease time.Duration) (bool, error)
	// ReleaseChunk gives a chunk back: done marks it finished (all its lines committed),
	// otherwise it becomes claimable at once.
	ReleaseChunk(ctx context.Context, id, owner string, chunk int64, done bool) error
	// DoneLines reports which of lines first..first+n-1 have a committed result.
	DoneLines(ctx context.Context, id string, first, n int64) ([]bool, error)
	// StagePart records name, under which the caller is about to write a part's blobs,
	// so that blobs of a part never committed (its writer died, or its lease lapsed, between
	// writing and committing) can be found and deleted when the batch is purged. After
	// finalization began it returns ErrBatchConflict and records nothing.
	StagePart(ctx context.Context, id, name string) error
	// StagedParts returns the names staged and not yet committed (LinePart.Staged).
	StagedParts(ctx context.Context, id string) ([]string, error)
	// CommitLines records a part atomically. When some of its lines are already recorded
	// it records nothing and returns them (dups); the caller rewrites the part without
	// them. After finalization began it returns ErrBatchConflict.
	CommitLines(ctx context.Context, id string, p LinePart) (dups []int64, err error)

	// ClaimFinalize takes the finalization lease when finalization is due and says why.
	ClaimFinalize(ctx context.Context, id, owner string, now time.Time, lease time.Duration) (FinalizeMode, bool, error)
	// Parts returns the committed parts in commit order.
	Parts(ctx context.Context, id string) ([]LinePart, error)
	// FinishBatch writes the terminal status if owner holds the finalization lease.
	FinishBatch(ctx context.Context, id, owner string, f BatchFinish, now time.Time) (bool, error)
	// PurgeBatchWork drops a terminal batch's work keys (leases, chunks, bitmaps, parts,
	// staged names) and removes it from the active set.
	PurgeBatchWork(ctx context.Context, id string) error
}
