package main

import (
	"math"
	"slices"
	"sort"
)

// Policy names as the script labels its targets.
const (
	cacheAware = "cache_aware"
	chwbl      = "chwbl"
	leastLoad  = "least_load"
	roundRobin = "round_robin"
)

// policyRun is one policy's figures in one compare run.
type policyRun struct {
	rps, outTokPS, ttft50, ttft90, ttft99, hit, oracle, peakWaiting, backendWaiting, maxMean float64
	errors                                                                                   int
}

func policyFigures(r *run, name string) (policyRun, bool) {
	t, ok := r.target(name)
	if !ok {
		return policyRun{}, false
	}
	pr := policyRun{
		rps: t.RequestsPerS, outTokPS: t.OutputTokensPerS, ttft50: t.TTFT.P50, ttft90: t.TTFT.P90,
		ttft99: t.TTFT.P99, oracle: t.OracleHitFraction, errors: errorsOf(t),
		hit: math.NaN(), peakWaiting: math.NaN(),
	}
	if t.Engine != nil {
		pr.hit, pr.peakWaiting = t.Engine.PrefixHitRate, t.Engine.PeakWaiting
	}
	bs := r.backends(name)
	pr.backendWaiting, pr.maxMean = bs.maxWaiting, maxOverMean(bs.requests)
	return pr, true
}

var workloadOrder = []string{"shared-prefix", "multi-turn", "bursty", "uniform"}

func sortedWorkloads(m map[string][]*run) []string {
	var wls []string
	for wl := range m {
		wls = append(wls, wl)
	}
	rank := func(wl string) int {
		if i := slices.Index(workloadOrder, wl); i >= 0 {
			return i
		}
		return len(workloadOrder)
	}
	sort.Slice(wls, func(i, j int) bool {
		if a, b := rank(wls[i]), rank(wls[j]); a != b {
			return a < b
		}
		return wls[i] < wls[j]
	})
	return wls
}

// ratioOf is, per run, f(num)/f(den) of two policies; NaN where either is missing.
func ratioOf(runs []*run, num, den string, f func(policyRun) float64) []float64 {
	out := make([]float64, len(runs))
	for i, r := range runs {
		a, okA := policyFigures(r, num)
		b, okB := policyFigures(r, den)
		out[i] = math.NaN()
		if okA && okB {
			out[i] = div(f(a), f(b))
		}
	}
	return out
}

func summarizeCompare(p *printer, byWL map[string][]*run) {
	for _, wl := range sortedWorkloads(byWL) {
		runs := byWL[wl]
		names := runs[0].names
		p.f("### %s\n\n%d run(s); machine load average (1 min) at start/end of each: %s.\n\n", wl, len(runs), machineLoads(runs))
		p.f("| policy | req/s | out tok/s | TTFT p50 ms | TTFT p90 ms | TTFT p99 ms | engine hit rate | oracle | hit ÷ oracle | peak waiting (sum) | peak waiting (one backend) | max/mean req per backend | errors |\n")
		p.f("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, name := range names {
			var c [12][]float64
			errs := 0
			for _, r := range runs {
				f, ok := policyFigures(r, name)
				if !ok {
					continue
				}
				for k, v := range []float64{f.rps, f.outTokPS, f.ttft50 * 1e3, f.ttft90 * 1e3, f.ttft99 * 1e3,
					f.hit, f.oracle, div(f.hit, f.oracle), f.peakWaiting, f.backendWaiting, f.maxMean} {
					c[k] = append(c[k], v)
				}
				errs += f.errors
			}
			p.f("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %d |\n", name,
				fmtNum(median(c[0]), 1), fmtNum(median(c[1]), 0), fmtNum(median(c[2]), 0), fmtNum(median(c[3]), 0),
				fmtNum(median(c[4]), 0), fmtNum(median(c[5]), 3), fmtNum(median(c[6]), 3), fmtNum(median(c[7]), 2),
				fmtNum(median(c[8]), 0), fmtNum(median(c[9]), 0), fmtNum(median(c[10]), 2), errs)
		}
		p.f("\n")
		compareGoals(p, wl, runs)
		printProxyCounters(p, runs, names)
	}
}

// goal is one checked goal: the per-run values, their median and whether it passes.
type goal struct {
	text string
	vals []float64
	ok   func(float64) bool
	prec int
}

func (p *printer) goals(gs []goal) {
	p.f("| goal | median | runs | met |\n|---|---:|---|---|\n")
	for _, g := range gs {
		m := median(g.vals)
		met := "no"
		switch {
		case math.IsNaN(m):
			met = "n/a"
		case g.ok(m):
			met = "yes"
		}
		p.f("| %s | %s | %s | %s |\n", g.text, fmtNum(m, g.prec), listNum(g.vals, g.prec), met)
	}
	p.f("\n")
}

func compareGoals(p *printer, wl string, runs []*run) {
	get := func(f func(policyRun) float64) []float64 {
		out := make([]float64, len(runs))
		for i, r := range runs {
			out[i] = math.NaN()
			if pr, ok := policyFigures(r, cacheAware); ok {
				out[i] = f(pr)
			}
		}
		return out
	}
	le := func(x float64) func(float64) bool { return func(v float64) bool { return v <= x } }
	ge := func(x float64) func(float64) bool { return func(v float64) bool { return v >= x } }
	ttft90 := func(pr policyRun) float64 { return pr.ttft90 }
	var gs []goal
	switch wl {
	case "shared-prefix", "multi-turn":
		gs = []goal{
			{"cache_aware engine hit rate ÷ oracle ≥ 0.9", get(func(pr policyRun) float64 { return div(pr.hit, pr.oracle) }), ge(0.9), 3},
			{"cache_aware TTFT p90 ÷ least_load ≤ 0.5", ratioOf(runs, cacheAware, leastLoad, ttft90), le(0.5), 3},
			{"cache_aware TTFT p90 ÷ chwbl ≤ 0.8", ratioOf(runs, cacheAware, chwbl, ttft90), le(0.8), 3},
			{"cache_aware req/s ÷ round_robin ≥ 1", ratioOf(runs, cacheAware, roundRobin, func(pr policyRun) float64 { return pr.rps }), ge(1), 3},
		}
	case "bursty":
		gs = []goal{
			{"cache_aware peak waiting (sum) ÷ least_load ≤ 1.1", ratioOf(runs, cacheAware, leastLoad, func(pr policyRun) float64 { return pr.peakWaiting }), le(1.1), 3},
			{"cache_aware peak waiting (one backend) ÷ least_load ≤ 1.1", ratioOf(runs, cacheAware, leastLoad, func(pr policyRun) float64 { return pr.backendWaiting }), le(1.1), 3},
			{"cache_aware TTFT p90 ÷ least_load ≤ 1.1", ratioOf(runs, cacheAware, leastLoad, ttft90), le(1.1), 3},
		}
	case "uniform":
		gs = []goal{
			{"cache_aware max/mean requests per backend ≤ 1.25", get(func(pr policyRun) float64 { return pr.maxMean }), le(1.25), 3},
		}
	}
	if len(gs) > 0 {
		p.goals(gs)
	}
}
