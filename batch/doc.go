// Package batch serves the OpenAI Files and Batches APIs (/v1/files, /v1/batches) and runs
// batch lines through a Dispatcher that cmd wires to the proxy's in-process path.
//
// Storage: file bytes live in a BlobStore (Redis chunks by default, a shared directory with
// --files-dir, memory with -R memory); batch metadata, leases on chunks of lines and
// per-line progress live in a state.JobStore (Redis, or its in-memory twin, which is not
// durable). Every line is executed at least once and recorded exactly once: results are
// written to blob parts first, then committed by one script that checks and sets the
// per-line "done" bits, so a chunk re-run after a crash never double-counts.
package batch
