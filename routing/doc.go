// Package routing owns the pool of vLLM backends behind the proxy: which models each one
// serves (discovered from GET /v1/models), how loaded it is (scraped from GET /metrics and
// corrected by the proxy's own in-flight requests), whether it is healthy (active GET /health
// probes plus passive failure counting), and which one a request goes to (a Policy).
//
// The proxy calls Router.Pick for every attempt and Pick.Done exactly once when the attempt
// ends. Everything else (discovery, scraping, health) runs in background loops owned by the
// Router and started by Router.Start.
package routing
