package state

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// BudgetConfig tunes a [BatchBudget]. Zero fields take the defaults named on each.
type BudgetConfig struct {
	// LeaseTTL is how long a batch slot lease, and a published target, stays valid
	// without renewal: the slots of a replica that died come back after at most this
	// long. Default 10s.
	LeaseTTL time.Duration
	// RenewInterval is how often held leases are extended. It must be below LeaseTTL/2.
	// Default LeaseTTL/3.
	RenewInterval time.Duration
}

// Default budget settings.
const DefaultBudgetLeaseTTL = 10 * time.Second

func (c BudgetConfig) withDefaults() BudgetConfig {
	c.LeaseTTL = cmp.Or(c.LeaseTTL, DefaultBudgetLeaseTTL)
	c.RenewInterval = cmp.Or(c.RenewInterval, c.LeaseTTL/3)
	return c
}

// Validate reports every problem with c, joined.
func (c BudgetConfig) Validate() error {
	var errs []error
	if c.LeaseTTL < 0 {
		errs = append(errs, fmt.Errorf("budget lease_ttl must not be negative (got %s)", c.LeaseTTL))
	}
	if c.RenewInterval < 0 {
		errs = append(errs, fmt.Errorf("budget renew_interval must not be negative (got %s)", c.RenewInterval))
	}
	if d := c.withDefaults(); c.LeaseTTL >= 0 && c.RenewInterval >= 0 && d.RenewInterval*2 > d.LeaseTTL {
		errs = append(errs, fmt.Errorf("budget renew_interval (%s) must be at most half of lease_ttl (%s)", d.RenewInterval, d.LeaseTTL))
	}
	return errors.Join(errs...)
}

// BudgetView is a backend's budget as of one call.
type BudgetView struct {
	// Target is the effective batch concurrency target: the lowest target a live replica
	// published (this one's included).
	Target int
	// InFlight is the number of batch slots held, over every live replica.
	InFlight int
}

// BatchBudget is the global per-backend batch budget that every proxy replica's batch
// traffic obeys together: each replica publishes its batch concurrency target per
// backend, and a batch request holds a slot, a lease in Redis, while it runs. A slot is
// granted only while the slots held on the backend are fewer than the lowest live target.
// The replica's renewal loop (Start) extends its leases; the leases of a replica that
// dies lapse after BudgetConfig.LeaseTTL, so its slots come back on their own.
//
// In memory mode (-R memory) the same rules run in process for the one replica. While
// Redis is unreachable a replica falls back to counting its own slots against its own
// target (the budget is then per replica, not global) and goes back to Redis by itself.
// All methods are safe for concurrent use.
type BatchBudget struct {
	s       *Store
	cfg     BudgetConfig
	acquire *redis.Script
	renew   *redis.Script
	local   *memBudget // memory mode, and the fallback while Redis is unreachable
	seq     atomic.Uint64

	mu       sync.Mutex
	held     map[string]map[string]bool // backend → lease ids held in Redis
	renewing bool
	raced    []slotRef // released while a renewal was running: removed again after it

	life    sync.Mutex
	started bool
	cancel  context.CancelFunc
	done    chan struct{}
}

type slotRef struct{ backend, id string }

// localPrefix marks lease ids of slots counted by the local fallback, not in Redis.
const localPrefix = "local:"

// NewBatchBudget builds the budget on s. Call Start to renew leases.
func NewBatchBudget(s *Store, cfg BudgetConfig) (*BatchBudget, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("batch budget config: %w", err)
	}
	cfg = cfg.withDefaults()
	return &BatchBudget{
		s: s, cfg: cfg,
		acquire: redis.NewScript(budgetAcquireSrc),
		renew:   redis.NewScript(budgetRenewSrc),
		local:   newMemBudget(),
		held:    map[string]map[string]bool{},
	}, nil
}

// Acquire publishes target as this replica's batch concurrency target for backend and
// takes one batch slot if the budget has room. It returns the slot's lease id, or ""
// when the backend is at its budget; view is the budget after the call. The caller
// must Release every lease it got. On a Redis error the local fallback answers and
// the error is returned too, for logging.
func (b *BatchBudget) Acquire(ctx context.Context, backend string, target int) (lease string, view BudgetView, err error) {
	return b.call(ctx, backend, target, true)
}

// Publish publishes target as this replica's target for backend without taking a slot,
// and returns the budget.
func (b *BatchBudget) Publish(ctx context.Context, backend string, target int) (BudgetView, error) {
	_, v, err := b.call(ctx, backend, target, false)
	return v, err
}

func (b *BatchBudget) call(ctx context.Context, backend string, target int, take bool) (string, BudgetView, error) {
	target = max(target, 0)
	if b.s.rdb == nil || !b.s.Connected() {
		id, v := b.localCall(backend, target, take)
		if b.s.rdb != nil {
			return id, v, fmt.Errorf("batch budget of %s: %w", backend, ErrUnavailable)
		}
		return id, v, nil
	}
	id := ""
	if take {
		id = b.s.cfg.ReplicaID + ":" + strconv.FormatUint(b.seq.Add(1), 36)
	}
	res, err := b.acquire.Run(ctx, b.s.rdb, []string{budgetSlotsKey(backend), budgetTargetsKey(backend)},
		b.s.cfg.ReplicaID, id, b.cfg.LeaseTTL.Milliseconds(), target).Int64Slice()
	if err == nil && len(res) != 3 {
		err = fmt.Errorf("unexpected reply %v", res)
	}
	if err != nil {
		b.s.health.observe(err)
		lid, v := b.localCall(backend, target, take)
		return lid, v, fmt.Errorf("batch budget of %s: %w", backend, err)
	}
	v := BudgetView{InFlight: int(res[1]), Target: int(res[2])}
	if res[0] != 1 {
		return "", v, nil
	}
	b.mu.Lock()
	m := b.held[backend]
	if m == nil {
		m = map[string]bool{}
		b.held[backend] = m
	}
	m[id] = true
	b.mu.Unlock()
	return id, v, nil
}

