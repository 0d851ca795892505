package main

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vllm-proxy/vllm-proxy/routing"
	"github.com/vllm-proxy/vllm-proxy/state"
)

// policies are the routing.policy values the routing package knows.
func policies() []string {
	return routing.PolicyNames()
}

// validate checks the decoded values; every problem is reported with the position of its
// key (absent keys hold defaults, which are valid).
func (c *fileConfig) validate() configErrors {
	var errs configErrors
	add := func(key, format string, args ...any) {
		p, ok := c.pos[key]
		where := c.path
		if ok {
			where = fmt.Sprintf("%s:%d:%d", c.path, p.line, p.col)
		}
		errs = append(errs, configError{where: where, pos: p, key: key, msg: fmt.Sprintf(format, args...)})
	}
	if _, ok := c.pos["listen"]; ok {
		if err := checkListen(c.Listen); err != nil {
			add("listen", "%v", err)
		}
	}
	if _, ok := c.pos["redis"]; ok {
		if _, err := state.ParseURL(c.Redis); err != nil {
			add("redis", "%q: %v (example: redis: %s)", state.RedactString(c.Redis), err, state.URLExample)
		}
	}
	seen := map[string]int{}
	for i, b := range c.Backends {
		k := fmt.Sprintf("backends[%d]", i)
		if _, ok := c.pos[k+".url"]; !ok {
			add(k, "url is required")
		} else if norm, err := checkBackendURL(b.URL); err != nil {
			add(k+".url", "%v", err)
		} else if j, dup := seen[norm]; dup {
			add(k+".url", "duplicate of backends[%d].url", j)
		} else {
			seen[norm] = i
			c.Backends[i].URL = norm
		}
		if b.Capacity < 1 {
			add(k+".capacity", "want at least 1, got %d", b.Capacity)
		}
		for j, m := range b.Models {
			if strings.TrimSpace(m) == "" {
				add(fmt.Sprintf("%s.models[%d]", k, j), "want a model name, got an empty string")
			} else if slices.Index(b.Models, m) != j {
				add(fmt.Sprintf("%s.models[%d]", k, j), "duplicate model %q", m)
			}
		}
	}
	r := c.Routing
	if !slices.Contains(policies(), r.Policy) {
		add("routing.policy", "want one of %s, got %q", strings.Join(policies(), ", "), r.Policy)
	}
	for _, d := range []struct {
		key string
		v   int64
	}{
		{"routing.health_check_interval", int64(r.HealthCheckInterval)},
		{"routing.scrape_interval", int64(r.ScrapeInterval)},
		{"routing.request_timeout", int64(r.RequestTimeout)},
		{"routing.models_refresh_interval", int64(r.ModelsRefreshInterval)},
		{"batch.backpressure_poll_interval", int64(c.Batch.BackpressurePollInterval)},
	} {
		if d.v <= 0 {
			add(d.key, "want a positive duration")
		}
	}
	if err := toCacheAware(r.CacheAware).Validate(); err != nil {
		add("routing.cache_aware", "%v", err)
	}
	if r.CacheAware.LocalCacheBlocks < 0 {
		add("routing.cache_aware.local_cache_blocks", "want 0 (the default) or more, got %d", r.CacheAware.LocalCacheBlocks)
	}
	if err := toCHWBL(r.CHWBL).Validate(); err != nil {
		add("routing.chwbl", "%v", err)
	}
	for _, d := range []struct {
		key string
		v   time.Duration
	}{
		{"routing.dial_timeout", r.DialTimeout},
		{"routing.response_header_timeout", r.ResponseHeaderTimeout},
		{"routing.stream_header_timeout", r.StreamHeaderTimeout},
	} {
		if d.v < 0 {
			add(d.key, "want 0 (the default) or a positive duration, got %s", d.v)
		}
	}
	if r.MaxRetries < 0 {
		add("routing.max_retries", "want 0 or more, got %d", r.MaxRetries)
	}
	if r.MaxFails < 1 {
		add("routing.max_fails", "want at least 1, got %d", r.MaxFails)
	}
	if r.MaxBodyBytes < 1 {
		add("routing.max_body_bytes", "want at least 1 byte")
	}
	if c.Batch.BatchPriority < c.Batch.ChatCompletionPriority {
		add("batch.batch_priority", "want at least chat_completion_priority (%d), got %d: lower is served earlier, and batch must not go before interactive traffic",
			c.Batch.ChatCompletionPriority, c.Batch.BatchPriority)
	}
	if err := toBatchConfig(c.Batch).Validate(); err != nil {
		msgs := strings.Split(err.Error(), "\n")
		for i, m := range msgs {
			msgs[i] = strings.TrimPrefix(m, "batch: ")
		}
		add("batch", "%s", strings.Join(msgs, "; "))
	}
	if c.Batch.MaxConcurrentRequests < 1 {
		add("batch.max_concurrent_requests", "want at least 1, got %d", c.Batch.MaxConcurrentRequests)
	}
	if _, ok := c.pos["batch.files_dir"]; ok && strings.TrimSpace(c.Batch.FilesDir) == "" {
		add("batch.files_dir", "want a directory path, got an empty string")
	}
	return errs
}

// checkListen accepts host:port with a numeric port, e.g. ":8010" or "0.0.0.0:8010".
func checkListen(s string) error {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("want host:port such as :8010 or 127.0.0.1:8010, got %q", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("want a port from 0 to 65535, got %q", port)
	}
	return nil
}

// checkBackendURL accepts an http(s) base URL with a host and returns it without a
// trailing slash.
func checkBackendURL(s string) (string, error) {
	const want = "want a base URL such as http://10.0.0.5:8000"
	u, err := url.Parse(strings.TrimSpace(s))
	switch {
	case err != nil:
		return "", fmt.Errorf("%s, got %q", want, s)
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("%s (scheme http or https), got %q", want, s)
	case u.Host == "" || u.Hostname() == "":
		return "", fmt.Errorf("%s (with a host), got %q", want, s)
	case u.User != nil:
		return "", fmt.Errorf("%s (no user info), got a URL with credentials", want)
	case u.RawQuery != "" || u.Fragment != "":
		return "", fmt.Errorf("%s (no query or fragment), got %q", want, s)
	case strings.HasSuffix(strings.TrimRight(u.Path, "/"), "/v1"):
		return "", fmt.Errorf("%s, without /v1 (the proxy adds it), got %q", want, s)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return "", fmt.Errorf("%s (port 1-65535), got %q", want, s)
		}
	}
	return strings.TrimRight(u.String(), "/"), nil
}
