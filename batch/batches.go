package batch

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"unicode/utf8"

	"github.com/vllm-proxy/vllm-proxy/state"
)

// endpoints are the batch endpoints vLLM serves.
var endpoints = map[string]bool{
	"/v1/chat/completions": true, "/v1/completions": true, "/v1/embeddings": true, "/v1/responses": true,
}

const (
	maxCreateBody     = 1 << 20
	maxMetadataPairs  = 16
	maxMetadataKey    = 64
	maxMetadataValue  = 512
	maxBatchListLimit = 100
)

type createBatchBody struct {
	InputFileID        *string         `json:"input_file_id"`
	Endpoint           *string         `json:"endpoint"`
	CompletionWindow   *string         `json:"completion_window"`
	Metadata           json.RawMessage `json:"metadata"`
	OutputExpiresAfter *struct {
		Anchor  string          `json:"anchor"`
		Seconds json.RawMessage `json:"seconds"`
	} `json:"output_expires_after"`
}

// parseCreateBatch checks everything knowable without reading the input file (B1–B8);
// each error names the offending field in param.
func parseCreateBatch(body []byte) (createBatchBody, map[string]string, int64, error) {
	var b createBatchBody
	if err := json.Unmarshal(body, &b); err != nil {
		return b, nil, 0, badRequest("", "We could not parse the JSON body of your request.")
	}
	if b.InputFileID == nil || *b.InputFileID == "" {
		return b, nil, 0, badRequest("input_file_id", "Missing required parameter: 'input_file_id'.")
	}
	if b.Endpoint == nil || !endpoints[*b.Endpoint] {
		return b, nil, 0, badRequest("endpoint", "Invalid endpoint: must be one of /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/responses.")
	}
	if b.CompletionWindow == nil || *b.CompletionWindow != "24h" {
		return b, nil, 0, badRequest("completion_window", "Invalid completion_window: only \"24h\" is supported.")
	}
	var meta map[string]string
	if len(b.Metadata) > 0 && !bytes.Equal(bytes.TrimSpace(b.Metadata), []byte("null")) {
		var raw map[string]any
		if err := json.Unmarshal(b.Metadata, &raw); err != nil {
			return b, nil, 0, badRequest("metadata", "metadata must be an object of strings.")
		}
		if len(raw) > maxMetadataPairs {
			return b, nil, 0, badRequest("metadata", "metadata may hold at most 16 pairs.")
		}
		meta = make(map[string]string, len(raw))
		for k, v := range raw {
			s, ok := v.(string)
			switch {
			case !ok:
				return b, nil, 0, badRequest("metadata", "metadata values must be strings.")
			case utf8.RuneCountInString(k) > maxMetadataKey:
				return b, nil, 0, badRequest("metadata", "metadata keys may be at most 64 characters.")
			case utf8.RuneCountInString(s) > maxMetadataValue:
				return b, nil, 0, badRequest("metadata", "metadata values may be at most 512 characters.")
			}
			meta[k] = s
		}
	}
	var outTTL int64
	if oe := b.OutputExpiresAfter; oe != nil {
		if oe.Anchor != "created_at" {
			return b, nil, 0, badRequest("output_expires_after.anchor", "output_expires_after.anchor must be \"created_at\".")
		}
		s, err := strconv.ParseInt(string(oe.Seconds), 10, 64)
		if err != nil || s < minExpirySecs || s > maxExpirySecs {
			return b, nil, 0, badRequest("output_expires_after.seconds", "output_expires_after.seconds must be an integer between 3600 and 2592000.")
		}
		outTTL = s
	}
	return b, meta, outTTL, nil
}

// createBatch serves POST /v1/batches. The batch starts in validating; the file's content
// is checked by a worker, which moves it to in_progress or failed.
func (a *API) createBatch(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxCreateBody))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		writeError(w, r, a.log, &apiError{status: http.StatusRequestEntityTooLarge, typ: "invalid_request_error",
			msg: fmt.Sprintf("The request body exceeds %d bytes.", maxCreateBody)})
		return
	case err != nil:
		writeError(w, r, a.log, badRequest("", "The request body is unreadable."))
		return
	}
	b, meta, outTTL, err := parseCreateBatch(body)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	f, err := a.ownFile(ctx, *b.InputFileID)
	if errors.Is(err, state.ErrFileNotFound) {
		err = &apiError{status: http.StatusNotFound, typ: "invalid_request_error",
			msg: "No such File object: " + *b.InputFileID + ".", param: "input_file_id"}
	}
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	if f.Purpose != "batch" {
		writeError(w, r, a.log, badRequest("input_file_id", "The input file must have purpose \"batch\"."))
		return
	}
	now := a.cfg.Now()
	spec := state.BatchSpec{
		ID: a.ids.batch(now), Endpoint: *b.Endpoint, InputFileID: f.ID, CompletionWindow: "24h",
		CreatedAt: now.Unix(), CreatedMS: now.UnixMilli(),
		ExpiresAt: now.Add(a.cfg.CompletionWindow).Unix(), Metadata: meta, OutputExpiresAfter: outTTL,
		Owner: a.tenant(ctx),
	}
	rec, err := a.jobs.CreateBatch(ctx, spec)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	a.log.InfoContext(ctx, "batch created", "batch", rec.ID, "input_file", f.ID, "endpoint", rec.Endpoint,
		"tenant", rec.Owner)
	writeJSON(w, http.StatusOK, toBatchObject(rec))
}

// getBatch serves GET /v1/batches/{id}.
func (a *API) getBatch(w http.ResponseWriter, r *http.Request) {
	rec, err := a.ownBatch(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	writeJSON(w, http.StatusOK, toBatchObject(rec))
}

// listBatches serves GET /v1/batches?after=&limit=, newest first.
func (a *API) listBatches(w http.ResponseWriter, r *http.Request) {
	limit, err := queryLimit(r, 20, maxBatchListLimit)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	ctx := r.Context()
	after := r.URL.Query().Get("after")
	recs, more, err := ownPage(ctx, a, after, limit, a.isBatchOwned,
		func(b state.BatchRecord) string { return b.Owner }, func(b state.BatchRecord) string { return b.ID },
		func(after string, n int) ([]state.BatchRecord, bool, error) { return a.jobs.ListBatches(ctx, after, n) })
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	objs := make([]batchObject, len(recs))
	for i, rec := range recs {
		objs[i] = toBatchObject(rec)
	}
	writeJSON(w, http.StatusOK, newList(objs, func(b batchObject) string { return b.ID }, more))
}

// cancelBatch serves POST /v1/batches/{id}/cancel: cancelling at once; idempotent for
// cancelling/cancelled; 409 for completed, failed and expired.
func (a *API) cancelBatch(w http.ResponseWriter, r *http.Request) {
	if _, err := a.ownBatch(r.Context(), r.PathValue("id")); err != nil {
		writeError(w, r, a.log, err)
		return
	}
	rec, err := a.jobs.CancelBatch(r.Context(), r.PathValue("id"), a.cfg.Now())
	if errors.Is(err, state.ErrBatchConflict) {
		err = &apiError{status: http.StatusConflict, typ: "invalid_request_error",
			msg: "Cannot cancel a batch with status '" + string(rec.Status) + "'."}
	}
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	writeJSON(w, http.StatusOK, toBatchObject(rec))
}
