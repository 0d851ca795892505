package bench

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	s := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	cases := []struct{ p, want float64 }{{0, 1}, {50, 5.5}, {90, 9.1}, {99, 9.91}, {100, 10}, {-1, 1}, {101, 10}}
	for _, c := range cases {
		if got := Percentile(s, c.p); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("Percentile(1..10, %v) = %v, want %v", c.p, got, c.want)
		}
	}
	if Percentile(nil, 50) != 0 || Percentile([]float64{3}, 99) != 3 {
		t.Error("edge cases of Percentile")
	}
	l := Summarize([]time.Duration{3 * time.Second, time.Second, 2 * time.Second})
	if l.Count != 3 || l.P50 != 2 || l.Mean != 2 || l.Max != 3 {
		t.Errorf("Summarize = %+v", l)
	}
}

func TestHistogramQuantile(t *testing.T) {
	h := NewHistogram()
	for i := 1; i <= 1000; i++ {
		h.Add(float64(i) / 1000) // 1 ms .. 1 s
	}
	for _, c := range []struct{ p, want float64 }{{50, 0.5}, {90, 0.9}, {99, 0.99}} {
		if got := h.Quantile(c.p); math.Abs(got-c.want)/c.want > 0.01 {
			t.Errorf("quantile %v = %v, want %v within 1%%", c.p, got, c.want)
		}
	}
	o := NewHistogram()
	o.Add(5)
	h.Merge(o)
	if s := h.Summary(); s.Count != 1001 || s.Max != 5 {
		t.Errorf("merged summary %+v", s)
	}
	if NewHistogram().Quantile(50) != 0 {
		t.Error("empty histogram quantile is not 0")
	}
}

func TestRatios(t *testing.T) {
	ts := []TargetReport{
		{URL: "a", RequestsPerS: 100, OutputTokensPerS: 1000, TTFT: Latency{P50: 0.1, P99: 0.4}, ITL: Latency{P50: 0.01, P99: 0.02}, E2E: Latency{P50: 1, P99: 2}},
		{URL: "b", RequestsPerS: 50, OutputTokensPerS: 1500, TTFT: Latency{P50: 0.2, P99: 0.1}, ITL: Latency{P50: 0.01, P99: 0.03}, E2E: Latency{P50: 3, P99: 1}},
		{URL: "c"},
	}
	r := Ratios(ts)
	want := Ratio{URL: "b", RequestsPerS: 0.5, OutputTokPS: 1.5, TTFTP50: 2, TTFTP99: 0.25, ITLP50: 1, ITLP99: 1.5, E2EP50: 3, E2EP99: 0.5}
	got := r[1]
	for _, pair := range [][2]float64{{got.RequestsPerS, want.RequestsPerS}, {got.OutputTokPS, want.OutputTokPS}, {got.TTFTP50, want.TTFTP50},
		{got.TTFTP99, want.TTFTP99}, {got.ITLP50, want.ITLP50}, {got.ITLP99, want.ITLP99}, {got.E2EP50, want.E2EP50}, {got.E2EP99, want.E2EP99}} {
		if math.Abs(pair[0]-pair[1]) > 1e-9 {
			t.Errorf("ratio %+v, want %+v", got, want)
			break
		}
	}
	if r[0].RequestsPerS != 1 || r[0].TTFTP99 != 1 || r[2].RequestsPerS != 0 {
		t.Errorf("first %+v third %+v", r[0], r[2])
	}
	// Zero in the first target gives 0, not Inf.
	if z := Ratios([]TargetReport{{}, {RequestsPerS: 5}}); z[1].RequestsPerS != 0 {
		t.Errorf("division by zero gave %v", z[1].RequestsPerS)
	}
}

