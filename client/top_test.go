package client

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func sampleStats() LoadStats {
	pred := 0.42
	return LoadStats{Policy: "cache_aware", Backends: []BackendStats{
		{URL: "http://a:8000", Healthy: true, Models: []string{"m2", "m1"}, Running: 3, Waiting: 1.5, InFlight: 4,
			InFlightByClass: map[string]int64{"interactive": 3, "batch": 1}, Capacity: 8, Load: 0.45,
			KVCacheUsage: 0.31, PrefixCacheHitRate: 0.6, PredictedPrefixCacheHitRate: &pred, MetricsAgeMS: 120},
		{URL: "http://b:8000", Healthy: false, Capacity: 8, Load: 0.95, MetricsAgeMS: -1, MetricsStale: true},
	}}
}

func TestTopRender(t *testing.T) {
	v := TopView{URL: "http://p:8010", At: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Stats: sampleStats()}
	out := strings.Join(v.Render(0), "\n")
	for _, want := range []string{
		"vllm-proxy top  http://p:8010  policy cache_aware  03:04:05",
		"backends 2, healthy 1   running 3  waiting 1.5   in flight 4 (batch 1)",
		"http://a:8000  up    ", "m1,m2", "http://b:8000  DOWN", "STALE", "120ms",
		"MODEL  BACKENDS  RUN  WAIT  INFL", "m1          1/1    3   1.5     4", "m2          1/1    3   1.5     4",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("frame lacks %q:\n%s", want, out)
		}
	}
	// Columns line up: each row's HEALTH cell starts where the header's does.
	lines := v.Render(0)
	col := strings.Index(lines[3], "HEALTH")
	for _, l := range lines[4:6] {
		if !strings.HasPrefix(l[col:], "up") && !strings.HasPrefix(l[col:], "DOWN") {
			t.Errorf("misaligned row %q (HEALTH at %d)", l, col)
		}
	}
	if strings.Contains(out, "\x1b") {
		t.Error("escapes without Color")
	}
}

func TestTopRenderWidthAndColor(t *testing.T) {
	v := TopView{URL: "http://p:8010", Stats: sampleStats(), Err: errors.New("connection refused"), Color: true}
	for _, w := range []int{40, 80, 120} {
		for _, l := range v.Render(w) {
			if n := len([]rune(stripANSI(l))); n > w {
				t.Errorf("width %d: line of %d: %q", w, n, stripANSI(l))
			}
		}
	}
	out := strings.Join(v.Render(200), "\n")
	if !strings.Contains(out, ansiRed+"DOWN"+ansiReset) || !strings.Contains(out, "connection refused") {
		t.Errorf("colored frame lacks the red DOWN or the error:\n%q", out)
	}
	if empty := (TopView{}).Render(80); !strings.Contains(strings.Join(empty, "\n"), "(no backends)") {
		t.Errorf("empty frame: %q", empty)
	}
}

// stripANSI removes SGR sequences.
func stripANSI(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == 0x1b {
			for i < len(s) && s[i] != 'm' {
				i++
			}
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
