package batch

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vllm-proxy/vllm-proxy/sim"
	"github.com/vllm-proxy/vllm-proxy/state"
	"github.com/vllm-proxy/vllm-proxy/state/statetest"
)

// TestReplicaCrashTakeover runs two replicas on one Redis. Replica A works alone until it
// has recorded some lines and holds chunks with lines in flight, then it is abandoned
// (its context cancelled: no acks, no lease release, no final flush — as close to kill -9
// as one process allows). Replica B takes the lapsed chunks over; the files hold every
// custom_id exactly once and request_counts are exact. The batch is created through A's
// API and polled and downloaded through B's (checklist 18).
func TestReplicaCrashTakeover(t *testing.T) {
	rs := statetestRedis(t)
	sm := startSim(t, sim.Config{Instant: true})
	cfgA, cfgB := testConfig("a"), testConfig("b")
	const n = 300
	// A lets 40 lines through, then holds every later line in flight until it dies.
	gate := &gatedDispatcher{inner: newHTTPDispatcher(sm.URL()), free: 40, release: make(chan struct{})}
	ctxA, crashA := context.WithCancel(t.Context())
	storesA := redisStores(t, rs.URL, "a")
	a := startReplicaCtx(t, ctxA, cfgA, storesA, gate, true)
	f := upload(t, a.srv.URL, chatLines(n, "m1", 5))
	b := createBatch(t, a.srv.URL, f.ID, chatURL)
	// Under load a lapsed lease can make A re-execute a line, spending a pass of the gate,
	// so wait for most of the 40, not all.
	waitBatch(t, a.srv.URL, b.ID, 10*time.Second, func(b batchObject) bool { return b.RequestCounts.Completed >= 30 })
	crashA()
	crashed := time.Now()
	// A also died between writing a result part and committing it (the collector's
	// order: stage the name, write the blobs, commit): that part must not outlive the batch.
	orphan := "part-" + b.ID + "-0-dead00"
	if err := storesA.jobs.StagePart(t.Context(), b.ID, orphan); err != nil {
		t.Fatal(err)
	}
	if _, err := storesA.blobs.Put(t.Context(), partBlobs(orphan)[0], strings.NewReader("{}\n"), -1); err != nil {
		t.Fatal(err)
	}

	dB := newHTTPDispatcher(sm.URL())
	rb := startReplica(t, cfgB, redisStores(t, rs.URL, "b"), dB, true)
	final := waitBatch(t, rb.srv.URL, b.ID, 30*time.Second, terminal)
	resumed := time.Since(crashed)
	if final.Status != "completed" || final.RequestCounts != (requestCounts{Total: n, Completed: n}) {
		t.Fatalf("after takeover: %s %+v", final.Status, final.RequestCounts)
	}
	checkAll(t, allResults(t, rb.srv.URL, final), n)
	// Same answers through either replica's API.
	if fromA := getBatch(t, a.srv.URL, b.ID); fromA.Status != final.Status || fromA.RequestCounts != final.RequestCounts || *fromA.OutputFileID != *final.OutputFileID {
		t.Fatalf("replica A sees %+v", fromA)
	}
	if !bytes.Equal(content(t, a.srv.URL, *final.OutputFileID), content(t, rb.srv.URL, *final.OutputFileID)) {
		t.Fatal("output differs between replicas")
	}
	reclaimed := testutil.ToFloat64(rb.b.Metrics.chunkClaims.WithLabelValues("reclaimed"))
	if reclaimed == 0 {
		t.Fatal("replica B reclaimed no chunk")
	}
	// Re-executed lines: B executed n-40 lines at least; anything beyond that was lost with
	// A: at most its lines in flight plus one chunk of finished, uncommitted results.
	reexec := dB.calls.Load() - (n - 40)
	if maxLost := int64(cfgA.MaxConcurrentRequests + cfgA.ChunkLines); reexec < 0 || reexec > maxLost {
		t.Fatalf("B executed %d lines for %d remaining", dB.calls.Load(), n-40)
	}
	t.Logf("takeover: %v reclaimed chunks, %d lines re-executed, batch done %v after the crash (lease %v)",
		reclaimed, reexec, resumed.Round(time.Millisecond), cfgA.LeaseTTL)
	waitNoPartBlobs(t, rs, b.ID) // the uncommitted part included
}

