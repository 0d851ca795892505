package batch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/vllm-proxy/vllm-proxy/state"
)

// DirBlobs stores each blob as one file in a directory (--files-dir), typically a volume
// shared by all replicas. Put writes a temporary file and renames it into place, so readers
// see old or new content, never a mix. Ids are checked with state.BlobValidID, so no id can
// name a path outside the directory. Safe for concurrent use.
type DirBlobs struct {
	dir string
}

// NewDirBlobs returns a store in dir, creating it (0o750) if needed.
func NewDirBlobs(dir string) (*DirBlobs, error) {
	if dir == "" {
		return nil, errors.New("files directory: empty path")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("files directory %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return nil, fmt.Errorf("creating files directory: %w", err)
	}
	return &DirBlobs{dir: abs}, nil
}

// path returns the file of blob id, or ErrBlobInvalidID.
func (d *DirBlobs) path(id string) (string, error) {
	if !state.BlobValidID(id) {
		return "", fmt.Errorf("blob %q: %w", id, state.ErrBlobInvalidID)
	}
	return filepath.Join(d.dir, id), nil
}

// Put streams r into a temporary file next to the blob and renames it into place.
func (d *DirBlobs) Put(ctx context.Context, id string, r io.Reader, limit int64) (int64, error) {
	p, err := d.path(id)
	if err != nil {
		return 0, err
	}
	f, err := os.CreateTemp(d.dir, ".put-*")
	if err != nil {
		return 0, fmt.Errorf("creating temporary file for blob %s: %w", id, err)
	}
	tmp := f.Name()
	fail := func(n int64, err error) (int64, error) {
		_ = f.Close()
		_ = os.Remove(tmp) // #nosec G703 -- tmp comes from os.CreateTemp in d.dir, not from the caller
		return n, err
	}
	src := r
	if limit >= 0 {
		src = io.LimitReader(r, limit+1)
	}
	n, err := io.Copy(f, ctxReader{ctx: ctx, r: src})
	if err != nil {
		return fail(n, fmt.Errorf("writing blob %s: %w", id, err))
	}
	if limit >= 0 && n > limit {
		return fail(n, fmt.Errorf("putting blob %s: %w", id, state.ErrBlobTooLarge))
	}
	if err := f.Sync(); err != nil {
		return fail(n, fmt.Errorf("syncing blob %s: %w", id, err))
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(tmp) // #nosec G703 -- tmp comes from os.CreateTemp in d.dir, not from the caller
		return n, fmt.Errorf("closing blob %s: %w", id, err)
	}
	if err := os.Rename(tmp, p); err != nil { // #nosec G703 -- p is built by d.path, which rejects ids failing state.BlobValidID
		_ = os.Remove(tmp) // #nosec G703 -- tmp comes from os.CreateTemp in d.dir, not from the caller
		return n, fmt.Errorf("renaming blob %s into place: %w", id, err)
	}
	return n, nil
}

// Open opens the blob's file at offset.
func (d *DirBlobs) Open(_ context.Context, id string, offset int64) (io.ReadCloser, error) {
	p, err := d.path(id)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p) // #nosec G304 G703 -- p is built by d.path, which rejects ids failing state.BlobValidID
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("blob %s: %w", id, state.ErrBlobNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("opening blob %s: %w", id, err)
	}
	if offset != 0 {
		if _, err := f.Seek(offset, io.SeekStart); err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("seeking blob %s to %d: %w", id, offset, err)
		}
	}
	return f, nil
}

// Size stats the blob's file.
func (d *DirBlobs) Size(_ context.Context, id string) (int64, error) {
	p, err := d.path(id)
	if err != nil {
		return 0, err
	}
	st, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("blob %s: %w", id, state.ErrBlobNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("stat of blob %s: %w", id, err)
	}
	return st.Size(), nil
}

// Delete removes the blob's file.
func (d *DirBlobs) Delete(_ context.Context, id string) error {
	p, err := d.path(id)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) { // #nosec G703 -- p is built by d.path, which rejects ids failing state.BlobValidID
		return fmt.Errorf("deleting blob %s: %w", id, err)
	}
	return nil
}

// ctxReader stops a long copy when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
