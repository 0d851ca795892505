package routing

import (
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/vllm-proxy/vllm-proxy/state"
	"github.com/vllm-proxy/vllm-proxy/state/statetest"
)

// distinctPrompt is the canonical prompt of line i of scripts/benchbatch's chat batch:
// one of 8 short system prompts, then a ~4 KB user message that starts with the line
// number, so every prompt differs from its first block on.
func distinctPrompt(i int) string {
	words := []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"}
	var b strings.Builder
	b.WriteString("<|system|>\nYou are assistant " + strconv.Itoa(i%8) + ".\n<|user|>\nquestion " + strconv.Itoa(i))
	for j := 0; b.Len() < 4000; j++ {
		b.WriteString(" " + words[(i+j)%len(words)])
	}
	b.WriteString("\n")
	return b.String()
}

// redisMemory is INFO memory's used_memory.
func redisMemory(tb testing.TB, c *redis.Client) int64 {
	tb.Helper()
	s, err := c.Info(tb.Context(), "memory").Result()
	if err != nil {
		tb.Fatal(err)
	}
	for line := range strings.SplitSeq(s, "\r\n") {
		if rest, ok := strings.CutPrefix(line, "used_memory:"); ok {
			n, _ := strconv.ParseInt(rest, 10, 64)
			return n
		}
	}
	tb.Fatalf("no used_memory in %q", s)
	return 0
}

// dbSize is the number of keys in r's database.
func dbSize(tb testing.TB, c *redis.Client) int64 {
	tb.Helper()
	n, err := c.DBSize(tb.Context()).Result()
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// redisClient is a go-redis client of r, closed with tb.
func redisClient(tb testing.TB, r *statetest.Redis) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: r.Addr, Password: r.Password})
	tb.Cleanup(func() { _ = c.Close() })
	return c
}

// settle waits until Redis stops gaining keys (the background writer drained its queue).
func settle(tb testing.TB, r *redis.Client) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	last, stable := int64(-1), 0
	for stable < 3 {
		if time.Now().After(deadline) {
			tb.Fatal("redis key count did not settle")
		}
		n := dbSize(tb, r)
		if n == last {
			stable++
		} else {
			stable = 0
		}
		last = n
		time.Sleep(20 * time.Millisecond)
	}
}

// distinctRun is the outcome of routing n distinct long prompts through a cache_aware
// router on a Redis-backed state.Store.
type distinctRun struct {
	heapBytes  int64 // live heap growth after the run (after GC)
	redisBytes int64 // used_memory growth
	keys       int64 // keys in Redis
	dropped    float64
	store      *state.Store
}

// runDistinct picks n distinct ~4 KB prompts on a 2-backend cache_aware router backed by
// a fresh redis-server, pausing every 500 picks until the writer has drained its queue
// (so no record is dropped), and measures heap and Redis growth.
func runDistinct(tb testing.TB, n int, ca CacheAwareConfig, sc state.Config) distinctRun {
	tb.Helper()
	srv := statetest.StartRedis(tb)
	rd := redisClient(tb, srv)
	u, err := state.ParseURL(srv.URL)
	if err != nil {
		tb.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	sc.ReplicaID = "mem"
	st, err := state.Open(tb.Context(), u, sc, nil, reg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = st.Close() })
	for deadline := time.Now().Add(5 * time.Second); !st.Connected(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			tb.Fatal("not connected to redis")
		}
	}
	cfg := Config{CacheAware: ca}
	for i := range 2 {
		cfg.Backends = append(cfg.Backends, BackendConfig{URL: fmt.Sprintf("http://10.0.0.%d:8000", i+1), Models: []string{"m"}})
	}
	r, err := New(cfg, nil, nil, WithPrefixIndex(st.Prefix()))
	if err != nil {
		tb.Fatal(err)
	}
	settle(tb, rd)
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	heap0, redis0 := int64(ms.HeapAlloc), redisMemory(tb, rd)
	for i := range n {
		pk, err := r.Pick(tb.Context(), &Request{Model: "m", Prompt: distinctPrompt(i)})
		if err != nil {
			tb.Fatal(err)
		}
		pk.Done(Outcome{Status: 200})
		if i%500 == 499 {
			settle(tb, rd)
		}
	}
	settle(tb, rd)
	runtime.GC()
	runtime.ReadMemStats(&ms)
	run := distinctRun{heapBytes: int64(ms.HeapAlloc) - heap0, redisBytes: redisMemory(tb, rd) - redis0,
		keys: dbSize(tb, rd), store: st}
	if mfs, err := reg.Gather(); err == nil {
		for _, mf := range mfs {
			if mf.GetName() == "vllm_proxy_state_prefix_records_dropped_total" {
				run.dropped = mf.GetMetric()[0].GetCounter().GetValue()
			}
		}
	}
	runtime.KeepAlive(r)
	return run
}

// BenchmarkDistinctPromptsMemory measures what the prefix index keeps for N distinct
// ~4 KB chat prompts (scripts/bench-batch.sh big's shape): live Go heap growth of the
// replica, blocks in its local cache (held outside the Go heap, ≤ state.CacheBytesPerBlock
// bytes each), Redis used_memory growth and keys per request.
//
//	go test -run '^$' -bench DistinctPromptsMemory -benchtime 1x -count 3 ./routing/
func BenchmarkDistinctPromptsMemory(b *testing.B) {
	for _, n := range []int{20_000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			var run distinctRun
			for b.Loop() {
				run = runDistinct(b, n, CacheAwareConfig{}, state.Config{})
			}
			b.ReportMetric(float64(run.heapBytes)/(1<<20), "heap-MiB")
			b.ReportMetric(float64(run.redisBytes)/(1<<20), "redis-MiB")
			b.ReportMetric(float64(run.keys)/float64(n), "keys/req")
			b.ReportMetric(float64(run.redisBytes)/float64(n), "redis-B/req")
			b.ReportMetric(run.dropped, "dropped")
			b.ReportMetric(float64(run.store.Prefix().CachedBlocks()), "cache-blocks")
		})
	}
}
