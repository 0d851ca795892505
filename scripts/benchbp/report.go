package main

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// median ignores NaNs; NaN when nothing is left.
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
	slices.Sort(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// group returns the median of field over the repetitions of (sched, load, run, controller).
func group(all []*result, sched string, load float64, run, ctl string, field func(*result) float64) float64 {
	var xs []float64
	for _, r := range all {
		if r.sched == sched && r.load == load && r.run == run && r.controller == ctl {
			xs = append(xs, field(r))
		}
	}
	return median(xs)
}

func f0(x float64) string {
	if math.IsNaN(x) {
		return "—"
	}
	return strconv.FormatFloat(x, 'f', 0, 64)
}

func f2(x float64) string {
	if math.IsNaN(x) {
		return "—"
	}
	return strconv.FormatFloat(x, 'f', 2, 64)
}

// pairedRatio returns the median over the repetitions of (sched, load, run, ctl) of
// field divided by field of run A with the same seed (the same arrivals), so the noise
// between repetitions does not enter the ratio twice.
func pairedRatio(all []*result, sched string, load float64, run, ctl string, field func(*result) float64) float64 {
	return pairedRatioTo(all, "A", sched, load, run, ctl, field)
}

// runABurst names the run of interactive traffic alone with C's burst.
const runABurst = "A+burst"

// pairedRatioTo is pairedRatio against the repetitions of run base instead of A.
func pairedRatioTo(all []*result, base, sched string, load float64, run, ctl string, field func(*result) float64) float64 {
	a := map[uint64]*result{}
	for _, r := range all {
		if r.sched == sched && r.load == load && r.run == base {
			a[r.seed] = r
		}
	}
	return group(all, sched, load, run, ctl, func(r *result) float64 {
		if ar, ok := a[r.seed]; ok {
			return field(r) / field(ar)
		}
		return math.NaN()
	})
}

// printTables writes the markdown table of one (sched, load): medians over the
// repetitions; ratios to run A are medians of the per-repetition ratios.
func printTables(w io.Writer, all []*result, sched string, load, capRate float64) {
	free := (1 - load) * capRate
	get := func(run, ctl string, f func(*result) float64) float64 { return group(all, sched, load, run, ctl, f) }
	ratio := func(run, ctl string, f func(*result) float64) float64 {
		return pairedRatio(all, sched, load, run, ctl, f)
	}
	fmt.Fprintf(w, "\n#### %s, interactive at %.0f%% of capacity (%.1f req/s)\n\n", sched, 100*load, load*capRate)
	fmt.Fprintln(w, "| run | controller | TTFT p50 ms | TTFT p99 ms | ITL p99 ms | E2E p99 ms | TTFT p99 ÷ A | ITL p99 ÷ A | batch lines/s | ÷ free capacity | C: target at floor after ms | C: batch at floor after ms | C: burst TTFT p99 ÷ steady | C: burst TTFT p99 ÷ A+burst | 400s |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	row := func(run, ctl string) {
		if !slices.ContainsFunc(all, func(r *result) bool {
			return r.sched == sched && r.load == load && r.run == run && r.controller == ctl
		}) {
			return // not run (-runs)
		}
		ttft := get(run, ctl, func(r *result) float64 { return r.ttftP99 })
		itl := get(run, ctl, func(r *result) float64 { return r.itlP99 })
		bps := get(run, ctl, func(r *result) float64 { return r.batchPerS })
		react, tgt, burst, vsAlone := math.NaN(), math.NaN(), math.NaN(), math.NaN()
		if run == "C" || run == runABurst {
			burst = get(run, ctl, func(r *result) float64 { return r.burstTTFTP99 / r.ttftP99 })
		}
		if run == "C" {
			react = get(run, ctl, func(r *result) float64 { return r.reactMS })
			if ctl != "off" { // no controller, no target
				tgt = get(run, ctl, func(r *result) float64 { return r.targetMS })
			}
			vsAlone = pairedRatioTo(all, runABurst, sched, load, run, ctl, func(r *result) float64 { return r.burstTTFTP99 })
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", run, ctl,
			f0(get(run, ctl, func(r *result) float64 { return r.ttftP50 })), f0(ttft), f0(itl),
			f0(get(run, ctl, func(r *result) float64 { return r.e2eP99 })),
			f2(ratio(run, ctl, func(r *result) float64 { return r.ttftP99 })),
			f2(ratio(run, ctl, func(r *result) float64 { return r.itlP99 })), f2(bps), f2(bps/free), f0(tgt), f0(react), f2(burst), f2(vsAlone),
			f0(get(run, ctl, func(r *result) float64 { return float64(r.bad400) })))
	}
	row("A", "-")
	row(runABurst, "-")
	seen := map[string]bool{}
	for _, r := range all {
		if r.sched == sched && r.load == load && r.controller != "-" && !seen[r.controller] {
			seen[r.controller] = true
			row("B", r.controller)
			row("C", r.controller)
		}
	}
}

// writeCSVs writes one CSV of interactive samples and one of in-flight points per run.
func writeCSVs(dir string, all []*result) error {
	for i, r := range all {
		base := fmt.Sprintf("%02d_%s_%02.0f_%s_%s", i, r.sched, 100*r.load, r.run, r.controller)
		if err := writeCSV(filepath.Join(dir, base+"_interactive.csv"), []string{"arrival_ms", "ok", "ttft_ms", "e2e_ms", "itl_p50_ms"},
			len(r.samples), func(j int) []string {
				s := r.samples[j]
				var itl []float64
				for _, d := range s.itls {
					itl = append(itl, ms(d))
				}
				return []string{f0(ms(s.at)), strconv.FormatBool(s.ok), f2(ms(s.ttft)), f2(ms(s.e2e)), f2(median(itl))}
			}); err != nil {
			return err
		}
		if err := writeCSV(filepath.Join(dir, base+"_inflight.csv"), []string{"at_ms", "batch", "interactive", "batch_target"},
			len(r.points), func(j int) []string {
				pt := r.points[j]
				return []string{f0(ms(pt.at)), strconv.FormatInt(pt.batch, 10), strconv.FormatInt(pt.interactive, 10), strconv.Itoa(pt.target)}
			}); err != nil {
			return err
		}
	}
	return nil
}

func writeCSV(path string, head []string, n int, row func(int) []string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	_ = w.Write(head)
	for j := range n {
		_ = w.Write(row(j))
	}
	w.Flush()
	if err := w.Error(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// plotBurst draws, for the run C of each controller at the highest load of the last
// scheduling mode, interactive TTFT over time (top) and batch in flight (bottom).
func plotBurst(path string, all []*result, p plan) error {
	var cs []*result
	for _, r := range all {
		if r.run == "C" {
			cs = append(cs, r)
		}
	}
	if len(cs) == 0 {
		return nil
	}
	last := cs[len(cs)-1]
	var pick []*result
	for _, r := range cs {
		if r.sched == last.sched && r.load == last.load && !slices.ContainsFunc(pick, func(x *result) bool { return x.controller == r.controller }) {
			pick = append(pick, r)
		}
	}
	rows := 2
	img := vgimg.New(vg.Length(len(pick))*5*vg.Inch, 7*vg.Inch)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: rows, Cols: len(pick), PadX: vg.Millimeter * 4, PadY: vg.Millimeter * 4,
		PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	for col, r := range pick {
		top := plot.New()
		top.Title.Text = fmt.Sprintf("%s, %.0f%% load, run C, controller %s", r.sched, 100*r.load, r.controller)
		top.X.Label.Text, top.Y.Label.Text = "arrival (s)", "interactive TTFT (ms)"
		var pts plotter.XYs
		for _, s := range r.samples {
			if s.ok {
				pts = append(pts, plotter.XY{X: s.at.Seconds(), Y: ms(s.ttft)})
			}
		}
		sc, err := plotter.NewScatter(pts)
		if err != nil {
			return err
		}
		sc.Radius = vg.Points(1.2)
		sc.Color = plotutil.Color(0)
		top.Add(sc)
		bottom := plot.New()
		bottom.X.Label.Text, bottom.Y.Label.Text = "time (s)", "requests in flight"
		var bl, il plotter.XYs
		for _, pt := range r.points {
			bl = append(bl, plotter.XY{X: pt.at.Seconds(), Y: float64(pt.batch)})
			il = append(il, plotter.XY{X: pt.at.Seconds(), Y: float64(pt.interactive)})
		}
		lb, err := plotter.NewLine(bl)
		if err != nil {
			return err
		}
		lb.Color = plotutil.Color(1)
		li, err := plotter.NewLine(il)
		if err != nil {
			return err
		}
		li.Color = plotutil.Color(0)
		bottom.Add(lb, li)
		bottom.Legend.Add("batch", lb)
		bottom.Legend.Add("interactive", li)
		bottom.Legend.Top = true
		for _, pl := range []*plot.Plot{top, bottom} {
			pl.X.Min, pl.X.Max = 0, p.duration.Seconds()
		}
		top.Draw(tiles.At(dc, col, 0))
		bottom.Draw(tiles.At(dc, col, 1))
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}
