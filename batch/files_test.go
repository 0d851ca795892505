package batch

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"
	"time"
	"unicode/utf8"

	"github.com/vllm-proxy/vllm-proxy/state"
)

// errorEnvelope decodes an error answer and checks all four keys are present.
func checkEnvelope(t *testing.T, raw []byte, param string) {
	t.Helper()
	var m map[string]map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("error body %q: %v", raw, err)
	}
	e := m["error"]
	for _, k := range []string{"message", "type", "param", "code"} {
		if _, ok := e[k]; !ok {
			t.Fatalf("error body %s lacks %q", raw, k)
		}
	}
	got, _ := e["param"].(string)
	if got != param {
		t.Fatalf("param = %q, want %q (%s)", got, param, raw)
	}
}

func rawDo(t *testing.T, method, url string, body io.Reader, ctype string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), method, url, body)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestFilesAPI covers checklist items 1–6 on the Redis stores.
func TestFilesAPI(t *testing.T) {
	s := redisStores(t, statetestRedis(t).URL, "r1")
	cfg := testConfig("r1")
	cfg.MaxFileBytes = 1000
	r := startReplica(t, cfg, s, nil, false)
	base := r.srv.URL
	data := []byte(line("a", chatURL, okBody) + "\n")

	// 1. Upload: 200 and every field; purpose may come after the file.
	body, ct := multipartBody(t, "in.jsonl", data, "file", "", "purpose", "batch")
	var f fileObject
	if st := do(t, http.MethodPost, base+"/v1/files", body, ct, &f); st != http.StatusOK {
		t.Fatalf("upload status %d", st)
	}
	if !strings.HasPrefix(f.ID, "file-") || f.Object != "file" || f.Bytes != int64(len(data)) || f.Filename != "in.jsonl" ||
		f.Purpose != "batch" || f.Status == "" || f.ExpiresAt == nil || *f.ExpiresAt != f.CreatedAt+30*86400 {
		t.Fatalf("file object %+v", f)
	}
	// 5. Content is byte-identical.
	if got := content(t, base, f.ID); !bytes.Equal(got, data) {
		t.Fatalf("content %q", got)
	}
	// expires_after honoured.
	body, ct = multipartBody(t, "e.jsonl", data, "purpose", "batch", "expires_after[anchor]", "created_at", "expires_after[seconds]", "3600", "file", "")
	var fe fileObject
	if st := do(t, http.MethodPost, base+"/v1/files", body, ct, &fe); st != http.StatusOK || *fe.ExpiresAt != fe.CreatedAt+3600 {
		t.Fatalf("expires_after: %d %+v", st, fe)
	}

	bad := []struct {
		name   string
		body   func() (io.Reader, string)
		status int
		param  string
	}{
		{"txt file", func() (io.Reader, string) { return multipartBody(t, "in.txt", data, "purpose", "batch", "file", "") }, 400, ""},
		{"purpose fine-tune", func() (io.Reader, string) {
			return multipartBody(t, "in.jsonl", data, "purpose", "fine-tune", "file", "")
		}, 400, "purpose"},
		{"purpose after file", func() (io.Reader, string) { return multipartBody(t, "in.jsonl", data, "file", "", "purpose", "vision") }, 400, "purpose"},
		{"no purpose", func() (io.Reader, string) { return multipartBody(t, "in.jsonl", data, "file", "") }, 400, "purpose"},
		{"no file", func() (io.Reader, string) { return multipartBody(t, "in.jsonl", data, "purpose", "batch") }, 400, "file"},
		{"not utf-8", func() (io.Reader, string) {
			return multipartBody(t, "in.jsonl", []byte("ok\xff\xfe\n"), "purpose", "batch", "file", "")
		}, 400, "file"},
		{"over the limit", func() (io.Reader, string) {
			return multipartBody(t, "in.jsonl", bytes.Repeat([]byte("a"), 1001), "purpose", "batch", "file", "")
		}, 413, "file"},
		{"bad expiry", func() (io.Reader, string) {
			return multipartBody(t, "in.jsonl", data, "purpose", "batch", "expires_after[anchor]", "created_at", "expires_after[seconds]", "10", "file", "")
		}, 400, "expires_after[seconds]"},
		{"malformed multipart", func() (io.Reader, string) {
			return strings.NewReader("--xx\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jsonl\"\r\n\r\nabc"), "multipart/form-data; boundary=xx"
		}, 400, ""},
		{"not multipart", func() (io.Reader, string) { return strings.NewReader("{}"), "application/json" }, 400, ""},
	}
	for _, tc := range bad {
		b, ct := tc.body()
		st, raw := rawDo(t, http.MethodPost, base+"/v1/files", b, ct)
		if st != tc.status {
			t.Fatalf("%s: status %d (%s), want %d", tc.name, st, raw, tc.status)
		}
		checkEnvelope(t, raw, tc.param)
	}
	// Nothing from the refused uploads was stored: only the two good files are listed.
	var list listObject[fileObject]
	do(t, http.MethodGet, base+"/v1/files", nil, "", &list)
	if len(list.Data) != 2 {
		t.Fatalf("%d files listed after refused uploads", len(list.Data))
	}

	// 4. Pagination: purpose filter, asc, limit 2, after.
	for range 3 {
		upload(t, base, data)
	}
	var seen []string
	after := ""
	for page := 0; ; page++ {
		var l listObject[fileObject]
		u := base + "/v1/files?purpose=batch&order=asc&limit=2"
		if after != "" {
			u += "&after=" + after
		}
		if st := do(t, http.MethodGet, u, nil, "", &l); st != http.StatusOK {
			t.Fatalf("list status %d", st)
		}
		for _, x := range l.Data {
			seen = append(seen, x.ID)
		}
		if len(l.Data) > 0 && (*l.FirstID != l.Data[0].ID || *l.LastID != l.Data[len(l.Data)-1].ID) {
			t.Fatalf("first/last ids %+v", l)
		}
		if !l.HasMore {
			break
		}
		after = *l.LastID
	}
	if len(seen) != 5 || seen[0] != f.ID {
		t.Fatalf("paged through %v", seen)
	}
	for _, q := range []string{"limit=0", "limit=10001", "order=up"} {
		if st, raw := rawDo(t, http.MethodGet, base+"/v1/files?"+q, nil, ""); st != 400 {
			t.Fatalf("%s: %d %s", q, st, raw)
		}
	}
	var empty listObject[fileObject]
	do(t, http.MethodGet, base+"/v1/files?after=file-unknown", nil, "", &empty)
	if len(empty.Data) != 0 || empty.HasMore || empty.FirstID != nil {
		t.Fatalf("unknown after %+v", empty)
	}

	// Delete is refused while a non-terminal batch uses the file.
	createBatch(t, base, f.ID, chatURL)
	if st, raw := rawDo(t, http.MethodDelete, base+"/v1/files/"+f.ID, nil, ""); st != http.StatusConflict {
		t.Fatalf("delete in-use: %d %s", st, raw)
	}
	// 6. Delete → deleted:true; then 404 everywhere.
	var del map[string]any
	if st := do(t, http.MethodDelete, base+"/v1/files/"+fe.ID, nil, "", &del); st != 200 || del["deleted"] != true || del["object"] != "file" || del["id"] != fe.ID {
		t.Fatalf("delete: %d %v", st, del)
	}
	for _, u := range []string{"/v1/files/" + fe.ID, "/v1/files/" + fe.ID + "/content"} {
		st, raw := rawDo(t, http.MethodGet, base+u, nil, "")
		if st != http.StatusNotFound {
			t.Fatalf("GET %s after delete: %d", u, st)
		}
		checkEnvelope(t, raw, "id")
	}
	if st, _ := rawDo(t, http.MethodDelete, base+"/v1/files/"+fe.ID, nil, ""); st != http.StatusNotFound {
		t.Fatalf("second delete %d", st)
	}
	if _, err := s.blobs.Size(t.Context(), fe.ID); err == nil {
		t.Fatal("deleted file's bytes remain")
	}
}

