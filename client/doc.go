// Package client is the command line's side of vllm-proxy: an HTTP client for a running
// proxy's Files and Batches API (OpenAI's shapes) and its GET /load-stats, plus the text
// renderings the CLI shows (the batch progress line and the `top` screen).
//
// It talks to the proxy over HTTP only and imports no other package of this module, so
// the JSON shapes here are the wire contract: the CLI tests run them against a real
// proxy, which catches any drift.
package client
