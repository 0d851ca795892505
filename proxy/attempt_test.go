package proxy

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"

	"github.com/vllm-proxy/vllm-proxy/sim"
)

// firstReadRelay is a TCP relay in front of a backend that records what the first read of
// each accepted connection returned: what the proxy's first write carried.
type firstReadRelay struct {
	ln    net.Listener
	to    string
	wg    sync.WaitGroup
	mu    sync.Mutex
	first [][]byte
	conns []net.Conn
}

func startFirstReadRelay(t *testing.T, to string) *firstReadRelay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &firstReadRelay{ln: ln, to: to}
	r.wg.Go(r.accept)
	t.Cleanup(r.close)
	return r
}

func (r *firstReadRelay) url() string { return "http://" + r.ln.Addr().String() }

func (r *firstReadRelay) accept() {
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", r.to)
		if err != nil {
			_ = c.Close()
			continue
		}
		r.mu.Lock()
		r.conns = append(r.conns, c, up)
		r.mu.Unlock()
		r.wg.Go(func() {
			buf := make([]byte, 64<<10)
			n, err := c.Read(buf)
			r.mu.Lock()
			r.first = append(r.first, bytes.Clone(buf[:n]))
			r.mu.Unlock()
			if err == nil {
				if _, err = up.Write(buf[:n]); err == nil {
					_, _ = io.Copy(up, c)
				}
			}
			_ = up.Close()
		})
		r.wg.Go(func() {
			_, _ = io.Copy(c, up)
			_ = c.Close()
		})
	}
}

func (r *firstReadRelay) close() {
	_ = r.ln.Close()
	r.mu.Lock()
	for _, c := range r.conns {
		_ = c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

func (r *firstReadRelay) firstReads() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.first...)
}

// A small request leaves the proxy in one write, headers and body together. The
// ReverseProxy's close-guard around the body would make the Transport flush the headers
// first and write the body separately: a second syscall and a second wake-up of the
// backend for every request (see rewrite). Two writes are not always seen as two reads
// (the relay may wake after both arrived), so the test opens many connections: with two
// writes, some first reads lack the body.
func TestSmallRequestIsOneWrite(t *testing.T) {
	const requests = 50
	s := startSim(t, sim.Config{})
	relay := startFirstReadRelay(t, s.URL()[len("http://"):])
	e := newEnv(t, envOpts{}, backend(relay.url(), "m"))
	for range requests {
		resp, body := e.post(t, "/v1/chat/completions", chatBody)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		e.h.CloseIdleConnections() // the next request opens a new connection: one more first read
	}
	reads := relay.firstReads()
	if len(reads) != requests {
		t.Fatalf("the relay saw %d connections, want %d", len(reads), requests)
	}
	for _, b := range reads {
		if !bytes.HasPrefix(b, []byte("POST /v1/chat/completions ")) || !bytes.HasSuffix(b, []byte(chatBody)) {
			t.Errorf("the first read on a backend connection is not the whole request (headers and body):\n%q", b)
		}
	}
	e.requireIdle(t)
}
