package sim

import (
	"context"
	"time"
)

// clock maps real time to simulated seconds: the simulated clock runs scale times faster.
type clock struct {
	start time.Time
	scale float64
}

func newClock(scale float64) *clock { return &clock{start: time.Now(), scale: scale} }

// now is the simulated time in seconds since the server started.
func (c *clock) now() float64 { return time.Since(c.start).Seconds() * c.scale }

// realAt is the real instant at which the simulated clock reads t.
func (c *clock) realAt(t float64) time.Time {
	return c.start.Add(time.Duration(t / c.scale * float64(time.Second)))
}

// run is the timed engine loop: plan a step, sleep until its simulated duration has
// passed on the clock, apply it. Each step starts at the current clock reading, so timer
// slack on a loaded machine shows up as (scaled) latency, as a slow GPU would. It returns
// when ctx is cancelled.
func (e *engine) run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		e.mu.Lock()
		start := e.clock.now()
		e.vnow = start
		d := e.schedule()
		if len(e.plan) == 0 {
			e.mu.Unlock()
			select {
			case <-e.wake:
				continue
			case <-ctx.Done():
				return
			}
		}
		e.mu.Unlock()

		end := start + d
		if wait := time.Until(e.clock.realAt(end)); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-ctx.Done():
				return
			}
		}

		e.mu.Lock()
		e.vnow = end
		e.apply(end)
		e.mu.Unlock()
	}
}
