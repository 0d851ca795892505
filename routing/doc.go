// Package routing owns the pool of vLLM backends behind the proxy: which models each one
// serves (discovered from GET /v1/models), how loaded it is (scraped from GET /metrics and
// corrected by the proxy's own in-flight requests), whether it is healthy (active GET /health
// probes plus passive failure counting), and which one a request goes to (a Policy).
//
// The proxy calls Router.Pick for every attempt and Pick.Done exactly once when the attempt
// ends. Everything else (discovery, scraping, health, priority detection) runs in background
// loops owned by the Router, started by Router.Start and stopped by Router.Stop.
//
// # Load score
//
// For least_load, load = (running + 0.5·waiting + dispatched)/capacity, where running and
// waiting come from the latest scrape summed over vLLM's `engine` label (data-parallel
// ranks) and dispatched counts this replica's requests sent to the backend since that
// scrape and still in flight (so a burst between scrapes is seen at once). The score never
// drops below inFlight/capacity, inFlight being the count over all proxy replicas (a
// LoadShare), because vLLM's gauges lag by seconds. After StaleAfter missed scrapes the
// metrics are stale and load = inFlight/capacity.
//
// least_load chooses among backends under 0.5 at random, weighted by free capacity
// (capacity·(1−load)); when none is under 0.5 it takes the lowest load, ties at random.
//
// With Config.BatchYields (backpressure evicts batch requests for interactive ones) an
// interactive pick's load leaves out the batch requests in flight.
//
// # Prefill spreading
//
// The proxy calls Pick.Sent before each attempt and Pick.Prefilled at a stream's first
// byte. Until then the prompt counts as being prefilled on the backend (a non-streamed
// one, as every batch line, for its estimated prefill time at
// CacheAwareConfig.PrefillTokensPerSecond): Candidate.Prefills. A candidate with more of
// them than another within Config.PrefillSpread (0.25) of the least load is Crowded, and
// least_load and cache_aware's cold placement and release pass over it, so prompts that
// arrive together are prefilled in different engines' steps rather than in one step twice
// as long (see prefill.go).
//
// # Policies
//
// Config.Policy names one of PolicyNames: cache_aware (the default), least_load,
// round_robin, random and chwbl; all run on the same candidates, so one benchmark can
// compare them.
//
// cache_aware (CacheAware) hashes the canonical prompt into a chain of blocks (HashPrompt:
// xxhash64, seeded with model, cache_salt and LoRA adapter; CacheAwareConfig.BlockChars
// characters a block, 4×block_size from vllm:cache_config_info by default, at most
// MaxBlocks), looks up each backend's longest matched prefix in a PrefixIndex, and stays
// with the best match while that backend's pressure (load score and uncached prompt tokens
// in flight, in budgets, see CacheAware) is under one budget, or beyond it within the
// bounded-load factor of the mean pressure; then it releases to least_load. Requests no backend has an edge on are placed by consistent
// (rendezvous) hashing with bounded load on their first unshared block, so replicas agree
// without Redis, among the backends with headroom (under half load or within a request of
// the least loaded), so bursts spread as evenly as with least_load. The chosen backend's chain is recorded after the pick. WithPrefixIndex
// shares the index across replicas (package state); by default it is a LocalPrefixIndex.
//
// chwbl (CHWBL) is KubeAI's PrefixHash: consistent hashing with bounded load (factor 1.25)
// on the first 100 characters of the first user message.
//
// # Health
//
// A backend is healthy or ejected. It is ejected by a failed GET /health, or by MaxFails
// consecutive failed attempts reported through Pick.Done (connect errors, timeouts, 5xx; a
// client's 4xx or a client cancel never count). An ejected backend is re-probed after
// EjectBackoffBase, doubling up to EjectBackoffCap; one healthy probe restores it. A backend
// ejected again soon after being restored resumes its doubled back-off (flap damping).
//
// # Replicas
//
// Two small interfaces make the router replica-aware without touching Pick's callers:
// LoadShare (in-flight counts summed over replicas) and ScrapeCoordinator (one replica
// scrapes a backend and publishes the result). Package state implements both over Redis;
// the defaults are in-process.
//
// # Metrics
//
// NewMetrics registers, under vllm_proxy_: backend_up, backend_load, backend_metrics_stale,
// backend_in_flight_requests{class}, backend_ejections_total, backend_scrape_errors_total
// and backend_scrape_duration_seconds, all labelled by backend; a backend's series are
// deleted when Update removes it. NewPolicyMetrics registers routing_decisions_total
// {policy,reason} (affinity, saturation_release, cold_placement, fallback) and the
// routing_predicted_prefix_hit_ratio{policy} histogram. GET /load-stats (LoadStats) shows
// each backend's predicted hit rate next to the engine-reported one.
package routing
