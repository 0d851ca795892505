// Package batch serves the OpenAI Files and Batches APIs (/v1/files, /v1/batches) and runs
// batch lines through a Dispatcher that cmd wires to the proxy's in-process path.
//
// Storage: file bytes live in a BlobStore (Redis chunks by default, a shared directory with
// --files-dir, memory with -R memory); batch metadata, leases on chunks of lines and
// per-line progress live in a state.JobStore (Redis, or its in-memory twin, which is not
// durable). Uploads, validation, chunk reads, result parts, output assembly and downloads
// all stream: no file is ever held whole in memory.
//
// Work: validation splits the input into chunks of Config.ChunkLines lines. A worker leases
// a chunk (Config.LeaseTTL, renewed every third of it), sends its undone lines (those
// sharing a prompt prefix next to each other), and commits the results in parts: the lines
// are written to part blobs first, then recorded by one script that checks and sets the
// per-line "done" bits, so every line is executed at least once and recorded exactly once.
// A commit whose outcome is unknown is retried with the same part. When a replica dies its
// leases lapse and another replica re-runs only the lines without a result: at most the
// dead replica's lines in flight plus its finished-but-uncommitted ones, which the flush
// size (Config.FlushLines) keeps within one chunk. The finalizer concatenates the parts
// into the output and error files, adds batch_cancelled / batch_expired lines for lines
// never run, writes the terminal status, and then deletes the parts and work keys.
package batch
