package ui

import (
	"cmp"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Config tunes the dashboard. Zero fields take the defaults written next to them (applied
// by New); Validate reports every problem.
type Config struct {
	// PollInterval is how often the page re-reads its data. Default 2s.
	PollInterval time.Duration
	// BucketWidth is the width of one bucket of the throughput and upload series.
	// Default 15m.
	BucketWidth time.Duration
	// Window is how much history the series keep; the "last 24 h" stats cover it.
	// Default 24h. It must be a whole number of buckets, at most 10,000.
	Window time.Duration
	// SampleInterval is how often the sampler reads the metrics registry into the
	// current bucket. Default 10s.
	SampleInterval time.Duration
	// APIBase is the path prefix under which the browser reaches the proxy's
	// /v1/batches and /v1/files, for a proxy served under a prefix. Default "" (the root
	// of the page's own origin). It must be empty or start with "/" and must not end with
	// "/"; it never names another host, so the page loads nothing from elsewhere.
	APIBase string
	// Title is shown in the page header and the browser tab. Default "vllm-proxy".
	Title string
	// Version is shown next to the title (cmd passes the build version). Default "".
	Version string
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Config defaults.
const (
	DefaultPollInterval   = 2 * time.Second
	DefaultBucketWidth    = 15 * time.Minute
	DefaultWindow         = 24 * time.Hour
	DefaultSampleInterval = 10 * time.Second
	DefaultTitle          = "vllm-proxy"

	maxBuckets = 10_000
)

// ErrInvalidConfig is wrapped by the error Validate returns.
var ErrInvalidConfig = errors.New("invalid ui config")

func (c Config) withDefaults() Config {
	c.PollInterval = cmp.Or(c.PollInterval, DefaultPollInterval)
	c.BucketWidth = cmp.Or(c.BucketWidth, DefaultBucketWidth)
	c.Window = cmp.Or(c.Window, DefaultWindow)
	c.SampleInterval = cmp.Or(c.SampleInterval, DefaultSampleInterval)
	c.Title = cmp.Or(c.Title, DefaultTitle)
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Validate reports every problem with c (after defaults), joined; each wraps
// ErrInvalidConfig.
func (c Config) Validate() error {
	d := c.withDefaults()
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
	}
	for name, v := range map[string]time.Duration{
		"poll_interval": c.PollInterval, "bucket_width": c.BucketWidth, "window": c.Window,
		"sample_interval": c.SampleInterval,
	} {
		if v < 0 {
			bad("%s must not be negative (got %s)", name, v)
		}
	}
	if d.PollInterval > 0 && d.PollInterval < 100*time.Millisecond {
		bad("poll_interval must be at least 100ms (got %s)", d.PollInterval)
	}
	if d.BucketWidth > 0 && d.BucketWidth < time.Second {
		bad("bucket_width must be at least 1s (got %s)", d.BucketWidth)
	}
	if d.BucketWidth >= time.Second && d.Window > 0 {
		switch {
		case d.Window%d.BucketWidth != 0:
			bad("window (%s) must be a whole number of bucket_width (%s)", d.Window, d.BucketWidth)
		case d.Window/d.BucketWidth > maxBuckets:
			bad("window (%s) holds more than %d buckets of %s", d.Window, maxBuckets, d.BucketWidth)
		}
	}
	if b := c.APIBase; b != "" && (!strings.HasPrefix(b, "/") || strings.HasPrefix(b, "//") ||
		strings.HasSuffix(b, "/") || strings.ContainsAny(b, "?#\\\"'<> ")) {
		bad("api_base must be a path starting and not ending with \"/\" (got %q)", b)
	}
	return errors.Join(errs...)
}

// buckets is the number of buckets in the window.
func (c Config) buckets() int { return int(c.Window / c.BucketWidth) }
