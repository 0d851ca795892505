package state

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"
)

// BlobMemory is the in-process twin of BlobRedis for `-R memory`. It holds every blob in
// memory and loses them on exit: it is for demos and tests, not for large or durable data.
// Safe for concurrent use.
type BlobMemory struct {
	mu    sync.Mutex
	blobs map[string][]byte
}

// NewBlobMemory returns an empty in-memory blob store.
func NewBlobMemory() *BlobMemory { return &BlobMemory{blobs: map[string][]byte{}} }

// Put reads r (at most limit+1 bytes; limit < 0: no limit) and stores it under id,
// replacing any previous content. Over the limit it returns ErrBlobTooLarge and keeps nothing.
func (b *BlobMemory) Put(ctx context.Context, id string, r io.Reader, limit int64) (int64, error) {
	if !BlobValidID(id) {
		return 0, fmt.Errorf("putting blob %q: %w", id, ErrBlobInvalidID)
	}
	var buf bytes.Buffer
	src := r
	if limit >= 0 {
		src = io.LimitReader(r, limit+1)
	}
	n, err := io.Copy(&buf, src)
	if err != nil {
		return n, fmt.Errorf("reading content of blob %s: %w", id, err)
	}
	if limit >= 0 && n > limit {
		return n, fmt.Errorf("putting blob %s: %w", id, ErrBlobTooLarge)
	}
	if err := ctx.Err(); err != nil {
		return n, fmt.Errorf("putting blob %s: %w", id, err)
	}
	b.mu.Lock()
	b.blobs[id] = buf.Bytes()
	b.mu.Unlock()
	return n, nil
}

// Open returns a reader of the blob from offset on. The reader sees the content as it was
// at Open, even if the blob is replaced meanwhile.
func (b *BlobMemory) Open(_ context.Context, id string, offset int64) (io.ReadCloser, error) {
	b.mu.Lock()
	v, ok := b.blobs[id]
	b.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("blob %s: %w", id, ErrBlobNotFound)
	}
	if offset < 0 || offset > int64(len(v)) {
		return nil, fmt.Errorf("opening blob %s at %d of %d bytes: offset out of range", id, offset, len(v))
	}
	return io.NopCloser(bytes.NewReader(v[offset:])), nil
}

// Size returns the blob's length in bytes.
func (b *BlobMemory) Size(_ context.Context, id string) (int64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	v, ok := b.blobs[id]
	if !ok {
		return 0, fmt.Errorf("blob %s: %w", id, ErrBlobNotFound)
	}
	return int64(len(v)), nil
}

// Delete removes the blob. Deleting a missing blob is not an error.
func (b *BlobMemory) Delete(_ context.Context, id string) error {
	b.mu.Lock()
	delete(b.blobs, id)
	b.mu.Unlock()
	return nil
}
