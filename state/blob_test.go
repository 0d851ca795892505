package state

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/redis/go-redis/v9"

	"github.com/vllm-proxy/vllm-proxy/state/statetest"
)

// blobTestStore is what both blob stores offer; the conformance suite runs on each.
type blobTestStore interface {
	Put(ctx context.Context, id string, r io.Reader, limit int64) (int64, error)
	Open(ctx context.Context, id string, offset int64) (io.ReadCloser, error)
	Size(ctx context.Context, id string) (int64, error)
	Delete(ctx context.Context, id string) error
}

// jobTestClient connects a go-redis client to a fresh redis-server for this test.
func jobTestClient(t *testing.T, opts ...statetest.Options) (*redis.Client, *statetest.Redis) {
	t.Helper()
	srv := statetest.StartRedis(t, opts...)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr, Password: srv.Password})
	t.Cleanup(func() { _ = c.Close() })
	return c, srv
}

func blobStores(t *testing.T) map[string]blobTestStore {
	c, _ := jobTestClient(t)
	small := newBlobRedis(c)
	small.chunk = 7 // exercise chunk boundaries with small data
	return map[string]blobTestStore{
		"redis":       newBlobRedis(c),
		"redis-small": small,
		"memory":      NewBlobMemory(),
	}
}

func blobRead(t *testing.T, s blobTestStore, id string, off int64) []byte {
	t.Helper()
	rc, err := s.Open(t.Context(), id, off)
	if err != nil {
		t.Fatalf("open %s: %v", id, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", id, err)
	}
	return b
}

func TestBlobConformance(t *testing.T) {
	for name, s := range blobStores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			data := make([]byte, 100)
			_, _ = rand.Read(data)
			n, err := s.Put(ctx, "b1", bytes.NewReader(data), 100)
			if err != nil || n != 100 {
				t.Fatalf("put = %d, %v", n, err)
			}
			if got := blobRead(t, s, "b1", 0); !bytes.Equal(got, data) {
				t.Fatalf("content differs")
			}
			for _, off := range []int64{1, 6, 7, 8, 50, 99, 100} {
				if got := blobRead(t, s, "b1", off); !bytes.Equal(got, data[off:]) {
					t.Fatalf("content from %d differs", off)
				}
			}
			if sz, err := s.Size(ctx, "b1"); err != nil || sz != 100 {
				t.Fatalf("size = %d, %v", sz, err)
			}
			// Replace: new content wins.
			if _, err := s.Put(ctx, "b1", strings.NewReader("hello"), -1); err != nil {
				t.Fatal(err)
			}
			if got := string(blobRead(t, s, "b1", 0)); got != "hello" {
				t.Fatalf("after replace: %q", got)
			}
			// Over the limit: error, nothing stored, old content untouched.
			_, err = s.Put(ctx, "b2", bytes.NewReader(data), 99)
			if !errors.Is(err, ErrBlobTooLarge) {
				t.Fatalf("over limit: %v", err)
			}
			if _, err := s.Size(ctx, "b2"); !errors.Is(err, ErrBlobNotFound) {
				t.Fatalf("over-limit blob exists: %v", err)
			}
			if _, err := s.Put(ctx, "b1", bytes.NewReader(data), 10); !errors.Is(err, ErrBlobTooLarge) {
				t.Fatalf("over limit replace: %v", err)
			}
			if got := string(blobRead(t, s, "b1", 0)); got != "hello" {
				t.Fatalf("failed replace changed content: %q", got)
			}
			// Empty blob.
			if _, err := s.Put(ctx, "empty", strings.NewReader(""), 0); err != nil {
				t.Fatal(err)
			}
			if got := blobRead(t, s, "empty", 0); len(got) != 0 {
				t.Fatalf("empty blob read %d bytes", len(got))
			}
			// Delete, twice.
			if err := s.Delete(ctx, "b1"); err != nil {
				t.Fatal(err)
			}
			if err := s.Delete(ctx, "b1"); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Open(ctx, "b1", 0); !errors.Is(err, ErrBlobNotFound) {
				t.Fatalf("open deleted: %v", err)
			}
			for _, bad := range []string{"", "../x", "a/b", ".hidden", "a{b}", strings.Repeat("x", 201)} {
				if _, err := s.Put(ctx, bad, strings.NewReader("x"), -1); !errors.Is(err, ErrBlobInvalidID) {
					t.Fatalf("put %q: %v", bad, err)
				}
			}
			if _, err := s.Open(ctx, "nope", 0); !errors.Is(err, ErrBlobNotFound) {
				t.Fatalf("open missing: %v", err)
			}
		})
	}
}

