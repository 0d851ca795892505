package state

// slotTable is the ownerCache's index from block hash to slot: open addressing with
// linear probing over a power-of-two array of slot numbers + 1 (0 = empty), kept at most
// three quarters full, with backward-shift deletion (no tombstones). It stores 4 bytes a
// position, against a Go map's ~40 bytes an entry for uint64 → int32, and holds no
// pointers. The hashes themselves live in the slots. Not safe for concurrent use (the
// cache's mutex guards it).
type slotTable struct {
	pos   []int32
	shift uint // 64 − log2(len(pos))
	n     int
}

// minTableSize is the smallest table.
const minTableSize = 1024

// home is h's first probe position: Fibonacci hashing, so that small or patterned
// hashes (tests, or a weak hash) spread as well as xxhash64 outputs do.
func (t *slotTable) home(h uint64) int { return int((h * 0x9E3779B97F4A7C15) >> t.shift) } // #nosec G115 -- shifted to log2(len(t.pos)) bits, below len(t.pos)

// find returns the slot holding h, or -1.
func (t *slotTable) find(h uint64, slots []cacheSlot) int32 {
	if len(t.pos) == 0 {
		return -1
	}
	mask := len(t.pos) - 1
	for i := t.home(h); ; i = (i + 1) & mask {
		s := t.pos[i]
		if s == 0 {
			return -1
		}
		if slots[s-1].hash == h {
			return s - 1
		}
	}
}

// insert adds slot for h, which must not be present; slots[slot].hash must be h.
func (t *slotTable) insert(h uint64, slot int32, slots []cacheSlot) {
	if (t.n+1)*4 > len(t.pos)*3 {
		t.grow(slots)
	}
	mask := len(t.pos) - 1
	i := t.home(h)
	for t.pos[i] != 0 {
		i = (i + 1) & mask
	}
	t.pos[i] = slot + 1
	t.n++
}

// tableSizeFor is the power-of-two table size that holds capacity entries at most three
// quarters full.
func tableSizeFor(capacity int) int {
	size := minTableSize
	for size*3 < capacity*4 {
		size *= 2
	}
	return size
}

// use makes pos (zeroed, a power of two long) the table; only for an empty table.
func (t *slotTable) use(pos []int32) {
	t.pos = pos
	t.shift = 64
	for s := len(pos); s > 1; s >>= 1 {
		t.shift--
	}
}

// grow doubles the table (or makes the first one) and reinserts every slot.
func (t *slotTable) grow(slots []cacheSlot) {
	size := max(2*len(t.pos), minTableSize)
	old := t.pos
	t.use(make([]int32, size))
	mask := size - 1
	for _, s := range old {
		if s == 0 {
			continue
		}
		i := t.home(slots[s-1].hash)
		for t.pos[i] != 0 {
			i = (i + 1) & mask
		}
		t.pos[i] = s
	}
}

// remove deletes h (held in some slot) and shifts back the entries probed past it.
func (t *slotTable) remove(h uint64, slots []cacheSlot) {
	if len(t.pos) == 0 {
		return
	}
	mask := len(t.pos) - 1
	i := t.home(h)
	for {
		s := t.pos[i]
		if s == 0 {
			return
		}
		if slots[s-1].hash == h {
			break
		}
		i = (i + 1) & mask
	}
	t.n--
	// Backward shift: move later entries of the run into the hole when their home
	// position does not lie cyclically in (hole, j].
	for j := (i + 1) & mask; t.pos[j] != 0; j = (j + 1) & mask {
		k := t.home(slots[t.pos[j]-1].hash)
		if (j > i && (k <= i || k > j)) || (j < i && k <= i && k > j) {
			t.pos[i] = t.pos[j]
			i = j
		}
	}
	t.pos[i] = 0
}
