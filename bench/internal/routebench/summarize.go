package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/vllm-proxy/vllm-proxy/bench"
)

// run is one bench invocation of scripts/bench-routing.sh: its report, the names of its
// targets in order (the targets file), and its watch ticks.
type run struct {
	dir     string
	report  bench.Report
	names   []string
	ticks   []Tick
	machine []string
}

// loadRun reads the files of one run directory.
func loadRun(dir string) (*run, error) {
	r := &run{dir: dir}
	b, err := os.ReadFile(filepath.Join(dir, "bench.json"))
	if err != nil {
		return nil, fmt.Errorf("reading report: %w", err)
	}
	if err := json.Unmarshal(b, &r.report); err != nil {
		return nil, fmt.Errorf("decoding %s/bench.json: %w", dir, err)
	}
	t, err := os.ReadFile(filepath.Join(dir, "targets"))
	if err != nil {
		return nil, fmt.Errorf("reading targets: %w", err)
	}
	for line := range strings.SplitSeq(strings.TrimSpace(string(t)), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			r.names = append(r.names, f[0])
		}
	}
	if len(r.names) != len(r.report.Targets) {
		return nil, fmt.Errorf("%s: %d names for %d targets", dir, len(r.names), len(r.report.Targets))
	}
	if m, err := os.ReadFile(filepath.Join(dir, "machine")); err == nil {
		r.machine = strings.Split(strings.TrimSpace(string(m)), "\n")
	}
	r.ticks, err = readTicks(filepath.Join(dir, "watch.jsonl"))
	if err != nil {
		return nil, err
	}
	return r, nil
}

func readTicks(path string) ([]Tick, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("opening watch file: %w", err)
	}
	defer f.Close()
	var ticks []Tick
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		var t Tick
		if err := json.Unmarshal(sc.Bytes(), &t); err != nil {
			continue // a line cut by the watch being killed
		}
		ticks = append(ticks, t)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return ticks, nil
}

// target returns the report of the named target.
func (r *run) target(name string) (bench.TargetReport, bool) {
	i := slices.Index(r.names, name)
	if i < 0 {
		return bench.TargetReport{}, false
	}
	return r.report.Targets[i], true
}

// backendStats are one group's per-backend totals from the watch ticks.
type backendStats struct {
	requests   []float64 // finished requests per backend over the run
	maxWaiting float64   // largest waiting count of one backend at one tick
}

func (r *run) backends(group string) backendStats {
	first, last := map[int]Tick{}, map[int]Tick{}
	var s backendStats
	for _, t := range r.ticks {
		if t.Group != group || !t.OK {
			continue
		}
		if _, ok := first[t.B]; !ok {
			first[t.B] = t
		}
		last[t.B] = t
		s.maxWaiting = max(s.maxWaiting, t.Waiting)
	}
	for b := 0; b < len(last); b++ {
		s.requests = append(s.requests, last[b].Requests-first[b].Requests)
	}
	return s
}

// maxOverMean is max/mean of xs (0 when the mean is 0).
func maxOverMean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	sum, mx := 0.0, 0.0
	for _, x := range xs {
		sum += x
		mx = max(mx, x)
	}
	if sum == 0 {
		return 0
	}
	return mx / (sum / float64(len(xs)))
}

// median of xs, NaN when empty; NaN entries are skipped.
func median(xs []float64) float64 {
	var v []float64
	for _, x := range xs {
		if !math.IsNaN(x) {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return math.NaN()
	}
	sort.Float64s(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func div(a, b float64) float64 {
	if b == 0 {
		return math.NaN()
	}
	return a / b
}

// errorsOf counts failed requests of a target.
func errorsOf(t bench.TargetReport) int {
	n := 0
	for _, v := range t.Errors {
		n += v
	}
	return n
}

// runDirs lists the run directories under dir/sub (…/<workload>/<repeat> or …/<repeat>).
func runDirs(dir string) ([]string, error) {
	var dirs []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && d.Name() == "bench.json" {
			dirs = append(dirs, filepath.Dir(p))
		}
		return nil
	})
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	sort.Strings(dirs)
	return dirs, err
}

func runSummarize(args []string, w io.Writer) error {
	fs := flag.NewFlagSet("summarize", flag.ContinueOnError)
	dir := fs.String("dir", ".", "results directory of scripts/bench-routing.sh")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("parsing summarize flags: %w", err)
	}
	p := &printer{w: w}
	for _, part := range []struct {
		sub string
		fn  func(*printer, map[string][]*run)
	}{{"compare", summarizeCompare}, {"replicas", summarizeReplicas}, {"redis-kill", summarizeRedisKill}} {
		dirs, err := runDirs(filepath.Join(*dir, part.sub))
		if err != nil {
			return fmt.Errorf("listing %s runs: %w", part.sub, err)
		}
		byWL := map[string][]*run{}
		for _, d := range dirs {
			r, err := loadRun(d)
			if err != nil {
				p.f("<!-- skipped %s: %v -->\n", d, err)
				continue
			}
			byWL[r.report.Workload] = append(byWL[r.report.Workload], r)
		}
		if len(byWL) > 0 {
			part.fn(p, byWL)
		}
	}
	return p.err
}

// printer writes formatted text and keeps the first error.
type printer struct {
	w   io.Writer
	err error
}

func (p *printer) f(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, args...)
	}
}

// fmtNum formats x with prec decimals, "–" for NaN.
func fmtNum(x float64, prec int) string {
	if math.IsNaN(x) {
		return "–"
	}
	return fmt.Sprintf("%.*f", prec, x)
}

// listNum formats every run's value, for the "runs" columns.
func listNum(xs []float64, prec int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmtNum(x, prec)
	}
	return strings.Join(s, " · ")
}

func machineLoads(runs []*run) string {
	var s []string
	for _, r := range runs {
		for _, m := range r.machine {
			if _, after, ok := strings.Cut(m, "load: "); ok {
				s = append(s, strings.Fields(after)[0])
			}
		}
	}
	if len(s) == 0 {
		return "unknown"
	}
	return strings.Join(s, ", ")
}
