package proxy

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

// TestBackoff: the wait doubles per retry, is capped, is jittered to between half and all
// of its nominal value, and ends early when the request's context ends.
func TestBackoff(t *testing.T) {
	h := &Handler{cfg: Config{RetryBackoff: 20 * time.Millisecond, RetryBackoffMax: 50 * time.Millisecond}}
	for _, tc := range []struct {
		n        int
		min, max time.Duration
	}{{1, 10 * time.Millisecond, 20 * time.Millisecond}, {2, 20 * time.Millisecond, 40 * time.Millisecond},
		{3, 25 * time.Millisecond, 50 * time.Millisecond}, {40, 25 * time.Millisecond, 50 * time.Millisecond}} {
		synctest.Test(t, func(t *testing.T) {
			for range 20 {
				start := time.Now()
				if !h.backoff(t.Context(), tc.n) {
					t.Fatal("backoff gave up with a live context")
				}
				if d := time.Since(start); d < tc.min || d > tc.max {
					t.Fatalf("retry %d waited %s, want within [%s, %s]", tc.n, d, tc.min, tc.max)
				}
			}
		})
	}
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(5*time.Millisecond, cancel)
		start := time.Now()
		if h.backoff(ctx, 3) {
			t.Fatal("backoff did not report the cancelled context")
		}
		if d := time.Since(start); d != 5*time.Millisecond {
			t.Fatalf("backoff returned %s after the start, want at the cancellation (5ms)", d)
		}
	})
}
