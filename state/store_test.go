package state_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/vllm-proxy/vllm-proxy/state"
	"github.com/vllm-proxy/vllm-proxy/state/statetest"
)

func TestOpenMemory(t *testing.T) {
	s := open(t, "memory", state.Config{}, nil, nil)
	if !s.Memory() || !s.Connected() {
		t.Fatalf("memory store: Memory()=%v Connected()=%v, want true true", s.Memory(), s.Connected())
	}
	if s.ReplicaID() == "" {
		t.Fatal("default replica id is empty")
	}
}

func TestOpenConnectsLazilyAndReportsHealth(t *testing.T) {
	r := statetest.StartRedis(t, statetest.Options{Password: "s3cr3t-pw"})
	var logs logBuffer
	reg := prometheus.NewRegistry()
	s := open(t, r.URL, fastConfig("a"), logs.logger(), reg)
	if s.Memory() {
		t.Fatal("redis store says Memory()")
	}
	eventually(t, 5*time.Second, "Connected()", s.Connected)
	if got := metricValue(t, reg, "vllm_proxy_redis_connected"); got != 1 {
		t.Fatalf("vllm_proxy_redis_connected = %v, want 1", got)
	}
	if n, err := testutil.GatherAndCount(reg, "vllm_proxy_redis_command_duration_seconds"); err != nil || n == 0 {
		t.Fatalf("no command latency series (n=%d, err=%v)", n, err)
	}
	if strings.Contains(logs.String(), "s3cr3t-pw") {
		t.Fatalf("password in logs:\n%s", logs.String())
	}
	// On a loaded machine the first probe may time out; then the reconnect line shows.
	if !strings.Contains(logs.String(), "redis connected") && !strings.Contains(logs.String(), "redis reachable again") {
		t.Fatalf("no connect log:\n%s", logs.String())
	}
}

func TestOpenWithRedisDownStartsAndConnectsLater(t *testing.T) {
	r := statetest.StartRedis(t, statetest.Options{Password: "pw-never-logged"})
	r.Kill()
	var logs logBuffer
	s := open(t, r.URL, fastConfig("a"), logs.logger(), nil)
	eventually(t, 5*time.Second, "the unavailable warning", func() bool {
		return logs.count("redis unavailable") == 1
	})
	if s.Connected() {
		t.Fatal("Connected() with redis down")
	}
	r.Restart()
	eventually(t, 5*time.Second, "Connected() after redis started", s.Connected)
	if n := logs.count("redis unavailable"); n != 1 {
		t.Fatalf("%d unavailable warnings, want exactly 1:\n%s", n, logs.String())
	}
	if strings.Contains(logs.String(), "pw-never-logged") {
		t.Fatalf("password in logs:\n%s", logs.String())
	}
}

func TestOpenUnixSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "redis.sock")
	statetest.StartRedis(t, statetest.Options{Extra: []string{"--unixsocket", sock, "--unixsocketperm", "700"}})
	s := open(t, "unix://"+sock+"?db=3", fastConfig("a"), nil, nil)
	eventually(t, 5*time.Second, "Connected() over a unix socket", s.Connected)
}

func TestOpenRejectsBadConfig(t *testing.T) {
	u, _ := state.ParseURL("memory")
	_, err := state.Open(t.Context(), u, state.Config{HeartbeatInterval: time.Second, InFlightLease: time.Second, LookupBudget: -1}, nil, nil)
	if err == nil {
		t.Fatal("Open accepted a lease shorter than two heartbeats and a negative budget")
	}
	for _, want := range []string{"in-flight lease", "lookup budget"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestCloseIsIdempotent(t *testing.T) {
	u, _ := state.ParseURL("redis://127.0.0.1:1/0")
	s, err := state.Open(t.Context(), u, fastConfig("a"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("first Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
