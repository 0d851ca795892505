package state

import "github.com/redis/go-redis/v9"

// Scripts of the batch job store: one per invariant. Lease values are "<owner>|<deadline ms>";
// deadlines are computed by the caller from its clock. Every key a script touches is in
// KEYS and shares the batch's hash tag.

// batchCancelScript: validating|in_progress → cancelling unless finalization began.
//
//	KEYS[1] batch hash   ARGV[1] now (s)
//	returns the status after the call, or false when the batch does not exist.
var batchCancelScript = redis.NewScript(`
local h = redis.call('HMGET', KEYS[1], 'status', 'fin')
if not h[1] then return false end
if h[2] ~= '1' and (h[1] == 'validating' or h[1] == 'in_progress') then
  redis.call('HSET', KEYS[1], 'status', 'cancelling', 'cancelling_at', ARGV[1])
  return 'cancelling'
end
return h[1]
`)

// batchClaimValidationScript takes the validation lease of a validating batch.
//
//	KEYS[1] batch hash   ARGV[1] owner  ARGV[2] now (ms)  ARGV[3] deadline (ms)
//	returns 1 when owner now holds the lease, else 0.
var batchClaimValidationScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'status') ~= 'validating' then return 0 end
local v = redis.call('HGET', KEYS[1], 'vlease')
if v then
  local o, d = string.match(v, '^(.*)|(%d+)$')
  if o ~= ARGV[1] and tonumber(d) > tonumber(ARGV[2]) then return 0 end
