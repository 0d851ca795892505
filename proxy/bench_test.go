package proxy

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/vllm-proxy/vllm-proxy/routing"
	"github.com/vllm-proxy/vllm-proxy/sim"
)

// The proxy's added cost per request over loopback, against an instant simulator:
//
//	go test -run XXX -bench . -benchmem -count 6 ./proxy/
//
// Direct and Proxy differ only in the hop through the proxy.

func benchTarget(b *testing.B, viaProxy bool) (string, *http.Client) {
	b.Helper()
	s, err := sim.Start(b.Context(), sim.Config{Model: "m", Instant: true, OutputTokens: 16}, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Close)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	b.Cleanup(client.CloseIdleConnections)
	if !viaProxy {
		return s.URL(), client
	}
	r, err := routing.New(routing.Config{Backends: []routing.BackendConfig{{URL: s.URL(), Models: []string{"m"}, Capacity: 1000}}},
		slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	h, err := New(Config{}, r, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(h.CloseIdleConnections)
	srv := httptest.NewServer(h)
	b.Cleanup(srv.Close)
	return srv.URL, client
}

func benchPost(b *testing.B, viaProxy bool, body string) {
	url, client := benchTarget(b, viaProxy)
	b.ReportAllocs()
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodPost, url+"/v1/chat/completions", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

func BenchmarkChatDirect(b *testing.B)   { benchPost(b, false, chatBody) }
func BenchmarkChatProxy(b *testing.B)    { benchPost(b, true, chatBody) }
func BenchmarkStreamDirect(b *testing.B) { benchPost(b, false, streamBody) }
func BenchmarkStreamProxy(b *testing.B)  { benchPost(b, true, streamBody) }

// BenchmarkParseBody is the per-request parse: routing fields and the canonical prompt.
func BenchmarkParseBody(b *testing.B) {
	body := []byte(`{"model":"m","stream":true,"messages":[{"role":"system","content":"` + strings.Repeat("You are helpful. ", 50) +
		`"},{"role":"user","content":"` + strings.Repeat("question ", 100) + `"}],"max_tokens":64,"temperature":0.7}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := parseBody("application/json", body, DefaultMaxPromptBytes); err != nil {
			b.Fatal(err)
		}
	}
}