func (b *BatchBudget) localCall(backend string, target int, take bool) (string, BudgetView) {
	id := ""
	if take {
		id = localPrefix + strconv.FormatUint(b.seq.Add(1), 36)
	}
	granted, v := b.local.acquire(backend, id, target)
	if !granted {
		id = ""
	}
	return id, v
}

// Release gives back a slot Acquire granted. Releasing twice, or a lease that lapsed,
// is harmless. On a Redis error the lease lapses by itself after LeaseTTL.
func (b *BatchBudget) Release(ctx context.Context, backend, lease string) error {
	if lease == "" {
		return nil
	}
	if strings.HasPrefix(lease, localPrefix) {
		b.local.release(backend, lease)
		return nil
	}
	b.mu.Lock()
	if m := b.held[backend]; m != nil {
		delete(m, lease)
		if len(m) == 0 {
			delete(b.held, backend)
		}
	}
	if b.renewing {
		b.raced = append(b.raced, slotRef{backend, lease})
	}
	b.mu.Unlock()
	if b.s.rdb == nil {
		return nil
	}
	if err := b.s.rdb.ZRem(ctx, budgetSlotsKey(backend), lease).Err(); err != nil {
		b.s.health.observe(err)
		return fmt.Errorf("releasing a batch slot of %s: %w", backend, err)
	}
	return nil
}

// Held is the number of slots this replica holds on backend (Redis and fallback).
func (b *BatchBudget) Held(backend string) int {
	b.mu.Lock()
	n := len(b.held[backend])
	b.mu.Unlock()
	return n + b.local.count(backend)
}

// Start launches the lease renewal loop. Stop ends it and releases every held slot;
// cancelling ctx instead ends it without releasing anything, as a crash would (the
// leases then lapse after LeaseTTL). Start may be called once.
func (b *BatchBudget) Start(ctx context.Context) error {
	b.life.Lock()
	defer b.life.Unlock()
	if b.started {
		return errors.New("batch budget: already started")
	}
	b.started = true
	ctx, b.cancel = context.WithCancel(ctx)
	b.done = make(chan struct{})
	go func() {
		defer close(b.done)
		b.run(ctx)
	}()
	return nil
}

// Stop releases every slot this replica holds and stops the renewal loop, waiting for
// it. It is idempotent.
func (b *BatchBudget) Stop() {
	b.life.Lock()
	cancel, done := b.cancel, b.done
	b.cancel = nil
	b.life.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
	b.releaseAll()
}

func (b *BatchBudget) run(ctx context.Context) {
	t := time.NewTicker(b.cfg.RenewInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if b.s.rdb != nil && b.s.Connected() {
			b.renewHeld(ctx)
		}
	}
}

// renewHeld extends every lease held in Redis in one script call.
func (b *BatchBudget) renewHeld(ctx context.Context) {
	b.mu.Lock()
	if len(b.held) == 0 {
		b.mu.Unlock()
		return
	}
	keys := make([]string, 0, len(b.held))
	args := make([]any, 0, 1+len(b.held))
	args = append(args, b.cfg.LeaseTTL.Milliseconds())
	for backend, ids := range b.held {
		keys = append(keys, budgetSlotsKey(backend))
		list := make([]string, 0, len(ids))
		for id := range ids {
			list = append(list, id)
		}
		args = append(args, strings.Join(list, " "))
	}
	b.renewing = true
	b.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, b.s.cfg.CommandTimeout)
	defer cancel()
	err := b.renew.Run(ctx, b.s.rdb, keys, args...).Err()
	b.mu.Lock()
	b.renewing = false
	raced := b.raced
	b.raced = nil
	b.mu.Unlock()
	if err != nil {
		b.s.health.observe(err)
		b.s.log.DebugContext(ctx, "renewing batch slot leases failed", "error", err)
	}
	for _, r := range raced { // a renewal may have put back a slot released meanwhile
		_ = b.s.rdb.ZRem(ctx, budgetSlotsKey(r.backend), r.id).Err()
	}
}

// releaseAll gives back every slot held, in Redis and locally (at Stop).
func (b *BatchBudget) releaseAll() {
	b.local.clear()
	b.mu.Lock()
	held := b.held
	b.held = map[string]map[string]bool{}
	b.mu.Unlock()
	if b.s.rdb == nil || len(held) == 0 || !b.s.Connected() {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(b.s.ctx), b.s.cfg.CommandTimeout)
	defer cancel()
	for backend, ids := range held {
		members := make([]any, 0, len(ids))
		for id := range ids {
			members = append(members, id)
		}
		if err := b.s.rdb.ZRem(ctx, budgetSlotsKey(backend), members...).Err(); err != nil {
			b.s.log.DebugContext(ctx, "releasing batch slots failed", "backend", backend, "error", err)
			return
		}
	}
}
