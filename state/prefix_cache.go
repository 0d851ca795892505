package state

import (
	"runtime"
	"sync"
	"time"
	"unsafe"
)

// ownerCache is the local, bounded LRU of block ownership: block hash → backends owning it
// until a deadline. In memory mode it is the prefix index itself; with Redis it holds this
// replica's own records and what lookups brought back, so lookups degrade to it when Redis
// is slow or gone. Safe for concurrent use.
//
// Memory is flat and bounded: one pointer-free 48-byte slot per block in an array of the
// cap's size, reused least recently used first once full, an open-addressing table of
// 4-byte slot numbers from hash to slot (slotTable), and each owner packed into one
// uint64 (deadline in Unix ms, interned backend number). That is at most
// CacheBytesPerBlock bytes a block (about 58), so the default 200,000 blocks take about
// 12 MB. Slots and table are mapped outside the Go heap (mapSlice): they become resident
// as they fill, the garbage collector neither scans them nor counts them toward its heap
// goal (a GOGC of 400 would otherwise make 12 MB live cost ~60 MB of RSS).
type ownerCache struct {
	mu    sync.Mutex
	cap   int
	index slotTable // block hash → slot
	slots []cacheSlot
	// head is the most recently used slot, tail the least; -1 when empty.
	head, tail int32
	// extra holds owners beyond inlineOwners, by slot (rare: a block many backends hold).
	extra map[int32][]uint64
	// backends interns backend ids: an owner stores its position + 1. Ids are never
	// dropped (a pool has few backends), so a number always means the same backend.
	backends []string
	backendN map[string]uint16
	onSize   func(int)
}

// CacheBytesPerBlock bounds the cost of one block in the local ownership cache: a
// 48-byte slot plus 4 bytes per table position at a load between 3/8 and 3/4
// (TestOwnerCacheMemoryBound measures it). Config.PrefixCacheBlocks × CacheBytesPerBlock
// bounds the cache's memory, plus 8 bytes per owner for blocks more than three backends
// hold.
const CacheBytesPerBlock = 64

// inlineOwners is how many owners a slot holds without an allocation.
const inlineOwners = 3

type cacheSlot struct {
	hash, root uint64
	prev, next int32
	owners     [inlineOwners]uint64 // packOwner values; 0 = empty
}

// packOwner packs a deadline (Unix ms, < 2^47) and an interned backend number (≥ 1).
func packOwner(n uint16, until time.Time) uint64 {
	return uint64(until.UnixMilli())<<16 | uint64(n)
}

func ownerNum(o uint64) uint16           { return uint16(o) } // #nosec G115 -- the low 16 bits packOwner stored: truncation is the point
func ownerUntil(o uint64) int64          { return int64(o >> 16) }
func ownerLive(o uint64, now int64) bool { return o != 0 && ownerUntil(o) > now }

// newOwnerCache returns a cache of at most capacity blocks. Its slots and table are
// mapped outside the Go heap at their full size (mapSlice; pages become resident as they
// are used) and released when the cache becomes unreachable; where mapping fails they
// grow on the heap.
func newOwnerCache(capacity int, onSize func(int)) *ownerCache {
	c := &ownerCache{cap: max(capacity, 1), head: -1, tail: -1,
		extra: map[int32][]uint64{}, backendN: map[string]uint16{}, onSize: onSize}
	slots, m1, err := mapSlice[cacheSlot](c.cap)
	if err != nil {
		return c
	}
	pos, m2, err := mapSlice[int32](tableSizeFor(c.cap))
	if err != nil {
		unmap([][]byte{m1})
		return c
	}
	c.slots = slots[:0]
	c.index.use(pos)
	runtime.AddCleanup(c, unmap, [][]byte{m1, m2})
	return c
}

