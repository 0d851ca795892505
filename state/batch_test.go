package state

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

func jobStores(t *testing.T) map[string]JobStore {
	c, _ := jobTestClient(t)
	return map[string]JobStore{"redis": newJobRedis(c), "memory": NewJobMemory()}
}

func TestJobFilesConformance(t *testing.T) {
	for name, s := range jobStores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			for i := range 5 {
				p := "batch"
				if i == 2 {
					p = "batch_output"
				}
				f := FileRecord{ID: fmt.Sprintf("file-%d", i), Bytes: int64(i), CreatedAt: 100, CreatedMS: int64(100000 + i),
					Filename: "x.jsonl", Purpose: p, Status: "processed", ExpiresAt: int64(200 + i)}
				if err := s.CreateFile(ctx, f); err != nil {
					t.Fatal(err)
				}
			}
			got, err := s.GetFile(ctx, "file-3")
			if err != nil || got.Bytes != 3 || got.Purpose != "batch" {
				t.Fatalf("get = %+v, %v", got, err)
			}
			if _, err := s.GetFile(ctx, "file-x"); !errors.Is(err, ErrFileNotFound) {
				t.Fatalf("get missing: %v", err)
			}
			ids := func(fs []FileRecord) []string {
				var out []string
				for _, f := range fs {
					out = append(out, f.ID)
				}
				return out
			}
			page, more, err := s.ListFiles(ctx, FileQuery{Purpose: "batch", Limit: 2, Asc: true})
			if err != nil || !more || !slices.Equal(ids(page), []string{"file-0", "file-1"}) {
				t.Fatalf("page 1 = %v %v %v", ids(page), more, err)
			}
			page, more, _ = s.ListFiles(ctx, FileQuery{Purpose: "batch", Limit: 2, Asc: true, After: "file-1"})
			if more || !slices.Equal(ids(page), []string{"file-3", "file-4"}) {
				t.Fatalf("page 2 = %v %v", ids(page), more)
			}
			page, more, _ = s.ListFiles(ctx, FileQuery{Limit: 10})
			if more || !slices.Equal(ids(page), []string{"file-4", "file-3", "file-2", "file-1", "file-0"}) {
				t.Fatalf("desc = %v %v", ids(page), more)
			}
			if page, more, _ = s.ListFiles(ctx, FileQuery{Limit: 10, After: "file-nope"}); len(page) != 0 || more {
				t.Fatalf("unknown after = %v %v", ids(page), more)
			}
			exp, _ := s.ExpiredFiles(ctx, 201, 10)
			slices.Sort(exp)
			if !slices.Equal(exp, []string{"file-0", "file-1"}) {
				t.Fatalf("expired = %v", exp)
			}
			if err := s.DeleteFile(ctx, "file-0"); err != nil {
				t.Fatal(err)
			}
			if err := s.DeleteFile(ctx, "file-0"); !errors.Is(err, ErrFileNotFound) {
				t.Fatalf("second delete: %v", err)
			}
			if exp, _ := s.ExpiredFiles(ctx, 201, 10); !slices.Equal(exp, []string{"file-1"}) {
				t.Fatalf("expired after delete = %v", exp)
			}
		})
	}
}

func jobSpec(id string, created int64) BatchSpec {
	return BatchSpec{ID: id, Endpoint: "/v1/chat/completions", InputFileID: "file-in", CompletionWindow: "24h",
		CreatedAt: created, CreatedMS: created * 1000, ExpiresAt: created + 86400, Metadata: map[string]string{"k": "v"}}
}

