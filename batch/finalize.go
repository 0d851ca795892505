package batch

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/vllm-proxy/vllm-proxy/state"
)

// finalize writes a batch's output and error files and its terminal status. The files
// have ids derived from the batch id, so a finalization re-run after a crash rewrites the
// same files. Parts are concatenated by streaming; lines never executed (cancel, expiry)
// are appended to the error file from the input, streamed again.
func (w *Workers) finalize(ctx context.Context, id string, mode state.FinalizeMode) error {
	rec, err := w.jobs.GetBatch(ctx, id)
	if err != nil {
		return err
	}
	parts, err := w.jobs.Parts(ctx, id)
	if err != nil {
		return err
	}
	var undone []bool // per line: needs a batch_cancelled/batch_expired line
	var nUndone int64
	if mode != state.FinalizeComplete && rec.Total > 0 {
		done, err := w.jobs.DoneLines(ctx, id, 0, rec.Total)
		if err != nil {
			return err
		}
		undone = make([]bool, rec.Total)
		for i, d := range done {
			if !d {
				undone[i] = true
				nUndone++
			}
		}
	}
	var okIDs, errIDs []string
	for _, p := range parts {
		if p.OKBlob != "" {
			okIDs = append(okIDs, p.OKBlob)
		}
		if p.ErrBlob != "" {
			errIDs = append(errIDs, p.ErrBlob)
		}
	}
	fin := state.BatchFinish{}
	switch mode {
	case state.FinalizeComplete:
		fin.Status = state.BatchCompleted
	case state.FinalizeExpire:
		fin.Status, fin.AddFailed = state.BatchExpired, nUndone
	default:
		fin.Status = state.BatchCancelled
	}
	if len(okIDs) > 0 {
		fin.OutputFileID = resultFileID(id, "output")
		if err := w.writeResult(ctx, rec, fin.OutputFileID, "output", &partsReader{ctx: ctx, blobs: w.blobs, ids: okIDs}); err != nil {
			return err
		}
	}
	if len(errIDs) > 0 || nUndone > 0 {
		fin.ErrorFileID = resultFileID(id, "error")
		var src io.Reader = &partsReader{ctx: ctx, blobs: w.blobs, ids: errIDs}
		if nUndone > 0 {
			code, msg := "batch_cancelled", "The batch was cancelled before this request executed."
			if mode == state.FinalizeExpire {
				code, msg = "batch_expired", "This request could not be executed before the completion window expired."
			}
			pr, pw := io.Pipe()
			gen := make(chan struct{})
			go func() { // owned here: the deferred wait below outlives it
				defer close(gen)
				pw.CloseWithError(w.writeUndone(ctx, rec, undone, code, msg, pw))
			}()
			defer func() { _ = pr.Close(); <-gen }()
			src = io.MultiReader(src, pr)
		}
		if err := w.writeResult(ctx, rec, fin.ErrorFileID, "error", src); err != nil {
			return err
		}
	}
	ok, err := w.jobs.FinishBatch(ctx, id, w.cfg.ReplicaID, fin, w.cfg.Now())
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("finalization lease lost before the batch was finished")
	}
	if err := w.purge(ctx, id, parts); err != nil {
		w.log.WarnContext(ctx, "purging batch work keys failed", "batch", id, "err", err)
	}
	w.m.batchesFinished.WithLabelValues(string(fin.Status)).Inc()
	w.log.InfoContext(ctx, "batch finished", "batch", id, "status", string(fin.Status),
		"output_file", fin.OutputFileID, "error_file", fin.ErrorFileID, "undone", nUndone)
	return nil
}

// purge deletes a finished batch's result parts (now copied into its files) and the blobs
// of parts staged but never committed (a worker died, or lost its lease, between writing
// and committing them), then its work keys. A finalizer that dies in between leaves the
// batch active, and the next pass that sees it terminal calls purge again (parts nil:
// they are listed first), so no part blob outlives the list that names it.
func (w *Workers) purge(ctx context.Context, id string, parts []state.LinePart) error {
	if parts == nil {
		var err error
		if parts, err = w.jobs.Parts(ctx, id); err != nil {
			return err
		}
	}
	staged, err := w.jobs.StagedParts(ctx, id)
	if err != nil {
		return err
	}
	var blobs []string
	for _, p := range parts {
		blobs = append(blobs, p.OKBlob, p.ErrBlob)
	}
	for _, name := range staged {
		blobs = append(blobs, partBlobs(name)...)
	}
	for _, b := range blobs {
		if b != "" {
			if err := w.blobs.Delete(ctx, b); err != nil {
				return fmt.Errorf("deleting result part %s: %w", b, err)
			}
		}
	}
	return w.jobs.PurgeBatchWork(ctx, id)
}

// writeResult streams src into a result file and records it (purpose batch_output).
func (w *Workers) writeResult(ctx context.Context, rec state.BatchRecord, fileID, kind string, src io.Reader) error {
	n, err := w.blobs.Put(ctx, fileID, src, w.cfg.MaxResultBytes)
	if err != nil {
		return fmt.Errorf("writing %s file of batch %s: %w", kind, rec.ID, err)
	}
	now := w.cfg.Now()
	ttl := rec.OutputExpiresAfter
	if ttl == 0 {
		ttl = int64(w.cfg.FileTTL.Seconds())
	}
	return w.jobs.CreateFile(ctx, state.FileRecord{ID: fileID, Bytes: n, CreatedAt: now.Unix(), CreatedMS: now.UnixMilli(),
		ExpiresAt: now.Unix() + ttl, Filename: rec.ID + "_" + kind + ".jsonl", Purpose: "batch_output", Status: "processed",
		Owner: rec.Owner})
}

// writeUndone streams the input and writes an error line for each undone line.
func (w *Workers) writeUndone(ctx context.Context, rec state.BatchRecord, undone []bool, code, msg string, out io.Writer) error {
	rc, err := w.blobs.Open(ctx, rec.InputFileID, 0)
	if err != nil {
		return fmt.Errorf("reopening input of batch %s: %w", rec.ID, err)
	}
	defer rc.Close()
	lr := &lineReader{br: bufio.NewReaderSize(rc, 64<<10), max: w.cfg.MaxLineBytes}
	for idx := int64(0); idx < int64(len(undone)); {
		line, _, _, tooLong, err := lr.next()
		if err != nil {
			return fmt.Errorf("input of batch %s ends at line %d of %d: %w", rec.ID, idx, len(undone), err)
		}
		if tooLong || len(trimSpace(line)) == 0 {
			continue
		}
		if undone[idx] {
			p, err := parsePending(line)
			if err != nil {
				return err
			}
			if _, err := out.Write(undoneLine(rec.ID, idx, p.customID, code, msg)); err != nil {
				return err
			}
		}
		idx++
	}
	return nil
}

// partsReader reads blobs one after another, opening each only when reached.
type partsReader struct {
	ctx   context.Context
	blobs BlobStore
	ids   []string
	cur   io.ReadCloser
}

func (p *partsReader) Read(b []byte) (int, error) {
	for {
		if p.cur == nil {
			if len(p.ids) == 0 {
				return 0, io.EOF
			}
			rc, err := p.blobs.Open(p.ctx, p.ids[0], 0)
			if err != nil {
				return 0, fmt.Errorf("opening result part %s: %w", p.ids[0], err)
			}
			p.cur, p.ids = rc, p.ids[1:]
		}
		n, err := p.cur.Read(b)
		if errors.Is(err, io.EOF) {
			_ = p.cur.Close()
			p.cur = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}
