package client

import (
	"fmt"
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
	return lines
}

type cell struct {
	text  string
	color string
}

// joinRow lays out cells in columns of widths (numbers right-aligned), cut at width
// visible columns; the last column (models) takes what is left.
func joinRow(cells []cell, widths []int, width int, paint func(code, s string) string) string {
	var b strings.Builder
	used := 0
	for i, c := range cells {
		sep := "  "
		if i == 0 {
			sep = ""
		}
		text, left, right := c.text, "", ""
		if i < len(cells)-1 {
			pad := strings.Repeat(" ", max(widths[i]-len([]rune(text)), 0))
			if i >= 2 && i != 3 && i != 13 { // numbers right-aligned
				left = pad
			} else {
				right = pad
			}
		}
		n := len(sep) + len(left) + len([]rune(text)) + len(right)
		if width > 0 && used+n > width {
			room := width - used - len(sep) - len(left)
			if room > 0 {
				b.WriteString(sep + left + paint(c.color, clip(text, room)))
			}
			break
		}
		b.WriteString(sep + left + paint(c.color, text) + right)
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
