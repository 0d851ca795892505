package faults

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vllm-proxy/vllm-proxy/sim"
)

// serveReadHeaderTimeout is `vllm-proxy serve`'s http.Server.ReadHeaderTimeout
// (cmd/vllm-proxy/serve.go); it is not configurable.
const serveReadHeaderTimeout = 10 * time.Second

// TestSlowloris: many clients open connections to `vllm-proxy serve` and trickle a
// request header one byte every 500 ms, never finishing it. Expected: the server closes
// every such connection once ReadHeaderTimeout (10 s) has passed since it opened (we
// accept 9–14 s), answering at most "400 Bad Request" with Connection: close;
// meanwhile normal requests are served (all 200).
func TestSlowloris(t *testing.T) {
	t.Parallel()
	be := startSim(t, sim.Config{Instant: true})
	px, _ := startProxy(t, "proxy", proxyConfig{Backends: []string{be.URL()}}, "", nil, procOpts{})
	c := newClient(t)

	n := scale(20, 300)
	cut := make([]time.Duration, n)
	closed := make([]atomic.Bool, n)
	answers := map[string]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range n {
		conn, err := net.Dial("tcp", px.Addr)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		opened := time.Now()
		wg.Go(func() { // trickle: stops when the server has closed the connection
			header := "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Slow: " + strings.Repeat("a", 100)
			for j := 0; j < len(header); j++ {
				if _, err := conn.Write([]byte{header[j]}); err != nil {
					return
				}
				time.Sleep(500 * time.Millisecond)
				if closed[i].Load() {
					return
				}
			}
		})
		wg.Go(func() {
			_ = conn.SetReadDeadline(opened.Add(30 * time.Second))
			b, _ := io.ReadAll(conn) // returns when the server closes the connection
			cut[i] = time.Since(opened)
			closed[i].Store(true)
			_ = conn.Close()
			status, _, _ := strings.Cut(string(b), "\r\n")
			if len(b) > 0 && (status != "HTTP/1.1 400 Bad Request" || !strings.Contains(string(b), "Connection: close")) {
				t.Errorf("slow connection %d got %.200q", i, b)
			}
			mu.Lock()
			answers[cmp.Or(status, "(closed without an answer)")]++
			mu.Unlock()
		})
	}
	var st loadStats
	for i := range scale(30, 200) {
		st.add(chat(t.Context(), c, px.URL, chatBody(i, 4, false)), time.Now())
		time.Sleep(200 * time.Millisecond)
	}
	wg.Wait()
	var lo, hi time.Duration = time.Hour, 0
	for i, d := range cut {
		lo, hi = min(lo, d), max(hi, d)
		if d < serveReadHeaderTimeout-time.Second || d > serveReadHeaderTimeout+4*time.Second {
			t.Errorf("slow connection %d closed after %s, want about %s", i, d, serveReadHeaderTimeout)
		}
	}
	if st.Failed() != 0 {
		t.Errorf("normal requests during the attack: %s", st.Summary())
	}
	result(t, "%d slow connections closed after %s–%s, answers %v; normal requests %s", n, lo.Round(100*time.Millisecond), hi.Round(100*time.Millisecond), answers, st.Summary())
}

// rawRequest writes req on a fresh connection to addr (from a goroutine, since the
// server may answer and close before the whole request is written) and returns the
// response status line, or "" when the connection closed without one.
func rawRequest(t *testing.T, addr string, req []byte) string {
	t.Helper()
	line, _ := rawResponse(t, addr, req)
	return line
}

// rawResponse is rawRequest that also returns the response headers.
func rawResponse(t *testing.T, addr string, req []byte) (string, textproto.MIMEHeader) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	done := make(chan struct{})
	go func() { defer close(done); _, _ = conn.Write(req) }()
	tr := textproto.NewReader(bufio.NewReader(conn))
	line, err := tr.ReadLine()
	if err != nil && !errors.Is(err, io.EOF) {
		t.Logf("reading the status line: %v", err)
	}
	var hdr textproto.MIMEHeader
	if line != "" {
		hdr, _ = tr.ReadMIMEHeader()
	}
	_ = conn.Close()
	<-done
	return line, hdr
}

