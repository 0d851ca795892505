package routing

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

func idleCands(n, capacity int) []Candidate {
	cs := make([]Candidate, n)
	for i := range cs {
		cs[i] = cand(fmt.Sprintf("http://10.0.0.%d:8000", i+1), 0, capacity)
	}
	return cs
}

// TestBoundedHashSpreadsUniformKeys: random keys on idle backends, one at a time, land
// evenly: max/mean requests per backend ≤ 1.25 (the goal for uniform prompts).
func TestBoundedHashSpreadsUniformKeys(t *testing.T) {
	for _, n := range []int{2, 4, 8} {
		cands := idleCands(n, 8)
		count := make([]int, n)
		rnd := rand.New(rand.NewPCG(1, uint64(n)))
		const requests = 4000
		for range requests {
			i, _ := boundedHash(rnd.Uint64(), cands, DefaultLoadFactor, nil)
			count[i]++
		}
		mx := 0
		for _, c := range count {
			mx = max(mx, c)
		}
		if ratio := float64(mx) / (requests / float64(n)); ratio > 1.25 {
			t.Errorf("%d backends: max/mean = %.3f (%v), want ≤ 1.25", n, ratio, count)
		}
	}
}

// TestBoundedHashBoundsLoad: one hot key under concurrency (nothing finishes) never puts
// more than ceil(1.25 × mean) requests on a backend, and overflows in a fixed order.
func TestBoundedHashBoundsLoad(t *testing.T) {
	const n, capacity = 4, 8
	cands := idleCands(n, capacity)
	inFlight := make([]int, n)
	first := -1
	for k := range 40 {
		for i := range cands {
			cands[i].Load = float64(inFlight[i]) / capacity
		}
		i, top := boundedHash(42, cands, DefaultLoadFactor, nil)
		if k == 0 {
			first = i
		}
		if top != (i == first) {
			t.Fatalf("request %d: first=%v but chose %d (home %d)", k, top, i, first)
		}
		inFlight[i]++
		total := 0
		for _, v := range inFlight {
			total += v
		}
		mean := float64(total) / n
		for b, v := range inFlight {
			if bound := int(1.25*mean) + 1; v > bound {
				t.Fatalf("after %d requests backend %d holds %d (mean %.2f, bound %d): %v", k+1, b, v, mean, bound, inFlight)
			}
		}
	}
	// The home backend fills up to its bound, ceil(1.25 × 40/4) = 13; the rest overflow.
	if inFlight[first] < 12 || inFlight[first] > 13 {
		t.Errorf("home backend holds %d of 40, want about its bound 13 (%v)", inFlight[first], inFlight)
	}
}

// TestBoundedHashAgreesAndIsConsistent: the choice depends only on the key and the
// candidates (two "replicas" agree, candidate order does not matter), and removing a
// backend moves only the keys it held.
func TestBoundedHashAgreesAndIsConsistent(t *testing.T) {
	cands := idleCands(5, 8)
	reversed := make([]Candidate, len(cands))
	for i, c := range cands {
		reversed[len(cands)-1-i] = c
	}
	without := append(append([]Candidate(nil), cands[:2]...), cands[3:]...) // drop backend 2
	moved := 0
	for k := range uint64(2000) {
		a, _ := boundedHash(k, cands, DefaultLoadFactor, nil)
		b, _ := boundedHash(k, reversed, DefaultLoadFactor, nil)
		if cands[a].Backend.ID() != reversed[b].Backend.ID() {
			t.Fatalf("key %d: %s vs %s by candidate order", k, cands[a].Backend.ID(), reversed[b].Backend.ID())
		}
		c, _ := boundedHash(k, without, DefaultLoadFactor, nil)
		if cands[a].Backend.ID() != without[c].Backend.ID() {
			if a != 2 {
				t.Fatalf("key %d moved from %s although it was not on the removed backend", k, cands[a].Backend.ID())
			}
			moved++
		}
	}
	if moved == 0 {
		t.Fatal("no key was on the removed backend")
	}
}

// TestBoundedHashWeightsByCapacity: a backend of twice the capacity gets about twice the keys.
func TestBoundedHashWeightsByCapacity(t *testing.T) {
	cands := []Candidate{cand("http://a", 0, 16), cand("http://b", 0, 8), cand("http://c", 0, 8)}
	count := make([]int, 3)
	for k := range uint64(8000) {
		i, _ := boundedHash(k*0x9e3779b97f4a7c15, cands, DefaultLoadFactor, nil)
		count[i]++
	}
	if r := float64(count[0]) / float64(count[1]+count[2]); r < 0.9 || r > 1.1 {
		t.Fatalf("capacity 16 vs 8+8 got %v (ratio %.2f), want about 1", count, r)
	}
}
