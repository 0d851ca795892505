package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

func (j *jobRedis) CreateBatch(ctx context.Context, spec BatchSpec) (BatchRecord, error) {
	b, err := json.Marshal(spec)
	if err != nil {
		return BatchRecord{}, fmt.Errorf("encoding batch %s: %w", spec.ID, err)
	}
	// Hash first: a crash before the index writes leaves an unlisted batch, never a
	// listed id without a record.
	err = j.c.HSet(ctx, batchHashKey(spec.ID), "spec", b, "status", string(BatchValidating),
		"expires_at", spec.ExpiresAt, "total", 0, "completed", 0, "failed", 0).Err()
	if err != nil {
		return BatchRecord{}, fmt.Errorf("storing batch %s: %w", spec.ID, err)
	}
	_, err = j.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.SAdd(ctx, fileBatchesKey(spec.InputFileID), spec.ID)
		p.ZAdd(ctx, batchListKey(), redis.Z{Score: float64(spec.CreatedMS), Member: spec.ID})
		p.SAdd(ctx, batchActiveKey(), spec.ID)
		return nil
	})
	if err != nil {
		return BatchRecord{}, fmt.Errorf("indexing batch %s: %w", spec.ID, err)
	}
	return BatchRecord{BatchSpec: spec, Status: BatchValidating}, nil
}

func (j *jobRedis) GetBatch(ctx context.Context, id string) (BatchRecord, error) {
	m, err := j.c.HGetAll(ctx, batchHashKey(id)).Result()
	if err != nil {
		return BatchRecord{}, fmt.Errorf("reading batch %s: %w", id, err)
	}
	if m["spec"] == "" {
		return BatchRecord{}, fmt.Errorf("batch %s: %w", id, ErrBatchNotFound)
	}
	return batchFromHash(id, m)
}

// batchFromHash decodes the batch hash.
func batchFromHash(id string, m map[string]string) (BatchRecord, error) {
	var r BatchRecord
	if err := json.Unmarshal([]byte(m["spec"]), &r.BatchSpec); err != nil {
		return BatchRecord{}, fmt.Errorf("decoding batch %s: %w", id, err)
	}
	n := func(k string) int64 { v, _ := strconv.ParseInt(m[k], 10, 64); return v }
	r.Status = BatchStatus(m["status"])
	r.Model = m["model"]
	r.InProgressAt, r.FinalizingAt, r.CompletedAt = n("in_progress_at"), n("finalizing_at"), n("completed_at")
	r.FailedAt, r.ExpiredAt = n("failed_at"), n("expired_at")
	r.CancellingAt, r.CancelledAt = n("cancelling_at"), n("cancelled_at")
	r.OutputFileID, r.ErrorFileID = m["output_file_id"], m["error_file_id"]
	r.Total, r.Completed, r.Failed = n("total"), n("completed"), n("failed")
	r.Usage = BatchUsage{
		InputTokens: n("u_in"), CachedTokens: n("u_cached"), OutputTokens: n("u_out"),
		ReasoningTokens: n("u_reason"), TotalTokens: n("u_total"),
	}
	r.Chunks, r.ChunksDone = n("nchunks"), n("chunks_done")
	if e := m["errors"]; e != "" {
		if err := json.Unmarshal([]byte(e), &r.Errors); err != nil {
			return BatchRecord{}, fmt.Errorf("decoding errors of batch %s: %w", id, err)
		}
	}
	return r, nil
}

func (j *jobRedis) ListBatches(ctx context.Context, after string, limit int) ([]BatchRecord, bool, error) {
	start := int64(0)
	if after != "" {
		rank, err := j.c.ZRevRank(ctx, batchListKey(), after).Result()
		if errors.Is(err, redis.Nil) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, fmt.Errorf("finding batch %s in the list: %w", after, err)
		}
		start = rank + 1
	}
	ids, err := j.c.ZRevRange(ctx, batchListKey(), start, start+int64(limit)).Result()
	if err != nil {
		return nil, false, fmt.Errorf("listing batches: %w", err)
	}
	more := len(ids) > limit
	if more {
		ids = ids[:limit]
	}
	out := make([]BatchRecord, 0, len(ids))
	for _, id := range ids {
		r, err := j.GetBatch(ctx, id)
		if errors.Is(err, ErrBatchNotFound) {
			continue
		}
		if err != nil {
			return nil, false, err
		}
		out = append(out, r)
	}
	return out, more, nil
}

func (j *jobRedis) ActiveBatches(ctx context.Context) ([]string, error) {
	ids, err := j.c.SMembers(ctx, batchActiveKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("listing active batches: %w", err)
	}
	return ids, nil
}

func (j *jobRedis) CancelBatch(ctx context.Context, id string, now time.Time) (BatchRecord, error) {
	st, err := batchCancelScript.Run(ctx, j.c, []string{batchHashKey(id)}, now.Unix()).Text()
	if errors.Is(err, redis.Nil) {
		return BatchRecord{}, fmt.Errorf("batch %s: %w", id, ErrBatchNotFound)
	}
	if err != nil {
		return BatchRecord{}, fmt.Errorf("cancelling batch %s: %w", id, err)
	}
	r, err := j.GetBatch(ctx, id)
	if err != nil {
		return r, err
	}
	if s := BatchStatus(st); s == BatchCompleted || s == BatchFailed || s == BatchExpired {
		return r, fmt.Errorf("cancelling batch %s with status %s: %w", id, s, ErrBatchConflict)
	}
	return r, nil
}
