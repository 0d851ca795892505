package state

import "sync"

// memBudget is the in-process twin of the Redis batch budget: the same lease and target
// rules for one replica (memory mode), and the fallback while Redis is unreachable.
// A slot lives until released: in one process nothing can die without its slots, so
// no lease is needed. Safe for concurrent use.
type memBudget struct {
	mu       sync.Mutex
	backends map[string]*memBackend
}

type memBackend struct {
	slots  map[string]bool
	target int
}

func newMemBudget() *memBudget {
	return &memBudget{backends: map[string]*memBackend{}}
}

// acquire sets the backend's target and takes slot id ("" = none) if there is room.
func (m *memBudget) acquire(backend, id string, target int) (bool, BudgetView) {
	m.mu.Lock()
	defer m.mu.Unlock()
	be := m.backends[backend]
	if be == nil {
		be = &memBackend{slots: map[string]bool{}}
		m.backends[backend] = be
	}
	be.target = target
	granted := false
	if id != "" && len(be.slots) < target {
		be.slots[id] = true
		granted = true
	}
	return granted, BudgetView{Target: target, InFlight: len(be.slots)}
}

func (m *memBudget) release(backend, id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if be := m.backends[backend]; be != nil {
		delete(be.slots, id)
		if len(be.slots) == 0 {
			delete(m.backends, backend)
		}
	}
}

func (m *memBudget) count(backend string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if be := m.backends[backend]; be != nil {
		return len(be.slots)
	}
	return 0
}

func (m *memBudget) clear() {
	m.mu.Lock()
	clear(m.backends)
	m.mu.Unlock()
}
