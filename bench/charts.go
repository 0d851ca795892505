package bench

import (
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// Chart file names WriteCharts creates in its directory.
const (
	ChartTTFTCDF    = "ttft_cdf.png"
	ChartThroughput = "throughput.png"
)

// WriteCharts draws the TTFT CDF and the completed-requests-per-second time series of
// every target into dir (created if needed) and returns the files written.
func (r *Report) WriteCharts(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("creating chart dir: %w", err)
	}
	byTarget := make([][]Sample, len(r.Targets))
	for _, s := range r.Samples {
		if s.Target < len(byTarget) {
			byTarget[s.Target] = append(byTarget[s.Target], s)
		}
	}
	cdf, err := r.ttftCDF(byTarget)
	if err != nil {
		return nil, err
	}
	tput, err := r.throughput(byTarget)
	if err != nil {
		return nil, err
	}
	var files []string
	for _, c := range []struct {
		p    *plot.Plot
		name string
	}{{cdf, ChartTTFTCDF}, {tput, ChartThroughput}} {
		path := filepath.Join(dir, c.name)
		if err := c.p.Save(8*vg.Inch, 5*vg.Inch, path); err != nil {
			return files, fmt.Errorf("saving chart %s: %w", path, err)
		}
		files = append(files, path)
	}
	return files, nil
}

func styleLine(l *plotter.Line, i int) {
	l.Color = plotutil.Color(i)
	l.Width = vg.Points(1.5)
	l.Dashes = plotutil.Dashes(i / len(plotutil.SoftColors))
}

// ttftCDF plots, per target, the fraction of successful requests with TTFT <= x ms.
func (r *Report) ttftCDF(byTarget [][]Sample) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "TTFT CDF (" + r.Workload + ")"
	p.X.Label.Text = "TTFT (ms)"
	p.Y.Label.Text = "fraction of requests"
	p.Y.Min, p.Y.Max = 0, 1
	p.Add(plotter.NewGrid())
	for i, ss := range byTarget {
		var v []float64
		for _, s := range ss {
			if s.OK() {
				v = append(v, s.TTFT.Seconds()*1000)
			}
		}
		if len(v) == 0 {
			continue
		}
		slices.Sort(v)
		// At most ~500 points keep the PNG cheap to draw for large runs.
		step := max(1, len(v)/500)
		var pts plotter.XYs
		for k := 0; k < len(v); k += step {
			pts = append(pts, plotter.XY{X: v[k], Y: float64(k+1) / float64(len(v))})
		}
		pts = append(pts, plotter.XY{X: v[len(v)-1], Y: 1})
		l, err := plotter.NewLine(pts)
		if err != nil {
			return nil, fmt.Errorf("ttft cdf line: %w", err)
		}
		styleLine(l, i)
		p.Add(l)
		p.Legend.Add(r.Targets[i].URL, l)
	}
	p.Legend.Top = false
	p.Legend.Left = false
	return p, nil
}

// throughput plots successful completions per second, per target, against run time.
func (r *Report) throughput(byTarget [][]Sample) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "Throughput over time (" + r.Workload + ")"
	p.X.Label.Text = "time since start (s)"
	p.Y.Label.Text = "completed requests/s"
	p.Y.Min = 0
	p.Add(plotter.NewGrid())
	// Bucket width: 1 s, or wider for long runs so there are at most ~300 buckets.
	width := math.Max(1, math.Ceil(r.Elapsed/300))
	for i, ss := range byTarget {
		counts := map[int]int{}
		for _, s := range ss {
			if s.OK() {
				counts[int((s.Start+s.E2E).Seconds()/width)]++
			}
		}
		if len(counts) == 0 {
			continue
		}
		keys := slices.Sorted(maps.Keys(counts))
		var pts plotter.XYs
		for _, k := range keys {
			pts = append(pts, plotter.XY{X: (float64(k) + 0.5) * width, Y: float64(counts[k]) / width})
		}
		sc, err := plotter.NewScatter(pts)
		if err != nil {
			return nil, fmt.Errorf("throughput points: %w", err)
		}
		sc.Color = plotutil.Color(i)
		sc.Shape = plotutil.Shape(i)
		sc.Radius = vg.Points(2)
		p.Add(sc)
		p.Legend.Add(r.Targets[i].URL, sc)
	}
	p.Legend.Top = true
	return p, nil
}
