package routing

import (
	"fmt"
	"testing"
	"time"

	"github.com/vllm-proxy/vllm-proxy/state"
	"github.com/vllm-proxy/vllm-proxy/state/statetest"
)

// BenchmarkPickPolicy is the cost of one Pick+Done per policy on 8 backends, with a
// 4 KiB chat prompt drawn from 64 conversations sharing 8 system prompts (so cache_aware
// sees warm and cold requests), serially so Redis round trips are not hidden by
// parallelism. cache_aware runs with its local index and with state.PrefixIndex on a
// local redis-server.
//
//	go test -run '^$' -bench PickPolicy -benchtime 3000x -count 5 ./routing/
func BenchmarkPickPolicy(b *testing.B) {
	prompts := make([]string, 64)
	for i := range prompts {
		prompts[i] = chat(words(uint64(i%8), 900), words(uint64(100+i), 100))
	}
	cfg := Config{}
	for i := range 8 {
		cfg.Backends = append(cfg.Backends, BackendConfig{URL: fmt.Sprintf("http://10.0.0.%d:8000", i+1), Models: []string{"m"}})
	}
	run := func(b *testing.B, cfg Config, opts ...Option) {
		r, err := New(cfg, nil, nil, opts...)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			pk, err := r.Pick(b.Context(), &Request{Model: "m", Prompt: prompts[i%len(prompts)]})
			if err != nil {
				b.Fatal(err)
			}
			pk.Done(Outcome{Status: 200})
			i++
		}
	}
	for _, name := range PolicyNames() {
		b.Run(name, func(b *testing.B) {
			c := cfg
			c.Policy = name
			run(b, c)
		})
	}
	b.Run("cache_aware-redis", func(b *testing.B) {
		u, err := state.ParseURL(statetest.StartRedis(b).URL)
		if err != nil {
			b.Fatal(err)
		}
		st, err := state.Open(b.Context(), u, state.Config{ReplicaID: "bench"}, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = st.Close() })
		deadline := time.Now().Add(5 * time.Second)
		for !st.Connected() && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if !st.Connected() {
			b.Fatal("not connected to redis")
		}
		run(b, cfg, WithPrefixIndex(st.Prefix()))
	})
}
