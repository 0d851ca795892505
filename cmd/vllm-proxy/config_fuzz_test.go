package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/vllm-proxy/vllm-proxy/batch"
)

// FuzzLoadConfig feeds arbitrary bytes to the config loader through a real file, as
// serve and hot reload read it. Property: loadConfig never panics; it returns either
// an error or a config, never both or neither; an accepted config passes its own
// validation again, and maps onto proxy, routing (when it names backends) and batch
// configs that validate. Seeds: f.Add below and testdata/fuzz/FuzzLoadConfig.
func FuzzLoadConfig(f *testing.F) {
	for _, s := range []string{
		"",
		"listen: 127.0.0.1:8010\nredis: memory\n",
		"backends:\n  - url: http://10.0.0.5:8000\n    capacity: 4\n    models: [m]\n    priority_scheduling: auto\n",
		"routing:\n  policy: round_robin\n  max_body_bytes: 64KiB\n  request_timeout: 1m30s\n",
		"batch:\n  files_dir: /tmp/x\n  workers: false\n  max_concurrent_requests: 3\n",
		"backends: [\n",
		"backends:\n  - url: ftp://x\n    capacity: 0\n",
		"routing:\n  max_body_bytes: 9999999999999999999GiB\n",
		"routing: {scrape_interval: -1s}\n",
		"a: &x 1\nb: *x\n",
		"---\nlisten: :1\n---\nlisten: :2\n",
		"listen: :1\nlisten: :2\n",
		"backends:\n  - url: http://a:1\n  - url: http://a:1\n",
		"\xff\xfe",
	} {
		f.Add([]byte(s))
	}
	if data, err := os.ReadFile("../../examples/config.yaml"); err == nil {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "config.yaml")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := loadConfig(path)
		if err != nil {
			if cfg != nil {
				t.Fatalf("config and error together: %v", err)
			}
			return
		}
		if cfg == nil {
			t.Fatal("nil config without an error")
		}
		if errs := cfg.validate(); len(errs) > 0 {
			t.Fatalf("accepted config fails validation: %v", errs)
		}
		if err := toProxyConfig(cfg, "fuzz").Validate(); err != nil {
			t.Fatalf("accepted config maps to an invalid proxy config: %v", err)
		}
		if len(cfg.Backends) > 0 {
			if err := toRoutingConfig(cfg).Validate(); err != nil {
				t.Fatalf("accepted config maps to an invalid routing config: %v", err)
			}
		}
		bc := batch.Config{MaxConcurrentRequests: cfg.Batch.MaxConcurrentRequests}
		if err := bc.Validate(); err != nil {
			t.Fatalf("accepted config maps to an invalid batch config: %v", err)
		}
	})
}