// TestTargetsInterleaved runs two targets in 4 rounds and checks that both got the same
// requests, in slices that alternate.
func TestTargetsInterleaved(t *testing.T) {
	a := startFake(t, &fakeServer{keep: true, header: "a"})
	b := startFake(t, &fakeServer{keep: true, header: "b", ttft: func(int) time.Duration { return 2 * time.Millisecond }})
	rep, err := Run(t.Context(), Config{Targets: []string{a.URL(), b.srv.URL}, Model: "m", Requests: 20, Rounds: 4,
		Concurrency: 2, WorkloadName: WorkloadSharedPrefix, Params: Params{SystemTokens: 32}, CountHeader: "X-Backend"}, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Targets) != 2 || rep.Targets[0].OK != 20 || rep.Targets[1].OK != 20 {
		t.Fatalf("targets %+v", rep.Targets)
	}
	if len(rep.Ratios) != 2 || rep.Ratios[0].TTFTP50 != 1 || rep.Ratios[1].TTFTP50 <= 1 {
		t.Errorf("ratios %+v: want the slower second target above 1", rep.Ratios)
	}
	if rep.Targets[0].ByHeader["a"] != 20 || rep.Targets[1].ByHeader["b"] != 20 {
		t.Errorf("by header %v %v", rep.Targets[0].ByHeader, rep.Targets[1].ByHeader)
	}
	// Same workload: the multisets of bodies agree.
	count := func(bs [][]byte) map[string]int {
		m := map[string]int{}
		for _, x := range bs {
			m[string(x)]++
		}
		return m
	}
	ca, cb := count(a.bodies), count(b.bodies)
	if len(ca) == 0 || len(ca) != len(cb) {
		t.Fatalf("distinct bodies %d vs %d", len(ca), len(cb))
	}
	for k, v := range ca {
		if cb[k] != v {
			t.Fatal("the two targets received different requests")
		}
	}
	// Slices alternate, and the order rotates each round so neither target always goes
	// first: rounds A B | B A | A B | B A, i.e. runs A, B, A, B, A by start time.
	var runs []int
	starts := append([]Sample(nil), rep.Samples...)
	sortByStart(starts)
	for _, s := range starts {
		if len(runs) == 0 || runs[len(runs)-1] != s.Target {
			runs = append(runs, s.Target)
		}
	}
	if fmt.Sprint(runs) != "[0 1 0 1 0]" {
		t.Errorf("targets by start time ran as %v, want [0 1 0 1 0]", runs)
	}
	if rep.Targets[0].OracleHitFraction <= 0 {
		t.Errorf("oracle hit fraction %v on shared-prefix, want > 0", rep.Targets[0].OracleHitFraction)
	}
}

func sortByStart(s []Sample) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j].Start < s[j-1].Start; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func TestOutputsJSONMarkdownCSVCharts(t *testing.T) {
	f := startFake(t, &fakeServer{gaps: []time.Duration{time.Millisecond}, status: func(k int) int {
		if k == 4 {
			return 503
		}
		return 0
	}})
	g := startFake(t, &fakeServer{})
	rep, err := Run(t.Context(), Config{Targets: []string{f.URL(), g.URL()}, Model: "m", Requests: 12, Rounds: 2}, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil || len(back.Targets) != 2 || back.Targets[0].Errors["503"] != 1 {
		t.Fatalf("json round trip: %v %+v", err, back.Targets)
	}
	md := rep.Markdown()
	for _, want := range []string{"| target | requests | errors | req/s |", "503:1", "TTFT p90 ms", "| target ÷ first |"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	buf.Reset()
	if err := rep.WriteCSV(&buf); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil || len(rows) != 25 || strings.Join(rows[0], ",") != strings.Join(CSVHeader, ",") {
		t.Fatalf("csv: %v, %d rows, header %v", err, len(rows), rows[0])
	}
	dir := t.TempDir()
	files, err := rep.WriteCharts(filepath.Join(dir, "charts"))
	if err != nil || len(files) != 2 {
		t.Fatalf("charts %v %v", files, err)
	}
	for _, p := range files {
		fh, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(fh)
		fh.Close()
		if err != nil || img.Bounds().Dx() < 100 {
			t.Errorf("%s is not a valid PNG: %v", p, err)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	c := Config{Targets: []string{"ftp://x", "http://ok"}, Endpoint: "embeddings", Rate: -1, Rounds: -2, Scrape: []string{"nohost"},
		WorkloadName: "zipf", Params: Params{Turns: -1}}
	err := c.Validate()
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, want := range []string{"ftp://x", "endpoint", "model is required", "rate", "duration or requests", "rounds", "scrape url", "unknown workload", "turns"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	for in, want := range map[string]string{"http://h:1": "http://h:1/v1", "http://h:1/": "http://h:1/v1", "http://h/v1/": "http://h/v1", "https://h/openai/v1": "https://h/openai/v1"} {
		if got, err := baseURL(in); err != nil || got != want {
			t.Errorf("baseURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
