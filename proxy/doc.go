// Package proxy is vllm-proxy's OpenAI-compatible http.Handler: a client that sets its base
// URL to the proxy cannot tell it from one vLLM server serving every model of every backend.
//
// Per request ([Handler.ServeHTTP], and [Handler.Dispatch] for batch lines):
//
//   - The body is read once, at most Config.MaxBodyBytes (else 413), and parsed once for
//     model, stream, priority, cache_salt and the canonical prompt text routing hashes for
//     prefix affinity (prompt.go). The original bytes are what the backend receives, so
//     fields the proxy does not know pass through untouched.
//   - routing.Router.Pick chooses a backend; the attempt goes through one shared
//     httputil.ReverseProxy (Rewrite, never Director) on one tuned http.Transport.
//   - The retry loop (forward.go) lives outside the ReverseProxy: nothing reaches the client
//     until ModifyResponse accepts a response, so a connect error, a transport error before
//     the headers, a per-attempt header timeout or a 502/503/504 (429 only when the next
//     backend has room) is retried on a backend not yet tried, bounded by
//     Config.MaxRetries and Config.RequestTimeout, with a short jittered back-off. Once the
//     headers went out there is no retry.
//   - SSE passes through byte for byte and is handed over, and flushed, one whole event at
//     a time (body_watch.go). A stream the backend cuts ends cleanly for the client with an
//     error event and "data: [DONE]", as vLLM ends a stream that fails; a non-streaming
//     body that breaks off aborts the client connection so it cannot look complete.
//   - A client that goes away cancels the backend request at once; that is a 499 and never
//     a backend failure. Every attempt's outcome reaches routing through Pick.Done once.
//   - One function (errors.go) maps every failure to a status and an OpenAI-shaped body;
//     5xx bodies carry fixed messages that leak nothing.
//
// The proxy also answers GET /v1/models (routing's merged, cached list), /version,
// /health (200 while any backend is healthy, else 503) and /load-stats; anything else is an
// OpenAI-shaped 404. /metrics, /v1/files and /v1/batches are mounted by cmd in front of it.
package proxy
