package main

import (
	"fmt"
	"os"
	"time"

	"github.com/vllm-proxy/vllm-proxy/routing"
)

// fileConfig is the YAML config file's schema (docs/CONFIG.md documents every key). After
// loadConfig it holds the file's values with defaults filled in; serve then lays the
// flag and env values on top. Field types are the ones decodeInto knows.
type fileConfig struct {
	// Listen is the address the OpenAI API is served on. Default ":8010".
	Listen string `yaml:"listen"`
	// Redis is the -R value. Default "local".
	Redis string `yaml:"redis"`
	// Backends are the vLLM servers. --backend / VLLM_PXY_BACKENDS replace them.
	Backends []backendConfig `yaml:"backends"`
	// Routing tunes picking, health and retries.
	Routing routingConfig `yaml:"routing"`
	// Batch tunes the Files and Batches APIs.
	Batch batchConfig `yaml:"batch"`

	// path is the file these values came from, "" when there is none.
	path string
	// pos maps each key present in the file ("routing.max_retries", "backends[1].url")
	// to where its value starts; keys absent from the file got defaults.
	pos map[string]position
}

// backendConfig is one entry of backends.
type backendConfig struct {
	// URL is the server's base URL, http(s)://host:port, without /v1. Required.
	URL string `yaml:"url"`
	// Capacity is the most concurrent requests the server should get. Default 8.
	Capacity int `yaml:"capacity"`
	// Models are model names served, known in advance; discovery adds to them.
	Models []string `yaml:"models"`
	// PriorityScheduling: true, false, or auto (the default: detect).
	PriorityScheduling triState `yaml:"priority_scheduling"`
}

// routingConfig is the routing section.
type routingConfig struct {
	// Policy picks among healthy backends: cache_aware (default), least_load,
	// round_robin, random or chwbl.
	Policy string `yaml:"policy"`
	// HealthCheckInterval between GET /health probes of each backend. Default 5s.
	HealthCheckInterval time.Duration `yaml:"health_check_interval"`
	// ScrapeInterval between GET /metrics reads of each backend. Default 500ms.
	ScrapeInterval time.Duration `yaml:"scrape_interval"`
	// RequestTimeout bounds a whole request, retries and streaming included. Default 10m.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// MaxRetries is how many other backends a failed request may be tried on. Default 2.
	MaxRetries int `yaml:"max_retries"`
	// MaxFails consecutive failures eject a backend until it recovers. Default 3.
	MaxFails int `yaml:"max_fails"`
	// ModelsRefreshInterval between GET /v1/models reads of each backend. Default 10s.
	ModelsRefreshInterval time.Duration `yaml:"models_refresh_interval"`
	// MaxBodyBytes bounds a request body. Default 32MiB.
	MaxBodyBytes byteSize `yaml:"max_body_bytes"`
	// DialTimeout bounds connecting to a backend (0: proxy default 2s).
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// ResponseHeaderTimeout bounds the wait for a backend's response headers in one
	// non-streaming attempt (0: proxy default; see proxy.Config).
	ResponseHeaderTimeout time.Duration `yaml:"response_header_timeout"`
	// StreamHeaderTimeout is the same for streaming requests (0: proxy default 15s).
	StreamHeaderTimeout time.Duration `yaml:"stream_header_timeout"`
	// PrefillSpread is how much more loaded a backend with fewer prompts being prefilled
	// may be and still be preferred (routing.Config.PrefillSpread). 0 = routing's default
	// 0.25; negative turns spreading off.
	PrefillSpread float64 `yaml:"prefill_spread"`
	// CacheAware tunes the cache_aware policy; zero values take routing's defaults.
	CacheAware cacheAwareConfig `yaml:"cache_aware"`
	// CHWBL tunes the chwbl policy; zero values take routing's defaults.
	CHWBL chwblConfig `yaml:"chwbl"`
}

// cacheAwareConfig is routing.cache_aware; see routing.CacheAwareConfig for the meaning
// and defaults of each key (0 = default).
type cacheAwareConfig struct {
	BlockChars             int           `yaml:"block_chars"`
	MaxBlocks              int           `yaml:"max_blocks"`
	PrefillTokensPerSecond float64       `yaml:"prefill_tokens_per_second"`
	QueueBudget            time.Duration `yaml:"queue_budget"`
	SaturationLoad         float64       `yaml:"saturation_load"`
	LoadFactor             float64       `yaml:"load_factor"`
	LocalIndexBlocks       int           `yaml:"local_index_blocks"`
	PrefixTTL              time.Duration `yaml:"prefix_ttl"`
	RecordAhead            int           `yaml:"record_ahead"`
	FirstRecordBlocks      int           `yaml:"first_record_blocks"`
	// LocalCacheBlocks caps each replica's local prefix ownership cache
	// (state.Config.PrefixCacheBlocks; 0 = 200,000 blocks, ≤ 64 bytes each).
	LocalCacheBlocks int `yaml:"local_cache_blocks"`
}

// chwblConfig is routing.chwbl; see routing.CHWBLConfig (0 = default).
type chwblConfig struct {
	KeyChars   int     `yaml:"key_chars"`
	LoadFactor float64 `yaml:"load_factor"`
}

