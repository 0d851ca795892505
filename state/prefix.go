package state

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// MaxLookupBlocks caps the blocks one Lookup or Record considers; longer chains are cut.
const MaxLookupBlocks = 1024

// recordBatch is how many records the writer sends in one pipeline.
const recordBatch = 64

// PrefixIndex maps prefix-block hashes to the backends that (probably) hold those blocks in
// their KV cache, shared by every replica through Redis, with a local LRU in front.
//
// Hashes are a chain: hashes[i] covers the prompt up to block i, so hashes[0] roots the
// chain. Lookup answers in at most Config.LookupBudget (one Redis round trip, or the local
// cache when Redis is slow or unavailable); Record never blocks. Ownership expires
// Config.PrefixTTL after it was last recorded. Safe for concurrent use.
type PrefixIndex struct {
	s     *Store
	cache *ownerCache
	queue chan prefixRecord
	// lookups bounds lookups still running past their budget.
	lookups chan struct{}
	resync  atomic.Bool
	kick    chan struct{}

	bgMu   sync.RWMutex
	closed bool
	bg     sync.WaitGroup
}

type prefixRecord struct {
	root    uint64
	backend string
	hashes  []uint64
	ttl     time.Duration
}

func newPrefixIndex(s *Store) *PrefixIndex {
	return &PrefixIndex{
		s:       s,
		cache:   newOwnerCache(s.cfg.PrefixCacheBlocks, func(n int) { s.metrics.PrefixCacheBlocks.Set(float64(n)) }),
		queue:   make(chan prefixRecord, s.cfg.RecordQueue),
		lookups: make(chan struct{}, s.cfg.BackgroundLookups),
		kick:    make(chan struct{}, 1),
	}
}

// Prefix returns the store's shared prefix ownership index.
func (s *Store) Prefix() *PrefixIndex { return s.prefix }

// Lookup returns, per backend, how many leading blocks of hashes it owns: walking from the
// first block, a backend counts while it owns every block so far, and the walk stops at the
// first block no remaining backend owns. Backends with no match are absent. It waits for
// Redis at most Config.LookupBudget (and never past ctx); a late Redis answer still fills
// the local cache for the next lookup. Answers merge Redis with the local cache, which
// knows this replica's records before they reach Redis; a backend's count is the longer of
// the two.
func (p *PrefixIndex) Lookup(ctx context.Context, hashes []uint64) map[string]int {
	if len(hashes) > MaxLookupBlocks {
		hashes = hashes[:MaxLookupBlocks]
	}
	if len(hashes) == 0 {
		return map[string]int{}
	}
	if p.s.rdb == nil || !p.s.Connected() {
		p.s.metrics.PrefixLookups.WithLabelValues("local").Inc()
		return p.cache.match(hashes, time.Now())
	}
	res := make(chan map[string]int, 1)
	if !p.startLookup(hashes, res) {
		p.s.metrics.PrefixLookups.WithLabelValues("budget").Inc()
		return p.cache.match(hashes, time.Now())
	}
	timer := time.NewTimer(p.s.cfg.LookupBudget)
	defer timer.Stop()
	select {
	case merged, ok := <-res:
		if !ok {
			p.s.metrics.PrefixLookups.WithLabelValues("local").Inc()
			return p.cache.match(hashes, time.Now())
		}
		p.s.metrics.PrefixLookups.WithLabelValues("redis").Inc()
		return merged
	case <-timer.C:
	case <-ctx.Done():
	}
	p.s.metrics.PrefixLookups.WithLabelValues("budget").Inc()
	return p.cache.match(hashes, time.Now())
}

// startLookup runs the Redis lookup in a goroutine owned by p; it sends the result on res
// (or closes it on failure) and puts what it learned into the local cache. It returns false
// when too many lookups are already running or the store is closing.
func (p *PrefixIndex) startLookup(hashes []uint64, res chan<- map[string]int) bool {
	select {
	case p.lookups <- struct{}{}:
	default:
		return false
	}
	p.bgMu.RLock()
	if p.closed {
		p.bgMu.RUnlock()
		<-p.lookups
		return false
	}
	p.bg.Add(1)
	p.bgMu.RUnlock()
	hashes = append([]uint64(nil), hashes...) // the caller may reuse its slice
	go func() {
		defer p.bg.Done()
		defer func() { <-p.lookups }()
		ctx, cancel := context.WithTimeout(p.s.ctx, p.s.cfg.CommandTimeout)
		defer cancel()
		merged, err := p.lookupRedis(ctx, hashes)
		if err != nil {
			p.s.health.observe(err)
			close(res)
			return
		}
		res <- merged
	}()
	return true
}

