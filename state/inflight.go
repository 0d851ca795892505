package state

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// InFlight counts requests in flight per backend and traffic class, summed over every proxy
// replica. It implements routing.LoadShare.
//
// Add and InFlight never wait on Redis: Add changes this replica's counts in memory, and
// InFlight adds them to the other replicas' shares as last read. A heartbeat loop (every
// Config.HeartbeatInterval) publishes this replica's counts with a lease and reads the sum
// of the others' live shares in one round trip. A replica that stops heartbeating (crash,
// partition) stops counting after Config.InFlightLease; one that closes withdraws its
// share at once. While Redis is unreachable, or when the last read is older than the lease,
// InFlight is this replica's count alone. Safe for concurrent use.
type InFlight struct {
	s *Store

	mu        sync.Mutex
	local     map[string]map[string]int64 // backend → class → count; an entry = a known backend
	forgotten map[string]bool             // backends whose share must be withdrawn

	remote atomic.Pointer[remoteLoad]
	kick   chan struct{}
}

// remoteLoad is the other replicas' summed counts as of one heartbeat.
type remoteLoad struct {
	at     time.Time
	counts map[string]map[string]int64
}

func newInFlight(s *Store) *InFlight {
	return &InFlight{
		s:         s,
		local:     map[string]map[string]int64{},
		forgotten: map[string]bool{},
		kick:      make(chan struct{}, 1),
	}
}

// InFlight returns the store's shared in-flight counter.
func (s *Store) InFlight() *InFlight { return s.inflight }

// Add adds delta to this replica's count for (backend, class). Class names must not contain
// '=' or ';' (routing's are "interactive" and "batch").
func (f *InFlight) Add(backend, class string, delta int64) {
	f.mu.Lock()
	m := f.local[backend]
	if m == nil {
		m = map[string]int64{}
		f.local[backend] = m
		delete(f.forgotten, backend)
	}
	m[class] += delta
	f.mu.Unlock()
}

// InFlight returns the count for (backend, class) over all live replicas; never negative.
// Asking about a backend makes the heartbeat read its shared count from then on.
func (f *InFlight) InFlight(backend, class string) int64 {
	f.mu.Lock()
	m, known := f.local[backend]
	if !known {
		f.local[backend] = map[string]int64{}
		delete(f.forgotten, backend)
	}
	n := m[class]
	f.mu.Unlock()
	if r := f.remote.Load(); r != nil && time.Since(r.at) < f.s.cfg.InFlightLease {
		n += r.counts[backend][class]
	}
	return max(n, 0)
}

// Local returns this replica's own count for (backend, class).
func (f *InFlight) Local(backend, class string) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.local[backend][class]
}

// Forget drops a backend that left the pool; its share is withdrawn at the next heartbeat.
func (f *InFlight) Forget(backend string) {
	f.mu.Lock()
	if _, ok := f.local[backend]; ok {
		delete(f.local, backend)
		f.forgotten[backend] = true
	}
	f.mu.Unlock()
}

// resync publishes at once (after a reconnect or a data loss).
func (f *InFlight) resync(context.Context) {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// run is the heartbeat loop; on ctx done it withdraws this replica's share.
func (f *InFlight) run(ctx context.Context) {
	if f.s.rdb == nil {
		return
	}
	t := time.NewTicker(f.s.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			f.withdraw(ctx)
			return
		case <-t.C:
		case <-f.kick:
		}
		if !f.s.Connected() {
			continue
		}
		f.heartbeat(ctx, false)
	}
}

// withdraw removes this replica's share from Redis so a clean shutdown leaves no load behind.
func (f *InFlight) withdraw(ctx context.Context) {
	if !f.s.Connected() {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.s.cfg.CommandTimeout)
	defer cancel()
	f.heartbeat(ctx, true)
}