// TestUploadStreamsLargeFile uploads more than the blob chunk size through a slow reader
// and checks the stored bytes.
func TestUploadStreamsLargeFile(t *testing.T) {
	s := redisStores(t, statetestRedis(t).URL, "r1")
	r := startReplica(t, testConfig("r1"), s, nil, false)
	data := chatLines(30000, "m1", 5) // ~4 MB, several 1 MiB chunks
	body, ct := multipartBody(t, "big.jsonl", data, "purpose", "batch", "file", "")
	var f fileObject
	if st := do(t, http.MethodPost, r.srv.URL+"/v1/files", iotest.HalfReader(body), ct, &f); st != 200 || f.Bytes != int64(len(data)) {
		t.Fatalf("upload %d %+v", st, f)
	}
	if got := content(t, r.srv.URL, f.ID); !bytes.Equal(got, data) {
		t.Fatal("content differs")
	}
}

// FuzzCreateFile feeds arbitrary multipart bodies to the upload handler: it answers 200,
// 400 or 413, and a refused upload stores nothing.
func FuzzCreateFile(f *testing.F) {
	seed, ct := multipartBody(f, "a.jsonl", []byte("{}\n"), "purpose", "batch", "file", "")
	boundary := strings.TrimPrefix(ct, "multipart/form-data; boundary=")
	f.Add(boundary, seed.Bytes())
	f.Add("xx", []byte("--xx\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jsonl\"\r\n\r\nabc\r\n--xx--\r\n"))
	f.Add("xx", []byte("--xx\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n--xx--"))
	f.Add("b", []byte{})
	f.Fuzz(func(t *testing.T, boundary string, body []byte) {
		jobs, blobs := state.NewJobMemory(), state.NewBlobMemory()
		cfg := Config{MaxFileBytes: 64}.withDefaults()
		a := newAPI(cfg, jobs, blobs, discardLog(), NewMetrics(nil))
		req := httptest.NewRequest(http.MethodPost, "/v1/files", bytes.NewReader(body))
		req.Header.Set("Content-Type", "multipart/form-data; boundary="+boundary)
		rec := httptest.NewRecorder()
		a.ServeHTTP(rec, req)
		files, _, _ := jobs.ListFiles(t.Context(), state.FileQuery{Limit: 10})
		switch rec.Code {
		case 200:
			var fo fileObject
			if err := json.Unmarshal(rec.Body.Bytes(), &fo); err != nil || len(files) != 1 {
				t.Fatalf("200 with %q and %d files", rec.Body.Bytes(), len(files))
			}
			rc, err := blobs.Open(t.Context(), fo.ID, 0)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(rc)
			if !utf8.Valid(got) || int64(len(got)) != fo.Bytes || len(got) > 64 {
				t.Fatalf("stored %q for %+v", got, fo)
			}
		case 400, 413:
			if len(files) != 0 {
				t.Fatalf("refused upload (%d) stored %d files", rec.Code, len(files))
			}
		default:
			t.Fatalf("status %d: %s", rec.Code, rec.Body.Bytes())
		}
	})
}

