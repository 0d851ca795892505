package ui

import (
	"testing"
	"time"
)

func TestSeriesAddAndLast(t *testing.T) {
	s := NewSeries(15*time.Minute, 4)
	t0 := time.Unix(1_800_000_000, 0) // 1_800_000_000 is a multiple of 900
	s.Add(t0, Counts{Requests: 2})
	s.Add(t0.Add(14*time.Minute), Counts{Requests: 3, Uploads: 1})
	s.Add(t0.Add(15*time.Minute), Counts{BatchRequests: 5})
	got := s.Last(t0.Add(31*time.Minute), 4)
	want := []Bucket{
		{Start: t0.Unix() - 900},
		{Start: t0.Unix(), Counts: Counts{Requests: 5, Uploads: 1}},
		{Start: t0.Unix() + 900, Counts: Counts{BatchRequests: 5}},
		{Start: t0.Unix() + 1800},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d buckets, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("bucket %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if n := len(s.Last(t0, 99)); n != 4 {
		t.Errorf("Last(99) gave %d buckets, want the series length 4", n)
	}
	if n := len(s.Last(t0, 0)); n != 1 {
		t.Errorf("Last(0) gave %d buckets, want 1", n)
	}
}

func TestSeriesRingForgetsOldBuckets(t *testing.T) {
	s := NewSeries(time.Minute, 3)
	t0 := time.Unix(6000, 0)
	s.Add(t0, Counts{Requests: 1})
	s.Add(t0.Add(3*time.Minute), Counts{Requests: 7}) // same slot, a window later
	s.Add(t0, Counts{Requests: 100})                  // now older than the window: dropped
	got := s.Last(t0.Add(3*time.Minute), 3)
	if got[2].Requests != 7 || got[0].Requests != 0 || got[1].Requests != 0 {
		t.Fatalf("buckets %+v", got)
	}
	// Reading far in the future shows nothing stale.
	for _, b := range s.Last(t0.Add(time.Hour), 3) {
		if b.Counts != (Counts{}) {
			t.Fatalf("stale bucket %+v", b)
		}
	}
}

func TestSeriesBeforeEpochAligns(t *testing.T) {
	s := NewSeries(time.Minute, 2)
	s.Add(time.Unix(-30, 0), Counts{Errors: 1})
	got := s.Last(time.Unix(-1, 0), 1)
	if got[0].Start != -60 || got[0].Errors != 1 {
		t.Fatalf("bucket %+v, want start -60 with 1 error", got[0])
	}
}

func TestSummarize(t *testing.T) {
	s := NewSeries(time.Minute, 3)
	t0 := time.Unix(60_000, 0)
	s.Add(t0, Counts{Requests: 4, UploadBytes: 10})
	s.Add(t0.Add(time.Minute), Counts{Requests: 1, UploadBytes: 30, LinesFailed: 2})
	s.Add(t0.Add(2*time.Minute), Counts{Requests: 2})
	sum := s.Summarize(t0.Add(2 * time.Minute))
	if want := (Counts{Requests: 7, UploadBytes: 40, LinesFailed: 2}); sum.Total != want {
		t.Errorf("total %+v, want %+v", sum.Total, want)
	}
	if want := (Counts{Requests: 4, UploadBytes: 30, LinesFailed: 2}); sum.Peak != want {
		t.Errorf("peak %+v, want %+v", sum.Peak, want)
	}
	// One minute later the first bucket has left the window.
	if got := s.Summarize(t0.Add(3 * time.Minute)).Total.Requests; got != 3 {
		t.Errorf("total after the window moved = %d, want 3", got)
	}
}
