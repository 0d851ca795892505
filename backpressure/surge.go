package backpressure

import (
	"math"
	"time"
)

// Surge detection: a CUSUM test of the interactive arrival rate on a group of backends
// (those serving the same models) against the rate it would have if it doubled.
const (
	// surgeFactor is the rise the test looks for: the rate doubling.
	surgeFactor = 2.0
	// surgeThreshold is the CUSUM score (a log-likelihood ratio) that starts a surge.
	// Simulated on Poisson arrivals at 9.6 requests/s (the benchmark's 60% load), a 3×
	// rise is detected after ~390 ms at the median and steady traffic raises ~2.6 false
	// alarms a minute; a higher threshold trades faster detection for fewer alarms.
	surgeThreshold = 4.0
	// surgeMinRate (requests/s) is the lowest baseline the test assumes, so a handful of
	// requests after an idle spell is not a surge.
	surgeMinRate = 1.0
)

// surge watches the interactive arrivals on one group of backends for a sudden rise: a
// burst that will fill the backends before lazy eviction, which frees a batch slot only
// when an interactive request needs it, has made room. The baseline is an exponentially
// weighted arrival rate over horizon; each arrival adds ln(surgeFactor) to a CUSUM score
// and elapsed time takes (surgeFactor−1)·baseline away, so the score climbs only while
// arrivals come faster than about 1.44× the baseline. A surge starts when the score
// reaches surgeThreshold and ends when it falls below half of it (the score is capped
// at twice the threshold so a long burst ends promptly). No surge is reported before
// horizon has passed since the first arrival: the baseline is not known yet. A burst that
// lasts becomes the baseline within about a horizon. Not safe for concurrent use
// (Controller.mu guards it).
type surge struct {
	horizon time.Duration
	rate    float64   // baseline arrivals/s
	score   float64   // CUSUM statistic
	last    time.Time // when rate and score were last brought up to date
	first   time.Time // first arrival
	on      bool
}

// advance brings rate and score up to now.
func (s *surge) advance(now time.Time) {
	if s.last.IsZero() {
		s.last = now
		return
	}
	dt := now.Sub(s.last).Seconds()
	if dt <= 0 {
		return
	}
	s.score = max(0, s.score-(surgeFactor-1)*s.baseline(now)*dt)
	s.rate *= math.Exp(-dt / s.horizon.Seconds())
	s.last = now
	s.settle(now)
}

// baseline is the arrival rate the test measures against: the weighted rate, corrected
// for the history it has not seen yet in the first horizons (it starts from 0), and
// never below surgeMinRate.
func (s *surge) baseline(now time.Time) float64 {
	r := s.rate
	if !s.first.IsZero() {
		if seen := 1 - math.Exp(-now.Sub(s.first).Seconds()/s.horizon.Seconds()); seen > 0 {
			r /= seen
		}
	}
	return max(r, surgeMinRate)
}

// arrive records one interactive arrival at now and reports whether a surge started
// with it.
func (s *surge) arrive(now time.Time) (started bool) { return s.arriveN(now, 1) }

// arriveN records n interactive arrivals at now (another replica's, reported together)
// and reports whether a surge started with them.
func (s *surge) arriveN(now time.Time, n int) (started bool) {
	s.advance(now)
	if s.first.IsZero() {
		s.first = now
	}
	s.score = min(s.score+float64(n)*math.Log(surgeFactor), 2*surgeThreshold)
	s.rate += float64(n) / s.horizon.Seconds() // after the test: an arrival is not its own baseline
	was := s.on
	s.settle(now)
	return s.on && !was
}

// active reports whether a surge is on at now.
func (s *surge) active(now time.Time) bool {
	s.advance(now)
	return s.on
}

// settle turns the surge on or off from the score, with hysteresis.
func (s *surge) settle(now time.Time) {
	switch {
	case s.first.IsZero() || now.Sub(s.first) < s.horizon:
		s.on = false
	case s.score >= surgeThreshold:
		s.on = true
	case s.score < surgeThreshold/2:
		s.on = false
	}
}
