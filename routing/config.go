package routing

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"strings"
	"time"
)

// Policy names accepted in Config.Policy.
const (
	PolicyLeastLoad  = "least_load"
	PolicyRoundRobin = "round_robin"
	PolicyRandom     = "random"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultCapacity              = 8
	DefaultPolicy                = PolicyCacheAware
	DefaultScrapeInterval        = 500 * time.Millisecond
	DefaultHealthCheckInterval   = 5 * time.Second
	DefaultProbeTimeout          = 2 * time.Second
	DefaultModelsRefreshInterval = 10 * time.Second
	DefaultMaxFails              = 3
	DefaultEjectBackoffBase      = time.Second
	DefaultEjectBackoffCap       = 30 * time.Second
	DefaultStaleAfter            = 3
)

// Config configures a Router. The zero value of every field means "use the default".
// A Config is a plain value; New copies it.
type Config struct {
	// Backends is the pool of vLLM servers. At least one is required.
	Backends []BackendConfig
	// Policy chooses among the healthy backends serving a model: "cache_aware" (default),
	// "least_load", "round_robin", "random" or "chwbl" (see PolicyNames and the package doc).
	Policy string
	// CacheAware tunes the cache_aware policy (defaults on each field).
	CacheAware CacheAwareConfig
	// CHWBL tunes the chwbl policy (defaults on each field).
	CHWBL CHWBLConfig
	// ScrapeInterval is how often each backend's GET /metrics is read. Default 500ms.
	ScrapeInterval time.Duration
	// ScrapeTimeout bounds one /metrics request. Default: ScrapeInterval.
	ScrapeTimeout time.Duration
	// HealthCheckInterval is how often a healthy backend's GET /health is probed. Default 5s.
	HealthCheckInterval time.Duration
	// BackendAPIKey, when set, is sent as "Authorization: Bearer KEY" on the router's own
	// calls to backends' /v1 endpoints (model discovery, the priority probe), for vLLM
	// servers started with --api-key. Never logged.
	BackendAPIKey string
	// ProbeTimeout bounds one GET /health or GET /v1/models request. Default 2s.
	ProbeTimeout time.Duration
	// ModelsRefreshInterval is how often each backend's GET /v1/models is read. Default 10s.
	ModelsRefreshInterval time.Duration
	// MaxFails consecutive failed attempts (connect errors, timeouts, 5xx) eject a backend.
	// Default 3.
	MaxFails int
	// EjectBackoffBase is the wait before the first re-probe of an ejected backend; each
	// failed re-probe doubles it. Default 1s.
	EjectBackoffBase time.Duration
	// EjectBackoffCap caps the re-probe back-off. Default 30s.
	EjectBackoffCap time.Duration
	// StaleAfter consecutive missed scrapes make a backend's metrics stale: its load then
	// comes from in-flight counts alone. Default 3.
	StaleAfter int
	// PrefillSpread is how much more loaded (in load score) a backend with fewer prompts
	// being prefilled may be and still be preferred by the load-based choices (least_load,
	// cache_aware's cold placement and saturation release; a cache_aware affinity pick
	// keeps its backend), so prompts that arrive together are prefilled on different
	// backends instead of in one long engine step (see prefill.go). Default 0.25; negative
	// turns spreading off.
	PrefillSpread float64
	// BatchYields says batch requests give their slots up to interactive ones
	// (backpressure eviction; cmd sets it from batch.backpressure_evict): an interactive
	// pick then leaves the batch requests in flight out of a backend's load, so a backend
	// full of batch work still draws interactive traffic instead of sending it all to the
	// others. Default false.
	BatchYields bool
}

// BackendConfig describes one vLLM server.
type BackendConfig struct {
	// URL is the server's base URL, e.g. http://10.0.0.5:8000 (no /v1 suffix). Required.
	URL string
	// Capacity is the most concurrent requests the server should take; the load score is
	// relative to it. Default 8.
	Capacity int
	// Models are served model names known in advance. They are merged with the names the
	// server reports on GET /v1/models. Optional.
	Models []string
	// PriorityScheduling says whether the server runs --scheduling-policy priority (and so
	// accepts a non-zero "priority" field). nil means unknown: treated as false until
	// detection exists.
	PriorityScheduling *bool
}

// ErrInvalidConfig is wrapped by every Validate error.
var ErrInvalidConfig = errors.New("invalid routing config")

