package auth

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

const (
	keyA = "sk-alpha-secret-0123456789"
	keyB = "sk-bravo-secret-9876543210"
)

func hashed(k string) string {
	s := sha256.Sum256([]byte(k))
	return "sha256:" + hex.EncodeToString(s[:])
}

// lockedBuf collects log output from concurrent handlers.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuf) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// start serves an echo of the tenant behind the middleware over loopback.
func start(t *testing.T, cfg Config) (*httptest.Server, *lockedBuf, *prometheus.Registry) {
	t.Helper()
	logs := &lockedBuf{}
	reg := prometheus.NewRegistry()
	a, err := New(cfg, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), reg)
	if err != nil {
		t.Fatal(err)
	}
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "tenant="+Tenant(r.Context())) })
	srv := httptest.NewServer(a.Middleware(next))
	t.Cleanup(srv.Close)
	return srv, logs, reg
}

func get(t *testing.T, url string, hdr ...string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(b), res.Header
}

func TestMiddlewareKeys(t *testing.T) {
	srv, logs, reg := start(t, Config{Keys: []string{keyA, hashed(keyB)}})
	tA, tB := "tenant="+TenantOf(keyA), "tenant="+TenantOf(keyB)
	if TenantOf(keyB) != TenantOf(hashed(keyB)) {
		t.Fatalf("plain and hashed forms of one key are different tenants")
	}
	cases := []struct {
		name   string
		path   string
		hdr    []string
		status int
		body   string
	}{
		{"bearer plain key", "/v1/models", []string{"Authorization", "Bearer " + keyA}, 200, tA},
		{"bearer hashed key", "/v1/models", []string{"Authorization", "Bearer " + keyB}, 200, tB},
		{"lower-case scheme", "/v1/models", []string{"Authorization", "bearer " + keyA}, 200, tA},
		{"x-api-key", "/v1/files", []string{"X-Api-Key", keyB}, 200, tB},
		{"missing", "/v1/models", nil, 401, ""},
		{"wrong key", "/v1/models", []string{"Authorization", "Bearer sk-wrong"}, 401, ""},
		{"hash given as key", "/v1/models", []string{"Authorization", "Bearer " + hashed(keyB)}, 401, ""},
		{"basic scheme", "/v1/models", []string{"Authorization", "Basic " + keyA}, 401, ""},
		{"empty bearer", "/v1/models", []string{"Authorization", "Bearer "}, 401, ""},
		{"health exempt", "/health", nil, 200, "tenant="},
		{"metrics exempt", "/metrics", nil, 200, "tenant="},
		{"ui root exempt", "/ui", nil, 200, "tenant="},
		{"ui asset exempt", "/ui/app.js", nil, 200, "tenant="},
		{"ui api protected", "/ui/api/backends", nil, 401, ""},
		{"ui api with key", "/ui/api/backends", []string{"X-Api-Key", keyA}, 200, tA},
		{"dot-dot out of exempt", "/health/../v1/models", nil, 401, ""},
		{"double slash into ui api", "/ui//api/stats", nil, 401, ""},
		{"health prefix is not exempt", "/healthz", nil, 401, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, body, hdr := get(t, srv.URL+c.path, c.hdr...)
			if st != c.status {
				t.Fatalf("status %d, want %d (body %s)", st, c.status, body)
			}
			if c.status == 200 {
				if body != c.body {
					t.Fatalf("body %q, want %q", body, c.body)
				}
				return
			}
			var e struct {
				Error map[string]any `json:"error"`
			}
			if err := json.Unmarshal([]byte(body), &e); err != nil {
				t.Fatalf("401 body is not JSON: %s", body)
			}
			for _, k := range []string{"message", "type", "param", "code"} {
				if _, ok := e.Error[k]; !ok {
					t.Fatalf("401 body lacks error.%s: %s", k, body)
				}
			}
			if e.Error["type"] != "invalid_request_error" || e.Error["code"] != "invalid_api_key" || e.Error["param"] != nil {
				t.Fatalf("401 body %s", body)
			}
			if hdr.Get("Www-Authenticate") == "" || !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") {
				t.Fatalf("401 headers %v", hdr)
			}
		})
	}
	if got := rejected(t, reg, "missing"); got != 7 {
		t.Fatalf("missing-key rejections counted: %v, want 7", got)
	}
	if got := rejected(t, reg, "invalid"); got != 2 {
		t.Fatalf("invalid-key rejections counted: %v, want 2", got)
	}
	out := logs.String()
	if !strings.Contains(out, "request rejected") {
		t.Fatalf("no rejection was logged: %s", out)
	}
	for _, secret := range []string{keyA, keyB, "sk-wrong", hashed(keyB)[len(hashPrefix):]} {
		if strings.Contains(out, secret) {
			t.Fatalf("a key appears in the logs")
		}
	}
}

// rejected reads vllm_proxy_auth_rejected_total{reason} from reg.
func rejected(t *testing.T, reg *prometheus.Registry, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if mf.GetName() == "vllm_proxy_auth_rejected_total" && m.GetLabel()[0].GetValue() == reason {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func TestCustomExempt(t *testing.T) {
	srv, _, _ := start(t, Config{Keys: []string{keyA}, Exempt: []string{"/version", "/public/"}})
	for path, want := range map[string]int{
		"/version": 200, "/public/x": 200, "/health": 401, "/metrics": 401, "/ui/": 200, "/ui/api/stats": 401,
	} {
		if st, body, _ := get(t, srv.URL+path); st != want {
			t.Errorf("%s: status %d, want %d (%s)", path, st, want, body)
		}
	}
}

func TestEmptyExempt(t *testing.T) {
	srv, _, _ := start(t, Config{Keys: []string{keyA}, Exempt: []string{}})
	for path, want := range map[string]int{"/health": 401, "/metrics": 401, "/ui/app.js": 200, "/ui/../v1/files": 401} {
		if st, body, _ := get(t, srv.URL+path); st != want {
			t.Errorf("%s: status %d, want %d (%s)", path, st, want, body)
		}
	}
}

// TestIsExemptCleansPaths checks the raw paths a client can send without Go's client
// cleaning them first.
func TestIsExemptCleansPaths(t *testing.T) {
	a, err := New(Config{Keys: []string{keyA}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]bool{
		"/health": true, "/metrics": true, "/ui": true, "/ui/": true, "/ui/app.js": true,
		"/health/../v1/files": false, "/ui/../v1/files": false, "/ui/./api/stats": false, "/ui//api/x": false,
		"/ui/api": false, "/ui/api/": false, "health": true, "/metrics/": false, "/": false, "": false,
	} {
		if got := a.isExempt(p); got != want {
			t.Errorf("isExempt(%q) = %v, want %v", p, got, want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	err := Config{Keys: []string{"a b", "sha256:zz"}, Exempt: []string{"health"}}.Validate()
	if err == nil {
		t.Fatal("bad config accepted")
	}
	for _, want := range []string{"key 1", "key 2", "exempt path"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not report %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "a b") {
		t.Errorf("error %q repeats a key", err)
	}
	if err := (Config{}).Validate(); err == nil {
		t.Error("config without keys accepted")
	}
	if _, err := New(Config{Keys: []string{keyA}}, nil, nil); err != nil {
		t.Errorf("good config rejected: %v", err)
	}
}
