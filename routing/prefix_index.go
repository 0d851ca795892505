package routing

import (
	"container/list"
	"context"
	"slices"
	"sync"
	"time"
)

// PrefixIndex maps prefix-block hashes (chains from HashPrompt) to the backends that
// probably hold those blocks in their KV cache. *state.PrefixIndex implements it over
// Redis, shared by every replica; LocalPrefixIndex is the in-process default.
//
// Implementations must be safe for concurrent use. Lookup runs on the request path and
// must answer within a small budget whatever happens to shared storage; Record must not
// block (a shared implementation writes asynchronously). Neither may keep hashes after it
// returns: the caller reuses the slice (copy what must outlive the call).
type PrefixIndex interface {
	// Lookup returns, per backend, how many leading blocks of hashes it owns: the walk
	// stops at the first block no backend still in the running owns. Backends without a
	// match are absent.
	Lookup(ctx context.Context, hashes []uint64) map[string]int
	// Record notes that backend now holds every block of hashes.
	Record(backend string, hashes []uint64)
}

// prefixForgetter is implemented by indexes that can drop a backend that left the pool
// (LocalPrefixIndex, *state.PrefixIndex).
type prefixForgetter interface {
	Forget(backend string)
}

// Defaults of the local prefix index.
const (
	// DefaultLocalIndexBlocks bounds the local index: 200,000 blocks of 64 characters
	// stand for about 3M cached tokens over the pool, at roughly 100 bytes each.
	DefaultLocalIndexBlocks = 200_000
	// DefaultPrefixTTL is how long ownership is believed after it was last recorded; it
	// follows how long vLLM keeps unused blocks under load (state.Config.PrefixTTL too).
	DefaultPrefixTTL = 5 * time.Minute
)

// LocalPrefixIndex is the in-process PrefixIndex: a bounded LRU of block hash → owners,
// each ownership expiring ttl after it was last recorded. It knows only this replica's
// records. Safe for concurrent use.
type LocalPrefixIndex struct {
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	cap     int
	entries map[uint64]*list.Element // of *localBlock
	lru     list.List                // front = most recently used
}

var (
	_ PrefixIndex     = (*LocalPrefixIndex)(nil)
	_ prefixForgetter = (*LocalPrefixIndex)(nil)
)

type localBlock struct {
	hash   uint64
	owners []localOwner
}

type localOwner struct {
	backend string
	until   time.Time
}

// NewLocalPrefixIndex returns an index holding at most blocks block hashes (default
// DefaultLocalIndexBlocks when < 1), each ownership kept ttl (default DefaultPrefixTTL
// when ≤ 0) after its last Record. now is the clock (nil: time.Now).
func NewLocalPrefixIndex(blocks int, ttl time.Duration, now func() time.Time) *LocalPrefixIndex {
	if blocks < 1 {
		blocks = DefaultLocalIndexBlocks
	}
	if ttl <= 0 {
		ttl = DefaultPrefixTTL
	}
	if now == nil {
		now = time.Now
	}
	return &LocalPrefixIndex{ttl: ttl, now: now, cap: blocks, entries: map[uint64]*list.Element{}}
}

// Lookup implements PrefixIndex.
func (x *LocalPrefixIndex) Lookup(_ context.Context, hashes []uint64) map[string]int {
	now := x.now()
	x.mu.Lock()
	defer x.mu.Unlock()
	counts := map[string]int{}
	var alive, next []string
	for i, h := range hashes {
		el, ok := x.entries[h]
		if !ok {
			break
		}
		x.lru.MoveToFront(el)
		next = next[:0]
		for _, o := range el.Value.(*localBlock).owners {
			if o.until.After(now) && (i == 0 || slices.Contains(alive, o.backend)) {
				next = append(next, o.backend)
				counts[o.backend] = i + 1
			}
		}
		if len(next) == 0 {
			break
		}
		alive, next = next, alive
	}
	return counts
}

// Record implements PrefixIndex.
func (x *LocalPrefixIndex) Record(backend string, hashes []uint64) {
	if backend == "" || len(hashes) == 0 {
		return
	}
	until := x.now().Add(x.ttl)
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, h := range hashes {
		el, ok := x.entries[h]
		if !ok {
			el = x.lru.PushFront(&localBlock{hash: h})
			x.entries[h] = el
		} else {
			x.lru.MoveToFront(el)
		}
		blk := el.Value.(*localBlock)
		found := false
		for i := range blk.owners {
			if blk.owners[i].backend == backend {
				blk.owners[i].until, found = until, true
			}
		}
		if !found {
			// Drop expired owners while here, so a block's list stays short.
			blk.owners = slices.DeleteFunc(blk.owners, func(o localOwner) bool { return !o.until.After(until.Add(-x.ttl)) })
			blk.owners = append(blk.owners, localOwner{backend: backend, until: until})
		}
	}
	for x.lru.Len() > x.cap {
		back := x.lru.Back()
		x.lru.Remove(back)
		delete(x.entries, back.Value.(*localBlock).hash)
	}
}

// Forget drops every ownership of backend.
func (x *LocalPrefixIndex) Forget(backend string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, el := range x.entries {
		blk := el.Value.(*localBlock)
		blk.owners = slices.DeleteFunc(blk.owners, func(o localOwner) bool { return o.backend == backend })
	}
}

// Len is the number of blocks held.
func (x *LocalPrefixIndex) Len() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.lru.Len()
}
