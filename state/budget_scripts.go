package state

// Keys of the batch budget (kept here rather than in keys.go, which this feature does
// not touch; the layout comment there describes every other key).
//
//	{budget}:slots:<backend>    zset     batch slot lease id → deadline (Redis time, ms):
//	                                     the batch requests in flight on the backend, over
//	                                     every replica
//	{budget}:targets:<backend>  hash     replica id → "<deadline ms> <target>": each live
//	                                     replica's batch concurrency target for the backend
//
// One {budget} tag for every backend: the renewal script extends a replica's leases on
// all backends in one call.

// budgetSlotsKey holds the batch slot leases of one backend.
func budgetSlotsKey(backend string) string { return "{budget}:slots:" + backend }

// budgetTargetsKey holds every replica's batch target for one backend.
func budgetTargetsKey(backend string) string { return "{budget}:targets:" + backend }

// budgetAcquireSrc publishes the caller's target for one backend and, when a lease id is
// given, takes one batch slot if the backend's budget has room. The budget is the lowest
// target any live replica published (so a replica that sees interactive traffic first
// holds everyone back at once); the slots in use are the live leases of every replica.
//
// KEYS[1]  budgetSlotsKey(backend): zset lease id → deadline ms
// KEYS[2]  budgetTargetsKey(backend): hash replica id → "<deadline ms> <target>"
// ARGV[1]  replica id
// ARGV[2]  lease id to add, or "" to only publish and read
// ARGV[3]  lease (and target validity) in ms
// ARGV[4]  the caller's target (integer ≥ 0)
// Returns  {granted (0/1), slots in use after the call, effective target}.
// Expired leases and targets are deleted first; both keys expire one lease after their
// last write, so a backend whose replicas all died leaves nothing behind.
const budgetAcquireSrc = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local me, id = ARGV[1], ARGV[2]
local lease = tonumber(ARGV[3])
local target = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)
redis.call('HSET', KEYS[2], me, (now + lease) .. ' ' .. target)
local all = redis.call('HGETALL', KEYS[2])
for j = 1, #all, 2 do
  local v = all[j + 1]
  local sp = string.find(v, ' ', 1, true)
  local deadline = sp and tonumber(string.sub(v, 1, sp - 1))
  local other = sp and tonumber(string.sub(v, sp + 1))
  if deadline == nil or other == nil or deadline < now then
    redis.call('HDEL', KEYS[2], all[j])
  elseif other < target then
    target = other
  end
end
redis.call('PEXPIRE', KEYS[2], lease)
local n = redis.call('ZCARD', KEYS[1])
local granted = 0
if id ~= '' and n < target then
  redis.call('ZADD', KEYS[1], now + lease, id)
  n = n + 1
  granted = 1
end
if n > 0 and redis.call('PTTL', KEYS[1]) < lease then
  redis.call('PEXPIRE', KEYS[1], lease)
end
return {granted, n, target}
`

// budgetRenewSrc extends the leases a replica holds, on any number of backends. A lease
// that lapsed meanwhile is put back: its request is still running, so it still counts.
//
// KEYS[i]    budgetSlotsKey(backend i)
// ARGV[1]    lease in ms
// ARGV[1+i]  space-separated lease ids held on backend i
// Returns    the number of leases renewed.
const budgetRenewSrc = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[1])
local n = 0
for i, key in ipairs(KEYS) do
  for id in string.gmatch(ARGV[1 + i], '%S+') do
    redis.call('ZADD', key, now + lease, id)
    n = n + 1
  end
  if redis.call('PTTL', key) < lease then
    redis.call('PEXPIRE', key, lease)
  end
end
return n
`
