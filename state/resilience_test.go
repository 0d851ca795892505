package state_test

import (
	"bufio"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vllm-proxy/vllm-proxy/state"
	"github.com/vllm-proxy/vllm-proxy/state/statetest"
)

// load runs lookups, records and in-flight changes on s from two goroutines until stop is
// called, counting lookups that did not find the recorded chain.
type load struct {
	stop    func()
	lookups atomic.Int64
	misses  atomic.Int64
}

func startLoad(t *testing.T, s *state.Store, chain []uint64, backend string) *load {
	t.Helper()
	l := &load{}
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				s.InFlight().Add(backend, "interactive", 1)
				if s.Prefix().Lookup(t.Context(), chain)[backend] != len(chain) {
					l.misses.Add(1)
				}
				l.lookups.Add(1)
				s.Prefix().Record(backend, chain)
				s.InFlight().Add(backend, "interactive", -1)
			}
		})
	}
	var once sync.Once
	l.stop = func() { once.Do(func() { close(done); wg.Wait() }) }
	t.Cleanup(l.stop)
	return l
}

func TestRedisKilledServingContinuesAndResyncs(t *testing.T) {
	r := statetest.StartRedis(t)
	var logs logBuffer
	a := open(t, r.URL, fastConfig("a"), logs.logger(), nil)
	eventually(t, 5*time.Second, "a connected", a.Connected)
	chain := hashes(t, 16)
	a.Prefix().Record("b1", chain)
	a.InFlight().Add("b1", "interactive", 4)
	ld := startLoad(t, a, chain, "b1")

	r.Kill()
	eventually(t, 5*time.Second, "a to notice redis is gone", func() bool { return !a.Connected() })
	before := ld.lookups.Load()
	eventually(t, 5*time.Second, "lookups to continue while redis is down", func() bool {
		return ld.lookups.Load() > before+100
	})
	if got := a.InFlight().InFlight("b1", "interactive"); got < 4 {
		t.Fatalf("local in-flight lost while redis is down: %d, want ≥ 4", got)
	}

	r.Restart() // no persistence: the restarted server is empty
	eventually(t, 10*time.Second, "a to reconnect", a.Connected)
	ld.stop()
	if m := ld.misses.Load(); m != 0 {
		t.Fatalf("%d of %d lookups on a lost the locally known chain during the outage", m, ld.lookups.Load())
	}
	if n := logs.count("redis unavailable"); n != 1 {
		t.Fatalf("%d 'redis unavailable' warnings for one outage under load, want 1:\n%s", n, logs.String())
	}
	// A replica started after the restart learns a's state from Redis: a resynced.
	b := open(t, r.URL, fastConfig("b"), nil, nil)
	eventually(t, 10*time.Second, "b to see a's in-flight share and prefix ownership", func() bool {
		return b.InFlight().InFlight("b1", "interactive") == 4 &&
			b.Prefix().Lookup(t.Context(), chain)["b1"] == len(chain)
	})
}

func TestFlushAllLosesNothing(t *testing.T) {
	r := statetest.StartRedis(t)
	reg := prometheus.NewRegistry()
	a := open(t, r.URL, fastConfig("a"), nil, reg)
	b := open(t, r.URL, fastConfig("b"), nil, nil)
	eventually(t, 5*time.Second, "both connected", func() bool { return a.Connected() && b.Connected() })
	chain := hashes(t, 8)
	a.Prefix().Record("b1", chain)
	a.InFlight().Add("b1", "batch", 3)
	seen := func() bool {
		return b.InFlight().InFlight("b1", "batch") == 3 && b.Prefix().Lookup(t.Context(), chain)["b1"] == len(chain)
	}
	eventually(t, 5*time.Second, "b to see a's state", seen)
	ld := startLoad(t, a, chain, "b1")

	if reply, err := r.Do("FLUSHALL"); err != nil || reply != "+OK" {
		t.Fatalf("FLUSHALL: %q, %v", reply, err)
	}
	// b's local cache still knows the chain; a fresh replica only knows what is in Redis.
	c := open(t, r.URL, fastConfig("c"), nil, nil)
	eventually(t, 10*time.Second, "a fresh replica to see the rebuilt state after FLUSHALL", func() bool {
		return c.InFlight().InFlight("b1", "batch") == 3 && c.Prefix().Lookup(t.Context(), chain)["b1"] == len(chain)
	})
	ld.stop()
	if m := ld.misses.Load(); m != 0 {
		t.Fatalf("%d lookups on a missed the chain around FLUSHALL", m)
	}
	if got := metricValue(t, reg, "vllm_proxy_redis_resyncs_total"); got < 2 {
		t.Fatalf("resyncs_total = %v, want ≥ 2 (first connect and after FLUSHALL)", got)
	}
}

