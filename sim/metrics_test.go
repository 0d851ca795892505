package sim

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape parses the sim's /metrics page.
func scrape(t *testing.T, s *Server) map[string]*dto.MetricFamily {
	t.Helper()
	status, body := get(t, s.URL()+"/metrics")
	if status != 200 {
		t.Fatalf("metrics: %d", status)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parsing metrics: %v\n%s", err, body)
	}
	return fams
}

// value returns the value of the series of name whose labels include want.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	t.Helper()
	f, ok := fams[name]
	if !ok {
		t.Fatalf("metric %s missing", name)
	}
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		match := true
		for k, v := range want {
			if labels[k] != v {
				match = false
			}
		}
		if !match {
			continue
		}
		switch {
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	t.Fatalf("metric %s has no series with labels %v", name, want)
	return 0
}

// frozen is a timed config with 300 ms steps. hold's requests (100 prompt tokens, 12
// output tokens: 7 blocks from admission to the end) keep their slots and blocks for 12
// steps, so running, waiting, KV usage and prefix counters stay still for seconds once
// admitted.
func frozen() Config { return Config{Model: "m1", DecodeStepMs: 300, MaxNumSeqs: 3} }

// hold sends n chat requests with distinct 100-token prompts that block until the
// returned cancel is called; cancel waits for them. after(i) runs after request i is
// sent.
func hold(t *testing.T, s *Server, n int, after func(i int)) (cancel func()) {
	t.Helper()
	ctx, stop := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for i := range n {
		content := fmt.Sprintf("%03d", i) + strings.Repeat("x", 397-len("<|user|>\n\n<|assistant|>\n"))
		body := `{"model":"m1","messages":[{"role":"user","content":"` + content + `"}],"max_tokens":12}`
		wg.Go(func() {
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL()+"/v1/chat/completions", strings.NewReader(body))
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		})
		if after != nil {
			after(i)
		}
	}
	return func() { stop(); wg.Wait() }
}

func TestMetricsV1AgreeWithEngine(t *testing.T) {
	s := startSim(t, frozen())
	release := hold(t, s, 5, nil)
	defer release()
	waitFor(t, "3 running and 2 waiting", func() bool {
		snap := s.Snapshot()
		return snap.Running == 3 && snap.Waiting == 2
	})
	snap := s.Snapshot()
	fams := scrape(t, s)
	eng := map[string]string{"engine": "0", "model_name": "m1"}
	checks := []struct {
		name string
		want float64
	}{
		{"vllm:num_requests_running", 3},
		{"vllm:num_requests_waiting", 2},
		{"vllm:kv_cache_usage_perc", float64(3*7) / 4096}, // 100 tokens = 7 blocks each
		{"vllm:prefix_cache_queries_total", 300},
		{"vllm:prefix_cache_hits_total", 0},
		{"vllm:num_preemptions_total", 0},
		{"vllm:request_queue_time_seconds", 3}, // observed at admission
	}
	for _, c := range checks {
		if got := value(t, fams, c.name, eng); got != c.want {
			t.Errorf("%s = %g, want %g", c.name, got, c.want)
		}
	}
	if snap.KVUsage != float64(3*7)/4096 || snap.PrefixQueries != 300 || snap.KVBlocksUsed != 21 {
		t.Errorf("snapshot %+v disagrees", snap)
	}
	if snap.RunningByPriority[0] != 3 || snap.WaitingByPriority[0] != 2 || snap.InFlight != 5 {
		t.Errorf("snapshot by priority %v %v, in flight %d", snap.RunningByPriority, snap.WaitingByPriority, snap.InFlight)
	}
	info := map[string]string{"engine": "0", "block_size": "16", "num_gpu_blocks": "4096", "enable_prefix_caching": "True"}
	if got := value(t, fams, "vllm:cache_config_info", info); got != 1 {
		t.Errorf("cache_config_info = %g", got)
	}
	if _, body := get(t, s.URL()+"/load"); body != `{"server_load":5}` {
		t.Errorf("/load = %s", body)
	}

	release()
	waitFor(t, "an idle engine", func() bool {
		snap := s.Snapshot()
		return snap.Running == 0 && snap.Waiting == 0 && snap.KVBlocksUsed == 0 && snap.InFlight == 0
	})
	fams = scrape(t, s)
	for _, name := range []string{"vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc"} {
		if got := value(t, fams, name, eng); got != 0 {
			t.Errorf("after release %s = %g, want 0", name, got)
		}
	}
}

