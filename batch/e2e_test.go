package batch

import (
	"net/http"
	"testing"
	"time"

	"github.com/vllm-proxy/vllm-proxy/sim"
)

// TestBatchHappyPath is checklist 10: N lines → in_progress → finalizing → completed,
// monotone timestamps, counts {N,N,0}, each custom_id once with status 200, summed usage.
func TestBatchHappyPath(t *testing.T) {
	for _, mode := range []string{"memory", "redis"} {
		t.Run(mode, func(t *testing.T) {
			s := memoryStores()
			if mode == "redis" {
				s = redisStores(t, statetestRedis(t).URL, "r1")
			}
			sm := startSim(t, sim.Config{Instant: true})
			d := newHTTPDispatcher(sm.URL())
			r := startReplica(t, testConfig("r1"), s, d, true)
			const n = 50
			f := upload(t, r.srv.URL, chatLines(n, "m1", 5))
			b := createBatch(t, r.srv.URL, f.ID, "/v1/chat/completions")
			if b.Status != "validating" || b.ExpiresAt == nil || *b.ExpiresAt != b.CreatedAt+86400 || b.RequestCounts != (requestCounts{}) || b.Metadata["k"] != "v" {
				t.Fatalf("created batch %+v", b)
			}
			b = waitBatch(t, r.srv.URL, b.ID, 20*time.Second, terminal)
			if b.Status != "completed" || b.RequestCounts != (requestCounts{Total: n, Completed: n}) {
				t.Fatalf("final batch %s counts %+v", b.Status, b.RequestCounts)
			}
			if b.InProgressAt == nil || b.FinalizingAt == nil || b.CompletedAt == nil ||
				b.CreatedAt > *b.InProgressAt || *b.InProgressAt > *b.FinalizingAt || *b.FinalizingAt > *b.CompletedAt {
				t.Fatalf("timestamps %+v", b)
			}
			if b.Model == nil || *b.Model != "m1" || b.ErrorFileID != nil || b.OutputFileID == nil {
				t.Fatalf("model/files %+v", b)
			}
			if calls := d.calls.Load(); calls != n { // no crash, so no line runs twice
				t.Fatalf("%d dispatches for %d lines", calls, n)
			}
			res := allResults(t, r.srv.URL, b)
			if len(res) != n {
				t.Fatalf("%d results, want %d", len(res), n)
			}
			for id, o := range res {
				if o.Response == nil || o.Response.StatusCode != http.StatusOK || o.Error != nil {
					t.Fatalf("%s: %+v", id, o)
				}
			}
			if b.Usage == nil || b.Usage.OutputTokens != 5*n || b.Usage.InputTokens == 0 || b.Usage.TotalTokens != b.Usage.InputTokens+b.Usage.OutputTokens {
				t.Fatalf("usage %+v", b.Usage)
			}
		})
	}
}
