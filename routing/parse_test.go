package routing

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseMetrics(t *testing.T) {
	tests := []struct {
		file string
		want EngineMetrics
	}{
		{"v1_dp2.txt", EngineMetrics{
			Running: 8, Waiting: 3, KVCacheUsage: 0.4,
			PrefixQueries: 4000, PrefixHits: 1000, HasPrefixCounters: true,
			BlockSize: 16, NumGPUBlocks: 54000, Preemptions: 3, Engines: 2,
		}},
		{"v0.txt", EngineMetrics{
			Running: 2, Waiting: 7, KVCacheUsage: 0.35,
			PrefixHitRate: 0.42, HasPrefixHitRate: true,
			BlockSize: 32, NumGPUBlocks: 4096, Engines: 1,
		}},
		{"v1_early.txt", EngineMetrics{
			Running: 1, KVCacheUsage: 0.5,
			PrefixQueries: 200, PrefixHits: 50, HasPrefixCounters: true, Engines: 1,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			got, err := ParseMetrics(f)
			if err != nil {
				t.Fatalf("ParseMetrics: %v", err)
			}
			if !approxEqualMetrics(got, tt.want) {
				t.Fatalf("ParseMetrics =\n %+v\nwant\n %+v", got, tt.want)
			}
		})
	}
}

func approxEqualMetrics(a, b EngineMetrics) bool {
	near := func(x, y float64) bool { return x-y < 1e-9 && y-x < 1e-9 }
	return near(a.Running, b.Running) && near(a.Waiting, b.Waiting) && near(a.KVCacheUsage, b.KVCacheUsage) &&
		near(a.PrefixQueries, b.PrefixQueries) && near(a.PrefixHits, b.PrefixHits) &&
		a.HasPrefixCounters == b.HasPrefixCounters && near(a.PrefixHitRate, b.PrefixHitRate) &&
		a.HasPrefixHitRate == b.HasPrefixHitRate && a.BlockSize == b.BlockSize &&
		a.NumGPUBlocks == b.NumGPUBlocks && near(a.Preemptions, b.Preemptions) && a.Engines == b.Engines
}

func TestParseMetricsErrors(t *testing.T) {
	tests := []struct {
		name, page string
		notVLLM    bool
	}{
		{"empty page", "", true},
		{"other exporter", "# TYPE go_goroutines gauge\ngo_goroutines 12\n", true},
		{"syntax error", "vllm:num_requests_running{engine=\"0\" 3\n", false},
		{"bad value", "vllm:num_requests_running abc\n", false},
		{"duplicate type line", "# TYPE vllm:num_requests_running gauge\n# TYPE vllm:num_requests_running gauge\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseMetrics(strings.NewReader(tt.page))
			if err == nil {
				t.Fatal("ParseMetrics succeeded, want an error")
			}
			if errors.Is(err, ErrNotVLLM) != tt.notVLLM {
				t.Fatalf("errors.Is(%v, ErrNotVLLM) = %v, want %v", err, !tt.notVLLM, tt.notVLLM)
			}
		})
	}
}

func TestParseMetricsIgnoresNaN(t *testing.T) {
	page := "vllm:num_requests_running{engine=\"0\"} NaN\nvllm:num_requests_running{engine=\"1\"} 2\n" +
		"vllm:kv_cache_usage_perc{engine=\"0\"} +Inf\nvllm:kv_cache_usage_perc{engine=\"1\"} 0.5\n"
	got, err := ParseMetrics(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	if got.Running != 2 || got.KVCacheUsage != 0.5 || got.Engines != 2 {
		t.Fatalf("got %+v, want running 2, kv 0.5, engines 2", got)
	}
}

func FuzzParseMetrics(f *testing.F) {
	for _, name := range []string{"v1_dp2.txt", "v0.txt", "v1_early.txt"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("vllm:num_requests_running 1\n"))
	f.Add([]byte("vllm:cache_config_info{block_size=\"-1\",num_gpu_blocks=\"x\"} 1\nvllm:num_requests_waiting 3\n"))
	f.Fuzz(func(t *testing.T, page []byte) {
		m, err := ParseMetrics(bytes.NewReader(page))
		if err != nil {
			return
		}
		for _, v := range []float64{m.Running, m.Waiting, m.KVCacheUsage, m.PrefixQueries, m.PrefixHits} {
			if v != v {
				t.Fatalf("NaN leaked into %+v", m)
			}
		}
		if m.Engines < 1 || m.BlockSize < 0 || m.NumGPUBlocks < 0 {
			t.Fatalf("impossible result %+v", m)
		}
	})
}

func FuzzParseModels(f *testing.F) {
	f.Add([]byte(`{"object":"list","data":[{"id":"m","object":"model","created":1,"owned_by":"vllm","root":"m","parent":null,"max_model_len":4096,"permission":[]}]}`))
	f.Add([]byte(`{"data":[{"id":"a","parent":"m"},{"id":""},{}]}`))
	f.Add([]byte(`{"data":null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ms, err := ParseModels(bytes.NewReader(body))
		if err != nil {
			return
		}
		for _, m := range ms {
			if m.ID == "" || m.Object == "" || len(m.Permission) == 0 {
				t.Fatalf("ParseModels kept an incomplete entry %+v", m)
			}
		}
	})
}
