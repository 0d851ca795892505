package backpressure

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestTableBoundaries(t *testing.T) {
	cases := []struct{ waiting, full, want int }{
		{0, 50, 50},
		{-1, 50, 50},
		{1, 50, 3},
		{5, 50, 3},
		{6, 50, 2},
		{10, 50, 2},
		{11, 50, 1},
		{1000, 50, 1},
		{1, 2, 2}, // never above full
		{0, 0, 0},
		{11, 0, 0},
		{0, -3, 0},
	}
	for _, c := range cases {
		if got := Table(c.waiting, c.full); got != c.want {
			t.Errorf("Table(waiting %d, full %d) = %d, want %d", c.waiting, c.full, got, c.want)
		}
	}
}

func TestAdaptiveTarget(t *testing.T) {
	nan := math.NaN()
	def := Config{}.withDefaults() // MaxConcurrent 50, reserve 2, floor 1
	noReserve := Config{InteractiveReserve: -1, Floor: -1}.withDefaults()
	cases := []struct {
		name string
		cfg  Config
		s    Signals
		want int
	}{
		{"idle backend: full capacity minus reserve", def, Signals{Capacity: 8, Waiting: 0}, 6},
		{"idle, no reserve: the whole backend", noReserve, Signals{Capacity: 8, Waiting: 0}, 8},
		{"big backend: MaxConcurrent caps", def, Signals{Capacity: 256, Waiting: 0}, 50},
		{"metrics unknown, idle", def, Signals{Capacity: 8, Waiting: nan}, 6},
		{"interactive in flight leaves room", def, Signals{Capacity: 64, Waiting: 0, Interactive: 10}, 50},
		{"interactive in flight takes room", def, Signals{Capacity: 16, Waiting: 0, Interactive: 10}, 4},
		{"scraped 1 waiting", def, Signals{Capacity: 64, Waiting: 1}, 3},
		{"scraped 5 waiting", def, Signals{Capacity: 64, Waiting: 5}, 3},
		{"scraped 6 waiting", def, Signals{Capacity: 64, Waiting: 6}, 2},
		{"scraped 10 waiting", def, Signals{Capacity: 64, Waiting: 10}, 2},
		{"scraped 11 waiting", def, Signals{Capacity: 64, Waiting: 11}, 1},
		{"fractional waiting (engines averaged) rounds up", def, Signals{Capacity: 64, Waiting: 0.5}, 3},
		{"live queue before the scrape shows it", def, Signals{Capacity: 8, Waiting: 0, Interactive: 3, Batch: 6}, 3},
		{"live queue of 7, interactive short of full: floor", def, Signals{Capacity: 8, Waiting: nan, Interactive: 7, Batch: 8}, 1},
		{"saturated by interactive: the floor yields", def, Signals{Capacity: 8, Waiting: 30, Interactive: 20}, 0},
		{"more than 10 waiting, interactive short of full: floor", def, Signals{Capacity: 8, Waiting: 30, Interactive: 7}, 1},
		{"saturated, floor 0", noReserve, Signals{Capacity: 8, Waiting: 30, Interactive: 20}, 0},
		{"interactive alone fills the backend: the floor yields", def, Signals{Capacity: 8, Waiting: 0, Interactive: 8}, 0},
		{"one slot short of full keeps the floor", def, Signals{Capacity: 8, Waiting: 0, Interactive: 7}, 1},
		{"reserve as big as the backend", Config{InteractiveReserve: 8}.withDefaults(), Signals{Capacity: 8}, 0},
		{"room left at the recent interactive peak", def, Signals{Capacity: 16, Waiting: 0, Interactive: 2, InteractivePeak: 10}, 4},
		{"a peak below the current count is ignored", def, Signals{Capacity: 16, Waiting: 0, Interactive: 10, InteractivePeak: 3}, 4},
	}
	for _, c := range cases {
		if got := c.cfg.adaptiveTarget(c.s); got != c.want {
			t.Errorf("%s: adaptiveTarget(%+v) = %d, want %d", c.name, c.s, got, c.want)
		}
	}
}

func TestPollTarget(t *testing.T) {
	c := Config{}.withDefaults()
	for _, tc := range []struct {
		capacity int
		waiting  float64
		want     int
	}{
		{256, 0, 50}, {8, 0, 8}, {256, math.NaN(), 50}, {256, 3, 3}, {256, 7, 2}, {256, 11, 1},
	} {
		if got := c.pollTarget(tc.capacity, tc.waiting); got != tc.want {
			t.Errorf("pollTarget(%d, %v) = %d, want %d", tc.capacity, tc.waiting, got, tc.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	err := Config{Mode: "fast", MaxConcurrent: -1, PollInterval: -time.Second, ReactInterval: -1,
		InteractiveReserve: -2, Floor: -5, PeakWindow: -time.Second}.Validate()
	if err == nil {
		t.Fatal("Validate accepted a bad config")
	}
	for _, want := range []string{"mode", "max_concurrent", "poll_interval", "react_interval", "interactive_reserve", "floor", "peak_window"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate error does not mention %s: %v", want, err)
		}
	}
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("zero Config rejected: %v", err)
	}
	d := Config{PollInterval: 50 * time.Millisecond}.withDefaults()
	if d.ReactInterval != 50*time.Millisecond || d.MaxConcurrent != 50 || d.Mode != ModeAdaptive {
		t.Errorf("defaults = %+v", d)
	}
}

func TestPeakWindow(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	p := newPeak(time.Second) // ten 100ms buckets
	steps := []struct {
		ms   int
		n    int64
		want int64
	}{
		{0, 5, 5},
		{500, 1, 5},  // 5 is 0.5s old: kept
		{950, 0, 5},  // still inside the window
		{1050, 1, 1}, // the bucket holding 5 left the window
		{1500, 0, 1}, // the 1 of t=500ms is 1s old, the 1 of t=1050ms is not
		{9000, 2, 2}, // idle far longer than the window: only now counts
		{9050, 0, 2},
	}
	for _, s := range steps {
		if got := p.observe(at(s.ms), s.n); got != s.want {
			t.Errorf("observe(t=%dms, %d) = %d, want %d", s.ms, s.n, got, s.want)
		}
	}
	none := newPeak(0)
	if got := none.observe(t0, 3); got != 3 {
		t.Errorf("no window: peak %d, want the current 3", got)
	}
}
