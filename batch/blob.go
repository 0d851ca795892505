package batch

import (
	"context"
	"io"

	"github.com/vllm-proxy/vllm-proxy/state"
)

// BlobStore keeps file bytes: uploaded inputs, per-chunk result parts and assembled output
// files. It is small on purpose so an S3-compatible store fits behind it later (Put is a
// streamed PutObject, Open a ranged GetObject). Implementations: state.BlobRedis (chunked,
// the default), DirBlobs (--files-dir) and state.BlobMemory (-R memory). Implementations are
// safe for concurrent use.
type BlobStore interface {
	// Put streams r into blob id, replacing earlier content only once r is fully read.
	// It reads at most limit+1 bytes (limit < 0: unlimited) and, when r holds more than
	// limit bytes, returns an error wrapping state.ErrBlobTooLarge and keeps nothing.
	Put(ctx context.Context, id string, r io.Reader, limit int64) (int64, error)
	// Open reads blob id from byte offset on; state.ErrBlobNotFound when it is missing.
	Open(ctx context.Context, id string, offset int64) (io.ReadCloser, error)
	// Size returns the length of blob id in bytes.
	Size(ctx context.Context, id string) (int64, error)
	// Delete removes blob id; a missing blob is not an error.
	Delete(ctx context.Context, id string) error
}

var (
	_ BlobStore = (*state.BlobRedis)(nil)
	_ BlobStore = (*state.BlobMemory)(nil)
	_ BlobStore = (*DirBlobs)(nil)
)
