package state

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"
)

func (l *jobMemLease) live(nowMS int64) bool { return l != nil && l.deadline > nowMS }

// takesResults reports whether parts may still be staged and committed: finalization has
// not begun (the precondition batchStageScript and batchCommitScript check in Redis).
func (b *jobMemBatch) takesResults() bool {
	return !b.fin && (b.rec.Status == BatchInProgress || b.rec.Status == BatchCancelling)
}

func (m *jobMemory) ClaimValidation(_ context.Context, id, owner string, now time.Time, lease time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, err := m.get(id)
	if err != nil || b.rec.Status != BatchValidating {
		return false, nil
	}
	if b.vlease.live(now.UnixMilli()) && b.vlease.owner != owner {
		return false, nil
	}
	b.vlease = &jobMemLease{owner: owner, deadline: batchDeadline(now, lease)}
	return true, nil
}

func (m *jobMemory) StartBatch(_ context.Context, id string, v BatchValidated, now time.Time) (BatchStatus, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, err := m.get(id)
	if err != nil {
		return "", err
	}
	if b.rec.Status != BatchValidating {
		return b.rec.Status, nil
	}
	b.chunks = append([]JobChunk(nil), v.Chunks...)
	b.rec.Status, b.rec.InProgressAt = BatchInProgress, now.Unix()
	b.rec.Total, b.rec.Model, b.rec.Chunks = v.Total, v.Model, int64(len(v.Chunks))
	b.vlease = nil
	return b.rec.Status, nil
}

func (m *jobMemory) FailBatch(_ context.Context, id string, errs []BatchError, now time.Time) (BatchStatus, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, err := m.get(id)
	if err != nil {
		return "", err
	}
	if b.rec.Status != BatchValidating {
		return b.rec.Status, nil
	}
	b.rec.Status, b.rec.FailedAt, b.rec.Errors = BatchFailed, now.Unix(), append([]BatchError(nil), errs...)
	b.vlease = nil
	return b.rec.Status, nil
}

func (m *jobMemory) ClaimChunk(_ context.Context, id, owner string, now time.Time, lease time.Duration) (JobChunk, bool, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, err := m.get(id)
	if err != nil || b.rec.Status != BatchInProgress || b.fin || now.Unix() >= b.rec.ExpiresAt {
		return JobChunk{}, false, false, nil
	}
	l := &jobMemLease{owner: owner, deadline: batchDeadline(now, lease)}
	for i := int64(0); i < b.next; i++ { // lowest lapsed lease first
		if old, ok := b.leases[i]; ok && !old.live(now.UnixMilli()) {
			b.leases[i] = l
			return b.chunks[i], true, true, nil
		}
	}
	if b.next >= int64(len(b.chunks)) {
		return JobChunk{}, false, false, nil
	}
	i := b.next
	b.next++
	b.leases[i] = l
	return b.chunks[i], false, true, nil
}

func (m *jobMemory) Renew(_ context.Context, id, owner string, chunk int64, now time.Time, lease time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, err := m.get(id)
	if err != nil {
		return false, nil
	}
	var l *jobMemLease
	switch chunk {
	case -1:
		l = b.vlease
	case -2:
		l = b.flease
	default:
		l = b.leases[chunk]
	}
	if l == nil || l.owner != owner {
		return false, nil
	}
	l.deadline = batchDeadline(now, lease)
	return true, nil
}

func (m *jobMemory) ReleaseChunk(_ context.Context, id, owner string, chunk int64, done bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, err := m.get(id)
	if err != nil {
		return err
	}
	l := b.leases[chunk]
	switch {
	case done:
		if !b.cdone[chunk] {
			b.cdone[chunk] = true
			b.rec.ChunksDone++
		}
		delete(b.leases, chunk)
	case l != nil && l.owner == owner:
		b.leases[chunk] = &jobMemLease{owner: owner}
	}
	return nil
}

func (m *jobMemory) DoneLines(_ context.Context, id string, first, n int64) ([]bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, err := m.get(id)
	if err != nil {
		return nil, err
	}
	out := make([]bool, n)
	for i := range out {
		out[i] = b.done[first+int64(i)]
	}
	return out, nil
}

