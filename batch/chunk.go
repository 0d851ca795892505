package batch

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/vllm-proxy/vllm-proxy/state"
)

// pendingLine is a line of a chunk still to execute.
type pendingLine struct {
	idx      int64 // 0-based task number
	customID string
	body     []byte
	model    string
	prefix   []byte // what prompts start with, to keep sharing lines together
}

// processChunk executes the lines of chunk c that have no committed result yet, commits
// their results in parts, and releases the chunk: done when every line has a result.
func (w *Workers) processChunk(ctx context.Context, rec state.BatchRecord, c state.JobChunk) {
	done, err := w.jobs.DoneLines(ctx, rec.ID, c.First, c.N)
	if err != nil {
		w.log.WarnContext(ctx, "reading chunk progress failed", "batch", rec.ID, "chunk", c.Index, "err", err)
		w.giveBack(ctx, rec.ID, c, false)
		return
	}
	lines, err := w.readChunk(ctx, rec.InputFileID, c, done)
	if err != nil {
		w.log.WarnContext(ctx, "reading chunk lines failed", "batch", rec.ID, "chunk", c.Index, "err", err)
		w.giveBack(ctx, rec.ID, c, false)
		return
	}
	already := c.N - int64(len(lines))
	// Lines sharing a prompt prefix go out next to each other: their KV blocks are then
	// still cached on the backend the router picks for them.
	slices.SortStableFunc(lines, func(a, b pendingLine) int { return cmp.Compare(string(a.prefix), string(b.prefix)) })

	g := &gate{w: w, rec: rec}
	col := &collector{w: w, batch: rec.ID, chunk: c.Index}
	flushDone, stopFlush := make(chan struct{}), make(chan struct{})
	go func() { // time-based flushes; owned and awaited here
		defer close(flushDone)
		t := time.NewTicker(w.cfg.FlushInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-stopFlush:
				return
			case <-t.C:
				// With the task's ctx, not one cancelled when the chunk's lines are all
				// back: a commit cut short would leave its lines to be run again.
				col.flush(ctx, false)
			}
		}
	}()
	var wg sync.WaitGroup
dispatch:
	for _, l := range lines {
		if g.stop(ctx) {
			break
		}
		s := &slot{sem: w.sem}
		if !s.acquire(ctx) {
			break dispatch
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, ok := w.execute(ctx, rec, l, g, s)
			if ok { // wait, still counted in flight, until the uncommitted results leave room
				select {
				case w.results <- struct{}{}:
				case <-ctx.Done():
					ok = false // not recorded: the line runs again after the lease lapses
				}
			}
			s.release() // dispatch slots are for dispatching: flushes (blob write, commit) run outside them
			if ok {
				col.add(ctx, out)
			}
		}()
	}
	wg.Wait()
	close(stopFlush)
	<-flushDone
	committed := col.flush(ctx, true)
	w.giveBack(ctx, rec.ID, c, already+committed == c.N)
}

// giveBack releases the chunk lease; done only when all its lines have results.
func (w *Workers) giveBack(ctx context.Context, batch string, c state.JobChunk, done bool) {
	sctx, cancel, ok := w.storeCtx(ctx)
	defer cancel()
	if !ok {
		return // abandoned as in a crash: the lease lapses
	}
	if err := w.jobs.ReleaseChunk(sctx, batch, w.cfg.ReplicaID, c.Index, done); err != nil {
		w.log.WarnContext(ctx, "releasing chunk failed", "batch", batch, "chunk", c.Index, "err", err)
	}
	w.poke()
}

// readChunk reads the chunk's task lines whose done flag is false.
func (w *Workers) readChunk(ctx context.Context, file string, c state.JobChunk, done []bool) ([]pendingLine, error) {
	rc, err := w.blobs.Open(ctx, file, c.Offset)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	lr := &lineReader{br: bufio.NewReaderSize(io.LimitReader(rc, c.Length), 64<<10), max: w.cfg.MaxLineBytes}
	var out []pendingLine
	for i := int64(0); i < c.N; {
		line, _, _, tooLong, err := lr.next()
		if err != nil {
			return nil, fmt.Errorf("chunk %d ends after %d of %d lines: %w", c.Index, i, c.N, err)
		}
		if tooLong || len(trimSpace(line)) == 0 {
			continue
		}
		if !done[i] {
			p, err := parsePending(line)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", c.First+i, err)
			}
			p.idx = c.First + i
			out = append(out, p)
		}
		i++
	}
	return out, nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\r') {
		b = b[1:]
	}
	return b
}

// parsePending reads a validated line with the same scanner validation used, so both
// agree on custom_id and model whatever duplicates or key spellings the line holds.
func parsePending(line []byte) (pendingLine, error) {
	in, ok := scanTaskLine(line)
	if !ok {
		return pendingLine{}, errors.New("decoding validated line: not a JSON object")
	}
	var p pendingLine
	if p.customID, ok = jsonString(in.customID); !ok {
		return pendingLine{}, errors.New("decoding custom_id: not a string")
	}
	p.body = slices.Clone(in.body)
	b, _ := scanBody(p.body)
	p.model, _ = jsonString(b.model)
	switch {
	case len(b.messages) > 0:
		p.prefix = b.messages
	case len(b.prompt) > 0:
		p.prefix = b.prompt
	default:
		p.prefix = b.input
	}
	if len(p.prefix) > 256 {
		p.prefix = p.prefix[:256]
	}
	return p, nil
}

// gate says when a chunk must stop sending lines: cancel, expiry, shutdown. It rereads
// the batch at most every 250ms.
type gate struct {
	w       *Workers
	rec     state.BatchRecord
	mu      sync.Mutex
	checked time.Time
	stopped bool
}

func (g *gate) stop(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	now := g.w.cfg.Now()
	if now.Unix() >= g.rec.ExpiresAt {
		return true
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped {
		return true
	}
	if now.Sub(g.checked) >= 250*time.Millisecond {
		g.checked = now
		r, err := g.w.jobs.GetBatch(ctx, g.rec.ID)
		if err == nil && r.Status != state.BatchInProgress {
			g.stopped = true
		} else if errors.Is(err, state.ErrBatchNotFound) {
			g.stopped = true
		}
	}
	return g.stopped
}
