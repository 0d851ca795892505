package state

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// jobMemory is the in-process JobStore for -R memory: same semantics as the Redis store,
// one mutex, nothing survives a restart.
type jobMemory struct {
	mu      sync.Mutex
	files   map[string]FileRecord
	fileBat map[string]map[string]bool
	batches map[string]*jobMemBatch
}

type jobMemLease struct {
	owner    string
	deadline int64 // ms
}

type jobMemBatch struct {
	rec     BatchRecord
	vlease  *jobMemLease
	flease  *jobMemLease
	fin     bool
	fmode   FinalizeMode
	next    int64
	chunks  []JobChunk
	leases  map[int64]*jobMemLease
	cdone   map[int64]bool
	done    map[int64]bool
	parts   []LinePart
	staged  map[string]bool
	active  bool
	created int64
}

// NewJobMemory returns an empty in-memory job store (not durable; one process only).
func NewJobMemory() JobStore {
	return &jobMemory{files: map[string]FileRecord{}, fileBat: map[string]map[string]bool{}, batches: map[string]*jobMemBatch{}}
}

func (m *jobMemory) CreateFile(_ context.Context, f FileRecord) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.files[f.ID] = f
	return nil
}

func (m *jobMemory) GetFile(_ context.Context, id string) (FileRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f, ok := m.files[id]
	if !ok {
		return FileRecord{}, fmt.Errorf("file %s: %w", id, ErrFileNotFound)
	}
	return f, nil
}

// jobPage cuts the page after the item with id after (missing → empty page).
func jobPage[T any](all []T, id func(T) string, after string, limit int) ([]T, bool) {
	start := 0
	if after != "" {
		i := slices.IndexFunc(all, func(t T) bool { return id(t) == after })
		if i < 0 {
			return nil, false
		}
		start = i + 1
	}
	rest := all[start:]
	if len(rest) > limit {
		return rest[:limit], true
	}
	return rest, false
}

func (m *jobMemory) ListFiles(_ context.Context, q FileQuery) ([]FileRecord, bool, error) {
	m.mu.Lock()
	var all []FileRecord
	for _, f := range m.files {
		if q.Purpose == "" || f.Purpose == q.Purpose {
			all = append(all, f)
		}
	}
	m.mu.Unlock()
	slices.SortFunc(all, func(a, b FileRecord) int {
		return cmp.Or(cmp.Compare(a.CreatedMS, b.CreatedMS), cmp.Compare(a.ID, b.ID))
	})
	if !q.Asc {
		slices.Reverse(all)
	}
	page, more := jobPage(all, func(f FileRecord) string { return f.ID }, q.After, q.Limit)
	return page, more, nil
}

func (m *jobMemory) DeleteFile(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.files[id]; !ok {
		return fmt.Errorf("file %s: %w", id, ErrFileNotFound)
	}
	delete(m.files, id)
	delete(m.fileBat, id)
	return nil
}

func (m *jobMemory) ExpiredFiles(_ context.Context, now int64, limit int) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ids []string
	for _, f := range m.files {
		if f.ExpiresAt > 0 && f.ExpiresAt <= now && len(ids) < limit {
			ids = append(ids, f.ID)
		}
	}
	return ids, nil
}

func (m *jobMemory) FileBatches(_ context.Context, fileID string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ids []string
	for id := range m.fileBat[fileID] {
		ids = append(ids, id)
	}
	return ids, nil
}

func (m *jobMemory) CreateBatch(_ context.Context, spec BatchSpec) (BatchRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b := &jobMemBatch{
		rec:    BatchRecord{BatchSpec: spec, Status: BatchValidating},
		leases: map[int64]*jobMemLease{}, cdone: map[int64]bool{}, done: map[int64]bool{},
		active: true, created: spec.CreatedMS,
	}
	m.batches[spec.ID] = b
	if m.fileBat[spec.InputFileID] == nil {
		m.fileBat[spec.InputFileID] = map[string]bool{}
	}
	m.fileBat[spec.InputFileID][spec.ID] = true
	return b.record(), nil
}

// record returns a copy safe to hand out.
func (b *jobMemBatch) record() BatchRecord {
	r := b.rec
	r.Errors = slices.Clone(r.Errors)
	r.Metadata = cloneMap(r.Metadata)
	return r
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func (m *jobMemory) get(id string) (*jobMemBatch, error) {
	b, ok := m.batches[id]
	if !ok {
		return nil, fmt.Errorf("batch %s: %w", id, ErrBatchNotFound)
	}
	return b, nil
}

func (m *jobMemory) GetBatch(_ context.Context, id string) (BatchRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, err := m.get(id)
	if err != nil {
		return BatchRecord{}, err
	}
	return b.record(), nil
}

func (m *jobMemory) ListBatches(_ context.Context, after string, limit int) ([]BatchRecord, bool, error) {
	m.mu.Lock()
	all := make([]*jobMemBatch, 0, len(m.batches))
	for _, b := range m.batches {
		all = append(all, b)
	}
	slices.SortFunc(all, func(a, b *jobMemBatch) int {
		return cmp.Or(cmp.Compare(b.created, a.created), cmp.Compare(b.rec.ID, a.rec.ID))
	})
	page, more := jobPage(all, func(b *jobMemBatch) string { return b.rec.ID }, after, limit)
	out := make([]BatchRecord, len(page))
	for i, b := range page {
		out[i] = b.record()
	}
	m.mu.Unlock()
	return out, more, nil
}

func (m *jobMemory) ActiveBatches(_ context.Context) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ids []string
	for id, b := range m.batches {
		if b.active {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

func (m *jobMemory) CancelBatch(_ context.Context, id string, now time.Time) (BatchRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, err := m.get(id)
	if err != nil {
		return BatchRecord{}, err
	}
	switch st := b.rec.Status; {
	case !b.fin && (st == BatchValidating || st == BatchInProgress):
		b.rec.Status, b.rec.CancellingAt = BatchCancelling, now.Unix()
	case st == BatchCompleted || st == BatchFailed || st == BatchExpired:
		return b.record(), fmt.Errorf("cancelling batch %s with status %s: %w", id, st, ErrBatchConflict)
	}
	return b.record(), nil
}