// FuzzUTF8Reader: the streaming check agrees with utf8.Valid whatever the read sizes.
func FuzzUTF8Reader(f *testing.F) {
	for _, s := range []string{"", "abc", "héllo", "\xff", "日本語", "\xe6\x97", "a\xe6\x97\xa5b", "\xf0\x9f\x98\x80"} {
		f.Add([]byte(s), uint8(1))
	}
	f.Fuzz(func(t *testing.T, data []byte, step uint8) {
		var src io.Reader = bytes.NewReader(data)
		switch step % 3 {
		case 1:
			src = iotest.OneByteReader(src)
		case 2:
			src = iotest.HalfReader(src)
		}
		got, err := io.ReadAll(&utf8Reader{r: src})
		valid := utf8.Valid(data)
		if valid != (err == nil) {
			t.Fatalf("valid=%v err=%v for %q", valid, err, data)
		}
		if valid && !bytes.Equal(got, data) {
			t.Fatalf("passed %q for %q", got, data)
		}
	})
}

// TestJanitorDeletesExpiredFiles checks expired files go, files of running batches stay.
func TestJanitorDeletesExpiredFiles(t *testing.T) {
	s := memoryStores()
	now := time.Unix(1_000_000, 0)
	cfg := testConfig("r1")
	cfg.Now = func() time.Time { return now }
	r := startReplica(t, cfg, s, nil, false)
	data := []byte(line("a", chatURL, okBody) + "\n")
	old := upload(t, r.srv.URL, data)
	used := upload(t, r.srv.URL, data)
	createBatch(t, r.srv.URL, used.ID, chatURL)
	now = now.Add(31 * 24 * time.Hour)
	fresh := upload(t, r.srv.URL, data)
	n, err := r.b.Janitor.Sweep(t.Context())
	if err != nil || n != 1 {
		t.Fatalf("sweep deleted %d, %v", n, err)
	}
	for id, want := range map[string]int{old.ID: 404, used.ID: 200, fresh.ID: 200} {
		if st, _ := rawDo(t, http.MethodGet, r.srv.URL+"/v1/files/"+id, nil, ""); st != want {
			t.Fatalf("file %s: %d, want %d", id, st, want)
		}
	}
	if _, err := s.blobs.Size(t.Context(), old.ID); err == nil {
		t.Fatal("expired file's bytes remain")
	}
}
