package bench

import (
	"maps"
	"slices"
	"time"
)

// Report is the result of a Run.
type Report struct {
	Workload    string  `json:"workload"`
	Endpoint    string  `json:"endpoint"`
	Model       string  `json:"model"`
	Mode        string  `json:"mode"` // "open", "closed" or "scheduled"
	Rate        float64 `json:"rate,omitempty"`
	Concurrency int     `json:"concurrency,omitempty"`
	Stream      bool    `json:"stream"`
	Seed        uint64  `json:"seed"`
	Rounds      int     `json:"rounds"`
	// Elapsed is the wall time of the whole run, in seconds.
	Elapsed float64 `json:"elapsed_s"`
	// Targets holds one entry per Config.Targets, in order.
	Targets []TargetReport `json:"targets"`
	// Ratios compares every target with the first (Ratios[0] is all ones).
	Ratios []Ratio `json:"ratios,omitempty"`
	// Samples holds every request, in completion order per target; not in the JSON (see
	// WriteCSV).
	Samples []Sample `json:"-"`
}

// TargetReport is the client-side (and, with scraping, engine-side) view of one target.
type TargetReport struct {
	URL string `json:"url"`
	// Requests is the number of requests completed (successful or not).
	Requests int `json:"requests"`
	// OK is the number of successful requests.
	OK int `json:"ok"`
	// Errors counts failed requests by HTTP status code or error kind.
	Errors map[string]int `json:"errors"`
	// ActiveSeconds is the wall time of this target's slices (sending and draining).
	ActiveSeconds float64 `json:"active_s"`
	// RequestsPerS is OK / ActiveSeconds.
	RequestsPerS float64 `json:"requests_per_s"`
	// InputTokensPerS and OutputTokensPerS count tokens of successful requests.
	InputTokensPerS  float64 `json:"input_tokens_per_s"`
	OutputTokensPerS float64 `json:"output_tokens_per_s"`
	// TTFT, ITL and E2E summarise successful requests (ITL: every inter-token gap).
	TTFT Latency `json:"ttft"`
	ITL  Latency `json:"itl"`
	E2E  Latency `json:"e2e"`
	// SendLag is how late requests were sent against their schedule (open loop only).
	SendLag *Latency `json:"send_lag,omitempty"`
	// OracleHitFraction is the best prefix-cache hit fraction possible on the requests sent.
	OracleHitFraction float64 `json:"oracle_hit_fraction"`
	// Engine is present when Config.Scrape was set.
	Engine *EngineStats `json:"engine,omitempty"`
	// ByHeader counts responses by the value of Config.CountHeader.
	ByHeader map[string]int `json:"by_header,omitempty"`
}

// Ratio is a target's figures divided by the first target's (0 when the first's is 0).
type Ratio struct {
	URL          string  `json:"url"`
	RequestsPerS float64 `json:"requests_per_s"`
	OutputTokPS  float64 `json:"output_tokens_per_s"`
	TTFTP50      float64 `json:"ttft_p50"`
	TTFTP99      float64 `json:"ttft_p99"`
	ITLP50       float64 `json:"itl_p50"`
	ITLP99       float64 `json:"itl_p99"`
	E2EP50       float64 `json:"e2e_p50"`
	E2EP99       float64 `json:"e2e_p99"`
}

// Ratios compares every target report with the first.
func Ratios(ts []TargetReport) []Ratio {
	if len(ts) == 0 {
		return nil
	}
	b := ts[0]
	div := func(a, b float64) float64 {
		if b == 0 {
			return 0
		}
		return a / b
	}
	out := make([]Ratio, len(ts))
	for i, t := range ts {
		out[i] = Ratio{
			URL:          t.URL,
			RequestsPerS: div(t.RequestsPerS, b.RequestsPerS),
			OutputTokPS:  div(t.OutputTokensPerS, b.OutputTokensPerS),
			TTFTP50:      div(t.TTFT.P50, b.TTFT.P50),
			TTFTP99:      div(t.TTFT.P99, b.TTFT.P99),
			ITLP50:       div(t.ITL.P50, b.ITL.P50),
			ITLP99:       div(t.ITL.P99, b.ITL.P99),
			E2EP50:       div(t.E2E.P50, b.E2E.P50),
			E2EP99:       div(t.E2E.P99, b.E2E.P99),
		}
	}
	return out
}

// summarizeTarget builds a TargetReport from samples of one target.
func summarizeTarget(url string, samples []Sample, itl *Histogram, active time.Duration, open bool) TargetReport {
	tr := TargetReport{URL: url, Requests: len(samples), Errors: map[string]int{}, ActiveSeconds: active.Seconds()}
	var ttft, e2e, lag []float64
	var in, out int
	for i := range samples {
		s := &samples[i]
		if s.Header != "" {
			if tr.ByHeader == nil {
				tr.ByHeader = map[string]int{}
			}
			tr.ByHeader[s.Header]++
		}
		lag = append(lag, s.Lag.Seconds())
		if !s.OK() {
			tr.Errors[s.ErrorKey()]++
			continue
		}
		tr.OK++
		ttft = append(ttft, s.TTFT.Seconds())
		e2e = append(e2e, s.E2E.Seconds())
		in += s.PromptTokens
		out += s.OutputTokens
	}
	tr.TTFT, tr.E2E = SummarizeSeconds(ttft), SummarizeSeconds(e2e)
	if open {
		l := SummarizeSeconds(lag)
		tr.SendLag = &l
	}
	if itl != nil {
		tr.ITL = itl.Summary()
	}
	if sec := active.Seconds(); sec > 0 {
		tr.RequestsPerS = float64(tr.OK) / sec
		tr.InputTokensPerS = float64(in) / sec
		tr.OutputTokensPerS = float64(out) / sec
	}
	return tr
}

// report assembles the Report; next[i] is the number of requests target i was sent.
func (r *runner) report(next []int) *Report {
	c := r.cfg
	rep := &Report{
		Workload: r.workload.Name(), Endpoint: c.Endpoint, Model: c.Model, Rate: c.Rate,
		Concurrency: c.Concurrency, Stream: !c.NoStream, Seed: c.Seed, Rounds: c.Rounds,
		Elapsed: time.Since(r.start).Seconds(),
	}
	switch _, sched := r.workload.(Scheduled); {
	case sched:
		rep.Mode = "scheduled"
	case c.Rate > 0:
		rep.Mode = "open"
	default:
		rep.Mode = "closed"
	}
	oracle := map[int]float64{}
	for i, t := range r.targets {
		t.mu.Lock()
		tr := summarizeTarget(t.base, t.coll.samples, t.coll.itl, t.active, rep.Mode != "closed")
		rep.Samples = append(rep.Samples, t.coll.samples...)
		t.mu.Unlock()
		if _, ok := oracle[next[i]]; !ok {
			oracle[next[i]] = OracleHitFraction(r.workload, next[i])
		}
		tr.OracleHitFraction = oracle[next[i]]
		if r.scrape != nil {
			e := t.engine
			tr.Engine = &e
		}
		rep.Targets = append(rep.Targets, tr)
	}
	if len(rep.Targets) > 1 {
		rep.Ratios = Ratios(rep.Targets)
	}
	return rep
}

// sortedKeys returns m's keys in order, for stable output.
func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