// lookupRedis runs the lookup script and merges its answer with the local cache (which
// knows this replica's records before they reach Redis): per backend, the longer match.
// What Redis knew beyond the cache goes into the cache.
func (p *PrefixIndex) lookupRedis(ctx context.Context, hashes []uint64) (map[string]int, error) {
	root := hashes[0]
	keys := make([]string, len(hashes))
	for i, h := range hashes {
		keys[i] = prefixKey(root, h)
	}
	vals, err := p.s.scripts.prefixLookup.Run(ctx, p.s.rdb, keys).Slice()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	merged := p.cache.match(hashes, now)
	for i := 0; i+2 < len(vals); i += 3 {
		b, _ := vals[i].(string)
		n, _ := vals[i+1].(int64)
		ttl, _ := vals[i+2].(int64)
		if b == "" || n <= int64(merged[b]) || n > int64(len(hashes)) {
			continue
		}
		merged[b] = int(n)
		p.cache.put(root, hashes[:n], b, now.Add(time.Duration(ttl)*time.Millisecond), now)
	}
	return merged, nil
}

// Record notes that backend now holds the blocks of hashes. It updates the local cache at
// once and queues the Redis write; it never blocks (a full queue drops the write and counts
// it). Chains recorded for the same backend within the last twentieth of PrefixTTL are not
// rewritten, so hot prefixes cost Redis almost nothing.
func (p *PrefixIndex) Record(backend string, hashes []uint64) {
	if len(hashes) > MaxLookupBlocks {
		hashes = hashes[:MaxLookupBlocks]
	}
	if len(hashes) == 0 || backend == "" {
		return
	}
	ttl := p.s.cfg.PrefixTTL
	now := time.Now()
	if p.cache.fresh(hashes, backend, now.Add(ttl-ttl/20)) {
		return
	}
	p.cache.put(hashes[0], hashes, backend, now.Add(ttl), now)
	if p.s.rdb == nil {
		return
	}
	rec := prefixRecord{root: hashes[0], backend: backend, hashes: append([]uint64(nil), hashes...), ttl: ttl}
	select {
	case p.queue <- rec:
	default:
		p.s.metrics.PrefixRecordsDropped.Inc()
	}
}

// Forget drops a backend that left the pool from the local cache; its Redis entries age out.
func (p *PrefixIndex) Forget(backend string) { p.cache.forget(backend) }

