package routing

// BackendStats is one backend's entry in the proxy's GET /load-stats.
type BackendStats struct {
	URL     string   `json:"url"`     // backend ID
	Healthy bool     `json:"healthy"` // in the healthy set (not ejected)
	Models  []string `json:"models"`  // served model ids, fetched then static
	// Running and Waiting are the latest scraped gauges, summed over engines.
	Running float64 `json:"running"`
	Waiting float64 `json:"waiting"`
	// InFlight counts in-flight requests over all replicas (as the LoadShare reports them,
	// never below this replica's own); InFlightByClass splits it by class.
	InFlight        int64           `json:"in_flight"`
	InFlightByClass map[Class]int64 `json:"in_flight_by_class"`
	// Capacity is the configured concurrent-request capacity.
	Capacity int `json:"capacity"`
	// Load is the score the least_load policy uses.
	Load float64 `json:"load"`
	// KVCacheUsage is the scraped KV cache usage (0..1), averaged over engines.
	KVCacheUsage float64 `json:"kv_cache_usage"`
	// PrefixCacheHitRate is Δhits/Δqueries of the engine's prefix cache counters between
	// the last two scrapes that saw traffic (V0: the hit-rate gauge).
	PrefixCacheHitRate float64 `json:"prefix_cache_hit_rate"`
	// PredictedPrefixCacheHitRate is what the policy predicted for the requests this
	// replica recently sent to the backend (cached prompt characters over prompt
	// characters, see CacheAware.PredictedHitRate), next to the engine-reported rate
	// above; null when the policy makes no prediction or has not picked the backend yet.
	PredictedPrefixCacheHitRate *float64 `json:"predicted_prefix_cache_hit_rate"`
	// MetricsAgeMS is the age of the latest successful scrape; -1 when there was none.
	MetricsAgeMS int64 `json:"metrics_age_ms"`
	// MetricsStale is true when the last StaleAfter scrapes failed (load then comes from
	// in-flight counts alone).
	MetricsStale bool `json:"metrics_stale"`
	// Engines counts the data-parallel engines seen in the latest scrape.
	Engines int `json:"engines"`
}

// HitPredictor is implemented by policies that predict prefix-cache hits (CacheAware);
// LoadStats shows the prediction next to the engine-reported hit rate.
type HitPredictor interface {
	// PredictedHitRate is the recent predicted hit rate of backend; ok is false when
	// there is none.
	PredictedHitRate(backend string) (rate float64, ok bool)
}

// LoadStats returns one entry per backend, in pool order.
func (r *Router) LoadStats() []BackendStats {
	now := r.now()
	p := r.pool.Load()
	hp, _ := r.policy.(HitPredictor)
	out := make([]BackendStats, 0, len(p.backends))
	for _, b := range p.backends {
		b.mu.Lock()
		c := b.candidateLocked(r.sharedInFlight(b), r.cfg.StaleAfter)
		s := BackendStats{
			URL: b.id, Healthy: b.healthy, Models: b.servedLocked(),
			Running: b.em.Running, Waiting: b.em.Waiting,
			InFlight: c.InFlight, InFlightByClass: make(map[Class]int64, len(classes)),
			Capacity: b.cfg.Capacity, Load: c.Load, KVCacheUsage: b.em.KVCacheUsage,
			PrefixCacheHitRate: b.hitRate, MetricsAgeMS: -1, MetricsStale: c.MetricsStale,
			Engines: b.em.Engines,
		}
		for i, n := range r.inFlightByClassLocked(b) {
			s.InFlightByClass[classes[i]] = n
		}
		if hp != nil {
			if v, ok := hp.PredictedHitRate(b.id); ok {
				s.PredictedPrefixCacheHitRate = &v
			}
		}
		if b.hasMetrics {
			s.MetricsAgeMS = max(0, now.Sub(b.scrapedAt).Milliseconds())
		}
		b.mu.Unlock()
		out = append(out, s)
	}
	return out
}
