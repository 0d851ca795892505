package backpressure

import (
	"errors"
	"fmt"
	"time"
)

// Controller modes accepted in Config.Mode.
const (
	// ModeAdaptive is the default: the seed's table fed by the scraped waiting count and
	// by the proxy's own live per-backend counts, under the interactive reserve.
	ModeAdaptive = "adaptive"
	// ModePoll is the seed's controller alone: the table on num_requests_waiting as
	// read every PollInterval, and nothing else (kept to compare against).
	ModePoll = "poll"
	// ModeOff grants every batch slot: no backpressure
	// (VLLM_PXY_BACKPRESSURE_ENABLED=false).
	ModeOff = "off"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultMaxConcurrent      = 50
	DefaultPollInterval       = 2 * time.Second
	DefaultReactInterval      = 100 * time.Millisecond
	DefaultInteractiveReserve = 2
	DefaultFloor              = 1
	DefaultAdmitGap           = 100 * time.Millisecond
	DefaultSurgeHorizon       = 10 * time.Second
	DefaultPrefillHold        = 500 * time.Millisecond
)

// ErrInvalidConfig is wrapped by the error [Config.Validate] returns.
var ErrInvalidConfig = errors.New("invalid backpressure config")

// Config configures the [Controller]. The zero value is usable: New applies the defaults
// named on each field.
type Config struct {
	// Mode is ModeAdaptive (default), ModePoll or ModeOff.
	Mode string
	// MaxConcurrent is a backend's full batch concurrency: its target when nothing waits
	// (VLLM_PXY_BATCH_MAX_CONCURRENT_REQUESTS). It is further capped by the backend's
	// capacity minus InteractiveReserve. Default 50.
	MaxConcurrent int
	// PollInterval is how often the scraped num_requests_waiting feeds the table in
	// ModePoll, and how often every target is republished to the shared budget so it
	// stays alive (VLLM_PXY_BACKPRESSURE_POLL_INTERVAL). Default 2s.
	PollInterval time.Duration
	// ReactInterval is how often ModeAdaptive re-reads the live counts to raise targets
	// after interactive traffic left and to wake batch requests waiting for a slot that
	// another replica freed. Lowering a target needs no tick: it happens at the next
	// slot request. Default 100ms.
	ReactInterval time.Duration
	// InteractiveReserve is how many of a backend's slots (routing's Capacity) batch
	// never takes: batch holds at most capacity − reserve − interactive in flight.
	// Default 2; -1 means none (batch may fill a backend).
	InteractiveReserve int
	// Floor is the lowest target the table and the reserve can cut a backend to, so a
	// batch always progresses (the seed's table ends at 1). In ModeAdaptive it yields (the
	// target is 0, and with Evict the batch requests still running there are stopped) while
	// the interactive requests in flight on the backend alone fill its capacity: batch then
	// progresses whenever interactive traffic leaves a slot. Default 1; -1 means 0.
	Floor int
	// PeakWindow, when set, makes ModeAdaptive remember a backend's peak of interactive
	// requests in flight for this long and admit batch only into the room interactive
	// traffic left at that peak (a batch request admitted now holds its slot for its whole
	// duration); the target then rises again only this long after interactive traffic
	// fell. Default 0: off, the current count alone. (In docs/BENCHMARKS.md a 10s window
	// cost half the batch goodput without a measurable TTFT gain.)
	PeakWindow time.Duration
	// Evict makes ModeAdaptive stop running batch requests when a backend's slots are
	// over-full (interactive plus batch in flight beyond its capacity, so an interactive
	// request would wait) and batch holds more than its target: vLLM cannot preempt them
	// for a waiting interactive request, so the newest ones (least work lost) are
	// cancelled, as many as the interactive requests need, and their lines retried: at
	// once when this replica routes the interactive request (InteractivePicked), else at
	// the next ReactInterval tick. An interactive request then waits for a slot one
	// aborted batch request instead of one batch request's duration, at the price of the
	// evicted requests' work. The reserve is not kept free by eviction: it only limits
	// admission. The zero value is false; cmd's default (batch.backpressure_evict) is true.
	Evict bool
	// AdmitGap is the least time between two batch admissions on one backend by this
	// replica (ModeAdaptive), so that batch prefills do not pile into one engine step
	// that every running interactive request waits for. That holds with no interactive
	// request in flight too: batch requests admitted together finish together and are
	// replaced together, so without the gap a batch started on an idle backend keeps
	// stacking its prefills, and each interactive request that arrives at such a moment
	// waits for all of them. Once batch requests have finished on the backend the gap is
	// at most their mean duration divided by the backend's batch target, the spacing at
	// which completions free slots when batch is at its target, so the gap does not cap
	// batch throughput; a batch reaches its target within about one request's duration.
	// A refused line tries another backend or waits for the next ReactInterval. Default
	// 100ms; negative means none.
	AdmitGap time.Duration
	// SurgeHorizon is how far back ModeAdaptive weighs the interactive arrival rate on a
	// group of backends (those serving the same models) to notice a surge: arrivals
	// suddenly coming about twice as fast (a CUSUM test, see surge). During a surge the
	// group's batch targets are the floor, and with Evict the batch requests beyond it
	// are stopped at once rather than one by one as interactive requests need their
	// slots, so a burst finds the backends free of batch. Steady Poisson traffic raises
	// a false alarm every 20–30 s at 10 requests/s, which costs the batch requests it
	// stops. A rise that lasts becomes the new baseline within about a horizon. Default
	// 10s; negative means no surge detection.
	SurgeHorizon time.Duration
	// PrefillHold is the longest one streamed interactive request, routed to a backend by
	// this replica, holds batch admissions there back while it waits for its first byte
	// (ModeAdaptive). A batch request sent meanwhile would be prefilled in the same engine
	// step as the interactive prompt, or in the step it waits for: its time to first token
	// grows by a batch prefill, and every sequence running there gets one gap of two
	// prefills. A refused line tries another backend or waits, and is woken when the last
	// pending prefill there ends. Default 500ms (a prefill longer than that no longer
	// holds); negative means no hold.
	PrefillHold time.Duration
}

