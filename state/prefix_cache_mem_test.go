package state

import (
	"maps"
	"runtime"
	"testing"
	"time"
)

// TestOwnerCacheManyOwners: a block more backends hold than a slot has room for keeps
// every owner; expired owners make room; forgetting and eviction clear the overflow.
func TestOwnerCacheManyOwners(t *testing.T) {
	now := time.Now()
	live := now.Add(time.Minute)
	c := newOwnerCache(2, func(int) {})
	want := map[string]int{}
	for _, b := range []string{"a", "b", "c", "d", "e"} {
		c.put(1, []uint64{1, 2}, b, live, now)
		want[b] = 2
	}
	if got := c.match([]uint64{1, 2}, now); !maps.Equal(got, want) {
		t.Fatalf("match = %v, want %v", got, want)
	}
	c.forget("e")
	delete(want, "e")
	if got := c.match([]uint64{1, 2}, now); !maps.Equal(got, want) {
		t.Fatalf("after forget(e): match = %v, want %v", got, want)
	}
	// Later, every owner has expired: a new one takes a place without growing the slot.
	later := now.Add(2 * time.Minute)
	c.put(1, []uint64{1}, "f", later.Add(time.Minute), later)
	if got := c.match([]uint64{1}, later); !maps.Equal(got, map[string]int{"f": 1}) {
		t.Fatalf("after expiry: match = %v, want only f", got)
	}
	// Evicting both blocks drops their overflow owners too.
	c.put(3, []uint64{3, 4}, "a", live, now)
	if len(c.extra) != 0 || c.len() != 2 {
		t.Fatalf("after eviction: %d overflow lists, %d blocks", len(c.extra), c.len())
	}
	if got := c.match([]uint64{1}, now); len(got) != 0 {
		t.Fatalf("evicted block still matches: %v", got)
	}
}

// TestOwnerCacheMemoryBound: a full cache of distinct blocks reserves at most
// CacheBytesPerBlock bytes a block, outside the Go heap (so GOGC does not multiply it),
// and stays at its cap however many more blocks are recorded; the heap-grown fallback
// (no mappings) stays within the same bound.
func TestOwnerCacheMemoryBound(t *testing.T) {
	const capBlocks = 100_000
	fill := func(c *ownerCache) {
		now := time.Now()
		chain := make([]uint64, 16)
		for i := range 3 * capBlocks / len(chain) {
			for j := range chain {
				chain[j] = uint64(i)<<8 | uint64(j) + 1
			}
			c.put(chain[0], chain, []string{"http://10.0.0.1:8000", "http://10.0.0.2:8000"}[i%2], now.Add(time.Minute), now)
		}
		// The oldest blocks were evicted, the newest are all there.
		if got := c.match(chain, now); got["http://10.0.0.2:8000"] != len(chain) {
			t.Fatalf("newest chain matches %v", got)
		}
		if c.len() != capBlocks {
			t.Fatalf("cache holds %d blocks, cap %d", c.len(), capBlocks)
		}
	}
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := int64(ms.HeapAlloc)
	mapped := newOwnerCache(capBlocks, func(int) {})
	fill(mapped)
	runtime.GC()
	runtime.ReadMemStats(&ms)
	heap := (int64(ms.HeapAlloc) - before) / capBlocks
	reserved := mapped.reservedBytes() / capBlocks
	t.Logf("mapped: %d bytes per block reserved, %d on the heap", reserved, heap)
	if reserved > CacheBytesPerBlock || heap > 4 {
		t.Fatalf("mapped cache: %d bytes per block reserved and %d on the heap; bounds %d and 4", reserved, heap, CacheBytesPerBlock)
	}
	runtime.KeepAlive(mapped)

	onHeap := &ownerCache{cap: capBlocks, head: -1, tail: -1, extra: map[int32][]uint64{}, backendN: map[string]uint16{}, onSize: func(int) {}}
	fill(onHeap)
	if per := onHeap.reservedBytes() / capBlocks; per > CacheBytesPerBlock {
		t.Fatalf("heap-grown cache: %d bytes per block, bound %d", per, CacheBytesPerBlock)
	}
}
