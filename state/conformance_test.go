package state_test

import (
	"context"
	"hash/fnv"
	"maps"
	"strconv"
	"testing"
	"time"

	"github.com/vllm-proxy/vllm-proxy/state"
	"github.com/vllm-proxy/vllm-proxy/state/statetest"
)

// The interfaces routing defines (routing.LoadShare, routing.ScrapeCoordinator), restated
// here because state must not import routing: if routing's change, these must too.
type loadShare interface {
	Add(backend, class string, delta int64)
	InFlight(backend, class string) int64
	Forget(backend string)
}

type scrapeCoordinator interface {
	Claim(ctx context.Context, backend string, ttl time.Duration) (bool, error)
	Publish(ctx context.Context, backend string, payload []byte, ttl time.Duration) error
	Latest(ctx context.Context, backend string) ([]byte, error)
}

var (
	_ loadShare         = (*state.InFlight)(nil)
	_ scrapeCoordinator = (*state.ScrapeLeases)(nil)
)

// target is one implementation the conformance suite runs against.
type target struct {
	url string
	// shared is true when two Stores opened on url see each other's state (Redis); false
	// for the in-memory twins, where cross-replica cases are skipped.
	shared bool
}

// TestConformance runs one suite against the in-memory twins, a single redis-server, a
// master behind a sentinel and a three-node Redis Cluster, all started by the test.
func TestConformance(t *testing.T) {
	targets := []struct {
		name string
		get  func(t *testing.T) target
	}{
		{"Memory", func(*testing.T) target { return target{url: "memory"} }},
		{"Redis", func(t *testing.T) target { return target{url: statetest.StartRedis(t).URL, shared: true} }},
		{"Sentinel", func(t *testing.T) target { return target{url: statetest.StartSentinel(t).URL, shared: true} }},
		{"Cluster", func(t *testing.T) target { return target{url: statetest.StartCluster(t).URL, shared: true} }},
	}
	for _, tc := range targets {
		t.Run(tc.name, func(t *testing.T) { runConformance(t, tc.get(t)) })
	}
}