// Validate reports every problem in c at once (zero values are valid: they mean the
// default). The error wraps ErrInvalidConfig.
func (c Config) Validate() error {
	var probs []string
	add := func(format string, args ...any) { probs = append(probs, fmt.Sprintf(format, args...)) }
	if len(c.Backends) == 0 {
		add("at least one backend is required")
	}
	if p := validateBackends(c.Backends); len(p) > 0 {
		probs = append(probs, p...)
	}
	if c.Policy != "" && !knownPolicy(c.Policy) {
		add("policy %q is unknown (want one of %s)", c.Policy, strings.Join(policyNames(), ", "))
	}
	probs = append(probs, c.CacheAware.problems()...)
	probs = append(probs, c.CHWBL.problems()...)
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"scrape_interval", c.ScrapeInterval},
		{"scrape_timeout", c.ScrapeTimeout},
		{"health_check_interval", c.HealthCheckInterval},
		{"probe_timeout", c.ProbeTimeout},
		{"models_refresh_interval", c.ModelsRefreshInterval},
		{"eject_backoff_base", c.EjectBackoffBase},
		{"eject_backoff_cap", c.EjectBackoffCap},
	} {
		if d.v < 0 {
			add("%s must not be negative (got %s)", d.name, d.v)
		}
	}
	if c.EjectBackoffBase > 0 && c.EjectBackoffCap > 0 && c.EjectBackoffCap < c.EjectBackoffBase {
		add("eject_backoff_cap (%s) must not be below eject_backoff_base (%s)", c.EjectBackoffCap, c.EjectBackoffBase)
	}
	if c.MaxFails < 0 {
		add("max_fails must not be negative (got %d)", c.MaxFails)
	}
	if c.StaleAfter < 0 {
		add("stale_after must not be negative (got %d)", c.StaleAfter)
	}
	if math.IsNaN(c.PrefillSpread) || math.IsInf(c.PrefillSpread, 0) {
		add("prefill_spread must be a finite number (got %v)", c.PrefillSpread)
	}
	if len(probs) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, strings.Join(probs, "; "))
	}
	return nil
}

// validateBackends checks a backend list on its own; Update uses it too.
func validateBackends(bs []BackendConfig) []string {
	var probs []string
	seen := map[string]int{}
	for i, b := range bs {
		id, err := normalizeURL(b.URL)
		if err != nil {
			probs = append(probs, fmt.Sprintf("backends[%d]: %v", i, err))
		} else if j, dup := seen[id]; dup {
			probs = append(probs, fmt.Sprintf("backends[%d]: url %s repeats backends[%d]", i, id, j))
		} else {
			seen[id] = i
		}
		if b.Capacity < 0 {
			probs = append(probs, fmt.Sprintf("backends[%d]: capacity must not be negative (got %d)", i, b.Capacity))
		}
		for j, m := range b.Models {
			if strings.TrimSpace(m) == "" {
				probs = append(probs, fmt.Sprintf("backends[%d]: models[%d] is empty", i, j))
			}
		}
	}
	return probs
}

// normalizeURL parses a backend URL and returns its canonical form, which is the
// backend's ID: scheme://host[:port][/path] without a trailing slash.
func normalizeURL(raw string) (string, error) {
	if raw == "" {
		return "", errors.New("url is required")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("url %q does not parse: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return "", fmt.Errorf("url %q must start with http:// or https://", raw)
	}
	if u.Host == "" {
		return "", fmt.Errorf("url %q has no host", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("url %q must not carry a query, fragment or user info", raw)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u.String(), nil
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.Policy == "" {
		c.Policy = DefaultPolicy
	}
	if c.ScrapeInterval == 0 {
		c.ScrapeInterval = DefaultScrapeInterval
	}
	if c.ScrapeTimeout == 0 {
		c.ScrapeTimeout = c.ScrapeInterval
	}
	if c.HealthCheckInterval == 0 {
		c.HealthCheckInterval = DefaultHealthCheckInterval
	}
	if c.ProbeTimeout == 0 {
		c.ProbeTimeout = DefaultProbeTimeout
	}
	if c.ModelsRefreshInterval == 0 {
		c.ModelsRefreshInterval = DefaultModelsRefreshInterval
	}
	if c.MaxFails == 0 {
		c.MaxFails = DefaultMaxFails
	}
	if c.EjectBackoffBase == 0 {
		c.EjectBackoffBase = DefaultEjectBackoffBase
	}
	if c.EjectBackoffCap == 0 {
		c.EjectBackoffCap = max(DefaultEjectBackoffCap, c.EjectBackoffBase)
	}
	if c.StaleAfter == 0 {
		c.StaleAfter = DefaultStaleAfter
	}
	if c.PrefillSpread == 0 {
		c.PrefillSpread = DefaultPrefillSpread
	}
	c.CacheAware = c.CacheAware.withDefaults()
	c.CHWBL = c.CHWBL.withDefaults()
	c.Backends = append([]BackendConfig(nil), c.Backends...)
	for i := range c.Backends {
		c.Backends[i] = c.Backends[i].withDefaults()
	}
	return c
}

func (b BackendConfig) withDefaults() BackendConfig {
	if b.Capacity == 0 {
		b.Capacity = DefaultCapacity
	}
	b.Models = append([]string(nil), b.Models...)
	return b
}
