package state

import (
	"math/rand/v2"
	"testing"
)

// TestSlotTableMatchesMap runs random inserts and removes against a Go map, with hashes
// drawn from a small range and with patterns that collide after Fibonacci hashing, so
// probe runs wrap around the table and backward-shift deletion is exercised.
func TestSlotTableMatchesMap(t *testing.T) {
	for _, space := range []uint64{50, 3000, 1 << 40} {
		r := rand.New(rand.NewPCG(space, 7))
		var tab slotTable
		var slots []cacheSlot
		want := map[uint64]int32{}
		var free []int32
		for op := range 20000 {
			h := r.Uint64N(space)
			if op%7 == 0 {
				h <<= 54 // high bits only: many land on the same home
			}
			if s, ok := want[h]; ok && r.IntN(2) == 0 {
				tab.remove(h, slots)
				delete(want, h)
				free = append(free, s)
			} else if !ok {
				var s int32
				if len(free) > 0 {
					s, free = free[len(free)-1], free[:len(free)-1]
				} else {
					slots = append(slots, cacheSlot{})
					s = int32(len(slots) - 1)
				}
				slots[s].hash = h
				tab.insert(h, s, slots)
				want[h] = s
			}
			if op%500 == 0 || op == 19999 {
				for k, s := range want {
					if got := tab.find(k, slots); got != s {
						t.Fatalf("space %d op %d: find(%d) = %d, want %d", space, op, k, got, s)
					}
				}
				if tab.n != len(want) {
					t.Fatalf("space %d: n = %d, want %d", space, tab.n, len(want))
				}
			}
		}
		for k := range uint64(100) {
			if _, ok := want[k]; !ok && tab.find(k, slots) != -1 {
				t.Fatalf("space %d: find(%d) found an absent hash", space, k)
			}
		}
	}
}
