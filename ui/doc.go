// Package ui is the proxy's web dashboard at /ui: one page, its script, styles and icon,
// embedded with go:embed and served by the proxy itself. The page loads nothing from
// anywhere else (a Content-Security-Policy of 'self' enforces it) and draws its charts as
// plain SVG with its own script.
//
// It shows the backends (health, load, running and waiting, in-flight by class, KV
// usage, predicted and engine-reported prefix hit rate, stale metrics), the models and
// the mix of routing decisions, batches (status, progress, counts, cancel, delete) and
// files (delete), throughput and uploads per 15 minutes, and totals for the last 24 h.
// It polls every Config.PollInterval. It is laid out for 1280×800 and, below 760 px,
// turns tables into stacked cards for phones.
//
// # Where the figures come from
//
// Backends, models and the policy come from a [Router] (*routing.Router); the predicted
// prefix hit rate is routing's, from the cache_aware policy. Batches and files are
// read, cancelled and deleted by the page itself through the proxy's own /v1/batches and
// /v1/files (with the API key the user types in, if any), so this package needs no batch
// interface. The Batch API cannot delete a batch record, so the page's Delete on a
// finished batch deletes its input, output and error files.
//
// The time series are kept here: a sampler reads the process's Prometheus registry
// (Sources.Metrics) every Config.SampleInterval and on demand, and adds what the counters
// gained since the previous reading to the bucket of now (Config.BucketWidth, a ring of
// Config.Window). It reads vllm_proxy_requests_total (by class, code, backend, model),
// vllm_proxy_batch_lines_recorded_total, vllm_proxy_batch_upload_bytes_total,
// vllm_proxy_batch_files_uploaded_total (if exported) and every counter named
// vllm_proxy_*decision*_total (the routing decision mix). The figures are this replica's:
// behind several replicas each dashboard shows its own share (Grafana shows the sum).
// The series start empty when the process starts.
//
// # JSON endpoints
//
// Every endpoint is GET (HEAD too), answers application/json with Cache-Control
// no-store, and answers errors in OpenAI's shape {"error":{"message","type","param","code"}}:
// 404 for an unknown path, 405 for another method, 400 for a bad query.
//
//	GET /ui/api/config    {"title","version","poll_interval_ms","bucket_seconds","window_seconds","api_base"}
//	GET /ui/api/backends  {"time" (Unix ms),"policy","healthy" (count),"backends":[row]}
//	                      row = a /load-stats entry (routing.BackendStats: "url","healthy","models",
//	                      "running","waiting","in_flight","in_flight_by_class":{"interactive","batch"},
//	                      "capacity","load","kv_cache_usage","prefix_cache_hit_rate",
//	                      "predicted_prefix_cache_hit_rate" (null without a prediction),
//	                      "metrics_age_ms","metrics_stale","engines")
//	GET /ui/api/models    {"models":[{"id","parent","max_model_len","backends":[url],"healthy","requests"}]}
//	GET /ui/api/routing   {"policy","decisions":[share],"backends":[share],"sampled_at" (Unix ms)}
//	                      share = {"name","count","share" (0..1)}, largest first; counts are
//	                      cumulative since the process started
//	GET /ui/api/series[?buckets=N]
//	                      {"bucket_seconds","now" (Unix ms),"since" (Unix ms of the first reading),
//	                      "buckets":[{"start" (Unix s),counts}]}, oldest first, the last one is
//	                      the current bucket; N in [1, window/bucket], default all
//	GET /ui/api/stats     {"window_seconds","bucket_seconds","since","window":counts,
//	                      "peak":counts (per field, the largest bucket),"lifetime":counts}
//
// counts = {"requests","batch_requests","errors","lines_completed","lines_failed",
// "uploads","upload_bytes"}; see [Counts].
//
// # Lifecycle
//
// [New] builds the [Handler]; cmd mounts it on "/ui" and "/ui/" and calls Start(ctx)
// with the other services and Stop before closing shared state. Without Start the
// endpoints still work: each read samples on demand.
package ui
