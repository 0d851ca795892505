package client

import (
	"fmt"
	"strings"
	"time"
)

// rateWindow is how far back the rate looks: long enough to smooth chunked progress,
// short enough to follow a change of speed.
const rateWindow = 30 * time.Second

// maxETA is the longest ETA shown.
const maxETA = 1000 * time.Hour

type sample struct {
	at   time.Time
	done int64
}

// Progress follows one batch's counts over time for a progress line with done/total,
// rate and ETA. The zero value is ready. Not safe for concurrent use.
type Progress struct {
	last    Batch
	samples []sample
}

// Observe records the batch as seen at now.
func (p *Progress) Observe(now time.Time, b Batch) {
	p.last = b
	done := b.RequestCounts.Done()
	if n := len(p.samples); n > 0 && done < p.samples[n-1].done {
		p.samples = p.samples[:0] // counts went back (a new batch): start over
	}
	p.samples = append(p.samples, sample{now, done})
	for len(p.samples) > 2 && now.Sub(p.samples[1].at) > rateWindow {
		p.samples = p.samples[1:]
	}
}

// Rate is lines finished per second over the recent window; ok is false until two
// observations that far apart exist.
func (p *Progress) Rate() (perSec float64, ok bool) {
	if len(p.samples) < 2 {
		return 0, false
	}
	first, last := p.samples[0], p.samples[len(p.samples)-1]
	d := last.at.Sub(first.at).Seconds()
	if d <= 0 {
		return 0, false
	}
	return float64(last.done-first.done) / d, true
}

// ETA is the time left at the current rate; ok is false when it cannot be told.
func (p *Progress) ETA() (time.Duration, bool) {
	rate, ok := p.Rate()
	left := p.last.RequestCounts.Total - p.last.RequestCounts.Done()
	if left <= 0 {
		return 0, p.last.RequestCounts.Total > 0
	}
	if !ok || rate <= 0 {
		return 0, false
	}
	secs := float64(left) / rate
	if secs > maxETA.Seconds() {
		return 0, false // not a time anyone waits for, and past what a Duration holds
	}
	return time.Duration(secs * float64(time.Second)).Round(time.Second), true
}

// Key is what a new plain-output line is printed for: the status and the counts, not the
// rate, which changes at every observation.
func (p *Progress) Key() string {
	c := p.last.RequestCounts
	return fmt.Sprintf("%s %d %d %d", p.last.Status, c.Total, c.Completed, c.Failed)
}

// Line renders the progress line in at most width columns (0: no limit):
//
//	batch_x in_progress [=========>          ]  45/100  45%  12.3/s  ETA 0:04  2 failed
func (p *Progress) Line(width int) string {
	b := p.last
	c := b.RequestCounts
	pct := 0.0
	if c.Total > 0 {
		pct = float64(c.Done()) / float64(c.Total)
	}
	tail := fmt.Sprintf(" %d/%d %3.0f%%", c.Done(), c.Total, pct*100)
	if rate, ok := p.Rate(); ok && !b.Terminal() {
		tail += fmt.Sprintf("  %.1f/s", rate)
	}
	if eta, ok := p.ETA(); ok && !b.Terminal() {
		tail += "  ETA " + FormatDuration(eta)
	}
	if c.Failed > 0 {
		tail += fmt.Sprintf("  %d failed", c.Failed)
	}
	head := b.ID + " " + b.Status + " "
	barWidth := 30
	if width > 0 {
		barWidth = min(barWidth, width-len(head)-len(tail)-2)
	}
	if barWidth < 5 {
		line := head + strings.TrimSpace(tail)
		if width > 0 && len(line) > width {
			line = line[:width]
		}
		return line
	}
	return head + Bar(pct, barWidth) + tail
}

// Bar renders frac (0..1) as [=====>    ] in width columns, brackets included.
func Bar(frac float64, width int) string {
	inner := max(width-2, 1)
	frac = min(max(frac, 0), 1)
	n := int(frac * float64(inner))
	switch {
	case n >= inner:
		return "[" + strings.Repeat("=", inner) + "]"
	case n == 0:
		return "[" + strings.Repeat(" ", inner) + "]"
	}
	return "[" + strings.Repeat("=", n-1) + ">" + strings.Repeat(" ", inner-n) + "]"
}

// FormatDuration renders d as m:ss, or h:mm:ss from an hour on.
func FormatDuration(d time.Duration) string {
	s := int64(d.Round(time.Second) / time.Second)
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s%3600/60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}
