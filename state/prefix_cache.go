package state

import (
	"container/list"
	"slices"
	"sync"
	"time"
)

// ownerCache is the local, bounded LRU of block ownership: block hash → backends owning it
// until a deadline. In memory mode it is the prefix index itself; with Redis it holds this
// replica's own records and what lookups brought back, so lookups degrade to it when Redis
// is slow or gone. Safe for concurrent use.
type ownerCache struct {
	mu      sync.Mutex
	cap     int
	entries map[uint64]*list.Element // of *blockEntry
	lru     list.List                // front = most recently used
	onSize  func(int)
}

type blockEntry struct {
	hash   uint64
	root   uint64 // first block of the chain it was recorded with (its Redis hash tag)
	owners []blockOwner
}

type blockOwner struct {
	backend string
	until   time.Time
}

func newOwnerCache(capacity int, onSize func(int)) *ownerCache {
	return &ownerCache{cap: capacity, entries: map[uint64]*list.Element{}, onSize: onSize}
}

// put records that backend owns hashes (a chain starting at root) until until. A later
// deadline wins; an earlier one never shortens what is known.
func (c *ownerCache) put(root uint64, hashes []uint64, backend string, until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, h := range hashes {
		el, ok := c.entries[h]
		if !ok {
			el = c.lru.PushFront(&blockEntry{hash: h, root: root})
			c.entries[h] = el
		} else {
			c.lru.MoveToFront(el)
		}
		e := el.Value.(*blockEntry)
		found := false
		for i := range e.owners {
			if e.owners[i].backend == backend {
				found = true
				if until.After(e.owners[i].until) {
					e.owners[i].until = until
				}
			}
		}
		if !found {
			e.owners = append(e.owners, blockOwner{backend: backend, until: until})
		}
	}
	for c.lru.Len() > c.cap {
		back := c.lru.Back()
		c.lru.Remove(back)
		delete(c.entries, back.Value.(*blockEntry).hash)
	}
	c.onSize(c.lru.Len())
}

// fresh reports whether backend owns every block of hashes until at least until.
func (c *ownerCache) fresh(hashes []uint64, backend string, until time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, h := range hashes {
		el, ok := c.entries[h]
		if !ok {
			return false
		}
		owned := false
		for _, o := range el.Value.(*blockEntry).owners {
			if o.backend == backend && !o.until.Before(until) {
				owned = true
			}
		}
		if !owned {
			return false
		}
	}
	return true
}

// match returns, per backend, how many leading blocks of hashes it owns at now. The walk
// stops at the first block that no backend still in the running owns.
func (c *ownerCache) match(hashes []uint64, now time.Time) map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	counts := map[string]int{}
	// Few backends own any one block: small slices beat a map per block.
	var alive, next []string
	for i, h := range hashes {
		el, ok := c.entries[h]
		if !ok {
			break
		}
		c.lru.MoveToFront(el)
		next = next[:0]
		for _, o := range el.Value.(*blockEntry).owners {
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

// forget removes backend from every block.
func (c *ownerCache) forget(backend string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, el := range c.entries {
		e := el.Value.(*blockEntry)
		e.owners = removeOwner(e.owners, backend)
	}
}

func removeOwner(owners []blockOwner, backend string) []blockOwner {
	out := owners[:0]
	for _, o := range owners {
		if o.backend != backend {
			out = append(out, o)
		}
	}
	return out
}

// chainOwnership is one (chain root, backend) group of live blocks, for republishing.
type chainOwnership struct {
	root    uint64
	backend string
	hashes  []uint64
	until   time.Time // the earliest deadline in the group
}

// snapshot groups every live ownership by (root, backend), for a resync.
func (c *ownerCache) snapshot(now time.Time) []chainOwnership {
	c.mu.Lock()
	defer c.mu.Unlock()
	type key struct {
		root    uint64
		backend string
	}
	groups := map[key]*chainOwnership{}
	var out []*chainOwnership
	for el := c.lru.Front(); el != nil; el = el.Next() {
		e := el.Value.(*blockEntry)
		for _, o := range e.owners {
			if !o.until.After(now) {
				continue
			}
			k := key{e.root, o.backend}
			g := groups[k]
			if g == nil {
				g = &chainOwnership{root: e.root, backend: o.backend, until: o.until}
				groups[k] = g
				out = append(out, g)
			}
			g.hashes = append(g.hashes, e.hash)
			if o.until.Before(g.until) {
				g.until = o.until
			}
		}
	}
	res := make([]chainOwnership, len(out))
	for i, g := range out {
		res[i] = *g
	}
	return res
}

// len is the number of blocks held.
func (c *ownerCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}
