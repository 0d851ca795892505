package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/vllm-proxy/vllm-proxy/routing"
	"github.com/vllm-proxy/vllm-proxy/sim"
)

// env is a proxy under test: a Router over the given backends, the Handler, and a
// loopback server in front of it.
type env struct {
	router *routing.Router
	h      *Handler
	srv    *httptest.Server
	client *http.Client
	reg    *prometheus.Registry
}

type envOpts struct {
	cfg     Config
	routing routing.Config // Backends are filled in from the urls
	start   bool           // run the router's discovery, scrapes and health checks
	log     *slog.Logger   // the proxy's logger; default testLogger
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// newEnv builds the proxy over backends, with a fresh registry shared by routing and proxy.
func newEnv(t *testing.T, o envOpts, backends ...routing.BackendConfig) *env {
	t.Helper()
	reg := prometheus.NewRegistry()
	rc := o.routing
	rc.Backends = backends
	r, err := routing.New(rc, testLogger(t), reg)
	if err != nil {
		t.Fatalf("routing.New: %v", err)
	}
	if o.start {
		if err := r.Start(t.Context()); err != nil {
			t.Fatalf("router Start: %v", err)
		}
		t.Cleanup(r.Stop)
	}
	log := o.log
	if log == nil {
		log = testLogger(t)
	}
	h, err := New(o.cfg, r, log, reg)
	if err != nil {
		t.Fatalf("proxy.New: %v", err)
	}
	t.Cleanup(h.CloseIdleConnections)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &env{router: r, h: h, srv: srv, client: srv.Client(), reg: reg}
}

func backend(url string, models ...string) routing.BackendConfig {
	return routing.BackendConfig{URL: url, Models: models}
}

// startSim starts a simulator serving model (instant unless cfg says otherwise).
func startSim(t *testing.T, cfg sim.Config) *sim.Server {
	t.Helper()
	if cfg.Model == "" {
		cfg.Model = "m"
	}
	s, err := sim.Start(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("starting sim: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// tap is a loopback server in front of a handler that counts requests and can record the
// response bytes the handler wrote.
type tap struct {
	*httptest.Server
	hits atomic.Int64
	mu   sync.Mutex
	tee  bytes.Buffer
}

func startTap(t *testing.T, h http.Handler) *tap {
	t.Helper()
	tp := &tap{}
	tp.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" || r.URL.Path == "/metrics" || r.URL.Path == "/v1/models" {
			h.ServeHTTP(w, r)
			return
		}
		tp.hits.Add(1)
		h.ServeHTTP(&teeWriter{ResponseWriter: w, tp: tp}, r)
	}))
	t.Cleanup(tp.Close)
	return tp
}

// crash makes the backend vanish like a killed process: new connections are refused and
// open ones, with requests in flight, are reset.
func (tp *tap) crash() {
	_ = tp.Listener.Close()
	tp.CloseClientConnections()
}

func (tp *tap) recorded() string {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return tp.tee.String()
}

// teeWriter copies the body bytes a handler writes; it keeps Flush reachable.
type teeWriter struct {
	http.ResponseWriter
	tp *tap
}

func (w *teeWriter) Write(p []byte) (int, error) {
	w.tp.mu.Lock()
	w.tp.tee.Write(p)
	w.tp.mu.Unlock()
	return w.ResponseWriter.Write(p)
}

func (w *teeWriter) Flush()                          { _ = http.NewResponseController(w.ResponseWriter).Flush() }
func (w *teeWriter) Unwrap() http.ResponseWriter     { return w.ResponseWriter }
func fixed(status int, body string) http.HandlerFunc { return fixedH(status, body, nil) }

func fixedH(status int, body string, hdr http.Header) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		for k, v := range hdr {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

// post sends a request through the proxy and returns the response with its body read.
func (e *env) post(t *testing.T, path, body string, hdr ...string) (*http.Response, string) {
	t.Helper()
	return doPost(t, e.client, e.srv.URL+path, body, hdr...)
}

func doPost(t *testing.T, c *http.Client, url, body string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading response of POST %s: %v", url, err)
	}
	return resp, string(b)
}

func (e *env) get(t *testing.T, path string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, e.srv.URL+path, nil)
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// apiErr decodes an OpenAI-shaped error body.
func apiErr(t *testing.T, body string) (msg, typ string, code int) {
	t.Helper()
	var e struct {
		Error struct {
			Message string `json:"message"`
			Type    string `json:"type"`
			Code    int    `json:"code"`
		} `json:"error"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error.Type == "" {
		t.Fatalf("body %q is not an OpenAI-shaped error: %v", body, err)
	}
	return e.Error.Message, e.Error.Type, e.Error.Code
}

// counter reads a counter of the proxy's registry by its label values.
func (e *env) counter(t *testing.T, c *prometheus.CounterVec, labels ...string) float64 {
	t.Helper()
	return testutil.ToFloat64(c.WithLabelValues(labels...))
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), within)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out after %s waiting for %s", within, what)
		case <-tick.C:
		}
	}
}

const chatBody = `{"model":"m","messages":[{"role":"user","content":"hello"}],"max_tokens":4}`
const streamBody = `{"model":"m","messages":[{"role":"user","content":"hello"}],"max_tokens":6,"stream":true}`

// testCounter reads one series of a counter vector.
func testCounter(c *prometheus.CounterVec, labels ...string) float64 {
	return testutil.ToFloat64(c.WithLabelValues(labels...))
}

// requireIdle waits until routing counts no request in flight on any backend: every Pick
// was Done, whatever way its attempt ended.
func (e *env) requireIdle(t *testing.T) {
	t.Helper()
	eventually(t, 5*time.Second, "no requests in flight in routing", func() bool {
		for _, s := range e.router.LoadStats() {
			if s.InFlight != 0 {
				return false
			}
		}
		return true
	})
}
