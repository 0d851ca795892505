package main

import (
	"bytes"
	"context"
	"os"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

// runMainEnv makes the test binary act as vllm-proxy itself (see TestSignal), so the real
// main, with its signal handling, runs in a child process without a separate build.
const runMainEnv = "VLLM_PROXY_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		return
	}
	goleak.VerifyTestMain(m)
}

// syncBuffer is a bytes.Buffer safe for the server goroutines and the test to share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *syncBuffer) Bytes() []byte { return []byte(b.String()) }

// envOf is an injected environment.
func envOf(kv map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := kv[k]; return v, ok }
}

// setupT runs setup with args and env and returns what it built plus stderr.
func setupT(t *testing.T, args []string, env map[string]string) (*App, *ServeCmd, int, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	kctx, app, code := setup(context.Background(), args, envOf(env), &stdout, &stderr)
	if kctx == nil {
		return nil, nil, code, stderr.String() + stdout.String()
	}
	s, _ := selected(kctx).(*ServeCmd)
	return app, s, code, stderr.String()
}

func writeFileAt(path, content string) error { return os.WriteFile(path, []byte(content), 0o600) }