// TestRedisRestartMidBatch restarts an AOF-persisted Redis (kill -9, then start on the same
// data) while lines are in flight; the batch still completes with exact results.
func TestRedisRestartMidBatch(t *testing.T) {
	rs := statetestRedis(t, statetest.Options{AppendOnly: true})
	sm := startSim(t, sim.Config{Instant: true})
	gate := &gatedDispatcher{inner: newHTTPDispatcher(sm.URL()), free: 30, release: make(chan struct{})}
	r := startReplica(t, testConfig("r1"), redisStores(t, rs.URL, "r1"), gate, true)
	const n = 120
	f := upload(t, r.srv.URL, chatLines(n, "m1", 5))
	b := createBatch(t, r.srv.URL, f.ID, chatURL)
	created := time.Now()
	waitBatch(t, r.srv.URL, b.ID, 10*time.Second, func(b batchObject) bool { return b.RequestCounts.Completed == 30 })
	// appendfsync everysec may lose the last second of writes; the batch must be older
	// than that horizon (anything newer may be re-executed, never lost or duplicated).
	for time.Since(created) < 1100*time.Millisecond {
		time.Sleep(20 * time.Millisecond)
	}
	rs.Restart()
	close(gate.release)
	final := waitBatch(t, r.srv.URL, b.ID, 30*time.Second, terminal)
	if final.Status != "completed" || final.RequestCounts != (requestCounts{Total: n, Completed: n}) {
		t.Fatalf("after restart: %s %+v", final.Status, final.RequestCounts)
	}
	checkAll(t, allResults(t, r.srv.URL, final), n)
	waitNoPartBlobs(t, rs, b.ID) // commits cut by the restart left no orphan part
}

// TestCrossReplicaCancel: create on A, cancel through B, watch through A.
func TestCrossReplicaCancel(t *testing.T) {
	rs := statetestRedis(t)
	sm := startSim(t, sim.Config{Instant: true})
	gate := &gatedDispatcher{inner: newHTTPDispatcher(sm.URL()), free: 5, release: make(chan struct{})}
	a := startReplica(t, testConfig("a"), redisStores(t, rs.URL, "a"), gate, true)
	rb := startReplica(t, testConfig("b"), redisStores(t, rs.URL, "b"), nil, false) // API only
	f := upload(t, a.srv.URL, chatLines(50, "m1", 5))
	b := createBatch(t, a.srv.URL, f.ID, chatURL)
	waitBatch(t, rb.srv.URL, b.ID, 10*time.Second, func(b batchObject) bool { return b.RequestCounts.Completed == 5 })
	var c batchObject
	if st := do(t, http.MethodPost, rb.srv.URL+"/v1/batches/"+b.ID+"/cancel", nil, "", &c); st != 200 || c.Status != "cancelling" {
		t.Fatalf("cancel via B: %d %s", st, c.Status)
	}
	close(gate.release)
	final := waitBatch(t, a.srv.URL, b.ID, 10*time.Second, terminal)
	if final.Status != "cancelled" {
		t.Fatalf("status %s", final.Status)
	}
	resA, resB := allResults(t, a.srv.URL, final), allResults(t, rb.srv.URL, final)
	checkAll(t, resA, 50)
	if len(resA) != len(resB) {
		t.Fatal("replicas serve different results")
	}
}

