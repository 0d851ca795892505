package routing

import (
	"maps"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/vllm-proxy/vllm-proxy/sim"
	"github.com/vllm-proxy/vllm-proxy/state"
	"github.com/vllm-proxy/vllm-proxy/state/statetest"
)

// TestCacheAwareSharedIndexAcrossReplicas: two routers share prefix ownership through a
// real Redis (state.PrefixIndex). A prefix that r1 sent to a backend other than its cold
// placement is followed by r2 on its first sight of it; after FLUSHALL and with Redis
// killed every pick is still served, and r2 keeps the affinity it had learned.
func TestCacheAwareSharedIndexAcrossReplicas(t *testing.T) {
	redis := statetest.StartRedis(t)
	var urls []string
	for range 3 {
		urls = append(urls, startSim(t, sim.Config{Model: "m", Instant: true}).URL())
	}
	s1, s2 := openFastState(t, redis.URL, "r1"), openFastState(t, redis.URL, "r2")
	r1, _ := startRouter(t, fastConfig(urls...), WithPrefixIndex(s1.Prefix()))
	r2, reg2 := startRouter(t, fastConfig(urls...), WithPrefixIndex(s2.Prefix()))
	ca2 := r2.Policy().(*CacheAware)

	prompt := chat(words(42, 256), words(43, 32))
	req := &Request{Model: "m", Prompt: prompt}
	hashes := HashPrompt(nil, PrefixSeed("m", "", ""), prompt, DefaultBlockChars, DefaultMaxBlocks)
	// A first sighting records FirstRecordBlocks blocks (one).
	hashes = hashes[:RecordDepth(0, len(hashes), DefaultRecordAhead, DefaultFirstRecordBlocks)]
	cold, _ := boundedHash(hashes[0], candidatesOf(r1, "m"), DefaultLoadFactor, nil)
	coldID := urls[cold]

	// r1 sends it elsewhere (the cold home is excluded, as after a failed attempt).
	owner := sendVia(t.Context(), t, r1, &Request{Model: "m", Prompt: prompt, Exclude: []string{coldID}})
	eventually(t, "r1's record reaches redis", func() bool {
		_, err := redis.Do("DBSIZE")
		return err == nil && s2.Prefix().Lookup(t.Context(), hashes)[owner] == len(hashes)
	})
	if got := sendVia(t.Context(), t, r2, req); got != owner {
		t.Fatalf("r2 sent the prefix to %s, not to %s that r1 recorded (cold home %s)", got, owner, coldID)
	}
	if n := testutil.ToFloat64(ca2.pc.reasons[0]); n != 1 {
		t.Fatalf("r2 affinity decisions = %v, want 1", n)
	}

	// FLUSHALL under load (four clients per router): no pick fails, r2 still knows the
	// owner from its local cache, and a prefix first seen after the flush is shared again.
	var wg sync.WaitGroup
	var failed atomic.Int64
	stop := make(chan struct{})
	for w := range 8 {
		wg.Go(func() {
			r := []*Router{r1, r2}[w%2]
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				pk, err := r.Pick(t.Context(), &Request{Model: "m", Prompt: chat(words(uint64(w), 128), words(uint64(i), 16))})
				if err != nil {
					failed.Add(1)
					continue
				}
				pk.Done(Outcome{Status: http.StatusOK})
			}
		})
	}
	if _, err := redis.Do("FLUSHALL"); err != nil {
		t.Fatal(err)
	}
	fresh := chat(words(4242, 256), "after the flush")
	fh := HashPrompt(nil, PrefixSeed("m", "", ""), fresh, DefaultBlockChars, DefaultMaxBlocks)
	fh = fh[:RecordDepth(0, len(fh), DefaultRecordAhead, DefaultFirstRecordBlocks)]
	freshCold, _ := boundedHash(fh[0], candidatesOf(r1, "m"), DefaultLoadFactor, nil)
	freshOwner := sendVia(t.Context(), t, r1, &Request{Model: "m", Prompt: fresh, Exclude: []string{urls[freshCold]}})
	eventually(t, "the post-flush record reaches redis", func() bool {
		return s2.Prefix().Lookup(t.Context(), fh)[freshOwner] == len(fh)
	})
	close(stop)
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d picks failed around FLUSHALL", n)
	}
	if got := sendVia(t.Context(), t, r2, &Request{Model: "m", Prompt: fresh}); got != freshOwner {
		t.Fatalf("after FLUSHALL r2 sent a new prefix to %s, not to %s that r1 recorded", got, freshOwner)
	}
	for i := range 20 {
		q := &Request{Model: "m", Prompt: chat(words(42, 256), words(uint64(500+i), 32))}
		sendVia(t.Context(), t, r1, q)
		if got := sendVia(t.Context(), t, r2, q); got != owner {
			t.Fatalf("after FLUSHALL request %d went to %s, not %s", i, got, owner)
		}
	}

	// Redis killed: both routers keep serving; r2 keeps its learned affinity and the
	// decisions keep being counted.
	redis.Kill()
	eventually(t, "state sees redis gone", func() bool { return !s1.Connected() && !s2.Connected() })
	for i := range 20 {
		q := &Request{Model: "m", Prompt: chat(words(42, 256), words(uint64(900+i), 32))}
		sendVia(t.Context(), t, r1, q)
		if got := sendVia(t.Context(), t, r2, q); got != owner {
			t.Fatalf("with redis down request %d went to %s, not %s", i, got, owner)
		}
		// Prompts nobody has seen are still placed, and both replicas agree on them.
		fresh := &Request{Model: "m", Prompt: chat(words(uint64(7000+i), 64), "q")}
		if a, b := sendVia(t.Context(), t, r1, fresh), sendVia(t.Context(), t, r2, fresh); a != b {
			t.Fatalf("with redis down replicas disagree on a cold prompt: %s vs %s", a, b)
		}
	}
	if n := testutil.CollectAndCount(reg2, "vllm_proxy_routing_decisions_total"); n != len(decisionReasons) {
		t.Fatalf("decision series = %d, want %d", n, len(decisionReasons))
	}

	// Restarted: serving goes on and new records reach the fresh Redis.
	redis.Restart()
	eventually(t, "state reconnects", func() bool { return s1.Connected() && s2.Connected() })
	next := &Request{Model: "m", Prompt: chat(words(77, 128), "after restart")}
	at := sendVia(t.Context(), t, r1, next)
	nh := HashPrompt(nil, PrefixSeed("m", "", ""), next.Prompt, DefaultBlockChars, DefaultMaxBlocks)
	eventually(t, "records reach the restarted redis", func() bool {
		return slices.Contains(slices.Collect(maps.Keys(s2.Prefix().Lookup(t.Context(), nh))), at)
	})
}

// candidatesOf snapshots r's candidates for model the way Pick does.
func candidatesOf(r *Router, model string) []Candidate {
	var cands []Candidate
	for _, b := range r.pool.Load().byModel[model] {
		b.mu.Lock()
		cands = append(cands, b.candidateLocked(r.sharedInFlight(b), r.cfg.StaleAfter))
		b.mu.Unlock()
	}
	return cands
}

// openFastState opens shared state on redisURL with quick health probes and reconnects.
func openFastState(t *testing.T, redisURL, replica string) *state.Store {
	t.Helper()
	u, err := state.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	st, err := state.Open(t.Context(), u, state.Config{ReplicaID: replica, HeartbeatInterval: 20 * time.Millisecond,
		InFlightLease: time.Second, HealthInterval: 50 * time.Millisecond, ReconnectMin: 20 * time.Millisecond,
		ReconnectMax: 200 * time.Millisecond}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	eventually(t, "state connected to redis", st.Connected)
	return st
}

// The Redis-backed index plugs into WithPrefixIndex and is told about removed backends.
var (
	_ PrefixIndex     = (*state.PrefixIndex)(nil)
	_ prefixForgetter = (*state.PrefixIndex)(nil)
)
