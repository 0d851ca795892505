package client

import (
	"strings"
	"testing"
	"time"
)

func batchAt(status string, total, completed, failed int64) Batch {
	return Batch{ID: "batch_1", Status: status, RequestCounts: RequestCounts{Total: total, Completed: completed, Failed: failed}}
}

func TestProgressRateAndETA(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var p Progress
	p.Observe(t0, batchAt("in_progress", 100, 0, 0))
	if _, ok := p.Rate(); ok {
		t.Error("a rate from one observation")
	}
	if _, ok := p.ETA(); ok {
		t.Error("an ETA from one observation")
	}
	p.Observe(t0.Add(2*time.Second), batchAt("in_progress", 100, 18, 2))
	if r, ok := p.Rate(); !ok || r != 10 {
		t.Errorf("rate = %v %v, want 10/s", r, ok)
	}
	if eta, ok := p.ETA(); !ok || eta != 8*time.Second {
		t.Errorf("ETA = %v %v, want 8s", eta, ok)
	}
	line := p.Line(0)
	for _, want := range []string{"batch_1 in_progress [", "20/100", " 20%", "10.0/s", "ETA 0:08", "2 failed"} {
		if !strings.Contains(line, want) {
			t.Errorf("line %q lacks %q", line, want)
		}
	}
	// The window forgets samples older than needed to span 30 s: a slower recent pace
	// shows, measured from t0+2s (done 20) to t0+92s (done 64).
	p.Observe(t0.Add(62*time.Second), batchAt("in_progress", 100, 50, 2))
	p.Observe(t0.Add(92*time.Second), batchAt("in_progress", 100, 62, 2))
	if r, _ := p.Rate(); r != 44.0/90 {
		t.Errorf("rate over the last window = %v, want 44/90 per s", r)
	}
	// Counts going back mean another batch: start over.
	p.Observe(t0.Add(93*time.Second), batchAt("in_progress", 10, 1, 0))
	if _, ok := p.Rate(); ok {
		t.Error("rate kept across a reset")
	}
	// A finished batch shows no rate or ETA.
	p.Observe(t0.Add(94*time.Second), batchAt("completed", 10, 10, 0))
	if l := p.Line(0); strings.Contains(l, "/s") || strings.Contains(l, "ETA") || !strings.Contains(l, "10/10 100%") {
		t.Errorf("final line = %q", l)
	}
}

func TestProgressKeyIgnoresRate(t *testing.T) {
	var p Progress
	p.Observe(time.Unix(0, 0), batchAt("in_progress", 10, 1, 0))
	k := p.Key()
	p.Observe(time.Unix(5, 0), batchAt("in_progress", 10, 1, 0))
	if p.Key() != k {
		t.Error("key changed without a change of counts")
	}
	p.Observe(time.Unix(6, 0), batchAt("in_progress", 10, 2, 0))
	if p.Key() == k {
		t.Error("key unchanged after a change of counts")
	}
}

func TestProgressLineWidth(t *testing.T) {
	var p Progress
	p.Observe(time.Unix(0, 0), batchAt("in_progress", 1000, 500, 0))
	for _, w := range []int{200, 80, 50, 20, 5} {
		if l := p.Line(w); len(l) > w {
			t.Errorf("Line(%d) is %d long: %q", w, len(l), l)
		}
	}
}

func TestBar(t *testing.T) {
	for _, tc := range []struct {
		frac  float64
		width int
		want  string
	}{
		{0, 7, "[     ]"},
		{0.5, 12, "[====>     ]"},
		{1, 7, "[=====]"},
		{2, 7, "[=====]"},
		{-1, 7, "[     ]"},
	} {
		if got := Bar(tc.frac, tc.width); got != tc.want {
			t.Errorf("Bar(%v, %d) = %q, want %q", tc.frac, tc.width, got, tc.want)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0:00", 8 * time.Second: "0:08", 61500 * time.Millisecond: "1:02", 3*time.Hour + 4*time.Minute + 5*time.Second: "3:04:05",
	} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestProgressETAOverflow(t *testing.T) {
	var p Progress
	p.Observe(time.Unix(0, 0), batchAt("in_progress", 1<<62, 0, 0))
	p.Observe(time.Unix(1, 0), batchAt("in_progress", 1<<62, 1, 0))
	if eta, ok := p.ETA(); ok {
		t.Errorf("ETA %v for 2^62 lines at 1/s", eta)
	}
}
