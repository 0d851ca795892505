package state

// Key layout of the batch job store (this file and file_redis.go; blob keys are in
// blob_redis.go). Per-batch keys share the hash tag {<batch id>} so one script may touch
// them all in a cluster; global indexes are touched by plain commands only.
//
//	batch:{id}          hash    spec (JSON), status, *_at, counts, usage, model, errors,
//	                            file ids, nchunks/next/chunks_done, vlease/flease/fin/fmode
//	batch:{id}:leases   hash    chunk number → "<owner>|<deadline ms>"
//	batch:{id}:chunks   list    chunk i → "<offset>,<length>,<first>,<n>"
//	batch:{id}:cdone    string  bitmap, bit i = chunk i finished
//	batch:{id}:done     string  bitmap, bit i = task line i has a committed result
//	batch:{id}:parts    list    committed parts "<ok blob>|<err blob>" in commit order
//	batch:{id}:staged   set     names of parts being written, not yet committed
//	batches             zset    created ms → batch id (list API)
//	batches:active      set     ids of batches that may still need work
//	file:{id}           hash    rec = FileRecord JSON
//	file:{id}:batches   set     ids of batches created with this input file
//	files               zset    created ms → file id
//	files:purpose:<p>   zset    the same, per purpose
//	files:expiry        zset    expires_at → file id (janitor)

func batchHashKey(id string) string   { return "batch:{" + id + "}" }
func batchLeasesKey(id string) string { return "batch:{" + id + "}:leases" }
func batchChunksKey(id string) string { return "batch:{" + id + "}:chunks" }
func batchCDoneKey(id string) string  { return "batch:{" + id + "}:cdone" }
func batchDoneKey(id string) string   { return "batch:{" + id + "}:done" }
func batchPartsKey(id string) string  { return "batch:{" + id + "}:parts" }
func batchStagedKey(id string) string { return "batch:{" + id + "}:staged" }
func batchListKey() string            { return "batches" }
func batchActiveKey() string          { return "batches:active" }

func fileHashKey(id string) string    { return "file:{" + id + "}" }
func fileBatchesKey(id string) string { return "file:{" + id + "}:batches" }
func fileListKey() string             { return "files" }
func filePurposeKey(p string) string  { return "files:purpose:" + p }
func fileExpiryKey() string           { return "files:expiry" }
