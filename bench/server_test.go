package bench

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeServer is a loopback OpenAI-ish server whose timing and failures the test fixes.
type fakeServer struct {
	// ttft returns the delay before the first token of the k-th request (0-based arrival).
	ttft func(k int) time.Duration
	// gaps are the delays between successive tokens of every streamed response.
	gaps []time.Duration
	// status returns the status of the k-th request (0: 200).
	status func(k int) int
	// crlf frames SSE lines with \r\n; noSpace writes "data:" without a space.
	crlf, noSpace bool
	// header, when set, is sent as "X-Backend: <header>".
	header string

	srv      *httptest.Server
	arrivals atomic.Int64
	inflight atomic.Int64
	maxSeen  atomic.Int64
	mu       sync.Mutex
	bodies   [][]byte
	keep     bool // keep request bodies
}

func startFake(t *testing.T, f *fakeServer) *fakeServer {
	t.Helper()
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeServer) URL() string { return f.srv.URL + "/v1" }

func (f *fakeServer) serve(w http.ResponseWriter, r *http.Request) {
	k := int(f.arrivals.Add(1) - 1)
	n := f.inflight.Add(1)
	// A request stops counting as in flight just before its last bytes go out: after
	// them the client may already send its next request.
	var once sync.Once
	leave := func() { once.Do(func() { f.inflight.Add(-1) }) }
	defer leave()
	for {
		m := f.maxSeen.Load()
		if n <= m || f.maxSeen.CompareAndSwap(m, n) {
			break
		}
	}
	body, _ := io.ReadAll(r.Body)
	if f.keep {
		f.mu.Lock()
		f.bodies = append(f.bodies, body)
		f.mu.Unlock()
	}
	if f.header != "" {
		w.Header().Set("X-Backend", f.header)
	}
	if f.status != nil {
		if st := f.status(k); st != 0 && st != http.StatusOK {
			leave()
			http.Error(w, `{"error":{"message":"nope","type":"x","param":null,"code":null}}`, st)
			return
		}
	}
	if f.ttft != nil {
		time.Sleep(f.ttft(k))
	}
	stream := strings.Contains(string(body), `"stream":true`)
	if !stream {
		w.Header().Set("Content-Type", "application/json")
		leave()
		fmt.Fprintf(w, `{"id":"x","choices":[{"message":{"role":"assistant","content":"hi"}}],"usage":{"prompt_tokens":7,"completion_tokens":%d,"total_tokens":9}}`, len(f.gaps)+1)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	fl := w.(http.Flusher)
	eol, data := "\n", "data: "
	if f.crlf {
		eol = "\r\n"
	}
	if f.noSpace {
		data = "data:"
	}
	send := func(payload string) {
		fmt.Fprint(w, data+payload+eol+eol)
		fl.Flush()
	}
	send(`{"choices":[{"delta":{"role":"assistant","content":""}}]}`)
	send(`{"choices":[{"delta":{"content":"tok"}}]}`)
	for _, g := range f.gaps {
		time.Sleep(g)
		send(`{"choices":[{"delta":{"content":"tok"}}]}`)
	}
	send(fmt.Sprintf(`{"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":%d,"total_tokens":9}}`, len(f.gaps)+1))
	fmt.Fprint(w, ": keep-alive comment"+eol)
	leave()
	send("[DONE]")
}
