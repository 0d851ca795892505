package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

func batchDeadline(now time.Time, lease time.Duration) int64 { return now.Add(lease).UnixMilli() }

func (j *jobRedis) ClaimValidation(ctx context.Context, id, owner string, now time.Time, lease time.Duration) (bool, error) {
	n, err := batchClaimValidationScript.Run(ctx, j.c, []string{batchHashKey(id)},
		owner, now.UnixMilli(), batchDeadline(now, lease)).Int()
	if err != nil {
		return false, fmt.Errorf("claiming validation of batch %s: %w", id, err)
	}
	return n == 1, nil
}

// batchChunkString encodes a chunk for the chunks list.
func batchChunkString(c JobChunk) string {
	return fmt.Sprintf("%d,%d,%d,%d", c.Offset, c.Length, c.First, c.N)
}

func batchParseChunk(idx int64, s string) (JobChunk, error) {
	p := strings.Split(s, ",")
	if len(p) != 4 {
		return JobChunk{}, fmt.Errorf("malformed chunk %d: %q", idx, s)
	}
	var v [4]int64
	for i := range p {
		n, err := strconv.ParseInt(p[i], 10, 64)
		if err != nil {
			return JobChunk{}, fmt.Errorf("malformed chunk %d: %q", idx, s)
		}
		v[i] = n
	}
	return JobChunk{Index: idx, Offset: v[0], Length: v[1], First: v[2], N: v[3]}, nil
}