func TestJobBatchLifecycleConformance(t *testing.T) {
	for name, s := range jobStores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			now := time.Unix(1000, 0)
			for i := range 3 {
				if _, err := s.CreateBatch(ctx, jobSpec(fmt.Sprintf("batch_%d", i), 1000+int64(i))); err != nil {
					t.Fatal(err)
				}
			}
			if us, _ := s.FileBatches(ctx, "file-in"); len(us) != 3 {
				t.Fatalf("file users = %v", us)
			}
			page, more, _ := s.ListBatches(ctx, "", 2)
			if len(page) != 2 || !more || page[0].ID != "batch_2" || page[1].ID != "batch_1" {
				t.Fatalf("list = %+v %v", page, more)
			}
			page, more, _ = s.ListBatches(ctx, "batch_1", 2)
			if len(page) != 1 || more || page[0].ID != "batch_0" {
				t.Fatalf("list after = %+v %v", page, more)
			}
			if page, more, _ = s.ListBatches(ctx, "batch_nope", 2); len(page) != 0 || more {
				t.Fatal("unknown after gave items")
			}
			id := "batch_0"
			r, err := s.GetBatch(ctx, id)
			if err != nil || r.Status != BatchValidating || r.Metadata["k"] != "v" || r.ExpiresAt != 87400 {
				t.Fatalf("get = %+v %v", r, err)
			}
			// Validation lease: one owner at a time until it lapses.
			if ok, _ := s.ClaimValidation(ctx, id, "a", now, time.Second); !ok {
				t.Fatal("a could not claim validation")
			}
			if ok, _ := s.ClaimValidation(ctx, id, "b", now, time.Second); ok {
				t.Fatal("b claimed a live validation lease")
			}
			if ok, _ := s.ClaimValidation(ctx, id, "b", now.Add(2*time.Second), time.Second); !ok {
				t.Fatal("b could not take over a lapsed validation lease")
			}
			chunks := []JobChunk{{Index: 0, Offset: 0, Length: 10, First: 0, N: 2}, {Index: 1, Offset: 10, Length: 10, First: 2, N: 2}}
			if st, err := s.StartBatch(ctx, id, BatchValidated{Total: 4, Model: "m", Chunks: chunks}, now); err != nil || st != BatchInProgress {
				t.Fatalf("start = %v %v", st, err)
			}
			c0, re, ok, err := s.ClaimChunk(ctx, id, "a", now, time.Second)
			if err != nil || !ok || re || c0 != chunks[0] {
				t.Fatalf("claim 0 = %+v %v %v %v", c0, re, ok, err)
			}
			c1, _, ok, _ := s.ClaimChunk(ctx, id, "b", now, time.Second)
			if !ok || c1 != chunks[1] {
				t.Fatalf("claim 1 = %+v %v", c1, ok)
			}
			if _, _, ok, _ := s.ClaimChunk(ctx, id, "c", now, time.Second); ok {
				t.Fatal("claimed a third chunk of two")
			}
			// b dies; its lease lapses; c takes chunk 1 over. a keeps renewing.
			later := now.Add(1200 * time.Millisecond)
			if ok, _ := s.Renew(ctx, id, "a", 0, now.Add(500*time.Millisecond), time.Second); !ok {
				t.Fatal("renew a")
			}
			c1b, re, ok, _ := s.ClaimChunk(ctx, id, "c", later, time.Second)
			if !ok || !re || c1b != chunks[1] {
				t.Fatalf("takeover = %+v %v %v", c1b, re, ok)
			}
			if ok, _ := s.Renew(ctx, id, "b", 1, later, time.Second); ok {
				t.Fatal("b renewed a lease it lost")
			}
			// Commit: duplicates refused as a whole.
			u := BatchUsage{InputTokens: 1, OutputTokens: 2, TotalTokens: 3}
			for _, name := range []string{"s1", "s2"} {
				if err := s.StagePart(ctx, id, name); err != nil {
					t.Fatal(err)
				}
			}
			if d, err := s.CommitLines(ctx, id, LinePart{OKBlob: "p1", Staged: "s1", Lines: []LineResult{{Line: 0}, {Line: 1, Failed: true}}, Usage: u}); err != nil || d != nil {
				t.Fatalf("commit = %v %v", d, err)
			}
			d, err := s.CommitLines(ctx, id, LinePart{OKBlob: "p2", Lines: []LineResult{{Line: 1}, {Line: 2}}, Usage: u})
			if err != nil || !slices.Equal(d, []int64{1}) {
				t.Fatalf("dup commit = %v %v", d, err)
			}
			if done, _ := s.DoneLines(ctx, id, 0, 4); !slices.Equal(done, []bool{true, true, false, false}) {
				t.Fatalf("done = %v", done)
			}
			if err := s.ReleaseChunk(ctx, id, "a", 0, true); err != nil {
				t.Fatal(err)
			}
			if _, ok, _ := s.ClaimFinalize(ctx, id, "a", later, time.Second); ok {
				t.Fatal("finalize claimed with a chunk left")
			}
			if d, _ := s.CommitLines(ctx, id, LinePart{OKBlob: "p3", Lines: []LineResult{{Line: 2}, {Line: 3}}, Usage: u}); d != nil {
				t.Fatalf("commit 2 dups %v", d)
			}
			r, _ = s.GetBatch(ctx, id)
			if r.Completed != 3 || r.Failed != 1 || r.Usage.TotalTokens != 6 || r.Total != 4 || r.Model != "m" {
				t.Fatalf("live counts %+v", r)
			}
			// A not-done release from the old owner changes nothing; c finishes it.
			_ = s.ReleaseChunk(ctx, id, "b", 1, false)
			_ = s.ReleaseChunk(ctx, id, "c", 1, true)
			_ = s.ReleaseChunk(ctx, id, "c", 1, true) // counted once
			mode, ok, err := s.ClaimFinalize(ctx, id, "a", later, time.Second)
			if err != nil || !ok || mode != FinalizeComplete {
				t.Fatalf("finalize = %v %v %v", mode, ok, err)
			}
			if _, ok, _ := s.ClaimFinalize(ctx, id, "b", later, time.Second); ok {
				t.Fatal("second finalizer while lease live")
			}
			if r, _ = s.GetBatch(ctx, id); r.Status != BatchFinalizing || r.FinalizingAt != later.Unix() {
				t.Fatalf("status %v", r.Status)
			}
			if _, err := s.CommitLines(ctx, id, LinePart{Lines: []LineResult{{Line: 9}}}); !errors.Is(err, ErrBatchConflict) {
				t.Fatalf("commit after finalize: %v", err)
			}
			if err := s.StagePart(ctx, id, "s3"); !errors.Is(err, ErrBatchConflict) {
				t.Fatalf("stage after finalize: %v", err)
			}
			if err := s.StagePart(ctx, "batch_nope", "s3"); !errors.Is(err, ErrBatchNotFound) {
				t.Fatalf("stage on a missing batch: %v", err)
			}
			if staged, err := s.StagedParts(ctx, id); err != nil || !slices.Equal(staged, []string{"s2"}) {
				t.Fatalf("staged = %v %v, want [s2] (s1 committed, s3 refused)", staged, err)
			}
			parts, _ := s.Parts(ctx, id)
			if len(parts) != 2 || parts[0].OKBlob != "p1" || parts[1].OKBlob != "p3" {
				t.Fatalf("parts %+v", parts)
			}
			if ok, _ := s.FinishBatch(ctx, id, "b", BatchFinish{Status: BatchCompleted}, later); ok {
				t.Fatal("non-owner finished")
			}
			if ok, _ := s.FinishBatch(ctx, id, "a", BatchFinish{Status: BatchCompleted, OutputFileID: "file-out"}, later); !ok {
				t.Fatal("owner could not finish")
			}
			if err := s.PurgeBatchWork(ctx, id); err != nil {
				t.Fatal(err)
			}
			if staged, err := s.StagedParts(ctx, id); err != nil || len(staged) != 0 {
				t.Fatalf("staged after purge = %v %v", staged, err)
			}
			r, _ = s.GetBatch(ctx, id)
			if r.Status != BatchCompleted || r.CompletedAt != later.Unix() || r.OutputFileID != "file-out" || r.Completed != 3 {
				t.Fatalf("final %+v", r)
			}
			if _, err := s.CancelBatch(ctx, id, later); !errors.Is(err, ErrBatchConflict) {
				t.Fatalf("cancel completed: %v", err)
			}
			act, _ := s.ActiveBatches(ctx)
			if slices.Contains(act, id) || len(act) != 2 {
				t.Fatalf("active = %v", act)
			}
			if _, err := s.GetBatch(ctx, "batch_nope"); !errors.Is(err, ErrBatchNotFound) {
				t.Fatalf("get missing: %v", err)
			}
		})
	}
}

