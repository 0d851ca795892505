package proxy

import (
	"errors"
	"fmt"
	"time"
)

// ErrInvalidConfig is wrapped by the error [Config.Validate] returns.
var ErrInvalidConfig = errors.New("invalid proxy config")

// Config configures the [Handler]. The zero value is usable: [New] fills in every default
// documented below. Durations and sizes may not be negative.
type Config struct {
	// Version is what GET /version reports as the proxy's version. Default "dev".
	Version string
	// MaxBodyBytes bounds a request body; a larger one gets an OpenAI-shaped 413.
	// Default 32 MiB.
	MaxBodyBytes int64
	// MaxRetries is how many further backends a request may be tried on after the first
	// one failed before any byte reached the client. Default 2. Use -1 for no retries.
	MaxRetries int
	// RequestTimeout bounds a whole request: every attempt, the back-off between them,
	// and the streaming of the response. Default 10m.
	RequestTimeout time.Duration
	// DialTimeout bounds connecting to a backend, and separately its TLS handshake for
	// https backends. Default 2s.
	DialTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for a backend's response headers in one
	// attempt of a non-streaming request; when it expires the request is retried on
	// another backend. vLLM sends a non-streaming response's headers only once generation
	// has finished, so this must exceed the longest generation; 0 (the default) leaves
	// only RequestTimeout.
	ResponseHeaderTimeout time.Duration
	// StreamHeaderTimeout is ResponseHeaderTimeout for requests with "stream": true,
	// whose headers vLLM sends as soon as the request is accepted, before any token.
	// Default 15s; -1 disables it.
	StreamHeaderTimeout time.Duration
	// RetryBackoff is the base wait before a retry; it doubles per retry, is capped by
	// RetryBackoffMax, and is jittered to between half and all of that. Default 20ms.
	RetryBackoff time.Duration
	// RetryBackoffMax caps the wait before a retry. Default 250ms.
	RetryBackoffMax time.Duration
	// MaxIdleConnsPerHost is the keep-alive pool size per backend. Default 1024.
	MaxIdleConnsPerHost int
	// IdleConnTimeout closes keep-alive connections idle this long. Default 90s.
	IdleConnTimeout time.Duration
	// MaxPromptBytes caps the canonical prompt text handed to routing for prefix
	// hashing; text past it cannot change a prefix-affinity decision. Default 256 KiB.
	MaxPromptBytes int
	// MaxDispatchResponseBytes bounds a backend response body held in memory by
	// [Handler.Dispatch]. Default 64 MiB.
	MaxDispatchResponseBytes int64
	// Priority sets vLLM's "priority" field per traffic class on backends that run
	// priority scheduling (see priority.go). The zero value sends interactive requests
	// at 0 and batch lines at 10.
	Priority PriorityConfig
	// BackendAuth chooses the credentials sent to backends (auth_header.go). The zero
	// value forwards the client's Authorization header untouched.
	BackendAuth BackendAuth
}

// Defaults used by [Config.withDefaults].
const (
	DefaultVersion                  = "dev"
	DefaultMaxBodyBytes             = 32 << 20
	DefaultMaxRetries               = 2
	DefaultRequestTimeout           = 10 * time.Minute
	DefaultDialTimeout              = 2 * time.Second
	DefaultStreamHeaderTimeout      = 15 * time.Second
	DefaultRetryBackoff             = 20 * time.Millisecond
	DefaultRetryBackoffMax          = 250 * time.Millisecond
	DefaultMaxIdleConnsPerHost      = 1024
	DefaultIdleConnTimeout          = 90 * time.Second
	DefaultMaxPromptBytes           = 256 << 10
	DefaultMaxDispatchResponseBytes = 64 << 20
)

// withDefaults returns a copy of c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.Version == "" {
		c.Version = DefaultVersion
	}
	setDefault(&c.MaxBodyBytes, DefaultMaxBodyBytes)
	setDefault(&c.MaxRetries, DefaultMaxRetries)
	if c.MaxRetries < 0 {
		c.MaxRetries = 0
	}
	setDefault(&c.RequestTimeout, DefaultRequestTimeout)
	setDefault(&c.DialTimeout, DefaultDialTimeout)
	setDefault(&c.StreamHeaderTimeout, DefaultStreamHeaderTimeout)
	if c.StreamHeaderTimeout < 0 {
		c.StreamHeaderTimeout = 0
	}
	setDefault(&c.RetryBackoff, DefaultRetryBackoff)
	setDefault(&c.RetryBackoffMax, DefaultRetryBackoffMax)
	setDefault(&c.MaxIdleConnsPerHost, DefaultMaxIdleConnsPerHost)
	setDefault(&c.IdleConnTimeout, DefaultIdleConnTimeout)
	setDefault(&c.MaxPromptBytes, DefaultMaxPromptBytes)
	setDefault(&c.MaxDispatchResponseBytes, DefaultMaxDispatchResponseBytes)
	return c
}

func setDefault[T int | int64 | time.Duration](v *T, def T) {
	if *v == 0 {
		*v = def
	}
}

// Validate reports every problem with c (after defaults), joined, each wrapping
// [ErrInvalidConfig].
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
	}
	if c.MaxBodyBytes < 0 {
		bad("max_body_bytes must not be negative, got %d", c.MaxBodyBytes)
	}
	if c.MaxRetries < -1 {
		bad("max_retries must be -1 (none) or more, got %d", c.MaxRetries)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"request_timeout", c.RequestTimeout},
		{"dial_timeout", c.DialTimeout},
		{"response_header_timeout", c.ResponseHeaderTimeout},
		{"retry_backoff", c.RetryBackoff},
		{"retry_backoff_max", c.RetryBackoffMax},
		{"idle_conn_timeout", c.IdleConnTimeout},
	} {
		if d.v < 0 {
			bad("%s must not be negative, got %s", d.name, d.v)
		}
	}
	if c.StreamHeaderTimeout < -1 {
		bad("stream_header_timeout must be -1 (off) or more, got %s", c.StreamHeaderTimeout)
	}
	if c.RetryBackoff > 0 && c.RetryBackoffMax > 0 && c.RetryBackoffMax < c.RetryBackoff {
		bad("retry_backoff_max (%s) must not be below retry_backoff (%s)", c.RetryBackoffMax, c.RetryBackoff)
	}
	if c.MaxIdleConnsPerHost < 0 {
		bad("max_idle_conns_per_host must not be negative, got %d", c.MaxIdleConnsPerHost)
	}
	if c.MaxPromptBytes < 0 {
		bad("max_prompt_bytes must not be negative, got %d", c.MaxPromptBytes)
	}
	if c.MaxDispatchResponseBytes < 0 {
		bad("max_dispatch_response_bytes must not be negative, got %d", c.MaxDispatchResponseBytes)
	}
	for _, p := range c.Priority.problems() {
		bad("%s", p)
	}
	for _, p := range c.BackendAuth.problems() {
		bad("%s", p)
	}
	return errors.Join(errs...)
}