func (j *jobRedis) StartBatch(ctx context.Context, id string, v BatchValidated, now time.Time) (BatchStatus, error) {
	args := []any{now.Unix(), v.Total, v.Model, len(v.Chunks)}
	for _, c := range v.Chunks {
		args = append(args, batchChunkString(c))
	}
	st, err := batchStartScript.Run(ctx, j.c, []string{batchHashKey(id), batchChunksKey(id)}, args...).Text()
	if errors.Is(err, redis.Nil) {
		return "", fmt.Errorf("batch %s: %w", id, ErrBatchNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("starting batch %s: %w", id, err)
	}
	return BatchStatus(st), nil
}

func (j *jobRedis) FailBatch(ctx context.Context, id string, errs []BatchError, now time.Time) (BatchStatus, error) {
	b, err := json.Marshal(errs)
	if err != nil {
		return "", fmt.Errorf("encoding errors of batch %s: %w", id, err)
	}
	st, err := batchFailScript.Run(ctx, j.c, []string{batchHashKey(id)}, now.Unix(), b).Text()
	if errors.Is(err, redis.Nil) {
		return "", fmt.Errorf("batch %s: %w", id, ErrBatchNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("failing batch %s: %w", id, err)
	}
	return BatchStatus(st), nil
}

func (j *jobRedis) ClaimChunk(ctx context.Context, id, owner string, now time.Time, lease time.Duration) (JobChunk, bool, bool, error) {
	res, err := batchClaimChunkScript.Run(ctx, j.c,
		[]string{batchHashKey(id), batchLeasesKey(id), batchChunksKey(id)},
		owner, now.UnixMilli(), batchDeadline(now, lease), now.Unix()).Slice()
	if errors.Is(err, redis.Nil) {
		return JobChunk{}, false, false, nil
	}
	if err != nil {
		return JobChunk{}, false, false, fmt.Errorf("claiming a chunk of batch %s: %w", id, err)
	}
	idx, _ := strconv.ParseInt(blobStr(res[0]), 10, 64)
	c, err := batchParseChunk(idx, blobStr(res[1]))
	if err != nil {
		return JobChunk{}, false, false, fmt.Errorf("batch %s: %w", id, err)
	}
	reclaimed, _ := res[2].(int64)
	return c, reclaimed == 1, true, nil
}

func (j *jobRedis) Renew(ctx context.Context, id, owner string, chunk int64, now time.Time, lease time.Duration) (bool, error) {
	field, kind := strconv.FormatInt(chunk, 10), "l"
	switch chunk {
	case -1:
		field, kind = "vlease", "h"
	case -2:
		field, kind = "flease", "h"
	}
	n, err := batchRenewScript.Run(ctx, j.c, []string{batchHashKey(id), batchLeasesKey(id)},
		owner, field, kind, batchDeadline(now, lease)).Int()
	if err != nil {
		return false, fmt.Errorf("renewing lease %s of batch %s: %w", field, id, err)
	}
	return n == 1, nil
}

func (j *jobRedis) ReleaseChunk(ctx context.Context, id, owner string, chunk int64, done bool) error {
	d := 0
	if done {
		d = 1
	}
	err := batchReleaseScript.Run(ctx, j.c,
		[]string{batchHashKey(id), batchLeasesKey(id), batchCDoneKey(id)}, owner, chunk, d).Err()
	if err != nil {
		return fmt.Errorf("releasing chunk %d of batch %s: %w", chunk, id, err)
	}
	return nil
}

func (j *jobRedis) DoneLines(ctx context.Context, id string, first, n int64) ([]bool, error) {
	out := make([]bool, n)
	if n == 0 {
		return out, nil
	}
	b, err := j.c.GetRange(ctx, batchDoneKey(id), first/8, (first+n-1)/8).Bytes()
	if err != nil {
		return nil, fmt.Errorf("reading progress of batch %s: %w", id, err)
	}
	for i := range n {
		bit := first + i - (first/8)*8
		if byteIdx := bit / 8; byteIdx < int64(len(b)) {
			out[i] = b[byteIdx]&(0x80>>(bit%8)) != 0
		}
	}
	return out, nil
}

func (j *jobRedis) CommitLines(ctx context.Context, id string, p LinePart) ([]int64, error) {
	var nok, nerr int64
	args := []any{p.OKBlob, p.ErrBlob, 0, 0, p.Usage.InputTokens, p.Usage.CachedTokens,
		p.Usage.OutputTokens, p.Usage.ReasoningTokens, p.Usage.TotalTokens, p.Staged}
	for _, l := range p.Lines {
		if l.Failed {
			nerr++
		} else {
			nok++
		}
		args = append(args, l.Line)
	}
	args[2], args[3] = nok, nerr
	res, err := batchCommitScript.Run(ctx, j.c,
		[]string{batchHashKey(id), batchDoneKey(id), batchPartsKey(id), batchStagedKey(id)}, args...).Slice()
	if err != nil {
		return nil, fmt.Errorf("committing lines of batch %s: %w", id, err)
	}
	switch code, _ := res[0].(int64); code {
	case 1:
		return nil, nil
	case -1:
		return nil, fmt.Errorf("committing lines of batch %s: finalization began: %w", id, ErrBatchConflict)
	case -2:
		return nil, fmt.Errorf("batch %s: %w", id, ErrBatchNotFound)
	}
	dups := make([]int64, 0, len(res)-1)
	for _, v := range res[1:] {
		n, _ := strconv.ParseInt(blobStr(v), 10, 64)
		dups = append(dups, n)
	}
	return dups, nil
}

func (j *jobRedis) StagePart(ctx context.Context, id, name string) error {
	n, err := batchStageScript.Run(ctx, j.c, []string{batchHashKey(id), batchStagedKey(id)}, name).Int()
	switch {
	case err != nil:
		return fmt.Errorf("staging part %s of batch %s: %w", name, id, err)
	case n == -1:
		return fmt.Errorf("staging a part of batch %s: finalization began: %w", id, ErrBatchConflict)
	case n == -2:
		return fmt.Errorf("batch %s: %w", id, ErrBatchNotFound)
	}
	return nil
}

func (j *jobRedis) StagedParts(ctx context.Context, id string) ([]string, error) {
	names, err := j.c.SMembers(ctx, batchStagedKey(id)).Result()
	if err != nil {
		return nil, fmt.Errorf("listing staged parts of batch %s: %w", id, err)
	}
	return names, nil
}

func (j *jobRedis) ClaimFinalize(ctx context.Context, id, owner string, now time.Time, lease time.Duration) (FinalizeMode, bool, error) {
	m, err := batchClaimFinalizeScript.Run(ctx, j.c, []string{batchHashKey(id), batchLeasesKey(id)},
		owner, now.UnixMilli(), batchDeadline(now, lease), now.Unix()).Text()
	if errors.Is(err, redis.Nil) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("claiming finalization of batch %s: %w", id, err)
	}
	return FinalizeMode(m), true, nil
}

func (j *jobRedis) Parts(ctx context.Context, id string) ([]LinePart, error) {
	vs, err := j.c.LRange(ctx, batchPartsKey(id), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("listing parts of batch %s: %w", id, err)
	}
	out := make([]LinePart, 0, len(vs))
	for _, v := range vs {
		ok, errb, _ := strings.Cut(v, "|")
		out = append(out, LinePart{OKBlob: ok, ErrBlob: errb})
	}
	return out, nil
}

func (j *jobRedis) FinishBatch(ctx context.Context, id, owner string, f BatchFinish, now time.Time) (bool, error) {
	n, err := batchFinishScript.Run(ctx, j.c, []string{batchHashKey(id), batchLeasesKey(id)},
		owner, string(f.Status), now.Unix(), f.OutputFileID, f.ErrorFileID, f.AddFailed).Int()
	if err != nil {
		return false, fmt.Errorf("finishing batch %s: %w", id, err)
	}
	return n == 1, nil
}

func (j *jobRedis) PurgeBatchWork(ctx context.Context, id string) error {
	_, err := j.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, batchLeasesKey(id), batchChunksKey(id), batchCDoneKey(id), batchDoneKey(id), batchPartsKey(id), batchStagedKey(id))
		p.SRem(ctx, batchActiveKey(), id)
		return nil
	})
	if err != nil {
		return fmt.Errorf("purging work keys of batch %s: %w", id, err)
	}
	return nil
}
