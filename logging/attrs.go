package logging

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Attribute keys shared by every package, so one query finds a request or a backend
// across all components' records.
const (
	KeyRequestID = "request_id" // the X-Request-Id of a client request
	KeyBackend   = "backend"    // a backend's base URL
	KeyModel     = "model"      // the model name a request asked for
	KeyErr       = "err"        // an error value; use Err
	KeyStatus    = "status"     // an HTTP status code
	KeyMethod    = "method"     // an HTTP method
	KeyPath      = "path"       // a URL path
	KeyDuration  = "duration"   // a time.Duration
	KeyAttempt   = "attempt"    // 1-based attempt number of a retried request
	KeyScore     = "score"      // a routing score in [0,1]
	KeyPriority  = "priority"   // a vLLM scheduling priority
	KeyBatchID   = "batch_id"   // an OpenAI batch id
	KeyFileID    = "file_id"    // an OpenAI file id
	KeyComponent = "component"  // the service a record comes from, e.g. "health"
	KeyAddr      = "addr"       // a listen or dial address
	KeyRedis     = "redis"      // a redacted Redis URL
	KeyHeaders   = "headers"    // HTTP headers (Loud only); use Headers
	KeyBody      = "body"       // an HTTP body (Loud only); use Body
)

// LoudBodyLimit is how many bytes of a body Body keeps.
const LoudBodyLimit = 2048

// Err is the attribute for an error: slog.Any(KeyErr, err). Handlers expand it into its
// full chain where the record carries all details.
func Err(err error) slog.Attr { return slog.Any(KeyErr, err) }

// Enabled reports whether logger writes records at level, so callers can skip building
// expensive Verbose or Loud attributes. A nil logger is never enabled.
func Enabled(ctx context.Context, logger *slog.Logger, level slog.Level) bool {
	return logger != nil && logger.Enabled(ctx, level)
}

// Body is the attribute for an HTTP body at Loud: at most LoudBodyLimit bytes, as text,
// with the number of bytes left out appended.
func Body(key string, b []byte) slog.Attr {
	if len(b) <= LoudBodyLimit {
		return slog.String(key, string(b))
	}
	n := LoudBodyLimit
	for n > LoudBodyLimit-utf8.UTFMax && !utf8.RuneStart(b[n]) {
		n-- // do not split a UTF-8 sequence
	}
	return slog.String(key, string(b[:n])+"…("+strconv.Itoa(len(b)-n)+" more bytes)")
}

// Headers is the attribute for HTTP headers at Loud: a group of name=value (several
// values joined with ", "), sorted by name, with credentials (Authorization,
// Proxy-Authorization, Cookie, Set-Cookie, X-Api-Key, Api-Key) replaced by "xxxxx".
func Headers(key string, h http.Header) slog.Attr {
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	slices.Sort(names)
	attrs := make([]slog.Attr, 0, len(names))
	for _, k := range names {
		v := strings.Join(h[k], ", ")
		if secretHeader(k) {
			v = "xxxxx"
		}
		attrs = append(attrs, slog.String(k, v))
	}
	return slog.Attr{Key: key, Value: slog.GroupValue(attrs...)}
}

func secretHeader(name string) bool {
	switch http.CanonicalHeaderKey(name) {
	case "Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie", "X-Api-Key", "Api-Key":
		return true
	}
	return false
}
