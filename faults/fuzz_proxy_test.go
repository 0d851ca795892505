package faults

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vllm-proxy/vllm-proxy/proxy"
	"github.com/vllm-proxy/vllm-proxy/routing"
	"github.com/vllm-proxy/vllm-proxy/sim"
)

// proxyPaths are the endpoints FuzzProxyRequest posts to.
var proxyPaths = []string{"/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses", "/tokenize", "/v1/unknown"}

// FuzzProxyRequest posts arbitrary bodies, with JSON, multipart or arbitrary content
// types, to the proxy's inference endpoints, through the whole in-process request path
// (body limit, parse, prompt extraction, routing, the priority rewrite for a
// priority-scheduling backend, forwarding to a simulator, the response). Property: no
// panic; never a 500; every non-2xx answer is an OpenAI-shaped error
// ({"error":{"message","type",…}}). Seeds: f.Add below.
func FuzzProxyRequest(f *testing.F) {
	seeds := []string{
		`{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":2}`,
		`{"model":"m","messages":[{"role":"user","content":"hi"}],"priority":-7,"stream":true,"stream_options":{"include_usage":true}}`,
		`{"model":"m","prompt":[[1,2],[3]],"priority":99}`,
		`{"model":"m","prompt":"a","priority":"high"}`,
		`{"model":"m","input":["a","b"]}`,
		`{"model":"m","instructions":"i","input":[{"type":"message","role":"user","content":"x"}]}`,
		`{"model":"nope","messages":[]}`,
		`{"messages":[{"role":"user","content":[{"type":"text","text":"a"}]}]}`,
		`{"model":"m","priority":1e400}`, `{"model":"m","priority":1,"priority":2}`,
		`[]`, `nul`, ``, `{"model":"\ud800"}`, "{\"model\":\"m\"\x00}",
	}
	for i, s := range seeds {
		f.Add(uint8(i), uint8(0), []byte(s))
	}
	f.Add(uint8(0), uint8(1), []byte("--x\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nm\r\n--x--\r\n"))
	f.Add(uint8(0), uint8(2), []byte(`{"model":"m"}`))

	be, err := sim.Start(f.Context(), sim.Config{Model: "m", Instant: true, OutputTokens: 2, EmbeddingDim: 4, SchedulingPolicy: sim.PolicyPriority}, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(be.Close)
	log := slog.New(slog.DiscardHandler)
	yes := true
	router, err := routing.New(routing.Config{
		Backends:            []routing.BackendConfig{{URL: be.URL(), Models: []string{"m"}, PriorityScheduling: &yes}},
		HealthCheckInterval: time.Hour, ScrapeInterval: time.Hour, ModelsRefreshInterval: time.Hour,
	}, log, prometheus.NewRegistry())
	if err != nil {
		f.Fatal(err)
	}
	if err := router.Start(f.Context()); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(router.Stop)
	lo, hi := 0, 5
	h, err := proxy.New(proxy.Config{MaxBodyBytes: 64 << 10, MaxRetries: -1, RequestTimeout: 10 * time.Second,
		Priority: proxy.PriorityConfig{Interactive: 3, ClientMin: &lo, ClientMax: &hi}}, router, log, prometheus.NewRegistry())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(h.CloseIdleConnections)
	contentTypes := []string{"application/json", "multipart/form-data; boundary=x", "text/plain", "", "application/json; charset=latin1"}

	f.Fuzz(func(t *testing.T, path, ct uint8, body []byte) {
		req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, proxyPaths[int(path)%len(proxyPaths)], bytes.NewReader(body))
		if c := contentTypes[int(ct)%len(contentTypes)]; c != "" {
			req.Header.Set("Content-Type", c)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code == http.StatusInternalServerError {
			t.Fatalf("500 for %q: %s", body, rec.Body.Bytes())
		}
		if rec.Code >= 300 {
			var e struct {
				Error *struct {
					Message string `json:"message"`
					Type    string `json:"type"`
				} `json:"error"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == nil || e.Error.Message == "" || e.Error.Type == "" {
				t.Fatalf("status %d without an OpenAI error body for %q: %.300s", rec.Code, body, rec.Body.Bytes())
			}
		}
	})
}
