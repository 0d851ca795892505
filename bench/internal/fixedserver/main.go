// Command fixedserver is the trivial loopback backend used to measure the load
// generator's own overhead (docs/BENCHMARKS.md, "Load generator overhead"): it answers
// every request with the same small chat completion, as JSON or, when the request body
// asks for "stream":true, as a fixed SSE stream. It reads (and discards) the request body
// so that keep-alive works exactly as with a real server.
//
//	go run ./bench/internal/fixedserver -listen 127.0.0.1:18080
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"
)

var (
	jsonBody = []byte(`{"id":"cmpl-1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hello world"},"finish_reason":"stop"}],"usage":{"prompt_tokens":32,"completion_tokens":2,"total_tokens":34}}`)
	sseBody  = []byte("data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n" +
		"data: {\"choices\":[{\"delta\":{\"content\":\"hello\"}}]}\n\n" +
		"data: {\"choices\":[{\"delta\":{\"content\":\" world\"}}]}\n\n" +
		"data: {\"choices\":[],\"usage\":{\"prompt_tokens\":32,\"completion_tokens\":2,\"total_tokens\":34}}\n\n" +
		"data: [DONE]\n\n")
	jsonLen = strconv.Itoa(len(jsonBody))
	bufs    = sync.Pool{New: func() any { return new(bytes.Buffer) }}
)

func handle(w http.ResponseWriter, r *http.Request) {
	b := bufs.Get().(*bytes.Buffer)
	b.Reset()
	_, _ = b.ReadFrom(io.LimitReader(r.Body, 1<<20))
	stream := bytes.Contains(b.Bytes(), []byte(`"stream":true`))
	bufs.Put(b)
	h := w.Header()
	if stream {
		h["Content-Type"] = []string{"text/event-stream"}
		_, _ = w.Write(sseBody)
		return
	}
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{jsonLen}
	_, _ = w.Write(jsonBody)
}

func main() {
	listen := flag.String("listen", "127.0.0.1:18080", "address to listen on")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv := &http.Server{Addr: *listen, Handler: http.HandlerFunc(handle), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
