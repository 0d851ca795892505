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
// deleted when Update removes it.
package routing
