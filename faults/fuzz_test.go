package faults

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/vllm-proxy/vllm-proxy/batch"
	"github.com/vllm-proxy/vllm-proxy/state"
)

// noDispatch is a batch.Dispatcher for an API whose workers never run.
type noDispatch struct{}

func (noDispatch) Dispatch(context.Context, batch.Request) (batch.Response, error) {
	return batch.Response{}, batch.ErrRetryable
}

// FuzzFileIDPath sends file ids taken from the URL path (raw, so percent-encoded
// slashes and dot segments reach the {id} wildcard decoded) to the Files API backed by
// the directory blob store (--files-dir), as GET, GET …/content and DELETE. Property:
// nothing outside the directory is read, changed or deleted (sentinel files next to it
// and in a sibling directory keep their content and never appear in an answer), and
// every answer is a redirect, 200, 400, 404 or 405: never a 5xx. Seeds: f.Add below and
// testdata/fuzz/FuzzFileIDPath.
func FuzzFileIDPath(f *testing.F) {
	for _, s := range []string{
		"file-abc", "..", "..%2F..%2Fsecret", "%2E%2E%2Fsecret", "..%2Fsecret", "%2Fetc%2Fpasswd",
		"..%5Csecret", "files-other%2Fx", "..%2Ffiles-other%2Fx", ".put-123", "%00", "a%2F..%2F..%2Fsecret",
		"secret", "~", "%252E%252E%252Fsecret", "file-abc%2F..%2F..%2Fsecret",
	} {
		f.Add(uint8(0), s)
		f.Add(uint8(1), s)
		f.Add(uint8(2), s)
	}
	root := f.TempDir()
	dir := filepath.Join(root, "files")
	const secret = "SENTINEL-SECRET-CONTENT"
	sentinels := []string{filepath.Join(root, "secret"), filepath.Join(root, "files-other", "x")}
	for _, p := range sentinels {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			f.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(secret), 0o644); err != nil {
			f.Fatal(err)
		}
	}
	blobs, err := batch.NewDirBlobs(dir)
	if err != nil {
		f.Fatal(err)
	}
	b, err := batch.New(batch.Config{}, state.NewJobMemory(), blobs, noDispatch{}, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		f.Fatal(err)
	}
	id := uploadInProcess(f, b.API, []byte(`{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"m"}}`+"\n"))
	f.Add(uint8(1), id)

	f.Fuzz(func(t *testing.T, op uint8, rawID string) {
		method, suffix := http.MethodGet, ""
		switch op % 3 {
		case 1:
			suffix = "/content"
		case 2:
			if rawID == id {
				return // keep the one real file for the other inputs
			}
			method = http.MethodDelete
		}
		u, err := url.Parse("http://proxy/v1/files/" + rawID + suffix)
		if err != nil {
			return
		}
		req, err := http.NewRequestWithContext(t.Context(), method, u.String(), nil)
		if err != nil {
			return
		}
		rec := httptest.NewRecorder()
		b.API.ServeHTTP(rec, req)
		switch rec.Code {
		case 200, 301, 307, 308, 400, 404, 405:
		default:
			t.Fatalf("%s %s: status %d %s", method, u, rec.Code, rec.Body.Bytes())
		}
		if bytes.Contains(rec.Body.Bytes(), []byte(secret)) {
			t.Fatalf("%s %s: answer contains a file from outside the directory", method, u)
		}
		for _, p := range sentinels {
			got, err := os.ReadFile(p)
			if err != nil || string(got) != secret {
				t.Fatalf("%s %s: %s changed or removed (%v)", method, u, p, err)
			}
		}
	})
}

// uploadInProcess uploads content through api and returns the file id.
func uploadInProcess(tb testing.TB, api http.Handler, content []byte) string {
	tb.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	_ = mw.WriteField("purpose", "batch")
	fw, _ := mw.CreateFormFile("file", "in.jsonl")
	_, _ = fw.Write(content)
	_ = mw.Close()
	req := httptest.NewRequest(http.MethodPost, "/v1/files", &body)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	rec := httptest.NewRecorder()
	api.ServeHTTP(rec, req)
	b, _ := io.ReadAll(rec.Body)
	var v struct{ ID string }
	if rec.Code != http.StatusOK || jsonUnmarshal(b, &v) != nil || v.ID == "" {
		tb.Fatalf("upload: %d %s", rec.Code, b)
	}
	return v.ID
}

// FuzzCreateBatchBody posts arbitrary bodies to POST /v1/batches of the in-process batch
// API (memory job store, directory blob store holding one real input file). Property:
// no panic; the answer is 200 with a batch object naming an existing file, or an
// OpenAI-shaped 400/404/413; never a 5xx. Seeds: f.Add below.
func FuzzCreateBatchBody(f *testing.F) {
	blobs, err := batch.NewDirBlobs(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	b, err := batch.New(batch.Config{}, state.NewJobMemory(), blobs, noDispatch{}, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		f.Fatal(err)
	}
	id := uploadInProcess(f, b.API, []byte(`{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"m"}}`+"\n"))
	for _, s := range []string{
		`{"input_file_id":"` + id + `","endpoint":"/v1/chat/completions","completion_window":"24h"}`,
		`{"input_file_id":"` + id + `","endpoint":"/v1/embeddings","completion_window":"24h","metadata":{"a":"b"},"output_expires_after":{"anchor":"created_at","seconds":3600}}`,
		`{"input_file_id":"file-nope","endpoint":"/v1/chat/completions","completion_window":"24h"}`,
		`{"input_file_id":"` + id + `","endpoint":"http://evil/v1/chat/completions","completion_window":"24h"}`,
		`{"input_file_id":"` + id + `","endpoint":"/v1/chat/completions","completion_window":"1h","metadata":{"":"` + string(make([]byte, 600)) + `"}}`,
		`{"input_file_id":null}`, `{"metadata":[]}`, `[]`, ``, `{`, `{"input_file_id":"..%2Fsecret"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/v1/batches", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		b.API.ServeHTTP(rec, req)
		var v struct {
			ID          string `json:"id"`
			InputFileID string `json:"input_file_id"`
			Error       *struct {
				Message string `json:"message"`
				Type    string `json:"type"`
			} `json:"error"`
		}
		err := json.Unmarshal(rec.Body.Bytes(), &v)
		switch rec.Code {
		case http.StatusOK:
			if err != nil || v.ID == "" || v.InputFileID != id {
				t.Fatalf("200 for %q: %s", body, rec.Body.Bytes())
			}
		case http.StatusBadRequest, http.StatusNotFound, http.StatusRequestEntityTooLarge:
			if err != nil || v.Error == nil || v.Error.Message == "" || v.Error.Type == "" {
				t.Fatalf("%d without an OpenAI error for %q: %s", rec.Code, body, rec.Body.Bytes())
			}
		default:
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body.Bytes())
		}
	})
}
