package proxy

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/vllm-proxy/vllm-proxy/logging"
)

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) records(t *testing.T) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(s.b.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// TestLoudLogging: at Loud the proxy records the request (credentials masked), the
// response headers and one record per forwarded SSE event, all with the request id.
func TestLoudLogging(t *testing.T) {
	tp := startTap(t, http.HandlerFunc(scriptedSSE))
	var buf syncBuffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: logging.LevelLoud}))
	e := newEnv(t, envOpts{log: log}, backend(tp.URL, "m"))
	e.post(t, "/v1/chat/completions", streamBody, "Authorization", "Bearer sk-secret", headerRequestID, "rid-1")
	e.requireIdle(t)
	var events []string
	msgs := map[string]int{}
	for _, r := range buf.records(t) {
		msgs[r["msg"].(string)]++
		if r[logging.KeyRequestID] != "rid-1" {
			t.Errorf("record %v lacks the request id", r)
		}
		if r["msg"] == "sse event forwarded" {
			events = append(events, r["event"].(string))
		}
	}
	if strings.Contains(buf.b.String(), "sk-secret") {
		t.Error("the Authorization header was logged")
	}
	if msgs["request received"] != 1 || msgs["response headers"] != 1 || msgs["request served"] != 1 {
		t.Errorf("records %v", msgs)
	}
	want := []string{": hello\n\n", "data: {\"a\":1}\n\n", "data:{\"b\":2}\r\n\r\n", "data: {\"c\":3}\r\r", "data: multi\ndata: line\n\n", "data: [DONE]\n\n"}
	if strings.Join(events, "|") != strings.Join(want, "|") {
		t.Errorf("event records %q\nwant %q", events, want)
	}
}
