package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Tick is one scrape of one backend, one JSON line of a watch file. Counters are
// cumulative since the simulator started.
type Tick struct {
	// T is seconds since the watch started; Unix is the wall clock (Unix seconds).
	T    float64 `json:"t"`
	Unix float64 `json:"unix"`
	// Group names the backend's group (the policy whose proxy uses it); B is its index
	// in the group; URL is its /metrics URL.
	Group string `json:"g"`
	B     int    `json:"b"`
	URL   string `json:"url"`
	// OK is false when the scrape failed (the other fields are then zero).
	OK bool `json:"ok"`
	// Queries and Hits are vllm:prefix_cache_queries_total / _hits_total (tokens).
	Queries float64 `json:"q"`
	Hits    float64 `json:"h"`
	// Requests is the number of finished requests (e2e latency histogram count).
	Requests float64 `json:"n"`
	// Waiting and Running are vllm:num_requests_waiting / _running.
	Waiting float64 `json:"w"`
	Running float64 `json:"r"`
}

// group is one named list of /metrics URLs.
type group struct {
	name string
	urls []string
}

// groupFlags collects -group name=url,url,... flags.
type groupFlags []group

func (g *groupFlags) String() string { return fmt.Sprint(len(*g)) }

func (g *groupFlags) Set(v string) error {
	name, list, ok := strings.Cut(v, "=")
	if !ok || name == "" || list == "" {
		return fmt.Errorf("group %q: want name=url,url", v)
	}
	*g = append(*g, group{name: name, urls: strings.Split(list, ",")})
	return nil
}

func runWatch(ctx context.Context, args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("watch", flag.ContinueOnError)
	interval := fs.Duration("interval", time.Second, "scrape interval")
	out := fs.String("out", "watch.jsonl", "output file (JSON lines)")
	var groups groupFlags
	fs.Var(&groups, "group", "name=url,url,... (repeatable): /metrics URLs of one policy's backends")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("parsing watch flags: %w", err)
	}
	if len(groups) == 0 {
		return fmt.Errorf("at least one -group is required")
	}
	f, err := os.Create(*out)
	if err != nil {
		return fmt.Errorf("creating watch file: %w", err)
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	client := &http.Client{Timeout: 2 * time.Second}
	start := time.Now()
	tick := time.NewTicker(*interval)
	defer tick.Stop()
	log.Info("watch started", "groups", len(groups), "interval", *interval)
	for {
		now := time.Now()
		ticks := scrapeAll(ctx, client, groups, now.Sub(start).Seconds(), float64(now.UnixNano())/1e9)
		for i := range ticks {
			if err := enc.Encode(&ticks[i]); err != nil {
				return fmt.Errorf("writing watch file: %w", err)
			}
		}
		if err := w.Flush(); err != nil {
			return fmt.Errorf("writing watch file: %w", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// scrapeAll fetches every URL of every group concurrently.
func scrapeAll(ctx context.Context, c *http.Client, groups []group, t, unix float64) []Tick {
	var ticks []Tick
	for _, g := range groups {
		for b, u := range g.urls {
			ticks = append(ticks, Tick{T: t, Unix: unix, Group: g.name, B: b, URL: u})
		}
	}
	var wg sync.WaitGroup
	for i := range ticks {
		wg.Go(func() {
			if err := scrapeOne(ctx, c, &ticks[i]); err == nil {
				ticks[i].OK = true
			}
		})
	}
	wg.Wait()
	return ticks
}

func scrapeOne(ctx context.Context, c *http.Client, t *Tick) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.URL, nil)
	if err != nil {
		return fmt.Errorf("building scrape request: %w", err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("scraping %s: %w", t.URL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return fmt.Errorf("scraping %s: status %d", t.URL, resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return fmt.Errorf("parsing %s: %w", t.URL, err)
	}
	t.Queries = sum(fams["vllm:prefix_cache_queries_total"])
	t.Hits = sum(fams["vllm:prefix_cache_hits_total"])
	t.Waiting = sum(fams["vllm:num_requests_waiting"])
	t.Running = sum(fams["vllm:num_requests_running"])
	t.Requests = sum(fams["vllm:e2e_request_latency_seconds"])
	return nil
}

// sum adds up every series of a family: counter, gauge or untyped values, and the sample
// count of histograms.
func sum(f *dto.MetricFamily) float64 {
	total := 0.0
	for _, m := range f.GetMetric() {
		switch {
		case m.GetCounter() != nil:
			total += m.GetCounter().GetValue()
		case m.GetGauge() != nil:
			total += m.GetGauge().GetValue()
		case m.GetHistogram() != nil:
			total += float64(m.GetHistogram().GetSampleCount())
		case m.GetUntyped() != nil:
			total += m.GetUntyped().GetValue()
		}
	}
	return total
}