func TestJobBatchCancelExpireFailConformance(t *testing.T) {
	for name, s := range jobStores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			now := time.Unix(1000, 0)
			chunks := []JobChunk{{Index: 0, N: 1}, {Index: 1, First: 1, N: 1}}
			// Cancel while a chunk is leased: finalization waits for the lease.
			_, _ = s.CreateBatch(ctx, jobSpec("batch_c", 1000))
			_, _ = s.StartBatch(ctx, "batch_c", BatchValidated{Total: 2, Chunks: chunks}, now)
			_, _, _, _ = s.ClaimChunk(ctx, "batch_c", "a", now, time.Second)
			r, err := s.CancelBatch(ctx, "batch_c", now)
			if err != nil || r.Status != BatchCancelling || r.CancellingAt != 1000 {
				t.Fatalf("cancel = %+v %v", r, err)
			}
			if r, err = s.CancelBatch(ctx, "batch_c", now); err != nil || r.Status != BatchCancelling {
				t.Fatalf("second cancel = %v %v", r.Status, err)
			}
			if _, _, ok, _ := s.ClaimChunk(ctx, "batch_c", "b", now, time.Second); ok {
				t.Fatal("claimed a chunk of a cancelling batch")
			}
			if _, ok, _ := s.ClaimFinalize(ctx, "batch_c", "b", now, time.Second); ok {
				t.Fatal("finalized with a live chunk lease")
			}
			if d, err := s.CommitLines(ctx, "batch_c", LinePart{OKBlob: "p", Lines: []LineResult{{Line: 0}}}); err != nil || d != nil {
				t.Fatalf("in-flight commit while cancelling: %v %v", d, err)
			}
			_ = s.ReleaseChunk(ctx, "batch_c", "a", 0, false)
			mode, ok, _ := s.ClaimFinalize(ctx, "batch_c", "b", now, time.Second)
			if !ok || mode != FinalizeCancel {
				t.Fatalf("cancel finalize = %v %v", mode, ok)
			}
			if ok, _ := s.FinishBatch(ctx, "batch_c", "b", BatchFinish{Status: BatchCancelled}, now); !ok {
				t.Fatal("finish cancel")
			}
			if r, _ = s.GetBatch(ctx, "batch_c"); r.Status != BatchCancelled || r.CancelledAt != 1000 || r.Completed != 1 {
				t.Fatalf("cancelled %+v", r)
			}
			if r, err = s.CancelBatch(ctx, "batch_c", now); err != nil || r.Status != BatchCancelled {
				t.Fatalf("cancel cancelled = %v %v", r.Status, err)
			}
			// Expiry: no claims at or after expires_at; finalization takes over a lapsed lease.
			_, _ = s.CreateBatch(ctx, jobSpec("batch_e", 1000))
			_, _ = s.StartBatch(ctx, "batch_e", BatchValidated{Total: 2, Chunks: chunks}, now)
			_, _, _, _ = s.ClaimChunk(ctx, "batch_e", "a", now, time.Second)
			exp := time.Unix(1000+86400, 0)
			if _, _, ok, _ := s.ClaimChunk(ctx, "batch_e", "a", exp, time.Second); ok {
				t.Fatal("claimed after expiry")
			}
			mode, ok, _ = s.ClaimFinalize(ctx, "batch_e", "b", exp, time.Second)
			if !ok || mode != FinalizeExpire {
				t.Fatalf("expire finalize = %v %v", mode, ok)
			}
			// The finalizer dies; another takes over after its lease lapses.
			if _, ok, _ := s.ClaimFinalize(ctx, "batch_e", "c", exp.Add(500*time.Millisecond), time.Second); ok {
				t.Fatal("took over a live finalization")
			}
			mode, ok, _ = s.ClaimFinalize(ctx, "batch_e", "c", exp.Add(2*time.Second), time.Second)
			if !ok || mode != FinalizeExpire {
				t.Fatalf("finalize takeover = %v %v", mode, ok)
			}
			if ok, _ := s.FinishBatch(ctx, "batch_e", "c", BatchFinish{Status: BatchExpired, AddFailed: 2}, exp); !ok {
				t.Fatal("finish expire")
			}
			if r, _ = s.GetBatch(ctx, "batch_e"); r.Status != BatchExpired || r.Failed != 2 || r.ExpiredAt != exp.Unix() {
				t.Fatalf("expired %+v", r)
			}
			// Validation failure.
			_, _ = s.CreateBatch(ctx, jobSpec("batch_f", 1000))
			errs := []BatchError{{Code: "invalid_json_line", Message: "x", Line: 7}}
			if st, _ := s.FailBatch(ctx, "batch_f", errs, now); st != BatchFailed {
				t.Fatalf("fail = %v", st)
			}
			if r, _ = s.GetBatch(ctx, "batch_f"); r.FailedAt != 1000 || len(r.Errors) != 1 || r.Errors[0].Line != 7 {
				t.Fatalf("failed %+v", r)
			}
			// Cancel during validation: start is refused, cancel finalizes with no chunks.
			_, _ = s.CreateBatch(ctx, jobSpec("batch_v", 1000))
			_, _ = s.CancelBatch(ctx, "batch_v", now)
			if st, _ := s.StartBatch(ctx, "batch_v", BatchValidated{Total: 2, Chunks: chunks}, now); st != BatchCancelling {
				t.Fatalf("start after cancel = %v", st)
			}
			if mode, ok, _ := s.ClaimFinalize(ctx, "batch_v", "a", now, time.Second); !ok || mode != FinalizeCancel {
				t.Fatalf("finalize cancelled validation = %v %v", mode, ok)
			}
		})
	}
}
