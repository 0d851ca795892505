package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/vllm-proxy/vllm-proxy/logging"
)

const (
	clientKey  = "sk-proxy-client-key-111"
	backendKey = "sk-backend-key-222"
)

// syncBuf is a log sink for handlers writing from many goroutines.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// TestBackendAuth: what reaches the backend for each BackendAuth, over loopback, for
// client requests and Dispatch; the keys never appear in the loudest logs.
func TestBackendAuth(t *testing.T) {
	cases := []struct {
		name       string
		auth       BackendAuth
		wantAuth   string // Authorization the backend sees
		wantAPIKey string // X-Api-Key the backend sees
	}{
		{"default forwards the client's", BackendAuth{}, "Bearer " + clientKey, clientKey},
		{"strip", BackendAuth{StripClient: true}, "", ""},
		{"backend key replaces", BackendAuth{StripClient: true, APIKey: backendKey}, "Bearer " + backendKey, ""},
		{"backend key without strip", BackendAuth{APIKey: backendKey}, "Bearer " + backendKey, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			logs := &syncBuf{}
			tp := startTap(t, http.HandlerFunc(echoHeaders))
			e := newEnv(t, envOpts{cfg: Config{BackendAuth: c.auth},
				log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: logging.LevelLoud}))},
				backend(tp.URL, "m"))
			_, body := e.post(t, "/v1/chat/completions", chatBody,
				"Authorization", "Bearer "+clientKey, "X-Api-Key", clientKey, "X-Custom", "kept")
			var seen http.Header
			if err := json.Unmarshal([]byte(body), &seen); err != nil {
				t.Fatalf("backend answer %q: %v", body, err)
			}
			if seen.Get("Authorization") != c.wantAuth || seen.Get("X-Api-Key") != c.wantAPIKey || seen.Get("X-Custom") != "kept" {
				t.Fatalf("backend saw Authorization %q, X-Api-Key %q, X-Custom %q; want %q, %q, kept",
					seen.Get("Authorization"), seen.Get("X-Api-Key"), seen.Get("X-Custom"), c.wantAuth, c.wantAPIKey)
			}

			res, err := e.h.Dispatch(t.Context(), DispatchRequest{Path: "/v1/chat/completions", Body: []byte(chatBody)})
			if err != nil {
				t.Fatal(err)
			}
			var dseen http.Header
			if err := json.Unmarshal(res.Body, &dseen); err != nil {
				t.Fatalf("dispatch answer %q: %v", res.Body, err)
			}
			want := ""
			if c.auth.APIKey != "" {
				want = "Bearer " + c.auth.APIKey
			}
			if dseen.Get("Authorization") != want {
				t.Fatalf("dispatched line: backend saw Authorization %q, want %q", dseen.Get("Authorization"), want)
			}

			out := logs.String()
			if !strings.Contains(out, "xxxxx") {
				t.Fatalf("loud logs carry no redacted headers; the grep below proves nothing:\n%s", out)
			}
			for _, k := range []string{clientKey, backendKey} {
				if strings.Contains(out, k) {
					t.Fatalf("a key appears in the logs")
				}
			}
		})
	}
}

func TestBackendAuthValidate(t *testing.T) {
	err := Config{BackendAuth: BackendAuth{APIKey: "sk-bad\nkey"}}.Validate()
	if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "backend_api_key") || strings.Contains(err.Error(), "sk-bad") {
		t.Fatalf("Validate: %v", err)
	}
	if err := (Config{BackendAuth: BackendAuth{APIKey: backendKey, StripClient: true}}).Validate(); err != nil {
		t.Fatalf("Validate of a good key: %v", err)
	}
}
