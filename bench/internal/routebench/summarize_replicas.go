package main

import (
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

func summarizeReplicas(p *printer, byWL map[string][]*run) {
	for _, wl := range sortedWorkloads(byWL) {
		runs := byWL[wl]
		p.f("### 1 vs 3 replicas, %s\n\n%d run(s); machine load average (1 min) at start/end of each: %s.\n\n", wl, len(runs), machineLoads(runs))
		p.f("| setup | req/s | TTFT p50 ms | TTFT p90 ms | engine hit rate | runs (hit rate) | oracle | errors |\n|---|---:|---:|---:|---:|---|---:|---:|\n")
		for _, name := range runs[0].names {
			var rps, t50, t90, hit, oracle []float64
			errs := 0
			for _, r := range runs {
				t, ok := r.target(name)
				if !ok {
					continue
				}
				rps = append(rps, t.RequestsPerS)
				t50 = append(t50, t.TTFT.P50*1e3)
				t90 = append(t90, t.TTFT.P90*1e3)
				oracle = append(oracle, t.OracleHitFraction)
				h := math.NaN()
				if t.Engine != nil {
					h = t.Engine.PrefixHitRate
				}
				hit = append(hit, h)
				errs += errorsOf(t)
			}
			p.f("| %s | %s | %s | %s | %s | %s | %s | %d |\n", name, fmtNum(median(rps), 1), fmtNum(median(t50), 0),
				fmtNum(median(t90), 0), fmtNum(median(hit), 3), listNum(hit, 3), fmtNum(median(oracle), 3), errs)
		}
		p.f("\n")
		rel := make([]float64, len(runs))
		for i, r := range runs {
			rel[i] = math.NaN()
			one, ok1 := r.target("1-replica")
			three, ok3 := r.target("3-replicas")
			if ok1 && ok3 && one.Engine != nil && three.Engine != nil {
				rel[i] = math.Abs(div(three.Engine.PrefixHitRate, one.Engine.PrefixHitRate) - 1)
			}
		}
		p.goals([]goal{{"\\|3-replica hit rate ÷ 1-replica − 1\\| ≤ 0.02", rel, func(v float64) bool { return v <= 0.02 }, 3}})
		printProxyCounters(p, runs, runs[0].names)
	}
}

// bucketSeconds is the width of the redis-kill hit-rate intervals.
const bucketSeconds = 5

// events reads the kill and restart times (Unix seconds) of a redis-kill run.
func events(dir string) (kill, restart float64) {
	kill, restart = math.NaN(), math.NaN()
	b, err := os.ReadFile(filepath.Join(dir, "events"))
	if err != nil {
		return kill, restart
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			continue
		}
		switch f[0] {
		case "kill":
			kill = v
		case "restart":
			restart = v
		}
	}
	return kill, restart
}

// hitSeries is the engine hit rate of all of a run's backends per bucket: Δhits/Δqueries
// between consecutive bucket boundaries (ticks where every backend was scraped).
type hitSeries struct {
	start  float64   // Unix time of the first tick
	lo, hi []float64 // bucket bounds, seconds since start
	rates  []float64 // per bucket
	tokens []float64 // prompt tokens queried per bucket
}

func (r *run) hitSeries() hitSeries {
	type agg struct {
		unix, q, h float64
		n, ok      int
	}
	var order []float64
	byT := map[float64]*agg{}
	for _, t := range r.ticks {
		a := byT[t.T]
		if a == nil {
			a = &agg{unix: t.Unix}
			byT[t.T] = a
			order = append(order, t.T)
		}
		a.n++
		if t.OK {
			a.ok++
			a.q += t.Queries
			a.h += t.Hits
		}
	}
	var s hitSeries
	var prev *agg
	for _, t := range order {
		a := byT[t]
		if a.ok != a.n {
			continue
		}
		if prev == nil {
			s.start, prev = a.unix, a
			continue
		}
		if a.unix-prev.unix < bucketSeconds-0.5 {
			continue
		}
		dq, dh := a.q-prev.q, a.h-prev.h
		s.lo, s.hi = append(s.lo, prev.unix-s.start), append(s.hi, a.unix-s.start)
		s.rates = append(s.rates, div(dh, dq))
		s.tokens = append(s.tokens, dq)
		prev = a
	}
	return s
}