func TestSlowRedisLookupStaysWithinBudget(t *testing.T) {
	r := statetest.StartRedis(t, statetest.Options{Extra: []string{"--enable-debug-command", "yes"}})
	cfg := fastConfig("a")
	cfg.CommandTimeout = 5 * time.Second // keep the health probe from calling redis down
	cfg.LookupBudget = 5 * time.Millisecond
	reg := prometheus.NewRegistry()
	a := open(t, r.URL, cfg, nil, reg)
	eventually(t, 5*time.Second, "a connected", a.Connected)
	chain := hashes(t, 8)
	a.Prefix().Record("b1", chain)

	sleeping := make(chan error, 1)
	go func() {
		_, err := r.Do("DEBUG", "SLEEP", "1.5")
		sleeping <- err
	}()
	// Wait until Redis is actually asleep: a PING on another connection stalls.
	eventually(t, 5*time.Second, "redis to be asleep", func() bool { return asleep(t, r.Addr) })
	var worst time.Duration
	for range 20 {
		start := time.Now()
		got := a.Prefix().Lookup(t.Context(), chain)
		worst = max(worst, time.Since(start))
		if got["b1"] != len(chain) {
			t.Fatalf("lookup during DEBUG SLEEP = %v, want the locally known b1:%d", got, len(chain))
		}
	}
	// The budget is 5ms; Redis sleeps 1.5s. Allow scheduling noise on a loaded machine,
	// far below the sleep the lookup would otherwise wait out.
	if worst > 250*time.Millisecond {
		t.Fatalf("slowest lookup took %s with a 5ms budget", worst)
	}
	if got := metricValue(t, reg, "vllm_proxy_state_prefix_lookups_total", "source", "budget"); got == 0 {
		t.Fatal("no lookup was answered past the budget from the local cache")
	}
	if err := <-sleeping; err != nil {
		t.Fatalf("DEBUG SLEEP: %v", err)
	}
	eventually(t, 5*time.Second, "lookups to be answered by redis again", func() bool {
		before := metricValue(t, reg, "vllm_proxy_state_prefix_lookups_total", "source", "redis")
		a.Prefix().Lookup(t.Context(), chain)
		return metricValue(t, reg, "vllm_proxy_state_prefix_lookups_total", "source", "redis") > before
	})
}

// asleep reports whether redis at addr fails to answer PING within 50ms.
func asleep(t *testing.T, addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatalf("dialing %s: %v", addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return true
	}
	_, err = bufio.NewReader(c).ReadString('\n')
	return err != nil
}

// helperEnv names the environment variable that turns the test binary into a replica
// process for TestInFlightShareExpiresWhenReplicaDies.
const helperEnv = "VLLM_PXY_STATE_TEST_REPLICA_URL"

// TestHelperReplica is not a test: run with helperEnv set, it is a proxy replica that
// publishes 5 in-flight requests to backend "b1" until it is killed.
func TestHelperReplica(t *testing.T) {
	url := os.Getenv(helperEnv)
	if url == "" {
		t.Skip("helper process for TestInFlightShareExpiresWhenReplicaDies")
	}
	s := open(t, url, fastConfig("doomed"), nil, nil)
	s.InFlight().Add("b1", "interactive", 5)
	eventually(t, 10*time.Second, "connected", s.Connected)
	fmt.Println("ready")
	<-t.Context().Done() // until SIGKILL
}

func TestInFlightShareExpiresWhenReplicaDies(t *testing.T) {
	r := statetest.StartRedis(t)
	cfg := fastConfig("survivor")
	survivor := open(t, r.URL, cfg, nil, nil)
	survivor.InFlight().Add("b1", "interactive", 1)

	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperReplica$", "-test.v")
	cmd.Env = append(os.Environ(), helperEnv+"="+r.URL)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		found := false
		for sc.Scan() {
			if strings.TrimSpace(sc.Text()) == "ready" && !found {
				found = true
				ready <- true
			}
		}
		if !found {
			ready <- false
		}
	}()
	if !<-ready {
		t.Fatal("helper replica exited before it was ready")
	}
	eventually(t, 5*time.Second, "the survivor to count the other replica's 5", func() bool {
		return survivor.InFlight().InFlight("b1", "interactive") == 6
	})
	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no withdrawal, no goodbye
		t.Fatal(err)
	}
	killed := time.Now()
	eventually(t, 5*time.Second, "the dead replica's share to expire", func() bool {
		return survivor.InFlight().InFlight("b1", "interactive") == 1
	})
	// The lease is 300ms and the heartbeat 30ms: the share must be gone about a lease
	// after the kill, not at some unrelated timeout.
	if took := time.Since(killed); took > 3*time.Second {
		t.Fatalf("dead replica's share lingered %s with a %s lease", took, cfg.InFlightLease)
	}
	if reply, _ := r.Do("HLEN", "{inflight}:b1"); reply != ":1" {
		t.Fatalf("HLEN {inflight}:b1 = %s, want :1 (the dead replica's field deleted)", reply)
	}
}

func TestTwoReplicasEqualLookups(t *testing.T) {
	r := statetest.StartRedis(t)
	a := open(t, r.URL, fastConfig("a"), nil, nil)
	b := open(t, r.URL, fastConfig("b"), nil, nil)
	eventually(t, 5*time.Second, "both connected", func() bool { return a.Connected() && b.Connected() })
	chain := hashes(t, 32)
	a.Prefix().Record("x", chain[:20])
	b.Prefix().Record("y", chain[:7])
	want := map[string]int{"x": 20, "y": 7}
	eventually(t, 5*time.Second, "both replicas to agree", func() bool {
		return maps.Equal(a.Prefix().Lookup(t.Context(), chain), want) && maps.Equal(b.Prefix().Lookup(t.Context(), chain), want)
	})
}
