package batch

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/vllm-proxy/vllm-proxy/state"
)

// flushBytes is the most result bytes a chunk keeps before writing a part.
const flushBytes = 1 << 20

// collector gathers a chunk's finished lines and commits them in parts: it writes the
// success and error lines to two blobs, then records the part with one CommitLines call.
// A part whose lines another worker recorded first is rewritten without them, so every
// line is recorded exactly once. Safe for concurrent use.
type collector struct {
	w     *Workers
	batch string
	chunk int64

	mu      sync.Mutex
	pending []lineOutcome
	bytes   int

	flushMu  sync.Mutex
	resolved int64 // lines now recorded (by us or, for duplicates, by someone else)
}

func (c *collector) add(ctx context.Context, o lineOutcome) {
	c.mu.Lock()
	c.pending = append(c.pending, o)
	c.bytes += len(o.json)
	full := len(c.pending) >= c.w.cfg.FlushLines || c.bytes >= flushBytes
	c.mu.Unlock()
	if full {
		c.flush(ctx, false)
	}
}

// flush commits what is pending and returns how many lines are resolved so far. The final
// flush also runs during a graceful Stop (results already paid for are kept).
func (c *collector) flush(ctx context.Context, final bool) int64 {
	c.flushMu.Lock()
	defer c.flushMu.Unlock()
	c.mu.Lock()
	lines := c.pending
	c.pending, c.bytes = nil, 0
	c.mu.Unlock()
	if len(lines) == 0 {
		return c.resolved
	}
	defer func() { // committed, dropped or abandoned: their result tokens are free
		for range lines {
			<-c.w.results
		}
	}()
	if final {
		sctx, cancel, ok := c.w.storeCtx(ctx)
		defer cancel()
		if !ok {
			return c.resolved
		}
		ctx = sctx
	}
	c.commit(ctx, lines)
	return c.resolved
}

func (c *collector) commit(ctx context.Context, lines []lineOutcome) {
	w := c.w
	backoff := 50 * time.Millisecond
	var (
		part      state.LinePart
		written   bool // part holds exactly lines
		uncertain bool // a CommitLines of part failed in a way that may hide a success
	)
	for len(lines) > 0 {
		var err error
		if !written {
			part, err = c.writePart(ctx, lines)
			written = err == nil
			if errors.Is(err, state.ErrBatchConflict) || errors.Is(err, state.ErrBatchNotFound) {
				return // finalization began: these results are too late
			}
		}
		if err == nil {
			var dups []int64
			dups, err = w.jobs.CommitLines(ctx, c.batch, part)
			if uncertain && (err == nil && len(dups) == len(part.Lines) || errors.Is(err, state.ErrBatchConflict)) {
				// Every line is taken, or finalization began: was it by our earlier try?
				mine, lerr := c.listed(ctx, part)
				switch {
				case lerr != nil:
					err = lerr
				case mine:
					c.recorded(part)
					return
				}
			}
			switch {
			case err == nil && len(dups) == 0:
				c.recorded(part)
				return
			case err == nil: // drop the lines someone else recorded, write the rest again
				c.deletePart(ctx, part)
				w.m.linesDuplicate.Add(float64(len(dups)))
				c.resolved += int64(len(dups))
				lines = withoutLines(lines, dups)
				written, uncertain = false, false
				continue
			case errors.Is(err, state.ErrBatchConflict), errors.Is(err, state.ErrBatchNotFound):
				c.deletePart(ctx, part)
				return // finalization began: these results are too late
			}
			// Any other error may hide a commit that happened: the same part is committed
			// again, so its blobs are never orphaned, and a refusal is checked against the
			// parts list.
			uncertain = true
		}
		w.log.WarnContext(ctx, "committing batch results failed; retrying", "batch", c.batch, "chunk", c.chunk, "err", err)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return // not recorded: the lines run again after the lease lapses
		case <-t.C:
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// recorded accounts for a committed part.
func (c *collector) recorded(part state.LinePart) {
	c.resolved += int64(len(part.Lines))
	for _, l := range part.Lines {
		c.w.m.linesRecorded.WithLabelValues(outcomeLabel(l.Failed)).Inc()
	}
}

// listed reports whether part is in the batch's committed parts list.
func (c *collector) listed(ctx context.Context, part state.LinePart) (bool, error) {
	parts, err := c.w.jobs.Parts(ctx, c.batch)
	if err != nil {
		return false, err
	}
	for _, p := range parts {
		if p.OKBlob == part.OKBlob && p.ErrBlob == part.ErrBlob {
			return true, nil
		}
	}
	return false, nil
}

func outcomeLabel(failed bool) string {
	if failed {
		return "failed"
	}
	return "completed"
}

func withoutLines(lines []lineOutcome, drop []int64) []lineOutcome {
	set := make(map[int64]bool, len(drop))
	for _, d := range drop {
		set[d] = true
	}
	out := lines[:0:0]
	for _, l := range lines {
		if !set[l.idx] {
			out = append(out, l)
		}
	}
	return out
}

// partBlobs are the blobs a part staged under name may have: success and error lines.
func partBlobs(name string) []string { return []string{name + "-o", name + "-e"} }

// writePart stages a new part name, then stores the lines as one or two blobs (success,
// error) under it. Staging first lets purge find the blobs if this replica dies, or its
// lease lapses, before the part is committed.
func (c *collector) writePart(ctx context.Context, lines []lineOutcome) (state.LinePart, error) {
	var ok, bad bytes.Buffer
	p := state.LinePart{Lines: make([]state.LineResult, 0, len(lines))}
	for _, l := range lines {
		if l.failed {
			bad.Write(l.json)
		} else {
			ok.Write(l.json)
			p.Usage.Add(l.usage)
		}
		p.Lines = append(p.Lines, state.LineResult{Line: l.idx, Failed: l.failed})
	}
	p.Staged = "part-" + c.batch + "-" + strconv.FormatInt(c.chunk, 10) + "-" + randHex(6)
	if err := c.w.jobs.StagePart(ctx, c.batch, p.Staged); err != nil {
		return p, err
	}
	names := partBlobs(p.Staged)
	if ok.Len() > 0 {
		p.OKBlob = names[0]
		if _, err := c.w.blobs.Put(ctx, p.OKBlob, &ok, -1); err != nil {
			return p, err
		}
	}
	if bad.Len() > 0 {
		p.ErrBlob = names[1]
		if _, err := c.w.blobs.Put(ctx, p.ErrBlob, &bad, -1); err != nil {
			c.deletePart(ctx, p)
			return p, err
		}
	}
	return p, nil
}

func (c *collector) deletePart(ctx context.Context, p state.LinePart) {
	for _, id := range []string{p.OKBlob, p.ErrBlob} {
		if id != "" {
			_ = c.w.blobs.Delete(ctx, id)
		}
	}
}