end
redis.call('HSET', KEYS[1], 'vlease', ARGV[1] .. '|' .. ARGV[3])
return 1
`)

// batchStartScript records the chunk table and moves validating → in_progress.
//
//	KEYS[1] batch hash  KEYS[2] chunks list
//	ARGV[1] now (s)  ARGV[2] total  ARGV[3] model  ARGV[4] chunk count  ARGV[5..] chunks
//	returns the status after the call, or false when the batch does not exist.
var batchStartScript = redis.NewScript(`
local st = redis.call('HGET', KEYS[1], 'status')
if st ~= 'validating' then return st or false end
redis.call('DEL', KEYS[2])
for i = 5, #ARGV, 500 do
  redis.call('RPUSH', KEYS[2], unpack(ARGV, i, math.min(i + 499, #ARGV)))
end
redis.call('HSET', KEYS[1], 'status', 'in_progress', 'in_progress_at', ARGV[1], 'total', ARGV[2],
  'model', ARGV[3], 'nchunks', ARGV[4], 'next', 0, 'chunks_done', 0)
redis.call('HDEL', KEYS[1], 'vlease')
return 'in_progress'
`)

// batchFailScript moves validating → failed with the validation errors.
//
//	KEYS[1] batch hash   ARGV[1] now (s)  ARGV[2] errors (JSON array)
//	returns the status after the call, or false when the batch does not exist.
var batchFailScript = redis.NewScript(`
local st = redis.call('HGET', KEYS[1], 'status')
if st ~= 'validating' then return st or false end
redis.call('HSET', KEYS[1], 'status', 'failed', 'failed_at', ARGV[1], 'errors', ARGV[2])
redis.call('HDEL', KEYS[1], 'vlease')
return 'failed'
`)

// batchClaimChunkScript leases a chunk: a lapsed lease first, else the next new chunk.
// Nothing is handed out after expires_at or once finalization began.
//
//	KEYS[1] batch hash  KEYS[2] leases hash  KEYS[3] chunks list
//	ARGV[1] owner  ARGV[2] now (ms)  ARGV[3] deadline (ms)  ARGV[4] now (s)
//	returns {chunk number, chunk spec, reclaimed 0|1} or false.
var batchClaimChunkScript = redis.NewScript(`
local h = redis.call('HMGET', KEYS[1], 'status', 'expires_at', 'fin', 'next', 'nchunks')
if h[1] ~= 'in_progress' or h[3] == '1' then return false end
if tonumber(ARGV[4]) >= tonumber(h[2]) then return false end
local now = tonumber(ARGV[2])
local val = ARGV[1] .. '|' .. ARGV[3]
local ls = redis.call('HGETALL', KEYS[2])
for i = 1, #ls, 2 do
  local d = tonumber(string.match(ls[i+1], '|(%d+)$'))
  if d <= now then
    redis.call('HSET', KEYS[2], ls[i], val)
    return {ls[i], redis.call('LINDEX', KEYS[3], tonumber(ls[i])), 1}
  end
end
local nx = tonumber(h[4])
if nx >= tonumber(h[5]) then return false end
redis.call('HSET', KEYS[1], 'next', nx + 1)
redis.call('HSET', KEYS[2], tostring(nx), val)
return {tostring(nx), redis.call('LINDEX', KEYS[3], nx), 0}
`)

// batchRenewScript extends a lease that owner still holds.
//
//	KEYS[1] batch hash  KEYS[2] leases hash
//	ARGV[1] owner  ARGV[2] field (vlease, flease or a chunk number)  ARGV[3] 'h' (field of
//	the batch hash) or 'l' (field of the leases hash)  ARGV[4] new deadline (ms)
//	returns 1 when renewed, 0 when the lease is gone or someone else's.
var batchRenewScript = redis.NewScript(`
local key = KEYS[2]
if ARGV[3] == 'h' then key = KEYS[1] end
local v = redis.call('HGET', key, ARGV[2])
if not v or string.match(v, '^(.*)|%d+$') ~= ARGV[1] then return 0 end
redis.call('HSET', key, ARGV[2], ARGV[1] .. '|' .. ARGV[4])
return 1
`)

// batchReleaseScript gives a chunk back. done: mark it finished (counted once) and drop
// its lease, whoever holds it; not done: let anyone claim it now if owner holds it.
//
//	KEYS[1] batch hash  KEYS[2] leases hash  KEYS[3] chunk-done bitmap
//	ARGV[1] owner  ARGV[2] chunk number  ARGV[3] done 0|1
var batchReleaseScript = redis.NewScript(`
local v = redis.call('HGET', KEYS[2], ARGV[2])
if ARGV[3] == '1' then
  if redis.call('SETBIT', KEYS[3], ARGV[2], 1) == 0 then
    redis.call('HINCRBY', KEYS[1], 'chunks_done', 1)
  end
  if v then redis.call('HDEL', KEYS[2], ARGV[2]) end
elseif v and string.match(v, '^(.*)|%d+$') == ARGV[1] then
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[1] .. '|0')
end
return 1
`)

// batchStageScript records the name of a part about to be written, unless finalization
// began (the same precondition as batchCommitScript).
//
//	KEYS[1] batch hash  KEYS[2] staged set  ARGV[1] name
//	returns 1 staged, -1 finalization began, -2 no such batch.
var batchStageScript = redis.NewScript(`
local h = redis.call('HMGET', KEYS[1], 'status', 'fin')
if not h[1] then return -2 end
if h[2] == '1' or (h[1] ~= 'in_progress' and h[1] ~= 'cancelling') then return -1 end
redis.call('SADD', KEYS[2], ARGV[1])
return 1
`)

// batchCommitScript records a part exactly once: either every line of it is new and all
// are marked done with the counts and usage added, or nothing changes.
//
//	KEYS[1] batch hash  KEYS[2] line-done bitmap  KEYS[3] parts list  KEYS[4] staged set
//	ARGV[1] ok blob  ARGV[2] err blob  ARGV[3] ok count  ARGV[4] error count
//	ARGV[5..9] usage: input, cached, output, reasoning, total tokens  ARGV[10] staged name
//	ARGV[11..] line numbers
//	returns {1} committed, {0, dup line...} nothing done, {-1} finalization began,
//	{-2} no such batch.
var batchCommitScript = redis.NewScript(`
local h = redis.call('HMGET', KEYS[1], 'status', 'fin')
if not h[1] then return {-2} end
if h[2] == '1' or (h[1] ~= 'in_progress' and h[1] ~= 'cancelling') then return {-1} end
local dups = {0}
for i = 11, #ARGV do
  if redis.call('GETBIT', KEYS[2], ARGV[i]) == 1 then dups[#dups+1] = ARGV[i] end
end
if #dups > 1 then return dups end
for i = 11, #ARGV do redis.call('SETBIT', KEYS[2], ARGV[i], 1) end
if ARGV[10] ~= '' then redis.call('SREM', KEYS[4], ARGV[10]) end
redis.call('RPUSH', KEYS[3], ARGV[1] .. '|' .. ARGV[2])
redis.call('HINCRBY', KEYS[1], 'completed', ARGV[3])
redis.call('HINCRBY', KEYS[1], 'failed', ARGV[4])
redis.call('HINCRBY', KEYS[1], 'u_in', ARGV[5])
redis.call('HINCRBY', KEYS[1], 'u_cached', ARGV[6])
redis.call('HINCRBY', KEYS[1], 'u_out', ARGV[7])
redis.call('HINCRBY', KEYS[1], 'u_reason', ARGV[8])
redis.call('HINCRBY', KEYS[1], 'u_total', ARGV[9])
return {1}
`)

// batchClaimFinalizeScript starts (or takes over) finalization when it is due: all chunks
// done (in_progress → finalizing), the window passed with no live chunk lease, or a
// cancelled batch with no live lease. From then on no chunk is claimed and no part
// committed.
//
//	KEYS[1] batch hash  KEYS[2] leases hash
//	ARGV[1] owner  ARGV[2] now (ms)  ARGV[3] deadline (ms)  ARGV[4] now (s)
//	returns the mode (complete, expire, cancel) or false.
var batchClaimFinalizeScript = redis.NewScript(`
local h = redis.call('HMGET', KEYS[1], 'status', 'expires_at', 'fin', 'fmode', 'flease',
  'chunks_done', 'nchunks', 'vlease')
local st = h[1]
if not st then return false end
local now = tonumber(ARGV[2])
local function live(v)
  if not v then return false end
  return tonumber(string.match(v, '|(%d+)$')) > now
end
local val = ARGV[1] .. '|' .. ARGV[3]
if h[3] == '1' then
  if st ~= 'in_progress' and st ~= 'finalizing' and st ~= 'cancelling' then return false end
  if live(h[5]) then return false end
  redis.call('HSET', KEYS[1], 'flease', val)
  return h[4]
end
local mode = false
if st == 'in_progress' then
  if tonumber(h[6] or 0) >= tonumber(h[7] or 0) then
    mode = 'complete'
  elseif tonumber(ARGV[4]) >= tonumber(h[2]) then
    mode = 'expire'
  end
elseif st == 'cancelling' then
  if live(h[8]) then return false end
  mode = 'cancel'
end
if not mode then return false end
if mode ~= 'complete' then
  local ls = redis.call('HVALS', KEYS[2])
  for i = 1, #ls do if live(ls[i]) then return false end end
else
  redis.call('HSET', KEYS[1], 'status', 'finalizing', 'finalizing_at', ARGV[4])
end
redis.call('HSET', KEYS[1], 'fin', 1, 'fmode', mode, 'flease', val)
return mode
`)

// batchFinishScript writes the terminal status when owner holds the finalization lease.
//
//	KEYS[1] batch hash  KEYS[2] leases hash
//	ARGV[1] owner  ARGV[2] status  ARGV[3] now (s)  ARGV[4] output file id
//	ARGV[5] error file id  ARGV[6] lines to add to failed
//	returns 1 when written, 0 otherwise.
var batchFinishScript = redis.NewScript(`
local h = redis.call('HMGET', KEYS[1], 'status', 'flease', 'fin')
if not h[1] or h[3] ~= '1' then return 0 end
if h[1] == 'completed' or h[1] == 'failed' or h[1] == 'expired' or h[1] == 'cancelled' then return 0 end
if not h[2] or string.match(h[2], '^(.*)|%d+$') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[2], ARGV[2] .. '_at', ARGV[3],
  'output_file_id', ARGV[4], 'error_file_id', ARGV[5])
redis.call('HINCRBY', KEYS[1], 'failed', ARGV[6])
redis.call('HDEL', KEYS[1], 'flease', 'vlease', 'next')
redis.call('DEL', KEYS[2])
return 1
`)
