package sim

// kvCache is a paged KV cache with automatic prefix caching, after vLLM's block pool:
// blocks hold blockSize tokens; a full block gets the chained hash of its content; free
// blocks (reference count 0) sit in an LRU list and keep their hash until they are
// reused, so a later request with the same prefix can take them back. Not safe for
// concurrent use: the owning engine serialises access under its mutex.
type kvCache struct {
	blocks  []kvBlock
	cached  map[uint64]int32 // hash -> block id, for hashed blocks
	enabled bool             // prefix caching
	// Free list: doubly linked through kvBlock.prev/next, head is evicted first.
	head, tail int32
	numFree    int
}

type kvBlock struct {
	hash       uint64
	hashed     bool
	ref        int32
	prev, next int32
	inFree     bool
}

const nilBlock = -1

func newKVCache(numBlocks int, prefixCaching bool) *kvCache {
	c := &kvCache{
		blocks:  make([]kvBlock, numBlocks),
		cached:  make(map[uint64]int32, numBlocks),
		enabled: prefixCaching,
		head:    nilBlock,
		tail:    nilBlock,
	}
	for i := range c.blocks {
		c.blocks[i] = kvBlock{prev: nilBlock, next: nilBlock}
		c.pushFree(int32(i))
	}
	return c
}

func (c *kvCache) total() int { return len(c.blocks) }

// used returns the number of blocks referenced by some sequence.
func (c *kvCache) used() int { return len(c.blocks) - c.numFree }

// usage returns used/total, vLLM's kv_cache_usage_perc (0..1).
func (c *kvCache) usage() float64 { return float64(c.used()) / float64(len(c.blocks)) }

func (c *kvCache) pushFree(id int32) {
	b := &c.blocks[id]
	b.prev, b.next, b.inFree = c.tail, nilBlock, true
	if c.tail != nilBlock {
		c.blocks[c.tail].next = id
	} else {
		c.head = id
	}
	c.tail = id
	c.numFree++
}

func (c *kvCache) unlinkFree(id int32) {
	b := &c.blocks[id]
	if b.prev != nilBlock {
		c.blocks[b.prev].next = b.next
	} else {
		c.head = b.next
	}
	if b.next != nilBlock {
		c.blocks[b.next].prev = b.prev
	} else {
		c.tail = b.prev
	}
	b.prev, b.next, b.inFree = nilBlock, nilBlock, false
	c.numFree--
}

// lookup returns the number of leading hashes whose blocks are cached, at most max.
func (c *kvCache) lookup(hashes []uint64, max int) int {
	if !c.enabled {
		return 0
	}
	n := 0
	for n < len(hashes) && n < max {
		if _, ok := c.cached[hashes[n]]; !ok {
			break
		}
		n++
	}
	return n
}

// canAllocate reports whether n new blocks plus the hits leading cached blocks (some of
// which may sit in the free list) fit.
func (c *kvCache) canAllocate(hashes []uint64, hits, n int) bool {
	freeHits := 0
	for i := 0; i < hits; i++ {
		if c.blocks[c.cached[hashes[i]]].ref == 0 {
			freeHits++
		}
	}
	return c.numFree-freeHits >= n
}

// takeHits references the first hits cached blocks of hashes, appending their ids to dst.
func (c *kvCache) takeHits(dst []int32, hashes []uint64, hits int) []int32 {
	for i := 0; i < hits; i++ {
		id := c.cached[hashes[i]]
		b := &c.blocks[id]
		if b.ref == 0 {
			c.unlinkFree(id)
		}
		b.ref++
		dst = append(dst, id)
	}
	return dst
}

// allocate takes the least recently used free block, evicting its cached hash. It
// returns false when no block is free.
func (c *kvCache) allocate() (int32, bool) {
	id := c.head
	if id == nilBlock {
		return 0, false
	}
	c.unlinkFree(id)
	b := &c.blocks[id]
	if b.hashed {
		if c.cached[b.hash] == id {
			delete(c.cached, b.hash)
		}
		b.hashed = false
	}
	b.ref = 1
	return id, true
}

// commit records that block id now holds the full block with the given chained hash, so
// later requests can hit it. A hash already cached in another block is left alone (two
// requests computed the same block at once; vLLM keeps the first too).
func (c *kvCache) commit(id int32, hash uint64) {
	if !c.enabled {
		return
	}
	b := &c.blocks[id]
	if b.hashed {
		return
	}
	if _, ok := c.cached[hash]; ok {
		return
	}
	b.hash, b.hashed = hash, true
	c.cached[hash] = id
}

// free drops one reference to each block, last block first, so that the tail of a
// sequence is evicted before its head (which other requests are likelier to share).
func (c *kvCache) free(ids []int32) {
	for i := len(ids) - 1; i >= 0; i-- {
		id := ids[i]
		b := &c.blocks[id]
		b.ref--
		if b.ref == 0 {
			if b.hashed {
				c.pushFree(id)
			} else {
				// An unhashed block holds nothing reusable: put it first in line.
				c.pushFreeFront(id)
			}
		}
	}
}

func (c *kvCache) pushFreeFront(id int32) {
	b := &c.blocks[id]
	b.prev, b.next, b.inFree = nilBlock, c.head, true
	if c.head != nilBlock {
		c.blocks[c.head].prev = id
	} else {
		c.tail = id
	}
	c.head = id
	c.numFree++
}
