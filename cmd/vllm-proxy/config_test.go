package main

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseConfigFull(t *testing.T) {
	cfg, err := parseConfig("c.yaml", []byte(`# every key
listen: 0.0.0.0:8010
redis: redis+sentinel://s1:26379,s2/mymaster/1
backends:
  - url: http://10.0.0.5:8000/
    capacity: 16
    models: [llama, qwen]
    priority_scheduling: true
  - url: https://b.example
    priority_scheduling: auto
  - url: http://c:8000
    priority_scheduling: false
routing:
  policy: round_robin
  health_check_interval: 1s
  scrape_interval: 250ms
  request_timeout: 2m
  max_retries: 0
  max_fails: 5
  models_refresh_interval: 30s
  max_body_bytes: 1MiB
  cache_aware:
    block_chars: 32
    max_blocks: 100
    prefill_tokens_per_second: 2500.5
    queue_budget: 1500ms
    saturation_load: 2
    load_factor: 1.5
    prefix_ttl: 2m
  chwbl:
    key_chars: 50
batch:
  max_concurrent_requests: 7
  backpressure_enabled: false
  backpressure_poll_interval: 3s
  backpressure_evict: false
  chat_completion_priority: -1
  batch_priority: 20
  files_dir: /var/lib/vllm-proxy/files
  workers: false
  lease_ttl: 9s
  chunk_lines: 32
  max_file_bytes: 10MiB
  max_lines: 1000
  max_result_bytes: 1GiB
  file_ttl: 48h
  completion_window: 1h
  model_wait: 30s
  retry_attempts: 2
  retry_backoff: 250ms
`))
	if err != nil {
		t.Fatal(err)
	}
	b := cfg.Backends
	if len(b) != 3 || b[0].URL != "http://10.0.0.5:8000" || b[0].Capacity != 16 || strings.Join(b[0].Models, ",") != "llama,qwen" ||
		b[0].PriorityScheduling != triTrue || b[1].Capacity != 8 || b[1].PriorityScheduling != triAuto || b[2].PriorityScheduling != triFalse {
		t.Errorf("backends = %+v", b)
	}
	r := cfg.Routing
	if r.Policy != "round_robin" || r.HealthCheckInterval != time.Second || r.ScrapeInterval != 250*time.Millisecond ||
		r.RequestTimeout != 2*time.Minute || r.MaxRetries != 0 || r.MaxFails != 5 || r.ModelsRefreshInterval != 30*time.Second || r.MaxBodyBytes != 1<<20 {
		t.Errorf("routing = %+v", r)
	}
	if ca := r.CacheAware; ca != (cacheAwareConfig{BlockChars: 32, MaxBlocks: 100, PrefillTokensPerSecond: 2500.5,
		QueueBudget: 1500 * time.Millisecond, SaturationLoad: 2, LoadFactor: 1.5, PrefixTTL: 2 * time.Minute}) || r.CHWBL != (chwblConfig{KeyChars: 50}) {
		t.Errorf("cache_aware %+v chwbl %+v", ca, r.CHWBL)
	}
	bc := cfg.Batch
	if bc.MaxConcurrentRequests != 7 || bc.BackpressureEnabled || bc.BackpressurePollInterval != 3*time.Second ||
		bc.ChatCompletionPriority != -1 || bc.BatchPriority != 20 || bc.FilesDir != "/var/lib/vllm-proxy/files" || bc.Workers {
		t.Errorf("batch = %+v", bc)
	}
	if bc.LeaseTTL != 9*time.Second || bc.BackpressureEvict || bc.ChunkLines != 32 || bc.MaxFileBytes != 10<<20 || bc.MaxLines != 1000 || bc.MaxResultBytes != 1<<30 ||
		bc.FileTTL != 48*time.Hour || bc.CompletionWindow != time.Hour || bc.ModelWait != 30*time.Second || bc.RetryAttempts != 2 || bc.RetryBackoff != 250*time.Millisecond {
		t.Errorf("batch tuning = %+v", bc)
	}
	if got := toBatchConfig(bc); got.LeaseTTL != 9*time.Second || got.MaxFileBytes != 10<<20 || got.CompletionWindow != time.Hour {
		t.Errorf("batch.Config = %+v", got)
	}
	if cfg.Listen != "0.0.0.0:8010" || cfg.Redis != "redis+sentinel://s1:26379,s2/mymaster/1" {
		t.Errorf("listen %q redis %q", cfg.Listen, cfg.Redis)
	}
}

