package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vllm-proxy/vllm-proxy/sim"
	"github.com/vllm-proxy/vllm-proxy/state/statetest"
)

// startRunEnv is startRun with environment variables (the API keys come from the
// environment, never from flags) and without a default -R.
func startRunEnv(t *testing.T, env map[string]string, args ...string) (string, *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	done := make(chan int, 1)
	args = append([]string{"serve", "--listen", "127.0.0.1:0", "--shutdown-timeout", "5s"}, args...)
	go func() { done <- run(ctx, args, envOf(env), stdout, stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("run did not return after cancel")
		}
	})
	addrRe := regexp.MustCompile(`addr"?[:=] ?"?(127\.0\.0\.1:\d+)`)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if m := addrRe.FindStringSubmatch(stdout.String()); m != nil {
			return "http://" + m[1], stdout
		}
		select {
		case code := <-done:
			done <- code
			t.Fatalf("run exited %d before serving; stdout %s stderr %s", code, stdout.String(), stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no serving record; stdout %s", stdout.String())
		}
		time.Sleep(5 * time.Millisecond) // polling for the record, with a deadline
	}
}

// authTap is a loopback reverse proxy in front of the simulator that records the
// Authorization headers the backend receives on /v1/ requests.
type authTap struct {
	mu   sync.Mutex
	seen []string
}

func (a *authTap) start(t *testing.T, simURL string) string {
	u, err := url.Parse(simURL)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v1/chat") {
			a.mu.Lock()
			a.seen = append(a.seen, r.Header.Get("Authorization")+"|"+r.Header.Get("X-Api-Key"))
			a.mu.Unlock()
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func (a *authTap) all() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.seen...)
}

func authDo(t *testing.T, method, u, key string, body io.Reader, ctype string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// TestServeAPIKeys: with keys from VLLM_PXY_API_KEYS and a key file, every endpoint but
// /health, /metrics and the dashboard assets needs a key (OpenAI-shaped 401); files
// belong to the key that uploaded them; backends get VLLM_PXY_BACKEND_API_KEY, never
// the client's key; neither a key nor the Redis password appears in the (loudest) logs.
func TestServeAPIKeys(t *testing.T) {
	const (
		keyA       = "sk-tenant-a-0001"
		keyB       = "sk-tenant-b-0002"
		backendKey = "sk-vllm-backend-0003"
	)
	keyFile := filepath.Join(t.TempDir(), "keys")
	hashedB := "sha256:" + sha256Hex(keyB)
	if err := os.WriteFile(keyFile, []byte("# tenant b, hashed\n"+hashedB+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tap := &authTap{}
	backend := tap.start(t, startSim(t, sim.Config{Model: "m", Instant: true}))
	rds := statetest.StartRedis(t, statetest.Options{Password: "redis-pass-0004"})
	base, logs := startRunEnv(t, map[string]string{
		"VLLM_PXY_API_KEYS": keyA, "VLLM_PXY_API_KEYS_FILE": keyFile, "VLLM_PXY_BACKEND_API_KEY": backendKey,
		"VLLM_PXY_REDIS": rds.URL,
	}, "--backend", backend, "--verbosity", "loud")

	for path, want := range map[string]int{"/health": 200, "/metrics": 200, "/ui/": 200, "/ui/api/stats": 401, "/v1/models": 401, "/v1/files": 401, "/v1/batches": 401} {
		st, body := authDo(t, http.MethodGet, base+path, "", nil, "")
		if st != want {
			t.Fatalf("GET %s without a key: %d, want %d (%s)", path, st, want, body)
		}
		if st == 401 && !strings.Contains(body, `"code":"invalid_api_key"`) {
			t.Fatalf("GET %s: 401 body %s", path, body)
		}
	}
	if st, _ := authDo(t, http.MethodGet, base+"/v1/models", "sk-wrong", nil, ""); st != 401 {
		t.Fatalf("wrong key: %d", st)
	}
	for _, k := range []string{keyA, keyB} {
		if st, body := authDo(t, http.MethodGet, base+"/v1/models", k, nil, ""); st != 200 {
			t.Fatalf("GET /v1/models with a key: %d %s", st, body)
		}
	}

	chat := `{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":2}`
	if st, body := authDo(t, http.MethodPost, base+"/v1/chat/completions", keyA, strings.NewReader(chat), "application/json"); st != 200 {
		t.Fatalf("chat with a key: %d %s", st, body)
	}
	for _, s := range tap.all() {
		if s != "Bearer "+backendKey+"|" {
			t.Fatalf("backend saw credentials %q, want only the backend key", s)
		}
	}
	if len(tap.all()) == 0 {
		t.Fatal("the backend saw no chat request")
	}

	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	_ = mw.WriteField("purpose", "batch")
	fw, _ := mw.CreateFormFile("file", "in.jsonl")
	fmt.Fprintf(fw, `{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":%s}`+"\n", chat)
	_ = mw.Close()
	st, body := authDo(t, http.MethodPost, base+"/v1/files", keyA, &buf, mw.FormDataContentType())
	if st != 200 {
		t.Fatalf("upload: %d %s", st, body)
	}
	var f struct{ ID string }
	if err := json.Unmarshal([]byte(body), &f); err != nil || f.ID == "" {
		t.Fatalf("upload answer %s: %v", body, err)
	}
	if n, err := rds.Do("DBSIZE"); err != nil || n == "0" || n == ":0" {
		t.Fatalf("the proxy does not keep its state in the test's Redis: DBSIZE %q, %v", n, err)
	}
	if st, _ := authDo(t, http.MethodGet, base+"/v1/files/"+f.ID, keyA, nil, ""); st != 200 {
		t.Fatalf("owner GET file: %d", st)
	}
	if st, _ := authDo(t, http.MethodGet, base+"/v1/files/"+f.ID, keyB, nil, ""); st != 404 {
		t.Fatalf("other tenant GET file: %d, want 404", st)
	}
	if _, list := authDo(t, http.MethodGet, base+"/v1/files", keyB, nil, ""); strings.Contains(list, f.ID) {
		t.Fatalf("other tenant lists the file: %s", list)
	}
	if _, list := authDo(t, http.MethodGet, base+"/v1/files", keyA, nil, ""); !strings.Contains(list, f.ID) {
		t.Fatalf("owner does not list the file: %s", list)
	}

	out := logs.String()
	if !strings.Contains(out, "xxxxx") {
		t.Fatalf("loud logs show no redacted headers, so the grep below proves nothing")
	}
	for _, k := range []string{keyA, keyB, backendKey, hashedB[len("sha256:"):], rds.Password} {
		if strings.Contains(out, k) {
			t.Fatalf("a secret appears in the logs")
		}
	}
}

func sha256Hex(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
