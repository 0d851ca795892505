package faults

import (
	"context"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vllm-proxy/vllm-proxy/sim"
	"github.com/vllm-proxy/vllm-proxy/state/statetest"
)

// latencyTap is a loopback TCP relay to upstream that delays every chunk by the current
// delay in each direction, keeping order: network latency between the proxy and Redis.
type latencyTap struct {
	ln       net.Listener
	upstream string
	delay    atomic.Int64 // nanoseconds, one way
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    []net.Conn
}

func startLatencyTap(t *testing.T, upstream string) *latencyTap {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lt := &latencyTap{ln: ln, upstream: upstream}
	lt.wg.Go(lt.accept)
	t.Cleanup(lt.close)
	return lt
}

func (lt *latencyTap) accept() {
	for {
		c, err := lt.ln.Accept()
		if err != nil {
			return
		}
		u, err := net.Dial("tcp", lt.upstream)
		if err != nil {
			_ = c.Close()
			continue
		}
		lt.mu.Lock()
		lt.conns = append(lt.conns, c, u)
		lt.mu.Unlock()
		lt.wg.Go(func() { lt.pipe(u, c) })
		lt.wg.Go(func() { lt.pipe(c, u) })
	}
}

// pipe copies src to dst, each chunk held back by the delay in force when it was read.
func (lt *latencyTap) pipe(dst, src net.Conn) {
	type chunk struct {
		b   []byte
		due time.Time
	}
	ch := make(chan chunk, 1024)
	done := make(chan struct{})
	go func() { // the writer, owned by this pipe: it ends when ch is closed
		defer close(done)
		for c := range ch {
			time.Sleep(time.Until(c.due))
			if _, err := dst.Write(c.b); err != nil {
				break
			}
		}
		_ = dst.Close()
		for range ch { // drain so the reader never blocks
		}
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			ch <- chunk{b: append([]byte(nil), buf[:n]...), due: time.Now().Add(time.Duration(lt.delay.Load()))}
		}
		if err != nil {
			break
		}
	}
	close(ch)
	<-done
	_ = src.Close()
}

func (lt *latencyTap) close() {
	_ = lt.ln.Close()
	lt.mu.Lock()
	for _, c := range lt.conns {
		_ = c.Close()
	}
	lt.mu.Unlock()
	lt.wg.Wait()
}

// TestRedisLatency: the proxy reaches Redis through a relay that adds one-way latency
// (0, then 25 ms, then 100 ms; 50 ms in the short form) under steady interactive load,
// with a batch running in the slowest phase. Expected: zero interactive errors in every phase and the batch
// completes with every line once; the interactive latencies per phase are recorded
// (they show whether Redis sits on the request path).
func TestRedisLatency(t *testing.T) {
	t.Parallel()
	rd := statetest.StartRedis(t)
	tap := startLatencyTap(t, rd.Addr)
	b1 := startSim(t, sim.Config{DecodeStepMs: 3})
	b2 := startSim(t, sim.Config{DecodeStepMs: 3})
	px, _ := startProxy(t, "proxy", proxyConfig{Backends: []string{b1.URL(), b2.URL()}},
		"redis://"+tap.ln.Addr().String()+"/0", nil, procOpts{})
	c := newClient(t)

	phase := scale(1500*time.Millisecond, 8*time.Second)
	var report []string
	var batchTook time.Duration
	n := scale(20, 200)
	slowest := scale(50*time.Millisecond, 100*time.Millisecond)
	for _, d := range []time.Duration{0, 25 * time.Millisecond, slowest} {
		tap.delay.Store(int64(d))
		ctx, stop := context.WithTimeout(t.Context(), phase)
		var st loadStats
		wait := runLoad(ctx, c, px.URL, 4, 8, 30*time.Second, &st)
		if d == slowest {
			start := time.Now()
			job := createBatch(t, c, px.URL, mustUpload(t, c, px.URL, batchInput(n, 4)))
			var b batchObj
			if !poll(90*time.Second, func() bool {
				b, _ = getBatch(t, c, px.URL, job.ID)
				return b.Status == "completed" || b.Status == "failed"
			}) || b.Status != "completed" {
				t.Errorf("batch under %s Redis latency: %+v", slowest, b)
			} else {
				checkOutput(t, fileContent(t, c, px.URL, *b.OutputFileID), n)
			}
			batchTook = time.Since(start)
		}
		wait()
		stop()
		if st.Failed() != 0 {
			t.Errorf("Redis latency %s: %s", d, st.Summary())
		}
		report = append(report, "latency "+d.String()+": "+st.Summary())
	}
	result(t, "%s; a %d-line batch (upload to completion) took %s under %s", strings.Join(report, "; "), n, batchTook.Round(100*time.Millisecond), slowest)
}
