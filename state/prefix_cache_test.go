package state

import (
	"maps"
	"testing"
	"time"
)

func TestOwnerCacheMatch(t *testing.T) {
	now := time.Unix(1000, 0)
	live, dead := now.Add(time.Minute), now.Add(-time.Second)
	tests := []struct {
		name   string
		puts   func(c *ownerCache)
		lookup []uint64
		want   map[string]int
	}{
		{"Cold", func(*ownerCache) {}, []uint64{1, 2}, map[string]int{}},
		{"FullMatch", func(c *ownerCache) { c.put(1, []uint64{1, 2, 3}, "a", live, now) }, []uint64{1, 2, 3}, map[string]int{"a": 3}},
		{"LongerQuery", func(c *ownerCache) { c.put(1, []uint64{1, 2}, "a", live, now) }, []uint64{1, 2, 3, 4}, map[string]int{"a": 2}},
		{"TwoBackendsDifferentDepth", func(c *ownerCache) {
			c.put(1, []uint64{1, 2, 3}, "a", live, now)
			c.put(1, []uint64{1}, "b", live, now)
		}, []uint64{1, 2, 3}, map[string]int{"a": 3, "b": 1}},
		{"GapStopsBackend", func(c *ownerCache) {
			c.put(1, []uint64{1, 3}, "a", live, now)
			c.put(1, []uint64{1, 2, 3}, "b", live, now)
		}, []uint64{1, 2, 3}, map[string]int{"a": 1, "b": 3}},
		{"NotLeading", func(c *ownerCache) { c.put(2, []uint64{2, 3}, "a", live, now) }, []uint64{1, 2, 3}, map[string]int{}},
		{"Expired", func(c *ownerCache) { c.put(1, []uint64{1, 2}, "a", dead, now) }, []uint64{1, 2}, map[string]int{}},
		{"LaterDeadlineWins", func(c *ownerCache) {
			c.put(1, []uint64{1}, "a", live, now)
			c.put(1, []uint64{1}, "a", dead, now)
		}, []uint64{1}, map[string]int{"a": 1}},
		{"Forgotten", func(c *ownerCache) {
			c.put(1, []uint64{1}, "a", live, now)
			c.put(1, []uint64{1}, "b", live, now)
			c.forget("a")
		}, []uint64{1}, map[string]int{"b": 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newOwnerCache(100, func(int) {})
			tc.puts(c)
			if got := c.match(tc.lookup, now); !maps.Equal(got, tc.want) {
				t.Fatalf("match = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestOwnerCacheEvictsLeastRecentlyUsed(t *testing.T) {
	var size int
	c := newOwnerCache(3, func(n int) { size = n })
	now := time.Now()
	until := now.Add(time.Minute)
	c.put(1, []uint64{1, 2, 3}, "a", until, now)
	c.match([]uint64{1}, time.Now()) // 1 is now the most recent
	c.put(4, []uint64{4, 5}, "a", until, now)
	if size != 3 {
		t.Fatalf("size = %d, want 3", size)
	}
	if got := c.match([]uint64{1}, time.Now()); got["a"] != 1 {
		t.Fatalf("recently used block 1 was evicted: %v", got)
	}
	if got := c.match([]uint64{2}, time.Now()); len(got) != 0 {
		t.Fatalf("least recently used block 2 survived: %v", got)
	}
}

func TestOwnerCacheFreshAndSnapshot(t *testing.T) {
	now := time.Now()
	c := newOwnerCache(100, func(int) {})
	c.put(1, []uint64{1, 2}, "a", now.Add(time.Minute), now)
	c.put(9, []uint64{9}, "b", now.Add(2*time.Minute), now)
	c.put(9, []uint64{8}, "b", now.Add(-time.Second), now)
	if !c.fresh([]uint64{1, 2}, "a", now.Add(30*time.Second)) {
		t.Fatal("fresh = false for a chain recorded for a minute")
	}
	if c.fresh([]uint64{1, 2}, "a", now.Add(2*time.Minute)) || c.fresh([]uint64{1, 2, 3}, "a", now) || c.fresh([]uint64{1}, "b", now) {
		t.Fatal("fresh = true for a later deadline, an unknown block or another backend")
	}
	got := map[string]chainOwnership{}
	for _, g := range c.snapshot(now) {
		got[g.backend] = g
	}
	if len(got) != 2 || len(got["a"].hashes) != 2 || got["a"].root != 1 || len(got["b"].hashes) != 1 || got["b"].hashes[0] != 9 {
		t.Fatalf("snapshot = %+v, want a:{1,2} root 1 and b:{9} (expired 8 left out)", got)
	}
}

func TestCountsRoundTrip(t *testing.T) {
	sum := map[string]int64{}
	addCounts(sum, encodeCounts(map[string]int64{"interactive": 3, "batch": 2, "gone": 0, "neg": -1}))
	addCounts(sum, "interactive=4")
	if want := map[string]int64{"interactive": 7, "batch": 2}; !maps.Equal(sum, want) {
		t.Fatalf("sum = %v, want %v", sum, want)
	}
	if s := encodeCounts(map[string]int64{"x": 0}); s != "" {
		t.Fatalf("encodeCounts of zeros = %q, want empty", s)
	}
}

// FuzzAddCounts feeds arbitrary share strings (as another replica, or anything else with
// access to Redis, might have written them) to the parser: it must never panic and never
// produce a negative count.
func FuzzAddCounts(f *testing.F) {
	for _, s := range []string{"", "interactive=3", "interactive=3;batch=1", "a=1;;b=", "=5", "x=-2", "x=99999999999999999999", "x=1=2", "x=9223372036854775807;x=9223372036854775807"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sum := map[string]int64{}
		addCounts(sum, s)
		for k, n := range sum {
			if n < 0 {
				t.Fatalf("negative count %d for %q from %q", n, k, s)
			}
		}
	})
}

func TestPrefixKeyLayout(t *testing.T) {
	if got, want := prefixKey(0xab, 0x1), "prefix:{00000000000000ab}:0000000000000001"; got != want {
		t.Fatalf("prefixKey = %q, want %q", got, want)
	}
	if got := inflightKey("http://h:8000"); got != "{inflight}:http://h:8000" {
		t.Fatalf("inflightKey = %q", got)
	}
}