// num interns backend; 0 when the table is full (65,535 distinct ids).
func (c *ownerCache) num(backend string) uint16 {
	if n, ok := c.backendN[backend]; ok {
		return n
	}
	if len(c.backends) >= 1<<16-1 {
		return 0
	}
	c.backends = append(c.backends, backend)
	n := uint16(len(c.backends)) // #nosec G115 -- the check above keeps len(c.backends) below 1<<16-1
	c.backendN[backend] = n
	return n
}

func (c *ownerCache) unlink(i int32) {
	s := &c.slots[i]
	if s.prev >= 0 {
		c.slots[s.prev].next = s.next
	} else {
		c.head = s.next
	}
	if s.next >= 0 {
		c.slots[s.next].prev = s.prev
	} else {
		c.tail = s.prev
	}
}

func (c *ownerCache) pushFront(i int32) {
	s := &c.slots[i]
	s.prev, s.next = -1, c.head
	if c.head >= 0 {
		c.slots[c.head].prev = i
	}
	c.head = i
	if c.tail < 0 {
		c.tail = i
	}
}

func (c *ownerCache) touch(i int32) {
	if c.head != i {
		c.unlink(i)
		c.pushFront(i)
	}
}

// slotFor returns h's slot, taking a new one (or the least recently used one, evicting
// its block) when h is not held, and makes it the most recently used.
func (c *ownerCache) slotFor(h, root uint64) int32 {
	if i := c.index.find(h, c.slots); i >= 0 {
		c.touch(i)
		return i
	}
	var i int32
	if len(c.slots) < c.cap {
		if len(c.slots) == cap(c.slots) { // grow, but never past the cap
			grown := make([]cacheSlot, len(c.slots), min(c.cap, max(2*len(c.slots), 1024)))
			copy(grown, c.slots)
			c.slots = grown
		}
		c.slots = append(c.slots, cacheSlot{})
		i = int32(len(c.slots) - 1) // #nosec G115 -- len(c.slots) <= c.cap <= math.MaxInt32 (state.Config.Validate)
	} else {
		i = c.tail
		c.unlink(i)
		c.index.remove(c.slots[i].hash, c.slots)
		delete(c.extra, i)
	}
	c.slots[i] = cacheSlot{hash: h, root: root}
	c.index.insert(h, i, c.slots)
	c.pushFront(i)
	return i
}

// put records that backend owns hashes (a chain starting at root) until until. A later
// deadline wins; an earlier one never shortens what is known. Owners expired at now make
// room for new ones.
func (c *ownerCache) put(root uint64, hashes []uint64, backend string, until, now time.Time) {
	ms := now.UnixMilli()
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.num(backend)
	if n == 0 {
		return
	}
	o := packOwner(n, until)
	for _, h := range hashes {
		i := c.slotFor(h, root)
		c.setOwner(i, n, o, ms)
	}
	c.onSize(len(c.slots))
}

// setOwner gives backend n (packed owner o) its deadline in slot i, reusing an empty or
// expired place.
func (c *ownerCache) setOwner(i int32, n uint16, o uint64, now int64) {
	s := &c.slots[i]
	free := -1
	for j, cur := range s.owners {
		if cur != 0 && ownerNum(cur) == n {
			s.owners[j] = max(cur, o)
			return
		}
		if free < 0 && !ownerLive(cur, now) {
			free = j
		}
	}
	ex := c.extra[i]
	for j, cur := range ex {
		if ownerNum(cur) == n {
			ex[j] = max(cur, o)
			return
		}
	}
	if free >= 0 {
		s.owners[free] = o
		return
	}
	// Full: drop expired extras, then append.
	kept := ex[:0]
	for _, cur := range ex {
		if ownerLive(cur, now) {
			kept = append(kept, cur)
		}
	}
	c.extra[i] = append(kept, o)
}

// owners calls f with each owner of slot i.
func (c *ownerCache) owners(i int32, f func(o uint64)) {
	for _, o := range c.slots[i].owners {
		if o != 0 {
			f(o)
		}
	}
	for _, o := range c.extra[i] {
		f(o)
	}
}

