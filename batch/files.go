package batch

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"

	"github.com/vllm-proxy/vllm-proxy/state"
)

// Multipart limits besides the file itself.
const (
	maxFieldBytes   = 1 << 10 // purpose, expires_after[…]
	maxFormOverhead = 1 << 20 // headers, boundaries and small fields around the file
	maxParts        = 32
	minExpirySecs   = 3600
	maxExpirySecs   = 2592000
)

// createFile streams a multipart upload into the blob store: POST /v1/files. The file is
// checked for size, a .jsonl name and UTF-8 on the way; content is validated only when a
// batch uses it. Fields may come in any order; on any failure nothing is kept.
func (a *API) createFile(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		writeError(w, r, a.log, badRequest("", "Expected a multipart/form-data body."))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, a.cfg.MaxFileBytes+maxFormOverhead)
	mr, err := r.MultipartReader()
	if err != nil {
		writeError(w, r, a.log, badRequest("", "Malformed multipart body."))
		return
	}
	id := a.ids.file(a.cfg.Now())
	stored := false
	fail := func(err error) {
		if stored {
			_ = a.blobs.Delete(ctx, id)
		}
		writeError(w, r, a.log, err)
	}
	var (
		purpose, filename, anchor, seconds string
		size                               int64
		seen                               = map[string]bool{}
	)
	for n := 0; ; n++ {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			fail(uploadError(fmt.Errorf("%w: %w", errUploadRead, err)))
			return
		}
		if n >= maxParts {
			fail(badRequest("", "Too many multipart fields."))
			return
		}
		name := part.FormName()
		if seen[name] && name != "" {
			fail(badRequest(name, "Duplicate field "+name+"."))
			return
		}
		seen[name] = true
		switch name {
		case "file":
			filename = part.FileName()
			if filename == "" {
				fail(badRequest("file", "The file field must be a file with a filename."))
				return
			}
			if !strings.HasSuffix(strings.ToLower(filename), ".jsonl") {
				fail(badRequest("", "Invalid file format for Batch API. Must be .jsonl"))
				return
			}
			size, err = a.blobs.Put(ctx, id, &utf8Reader{r: partReader{part}}, a.cfg.MaxFileBytes)
			if err != nil {
				fail(uploadError(err))
				return
			}
			stored = true
		case "purpose", "expires_after[anchor]", "expires_after[seconds]":
			v, err := readField(part)
			if err != nil {
				fail(err)
				return
			}
			switch name {
			case "purpose":
				purpose = v
				if purpose != "batch" {
					fail(badRequest("purpose", "Invalid purpose "+strconv.Quote(v)+": only \"batch\" is supported."))
					return
				}
			case "expires_after[anchor]":
				anchor = v
			default:
				seconds = v
			}
		default:
			if _, err := io.Copy(io.Discard, partReader{part}); err != nil { // unknown fields are ignored
				fail(uploadError(err))
				return
			}
		}
	}
	if !stored {
		fail(badRequest("file", "Missing required parameter: 'file'."))
		return
	}
	if purpose == "" {
		fail(badRequest("purpose", "Missing required parameter: 'purpose'."))
		return
	}
	ttl := int64(a.cfg.FileTTL.Seconds())
	if anchor != "" || seconds != "" {
		if anchor != "created_at" {
			fail(badRequest("expires_after[anchor]", "expires_after[anchor] must be \"created_at\"."))
			return
		}
		s, err := strconv.ParseInt(seconds, 10, 64)
		if err != nil || s < minExpirySecs || s > maxExpirySecs {
			fail(badRequest("expires_after[seconds]", "expires_after[seconds] must be an integer between 3600 and 2592000."))
			return
		}
		ttl = s
	}
	now := a.cfg.Now()
	rec := state.FileRecord{ID: id, Bytes: size, CreatedAt: now.Unix(), CreatedMS: now.UnixMilli(),
		ExpiresAt: now.Unix() + ttl, Filename: filename, Purpose: purpose, Status: "processed", Owner: a.tenant(ctx)}
	if err := a.jobs.CreateFile(ctx, rec); err != nil {
		fail(err)
		return
	}
	a.m.uploadBytes.Add(float64(size))
	writeJSON(w, http.StatusOK, toFileObject(rec))
}

// errUploadRead marks a failure reading the client's body (as opposed to storing it).
var errUploadRead = errors.New("reading the upload")

