package proxy

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/vllm-proxy/vllm-proxy/routing"
	"github.com/vllm-proxy/vllm-proxy/sim"
)

// TestPrefillSpreadThroughHandler: the handler tells routing when it sends a streamed
// request and when its first byte arrives. While its prompt is being prefilled (slowly,
// here), load-based picks avoid its backend; once its first byte has come, they use that
// backend again although the stream still runs.
func TestPrefillSpreadThroughHandler(t *testing.T) {
	sc := sim.Config{PrefillTokensPerS: 200} // a 100-token prompt takes 0.5 s
	a, b := startSim(t, sc), startSim(t, sc)
	r, err := routing.New(routing.Config{Policy: routing.PolicyLeastLoad, Backends: []routing.BackendConfig{
		{URL: a.URL(), Models: []string{"m"}, Capacity: 16}, {URL: b.URL(), Models: []string{"m"}, Capacity: 16}}}, testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Config{}, r, testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.CloseIdleConnections)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	picks := func(n int) map[string]int {
		got := map[string]int{}
		for range n {
			pk, err := r.Pick(t.Context(), &routing.Request{Model: "m", Class: routing.ClassInteractive})
			if err != nil {
				t.Fatal(err)
			}
			got[pk.Backend.ID()]++
			pk.Done(routing.Outcome{})
		}
		return got
	}
	prompt := strings.Repeat("word ", 80)
	resp, err := srv.Client().Post(srv.URL+"/v1/chat/completions", "application/json", strings.NewReader(
		`{"model":"m","stream":true,"max_tokens":200,"messages":[{"role":"user","content":"`+prompt+`"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	// vLLM sends a stream's headers at once and its first event with the first token.
	var busy string
	for _, s := range r.LoadStats() {
		if s.InFlight == 1 {
			busy = s.URL
		}
	}
	if busy == "" {
		t.Fatal("the stream is not in flight on either backend")
	}
	if got := picks(20); got[busy] != 0 {
		t.Fatalf("while the stream's prompt was being prefilled, %d of 20 picks went to its backend", got[busy])
	}
	sc2 := bufio.NewScanner(resp.Body)
	for sc2.Scan() && !strings.HasPrefix(sc2.Text(), "data:") {
	}
	if got := picks(40); got[busy] == 0 {
		t.Fatalf("after the stream's first byte no pick went to its backend (%v)", got)
	}
	for sc2.Scan() {
	}
}
