package client

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want []string
	}{
		{Config{URL: "http://localhost:8010"}, nil},
		{Config{}, []string{"url: required"}},
		{Config{URL: "localhost:8010", Timeout: -1}, []string{"want http://host:port", "timeout -1ns"}},
		{Config{URL: "http://"}, []string{"want http://host:port"}},
	} {
		err := tc.cfg.Validate()
		if (err == nil) != (len(tc.want) == 0) {
			t.Errorf("%+v: err %v, want %v", tc.cfg, err, tc.want)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%+v: %v lacks %q", tc.cfg, err, w)
			}
		}
	}
}

func TestDecodeError(t *testing.T) {
	e := DecodeError(404, []byte(`{"error":{"message":"No such batch: b.","type":"invalid_request_error","param":"batch_id","code":null}}`))
	if e.Message != "No such batch: b." || e.Type != "invalid_request_error" || e.Param != "batch_id" || e.Code != "" {
		t.Errorf("decoded %+v", e)
	}
	if !errors.Is(e, ErrNotFound) || e.Error() != "404 No such batch: b. (param batch_id)" {
		t.Errorf("404 error: %v, Is(ErrNotFound) %v", e, errors.Is(e, ErrNotFound))
	}
	e = DecodeError(502, []byte("<html>bad gateway</html>"))
	if e.Message != "<html>bad gateway</html>" || errors.Is(e, ErrNotFound) {
		t.Errorf("non-JSON body: %+v", e)
	}
	if e := DecodeError(500, nil); e.Error() != "500 Internal Server Error" {
		t.Errorf("empty body: %v", e)
	}
	if e := DecodeError(400, []byte(`{"error":{"message":"m","code":429}}`)); e.Code != "429" {
		t.Errorf("numeric code: %+v", e)
	}
}

// FuzzDecodeError: any body decodes without panic into an error whose text has the
// status and at most 200 characters of a non-JSON body.
func FuzzDecodeError(f *testing.F) {
	f.Add(400, []byte(`{"error":{"message":"bad","type":"t","param":"p","code":"c"}}`))
	f.Add(404, []byte(`{"error":null}`))
	f.Add(500, []byte(`{"error":{"message":1}}`))
	f.Add(502, []byte(strings.Repeat("x", 500)))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		e := DecodeError(status, body)
		if e.Status != status || e.Error() == "" {
			t.Fatalf("%+v", e)
		}
		if len([]rune(e.Message)) > 201 && !strings.HasPrefix(strings.TrimSpace(string(body)), "{") {
			t.Fatalf("message of %d runes from a non-JSON body", len([]rune(e.Message)))
		}
	})
}

// TestRequests: the client sends the bearer key and the right method and path, uploads
// multipart with purpose batch, follows has_more, and turns an error body into an
// *APIError, over real loopback HTTP.
func TestRequests(t *testing.T) {
	var seen []string
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/files", func(w http.ResponseWriter, r *http.Request) {
		f, h, err := r.FormFile("file")
		if err != nil || r.FormValue("purpose") != "batch" {
			http.Error(w, "bad form", 400)
			return
		}
		b, _ := io.ReadAll(f)
		_, _ = io.WriteString(w, `{"id":"file-1","bytes":`+strconv.Itoa(len(b))+`,"filename":"`+h.Filename+`","purpose":"batch"}`)
	})
	mux.HandleFunc("GET /v1/files", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("after") == "" {
			_, _ = io.WriteString(w, `{"data":[{"id":"file-2"},{"id":"file-1"}],"has_more":true}`)
			return
		}
		_, _ = io.WriteString(w, `{"data":[{"id":"file-0"}],"has_more":false}`)
	})
	mux.HandleFunc("GET /v1/batches/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(404)
		_, _ = io.WriteString(w, `{"error":{"message":"No such batch.","type":"invalid_request_error","param":null,"code":null}}`)
	})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.Method+" "+r.URL.Path+" "+r.Header.Get("Authorization"))
		mux.ServeHTTP(w, r)
	}))
	defer srv.Close()
	c, err := New(Config{URL: srv.URL + "/", APIKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	f, err := c.UploadFile(t.Context(), "in.jsonl", strings.NewReader("{}\n{}\n"))
	if err != nil || f.ID != "file-1" || f.Bytes != 6 || f.Filename != "in.jsonl" {
		t.Errorf("upload: %+v %v", f, err)
	}
	fs, err := c.ListFiles(t.Context())
	if err != nil || len(fs) != 3 || fs[2].ID != "file-0" {
		t.Errorf("list: %+v %v", fs, err)
	}
	_, err = c.GetBatch(t.Context(), "b")
	var ae *APIError
	if !errors.As(err, &ae) || ae.Status != 404 || !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "No such batch.") {
		t.Errorf("get of a missing batch: %v", err)
	}
	want := []string{"POST /v1/files Bearer k", "GET /v1/files Bearer k", "GET /v1/files Bearer k", "GET /v1/batches/b Bearer k"}
	if strings.Join(seen, "|") != strings.Join(want, "|") {
		t.Errorf("requests %q, want %q", seen, want)
	}
}