// partReader tags the client-side read errors of a part, so they map to 400 (or 413)
// while storage errors stay 5xx.
type partReader struct{ r io.Reader }

func (p partReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if err != nil && err != io.EOF { //nolint:errorlint // io.EOF is never wrapped by a Reader
		err = fmt.Errorf("%w: %w", errUploadRead, err)
	}
	return n, err
}

// uploadError classifies a failure while reading the upload.
func uploadError(err error) error {
	var mbe *http.MaxBytesError
	switch {
	case errors.Is(err, state.ErrBlobTooLarge), errors.As(err, &mbe):
		return err // 413
	case errors.Is(err, errNotUTF8):
		return badRequest("file", "The file is not valid UTF-8.")
	case errors.Is(err, errUploadRead):
		return badRequest("", "Malformed multipart body.")
	default:
		return fmt.Errorf("storing upload: %w", err)
	}
}

func readField(p *multipart.Part) (string, error) {
	b, err := io.ReadAll(io.LimitReader(partReader{p}, maxFieldBytes+1))
	if err != nil {
		return "", uploadError(err)
	}
	if len(b) > maxFieldBytes {
		return "", badRequest(p.FormName(), "Field "+p.FormName()+" is too long.")
	}
	return string(b), nil
}

// listFiles serves GET /v1/files?purpose=&limit=&order=&after=.
func (a *API) listFiles(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, err := queryLimit(r, 10000, 10000)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	order := q.Get("order")
	if order != "" && order != "asc" && order != "desc" {
		writeError(w, r, a.log, badRequest("order", "order must be \"asc\" or \"desc\"."))
		return
	}
	ctx := r.Context()
	after := q.Get("after")
	recs, more, err := ownPage(ctx, a, after, limit, a.isFileOwned,
		func(f state.FileRecord) string { return f.Owner }, func(f state.FileRecord) string { return f.ID },
		func(after string, n int) ([]state.FileRecord, bool, error) {
			return a.jobs.ListFiles(ctx, state.FileQuery{Purpose: q.Get("purpose"), After: after, Limit: n, Asc: order == "asc"})
		})
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	objs := make([]fileObject, len(recs))
	for i, f := range recs {
		objs[i] = toFileObject(f)
	}
	writeJSON(w, http.StatusOK, newList(objs, func(f fileObject) string { return f.ID }, more))
}

// getFile serves GET /v1/files/{id}.
func (a *API) getFile(w http.ResponseWriter, r *http.Request) {
	f, err := a.ownFile(r.Context(), r.PathValue("id"))
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	writeJSON(w, http.StatusOK, toFileObject(f))
}

// fileContent streams the file's bytes: GET /v1/files/{id}/content.
func (a *API) fileContent(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	f, err := a.ownFile(ctx, r.PathValue("id"))
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	rc, err := a.blobs.Open(ctx, f.ID, 0)
	if errors.Is(err, state.ErrBlobNotFound) {
		err = state.ErrFileNotFound
	}
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(f.Bytes, 10))
	w.WriteHeader(http.StatusOK)
	if _, err := io.Copy(w, rc); err != nil {
		a.log.WarnContext(ctx, "streaming file content failed", "file", f.ID, "err", err)
	}
}

// deleteFile serves DELETE /v1/files/{id}; 409 while a non-terminal batch uses the file.
func (a *API) deleteFile(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id := r.PathValue("id")
	if _, err := a.ownFile(ctx, id); err != nil {
		writeError(w, r, a.log, err)
		return
	}
	users, err := a.jobs.FileBatches(ctx, id)
	if err != nil {
		writeError(w, r, a.log, err)
		return
	}
	for _, b := range users {
		rec, err := a.jobs.GetBatch(ctx, b)
		if errors.Is(err, state.ErrBatchNotFound) {
			continue
		}
		if err != nil {
			writeError(w, r, a.log, err)
			return
		}
		if !rec.Status.Terminal() {
			writeError(w, r, a.log, &apiError{status: http.StatusConflict, typ: "invalid_request_error",
				msg: "File " + id + " is used by batch " + b + " (status " + string(rec.Status) + ")."})
			return
		}
	}
	if err := a.jobs.DeleteFile(ctx, id); err != nil {
		writeError(w, r, a.log, err)
		return
	}
	if err := a.blobs.Delete(ctx, id); err != nil {
		a.log.WarnContext(ctx, "deleting file bytes failed", "file", id, "err", err)
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "object": "file", "deleted": true})
}
