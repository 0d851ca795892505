package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultExempt returns the paths served without a key unless Config.Exempt says
// otherwise: /health and /metrics.
func DefaultExempt() []string { return []string{"/health", "/metrics"} }

// Config turns on and tunes the key check.
type Config struct {
	// Keys are the accepted keys, each plain or "sha256:<64 hex digits>" (see ParseKeys).
	// At least one is required: with no keys cmd does not build an Authenticator at all.
	Keys []string
	// Exempt are paths served without a key: an entry matches that exact path, or, when
	// it ends in "/", every path under it. nil means DefaultExempt() (/health, /metrics);
	// an empty non-nil slice exempts nothing but the dashboard assets.
	// The dashboard's static assets (/ui, /ui/ and below, except /ui/api/) are always
	// exempt: they hold no data, and the browser cannot send a key for them.
	Exempt []string
}

// Validate reports every problem with c.
func (c Config) Validate() error {
	var errs []error
	if len(c.Keys) == 0 {
		errs = append(errs, errors.New("auth: at least one api key is required"))
	}
	for i, k := range c.Keys {
		if _, err := normalizeKey(k); err != nil {
			errs = append(errs, fmt.Errorf("auth: key %d: %w", i+1, err))
		}
	}
	for _, p := range c.Exempt {
		if !strings.HasPrefix(p, "/") {
			errs = append(errs, fmt.Errorf("auth: exempt path %q must start with /", p))
		}
	}
	return errors.Join(errs...)
}

// Authenticator checks API keys. It is immutable after New and safe for concurrent use.
type Authenticator struct {
	digests [][sha256.Size]byte
	exempt  []string
	log     *slog.Logger
	m       *Metrics
}

// New builds an Authenticator for cfg. log receives one debug record per rejected
// request (path and reason, never the key); reg receives the package's metrics.
func New(cfg Config, log *slog.Logger, reg prometheus.Registerer) (*Authenticator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &Authenticator{log: log, m: NewMetrics(reg), exempt: slices.Clone(cfg.Exempt)}
	if cfg.Exempt == nil {
		a.exempt = DefaultExempt()
	}
	for _, k := range cfg.Keys {
		n, _ := normalizeKey(k) // checked by Validate
		a.digests = append(a.digests, digest(n))
	}
	return a, nil
}

type tenantKey struct{}

// Tenant returns the tenant of the request whose context this is: a stable id derived
// from its API key, or "" when keys are off or the path is exempt.
func Tenant(ctx context.Context) string {
	t, _ := ctx.Value(tenantKey{}).(string)
	return t
}

// WithTenant returns ctx carrying tenant; for in-process callers that act for a tenant.
func WithTenant(ctx context.Context, tenant string) context.Context {
	return context.WithValue(ctx, tenantKey{}, tenant)
}

// Middleware requires a valid key on every non-exempt request before calling next, with
// the caller's tenant in the request context. The key headers are left on the request;
// the proxy decides what goes to backends.
func (a *Authenticator) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.isExempt(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		key, ok := presented(r)
		if !ok {
			a.reject(w, r, "missing", "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")
			return
		}
		tenant, ok := a.check(key)
		if !ok {
			a.reject(w, r, "invalid", "Incorrect API key provided.")
			return
		}
		next.ServeHTTP(w, r.WithContext(WithTenant(r.Context(), tenant)))
	})
}

// check compares the key's digest with every configured digest in constant time, never
// stopping early, so timing says nothing about which key (if any) matched.
func (a *Authenticator) check(key string) (string, bool) {
	d := sha256.Sum256([]byte(key))
	match := -1
	for i := range a.digests {
		if subtle.ConstantTimeCompare(d[:], a.digests[i][:]) == 1 && match < 0 {
			match = i
		}
	}
	if match < 0 {
		return "", false
	}
	return tenantOf(a.digests[match]), true
}

// presented returns the key of "Authorization: Bearer KEY", else of "X-Api-Key". An
// Authorization header of another scheme counts as no key, even beside an X-Api-Key:
// the client meant something else by it.
func presented(r *http.Request) (string, bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, key, ok := strings.Cut(h, " ")
		if ok && strings.EqualFold(scheme, "Bearer") && strings.TrimSpace(key) != "" {
			return strings.TrimSpace(key), true
		}
		return "", false
	}
	if k := strings.TrimSpace(r.Header.Get("X-Api-Key")); k != "" {
		return k, true
	}
	return "", false
}

// isExempt matches the cleaned path, so "/health/../v1/files" is not exempt.
func (a *Authenticator) isExempt(p string) bool {
	c := path.Clean("/" + p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	if c == "/ui" || (strings.HasPrefix(c, "/ui/") && !strings.HasPrefix(c, "/ui/api/") && c != "/ui/api") {
		return true
	}
	for _, e := range a.exempt {
		if c == e || (strings.HasSuffix(e, "/") && strings.HasPrefix(c, e)) {
			return true
		}
	}
	return false
}

func (a *Authenticator) reject(w http.ResponseWriter, r *http.Request, reason, msg string) {
	a.m.rejected.WithLabelValues(reason).Inc()
	a.log.DebugContext(r.Context(), "request rejected: api key", "reason", reason, "method", r.Method,
		"path", r.URL.Path, "remote", r.RemoteAddr)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("WWW-Authenticate", `Bearer realm="vllm-proxy"`)
	w.WriteHeader(http.StatusUnauthorized)
	_, _ = w.Write(errorBody(msg))
}
