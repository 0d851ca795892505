package sim

import (
	"sync"
	"sync/atomic"
)

// counters count what the server received and answered, for tests.
type counters struct {
	prio0    atomic.Int64 // requests with priority 0 (the common case, lock-free)
	mu       sync.Mutex
	byPrio   map[int]int64 // non-zero priorities
	statuses [600]atomic.Int64
}

func (c *counters) init() { c.byPrio = map[int]int64{} }

func (c *counters) priority(p int) {
	if p == 0 {
		c.prio0.Add(1)
		return
	}
	c.mu.Lock()
	c.byPrio[p]++
	c.mu.Unlock()
}

func (c *counters) status(code int) {
	if code >= 0 && code < len(c.statuses) {
		c.statuses[code].Add(1)
	}
}

// Snapshot is the state of the simulator at one instant. Each engine's part is read
// under that engine's lock, so it is self-consistent.
type Snapshot struct {
	// Running and Waiting are summed over engines.
	Running, Waiting int
	// KVUsage is the mean over engines of used blocks / total blocks.
	KVUsage float64
	// KVBlocksUsed is summed over engines.
	KVBlocksUsed int
	// PrefixQueries and PrefixHits are cumulative prompt tokens looked up in / found in the
	// prefix cache, summed over engines.
	PrefixQueries, PrefixHits int64
	// Preemptions is the cumulative number of preemptions, summed over engines.
	Preemptions int64
	// Finished is the number of sequences completed (each completion prompt counts).
	Finished int64
	// RunningByPriority and WaitingByPriority count sequences per priority value.
	RunningByPriority, WaitingByPriority map[int]int
	// ReceivedByPriority counts generation requests received per `priority` value,
	// including those then rejected (for example non-zero priority under fcfs).
	ReceivedByPriority map[int]int64
	// Statuses counts responses per HTTP status code, over every endpoint except
	// /health, /metrics, /load and /sim/control.
	Statuses map[int]int64
	// InFlight is the number of generation requests being handled (GET /load).
	InFlight int64
	// Engines is the per-engine breakdown.
	Engines []EngineSnapshot
}

// EngineSnapshot is one engine's state.
type EngineSnapshot struct {
	Index                     int
	Running, Waiting          int
	KVUsage                   float64
	KVBlocksUsed, KVBlocks    int
	CachedBlocks              int // blocks holding a reusable prefix hash (in use or free)
	PrefixQueries, PrefixHits int64
	Preemptions               int64
	Finished                  int64
	RunningByPriority         map[int]int
	WaitingByPriority         map[int]int
}

// engineView is a consistent copy of an engine for snapshots and metrics.
type engineView struct {
	EngineSnapshot
	stats                 engineStats
	runningLoRA, waitLoRA map[string]bool
}

func (e *engine) view() engineView {
	e.mu.Lock()
	defer e.mu.Unlock()
	v := engineView{
		EngineSnapshot: EngineSnapshot{
			Index:             e.index,
			Running:           len(e.running),
			Waiting:           len(e.waiting),
			KVUsage:           e.kv.usage(),
			KVBlocksUsed:      e.kv.used(),
			KVBlocks:          e.kv.total(),
			CachedBlocks:      len(e.kv.cached),
			PrefixQueries:     e.stats.prefixQueries,
			PrefixHits:        e.stats.prefixHits,
			Preemptions:       e.stats.preemptions,
			Finished:          e.stats.finished,
			RunningByPriority: map[int]int{},
			WaitingByPriority: map[int]int{},
		},
		stats:       e.stats.clone(),
		runningLoRA: map[string]bool{},
		waitLoRA:    map[string]bool{},
	}
	for _, s := range e.running {
		v.RunningByPriority[s.priority]++
		if s.lora != "" {
			v.runningLoRA[s.lora] = true
		}
	}
	for _, s := range e.waiting {
		v.WaitingByPriority[s.priority]++
		if s.lora != "" {
			v.waitLoRA[s.lora] = true
		}
	}
	return v
}

// Snapshot returns the engines' state and the request counters.
func (s *Server) Snapshot() Snapshot {
	snap := Snapshot{
		RunningByPriority:  map[int]int{},
		WaitingByPriority:  map[int]int{},
		ReceivedByPriority: map[int]int64{},
		Statuses:           map[int]int64{},
		InFlight:           s.load.Load(),
	}
	for _, e := range s.engines {
		v := e.view()
		es := v.EngineSnapshot
		snap.Running += es.Running
		snap.Waiting += es.Waiting
		snap.KVUsage += es.KVUsage / float64(len(s.engines))
		snap.KVBlocksUsed += es.KVBlocksUsed
		snap.PrefixQueries += es.PrefixQueries
		snap.PrefixHits += es.PrefixHits
		snap.Preemptions += es.Preemptions
		snap.Finished += es.Finished
		for p, n := range es.RunningByPriority {
			snap.RunningByPriority[p] += n
		}
		for p, n := range es.WaitingByPriority {
			snap.WaitingByPriority[p] += n
		}
		snap.Engines = append(snap.Engines, es)
	}
	if n := s.counts.prio0.Load(); n > 0 {
		snap.ReceivedByPriority[0] = n
	}
	s.counts.mu.Lock()
	for p, n := range s.counts.byPrio {
		snap.ReceivedByPriority[p] = n
	}
	s.counts.mu.Unlock()
	for code := range s.counts.statuses {
		if n := s.counts.statuses[code].Load(); n > 0 {
			snap.Statuses[code] = n
		}
	}
	return snap
}