func (m *jobMemory) CommitLines(_ context.Context, id string, p LinePart) ([]int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, err := m.get(id)
	if err != nil {
		return nil, err
	}
	if !b.takesResults() {
		return nil, fmt.Errorf("committing lines of batch %s: finalization began: %w", id, ErrBatchConflict)
	}
	var dups []int64
	for _, l := range p.Lines {
		if b.done[l.Line] {
			dups = append(dups, l.Line)
		}
	}
	if len(dups) > 0 {
		return dups, nil
	}
	for _, l := range p.Lines {
		b.done[l.Line] = true
		if l.Failed {
			b.rec.Failed++
		} else {
			b.rec.Completed++
		}
	}
	b.rec.Usage.Add(p.Usage)
	b.parts = append(b.parts, LinePart{OKBlob: p.OKBlob, ErrBlob: p.ErrBlob})
	delete(b.staged, p.Staged)
	return nil, nil
}

func (m *jobMemory) StagePart(_ context.Context, id, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, err := m.get(id)
	if err != nil {
		return err
	}
	if !b.takesResults() {
		return fmt.Errorf("staging a part of batch %s: finalization began: %w", id, ErrBatchConflict)
	}
	if b.staged == nil {
		b.staged = map[string]bool{}
	}
	b.staged[name] = true
	return nil
}

func (m *jobMemory) StagedParts(_ context.Context, id string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, err := m.get(id)
	if err != nil {
		return nil, nil
	}
	return slices.Sorted(maps.Keys(b.staged)), nil
}

func (m *jobMemory) ClaimFinalize(_ context.Context, id, owner string, now time.Time, lease time.Duration) (FinalizeMode, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, err := m.get(id)
	if err != nil {
		return "", false, nil
	}
	nowMS := now.UnixMilli()
	l := &jobMemLease{owner: owner, deadline: batchDeadline(now, lease)}
	st := b.rec.Status
	if b.fin {
		if st != BatchInProgress && st != BatchFinalizing && st != BatchCancelling || b.flease.live(nowMS) {
			return "", false, nil
		}
		b.flease = l
		return b.fmode, true, nil
	}
	var mode FinalizeMode
	switch {
	case st == BatchInProgress && b.rec.ChunksDone >= b.rec.Chunks:
		mode = FinalizeComplete
	case st == BatchInProgress && now.Unix() >= b.rec.ExpiresAt:
		mode = FinalizeExpire
	case st == BatchCancelling && !b.vlease.live(nowMS):
		mode = FinalizeCancel
	default:
		return "", false, nil
	}
	if mode == FinalizeComplete {
		b.rec.Status, b.rec.FinalizingAt = BatchFinalizing, now.Unix()
	} else {
		for _, cl := range b.leases {
			if cl.live(nowMS) {
				return "", false, nil
			}
		}
	}
	b.fin, b.fmode, b.flease = true, mode, l
	return mode, true, nil
}

func (m *jobMemory) Parts(_ context.Context, id string) ([]LinePart, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, err := m.get(id)
	if err != nil {
		return nil, err
	}
	return append([]LinePart(nil), b.parts...), nil
}

func (m *jobMemory) FinishBatch(_ context.Context, id, owner string, f BatchFinish, now time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, err := m.get(id)
	if err != nil {
		return false, err
	}
	if !b.fin || b.rec.Status.Terminal() || b.flease == nil || b.flease.owner != owner {
		return false, nil
	}
	r := &b.rec
	r.Status, r.OutputFileID, r.ErrorFileID = f.Status, f.OutputFileID, f.ErrorFileID
	r.Failed += f.AddFailed
	switch f.Status {
	case BatchCompleted:
		r.CompletedAt = now.Unix()
	case BatchExpired:
		r.ExpiredAt = now.Unix()
	case BatchCancelled:
		r.CancelledAt = now.Unix()
	}
	b.flease, b.vlease, b.leases = nil, nil, map[int64]*jobMemLease{}
	return true, nil
}

func (m *jobMemory) PurgeBatchWork(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, err := m.get(id)
	if err != nil {
		return nil
	}
	b.chunks, b.cdone, b.done, b.parts, b.staged, b.active = nil, nil, nil, nil, nil, false
	return nil
}
