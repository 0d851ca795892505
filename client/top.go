package client

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// TopView is what one frame of `vllm-proxy top` shows.
type TopView struct {
	URL   string    // the proxy
	At    time.Time // when Stats was read
	Stats LoadStats // the latest /load-stats (kept on errors, shown stale)
	Err   error     // the latest fetch error, shown under the header
	Color bool      // ANSI colors
}

const (
	ansiReset = "\x1b[0m"
	ansiBold  = "\x1b[1m"
	ansiRed   = "\x1b[31m"
	ansiGreen = "\x1b[32m"
	ansiYel   = "\x1b[33m"
	ansiDim   = "\x1b[2m"
)

// Render returns the frame as lines of at most width visible columns (0: no limit).
// With Color, cells carry ANSI colors; widths count only visible characters.
func (v TopView) Render(width int) []string {
	paint := func(code, s string) string {
		if !v.Color || code == "" {
			return s
		}
		return code + s + ansiReset
	}
	healthy := 0
	var run, wait float64
	var infl, inflBatch int64
	for _, b := range v.Stats.Backends {
		if b.Healthy {
			healthy++
		}
		run += b.Running
		wait += b.Waiting
		infl += b.InFlight
		inflBatch += b.InFlightByClass["batch"]
	}
	title := "vllm-proxy top"
	rest := 0 // what is left of width after the title; 0: no limit, -1: nothing
	if width > 0 {
		rest = width - len(title)
		if rest <= 0 {
			rest = -1
		}
	}
	lines := []string{
		paint(ansiBold, clip(title, width)) + clip(fmt.Sprintf("  %s  policy %s  %s   q: quit", v.URL, orDash(v.Stats.Policy), v.At.Format("15:04:05")), rest),
		clip(fmt.Sprintf("backends %d, healthy %d   running %s  waiting %s   in flight %d (batch %d)",
			len(v.Stats.Backends), healthy, num(run), num(wait), infl, inflBatch), width),
	}
	if v.Err != nil {
		lines = append(lines, paint(ansiRed, clip("error: "+v.Err.Error()+" (showing the last answer)", width)))
	}
	lines = append(lines, "")
	header := []string{"BACKEND", "HEALTH", "LOAD", "", "RUN", "WAIT", "INFL", "INT", "BATCH", "CAP", "KV%", "HIT%", "PRED%", "METRICS", "MODELS"}
	rows := [][]cell{}
	for _, b := range v.Stats.Backends {
		health, hc := "up", ansiGreen
		if !b.Healthy {
			health, hc = "DOWN", ansiRed
		}
		metrics, mc := "-", ansiDim
		switch {
		case b.MetricsStale:
			metrics, mc = "STALE", ansiYel
		case b.MetricsAgeMS >= 0:
			metrics, mc = fmt.Sprintf("%dms", b.MetricsAgeMS), ""
		}
		lc := ""
		if b.Load >= 0.9 {
			lc = ansiYel
		}
		pred := "-"
		if b.PredictedPrefixCacheHitRate != nil {
			pred = pct(*b.PredictedPrefixCacheHitRate)
		}
		models := strings.Join(slices.Sorted(slices.Values(b.Models)), ",")
		rows = append(rows, []cell{
			{text: b.URL}, {text: health, color: hc}, {text: fmt.Sprintf("%.2f", b.Load), color: lc},
			{text: Bar(b.Load, 12), color: lc}, {text: num(b.Running)}, {text: num(b.Waiting)},
			{text: fmt.Sprint(b.InFlight)}, {text: fmt.Sprint(b.InFlightByClass["interactive"])},
			{text: fmt.Sprint(b.InFlightByClass["batch"])}, {text: fmt.Sprint(b.Capacity)},
			{text: pct(b.KVCacheUsage)}, {text: pct(b.PrefixCacheHitRate)}, {text: pred},
			{text: metrics, color: mc}, {text: orDash(models)},
		})
	}
	widths := make([]int, len(header))
	for i, h := range header {
		widths[i] = len(h)
	}
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], len([]rune(c.text)))
		}
	}
	hcells := make([]cell, len(header))
	for i, h := range header {
		hcells[i] = cell{text: h, color: ansiBold}
	}
	lines = append(lines, joinRow(hcells, widths, width, paint))
	for _, r := range rows {
		lines = append(lines, joinRow(r, widths, width, paint))
	}
	if len(rows) == 0 {
		lines = append(lines, clip("(no backends)", width))
	}
	return append(lines, v.modelLines(width, paint)...)
}

