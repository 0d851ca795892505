package routing

import (
	"maps"
	"testing"
	"time"
)

func TestLocalPrefixIndexLookup(t *testing.T) {
	clock := newFakeClock()
	x := NewLocalPrefixIndex(100, time.Minute, clock.Now)
	x.Record("a", []uint64{1, 2, 3, 4})
	x.Record("b", []uint64{1, 2})
	x.Record("c", []uint64{9})

	for _, tt := range []struct {
		name   string
		hashes []uint64
		want   map[string]int
	}{
		{"longest per backend", []uint64{1, 2, 3, 4, 5}, map[string]int{"a": 4, "b": 2}},
		{"stops at first unowned block", []uint64{1, 7, 3}, map[string]int{"a": 1, "b": 1}},
		{"nothing", []uint64{5, 6}, map[string]int{}},
		{"empty chain", nil, map[string]int{}},
		// A backend must own every block so far: a holds 3 but not the 8 before it.
		{"a gap ends a backend's walk", []uint64{9, 3}, map[string]int{"c": 1}},
	} {
		if got := x.Lookup(t.Context(), tt.hashes); !maps.Equal(got, tt.want) {
			t.Errorf("%s: Lookup = %v, want %v", tt.name, got, tt.want)
		}
	}

	// Ownership expires ttl after the last Record, per backend.
	clock.Advance(40 * time.Second)
	x.Record("b", []uint64{1, 2})
	clock.Advance(30 * time.Second)
	if got := x.Lookup(t.Context(), []uint64{1, 2, 3}); !maps.Equal(got, map[string]int{"b": 2}) {
		t.Errorf("after a's ttl: Lookup = %v, want only b", got)
	}

	x.Forget("b")
	if got := x.Lookup(t.Context(), []uint64{1, 2}); len(got) != 0 {
		t.Errorf("after Forget(b): Lookup = %v", got)
	}
}

func TestLocalPrefixIndexIsBounded(t *testing.T) {
	x := NewLocalPrefixIndex(10, time.Minute, nil)
	x.Record("a", []uint64{1, 2, 3, 4, 5})
	for h := uint64(100); h < 108; h++ {
		x.Record("b", []uint64{h})
	}
	if x.Len() != 10 {
		t.Fatalf("index holds %d blocks, want the bound 10", x.Len())
	}
	// The least recently used blocks (a's first three) went first.
	if got := x.Lookup(t.Context(), []uint64{1, 2, 3, 4, 5}); len(got) != 0 {
		t.Fatalf("evicted chain still matches: %v", got)
	}
	if got := x.Lookup(t.Context(), []uint64{107}); got["b"] != 1 {
		t.Fatalf("recent block lost: %v", got)
	}
}
