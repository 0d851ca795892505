package bench

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkClosedLoopNoStream measures the generator's cost per request against an
// in-process loopback server that answers a fixed JSON body (server cost included).
//
//	go test -run XXX -bench ClosedLoopNoStream -benchtime 50000x ./bench/
func BenchmarkClosedLoopNoStream(b *testing.B) {
	body := []byte(`{"choices":[{"message":{"content":"hi"}}],"usage":{"prompt_tokens":32,"completion_tokens":2,"total_tokens":34}}`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(body)
	}))
	defer srv.Close()
	b.ReportAllocs()
	b.ResetTimer()
	rep, err := Run(b.Context(), Config{Targets: []string{srv.URL}, Model: "m", Concurrency: 32, Requests: b.N,
		NoStream: true, Params: Params{InputTokens: 32, OutputTokens: 2}}, discardLogger())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(rep.Targets[0].RequestsPerS, "req/s")
}

// BenchmarkClosedLoopStream is BenchmarkClosedLoopNoStream with a fixed SSE answer.
//
//	go test -run XXX -bench ClosedLoopStream -benchtime 50000x ./bench/
func BenchmarkClosedLoopStream(b *testing.B) {
	body := []byte("data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n" +
		"data: {\"choices\":[{\"delta\":{\"content\":\"hello\"}}]}\n\n" +
		"data: {\"choices\":[{\"delta\":{\"content\":\" world\"}}]}\n\n" +
		"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":32,\"completion_tokens\":2,\"total_tokens\":34}}\n\n" +
		"data: [DONE]\n\n")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = w.Write(body)
	}))
	defer srv.Close()
	b.ReportAllocs()
	b.ResetTimer()
	rep, err := Run(b.Context(), Config{Targets: []string{srv.URL}, Model: "m", Concurrency: 32, Requests: b.N,
		Params: Params{InputTokens: 32, OutputTokens: 2}}, discardLogger())
	if err != nil {
		b.Fatal(err)
	}
	if rep.Targets[0].OK != b.N {
		b.Fatalf("errors: %v", rep.Targets[0].Errors)
	}
	b.ReportMetric(rep.Targets[0].RequestsPerS, "req/s")
}
