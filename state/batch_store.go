package state

import (
	"context"
	"io"
)

// BlobStore is the method set shared by BlobRedis and BlobMemory (package batch declares
// the same interface as its consumer). See BlobRedis for the semantics.
type BlobStore interface {
	Put(ctx context.Context, id string, r io.Reader, limit int64) (int64, error)
	Open(ctx context.Context, id string, offset int64) (io.ReadCloser, error)
	Size(ctx context.Context, id string) (int64, error)
	Delete(ctx context.Context, id string) error
}

var (
	_ BlobStore = (*BlobRedis)(nil)
	_ BlobStore = (*BlobMemory)(nil)
)

// NewJobStore returns the batch job store on s: Redis-backed, or the in-memory twin when
// s.Memory() (not durable: batches die with the process).
func NewJobStore(s *Store) JobStore {
	if s.Memory() {
		return NewJobMemory()
	}
	return newJobRedis(s.redis())
}

// NewBlobStore returns the default blob store on s: Redis chunks (≤ BlobChunkSize per key),
// or memory when s.Memory() (every blob held in process; not durable).
func NewBlobStore(s *Store) BlobStore {
	if s.Memory() {
		return NewBlobMemory()
	}
	return newBlobRedis(s.redis())
}