func TestParseConfigDefaults(t *testing.T) {
	for _, src := range []string{"", "# only a comment\n", "---\n", "routing:\n", "backends: []\n"} {
		cfg, err := parseConfig("c.yaml", []byte(src))
		if err != nil {
			t.Fatalf("%q: %v", src, err)
		}
		d := defaultConfig()
		if cfg.Listen != d.Listen || cfg.Redis != d.Redis || cfg.Routing != d.Routing || cfg.Batch != d.Batch || len(cfg.Backends) != 0 {
			t.Errorf("%q: not the defaults: %+v", src, cfg)
		}
	}
	d := defaultConfig()
	if d.Routing.MaxRetries != 2 || d.Routing.HealthCheckInterval != 5*time.Second || d.Routing.ScrapeInterval != 500*time.Millisecond ||
		d.Routing.ModelsRefreshInterval != 10*time.Second || d.Routing.MaxBodyBytes != 32<<20 || d.Batch.MaxConcurrentRequests != 50 ||
		!d.Batch.BackpressureEnabled || !d.Batch.BackpressureEvict || d.Batch.BackpressurePollInterval != 2*time.Second || d.Batch.BatchPriority != 10 || !d.Batch.Workers {
		t.Errorf("defaults drifted from the docs: %+v", d)
	}
}

