package state_test

import (
	"testing"
	"time"

	"github.com/vllm-proxy/vllm-proxy/state"
	"github.com/vllm-proxy/vllm-proxy/state/statetest"
)

// The request-path costs: one prefix lookup (64 blocks, warm) and the in-flight
// bookkeeping of one request, in memory and against a local redis-server.
//
//	go test -run '^$' -bench . -benchtime 2000x -count 5 ./state/
func BenchmarkLookup(b *testing.B) {
	for _, tc := range []struct {
		name  string
		redis bool
	}{{"Memory", false}, {"Redis", true}} {
		b.Run(tc.name, func(b *testing.B) {
			s := benchStore(b, tc.redis)
			chain := make([]uint64, 64)
			for i := range chain {
				chain[i] = uint64(i+1) * 0x9e3779b97f4a7c15
			}
			s.Prefix().Record("b1", chain[:48])
			b.ResetTimer()
			for b.Loop() {
				if got := s.Prefix().Lookup(b.Context(), chain); got["b1"] != 48 {
					b.Fatalf("Lookup = %v", got)
				}
			}
		})
	}
}

func BenchmarkInFlightRequest(b *testing.B) {
	for _, tc := range []struct {
		name  string
		redis bool
	}{{"Memory", false}, {"Redis", true}} {
		b.Run(tc.name, func(b *testing.B) {
			f := benchStore(b, tc.redis).InFlight()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					f.Add("b1", "interactive", 1)
					_ = f.InFlight("b1", "interactive")
					_ = f.InFlight("b2", "interactive")
					f.Add("b1", "interactive", -1)
				}
			})
		})
	}
}

func benchStore(b *testing.B, redis bool) *state.Store {
	url := "memory"
	if redis {
		url = statetest.StartRedis(b).URL
	}
	u, err := state.ParseURL(url)
	if err != nil {
		b.Fatal(err)
	}
	s, err := state.Open(b.Context(), u, state.Config{ReplicaID: "bench"}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	deadline := time.Now().Add(5 * time.Second)
	for !s.Connected() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if !s.Connected() {
		b.Fatal("not connected")
	}
	return s
}