// modelLines summarises the backends per model: how many serve it and are healthy, and
// their running, waiting and in-flight requests together.
func (v TopView) modelLines(width int, paint func(code, s string) string) []string {
	type agg struct {
		backends, healthy int
		run, wait         float64
		infl              int64
	}
	per := map[string]*agg{}
	for _, b := range v.Stats.Backends {
		for _, m := range b.Models {
			a := per[m]
			if a == nil {
				a = &agg{}
				per[m] = a
			}
			a.backends++
			if b.Healthy {
				a.healthy++
			}
			a.run += b.Running
			a.wait += b.Waiting
			a.infl += b.InFlight
		}
	}
	if len(per) == 0 {
		return nil
	}
	header := []string{"MODEL", "BACKENDS", "RUN", "WAIT", "INFL"}
	var rows [][]cell
	for _, m := range slices.Sorted(maps.Keys(per)) {
		a := per[m]
		bc := ""
		if a.healthy == 0 {
			bc = ansiRed
		}
		rows = append(rows, []cell{{text: m}, {text: fmt.Sprintf("%d/%d", a.healthy, a.backends), color: bc},
			{text: num(a.run)}, {text: num(a.wait)}, {text: fmt.Sprint(a.infl)}})
	}
	widths := make([]int, len(header))
	hcells := make([]cell, len(header))
	for i, h := range header {
		widths[i], hcells[i] = len(h), cell{text: h, color: ansiBold}
	}
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], len([]rune(c.text)))
		}
	}
	rightFrom := 1
	lines := []string{"", joinCells(append(hcells, cell{}), append(widths, 0), width, rightFrom, paint)}
	for _, r := range rows {
		lines = append(lines, joinCells(append(r, cell{}), append(widths, 0), width, rightFrom, paint))
	}
	return lines
}

type cell struct {
	text  string
	color string
}

// joinRow lays out a backend row: numbers right-aligned, the load bar and the metrics
// age left-aligned, the last column (models) taking what is left.
func joinRow(cells []cell, widths []int, width int, paint func(code, s string) string) string {
	return layout(cells, widths, width, func(i int) bool { return i >= 2 && i != 3 && i != 13 }, paint)
}

// joinCells lays out a row whose columns from rightFrom on are right-aligned; the last
// column is not padded.
func joinCells(cells []cell, widths []int, width, rightFrom int, paint func(code, s string) string) string {
	return strings.TrimRight(layout(cells, widths, width, func(i int) bool { return i >= rightFrom }, paint), " ")
}

// layout joins cells with two spaces in columns of widths, cut at width visible
// columns (0: no limit); right(i) says which columns are right-aligned.
func layout(cells []cell, widths []int, width int, right func(int) bool, paint func(code, s string) string) string {
	var b strings.Builder
	used := 0
	for i, c := range cells {
		sep := "  "
		if i == 0 {
			sep = ""
		}
		text, left, rpad := c.text, "", ""
		if i < len(cells)-1 {
			pad := strings.Repeat(" ", max(widths[i]-len([]rune(text)), 0))
			if right(i) {
				left = pad
			} else {
				rpad = pad
			}
		}
		n := len(sep) + len(left) + len([]rune(text)) + len(rpad)
		if width > 0 && used+n > width {
			room := width - used - len(sep) - len(left)
			if room > 0 {
				b.WriteString(sep + left + paint(c.color, clip(text, room)))
			}
			break
		}
		b.WriteString(sep + left + paint(c.color, text) + rpad)
		used += n
	}
	return b.String()
}

// clip cuts s to width runes; width 0 means no limit, a negative width leaves nothing.
func clip(s string, width int) string {
	r := []rune(s)
	if width < 0 {
		return ""
	}
	if width == 0 || len(r) <= width {
		return s
	}
	return string(r[:width])
}

func pct(f float64) string { return fmt.Sprintf("%.0f", f*100) }

func num(f float64) string {
	if f == float64(int64(f)) {
		return fmt.Sprint(int64(f))
	}
	return fmt.Sprintf("%.1f", f)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
