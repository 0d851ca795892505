package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// jobRedis is the Redis JobStore: files here, batches in batch_redis.go.
type jobRedis struct {
	c redis.UniversalClient
}

func newJobRedis(c redis.UniversalClient) *jobRedis { return &jobRedis{c: c} }

var _ JobStore = (*jobRedis)(nil)

func (j *jobRedis) CreateFile(ctx context.Context, f FileRecord) error {
	b, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("encoding file %s: %w", f.ID, err)
	}
	_, err = j.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, fileHashKey(f.ID), "rec", b)
		z := redis.Z{Score: float64(f.CreatedMS), Member: f.ID}
		p.ZAdd(ctx, fileListKey(), z)
		p.ZAdd(ctx, filePurposeKey(f.Purpose), z)
		if f.ExpiresAt > 0 {
			p.ZAdd(ctx, fileExpiryKey(), redis.Z{Score: float64(f.ExpiresAt), Member: f.ID})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("storing file %s: %w", f.ID, err)
	}
	return nil
}

func (j *jobRedis) GetFile(ctx context.Context, id string) (FileRecord, error) {
	b, err := j.c.HGet(ctx, fileHashKey(id), "rec").Bytes()
	if errors.Is(err, redis.Nil) {
		return FileRecord{}, fmt.Errorf("file %s: %w", id, ErrFileNotFound)
	}
	if err != nil {
		return FileRecord{}, fmt.Errorf("reading file %s: %w", id, err)
	}
	var f FileRecord
	if err := json.Unmarshal(b, &f); err != nil {
		return FileRecord{}, fmt.Errorf("decoding file %s: %w", id, err)
	}
	return f, nil
}

func (j *jobRedis) ListFiles(ctx context.Context, q FileQuery) ([]FileRecord, bool, error) {
	key := fileListKey()
	if q.Purpose != "" {
		key = filePurposeKey(q.Purpose)
	}
	start := int64(0)
	if q.After != "" {
		var (
			rank int64
			err  error
		)
		if q.Asc {
			rank, err = j.c.ZRank(ctx, key, q.After).Result()
		} else {
			rank, err = j.c.ZRevRank(ctx, key, q.After).Result()
		}
		if errors.Is(err, redis.Nil) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, fmt.Errorf("finding file %s in the list: %w", q.After, err)
		}
		start = rank + 1
	}
	stop := start + int64(q.Limit) // one more than asked, to know has_more
	var ids []string
	var err error
	if q.Asc {
		ids, err = j.c.ZRange(ctx, key, start, stop).Result()
	} else {
		ids, err = j.c.ZRevRange(ctx, key, start, stop).Result()
	}
	if err != nil {
		return nil, false, fmt.Errorf("listing files: %w", err)
	}
	more := len(ids) > q.Limit
	if more {
		ids = ids[:q.Limit]
	}
	out := make([]FileRecord, 0, len(ids))
	for _, id := range ids {
		f, err := j.GetFile(ctx, id)
		if errors.Is(err, ErrFileNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, false, err
		}
		out = append(out, f)
	}
	return out, more, nil
}

func (j *jobRedis) DeleteFile(ctx context.Context, id string) error {
	f, err := j.GetFile(ctx, id)
	if err != nil {
		return err
	}
	_, err = j.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, fileHashKey(id), fileBatchesKey(id))
		p.ZRem(ctx, fileListKey(), id)
		p.ZRem(ctx, filePurposeKey(f.Purpose), id)
		p.ZRem(ctx, fileExpiryKey(), id)
		return nil
	})
	if err != nil {
		return fmt.Errorf("deleting file %s: %w", id, err)
	}
	return nil
}

func (j *jobRedis) ExpiredFiles(ctx context.Context, now int64, limit int) ([]string, error) {
	ids, err := j.c.ZRangeByScore(ctx, fileExpiryKey(), &redis.ZRangeBy{
		Min: "-inf", Max: strconv.FormatInt(now, 10), Count: int64(limit),
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("listing expired files: %w", err)
	}
	return ids, nil
}

func (j *jobRedis) FileBatches(ctx context.Context, fileID string) ([]string, error) {
	ids, err := j.c.SMembers(ctx, fileBatchesKey(fileID)).Result()
	if err != nil {
		return nil, fmt.Errorf("listing batches of file %s: %w", fileID, err)
	}
	return ids, nil
}
