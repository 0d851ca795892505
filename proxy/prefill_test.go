package proxy

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vllm-proxy/vllm-proxy/routing"
	"github.com/vllm-proxy/vllm-proxy/sim"
)

// prefillSpy is a BatchAdmission and InteractiveObserver that grants every slot and
// records when each interactive pick's prefilled was first called.
type prefillSpy struct {
	mu     sync.Mutex
	picks  int
	filled []time.Time
}

func (s *prefillSpy) Changed() <-chan struct{} { return make(chan struct{}) }

func (s *prefillSpy) AdmitBatch(context.Context, string) (func(), <-chan struct{}, bool) {
	return func() {}, nil, true
}

func (s *prefillSpy) InteractivePicked(string) func() {
	s.mu.Lock()
	s.picks++
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			s.filled = append(s.filled, time.Now())
			s.mu.Unlock()
		})
	}
}

func (s *prefillSpy) counts() (picks, filled int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.picks, len(s.filled)
}

// TestPrefilledAtFirstByte: the handler tells the observer a streamed interactive
// request's prompt is prefilled before it forwards the stream's first byte (not at its
// end), and a non-streamed one's at once, long before its response.
func TestPrefilledAtFirstByte(t *testing.T) {
	s := startSim(t, sim.Config{})
	r, err := routing.New(routing.Config{Backends: []routing.BackendConfig{{URL: s.URL(), Models: []string{"m"}}}}, testLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	spy := &prefillSpy{}
	h, err := New(Config{}, r, testLogger(t), nil, WithBatchAdmission(spy))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.CloseIdleConnections)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	const body = `"model":"m","max_tokens":200,"messages":[{"role":"user","content":"hi"}]` // ~2.4 s of decoding

	resp, err := srv.Client().Post(srv.URL+"/v1/chat/completions", "application/json", strings.NewReader(`{"stream":true,`+body+`}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() && !strings.HasPrefix(sc.Text(), "data:") {
	}
	if picks, filled := spy.counts(); picks != 1 || filled != 1 {
		t.Fatalf("at the stream's first event: %d picks, %d prefilled, want 1 and 1", picks, filled)
	}
	for sc.Scan() {
	}

	start := time.Now()
	resp2, err := srv.Client().Post(srv.URL+"/v1/chat/completions", "application/json", strings.NewReader(`{`+body+`}`))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp2.Body.Close()
	took := time.Since(start)
	if resp2.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp2.StatusCode)
	}
	spy.mu.Lock()
	defer spy.mu.Unlock()
	if spy.picks != 2 || len(spy.filled) != 2 {
		t.Fatalf("%d picks, %d prefilled: want 2 and 2", spy.picks, len(spy.filled))
	}
	if at := spy.filled[1].Sub(start); at > took/2 {
		t.Errorf("non-streamed: prefilled %s into a %s request, want at its start", at, took)
	}
}