func runConformance(t *testing.T, tg target) {
	replica := func(t *testing.T, name string) *state.Store {
		t.Helper()
		cfg := fastConfig(t.Name() + "/" + name)
		cfg.PrefixTTL = 2 * time.Second
		s := open(t, tg.url, cfg, nil, nil)
		eventually(t, 10*time.Second, "the store to reach its backend", s.Connected)
		return s
	}
	shared := func(t *testing.T) {
		t.Helper()
		if !tg.shared {
			t.Skip("in-memory stores are per process: nothing is shared between replicas")
		}
	}

	t.Run("InFlightCountsPerClass", func(t *testing.T) {
		f := replica(t, "a").InFlight()
		f.Add(bn(t, "b1"), "interactive", 2)
		f.Add(bn(t, "b1"), "batch", 1)
		f.Add(bn(t, "b2"), "interactive", 1)
		f.Add(bn(t, "b1"), "interactive", -1)
		want := map[[2]string]int64{{"b1", "interactive"}: 1, {"b1", "batch"}: 1, {"b2", "interactive"}: 1, {"b2", "batch"}: 0, {"b3", "interactive"}: 0}
		for k, n := range want {
			if got := f.InFlight(bn(t, k[0]), k[1]); got != n {
				t.Errorf("InFlight(%s, %s) = %d, want %d", k[0], k[1], got, n)
			}
		}
	})

	t.Run("InFlightNeverNegativeAndForget", func(t *testing.T) {
		f := replica(t, "a").InFlight()
		f.Add(bn(t, "b1"), "interactive", 3)
		f.Forget(bn(t, "b1"))
		if got := f.InFlight(bn(t, "b1"), "interactive"); got != 0 {
			t.Fatalf("after Forget: InFlight = %d, want 0", got)
		}
		f.Add(bn(t, "b1"), "interactive", -1) // a request finishing after its backend left
		if got := f.InFlight(bn(t, "b1"), "interactive"); got != 0 {
			t.Fatalf("InFlight = %d after a stray decrement, want 0", got)
		}
	})

	t.Run("InFlightSummedOverReplicas", func(t *testing.T) {
		shared(t)
		a, b := replica(t, "a").InFlight(), replica(t, "b").InFlight()
		a.Add(bn(t, "b1"), "interactive", 3)
		b.Add(bn(t, "b1"), "interactive", 2)
		b.Add(bn(t, "b1"), "batch", 4)
		eventually(t, 5*time.Second, "both replicas to see 5 interactive and 4 batch", func() bool {
			return a.InFlight(bn(t, "b1"), "interactive") == 5 && b.InFlight(bn(t, "b1"), "interactive") == 5 &&
				a.InFlight(bn(t, "b1"), "batch") == 4
		})
		a.Add(bn(t, "b1"), "interactive", -3)
		eventually(t, 5*time.Second, "b to see a's requests finish", func() bool {
			return b.InFlight(bn(t, "b1"), "interactive") == 2
		})
	})

	t.Run("InFlightWithdrawnOnClose", func(t *testing.T) {
		shared(t)
		a, b := replica(t, "a"), replica(t, "b")
		a.InFlight().Add(bn(t, "b1"), "interactive", 7)
		eventually(t, 5*time.Second, "b to see a's 7", func() bool { return b.InFlight().InFlight(bn(t, "b1"), "interactive") == 7 })
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		// Withdrawal is immediate; the lease (300ms here) would also do it. Either way
		// b must drop the count well before a heartbeat-independent deadline.
		eventually(t, 5*time.Second, "b to drop a's share", func() bool { return b.InFlight().InFlight(bn(t, "b1"), "interactive") == 0 })
	})

	t.Run("PrefixRecordThenLookup", func(t *testing.T) {
		p := replica(t, "a").Prefix()
		chain := hashes(t, 10)
		if got := p.Lookup(t.Context(), chain); len(got) != 0 {
			t.Fatalf("cold lookup = %v, want empty", got)
		}
		p.Record("b1", chain[:6])
		if got, want := p.Lookup(t.Context(), chain), map[string]int{"b1": 6}; !maps.Equal(got, want) {
			t.Fatalf("Lookup = %v, want %v", got, want)
		}
	})

	t.Run("PrefixLeadingMatchPerBackend", func(t *testing.T) {
		p := replica(t, "a").Prefix()
		chain := hashes(t, 8)
		p.Record("b1", chain[:5])
		p.Record("b2", chain[:2])
		p.Record("b3", chain[3:8]) // not a leading run: blocks 0..2 missing
		other := append(append([]uint64(nil), chain[:2]...), hashes(t, 20)[10:12]...)
		p.Record("b4", other)
		want := map[string]int{"b1": 5, "b2": 2, "b4": 2}
		if got := p.Lookup(t.Context(), chain); !maps.Equal(got, want) {
			t.Fatalf("Lookup = %v, want %v", got, want)
		}
	})

	t.Run("PrefixSharedAcrossReplicas", func(t *testing.T) {
		shared(t)
		a, b := replica(t, "a").Prefix(), replica(t, "b").Prefix()
		chain := hashes(t, 12)
		a.Record("b1", chain[:9])
		want := map[string]int{"b1": 9}
		eventually(t, 5*time.Second, "b to see a's record", func() bool {
			return maps.Equal(b.Lookup(t.Context(), chain), want)
		})
	})

	t.Run("PrefixDepthsSeenByAnotherReplica", func(t *testing.T) {
		shared(t)
		a, b := replica(t, "a").Prefix(), replica(t, "b").Prefix()
		chain := hashes(t, 256)
		want := map[string]int{}
		for i, depth := range []int{256, 255, 200, 129, 128, 64, 33, 7, 2, 1} {
			be := "b" + strconv.Itoa(i)
			a.Record(be, chain[:depth])
			if depth > 100 {
				a.Record(be, chain[:depth/2]) // a later, shorter record must not cut the longer one
			}
			want[be] = depth
		}
		eventually(t, 5*time.Second, "b to see every backend's depth from redis alone", func() bool {
			return maps.Equal(b.Lookup(t.Context(), chain), want)
		})
		if got := b.Lookup(t.Context(), chain[:100]); got["b0"] != 100 || got["b7"] != 7 || len(got) != 10 {
			t.Fatalf("shorter query = %v, want every backend capped at 100", got)
		}
	})

	t.Run("PrefixExpires", func(t *testing.T) {
		s := replica(t, "a")
		chain := hashes(t, 4)
		s.Prefix().Record("b1", chain)
		if got := s.Prefix().Lookup(t.Context(), chain); got["b1"] != 4 {
			t.Fatalf("Lookup right after Record = %v", got)
		}
		eventually(t, 10*time.Second, "ownership to expire after PrefixTTL", func() bool {
			return len(s.Prefix().Lookup(t.Context(), chain)) == 0
		})
		if tg.shared {
			other := replica(t, "b")
			for range 3 { // several lookups: the first may only warm the cache
				if got := other.Prefix().Lookup(t.Context(), chain); len(got) != 0 {
					t.Fatalf("another replica still sees expired ownership %v", got)
				}
			}
		}
	})

	t.Run("PrefixForget", func(t *testing.T) {
		p := replica(t, "a").Prefix()
		chain := hashes(t, 3)
		p.Record("b1", chain)
		p.Record("b2", chain)
		p.Forget("b1")
		if got := p.Lookup(t.Context(), chain); got["b2"] != 3 {
			t.Fatalf("Lookup after Forget(b1) = %v, want b2:3", got)
		}
		if !tg.shared {
			if got := p.Lookup(t.Context(), chain); got["b1"] != 0 {
				t.Fatalf("memory Lookup after Forget(b1) = %v, want no b1", got)
			}
		}
	})

	t.Run("ScrapeClaimPublishLatest", func(t *testing.T) {
		sc, be := replica(t, "a").Scrapes(), t.Name()+"/b1"
		ctx := t.Context()
		if got, err := sc.Latest(ctx, be); err != nil || got != nil {
			t.Fatalf("Latest before Publish = %q, %v; want nil, nil", got, err)
		}
		for range 2 {
			mine, err := sc.Claim(ctx, be, time.Second)
			if err != nil || !mine {
				t.Fatalf("Claim = %v, %v; want true (sole replica, renewing)", mine, err)
			}
		}
		if err := sc.Publish(ctx, be, []byte("snapshot-1"), time.Second); err != nil {
			t.Fatal(err)
		}
		if got, err := sc.Latest(ctx, be); err != nil || string(got) != "snapshot-1" {
			t.Fatalf("Latest = %q, %v; want snapshot-1", got, err)
		}
		if err := sc.Publish(ctx, be, []byte("snapshot-2"), 300*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		eventually(t, 5*time.Second, "the published payload to expire", func() bool {
			got, err := sc.Latest(ctx, be)
			return err == nil && got == nil
		})
	})

	t.Run("ScrapeLeaseHandedOverOnClose", func(t *testing.T) {
		shared(t)
		a, b := replica(t, "a"), replica(t, "b")
		be, ctx := bn(t, "b1"), t.Context()
		if mine, err := a.Scrapes().Claim(ctx, be, time.Minute); err != nil || !mine {
			t.Fatalf("a.Claim = %v, %v; want true", mine, err)
		}
		if mine, _ := b.Scrapes().Claim(ctx, be, time.Minute); mine {
			t.Fatal("b got a lease a holds")
		}
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		if mine, err := b.Scrapes().Claim(ctx, be, time.Minute); err != nil || !mine {
			t.Fatalf("b.Claim right after a closed = %v, %v; want true (a released its one-minute lease)", mine, err)
		}
	})

	t.Run("ScrapeOneHolderAcrossReplicas", func(t *testing.T) {
		shared(t)
		a, b := replica(t, "a").Scrapes(), replica(t, "b").Scrapes()
		be := t.Name() + "/b1"
		ctx := t.Context()
		if mine, err := a.Claim(ctx, be, 400*time.Millisecond); err != nil || !mine {
			t.Fatalf("a.Claim = %v, %v; want true", mine, err)
		}
		if mine, err := b.Claim(ctx, be, 400*time.Millisecond); err != nil || mine {
			t.Fatalf("b.Claim while a holds the lease = %v, %v; want false", mine, err)
		}
		if err := a.Publish(ctx, be, []byte("from-a"), time.Second); err != nil {
			t.Fatal(err)
		}
		if got, err := b.Latest(ctx, be); err != nil || string(got) != "from-a" {
			t.Fatalf("b.Latest = %q, %v; want from-a", got, err)
		}
		// a stops claiming (it died): b takes over once the lease runs out.
		eventually(t, 5*time.Second, "b to take the lease", func() bool {
			mine, err := b.Claim(ctx, be, 400*time.Millisecond)
			return err == nil && mine
		})
		if mine, _ := a.Claim(ctx, be, 400*time.Millisecond); mine {
			t.Fatal("a got the lease back while b holds it")
		}
	})
}

// bn names a backend uniquely per test: one server serves every subtest.
func bn(t *testing.T, b string) string { return t.Name() + "/" + b }

// hashes returns n pseudo-random block hashes unique to the test.
func hashes(t *testing.T, n int) []uint64 {
	h := fnv.New64a()
	h.Write([]byte(t.Name()))
	x := h.Sum64()
	out := make([]uint64, n)
	for i := range out {
		x += 0x9e3779b97f4a7c15
		z := x
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		out[i] = z ^ (z >> 31)
	}
	return out
}