// batchConfig is the batch section.
type batchConfig struct {
	// MaxConcurrentRequests is how many batch lines may be in flight per replica. Default 50.
	MaxConcurrentRequests int `yaml:"max_concurrent_requests"`
	// BackpressureEnabled pauses batch lines while interactive load is high. Default true.
	BackpressureEnabled bool `yaml:"backpressure_enabled"`
	// BackpressurePollInterval is how often backpressure rechecks load. Default 2s.
	BackpressurePollInterval time.Duration `yaml:"backpressure_poll_interval"`
	// BackpressureEvict stops the newest running batch requests beyond a backend's target
	// when interactive traffic needs the room; they are sent again later. Default true.
	BackpressureEvict bool `yaml:"backpressure_evict"`
	// ChatCompletionPriority is the vLLM priority of interactive requests. Default 0.
	ChatCompletionPriority int `yaml:"chat_completion_priority"`
	// BatchPriority is the vLLM priority of batch lines (higher runs later). Default 10.
	BatchPriority int `yaml:"batch_priority"`
	// FilesDir stores uploaded files in this shared directory instead of in Redis.
	FilesDir string `yaml:"files_dir"`
	// Workers says whether this replica runs batch workers. Default true.
	Workers bool `yaml:"workers"`
	// The keys below map onto batch.Config; 0 or absent means the batch package's
	// default (docs/CONFIG.md lists them).
	LeaseTTL         time.Duration `yaml:"lease_ttl"`
	ChunkLines       int           `yaml:"chunk_lines"`
	MaxFileBytes     byteSize      `yaml:"max_file_bytes"`
	MaxLines         int           `yaml:"max_lines"`
	MaxResultBytes   byteSize      `yaml:"max_result_bytes"`
	FileTTL          time.Duration `yaml:"file_ttl"`
	CompletionWindow time.Duration `yaml:"completion_window"`
	ModelWait        time.Duration `yaml:"model_wait"`
	RetryAttempts    int           `yaml:"retry_attempts"`
	RetryBackoff     time.Duration `yaml:"retry_backoff"`
}

// Defaults of the keys above.
const (
	defaultListen                   = ":8010"
	defaultRedis                    = "local"
	defaultCapacity                 = 8
	defaultPolicy                   = routing.DefaultPolicy
	defaultHealthCheckInterval      = 5 * time.Second
	defaultScrapeInterval           = 500 * time.Millisecond
	defaultRequestTimeout           = 10 * time.Minute
	defaultMaxRetries               = 2
	defaultMaxFails                 = 3
	defaultModelsRefreshInterval    = 10 * time.Second
	defaultMaxBodyBytes             = 32 << 20
	defaultMaxConcurrentRequests    = 50
	defaultBackpressurePollInterval = 2 * time.Second
	defaultBatchPriority            = 10
)

// defaultConfig is the configuration without a file.
func defaultConfig() *fileConfig {
	return &fileConfig{
		Listen: defaultListen,
		Redis:  defaultRedis,
		Routing: routingConfig{
			Policy:                defaultPolicy,
			HealthCheckInterval:   defaultHealthCheckInterval,
			ScrapeInterval:        defaultScrapeInterval,
			RequestTimeout:        defaultRequestTimeout,
			MaxRetries:            defaultMaxRetries,
			MaxFails:              defaultMaxFails,
			ModelsRefreshInterval: defaultModelsRefreshInterval,
			MaxBodyBytes:          defaultMaxBodyBytes,
		},
		Batch: batchConfig{
			MaxConcurrentRequests:    defaultMaxConcurrentRequests,
			BackpressureEnabled:      true,
			BackpressurePollInterval: defaultBackpressurePollInterval,
			BackpressureEvict:        true,
			BatchPriority:            defaultBatchPriority,
			Workers:                  true,
		},
		pos: map[string]position{},
	}
}

// loadConfig reads, strictly decodes and validates the config file at path, with
// defaults for absent keys. Every problem is reported in one error (a configErrors),
// each with file:line:col. The lead's hot reload calls it (through ServeCmd.Reload,
// which also lays the flag and env values on top).
func loadConfig(path string) (*fileConfig, error) {
	data, err := os.ReadFile(path) // #nosec G304 -- the operator names the config file (--config); reading it is the point
	if err != nil {
		return nil, fmt.Errorf("reading config file: %w", err)
	}
	return parseConfig(path, data)
}

// parseConfig is loadConfig on bytes already read; path only names them in messages.
func parseConfig(path string, data []byte) (*fileConfig, error) {
	cfg := defaultConfig()
	cfg.path = path
	d := &decoder{path: path, pos: cfg.pos}
	d.decodeFile(data, cfg)
	if len(d.errs) == 0 {
		cfg.fillBackendDefaults()
		d.errs = append(d.errs, cfg.validate()...)
	}
	if len(d.errs) > 0 {
		return nil, d.errs.sorted()
	}
	return cfg, nil
}

// fillBackendDefaults gives backends without a capacity the default one.
func (c *fileConfig) fillBackendDefaults() {
	for i := range c.Backends {
		if _, ok := c.pos[fmt.Sprintf("backends[%d].capacity", i)]; !ok && c.Backends[i].Capacity == 0 {
			c.Backends[i].Capacity = defaultCapacity
		}
	}
}