// TestConfigStrict: every problem in one run, each at its line:col, sorted.
func TestConfigStrict(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // one per error, in order
	}{
		{"unknown top key", "listen: :1\nlisen: :2\n", []string{"c.yaml:2:1: lisen: unknown key (known keys here: listen, redis, backends, routing, batch)"}},
		{"unknown nested key", "routing:\n  policy: random\n  retries: 3\n", []string{"c.yaml:3:3: routing.retries: unknown key (known keys here: policy,"}},
		{"unknown backend key", "backends:\n  - url: http://a:1\n    weight: 2\n", []string{"c.yaml:3:5: backends[0].weight: unknown key"}},
		{"bad int", "routing:\n  max_retries: lots\n", []string{`c.yaml:2:16: routing.max_retries: want an integer, got the string "lots"`}},
		{"bad duration", "routing:\n  scrape_interval: 5\n", []string{"c.yaml:2:20: routing.scrape_interval: want a duration such as 500ms, 5s or 1m30s, got the integer 5"}},
		{"bad bool", "batch:\n  workers: maybe\n", []string{`c.yaml:2:12: batch.workers: want true or false, got the string "maybe"`}},
		{"bad tristate", "backends:\n  - url: http://a:1\n    priority_scheduling: sometimes\n", []string{`c.yaml:3:26: backends[0].priority_scheduling: want true, false or auto`}},
		{"bad size", "routing:\n  max_body_bytes: 3 parsecs\n", []string{"c.yaml:2:19: routing.max_body_bytes: want a size in bytes such as 1048576, 512KiB, 32MiB or 1GiB"}},
		{"string for list", "backends: http://a:1\n", []string{`c.yaml:1:11: backends: want a list, got the string "http://a:1"`}},
		{"list for string", "listen: [a, b]\n", []string{"c.yaml:1:9: listen: want a string, got a list"}},
		{"mapping for scalar", "redis:\n  host: x\n", []string{"c.yaml:2:3: redis: want a string, got a mapping"}},
		{"scalar for mapping", "routing: fast\n", []string{`c.yaml:1:10: routing: want a mapping, got the string "fast"`}},
		{"duplicate key", "listen: :1\nlisten: :2\n", []string{"c.yaml:2:1"}},
		{"syntax", "routing:\n  policy: [random\n", []string{"c.yaml:2:"}},
		{"two documents", "listen: :1\n---\nlisten: :2\n", []string{"c.yaml:3:1: want one YAML document, found 2"}},
		{"anchor", "routing: &r\n  policy: random\n", []string{"c.yaml:1:10: routing: anchors, aliases, tags and merge keys are not supported"}},
		{"bad float", "routing:\n  cache_aware:\n    load_factor: lots\n", []string{`c.yaml:3:18: routing.cache_aware.load_factor: want a number, got the string "lots"`}},
		{"cache_aware range", "routing:\n  cache_aware:\n    load_factor: 0.5\n    max_blocks: -1\n", []string{`c.yaml:3:5: routing.cache_aware: invalid routing config: cache_aware: max_blocks must not be negative (got -1); cache_aware: load_factor must be at least 1 (got 0.5)`}},
		{"negative timeout", "routing:\n  stream_header_timeout: -5s\n", []string{`c.yaml:2:26: routing.stream_header_timeout: want 0 (the default) or a positive duration, got -5s`}},
		{"batch tuning", "batch:\n  lease_ttl: 100ms\n  completion_window: 10ms\n", []string{`c.yaml:2:3: batch: lease_ttl (100ms) must be at least 3 × poll_interval (500ms); completion_window must be at least 1s (got 10ms)`}},
		{"int overflow", "batch:\n  batch_priority: 99999999999\n", []string{"c.yaml:2:19: batch.batch_priority: want an integer"}},
		{"semantic", "listen: nope\nbackends:\n  - url: ftp://x\n    capacity: 0\n  - capacity: 2\n  - url: http://d:1\n  - url: http://d:1/\n    models: [a, '', a]\nrouting:\n  policy: fastest\n  max_retries: -1\n  max_fails: 0\n  scrape_interval: 0s\n  max_body_bytes: 0\nbatch:\n  max_concurrent_requests: 0\n  backpressure_poll_interval: -1s\n  files_dir: ''\n",
			[]string{
				`c.yaml:1:9: listen: want host:port`,
				`c.yaml:3:10: backends[0].url: want a base URL such as http://10.0.0.5:8000 (scheme http or https), got "ftp://x"`,
				`c.yaml:4:15: backends[0].capacity: want at least 1, got 0`,
				`c.yaml:5:5: backends[1]: url is required`,
				`c.yaml:7:10: backends[3].url: duplicate of backends[2].url`,
				`c.yaml:8:17: backends[3].models[1]: want a model name`,
				`c.yaml:8:21: backends[3].models[2]: duplicate model "a"`,
				`c.yaml:10:11: routing.policy: want one of cache_aware, least_load, round_robin, random, chwbl, got "fastest"`,
				`c.yaml:11:16: routing.max_retries: want 0 or more, got -1`,
				`c.yaml:12:14: routing.max_fails: want at least 1, got 0`,
				`c.yaml:13:20: routing.scrape_interval: want a positive duration`,
				`c.yaml:14:19: routing.max_body_bytes: want at least 1 byte`,
				`c.yaml:16:28: batch.max_concurrent_requests: want at least 1, got 0`,
				`c.yaml:17:31: batch.backpressure_poll_interval: want a positive duration`,
				`c.yaml:18:14: batch.files_dir: want a directory path`,
			}},
		{"type errors all reported", "listen: 1\nredis: 2\nrouting:\n  max_fails: x\n  bogus: 1\nbatch:\n  workers: 3\n", []string{
			"c.yaml:1:9: listen: want a string, got the integer 1",
			"c.yaml:2:8: redis: want a string, got the integer 2",
			`c.yaml:4:14: routing.max_fails: want an integer, got the string "x"`,
			"c.yaml:5:3: routing.bogus: unknown key",
			"c.yaml:7:12: batch.workers: want true or false, got the integer 3",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseConfig("c.yaml", []byte(tt.src))
			var ces configErrors
			if !errors.As(err, &ces) {
				t.Fatalf("error %v is not a configErrors", err)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(tt.want) > 1 && len(lines) != len(tt.want) {
				t.Fatalf("%d errors, want %d:\n%s", len(lines), len(tt.want), err)
			}
			for i, w := range tt.want {
				line := err.Error()
				if len(tt.want) > 1 {
					line = lines[i]
				}
				if !strings.Contains(line, w) {
					t.Errorf("error %d = %q, want it to contain %q\nall:\n%s", i, line, w, err)
				}
			}
		})
	}
}

