package bench

import (
	"context"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"testing"
	"time"
)

func ms2d(v float64) time.Duration { return time.Duration(v * float64(time.Millisecond)) }

// TestRunLatencyPercentiles drives a server with known, seeded TTFT delays and known
// inter-token gaps and checks the measured percentiles against the ones implied.
func TestRunLatencyPercentiles(t *testing.T) {
	const n = 100
	// Delays 20..218 ms in steps of 2 ms, shuffled by a fixed seed and handed out in
	// arrival order, so the client sees each exactly once whatever the interleaving.
	delays := make([]time.Duration, n)
	for i := range delays {
		delays[i] = ms2d(20 + 2*float64(i))
	}
	rand.New(rand.NewPCG(7, 7)).Shuffle(n, func(i, j int) { delays[i], delays[j] = delays[j], delays[i] })
	gaps := []time.Duration{ms2d(20), ms2d(20), ms2d(20), ms2d(80)}
	f := startFake(t, &fakeServer{ttft: func(k int) time.Duration { return delays[k%n] }, gaps: gaps, crlf: true, noSpace: true})

	rep, err := Run(t.Context(), Config{Targets: []string{f.URL()}, Model: "m", Concurrency: 25, Requests: n}, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	tr := rep.Targets[0]
	if tr.OK != n || len(tr.Errors) != 0 {
		t.Fatalf("ok %d errors %v, want %d and none", tr.OK, tr.Errors, n)
	}
	// Expected TTFT percentiles of 20,22,...,218 ms: p50 = 119, p90 = 198.2, p99 = 216.02.
	// The client can only see more than the server slept, by its own overhead, and on a
	// loaded shared machine that overhead has no useful bound: the lower bounds are
	// tight, and the exact aggregation is checked against the samples below.
	atLeast := func(name string, got, want float64) {
		t.Helper()
		if got < want*0.98 || got > want+5 {
			t.Errorf("%s = %.1f ms, want at least %.1f ms", name, got*1000, want*1000)
		}
	}
	atLeast("ttft p50", tr.TTFT.P50, 0.119)
	atLeast("ttft p90", tr.TTFT.P90, 0.1982)
	atLeast("ttft p99", tr.TTFT.P99, 0.21602)
	// Every request streams gaps of 20,20,20,80 ms: ITL p50 = 20 ms, p99 = 80 ms.
	atLeast("itl p50", tr.ITL.P50, 0.020)
	atLeast("itl p99", tr.ITL.P99, 0.080)
	if tr.ITL.Count != n*len(gaps) {
		t.Errorf("itl count %d, want %d", tr.ITL.Count, n*len(gaps))
	}
	// E2E = TTFT + 140 ms of gaps.
	atLeast("e2e p50", tr.E2E.P50, 0.259)
	atLeast("e2e p99", tr.E2E.P99, 0.35602)
	// Each request's TTFT is at least the delay it was served with, so the sorted measured
	// TTFTs dominate the sorted delays element by element, whatever the machine load.
	measured := make([]float64, 0, n)
	for _, smp := range rep.Samples {
		measured = append(measured, smp.TTFT.Seconds())
	}
	slices.Sort(measured)
	sortedDelays := slices.Clone(delays)
	slices.Sort(sortedDelays)
	for i, d := range sortedDelays {
		if measured[i] < d.Seconds() {
			t.Fatalf("the %d-th smallest TTFT %.1f ms is below the %d-th smallest delay %s", i, measured[i]*1000, i, d)
		}
	}
	// The report's percentiles are exactly those of its samples.
	for _, c := range []struct {
		p    float64
		got  float64
		name string
	}{{50, tr.TTFT.P50, "p50"}, {90, tr.TTFT.P90, "p90"}, {99, tr.TTFT.P99, "p99"}} {
		if want := Percentile(measured, c.p); math.Abs(c.got-want) > 1e-9 {
			t.Errorf("ttft %s = %v, the samples give %v", c.name, c.got, want)
		}
	}
	// Usage comes from the final chunk.
	for _, s := range rep.Samples {
		if s.PromptTokens != 7 || s.OutputTokens != len(gaps)+1 {
			t.Fatalf("sample tokens %d/%d, want 7/%d", s.PromptTokens, s.OutputTokens, len(gaps)+1)
		}
	}
}

func TestRunNoStreamTTFTIsE2E(t *testing.T) {
	f := startFake(t, &fakeServer{ttft: func(int) time.Duration { return ms2d(5) }})
	rep, err := Run(t.Context(), Config{Targets: []string{f.srv.URL}, Model: "m", Concurrency: 4, Requests: 20, NoStream: true, Endpoint: EndpointCompletions}, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Targets[0].OK != 20 {
		t.Fatalf("ok = %d, want 20 (errors %v)", rep.Targets[0].OK, rep.Targets[0].Errors)
	}
	for _, s := range rep.Samples {
		if s.TTFT != s.E2E || s.TTFT < ms2d(5) || s.OutputTokens != 1 {
			t.Fatalf("sample %+v: want TTFT == E2E >= 5ms and 1 output token", s)
		}
	}
	if rep.Targets[0].ITL.Count != 0 {
		t.Errorf("itl count %d without streaming", rep.Targets[0].ITL.Count)
	}
}

// TestOpenLoopPoissonRate checks that the number of arrivals in a window matches a
// Poisson process of the configured rate.
func TestOpenLoopPoissonRate(t *testing.T) {
	f := startFake(t, &fakeServer{})
	const rate, dur = 300.0, 1500 * time.Millisecond
	rep, err := Run(t.Context(), Config{Targets: []string{f.URL()}, Model: "m", Rate: rate, Duration: dur, NoStream: true}, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	// Mean 450, standard deviation ~21: ±5 sd.
	got := rep.Targets[0].Requests
	if got < 345 || got > 555 {
		t.Errorf("requests = %d, want 450 ± 105 for Poisson(%g/s × %s)", got, rate, dur)
	}
	if rep.Mode != "open" {
		t.Errorf("mode %q, want open", rep.Mode)
	}
	if l := rep.Targets[0].SendLag; l == nil || l.Count != got {
		t.Errorf("send lag %+v, want one value per request", l)
	}
	// Arrivals spread over the whole window, not in a burst. The schedule (send time minus
	// its lag) is what the generator controls; a loaded machine only delays the sends.
	last := time.Duration(0)
	for _, s := range rep.Samples {
		last = max(last, s.Start-s.Lag)
	}
	if last < dur*3/4 || last > dur {
		t.Errorf("last scheduled arrival %s, want near the end of %s", last, dur)
	}
}

func TestOpenLoopArrivalsAreSeeded(t *testing.T) {
	f := startFake(t, &fakeServer{})
	count := func(seed uint64) int {
		rep, err := Run(t.Context(), Config{Targets: []string{f.URL()}, Model: "m", Rate: 100, Requests: 30, NoStream: true, Seed: seed}, discardLogger())
		if err != nil {
			t.Fatal(err)
		}
		return rep.Targets[0].OK
	}
	if a, b := count(3), count(3); a != 30 || b != 30 {
		t.Fatalf("ok %d, %d; want 30 each", a, b)
	}
}

func TestClosedLoopConcurrencyNeverExceeded(t *testing.T) {
	f := startFake(t, &fakeServer{ttft: func(int) time.Duration { return ms2d(10) }, gaps: []time.Duration{ms2d(2)}})
	rep, err := Run(t.Context(), Config{Targets: []string{f.URL()}, Model: "m", Concurrency: 6, Requests: 60}, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	if got := f.maxSeen.Load(); got != 6 {
		t.Errorf("server saw %d concurrent requests at most, want exactly 6", got)
	}
	if rep.Targets[0].OK != 60 || f.arrivals.Load() != 60 {
		t.Errorf("ok %d arrivals %d, want 60", rep.Targets[0].OK, f.arrivals.Load())
	}
}

func TestOpenLoopConcurrencyCap(t *testing.T) {
	f := startFake(t, &fakeServer{ttft: func(int) time.Duration { return ms2d(20) }})
	_, err := Run(t.Context(), Config{Targets: []string{f.URL()}, Model: "m", Rate: 2000, Concurrency: 3, Requests: 30, NoStream: true}, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	if got := f.maxSeen.Load(); got > 3 {
		t.Errorf("server saw %d concurrent requests, cap was 3", got)
	}
}

// TestBurstyWavesUncapped: the bursty workload without -c releases each wave at once (it
// used to default to one request in flight, serializing every wave).
func TestBurstyWavesUncapped(t *testing.T) {
	f := startFake(t, &fakeServer{ttft: func(int) time.Duration { return ms2d(200) }})
	_, err := Run(t.Context(), Config{Targets: []string{f.URL()}, Model: "m", WorkloadName: WorkloadBursty,
		Params: Params{WaveSize: 8, WaveInterval: time.Hour}, Requests: 8, NoStream: true}, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	if got := f.maxSeen.Load(); got != 8 {
		t.Errorf("server saw %d concurrent requests at most, want the whole wave of 8", got)
	}
}

func TestErrorsCountedByStatus(t *testing.T) {
	f := startFake(t, &fakeServer{status: func(k int) int {
		switch k % 5 {
		case 1:
			return http.StatusInternalServerError
		case 3:
			return http.StatusTooManyRequests
		}
		return 0
	}})
	rep, err := Run(t.Context(), Config{Targets: []string{f.URL()}, Model: "m", Concurrency: 1, Requests: 50}, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	tr := rep.Targets[0]
	if tr.OK != 30 || tr.Errors["500"] != 10 || tr.Errors["429"] != 10 || tr.Requests != 50 {
		t.Errorf("ok %d errors %v requests %d, want 30, 500:10 429:10, 50", tr.OK, tr.Errors, tr.Requests)
	}
}

func TestTransportErrorsAndTruncatedStreams(t *testing.T) {
	// A server that cuts every stream after the first token.
	srv := startFake(t, &fakeServer{})
	srv.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = w.Write([]byte("data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n"))
	})
	rep, err := Run(t.Context(), Config{Targets: []string{srv.URL(), "http://127.0.0.1:1/v1"}, Model: "m", Concurrency: 2, Requests: 4, Rounds: 2}, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	if got := rep.Targets[0].Errors[ErrKindStream]; got != 4 {
		t.Errorf("stream errors %d, want 4 (%v)", got, rep.Targets[0].Errors)
	}
	if got := rep.Targets[1].Errors[ErrKindTransport]; got != 4 {
		t.Errorf("transport errors %d, want 4 (%v)", got, rep.Targets[1].Errors)
	}
}

func TestCanceledRunReturnsPartialReport(t *testing.T) {
	f := startFake(t, &fakeServer{ttft: func(int) time.Duration { return ms2d(5) }})
	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		for f.arrivals.Load() < 5 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	rep, err := Run(ctx, Config{Targets: []string{f.URL()}, Model: "m", Concurrency: 2, Duration: time.Minute}, discardLogger())
	if err == nil || rep == nil {
		t.Fatalf("err %v report %v, want interrupted with a partial report", err, rep)
	}
	if rep.Targets[0].Requests < 5 {
		t.Errorf("partial report has %d requests, want >= 5", rep.Targets[0].Requests)
	}
}

func TestCountHeader(t *testing.T) {
	a := startFake(t, &fakeServer{header: "a"})
	rep, err := Run(t.Context(), Config{Targets: []string{a.URL()}, Model: "m", Requests: 7, CountHeader: "X-Backend"}, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	if got := rep.Targets[0].ByHeader["a"]; got != 7 {
		t.Errorf("by header %v, want a=7", rep.Targets[0].ByHeader)
	}
}
