package faults

import (
	"testing"
	"time"

	"github.com/vllm-proxy/vllm-proxy/sim"
	"github.com/vllm-proxy/vllm-proxy/state/statetest"
)

// TestRedisKilledMidBatch: a batch runs on one replica whose Redis (AOF on, fsync every
// second, as a production Redis holding batches should run) is SIGKILLed mid-batch and
// restarted 1 s later. Expected: the batch still completes with request_counts exactly
// {N, N, 0} and every custom_id exactly once in the output (lines lost 0, duplicates 0);
// the time from the restart to completion is recorded.
func TestRedisKilledMidBatch(t *testing.T) {
	t.Parallel()
	rd := statetest.StartRedis(t, statetest.Options{AppendOnly: true})
	b1 := startSim(t, sim.Config{DecodeStepMs: 10})
	b2 := startSim(t, sim.Config{DecodeStepMs: 10})
	px, _ := startProxy(t, "proxy", proxyConfig{Backends: []string{b1.URL(), b2.URL()}}, rd.URL,
		[]string{"--batch-max-concurrent-requests", "16"}, procOpts{})
	c := newClient(t)

	n := scale(400, 2000)
	job := createBatch(t, c, px.URL, mustUpload(t, c, px.URL, batchInput(n, 16)))
	var atKill batchObj
	if !poll(60*time.Second, func() bool {
		atKill, _ = getBatch(t, c, px.URL, job.ID)
		return atKill.RequestCounts.Completed >= int64(n/4)
	}) {
		t.Fatalf("batch made no progress: %+v", atKill)
	}
	rd.Kill()
	time.Sleep(time.Second)
	rd.Restart()
	restarted := time.Now()

	var final batchObj
	if !poll(90*time.Second, func() bool {
		final, _ = getBatch(t, c, px.URL, job.ID)
		return final.Status == "completed" || final.Status == "failed" || final.Status == "expired"
	}) {
		t.Fatalf("batch not finished 90s after Redis came back: %+v", final)
	}
	took := time.Since(restarted)
	if final.Status != "completed" || final.OutputFileID == nil {
		t.Fatalf("batch ended %+v", final)
	}
	rc := final.RequestCounts
	if rc.Total != int64(n) || rc.Completed != int64(n) || rc.Failed != 0 {
		t.Errorf("request_counts %+v, want total=completed=%d failed=0", rc, n)
	}
	lines := checkOutput(t, fileContent(t, c, px.URL, *final.OutputFileID), n)
	result(t, "lines=%d, Redis killed at completed=%d, down 1s; completed %s after the restart; output lines=%d",
		n, atKill.RequestCounts.Completed, took.Round(100*time.Millisecond), lines)
}