func TestMetricsDataParallel(t *testing.T) {
	cfg := frozen()
	cfg.MaxNumSeqs = 2
	cfg.DataParallel = 2
	s := startSim(t, cfg)
	release := hold(t, s, 4, func(i int) {
		waitFor(t, "admission", func() bool {
			snap := s.Snapshot()
			return snap.Running == i+1 && snap.Waiting == 0
		})
	})
	defer release()
	fams := scrape(t, s)
	snap := s.Snapshot()
	for e := range 2 {
		labels := map[string]string{"engine": fmt.Sprint(e), "model_name": "m1"}
		if got := value(t, fams, "vllm:num_requests_running", labels); got != 2 || snap.Engines[e].Running != 2 {
			t.Errorf("engine %d running: metrics %g, snapshot %d, want 2", e, got, snap.Engines[e].Running)
		}
		if got, want := value(t, fams, "vllm:kv_cache_usage_perc", labels), snap.Engines[e].KVUsage; got != want || got == 0 {
			t.Errorf("engine %d kv usage: metrics %g, snapshot %g", e, got, want)
		}
		if got := value(t, fams, "vllm:cache_config_info", map[string]string{"engine": fmt.Sprint(e)}); got != 1 {
			t.Errorf("engine %d cache_config_info = %g", e, got)
		}
	}
}

func TestMetricsV0Names(t *testing.T) {
	cfg := frozen()
	cfg.MetricsVersion = MetricsV0
	cfg.DataParallel = 2
	s := startSim(t, cfg)
	release := hold(t, s, 2, func(i int) {
		waitFor(t, "admission", func() bool { return s.Snapshot().Running == i+1 })
	})
	defer release()
	fams := scrape(t, s)
	m := map[string]string{"model_name": "m1"}
	snap := s.Snapshot()
	if got := value(t, fams, "vllm:num_requests_running", m); got != 2 {
		t.Errorf("running = %g, want 2 (summed over engines)", got)
	}
	if got := value(t, fams, "vllm:gpu_cache_usage_perc", m); got != snap.KVUsage {
		t.Errorf("gpu_cache_usage_perc = %g, want %g (mean over engines)", got, snap.KVUsage)
	}
	if got := value(t, fams, "vllm:gpu_prefix_cache_queries_total", m); got != 200 {
		t.Errorf("gpu_prefix_cache_queries_total = %g, want 200", got)
	}
	for _, name := range []string{"vllm:gpu_prefix_cache_hits_total", "vllm:gpu_prefix_cache_hit_rate",
		"vllm:time_per_output_token_seconds", "vllm:cache_config_info"} {
		value(t, fams, name, m)
	}
	for _, gone := range []string{"vllm:kv_cache_usage_perc", "vllm:prefix_cache_queries_total", "vllm:inter_token_latency_seconds"} {
		if _, ok := fams[gone]; ok {
			t.Errorf("V0 page has V1 metric %s", gone)
		}
	}
	for name, f := range fams {
		for _, mm := range f.GetMetric() {
			for _, l := range mm.GetLabel() {
				if l.GetName() == "engine" {
					t.Errorf("V0 metric %s has an engine label", name)
				}
			}
		}
	}
}

func TestMetricsLatencyHistograms(t *testing.T) {
	s := startSim(t, Config{Model: "m1", TimeScale: 100, LoRAs: []string{"ad"}})
	status, body := post(t, s.URL()+"/v1/chat/completions", `{"model":"ad","messages":[{"role":"user","content":"hi"}],"max_tokens":5}`)
	if status != 200 {
		t.Fatalf("chat: %d %s", status, body)
	}
	fams := scrape(t, s)
	eng := map[string]string{"engine": "0"}
	for name, want := range map[string]float64{
		"vllm:time_to_first_token_seconds": 1, "vllm:inter_token_latency_seconds": 4,
		"vllm:e2e_request_latency_seconds": 1, "vllm:request_queue_time_seconds": 1,
		"vllm:generation_tokens_total": 5,
	} {
		if got := value(t, fams, name, eng); got != want {
			t.Errorf("%s = %g, want %g", name, got, want)
		}
	}
	// 5 decode steps of at least 12 ms each, in simulated seconds.
	e2e := fams["vllm:e2e_request_latency_seconds"].GetMetric()[0].GetHistogram().GetSampleSum()
	if e2e < 0.06 {
		t.Errorf("e2e latency %g s, want at least 0.06 simulated seconds", e2e)
	}
	value(t, fams, "vllm:lora_requests_info", map[string]string{"max_lora": "1", "running_lora_adapters": ""})
}