// TestBlobRedisChunksAndCleanup checks that no key exceeds BlobChunkSize and that a
// replaced or over-limit blob leaves no keys behind.
func TestBlobRedisChunksAndCleanup(t *testing.T) {
	c, _ := jobTestClient(t)
	s := newBlobRedis(c)
	ctx := t.Context()
	data := make([]byte, 2*BlobChunkSize+5)
	_, _ = rand.Read(data)
	if _, err := s.Put(ctx, "big", bytes.NewReader(data), -1); err != nil {
		t.Fatal(err)
	}
	keys, err := c.Keys(ctx, "blob:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 4 {
		t.Fatalf("keys = %v, want meta + 3 chunks", keys)
	}
	for _, k := range keys {
		if typ, _ := c.Type(ctx, k).Result(); typ != "string" {
			continue
		}
		if n, _ := c.StrLen(ctx, k).Result(); n > BlobChunkSize {
			t.Fatalf("key %s holds %d bytes", k, n)
		}
		if ttl, _ := c.TTL(ctx, k).Result(); ttl != -1 {
			t.Fatalf("committed chunk %s has ttl %v", k, ttl)
		}
	}
	if got := blobRead(t, s, "big", BlobChunkSize-1); !bytes.Equal(got, data[BlobChunkSize-1:]) {
		t.Fatal("cross-chunk read differs")
	}
	if _, err := s.Put(ctx, "big", strings.NewReader("x"), -1); err != nil {
		t.Fatal(err)
	}
	if keys, _ := c.Keys(ctx, "blob:*").Result(); len(keys) != 2 {
		t.Fatalf("after replace keys = %v", keys)
	}
	if _, err := s.Put(ctx, "huge", bytes.NewReader(data), BlobChunkSize); !errors.Is(err, ErrBlobTooLarge) {
		t.Fatal(err)
	}
	if keys, _ := c.Keys(ctx, "blob:{huge}*").Result(); len(keys) != 0 {
		t.Fatalf("over-limit put left %v", keys)
	}
	if err := s.Delete(ctx, "big"); err != nil {
		t.Fatal(err)
	}
	if keys, _ := c.Keys(ctx, "blob:*").Result(); len(keys) != 0 {
		t.Fatalf("after delete keys = %v", keys)
	}
}

// TestBlobRedisReplacedMidRead checks a reader of a replaced blob fails loudly.
func TestBlobRedisReplacedMidRead(t *testing.T) {
	c, _ := jobTestClient(t)
	s := newBlobRedis(c)
	s.chunk = 4
	ctx := t.Context()
	if _, err := s.Put(ctx, "r", strings.NewReader("aaaabbbbcccc"), -1); err != nil {
		t.Fatal(err)
	}
	rc, err := s.Open(ctx, "r", 0)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(rc, buf); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "r", strings.NewReader("zz"), -1); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(rc); !errors.Is(err, ErrBlobChanged) {
		t.Fatalf("read of replaced blob: %v", err)
	}
}

// TestBlobRedisWindowedReads reads a multi-chunk blob from offsets around the read
// windows (64 KiB, doubling) and the chunk boundaries, in small and large reads.
func TestBlobRedisWindowedReads(t *testing.T) {
	c, _ := jobTestClient(t)
	s := newBlobRedis(c)
	ctx := t.Context()
	data := make([]byte, 2*BlobChunkSize+blobFirstWindow+7)
	_, _ = rand.Read(data)
	if _, err := s.Put(ctx, "w", bytes.NewReader(data), -1); err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{0, 1, blobFirstWindow - 1, blobFirstWindow, 3*blobFirstWindow + 5, BlobChunkSize - 3, BlobChunkSize, 2*BlobChunkSize + 1, int64(len(data))} {
		for _, small := range []bool{false, true} {
			rc, err := s.Open(ctx, "w", off)
			if err != nil {
				t.Fatal(err)
			}
			var r io.Reader = rc
			if small {
				r = iotest.HalfReader(rc)
			}
			got, err := io.ReadAll(r)
			_ = rc.Close()
			if err != nil || !bytes.Equal(got, data[off:]) {
				t.Fatalf("offset %d (small reads %v): %d bytes, err %v", off, small, len(got), err)
			}
		}
	}
}
