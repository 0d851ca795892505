package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vllm-proxy/vllm-proxy/bench"
)

// writeRun writes one run directory as scripts/bench-routing.sh leaves it.
func writeRun(t *testing.T, dir string, rep bench.Report, names []string, ticks []Tick, events string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var lines strings.Builder
	for _, n := range names {
		lines.WriteString(n + " http://x/v1 http://y/metrics\n")
	}
	var w strings.Builder
	for _, tk := range ticks {
		j, _ := json.Marshal(tk)
		w.Write(j)
		w.WriteByte('\n')
	}
	w.WriteString(`{"t":1,"g":"cut`) // a line cut by the watch being killed
	files := map[string]string{"bench.json": string(b), "targets": lines.String(), "watch.jsonl": w.String(),
		"machine": "2026-11-24T15:00:00Z load: 7.50 6.00 5.00\n"}
	if events != "" {
		files["events"] = events
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func target(rps, ttft90, hit, oracle, peak float64, errs int) bench.TargetReport {
	tr := bench.TargetReport{RequestsPerS: rps, TTFT: bench.Latency{P90: ttft90}, OracleHitFraction: oracle,
		Engine: &bench.EngineStats{PrefixHitRate: hit, PeakWaiting: peak}, Errors: map[string]int{}}
	if errs > 0 {
		tr.Errors["502"] = errs
	}
	return tr
}

func summarizeDir(t *testing.T, dir string) string {
	t.Helper()
	var out strings.Builder
	if err := runSummarize([]string{"-dir", dir}, &out); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

func TestSummarizeCompareGoals(t *testing.T) {
	dir := t.TempDir()
	names := []string{"cache_aware", "chwbl", "least_load", "round_robin", "random"}
	// Three repeats; the medians are the middle values. cache_aware's TTFT p90 ratio to
	// least_load is 0.4, 0.6, 0.45 -> median 0.45 (met); to chwbl 0.9 in two runs (missed).
	ca := []float64{0.4, 0.6, 0.45}
	for i := range 3 {
		rep := bench.Report{Workload: "shared-prefix", Targets: []bench.TargetReport{
			target(20, ca[i], 0.9, 0.95, 3, 0),
			target(15, ca[i]/0.9, 0.6, 0.95, 3, 0),
			target(10, 1, 0.4, 0.95, 9, 0),
			target(12, 0.8, 0.4, 0.95, 5, 1),
			target(11, 1.2, 0.4, 0.95, 6, 0),
		}}
		// cache_aware's backends served 10, 10, 10, 14 requests: max/mean 1.273.
		var ticks []Tick
		for b, n := range []float64{10, 10, 10, 14} {
			ticks = append(ticks, Tick{T: 0, Group: "cache_aware", B: b, OK: true},
				Tick{T: 1, Group: "cache_aware", B: b, OK: true, Requests: n, Waiting: float64(b)})
		}
		writeRun(t, filepath.Join(dir, "compare", "shared-prefix", string(rune('1'+i))), rep, names, ticks, "")
	}
	out := summarizeDir(t, dir)
	for _, want := range []string{
		"### shared-prefix",
		"3 run(s); machine load average (1 min) at start/end of each: 7.50, 7.50, 7.50.",
		"| cache_aware | 20.0 |",
		"| 0.900 | 0.950 | 0.95 | 3 | 3 | 1.27 | 0 |", // hit, oracle, hit÷oracle, peak sum, peak one backend, max/mean, errors
		"| round_robin | 12.0 |",
		"| cache_aware engine hit rate ÷ oracle ≥ 0.9 | 0.947 | 0.947 · 0.947 · 0.947 | yes |",
		"| cache_aware TTFT p90 ÷ least_load ≤ 0.5 | 0.450 | 0.400 · 0.600 · 0.450 | yes |",
		"| cache_aware TTFT p90 ÷ chwbl ≤ 0.8 | 0.900 |",
		"| cache_aware req/s ÷ round_robin ≥ 1 | 1.667 |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(out, "| cache_aware TTFT p90 ÷ chwbl ≤ 0.8 | 0.900 | 0.900 · 0.900 · 0.900 | no |") {
		t.Errorf("chwbl goal not reported as missed:\n%s", out)
	}
	if !strings.Contains(out, "| round_robin | 12.0 | 0 | 0 | 800 | 0 | 0.400 | 0.950 | 0.42 | 5 | 0 | 0.00 | 3 |") {
		t.Errorf("round_robin row wrong (errors summed over runs):\n%s", out)
	}
}

func TestSummarizeRedisKill(t *testing.T) {
	dir := t.TempDir()
	// Two backends scraped every second for 30 s; kill at 10 s, restart at 20 s. Hit rate
	// 0.9 per second before, 0.5 while down, 0.8 after.
	var ticks []Tick
	q, h := 0.0, 0.0
	for s := 0; s <= 30; s++ {
		for b := range 2 {
			ticks = append(ticks, Tick{T: float64(s), Unix: 1000 + float64(s), Group: "3-replicas", B: b, OK: true, Queries: q / 2, Hits: h / 2})
		}
		rate := 0.9
		switch {
		case s >= 20:
			rate = 0.8
		case s >= 10:
			rate = 0.5
		}
		q += 100
		h += 100 * rate
	}
	rep := bench.Report{Workload: "shared-prefix", Targets: []bench.TargetReport{target(10, 1, 0.7, 0.9, 1, 0)}}
	writeRun(t, filepath.Join(dir, "redis-kill", "1"), rep, []string{"3-replicas"}, ticks, "kill 1010.0\nrestart 1020.0\n")
	out := summarizeDir(t, dir)
	for _, want := range []string{
		"Redis killed at 10.0 s and restarted at 20.0 s",
		"### Redis killed mid-run (cache_aware, 3 replicas, shared-prefix)",
		"| 0–5 | 0.900 | up |",
		"| 5–10 | 0.900 | killed |",
		"| 10–15 | 0.500 | **down** |",
		"| 15–20 | 0.500 | restarted |",
		"| 25–30 | 0.800 | up |",
		"| last 20 s before the kill | 0.900 |",
		"| Redis down (whole intervals) | 0.500 |",
		"| after the restart (from 5 s on) | 0.800 |",
		"| client errors (total per run) | 0 | 0 |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
}

func TestSummarizeReplicas(t *testing.T) {
	dir := t.TempDir()
	for i, h3 := range []float64{0.89, 0.80, 0.895} { // |h3/0.9-1| = 0.011, 0.111, 0.006
		rep := bench.Report{Workload: "multi-turn", Targets: []bench.TargetReport{
			target(10, 1, 0.9, 0.95, 1, 0), target(10, 1, h3, 0.95, 1, 0)}}
		rd := filepath.Join(dir, "replicas", "multi-turn", string(rune('1'+i)))
		writeRun(t, rd, rep, []string{"1-replica", "3-replicas"}, nil, "")
		if err := os.MkdirAll(filepath.Join(rd, "proxy-metrics"), 0o755); err != nil {
			t.Fatal(err)
		}
		prom := `# TYPE vllm_proxy_routing_decisions_total counter
vllm_proxy_routing_decisions_total{policy="cache_aware",reason="affinity"} 6
vllm_proxy_routing_decisions_total{policy="cache_aware",reason="cold_placement"} 2
# TYPE vllm_proxy_state_prefix_lookups_total counter
vllm_proxy_state_prefix_lookups_total{source="redis"} 3
vllm_proxy_state_prefix_lookups_total{source="budget"} 1
# TYPE vllm_proxy_redis_errors_total counter
vllm_proxy_redis_errors_total{op="lookup"} 2
`
		for _, port := range []string{"19615", "19616"} {
			if err := os.WriteFile(filepath.Join(rd, "proxy-metrics", "3-replicas-"+port+".prom"), []byte(prom), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	out := summarizeDir(t, dir)
	if !strings.Contains(out, "| 3-replicas | 0.750 | 0.000 | 0.250 | 0.000 | 0.750 | 0.000 | 0.250 | 12 |") {
		t.Errorf("proxy counters wrong (6 files, 2 Redis errors each):\n%s", out)
	}
	if !strings.Contains(out, "| \\|3-replica hit rate ÷ 1-replica − 1\\| ≤ 0.02 | 0.011 | 0.011 · 0.111 · 0.006 | yes |") {
		t.Errorf("replica goal wrong:\n%s", out)
	}
}