// TestLimits: limits of a real `vllm-proxy serve`, each a subtest. Expected:
//   - a request header over MaxHeaderBytes (1 MiB) — one huge header, or very many small
//     ones — gets 431 Request Header Fields Too Large;
//   - an inference body over routing.max_body_bytes (set to 64 KiB here) gets an
//     OpenAI-shaped 413, with or without Content-Length, while one just under it is
//     served;
//   - a POST /v1/batches body over 1 MiB gets an OpenAI-shaped 413;
//   - (long form only) an upload over the batch MaxFileBytes (200 MB, not configurable)
//     gets an OpenAI-shaped 413 and leaves nothing in --files-dir.
func TestLimits(t *testing.T) {
	t.Parallel()
	be := startSim(t, sim.Config{Instant: true, MaxModelLen: 64 << 10, NumGPUBlocks: 8192})
	filesDir := t.TempDir()
	px, _ := startProxy(t, "proxy", proxyConfig{Backends: []string{be.URL()}, Routing: "  max_body_bytes: 64KiB\n"},
		"", []string{"--files-dir", filesDir}, procOpts{})
	c := newClient(t)

	t.Run("oversize_header", func(t *testing.T) {
		big := "GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 2<<20) + "\r\n\r\n"
		if got := rawRequest(t, px.Addr, []byte(big)); !strings.HasPrefix(got, "HTTP/1.1 431") {
			t.Errorf("one 2 MiB header: status line %q, want 431", got)
		}
		var many bytes.Buffer
		many.WriteString("GET /health HTTP/1.1\r\nHost: x\r\n")
		for i := 0; many.Len() < 2<<20; i++ {
			fmt.Fprintf(&many, "X-H%d: v\r\n", i)
		}
		many.WriteString("\r\n")
		if got := rawRequest(t, px.Addr, many.Bytes()); !strings.HasPrefix(got, "HTTP/1.1 431") {
			t.Errorf("2 MiB of small headers: status line %q, want 431", got)
		}
		if got := rawRequest(t, px.Addr, []byte("GET /health HTTP/1.1\r\nHost: x\r\nX-Ok: "+strings.Repeat("a", 512<<10)+"\r\n\r\n")); !strings.HasPrefix(got, "HTTP/1.1 200") {
			t.Errorf("a 512 KiB header: status line %q, want 200", got)
		}
		result(t, "2 MiB header and 2 MiB of headers: 431; 512 KiB header: 200")
	})

	t.Run("inference_body", func(t *testing.T) {
		body := func(size int) []byte {
			pad := strings.Repeat("a", max(0, size-100))
			return fmt.Appendf(nil, `{"model":"m","messages":[{"role":"user","content":"%s"}],"max_tokens":1}`, pad)
		}
		if r := chat(t.Context(), c, px.URL, body(60<<10)); !r.OK() {
			t.Errorf("60 KiB body: status %d err %v %.200s", r.Status, r.Err, r.Body)
		}
		if r := chat(t.Context(), c, px.URL, body(100<<10)); r.Status != http.StatusRequestEntityTooLarge {
			t.Errorf("100 KiB body: status %d, want 413", r.Status)
		} else {
			openAIError(t, r.Body)
		}
		// Without Content-Length: a chunked body the server cannot size up front.
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, px.URL+"/v1/chat/completions", io.MultiReader(bytes.NewReader(body(100<<10))))
		req.ContentLength = -1
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("chunked body: %v", err)
		}
		b := readAll(resp)
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("100 KiB chunked body: status %d, want 413", resp.StatusCode)
		} else {
			openAIError(t, b)
		}
		result(t, "max_body_bytes 64KiB: 60 KiB served, 100 KiB 413 (with and without Content-Length)")
	})

	t.Run("create_batch_body", func(t *testing.T) {
		body := `{"input_file_id":"file-x","endpoint":"/v1/chat/completions","completion_window":"24h","metadata":{"k":"` + strings.Repeat("a", 2<<20) + `"}}`
		err := doJSON(t, c, http.MethodPost, px.URL+"/v1/batches", body, new(any))
		if err == nil || !strings.Contains(err.Error(), ": 413 ") {
			t.Errorf("2 MiB POST /v1/batches: %v, want a 413", err)
		}
		result(t, "2 MiB POST /v1/batches body: 413")
	})

	t.Run("upload_over_max_file_bytes", func(t *testing.T) {
		if !long() {
			t.Skip("long form only (uploads 200 MB): VLLM_PXY_FAULTS=long")
		}
		const limit = 200 << 20
		line := []byte(`{"custom_id":"x","method":"POST","url":"/v1/chat/completions","body":{"model":"m","messages":[]}}` + "\n")
		src := io.LimitReader(&repeatReader{b: line}, limit+int64(len(line)))
		status, b := uploadFile(t, c, px.URL, "big.jsonl", src)
		if status != http.StatusRequestEntityTooLarge {
			t.Fatalf("upload over 200 MB: %d %.300s, want 413", status, b)
		}
		openAIError(t, b)
		es, err := os.ReadDir(filesDir)
		if err != nil || len(es) != 0 {
			t.Errorf("files dir after the refused upload: %v %v", es, err)
		}
		result(t, "upload of 200 MB + 1 line: 413, files dir empty")
	})
}

// repeatReader repeats b forever.
type repeatReader struct {
	b   []byte
	off int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.b[r.off:])
		n += c
		r.off = (r.off + c) % len(r.b)
	}
	return n, nil
}

// serveIdleTimeout is `vllm-proxy serve`'s http.Server.IdleTimeout.
const serveIdleTimeout = 120 * time.Second

// TestIdleTimeout (long form only: it waits two minutes): a client keeps a keep-alive
// connection open and idle after one request. Expected: the server closes it once
// IdleTimeout (120 s) has passed (we accept 115–135 s), and answered the request first.
func TestIdleTimeout(t *testing.T) {
	if !long() {
		t.Skip("long form only (waits 2 minutes): VLLM_PXY_FAULTS=long")
	}
	t.Parallel()
	be := startSim(t, sim.Config{Instant: true})
	px, _ := startProxy(t, "proxy", proxyConfig{Backends: []string{be.URL()}}, "", nil, procOpts{})
	conn, err := net.Dial("tcp", px.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("GET /health HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the response: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /health: %d", resp.StatusCode)
	}
	idleSince := time.Now()
	_ = conn.SetReadDeadline(idleSince.Add(serveIdleTimeout + 30*time.Second))
	_, err = br.ReadByte()
	closedAfter := time.Since(idleSince)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the idle connection was still open after %s", closedAfter)
	}
	if closedAfter < serveIdleTimeout-5*time.Second || closedAfter > serveIdleTimeout+15*time.Second {
		t.Errorf("idle connection closed after %s, want about %s", closedAfter, serveIdleTimeout)
	}
	result(t, "idle keep-alive connection closed after %s (IdleTimeout %s)", closedAfter.Round(100*time.Millisecond), serveIdleTimeout)
}
