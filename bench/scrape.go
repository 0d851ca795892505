package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// vLLM metric names (with the _total a counter is exposed as). V1 is current; the gpu_
// names are V0's and early V1's. Values are summed over every series (engine, model_name).
var (
	queriesNames = []string{"vllm:prefix_cache_queries_total", "vllm:gpu_prefix_cache_queries_total"}
	hitsNames    = []string{"vllm:prefix_cache_hits_total", "vllm:gpu_prefix_cache_hits_total"}
	waitingName  = "vllm:num_requests_waiting"
)

// MetricsSnapshot is what one scrape of every Scrape URL adds up to.
type MetricsSnapshot struct {
	// Queries and Hits are the prefix cache counters (tokens in V1), summed.
	Queries, Hits float64
	// HasCounters is false when no page exposed a prefix cache counter.
	HasCounters bool
	// Waiting is vllm:num_requests_waiting, summed.
	Waiting float64
}

// EngineStats is the engine-side view of a target's slices, from /metrics deltas.
type EngineStats struct {
	// PrefixCacheQueries and PrefixCacheHits are counter deltas over the slices.
	PrefixCacheQueries float64 `json:"prefix_cache_queries"`
	PrefixCacheHits    float64 `json:"prefix_cache_hits"`
	// PrefixHitRate is PrefixCacheHits / PrefixCacheQueries (0 with no queries).
	PrefixHitRate float64 `json:"prefix_hit_rate"`
	// PeakWaiting is the largest summed waiting count seen while polling.
	PeakWaiting float64 `json:"peak_waiting"`
	// Scrapes and ScrapeErrors count page fetches.
	Scrapes      int `json:"scrapes"`
	ScrapeErrors int `json:"scrape_errors"`
}

func (e *EngineStats) add(o EngineStats) {
	e.PrefixCacheQueries += o.PrefixCacheQueries
	e.PrefixCacheHits += o.PrefixCacheHits
	if e.PrefixCacheQueries > 0 {
		e.PrefixHitRate = e.PrefixCacheHits / e.PrefixCacheQueries
	}
	e.PeakWaiting = max(e.PeakWaiting, o.PeakWaiting)
	e.Scrapes += o.Scrapes
	e.ScrapeErrors += o.ScrapeErrors
}

// Delta is the EngineStats between two snapshots; counters that went backwards (a
// restarted engine) count as zero.
func Delta(before, after MetricsSnapshot) EngineStats {
	e := EngineStats{
		PrefixCacheQueries: max(after.Queries-before.Queries, 0),
		PrefixCacheHits:    max(after.Hits-before.Hits, 0),
		PeakWaiting:        max(before.Waiting, after.Waiting),
	}
	if e.PrefixCacheQueries > 0 {
		e.PrefixHitRate = e.PrefixCacheHits / e.PrefixCacheQueries
	}
	return e
}

// ParseMetrics reads one Prometheus text exposition and returns its vLLM figures.
func ParseMetrics(r io.Reader) (MetricsSnapshot, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return MetricsSnapshot{}, fmt.Errorf("parsing metrics: %w", err)
	}
	var s MetricsSnapshot
	sum := func(names []string) (float64, bool) {
		for _, n := range names {
			if f, ok := fams[n]; ok {
				return sumFamily(f), true
			}
		}
		return 0, false
	}
	q, okQ := sum(queriesNames)
	h, okH := sum(hitsNames)
	s.Queries, s.Hits, s.HasCounters = q, h, okQ && okH
	s.Waiting, _ = sum([]string{waitingName})
	return s, nil
}

func sumFamily(f *dto.MetricFamily) float64 {
	total := 0.0
	for _, m := range f.GetMetric() {
		switch {
		case m.GetCounter() != nil:
			total += m.GetCounter().GetValue()
		case m.GetGauge() != nil:
			total += m.GetGauge().GetValue()
		case m.GetUntyped() != nil:
			total += m.GetUntyped().GetValue()
		}
	}
	return total
}

// scraper fetches and sums every Scrape URL. Safe for concurrent use.
type scraper struct {
	urls     []string
	interval time.Duration
	client   *http.Client
}

func newScraper(urls []string, interval time.Duration, tr http.RoundTripper) *scraper {
	return &scraper{urls: urls, interval: interval, client: &http.Client{Transport: tr, Timeout: 5 * time.Second}}
}

// pageSnap is one URL's snapshot; ok is false when the fetch failed.
type pageSnap struct {
	MetricsSnapshot
	ok bool
}

// snapshot scrapes every URL once; errs counts pages that failed.
func (s *scraper) snapshot(ctx context.Context) (pages []pageSnap, errs int) {
	pages = make([]pageSnap, len(s.urls))
	for i, u := range s.urls {
		one, err := s.fetch(ctx, u)
		if err != nil {
			errs++
			continue
		}
		pages[i] = pageSnap{one, true}
	}
	return pages, errs
}

// sumWaiting adds up the waiting counts of the pages that were fetched.
func sumWaiting(pages []pageSnap) float64 {
	w := 0.0
	for _, p := range pages {
		w += p.Waiting
	}
	return w
}

// deltaPages is Delta summed over the URLs fetched both before and after.
func deltaPages(before, after []pageSnap) EngineStats {
	var b, a MetricsSnapshot
	for i := range before {
		if before[i].ok && after[i].ok {
			b.Queries += before[i].Queries
			b.Hits += before[i].Hits
			a.Queries += after[i].Queries
			a.Hits += after[i].Hits
		}
	}
	b.Waiting, a.Waiting = sumWaiting(before), sumWaiting(after)
	return Delta(b, a)
}

func (s *scraper) fetch(ctx context.Context, u string) (MetricsSnapshot, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return MetricsSnapshot{}, fmt.Errorf("building scrape request for %s: %w", u, err)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return MetricsSnapshot{}, fmt.Errorf("scraping %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return MetricsSnapshot{}, fmt.Errorf("scraping %s: status %d", u, resp.StatusCode)
	}
	snap, err := ParseMetrics(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return MetricsSnapshot{}, fmt.Errorf("scraping %s: %w", u, err)
	}
	return snap, nil
}

// watch takes a snapshot now, then polls every interval for the peak waiting count until
// the returned function is called; that function takes a final snapshot, stops the
// poller, waits for it and returns the stats of the interval.
func (s *scraper) watch(ctx context.Context) func() EngineStats {
	before, errs := s.snapshot(ctx)
	st := EngineStats{Scrapes: len(s.urls), ScrapeErrors: errs, PeakWaiting: sumWaiting(before)}
	// st is written only by the poller until wg.Wait returns.
	pctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(s.interval)
		defer tick.Stop()
		for {
			select {
			case <-pctx.Done():
				return
			case <-tick.C:
			}
			pages, errs := s.snapshot(pctx)
			if pctx.Err() != nil {
				return // stopped mid-scrape: the failures are ours, not the server's
			}
			st.Scrapes += len(s.urls)
			st.ScrapeErrors += errs
			st.PeakWaiting = max(st.PeakWaiting, sumWaiting(pages))
		}
	})
	return func() EngineStats {
		cancel()
		wg.Wait()
		after, errs := s.snapshot(ctx)
		d := deltaPages(before, after)
		d.PeakWaiting = max(d.PeakWaiting, st.PeakWaiting)
		d.Scrapes = st.Scrapes + len(s.urls)
		d.ScrapeErrors = st.ScrapeErrors + errs
		return d
	}
}
