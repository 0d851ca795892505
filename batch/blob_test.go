package batch

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vllm-proxy/vllm-proxy/state"
)

func TestDirBlobs(t *testing.T) {
	dir := t.TempDir()
	s, err := NewDirBlobs(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if n, err := s.Put(ctx, "file-a", strings.NewReader("hello world"), 11); err != nil || n != 11 {
		t.Fatalf("put = %d, %v", n, err)
	}
	rc, err := s.Open(ctx, "file-a", 6)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	_ = rc.Close()
	if string(b) != "world" {
		t.Fatalf("read %q", b)
	}
	if sz, err := s.Size(ctx, "file-a"); err != nil || sz != 11 {
		t.Fatalf("size %d %v", sz, err)
	}
	if _, err := s.Put(ctx, "file-b", bytes.NewReader(make([]byte, 12)), 11); !errors.Is(err, state.ErrBlobTooLarge) {
		t.Fatalf("over limit: %v", err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("directory holds %d entries after a refused put, want 1", len(ents))
	}
	if err := s.Delete(ctx, "file-a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open(ctx, "file-a", 0); !errors.Is(err, state.ErrBlobNotFound) {
		t.Fatalf("open deleted: %v", err)
	}
	if _, err := s.Size(ctx, "file-a"); !errors.Is(err, state.ErrBlobNotFound) {
		t.Fatalf("size deleted: %v", err)
	}
	for _, bad := range []string{"", "..", "../etc/passwd", "a/b", `a\b`, ".put-x", "/abs"} {
		if _, err := s.Put(ctx, bad, strings.NewReader("x"), -1); !errors.Is(err, state.ErrBlobInvalidID) {
			t.Fatalf("put %q: %v", bad, err)
		}
	}
}

// FuzzDirBlobsPath checks that no id escapes the directory: an id is either refused or maps
// to a direct child of the directory.
func FuzzDirBlobsPath(f *testing.F) {
	for _, s := range []string{"file-abc", "..", "../x", "a/../../b", "/etc/passwd", ".", "x\x00y", "C:\\x", "a..b", "-"} {
		f.Add(s)
	}
	d := &DirBlobs{dir: "/srv/files"}
	f.Fuzz(func(t *testing.T, id string) {
		p, err := d.path(id)
		if err != nil {
			if !errors.Is(err, state.ErrBlobInvalidID) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if filepath.Dir(p) != d.dir || filepath.Base(p) != id || strings.HasPrefix(id, ".") {
			t.Fatalf("id %q maps to %q outside %s", id, p, d.dir)
		}
	})
}
