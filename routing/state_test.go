package routing

import (
	"net/http"
	"testing"
	"time"

	"github.com/vllm-proxy/vllm-proxy/state"
	"github.com/vllm-proxy/vllm-proxy/state/statetest"
)

func openState(t *testing.T, redisURL, replica string) *state.Store {
	t.Helper()
	u, err := state.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	st, err := state.Open(t.Context(), u, state.Config{ReplicaID: replica, HeartbeatInterval: 20 * time.Millisecond,
		InFlightLease: time.Second}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	eventually(t, "state connected to redis", st.Connected)
	return st
}

// TestWithRedisState plugs the Redis-backed state.InFlight and state.ScrapeLeases into two
// routers: each sees the other's in-flight requests, and only one scrapes a backend.
func TestWithRedisState(t *testing.T) {
	redis := statetest.StartRedis(t)
	a := newFakeVLLM(t, "m")
	b := newFakeVLLM(t, "m")
	a.setLoad(1, 0)
	cfg := fastConfig(a.URL, b.URL)
	cfg.ScrapeInterval = time.Second // scrapes are driven by hand below; the lease lasts 2s
	cfg.Backends[0].Capacity, cfg.Backends[1].Capacity = 4, 4
	s1, s2 := openState(t, redis.URL, "r1"), openState(t, redis.URL, "r2")
	r1, _ := newIdleRouter(t, cfg, WithLoadShare(s1.InFlight()), WithScrapeCoordinator(s1.Scrapes()))
	r2, _ := newIdleRouter(t, cfg, WithLoadShare(s2.InFlight()), WithScrapeCoordinator(s2.Scrapes()))

	// Shared scrape: r1 takes the lease and scrapes; r2 reads r1's result.
	r1.scrapeOne(t.Context(), r1.Backends()[0])
	hits := a.metricsHits.Load()
	r2.scrapeOne(t.Context(), r2.Backends()[0])
	if got := a.metricsHits.Load(); got != hits {
		t.Fatalf("r2 scraped a although r1 holds the lease (%d -> %d)", hits, got)
	}
	if s := statsOf(t, r2, a.URL); s.Running != 1 || s.MetricsStale {
		t.Fatalf("r2 did not get r1's scrape through redis: %+v", s)
	}

	// Shared in-flight: three picks on r1 show up in r2's load of a.
	var picks []*Pick
	for range 3 {
		pk, err := r1.Pick(t.Context(), &Request{Model: "m", Exclude: []string{b.URL}})
		if err != nil {
			t.Fatal(err)
		}
		picks = append(picks, pk)
	}
	eventually(t, "r2 sees r1's in-flight requests", func() bool { return statsOf(t, r2, a.URL).InFlight == 3 })
	r2.scrapeOne(t.Context(), r2.Backends()[1])
	for range 10 {
		pk, err := r2.Pick(t.Context(), &Request{Model: "m"})
		if err != nil {
			t.Fatal(err)
		}
		if pk.Backend.ID() != b.URL {
			t.Fatalf("r2 picked %s although r1 has it at 3/4", pk.Backend.ID())
		}
		pk.Done(Outcome{Status: http.StatusOK})
	}
	for _, pk := range picks {
		pk.Done(Outcome{Status: http.StatusOK})
	}
	eventually(t, "r2 sees them finish", func() bool { return statsOf(t, r2, a.URL).InFlight == 0 })
}
