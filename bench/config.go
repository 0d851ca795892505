package bench

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Config is one load-generator run. Zero fields take the defaults shown.
type Config struct {
	// Targets are OpenAI-compatible base URLs such as http://127.0.0.1:8000/v1; a URL with
	// an empty path gets /v1. With several, the same workload runs against each in
	// interleaved rounds and the report gives ratios against the first. Required.
	Targets []string
	// Endpoint is EndpointChat (default) or EndpointCompletions.
	Endpoint string
	// Model is the "model" of every request. Required.
	Model string
	// APIKey, when set, is sent as "Authorization: Bearer <APIKey>".
	APIKey string
	// Rate > 0 makes the run open loop: Poisson arrivals at Rate requests/s.
	Rate float64
	// Concurrency is the number of closed-loop workers when Rate is 0 (default 1). In open
	// loop (Rate > 0, or the bursty workload, which fixes its own arrivals) a non-zero
	// Concurrency caps requests in flight (arrivals wait for a slot); 0 means no cap.
	Concurrency int
	// Duration bounds each target's total sending time. At least one of Duration and
	// Requests must be set; whichever is reached first ends the run.
	Duration time.Duration
	// Requests bounds the number of requests sent to each target.
	Requests int
	// NoStream sends stream=false; TTFT then equals E2E and there is no ITL.
	NoStream bool
	// IgnoreEOS sets vLLM's ignore_eos so every output runs to max_tokens.
	IgnoreEOS bool
	// Workload supplies the requests. When nil, NewWorkload(WorkloadName, Params, Seed).
	Workload Workload
	// WorkloadName names the workload when Workload is nil (default "fixed").
	WorkloadName string
	// Params shape the named workload.
	Params Params
	// Seed seeds the workload and the arrival process (default 1).
	Seed uint64
	// Rounds splits each target's share into this many slices, run round-robin across
	// targets so that machine noise hits all alike (default 1 with one target, 4 with more).
	Rounds int
	// Timeout bounds one request (default 5m).
	Timeout time.Duration
	// Scrape lists vLLM /metrics URLs; their counters are summed and attributed to the
	// target whose slice was running.
	Scrape []string
	// ScrapeInterval is how often Scrape URLs are polled for the peak waiting count
	// (default 250ms).
	ScrapeInterval time.Duration
	// CountHeader, when set, counts responses by the value of this response header.
	CountHeader string
	// MaxIdleConnsPerHost sizes the shared transport's idle pool (default
	// max(Concurrency, MaxConns, 1024)).
	MaxIdleConnsPerHost int
	// MaxConns caps connections per target (0: unlimited). In open loop at high rates a
	// cap stops dial storms: without one, every arrival that finds no idle connection
	// dials a new one, and a momentary slowdown snowballs. Requests waiting for a
	// connection count that wait in their latency.
	MaxConns int
}

func (c *Config) applyDefaults() {
	if c.Endpoint == "" {
		c.Endpoint = EndpointChat
	}
	if c.Concurrency == 0 && c.Rate == 0 && c.WorkloadName != WorkloadBursty {
		c.Concurrency = 1 // closed loop; bursty fixes its own arrivals, uncapped unless set
	}
	if c.WorkloadName == "" {
		c.WorkloadName = WorkloadFixed
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Rounds == 0 {
		c.Rounds = 1
		if len(c.Targets) > 1 {
			c.Rounds = 4
		}
	}
	if c.Timeout == 0 {
		c.Timeout = 5 * time.Minute
	}
	if c.ScrapeInterval == 0 {
		c.ScrapeInterval = 250 * time.Millisecond
	}
	if c.MaxIdleConnsPerHost == 0 {
		c.MaxIdleConnsPerHost = max(c.Concurrency, c.MaxConns, 1024)
	}
}

// Validate reports every problem with c as Run would see it, after defaults.
func (c Config) Validate() error {
	c.applyDefaults()
	var errs []error
	if len(c.Targets) == 0 {
		errs = append(errs, errors.New("at least one target is required"))
	}
	for _, t := range c.Targets {
		if _, err := baseURL(t); err != nil {
			errs = append(errs, err)
		}
	}
	if !slices.Contains([]string{EndpointChat, EndpointCompletions}, c.Endpoint) {
		errs = append(errs, fmt.Errorf("endpoint %q must be %q or %q", c.Endpoint, EndpointChat, EndpointCompletions))
	}
	if c.Model == "" {
		errs = append(errs, errors.New("model is required"))
	}
	if c.Rate < 0 {
		errs = append(errs, fmt.Errorf("rate must be >= 0, got %g", c.Rate))
	}
	if c.Concurrency < 0 {
		errs = append(errs, fmt.Errorf("concurrency must be >= 0, got %d", c.Concurrency))
	}
	if c.Duration <= 0 && c.Requests <= 0 {
		errs = append(errs, errors.New("one of duration or requests must be > 0"))
	}
	if c.Duration < 0 || c.Requests < 0 {
		errs = append(errs, errors.New("duration and requests must not be negative"))
	}
	if c.Rounds < 1 {
		errs = append(errs, fmt.Errorf("rounds must be >= 1, got %d", c.Rounds))
	}
	if c.Requests > 0 && c.Rounds > c.Requests {
		errs = append(errs, fmt.Errorf("rounds %d exceed requests %d", c.Rounds, c.Requests))
	}
	if c.MaxConns < 0 {
		errs = append(errs, fmt.Errorf("max conns must be >= 0, got %d", c.MaxConns))
	}
	if c.Timeout < 0 || c.ScrapeInterval < 0 {
		errs = append(errs, errors.New("timeout and scrape interval must not be negative"))
	}
	for _, s := range c.Scrape {
		if u, err := url.Parse(s); err != nil || u.Host == "" {
			errs = append(errs, fmt.Errorf("scrape url %q is not an absolute url", s))
		}
	}
	if c.Workload == nil {
		if !slices.Contains(WorkloadNames, c.WorkloadName) {
			errs = append(errs, fmt.Errorf("%w %q (want one of %s)", ErrUnknownWorkload, c.WorkloadName, strings.Join(WorkloadNames, ", ")))
		}
		p := c.Params
		p.applyDefaults()
		if err := p.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// baseURL normalises a target base URL: trailing slashes go, and an empty path gets /v1.
func baseURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("target %q is not an http(s) url", s)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	if u.Path == "" {
		u.Path = "/v1"
	}
	return u.String(), nil
}

// endpointURL is the full URL requests of c are posted to on base.
func (c *Config) endpointURL(base string) string {
	if c.Endpoint == EndpointCompletions {
		return base + "/completions"
	}
	return base + "/chat/completions"
}
