package state

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// BlobChunkSize is the most bytes the Redis blob store keeps under one key (1 MiB).
const BlobChunkSize = 1 << 20

// blobPendingTTL bounds how long the chunks of an unfinished Put survive a crashed writer.
const blobPendingTTL = time.Hour

var (
	// ErrBlobNotFound is returned for a blob id that was never stored or was deleted.
	ErrBlobNotFound = errors.New("blob not found")
	// ErrBlobTooLarge is returned by Put when the reader yields more than the limit; nothing
	// is kept.
	ErrBlobTooLarge = errors.New("blob exceeds the size limit")
	// ErrBlobInvalidID is returned for ids that are empty, too long or contain characters
	// outside [A-Za-z0-9._-] (or start with a dot).
	ErrBlobInvalidID = errors.New("invalid blob id")
	// ErrBlobChanged is returned by a reader whose blob was replaced or deleted mid-read.
	ErrBlobChanged = errors.New("blob changed while reading")
)

// BlobValidID reports whether id is a valid blob id: 1..200 characters of [A-Za-z0-9._-],
// not starting with a dot. Every blob store accepts exactly these ids, so an id can never
// name a path outside a directory store nor break a Redis hash tag.
func BlobValidID(id string) bool {
	if id == "" || len(id) > 200 || id[0] == '.' {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// BlobRedis stores blobs in Redis as chunks of at most BlobChunkSize bytes, one key each,
// plus a metadata hash naming the committed generation. A Put becomes visible atomically
// when its commit script runs; readers of an older generation see ErrBlobChanged if it is
// replaced under them. Safe for concurrent use.
type BlobRedis struct {
	c     redis.UniversalClient
	chunk int
	// bufs recycles Put's chunk buffers: batch workers store a small result part every
	// few dozen lines, and a fresh 1 MiB buffer each time was most of their garbage.
	bufs sync.Pool
}

// newBlobRedis returns the Redis chunked blob store on client c.
func newBlobRedis(c redis.UniversalClient) *BlobRedis {
	b := &BlobRedis{c: c, chunk: BlobChunkSize}
	b.bufs.New = func() any { buf := make([]byte, b.chunk); return &buf }
	return b
}

// Keys: blob:{id} is a hash {gen, size, n}; blob:{id}:<gen>:<i> is chunk i. The
// {id} hash tag keeps one blob's keys in one cluster slot so the scripts may touch them all.
func blobMetaKey(id string) string { return "blob:{" + id + "}" }
func blobChunkKey(id, gen string, i int) string {
	return "blob:{" + id + "}:" + gen + ":" + strconv.Itoa(i)
}

// blobCommitScript makes a fully written generation visible.
//
//	KEYS[1]     the metadata hash blob:{id}
//	KEYS[2..]   the chunk keys of the new generation, in order
//	ARGV[1]     new generation
//	ARGV[2]     size in bytes
//	ARGV[3]     number of chunks
//
// It fails with "missing chunk" if a pending chunk expired, persists the chunks, swaps the
// metadata, and returns {old gen or false, old chunk count} so the caller deletes the old
// generation's keys.
var blobCommitScript = redis.NewScript(`
for i = 2, #KEYS do
  if redis.call('PERSIST', KEYS[i]) == 0 and redis.call('EXISTS', KEYS[i]) == 0 then
    return redis.error_reply('missing chunk')
  end
end
local old = redis.call('HMGET', KEYS[1], 'gen', 'n')
redis.call('HSET', KEYS[1], 'gen', ARGV[1], 'size', ARGV[2], 'n', ARGV[3])
return old
`)

// Put streams r into blob id, replacing any previous content once complete. It reads at
// most limit+1 bytes (limit < 0: no limit) and holds one chunk in memory at a time. Over
// the limit it returns ErrBlobTooLarge and keeps nothing.
func (b *BlobRedis) Put(ctx context.Context, id string, r io.Reader, limit int64) (int64, error) {
	if !BlobValidID(id) {
		return 0, fmt.Errorf("putting blob %q: %w", id, ErrBlobInvalidID)
	}
	gen := blobNewGen()
	bp := b.bufs.Get().(*[]byte)
	defer b.bufs.Put(bp) // Set has written the bytes to the connection when it returns
	buf := *bp
	var (
		size int64
		keys []string
	)
	cleanup := func() {
		if len(keys) > 0 {
			_ = b.c.Del(context.WithoutCancel(ctx), keys...).Err()
		}
	}
	for {
		n, err := blobFill(r, buf)
		if n > 0 {
			size += int64(n)
			if limit >= 0 && size > limit {
				cleanup()
				return size, fmt.Errorf("putting blob %s: %w", id, ErrBlobTooLarge)
			}
			k := blobChunkKey(id, gen, len(keys))
			keys = append(keys, k)
			if serr := b.c.Set(ctx, k, buf[:n], blobPendingTTL).Err(); serr != nil {
				cleanup()
				return size, fmt.Errorf("writing chunk %d of blob %s: %w", len(keys)-1, id, serr)
			}
		}
		if err == io.EOF { //nolint:errorlint // io.EOF is never wrapped by a Reader
			break
		}
		if err != nil {
			cleanup()
			return size, fmt.Errorf("reading content of blob %s: %w", id, err)
		}
	}
	all := append([]string{blobMetaKey(id)}, keys...)
	res, err := blobCommitScript.Run(ctx, b.c, all, gen, size, len(keys)).Slice()
	if err != nil {
		cleanup()
		return size, fmt.Errorf("committing blob %s: %w", id, err)
	}
	if oldGen, ok := res[0].(string); ok && oldGen != gen {
		oldN, _ := strconv.Atoi(blobStr(res[1]))
		b.delChunks(ctx, id, oldGen, oldN, false)
	}
	return size, nil
}

func (b *BlobRedis) delChunks(ctx context.Context, id, gen string, n int, meta bool) {
	var keys []string
	if meta {
		keys = append(keys, blobMetaKey(id))
	}
	for i := 0; i < n; i++ {
		keys = append(keys, blobChunkKey(id, gen, i))
		if len(keys) >= 512 {
			_ = b.c.Del(ctx, keys...).Err()
			keys = keys[:0]
		}
	}
	if len(keys) > 0 {
		_ = b.c.Del(ctx, keys...).Err()
	}
}

type blobMeta struct {
	gen  string
	size int64
	n    int
}

func (b *BlobRedis) meta(ctx context.Context, id string) (blobMeta, error) {
	if !BlobValidID(id) {
		return blobMeta{}, fmt.Errorf("blob %q: %w", id, ErrBlobInvalidID)
	}
	v, err := b.c.HMGet(ctx, blobMetaKey(id), "gen", "size", "n").Result()
	if err != nil {
		return blobMeta{}, fmt.Errorf("reading metadata of blob %s: %w", id, err)
	}
	if v[0] == nil {
		return blobMeta{}, fmt.Errorf("blob %s: %w", id, ErrBlobNotFound)
	}
	size, _ := strconv.ParseInt(blobStr(v[1]), 10, 64)
	n, _ := strconv.Atoi(blobStr(v[2]))
	return blobMeta{gen: blobStr(v[0]), size: size, n: n}, nil
}

// Size returns the blob's length in bytes.
func (b *BlobRedis) Size(ctx context.Context, id string) (int64, error) {
	m, err := b.meta(ctx, id)
	return m.size, err
}

// Open returns a reader of the blob from byte offset on. It fetches one chunk at a time.
func (b *BlobRedis) Open(ctx context.Context, id string, offset int64) (io.ReadCloser, error) {
	m, err := b.meta(ctx, id)
	if err != nil {
		return nil, err
	}
	if offset < 0 || offset > m.size {
		return nil, fmt.Errorf("opening blob %s at %d of %d bytes: offset out of range", id, offset, m.size)
	}
	return &blobRedisReader{b: b, ctx: ctx, id: id, m: m, pos: offset}, nil
}

// Delete removes the blob. Deleting a missing blob is not an error.
func (b *BlobRedis) Delete(ctx context.Context, id string) error {
	m, err := b.meta(ctx, id)
	if errors.Is(err, ErrBlobNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	b.delChunks(ctx, id, m.gen, m.n, true)
	return nil
}

type blobRedisReader struct {
	b   *BlobRedis
	ctx context.Context
	id  string
	m   blobMeta
	pos int64
	buf []byte
	win int64 // bytes the next GETRANGE asks for
}

// blobFirstWindow is the first read window of a blob reader.
const blobFirstWindow = 64 << 10

func (r *blobRedisReader) Read(p []byte) (int, error) {
	if len(r.buf) == 0 {
		if r.pos >= r.m.size {
			return 0, io.EOF
		}
		i := int(r.pos / int64(r.b.chunk))
		start := r.pos % int64(r.b.chunk)
		// Fetch a window that doubles from 64 KiB up to the chunk: a reader that wants a few
		// KB at an offset (a batch chunk of lines) no longer pulls a whole MiB per Open,
		// and a long sequential read still ends up one GETRANGE per chunk.
		if r.win == 0 {
			r.win = blobFirstWindow
		}
		end := min(start+r.win, int64(r.b.chunk)) - 1
		r.win = min(2*r.win, int64(r.b.chunk))
		v, err := r.b.c.GetRange(r.ctx, blobChunkKey(r.id, r.m.gen, i), start, end).Bytes()
		if err != nil {
			return 0, fmt.Errorf("reading chunk %d of blob %s: %w", i, r.id, err)
		}
		if len(v) == 0 {
			return 0, fmt.Errorf("reading chunk %d of blob %s: %w", i, r.id, ErrBlobChanged)
		}
		r.buf = v
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	r.pos += int64(n)
	return n, nil
}

func (r *blobRedisReader) Close() error { r.buf = nil; return nil }

// blobFill reads into buf until it is full or r ends. Unlike io.ReadFull it keeps the
// source's own errors (a truncated upload's io.ErrUnexpectedEOF is an error, not an end).
func blobFill(r io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func blobNewGen() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func blobStr(v any) string {
	switch s := v.(type) {
	case string:
		return s
	case nil:
		return ""
	default:
		return strings.TrimSpace(fmt.Sprint(s))
	}
}
