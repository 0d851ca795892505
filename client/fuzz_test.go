package client

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzTopRender: any /load-stats answer renders without panic, every line within the
// width, and every backend's URL (clipped) on the screen.
func FuzzTopRender(f *testing.F) {
	seed, _ := json.Marshal(sampleStats())
	f.Add(seed, 80, true)
	f.Add([]byte(`{"policy":"x","backends":[{"url":"`+strings.Repeat("é", 300)+`","load":-3,"kv_cache_usage":1e308,"metrics_age_ms":-5}]}`), 20, false)
	f.Add([]byte(`{"backends":[{"url":"a","in_flight_by_class":{"batch":-1},"predicted_prefix_cache_hit_rate":null}]}`), 1, true)
	f.Fuzz(func(t *testing.T, body []byte, width int, color bool) {
		var s LoadStats
		if json.Unmarshal(body, &s) != nil {
			return
		}
		width = min(max(width, 0), 500)
		v := TopView{URL: "http://p", At: time.Unix(0, 0), Stats: s, Color: color}
		for _, l := range v.Render(width) {
			plain := stripANSI(l)
			if width > 0 && utf8.RuneCountInString(plain) > width {
				t.Fatalf("line of %d runes at width %d: %q", utf8.RuneCountInString(plain), width, plain)
			}
		}
	})
}

// FuzzProgressLine: any counts and observation times give a line within the width, and
// never a negative or NaN rate or ETA.
func FuzzProgressLine(f *testing.F) {
	f.Add(int64(100), int64(10), int64(2), int64(50), int64(3), 80)
	f.Add(int64(0), int64(0), int64(0), int64(0), int64(0), 0)
	f.Add(int64(-5), int64(7), int64(-9), int64(1), int64(-2), 10)
	f.Fuzz(func(t *testing.T, total, c1, failed, c2, dt int64, width int) {
		width = min(max(width, 0), 300)
		var p Progress
		t0 := time.Unix(1000, 0)
		p.Observe(t0, batchAt("in_progress", total, c1, failed))
		p.Observe(t0.Add(time.Duration(dt)*time.Second), batchAt("in_progress", total, c2, failed))
		if r, ok := p.Rate(); ok && (r != r) {
			t.Fatalf("NaN rate")
		}
		if eta, ok := p.ETA(); ok && eta < 0 {
			t.Fatalf("negative ETA %v", eta)
		}
		if l := p.Line(width); width > 0 && len(l) > width {
			t.Fatalf("line of %d at width %d: %q", len(l), width, l)
		}
	})
}
