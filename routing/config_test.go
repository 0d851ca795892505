package routing

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestConfigValidateListsEveryProblem(t *testing.T) {
	cfg := Config{
		Backends: []BackendConfig{
			{URL: ""},
			{URL: "localhost:8000"},
			{URL: "http://a:8000/", Capacity: -1, Models: []string{" "}},
			{URL: "http://a:8000"},
			{URL: "http://u:p@b:8000?x=1"},
		},
		Policy:           "fastest",
		ScrapeInterval:   -time.Second,
		EjectBackoffBase: time.Minute,
		EjectBackoffCap:  time.Second,
		MaxFails:         -1,
		StaleAfter:       -2,
		PrefillSpread:    math.NaN(),
		CacheAware: CacheAwareConfig{BlockChars: -1, MaxBlocks: -1, PrefillTokensPerSecond: -1, QueueBudget: -1,
			SaturationLoad: -1, LoadFactor: 0.5, LocalIndexBlocks: -1, PrefixTTL: -1, RecordAhead: -2, FirstRecordBlocks: -3},
		CHWBL: CHWBLConfig{KeyChars: -1, LoadFactor: 0.9},
	}
	err := cfg.Validate()
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Validate = %v, want ErrInvalidConfig", err)
	}
	for _, want := range []string{
		"backends[0]: url is required",
		"backends[1]: url \"localhost:8000\" must start with http",
		"backends[2]: capacity must not be negative",
		"backends[2]: models[0] is empty",
		"backends[3]: url http://a:8000 repeats backends[2]",
		"backends[4]: url",
		`policy "fastest" is unknown`,
		"scrape_interval must not be negative",
		"prefill_spread must be a finite number",
		"eject_backoff_cap (1s) must not be below eject_backoff_base (1m0s)",
		"cache_aware: block_chars must not be negative",
		"cache_aware: max_blocks must not be negative",
		"cache_aware: prefill_tokens_per_second must not be negative",
		"cache_aware: queue_budget must not be negative",
		"cache_aware: saturation_load must not be negative",
		"cache_aware: load_factor must be at least 1 (got 0.5)",
		"cache_aware: local_index_blocks must not be negative",
		"cache_aware: prefix_ttl must not be negative",
		"cache_aware: record_ahead must be -1 (whole chain), 0 (default) or positive (got -2)",
		"cache_aware: first_record_blocks must be -1 (record_ahead), 0 (default) or positive (got -3)",
		"chwbl: key_chars must not be negative",
		"chwbl: load_factor must be at least 1 (got 0.9)",
		"max_fails must not be negative",
		"stale_after must not be negative",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate error lacks %q:\n%v", want, err)
		}
	}
	if err := (Config{}).Validate(); err == nil || !strings.Contains(err.Error(), "at least one backend") {
		t.Errorf("empty config: %v", err)
	}
}

func TestConfigDefaults(t *testing.T) {
	cfg := Config{Backends: []BackendConfig{{URL: "http://a:1"}}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	d := cfg.withDefaults()
	if d.Policy != PolicyCacheAware || d.ScrapeInterval != 500*time.Millisecond || d.ScrapeTimeout != d.ScrapeInterval ||
		d.HealthCheckInterval != 5*time.Second || d.ModelsRefreshInterval != 10*time.Second || d.MaxFails != 3 ||
		d.StaleAfter != 3 || d.EjectBackoffBase != time.Second || d.EjectBackoffCap != 30*time.Second ||
		d.Backends[0].Capacity != 8 || d.ProbeTimeout != 2*time.Second {
		t.Fatalf("defaults = %+v", d)
	}
	if want := (CacheAwareConfig{MaxBlocks: 256, PrefillTokensPerSecond: 10000, QueueBudget: 2 * time.Second,
		SaturationLoad: 1, LoadFactor: 1.25, LocalIndexBlocks: 200000, PrefixTTL: 5 * time.Minute, RecordAhead: 16, FirstRecordBlocks: 1}); d.CacheAware != want {
		t.Fatalf("cache_aware defaults = %+v, want %+v", d.CacheAware, want)
	}
	if want := (CHWBLConfig{KeyChars: 100, LoadFactor: 1.25}); d.CHWBL != want {
		t.Fatalf("chwbl defaults = %+v, want %+v", d.CHWBL, want)
	}
	r, err := New(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Policy().Name() != PolicyCacheAware || r.Backends()[0].Capacity() != 8 || r.Backends()[0].ID() != "http://a:1" {
		t.Fatalf("router from defaults: policy %s, capacity %d", r.Policy().Name(), r.Backends()[0].Capacity())
	}
	r.Stop() // Stop without Start is fine, and idempotent
	r.Stop()
}