// waitNoPartBlobs polls until Redis holds no result part blob (and, when batch is set, no
// work key of that batch).
func waitNoPartBlobs(t *testing.T, rs *statetest.Redis, batch string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		parts, _ := rs.Do("EVAL", "return #redis.call('KEYS', 'blob:{part-*')", "0")
		work := ":0"
		if batch != "" {
			work, _ = rs.Do("EVAL", "return #redis.call('KEYS', ARGV[1])", "0", "batch:{"+batch+"}:*")
		}
		if parts == ":0" && work == ":0" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("part blob keys %s, work keys %s left", parts, work)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// flakyDeleteBlobs fails the first n deletions of result parts.
type flakyDeleteBlobs struct {
	BlobStore
	fails atomic.Int64
}

func (f *flakyDeleteBlobs) Delete(ctx context.Context, id string) error {
	if strings.HasPrefix(id, "part-") && f.fails.Add(-1) >= 0 {
		return errors.New("injected delete failure")
	}
	return f.BlobStore.Delete(ctx, id)
}

// TestPartsPurgedAfterFinalizerFailure: when the finalizer cannot delete the result parts
// after writing the files, the batch stays in the active set and a later pass deletes the
// parts and then the work keys: no part blob outlives its batch.
func TestPartsPurgedAfterFinalizerFailure(t *testing.T) {
	rs := statetestRedis(t)
	sm := startSim(t, sim.Config{Instant: true})
	s := redisStores(t, rs.URL, "r1")
	fb := &flakyDeleteBlobs{BlobStore: s.blobs}
	fb.fails.Store(2)
	s.blobs = fb
	r := startReplica(t, testConfig("r1"), s, newHTTPDispatcher(sm.URL()), true)
	f := upload(t, r.srv.URL, chatLines(40, "m1", 5))
	b := waitBatch(t, r.srv.URL, createBatch(t, r.srv.URL, f.ID, chatURL).ID, 20*time.Second, terminal)
	if b.Status != "completed" {
		t.Fatalf("batch %s", b.Status)
	}
	checkAll(t, allResults(t, r.srv.URL, b), 40)
	waitNoPartBlobs(t, rs, b.ID)
	if fb.fails.Load() >= 0 {
		t.Fatal("no part deletion failed")
	}
}

// lossyCommitJobs fails some CommitLines calls: before the commit (it never happened) or
// after it (the reply was lost), as a Redis restart may.
type lossyCommitJobs struct {
	state.JobStore
	n     atomic.Int64
	after bool
}

func (l *lossyCommitJobs) CommitLines(ctx context.Context, id string, p state.LinePart) ([]int64, error) {
	fail := l.n.Add(1)%3 == 1
	if fail && !l.after {
		return nil, errors.New("injected: connection reset before the commit")
	}
	dups, err := l.JobStore.CommitLines(ctx, id, p)
	if fail && err == nil {
		return nil, errors.New("injected: reply lost after the commit")
	}
	return dups, err
}

// TestAmbiguousCommitFailures: commits that fail before or after taking effect are retried
// with the same part; every line is recorded once and no part blob is left behind.
func TestAmbiguousCommitFailures(t *testing.T) {
	sm := startSim(t, sim.Config{Instant: true})
	for _, after := range []bool{false, true} {
		t.Run(map[bool]string{false: "before", true: "after"}[after], func(t *testing.T) {
			rs := statetestRedis(t)
			s := redisStores(t, rs.URL, "r1")
			lj := &lossyCommitJobs{JobStore: s.jobs, after: after}
			s.jobs = lj
			// A lease that lapses on a loaded machine makes the replica redo a chunk and leave
			// the lapsed attempt's uncommitted part behind, which is not what this test is
			// about: give the lease room.
			cfg := testConfig("r1")
			cfg.LeaseTTL = 5 * time.Second
			r := startReplica(t, cfg, s, newHTTPDispatcher(sm.URL()), true)
			f := upload(t, r.srv.URL, chatLines(60, "m1", 5))
			b := waitBatch(t, r.srv.URL, createBatch(t, r.srv.URL, f.ID, chatURL).ID, 30*time.Second, terminal)
			if b.Status != "completed" || b.RequestCounts != (requestCounts{Total: 60, Completed: 60}) || lj.n.Load() < 3 {
				t.Fatalf("batch %s %+v after %d commits", b.Status, b.RequestCounts, lj.n.Load())
			}
			checkAll(t, allResults(t, r.srv.URL, b), 60)
			waitNoPartBlobs(t, rs, b.ID)
		})
	}
}
