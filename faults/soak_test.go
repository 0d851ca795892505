package faults

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vllm-proxy/vllm-proxy/sim"
	"github.com/vllm-proxy/vllm-proxy/state/statetest"
)

// sample is one reading of the proxy process's resources.
type sample struct {
	at         time.Duration // since the load started
	goroutines float64       // go_goroutines from /metrics
	fds        int           // entries of /proc/PID/fd
	rssKB      int           // VmRSS from /proc/PID/status
	threads    int           // Threads from /proc/PID/status
}

// readSample reads the resources of process pid, whose /metrics is at base.
func readSample(c *http.Client, pid int, base string) (sample, error) {
	var s sample
	g, ok := metric(c, base, "go_goroutines")
	if !ok {
		return s, fmt.Errorf("go_goroutines missing from %s/metrics", base)
	}
	s.goroutines = g
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return s, fmt.Errorf("counting fds: %w", err)
	}
	s.fds = len(fds)
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, fmt.Errorf("reading status: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		fields := strings.Fields(v)
		if len(fields) == 0 {
			continue
		}
		n, _ := strconv.Atoi(fields[0])
		switch k {
		case "VmRSS":
			s.rssKB = n
		case "Threads":
			s.threads = n
		}
	}
	return s, sc.Err()
}

// median of the values f picks from ss.
func median(ss []sample, f func(sample) float64) float64 {
	v := make([]float64, len(ss))
	for i, s := range ss {
		v[i] = f(s)
	}
	slices.Sort(v)
	return v[len(v)/2]
}

// peak is the largest of the values f picks from ss.
func peak(ss []sample, f func(sample) float64) float64 {
	m := f(ss[0])
	for _, s := range ss[1:] {
		m = max(m, f(s))
	}
	return m
}

// slope is the least-squares growth per minute of the values f picks from ss.
func slope(ss []sample, f func(sample) float64) float64 {
	var sx, sy, sxx, sxy float64
	n := float64(len(ss))
	for _, s := range ss {
		x, y := s.at.Minutes(), f(s)
		sx, sy, sxx, sxy = sx+x, sy+y, sxx+x*x, sxy+x*y
	}
	d := n*sxx - sx*sx
	if d == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / d
}

// batchLoop runs batches of n lines one after another through base until done reports
// true:
// upload, create, wait for completed, check the output, delete both files. It returns
// the number of batches completed; any other outcome fails the test.
func batchLoop(t *testing.T, c *http.Client, base string, n int, stop func() bool) int {
	done := 0
	for !stop() {
		in := mustUpload(t, c, base, batchInput(n, 8))
		job := createBatch(t, c, base, in)
		var b batchObj
		if !poll(5*time.Minute, func() bool {
			b, _ = getBatch(t, c, base, job.ID)
			return b.Status == "completed" || b.Status == "failed" || b.Status == "expired" || b.Status == "cancelled"
		}) || b.Status != "completed" || b.OutputFileID == nil {
			t.Errorf("soak batch %s ended %+v", job.ID, b)
			return done
		}
		checkOutput(t, fileContent(t, c, base, *b.OutputFileID), n)
		for _, id := range []string{in, *b.OutputFileID} {
			if err := deleteFile(t, c, base, id); err != nil {
				t.Errorf("deleting %s: %v", id, err)
			}
		}
		done++
	}
	return done
}

