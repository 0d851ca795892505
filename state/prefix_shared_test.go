package state_test

import (
	"maps"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/vllm-proxy/vllm-proxy/state/statetest"
)

// TestRecordSharedWritesOnlyTheSharedPart: RecordShared keeps the whole chain in the
// recording replica's cache but writes only the shared blocks to Redis, one key each, so
// another replica sees the shared depth.
func TestRecordSharedWritesOnlyTheSharedPart(t *testing.T) {
	srv := statetest.StartRedis(t)
	a := open(t, srv.URL, fastConfig("a"), nil, nil)
	b := open(t, srv.URL, fastConfig("b"), nil, nil)
	eventually(t, 5*time.Second, "both connected", func() bool { return a.Connected() && b.Connected() })
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr, Password: srv.Password})
	t.Cleanup(func() { _ = rc.Close() })
	chain := make([]uint64, 64)
	for i := range chain {
		chain[i] = uint64(1000 + i)
	}
	a.Prefix().RecordShared("b1", chain, 3)
	if got := a.Prefix().Lookup(t.Context(), chain); !maps.Equal(got, map[string]int{"b1": 64}) {
		t.Fatalf("recording replica: Lookup = %v, want b1:64", got)
	}
	eventually(t, 5*time.Second, "b to see the shared blocks", func() bool {
		return maps.Equal(b.Prefix().Lookup(t.Context(), chain), map[string]int{"b1": 3})
	})
	keys, err := rc.Keys(t.Context(), "prefix:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 3 {
		t.Fatalf("redis holds %d prefix keys, want 3: %v", len(keys), keys)
	}
	// A deeper share later extends what Redis knows.
	a.Prefix().RecordShared("b2", chain, 64)
	eventually(t, 5*time.Second, "b to see the deeper share", func() bool {
		return b.Prefix().Lookup(t.Context(), chain)["b2"] == 64
	})
	if a.Prefix().CachedBlocks() != 64 {
		t.Fatalf("local cache holds %d blocks, want 64", a.Prefix().CachedBlocks())
	}
}
