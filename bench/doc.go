// Package bench is vllm-proxy's load generator: it drives any OpenAI-compatible base URL
// with seeded, deterministic workloads and reports client-side latency (TTFT, ITL, E2E),
// throughput, errors and, when given vLLM /metrics URLs, the engine-side prefix cache hit
// rate and peak queue length.
//
// The entry point is [Run]. Workloads ([NewWorkload]) are random-access: request i of a
// workload is a pure function of (seed, i), so the same sequence can be sent to several
// targets and compared. Percentile helpers ([Percentile], [Summarize]) are exported for
// benchmark commands built on this package.
//
// Token counts are estimated as ceil(chars/4); generated text uses exactly four characters
// per token, and prefix blocks are 16 tokens (64 characters), matching the simulator.
//
// bench is a leaf: it imports only the standard library, gonum/plot and prometheus/common.
package bench
