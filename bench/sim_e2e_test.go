package bench_test

import (
	"log/slog"
	"testing"

	"github.com/vllm-proxy/vllm-proxy/bench"
	"github.com/vllm-proxy/vllm-proxy/sim"
)

// TestAgainstSimulator drives the real simulator (time-scaled) with the shared-prefix
// workload and checks the client and engine views agree with each other and the oracle.
// It lives in package bench_test so that sim stays a test-only dependency of bench.
func TestAgainstSimulator(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	s, err := sim.Start(t.Context(), sim.Config{Model: "m", TimeScale: 20}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	rep, err := bench.Run(t.Context(), bench.Config{
		Targets:      []string{s.URL()},
		Model:        "m",
		Concurrency:  4,
		Requests:     40,
		WorkloadName: bench.WorkloadSharedPrefix,
		Params:       bench.Params{Groups: 2, SystemTokens: 256, Users: 2, QuestionTokens: 32, OutputTokens: 16},
		Scrape:       []string{s.URL() + "/metrics"},
	}, log)
	if err != nil {
		t.Fatal(err)
	}
	tr := rep.Targets[0]
	if tr.OK != 40 || len(tr.Errors) != 0 {
		t.Fatalf("ok %d errors %v", tr.OK, tr.Errors)
	}
	// Usage comes back from the sim: 16 output tokens each, streamed one per chunk.
	for _, smp := range rep.Samples {
		if smp.OutputTokens != 16 || smp.TTFT <= 0 || smp.TTFT >= smp.E2E {
			t.Fatalf("sample %+v: want 16 output tokens and 0 < TTFT < E2E", smp)
		}
	}
	if tr.ITL.Count != 40*15 {
		t.Errorf("itl gaps %d, want %d", tr.ITL.Count, 40*15)
	}
	// 4 distinct prompts of ~300 tokens: after the first few, nearly everything is cached.
	e := tr.Engine
	if e == nil || e.PrefixCacheQueries == 0 {
		t.Fatalf("engine stats %+v", e)
	}
	t.Logf("engine hit rate %.3f, oracle %.3f, peak waiting %v", e.PrefixHitRate, tr.OracleHitFraction, e.PeakWaiting)
	if e.PrefixHitRate < 0.6*tr.OracleHitFraction || e.PrefixHitRate > tr.OracleHitFraction+0.05 {
		t.Errorf("engine hit rate %.3f vs oracle %.3f: want within [0.6×oracle, oracle+0.05]", e.PrefixHitRate, tr.OracleHitFraction)
	}
}