// TestSoak holds a fixed mixed load on one `vllm-proxy serve` (on Redis, two simulated
// backends) for VLLM_PXY_SOAK minutes: closed-loop non-streaming and streaming chat
// completions plus batches of 200 lines one after another. It samples the proxy's
// goroutines (go_goroutines), open fds (/proc/PID/fd) and RSS (/proc/PID/status)
// every few seconds. Expected: zero interactive errors, every batch completed with every
// line exactly once, and after a warm-up of a quarter of the run (at least 20 s) the
// figures are flat: over the last third of the remaining samples, peak goroutines are at
// most the first third's peak + 20% + 20, peak fds at most + 20, and median RSS at most
// + 25% + 16 MiB.
func TestSoak(t *testing.T) {
	minutes, _ := strconv.ParseFloat(os.Getenv("VLLM_PXY_SOAK"), 64)
	if minutes <= 0 {
		t.Skip("soak runs only with VLLM_PXY_SOAK=minutes (make soak)")
	}
	total := time.Duration(minutes * float64(time.Minute))
	warm := max(total/4, 20*time.Second)
	every := min(max(total/60, 2*time.Second), 15*time.Second)

	rd := statetest.StartRedis(t)
	b1 := startSim(t, sim.Config{DecodeStepMs: 4})
	b2 := startSim(t, sim.Config{DecodeStepMs: 4})
	px, _ := startProxy(t, "proxy", proxyConfig{Backends: []string{b1.URL(), b2.URL()}}, rd.URL, nil, procOpts{})
	c := newClient(t)

	ctx, stop := context.WithTimeout(t.Context(), total)
	defer stop()
	var st loadStats
	waitLoad := runLoad(ctx, c, px.URL, 4, 16, time.Minute, &st)
	waitStreams := streamLoad(ctx, c, px.URL, 2, 32)
	var batches int
	var bwg sync.WaitGroup
	bwg.Go(func() {
		//nolint:contextcheck // the batch helpers use t.Context(); the loop ends on ctx through stop
		batches = batchLoop(t, c, px.URL, 200, func() bool { return ctx.Err() != nil })
	})

	start := time.Now()
	var samples []sample
	tick := time.NewTicker(every)
	defer tick.Stop()
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-tick.C:
			s, err := readSample(c, px.Pid(), px.URL)
			if err != nil {
				t.Fatalf("sampling: %v", err)
			}
			s.at = time.Since(start)
			samples = append(samples, s)
		}
	}
	waitLoad()
	streams := waitStreams()
	bwg.Wait()

	if st.Failed() != 0 {
		t.Errorf("interactive errors: %s", st.Summary())
	}
	for _, r := range streams {
		if !r.Clean() {
			t.Errorf("stream not clean: %+v", r)
			break
		}
	}
	var after []sample
	for _, s := range samples {
		if s.at >= warm {
			after = append(after, s)
		}
	}
	if len(after) < 6 {
		t.Fatalf("only %d samples after the %s warm-up; run longer", len(after), warm)
	}
	// Load comes in waves (a batch running or not), so compare whole windows: the first
	// and last thirds after warm-up, by their peak (goroutines, fds) or median (RSS).
	first, last := after[:len(after)/3], after[len(after)-len(after)/3:]
	goroutines := func(s sample) float64 { return s.goroutines }
	fds := func(s sample) float64 { return float64(s.fds) }
	rss := func(s sample) float64 { return float64(s.rssKB) }
	g0, g1 := peak(first, goroutines), peak(last, goroutines)
	f0, f1 := peak(first, fds), peak(last, fds)
	r0, r1 := median(first, rss), median(last, rss)
	if g1 > g0*1.2+20 {
		t.Errorf("goroutines grew from a peak of %.0f to %.0f after warm-up", g0, g1)
	}
	if f1 > f0+20 {
		t.Errorf("open fds grew from a peak of %.0f to %.0f after warm-up", f0, f1)
	}
	if r1 > r0*1.25+16<<10 {
		t.Errorf("RSS grew from a median of %.0f KiB to %.0f KiB after warm-up", r0, r1)
	}
	for _, s := range samples {
		t.Logf("sample t=%-6s goroutines=%-5.0f fds=%-4d rss=%-6dKiB threads=%d", s.at.Round(time.Second), s.goroutines, s.fds, s.rssKB, s.threads)
	}
	result(t, "%s (warm-up %s, %d samples): peak goroutines %.0f→%.0f (slope %+.1f/min), peak fds %.0f→%.0f (%+.1f/min), median RSS %.1f→%.1f MiB (%+.2f MiB/min); interactive %s; streams=%d; batches of 200 completed=%d",
		total, warm, len(samples), g0, g1, slope(after, goroutines), f0, f1, slope(after, fds), r0/1024, r1/1024, slope(after, rss)/1024, st.Summary(), len(streams), batches)
}
