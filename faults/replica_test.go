package faults

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/vllm-proxy/vllm-proxy/sim"
	"github.com/vllm-proxy/vllm-proxy/state/statetest"
)

// TestReplicaKilledMidBatch: batch workers run in two processes sharing one Redis, and
// one of them is SIGKILLed while the batch is in progress, in two layouts: two full
// `serve` replicas (A is killed), and an API-only replica (`serve --batch-workers=false`)
// with two `worker` processes (worker A is killed). Expected: the surviving worker takes
// over A's abandoned chunks once their leases lapse (15 s) and finishes the batch:
// status completed, request_counts exactly {total N, completed N, failed 0}, the output
// file has every custom_id exactly once with status 200 (lines lost = 0, duplicates =
// 0), and the API answered throughout.
func TestReplicaKilledMidBatch(t *testing.T) {
	t.Parallel()
	for _, layout := range []string{"serve_replicas", "api_and_workers"} {
		t.Run(layout, func(t *testing.T) {
			t.Parallel()
			replicaKilledMidBatch(t, layout == "api_and_workers")
		})
	}
}

func replicaKilledMidBatch(t *testing.T, workers bool) {
	rd := statetest.StartRedis(t)
	b1 := startSim(t, sim.Config{DecodeStepMs: 10})
	b2 := startSim(t, sim.Config{DecodeStepMs: 10})
	cfg := proxyConfig{Backends: []string{b1.URL(), b2.URL()}}
	flags := []string{"--batch-max-concurrent-requests", "16"}
	var a, api *proc
	if workers {
		api, _ = startProxy(t, "api", cfg, rd.URL, []string{"--batch-workers=false"}, procOpts{})
		a, _ = startStack(t, "worker", "worker-a", cfg, rd.URL, flags, procOpts{})
		startStack(t, "worker", "worker-b", cfg, rd.URL, flags, procOpts{})
	} else {
		a, _ = startProxy(t, "replica-a", cfg, rd.URL, flags, procOpts{})
		api, _ = startProxy(t, "replica-b", cfg, rd.URL, flags, procOpts{})
	}
	c := newClient(t)

	n := scale(600, 3000)
	fileID := mustUpload(t, c, api.URL, batchInput(n, 16))
	job := createBatch(t, c, api.URL, fileID)
	var atKill batchObj
	if !poll(60*time.Second, func() bool {
		atKill, _ = getBatch(t, c, api.URL, job.ID)
		return atKill.RequestCounts.Completed >= int64(n/10)
	}) {
		t.Fatalf("batch made no progress: %+v", atKill)
	}
	killedAt := time.Now()
	a.Kill()

	var final batchObj
	if !poll(90*time.Second, func() bool {
		var ok bool
		final, ok = getBatch(t, c, api.URL, job.ID)
		if !ok {
			t.Errorf("the API failed while the other worker took over")
		}
		return final.Status == "completed" || final.Status == "failed" || final.Status == "expired"
	}) {
		t.Fatalf("batch not finished 90s after the kill: %+v", final)
	}
	recovered := time.Since(killedAt)
	if final.Status != "completed" {
		t.Fatalf("batch ended %q: %+v", final.Status, final)
	}
	rc := final.RequestCounts
	if rc.Total != int64(n) || rc.Completed != int64(n) || rc.Failed != 0 {
		t.Errorf("request_counts %+v, want total=completed=%d failed=0", rc, n)
	}
	if final.OutputFileID == nil {
		t.Fatalf("completed batch without an output file")
	}
	lines := checkOutput(t, fileContent(t, c, api.URL, *final.OutputFileID), n)
	executed := served(b1) + served(b2)
	result(t, "lines=%d killed at completed=%d; finished %s after the kill; output lines=%d (lost %d, duplicates %d); backend executions=%d (re-executed %d)",
		n, atKill.RequestCounts.Completed, recovered.Round(100*time.Millisecond), lines, max(0, n-lines), max(0, lines-n), executed, executed-int64(n))
}

// TestReplicaKilledMidStream: a client streams through replica A when A is SIGKILLed.
// Expected: the client's read fails promptly (within 2 s of the kill) with a
// connection error instead of hanging, and a new stream through replica B, on the same
// backend, completes.
func TestReplicaKilledMidStream(t *testing.T) {
	t.Parallel()
	be := startSim(t, sim.Config{DecodeStepMs: 20})
	cfg := proxyConfig{Backends: []string{be.URL()}}
	a, _ := startProxy(t, "replica-a", cfg, "", nil, procOpts{})
	b, _ := startProxy(t, "replica-b", cfg, "", nil, procOpts{})
	c := newClient(t)

	killed := make(chan time.Time, 1)
	res := streamChat(t.Context(), c, a.URL, chatBody(1, 500, true), func(n int) {
		if n == 5 {
			killed <- time.Now()
			a.Kill()
		}
	})
	var at time.Time
	select {
	case at = <-killed:
	default:
		t.Fatalf("stream ended before 5 chunks: %+v", res)
	}
	cutAfter := time.Since(at)
	if !res.Cut() || res.Err == nil {
		t.Errorf("stream through the killed replica: want a read error, got done=%t err=%v error event %q", res.Done, res.Err, res.ErrEvent)
	}
	if errors.Is(res.Err, context.DeadlineExceeded) || cutAfter > 2*time.Second {
		t.Errorf("the client saw the cut %s after the kill", cutAfter)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if r := streamChat(ctx, c, b.URL, chatBody(2, 20, true), nil); !r.Clean() {
		t.Errorf("stream through replica B after A died: %+v", r)
	}
	result(t, "client saw %v %s after the SIGKILL was sent, after %d chunks; replica B streamed cleanly", res.Err, cutAfter.Round(time.Millisecond), res.Chunks)
}