func TestByteSize(t *testing.T) {
	for in, want := range map[string]byteSize{"0": 0, "1024": 1024, "512KiB": 512 << 10, "32MiB": 32 << 20, "1GiB": 1 << 30, "10MB": 10e6, "5kb": 5000, "2 GiB": 2 << 30, "7b": 7} {
		if got, err := parseByteSize(in); err != nil || got != want {
			t.Errorf("parseByteSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "MiB", "-1", "1.5MiB", "3 parsecs", "99999999999GiB"} {
		if _, err := parseByteSize(bad); err == nil {
			t.Errorf("parseByteSize(%q) succeeded", bad)
		}
	}
	for b, want := range map[byteSize]string{32 << 20: "32MiB", 1 << 30: "1GiB", 3 << 10: "3KiB", 1000: "1000", 0: "0"} {
		if got := b.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int64(b), got, want)
		}
	}
}

func TestTriState(t *testing.T) {
	if triAuto.Bool() != nil || !*triTrue.Bool() || *triFalse.Bool() || triAuto.String() != "auto" || triTrue.String() != "true" || triFalse.String() != "false" {
		t.Error("triState conversions")
	}
}

// TestExampleConfig keeps examples/config.yaml valid and complete.
func TestExampleConfig(t *testing.T) {
	cfg, err := loadConfig("../../examples/config.yaml")
	if err != nil {
		t.Fatalf("examples/config.yaml: %v", err)
	}
	for _, key := range configKeys() {
		if _, ok := cfg.pos[key]; !ok {
			t.Errorf("examples/config.yaml does not show %s", key)
		}
	}
}

// TestDocsMatch keeps docs/CONFIG.md in step with the flags, variables and keys.
func TestDocsMatch(t *testing.T) {
	doc, err := os.ReadFile("../../docs/CONFIG.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	want := []string{"--listen", "--config", "--backend", "--shutdown-timeout", "-R", "--redis", "--verbosity", "-v", "-q", "-L", "--log-format", "--version",
		"VLLM_PXY_LISTEN", "VLLM_PXY_CONFIG", "VLLM_PXY_BACKENDS", "VLLM_PXY_REDIS", "VLLM_PXY_VERBOSITY", "VLLM_PXY_LOGFORMAT"}
	for _, k := range configKeys() {
		want = append(want, "`"+k[strings.LastIndexByte(k, '.')+1:]+"`") // each section's table names its keys
	}
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("docs/CONFIG.md does not mention %s", w)
		}
	}
}

// configKeys lists every key of the schema as dotted paths, backends as backends[0].
func configKeys() []string {
	return []string{"listen", "redis", "backends", "backends[0].url", "backends[0].capacity", "backends[0].models", "backends[0].priority_scheduling",
		"routing", "routing.policy", "routing.health_check_interval", "routing.scrape_interval", "routing.request_timeout", "routing.max_retries",
		"routing.max_fails", "routing.models_refresh_interval", "routing.max_body_bytes", "routing.prefill_spread",
		"batch", "batch.max_concurrent_requests", "batch.backpressure_enabled", "batch.backpressure_poll_interval",
		"batch.chat_completion_priority", "batch.batch_priority", "batch.files_dir", "batch.workers"}
}

func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{"", "listen: :1\n", "backends:\n  - url: http://a:1\n", "routing: {policy: random}\n", "a: [\n", "- x\n", "batch:\n  workers: yes\n", "&a x: *a\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := parseConfig("f.yaml", data)
		if err == nil {
			if cfg == nil {
				t.Fatal("nil config without an error")
			}
			return
		}
		var ces configErrors
		if !errors.As(err, &ces) || len(ces) == 0 {
			t.Fatalf("error %v is not a non-empty configErrors", err)
		}
		for _, e := range ces {
			if !strings.HasPrefix(e.Error(), "f.yaml") {
				t.Fatalf("error without the file name: %q", e.Error())
			}
		}
	})
}