func (c Config) withDefaults() Config {
	if c.Mode == "" {
		c.Mode = ModeAdaptive
	}
	if c.MaxConcurrent == 0 {
		c.MaxConcurrent = DefaultMaxConcurrent
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.ReactInterval == 0 {
		c.ReactInterval = min(DefaultReactInterval, c.PollInterval)
	}
	switch c.InteractiveReserve {
	case 0:
		c.InteractiveReserve = DefaultInteractiveReserve
	case -1:
		c.InteractiveReserve = 0
	}
	switch c.Floor {
	case 0:
		c.Floor = DefaultFloor
	case -1:
		c.Floor = 0
	}
	switch {
	case c.SurgeHorizon == 0:
		c.SurgeHorizon = DefaultSurgeHorizon
	case c.SurgeHorizon < 0:
		c.SurgeHorizon = 0
	}
	switch {
	case c.PrefillHold == 0:
		c.PrefillHold = DefaultPrefillHold
	case c.PrefillHold < 0:
		c.PrefillHold = 0
	}
	switch {
	case c.AdmitGap == 0:
		c.AdmitGap = DefaultAdmitGap
	case c.AdmitGap < 0:
		c.AdmitGap = 0
	}
	return c
}

// Validate reports every problem with c, joined, each wrapping ErrInvalidConfig.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
	}
	switch c.Mode {
	case "", ModeAdaptive, ModePoll, ModeOff:
	default:
		bad("mode %q is unknown (want %s, %s or %s)", c.Mode, ModeAdaptive, ModePoll, ModeOff)
	}
	if c.MaxConcurrent < 0 {
		bad("max_concurrent must not be negative, got %d", c.MaxConcurrent)
	}
	if c.PollInterval < 0 {
		bad("poll_interval must not be negative, got %s", c.PollInterval)
	}
	if c.ReactInterval < 0 {
		bad("react_interval must not be negative, got %s", c.ReactInterval)
	}
	if c.InteractiveReserve < -1 {
		bad("interactive_reserve must be -1 (none) or more, got %d", c.InteractiveReserve)
	}
	if c.PeakWindow < 0 {
		bad("peak_window must not be negative, got %s", c.PeakWindow)
	}
	if c.Floor < -1 {
		bad("floor must be -1 (zero) or more, got %d", c.Floor)
	}
	return errors.Join(errs...)
}
