package bench

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("writing json report: %w", err)
	}
	return nil
}

// ms formats seconds as milliseconds.
func ms(s float64) string { return strconv.FormatFloat(s*1000, 'f', 1, 64) }

// Markdown renders the report as markdown tables: one row per target, then engine-side
// figures, ratios against the first target and header counts when present.
func (r *Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "workload %s, %s endpoint, model %s, %s loop", r.Workload, r.Endpoint, r.Model, r.Mode)
	if r.Rate > 0 {
		fmt.Fprintf(&b, ", rate %g/s", r.Rate)
	}
	if r.Concurrency > 0 {
		fmt.Fprintf(&b, ", concurrency %d", r.Concurrency)
	}
	fmt.Fprintf(&b, ", stream %t, seed %d, %d round(s), %.1f s\n\n", r.Stream, r.Seed, r.Rounds, r.Elapsed)

	b.WriteString("| target | requests | errors | req/s | in tok/s | out tok/s | TTFT p50 ms | TTFT p90 ms | TTFT p99 ms | ITL p50 ms | ITL p99 ms | E2E p50 ms | E2E p99 ms | oracle hit |\n")
	b.WriteString("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, t := range r.Targets {
		fmt.Fprintf(&b, "| %s | %d | %s | %.1f | %.0f | %.0f | %s | %s | %s | %s | %s | %s | %s | %.3f |\n",
			t.URL, t.Requests, errorsCell(t.Errors), t.RequestsPerS, t.InputTokensPerS, t.OutputTokensPerS,
			ms(t.TTFT.P50), ms(t.TTFT.P90), ms(t.TTFT.P99), ms(t.ITL.P50), ms(t.ITL.P99),
			ms(t.E2E.P50), ms(t.E2E.P99), t.OracleHitFraction)
	}
	for _, t := range r.Targets {
		if t.SendLag != nil {
			fmt.Fprintf(&b, "\nsend lag behind the arrival schedule, %s: p50 %s ms, p99 %s ms, max %s ms", t.URL, ms(t.SendLag.P50), ms(t.SendLag.P99), ms(t.SendLag.Max))
		}
	}
	if r.Mode != "closed" {
		b.WriteString("\n")
	}
	if len(r.Targets) > 0 && r.Targets[0].Engine != nil {
		b.WriteString("\n| target | engine prefix hit rate | prefix queries | prefix hits | peak waiting | scrapes (errors) |\n")
		b.WriteString("|---|---:|---:|---:|---:|---:|\n")
		for _, t := range r.Targets {
			e := t.Engine
			fmt.Fprintf(&b, "| %s | %.3f | %.0f | %.0f | %.0f | %d (%d) |\n", t.URL, e.PrefixHitRate,
				e.PrefixCacheQueries, e.PrefixCacheHits, e.PeakWaiting, e.Scrapes, e.ScrapeErrors)
		}
	}
	if len(r.Ratios) > 1 {
		b.WriteString("\n| target ÷ first | req/s | out tok/s | TTFT p50 | TTFT p99 | ITL p50 | ITL p99 | E2E p50 | E2E p99 |\n")
		b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, q := range r.Ratios {
			fmt.Fprintf(&b, "| %s | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f |\n", q.URL,
				q.RequestsPerS, q.OutputTokPS, q.TTFTP50, q.TTFTP99, q.ITLP50, q.ITLP99, q.E2EP50, q.E2EP99)
		}
	}
	for _, t := range r.Targets {
		if len(t.ByHeader) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\nresponses of %s by header value:", t.URL)
		for _, k := range sortedKeys(t.ByHeader) {
			fmt.Fprintf(&b, " %s=%d", k, t.ByHeader[k])
		}
		b.WriteString("\n")
	}
	return b.String()
}

func errorsCell(m map[string]int) string {
	if len(m) == 0 {
		return "0"
	}
	parts := make([]string, 0, len(m))
	for _, k := range sortedKeys(m) {
		parts = append(parts, k+":"+strconv.Itoa(m[k]))
	}
	return strings.Join(parts, " ")
}

// CSVHeader is the first row WriteCSV writes.
var CSVHeader = []string{"target", "url", "index", "start_s", "lag_s", "ttft_s", "e2e_s", "status", "error", "prompt_tokens", "output_tokens", "header"}

// WriteCSV writes one row per request (see CSVHeader), times in seconds since the start
// of the run, so other tools can draw their own charts.
func (r *Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(CSVHeader); err != nil {
		return fmt.Errorf("writing csv: %w", err)
	}
	sec := func(f float64) string { return strconv.FormatFloat(f, 'f', 6, 64) }
	for i := range r.Samples {
		s := &r.Samples[i]
		url := ""
		if s.Target < len(r.Targets) {
			url = r.Targets[s.Target].URL
		}
		row := []string{strconv.Itoa(s.Target), url, strconv.Itoa(s.Index), sec(s.Start.Seconds()), sec(s.Lag.Seconds()),
			sec(s.TTFT.Seconds()), sec(s.E2E.Seconds()), strconv.Itoa(s.Status), s.Err,
			strconv.Itoa(s.PromptTokens), strconv.Itoa(s.OutputTokens), s.Header}
		if err := cw.Write(row); err != nil {
			return fmt.Errorf("writing csv: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("writing csv: %w", err)
	}
	return nil
}
