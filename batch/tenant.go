package batch

import (
	"context"
	"errors"
	"fmt"

	"github.com/vllm-proxy/vllm-proxy/state"
)

// Tenant scoping: every file and batch records the tenant that created it (Owner), and
// the API acts as if another tenant's objects did not exist: 404 on every id-based
// endpoint, absent from lists. With API keys off every request and every object is
// tenant "", so nothing is filtered.

// tenant is the tenant r's context acts for.
func (a *API) tenant(ctx context.Context) string {
	if a.cfg.Tenant == nil {
		return ""
	}
	return a.cfg.Tenant(ctx)
}

// ownFile returns the file if the caller's tenant owns it, else ErrFileNotFound.
func (a *API) ownFile(ctx context.Context, id string) (state.FileRecord, error) {
	f, err := a.jobs.GetFile(ctx, id)
	if err != nil {
		return f, err
	}
	if f.Owner != a.tenant(ctx) {
		return state.FileRecord{}, fmt.Errorf("file %s of another tenant: %w", id, state.ErrFileNotFound)
	}
	return f, nil
}

// ownBatch returns the batch if the caller's tenant owns it, else ErrBatchNotFound.
func (a *API) ownBatch(ctx context.Context, id string) (state.BatchRecord, error) {
	b, err := a.jobs.GetBatch(ctx, id)
	if err != nil {
		return b, err
	}
	if b.Owner != a.tenant(ctx) {
		return state.BatchRecord{}, fmt.Errorf("batch %s of another tenant: %w", id, state.ErrBatchNotFound)
	}
	return b, nil
}

// isFileOwned is ownFile for callers that need only the error.
func (a *API) isFileOwned(ctx context.Context, id string) error {
	_, err := a.ownFile(ctx, id)
	return err
}

// isBatchOwned is ownBatch for callers that need only the error.
func (a *API) isBatchOwned(ctx context.Context, id string) error {
	_, err := a.ownBatch(ctx, id)
	return err
}

// ownPage pages through a store list, keeping the caller's tenant's records, until it
// holds limit of them and knows whether one more follows. Each store page asks for
// limit+1 records, so with a single tenant (keys off) it is one store call, as before.
// after must be one of the caller's own ids (checked with own) or "": another tenant's
// id is treated like an unknown one, an empty page.
func ownPage[T any](ctx context.Context, a *API, after string, limit int, own func(context.Context, string) error,
	owner, id func(T) string, list func(after string, n int) ([]T, bool, error)) ([]T, bool, error) {
	if after != "" {
		err := own(ctx, after)
		if errors.Is(err, state.ErrFileNotFound) || errors.Is(err, state.ErrBatchNotFound) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, err
		}
	}
	tenant := a.tenant(ctx)
	var out []T
	for {
		recs, more, err := list(after, limit+1)
		if err != nil {
			return nil, false, err
		}
		for _, r := range recs {
			if owner(r) == tenant {
				out = append(out, r)
			}
		}
		if len(out) > limit {
			return out[:limit], true, nil
		}
		if !more || len(recs) == 0 {
			return out, false, nil
		}
		after = id(recs[len(recs)-1])
	}
}