// resyncSoon makes the writer republish the local cache (after a reconnect or data loss).
func (p *PrefixIndex) resyncSoon(context.Context) {
	p.resync.Store(true)
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// run is the writer loop: it drains the record queue into pipelines and republishes the
// local cache on resync. On ctx done it waits for the lookups still running.
func (p *PrefixIndex) run(ctx context.Context) {
	defer func() {
		p.bgMu.Lock()
		p.closed = true
		p.bgMu.Unlock()
		p.bg.Wait()
	}()
	if p.s.rdb == nil {
		<-ctx.Done()
		return
	}
	batch := make([]prefixRecord, 0, recordBatch)
	for {
		select {
		case <-ctx.Done():
			return
		case rec := <-p.queue:
			batch = append(batch[:0], rec)
		drain:
			for len(batch) < recordBatch {
				select {
				case rec := <-p.queue:
					batch = append(batch, rec)
				default:
					break drain
				}
			}
			if p.s.Connected() {
				p.write(ctx, batch)
			}
		case <-p.kick:
		}
		if p.resync.Load() && p.s.Connected() {
			p.resync.Store(false)
			p.republish(ctx)
		}
	}
}

// republish writes every live ownership in the local cache back to Redis with its
// remaining lifetime.
func (p *PrefixIndex) republish(ctx context.Context) {
	now := time.Now()
	var batch []prefixRecord
	for _, g := range p.cache.snapshot(now) {
		for len(g.hashes) > 0 && ctx.Err() == nil {
			n := min(len(g.hashes), MaxLookupBlocks)
			batch = append(batch, prefixRecord{root: g.root, backend: g.backend, hashes: g.hashes[:n], ttl: g.until.Sub(now)})
			g.hashes = g.hashes[n:]
			if len(batch) == recordBatch {
				p.write(ctx, batch)
				batch = batch[:0]
			}
		}
	}
	if len(batch) > 0 {
		p.write(ctx, batch)
	}
}

// write sends records in one pipeline, reloading the script once if Redis lost it.
func (p *PrefixIndex) write(ctx context.Context, recs []prefixRecord) {
	ctx, cancel := context.WithTimeout(ctx, p.s.cfg.CommandTimeout)
	defer cancel()
	script := p.s.scripts.prefixRecord
	send := func() ([]redis.Cmder, error) {
		pipe := p.s.rdb.Pipeline()
		for _, r := range recs {
			keys := make([]string, len(r.hashes))
			for i, h := range r.hashes {
				keys[i] = prefixKey(r.root, h)
			}
			script.EvalSha(ctx, pipe, keys, r.backend, max(r.ttl.Milliseconds(), 1))
		}
		return pipe.Exec(ctx)
	}
	cmds, err := send()
	if err != nil && noScript(cmds) {
		if lerr := script.Load(ctx, p.s.rdb).Err(); lerr == nil {
			_, err = send()
		}
	}
	if err != nil {
		p.s.health.observe(err)
		p.s.log.DebugContext(ctx, "writing prefix ownership failed", "error", err, "records", len(recs))
	}
}

// noScript reports whether any command failed because Redis does not have the script.
func noScript(cmds []redis.Cmder) bool {
	for _, c := range cmds {
		if redis.HasErrorPrefix(c.Err(), "NOSCRIPT") {
			return true
		}
	}
	return false
}

// prefixLookupSrc finds each backend's leading match along a chain of block keys.
//
// KEYS[i]  prefixKey(root, hash i): hash backend → deadline (Redis time, ms); all share {root}
// Returns  flat list backend, matched blocks, remaining ms at its deepest block, …
//
// Ownership is downward closed: every record of block i also records blocks 0..i-1 with a
// deadline at least as late (prefixRecordSrc never lowers one). So a backend's match is
// the deepest block it owns, and "walk until nobody owns the block" is a binary search:
// about log2(n) HGETALLs for the deepest block anyone owns, then log2(n) HGETs for each
// backend that stops earlier, instead of n reads.
const prefixLookupSrc = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = #KEYS
local function owners(i)
  local all = redis.call('HGETALL', KEYS[i])
  local o, any = {}, false
  for j = 1, #all, 2 do
    local d = tonumber(all[j + 1])
    if d and d > now then o[all[j]] = d; any = true end
  end
  return o, any
end
local seen, deadline, absent, order = {}, {}, {}, {}
local function saw(o, i)
  for b, d in pairs(o) do
    if seen[b] == nil then order[#order + 1] = b end
    if seen[b] == nil or seen[b] < i then seen[b] = i; deadline[b] = d end
  end
end
local function gone(o, i)
  for b, _ in pairs(seen) do
    if o[b] == nil and (absent[b] == nil or absent[b] > i) then absent[b] = i end
  end
end
local o, any = owners(1)
if not any then return {} end
saw(o, 1)
local lo, hi = 1, n
while lo < hi do
  local mid = math.floor((lo + hi + 1) / 2)
  local om, anym = owners(mid)
  gone(om, mid)
  if anym then lo = mid; saw(om, mid) else hi = mid - 1 end
end
local out = {}
for _, b in ipairs(order) do
  local blo, bhi = seen[b], (absent[b] or (lo + 1)) - 1
  while blo < bhi do
    local mid = math.floor((blo + bhi + 1) / 2)
    local d = tonumber(redis.call('HGET', KEYS[mid], b))
    if d and d > now then blo = mid; deadline[b] = d else bhi = mid - 1 end
  end
  out[#out + 1] = b
  out[#out + 1] = blo
  out[#out + 1] = deadline[b] - now
end
return out
`

// prefixRecordSrc records that a backend holds a chain's blocks.
//
// KEYS[i]  prefixKey(root, hash i), all sharing {root}
// ARGV[1]  backend id
// ARGV[2]  lifetime in ms
// Each block's field for the backend gets deadline Redis time + lifetime unless it already
// has a later one (so deadlines never decrease along a chain, which prefixLookupSrc relies
// on); the key lives at least that long. Hashes holding more than 4 backends drop expired
// fields while at it.
const prefixRecordSrc = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
local deadline = now + ttl
for _, key in ipairs(KEYS) do
  local cur = tonumber(redis.call('HGET', key, ARGV[1]))
  if cur == nil or cur < deadline then
    redis.call('HSET', key, ARGV[1], deadline)
  end
  if redis.call('PTTL', key) < ttl then
    redis.call('PEXPIRE', key, ttl)
  end
  if redis.call('HLEN', key) > 4 then
    local all = redis.call('HGETALL', key)
    for j = 1, #all, 2 do
      local d = tonumber(all[j + 1])
      if d == nil or d <= now then redis.call('HDEL', key, all[j]) end
    end
  end
end
return #KEYS
`

// CachedBlocks is the number of blocks in the local ownership cache (at most
// Config.PrefixCacheBlocks).
func (p *PrefixIndex) CachedBlocks() int { return p.cache.len() }