func summarizeRedisKill(p *printer, byWL map[string][]*run) {
	for _, wl := range sortedWorkloads(byWL) {
		redisKill(p, wl, byWL[wl])
	}
}

func redisKill(p *printer, wl string, runs []*run) {
	p.f("### Redis killed mid-run (cache_aware, 3 replicas, %s)\n\n%d run(s); machine load average (1 min) at start/end of each: %s.\n\n", wl, len(runs), machineLoads(runs))
	series := make([]hitSeries, len(runs))
	kills, restarts := make([]float64, len(runs)), make([]float64, len(runs))
	var before, down, after, errs []float64
	n := 0
	for i, r := range runs {
		series[i] = r.hitSeries()
		k, rs := events(r.dir)
		kills[i], restarts[i] = k-series[i].start, rs-series[i].start
		n = max(n, len(series[i].rates))
		var b, d, a []float64
		for j, v := range series[i].rates {
			lo, hi := series[i].lo[j], series[i].hi[j]
			switch {
			case hi <= kills[i] && hi > kills[i]-20:
				b = append(b, v)
			case lo >= kills[i] && hi <= restarts[i]:
				d = append(d, v)
			case lo >= restarts[i]+bucketSeconds:
				a = append(a, v)
			}
		}
		before, down, after = append(before, median(b)), append(down, median(d)), append(after, median(a))
		e := 0
		for _, t := range r.report.Targets {
			e += errorsOf(t)
		}
		errs = append(errs, float64(e))
	}
	p.f("Redis killed at %s s and restarted at %s s after the watch started (per run). "+
		"Each interval is Δhits/Δqueries of the 4 simulators between two scrapes ~%d s apart; "+
		"the Redis column is run 1's.\n\n", listNum(kills, 1), listNum(restarts, 1), bucketSeconds)
	p.f("| interval (s, run 1) |")
	for i := range runs {
		p.f(" run %d hit rate |", i+1)
	}
	p.f(" Redis |\n|---|")
	for range runs {
		p.f("---:|")
	}
	p.f("---|\n")
	for j := range n {
		lo, hi := math.NaN(), math.NaN()
		if j < len(series[0].lo) {
			lo, hi = series[0].lo[j], series[0].hi[j]
		}
		p.f("| %s–%s |", fmtNum(lo, 0), fmtNum(hi, 0))
		for i := range runs {
			v := math.NaN()
			if j < len(series[i].rates) {
				v = series[i].rates[j]
			}
			p.f(" %s |", fmtNum(v, 3))
		}
		state := "up"
		switch k, rs := kills[0], restarts[0]; {
		case lo < k && k <= hi:
			state = "killed"
		case lo < rs && rs <= hi:
			state = "restarted"
		case lo >= k && hi <= rs:
			state = "**down**"
		}
		p.f(" %s |\n", state)
	}
	p.f("\n| phase | median hit rate | runs |\n|---|---:|---|\n")
	p.f("| last 20 s before the kill | %s | %s |\n", fmtNum(median(before), 3), listNum(before, 3))
	p.f("| Redis down (whole intervals) | %s | %s |\n", fmtNum(median(down), 3), listNum(down, 3))
	p.f("| after the restart (from 5 s on) | %s | %s |\n", fmtNum(median(after), 3), listNum(after, 3))
	p.f("| client errors (total per run) | %s | %s |\n\n", fmtNum(median(errs), 0), listNum(errs, 0))
	printProxyCounters(p, runs, []string{"3-replicas"})
}