// heartbeat publishes this replica's counts (none when withdrawing) and reads the others'.
func (f *InFlight) heartbeat(ctx context.Context, withdrawing bool) {
	f.mu.Lock()
	backends := make([]string, 0, len(f.local)+len(f.forgotten))
	mine := make([]string, 0, cap(backends))
	for b, m := range f.local {
		backends = append(backends, b)
		if withdrawing {
			mine = append(mine, "")
		} else {
			mine = append(mine, encodeCounts(m))
		}
	}
	for b := range f.forgotten {
		backends = append(backends, b)
		mine = append(mine, "")
	}
	f.mu.Unlock()
	if len(backends) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, f.s.cfg.CommandTimeout)
	defer cancel()
	keys := make([]string, len(backends))
	args := make([]any, 0, 2+len(backends))
	args = append(args, f.s.cfg.ReplicaID, f.s.cfg.InFlightLease.Milliseconds())
	for i, b := range backends {
		keys[i] = inflightKey(b)
		args = append(args, mine[i])
	}
	res, err := f.s.scripts.inflightSync.Run(ctx, f.s.rdb, keys, args...).Slice()
	if err != nil {
		f.s.health.observe(err)
		f.s.log.DebugContext(ctx, "in-flight heartbeat failed", "error", err)
		return
	}
	view := &remoteLoad{at: time.Now(), counts: make(map[string]map[string]int64, len(backends))}
	for i, r := range res {
		if i >= len(backends) {
			break
		}
		shares, _ := r.([]any)
		sum := map[string]int64{}
		for _, sh := range shares {
			if str, ok := sh.(string); ok {
				addCounts(sum, str)
			}
		}
		view.counts[backends[i]] = sum
	}
	f.remote.Store(view)
	f.mu.Lock()
	for _, b := range backends {
		if f.local[b] == nil {
			delete(f.forgotten, b) // withdrawn now
		}
	}
	f.mu.Unlock()
}

// encodeCounts renders positive counts as "class=n;class=n"; "" when there are none.
func encodeCounts(m map[string]int64) string {
	var b strings.Builder
	for class, n := range m {
		if n <= 0 {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte(';')
		}
		b.WriteString(class)
		b.WriteByte('=')
		b.WriteString(strconv.FormatInt(n, 10))
	}
	return b.String()
}

// maxShare bounds one replica's count for one class; larger values are garbage.
const maxShare = 1 << 31

// addCounts adds an encodeCounts string into sum, skipping malformed or absurd parts (the
// sum of a few thousand shares cannot overflow).
func addCounts(sum map[string]int64, s string) {
	for part := range strings.SplitSeq(s, ";") {
		class, num, ok := strings.Cut(part, "=")
		if !ok {
			continue
		}
		if n, err := strconv.ParseInt(num, 10, 64); err == nil && n > 0 && n <= maxShare {
			sum[class] += n
		}
	}
}

// inflightSyncSrc publishes one replica's in-flight counts and reads the other replicas'.
//
// KEYS[i]   inflightKey(backend i): hash replica id → "<deadline ms> <class=n;class=n>"
// ARGV[1]   replica id
// ARGV[2]   lease in ms: this replica's fields stay valid until Redis time + lease
// ARGV[2+i] this replica's counts for backend i; "" removes its field
// Returns   for each key, the list of the other replicas' live count strings.
// Fields past their deadline are deleted; each key expires at least one lease after its
// last write, so the counts of replicas that all died vanish on their own.
const inflightSyncSrc = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local me = ARGV[1]
local lease = tonumber(ARGV[2])
local out = {}
for i, key in ipairs(KEYS) do
  local mine = ARGV[2 + i]
  if mine == '' then
    redis.call('HDEL', key, me)
  else
    redis.call('HSET', key, me, (now + lease) .. ' ' .. mine)
  end
  local all = redis.call('HGETALL', key)
  local others = {}
  for j = 1, #all, 2 do
    local field, v = all[j], all[j + 1]
    if field ~= me then
      local sp = string.find(v, ' ', 1, true)
      local deadline = sp and tonumber(string.sub(v, 1, sp - 1))
      if deadline == nil or deadline < now then
        redis.call('HDEL', key, field)
      else
        others[#others + 1] = string.sub(v, sp + 1)
      end
    end
  end
  if mine ~= '' and redis.call('PTTL', key) < lease then
    redis.call('PEXPIRE', key, lease)
  end
  out[i] = others
end
return out
`