// fresh reports whether backend owns every block of hashes until at least until.
func (c *ownerCache) fresh(hashes []uint64, backend string, until time.Time) bool {
	return c.owned(hashes, backend, until) == len(hashes)
}

// owned is how many leading blocks of hashes backend owns until at least until.
func (c *ownerCache) owned(hashes []uint64, backend string, until time.Time) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.backendN[backend]
	if !ok {
		return 0
	}
	least := until.UnixMilli()
	for k, h := range hashes {
		i := c.index.find(h, c.slots)
		if i < 0 {
			return k
		}
		has := false
		c.owners(i, func(o uint64) {
			if ownerNum(o) == n && ownerUntil(o) >= least {
				has = true
			}
		})
		if !has {
			return k
		}
	}
	return len(hashes)
}

// match returns, per backend, how many leading blocks of hashes it owns at now. The walk
// stops at the first block that no backend still in the running owns.
func (c *ownerCache) match(hashes []uint64, now time.Time) map[string]int {
	ms := now.UnixMilli()
	c.mu.Lock()
	defer c.mu.Unlock()
	counts := map[string]int{}
	// Few backends own any one block: small slices beat a map per block.
	var alive, next []uint16
	for bi, h := range hashes {
		i := c.index.find(h, c.slots)
		if i < 0 {
			break
		}
		c.touch(i)
		next = next[:0]
		c.owners(i, func(o uint64) {
			n := ownerNum(o)
			if ownerUntil(o) > ms && (bi == 0 || contains(alive, n)) {
				next = append(next, n)
				counts[c.backends[n-1]] = bi + 1
			}
		})
		if len(next) == 0 {
			break
		}
		alive, next = next, alive
	}
	return counts
}

func contains(s []uint16, n uint16) bool {
	for _, v := range s {
		if v == n {
			return true
		}
	}
	return false
}

// forget removes backend from every block.
func (c *ownerCache) forget(backend string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.backendN[backend]
	if !ok {
		return
	}
	for i := range c.slots {
		for j, o := range c.slots[i].owners {
			if o != 0 && ownerNum(o) == n {
				c.slots[i].owners[j] = 0
			}
		}
	}
	for i, ex := range c.extra {
		kept := ex[:0]
		for _, o := range ex {
			if ownerNum(o) != n {
				kept = append(kept, o)
			}
		}
		c.extra[i] = kept
	}
}

// chainOwnership is one (chain root, backend) group of live blocks, for republishing.
type chainOwnership struct {
	root    uint64
	backend string
	hashes  []uint64
	until   time.Time // the earliest deadline in the group
}

// snapshot groups every live ownership by (root, backend), for a resync, most recently
// used blocks first.
func (c *ownerCache) snapshot(now time.Time) []chainOwnership {
	ms := now.UnixMilli()
	c.mu.Lock()
	defer c.mu.Unlock()
	type key struct {
		root uint64
		n    uint16
	}
	groups := map[key]int{}
	var out []chainOwnership
	for i := c.head; i >= 0; i = c.slots[i].next {
		s := &c.slots[i]
		c.owners(i, func(o uint64) {
			if ownerUntil(o) <= ms {
				return
			}
			k := key{s.root, ownerNum(o)}
			g, ok := groups[k]
			if !ok {
				g = len(out)
				groups[k] = g
				out = append(out, chainOwnership{root: s.root, backend: c.backends[k.n-1], until: time.UnixMilli(ownerUntil(o))})
			}
			out[g].hashes = append(out[g].hashes, s.hash)
			if u := time.UnixMilli(ownerUntil(o)); u.Before(out[g].until) {
				out[g].until = u
			}
		})
	}
	return out
}

// reservedBytes is the memory the cache's slots and table take at their current size
// (mapped or on the heap), not counting overflow owners.
func (c *ownerCache) reservedBytes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return cap(c.slots)*int(unsafe.Sizeof(cacheSlot{})) + 4*len(c.index.pos)
}

// len is the number of blocks held.
func (c *ownerCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.slots)
}
