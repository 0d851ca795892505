package batch

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestCreateBatchChecks covers checklist 7 and 8: every endpoint accepted with all Batch
// keys present; bad fields → 400 naming the field; unknown file → 404.
func TestCreateBatchChecks(t *testing.T) {
	r := startReplica(t, testConfig("r1"), memoryStores(), nil, false)
	base := r.srv.URL
	f := upload(t, base, []byte(line("a", chatURL, okBody)+"\n"))
	for ep := range endpoints {
		st, raw := rawDo(t, http.MethodPost, base+"/v1/batches", strings.NewReader(fmt.Sprintf(
			`{"input_file_id":%q,"endpoint":%q,"completion_window":"24h","metadata":{"a":"b"},"extra_body":{"x":1}}`, f.ID, ep)), "application/json")
		if st != http.StatusOK {
			t.Fatalf("%s: %d %s", ep, st, raw)
		}
		var m map[string]json.RawMessage
		_ = json.Unmarshal(raw, &m)
		for _, k := range []string{"id", "object", "endpoint", "model", "errors", "input_file_id", "completion_window", "status",
			"output_file_id", "error_file_id", "created_at", "in_progress_at", "expires_at", "finalizing_at", "completed_at",
			"failed_at", "expired_at", "cancelling_at", "cancelled_at", "request_counts", "metadata", "usage"} {
			if _, ok := m[k]; !ok {
				t.Fatalf("batch lacks key %q: %s", k, raw)
			}
		}
		var b batchObject
		_ = json.Unmarshal(raw, &b)
		if !strings.HasPrefix(b.ID, "batch_") || b.Object != "batch" || b.Status != "validating" || *b.ExpiresAt != b.CreatedAt+86400 ||
			b.Endpoint != ep || b.Metadata["a"] != "b" || b.RequestCounts != (requestCounts{}) {
			t.Fatalf("batch %+v", b)
		}
	}
	long := func(n int) string { return strings.Repeat("k", n) }
	meta17 := "{"
	for i := range 17 {
		meta17 += fmt.Sprintf(`"k%d":"v",`, i)
	}
	meta17 = strings.TrimSuffix(meta17, ",") + "}"
	cases := []struct {
		body   string
		status int
		param  string
	}{
		{`{"input_file_id":"%s","endpoint":"/v1/chat/completions","completion_window":"48h"}`, 400, "completion_window"},
		{`{"input_file_id":"%s","endpoint":"/v1/moderations","completion_window":"24h"}`, 400, "endpoint"},
		{`{"input_file_id":"%s","completion_window":"24h"}`, 400, "endpoint"},
		{`{"endpoint":"/v1/chat/completions","completion_window":"24h","x":"%s"}`, 400, "input_file_id"},
		{`{"input_file_id":"%s","endpoint":"/v1/chat/completions","completion_window":"24h","metadata":` + meta17 + `}`, 400, "metadata"},
		{`{"input_file_id":"%s","endpoint":"/v1/chat/completions","completion_window":"24h","metadata":{"` + long(65) + `":"v"}}`, 400, "metadata"},
		{`{"input_file_id":"%s","endpoint":"/v1/chat/completions","completion_window":"24h","metadata":{"k":"` + long(513) + `"}}`, 400, "metadata"},
		{`{"input_file_id":"%s","endpoint":"/v1/chat/completions","completion_window":"24h","metadata":{"k":1}}`, 400, "metadata"},
		{`{"input_file_id":"%s","endpoint":"/v1/chat/completions","completion_window":"24h","output_expires_after":{"anchor":"created_at","seconds":60}}`, 400, "output_expires_after.seconds"},
		{`{"input_file_id":"%s","endpoint":"/v1/chat/completions","completion_window":"24h","output_expires_after":{"anchor":"now","seconds":3600}}`, 400, "output_expires_after.anchor"},
		{`{"input_file_id":"%s" "endpoint"}`, 400, ""},
		{`{"input_file_id":"file-nope%s","endpoint":"/v1/chat/completions","completion_window":"24h"}`, 404, "input_file_id"},
	}
	for _, tc := range cases {
		body := fmt.Sprintf(tc.body, f.ID)
		st, raw := rawDo(t, http.MethodPost, base+"/v1/batches", strings.NewReader(body), "application/json")
		if st != tc.status {
			t.Fatalf("%s: status %d (%s), want %d", body, st, raw, tc.status)
		}
		checkEnvelope(t, raw, tc.param)
	}
	// Ok metadata limits: 16 keys, 64-char key, 512-char value.
	body := fmt.Sprintf(`{"input_file_id":%q,"endpoint":"/v1/chat/completions","completion_window":"24h","metadata":{%q:%q}}`, f.ID, long(64), long(512))
	if st, raw := rawDo(t, http.MethodPost, base+"/v1/batches", strings.NewReader(body), "application/json"); st != 200 {
		t.Fatalf("limits: %d %s", st, raw)
	}
	st, raw := rawDo(t, http.MethodGet, base+"/v1/batches/batch_nope", nil, "")
	if st != http.StatusNotFound {
		t.Fatalf("unknown batch %d", st)
	}
	checkEnvelope(t, raw, "id")
	if st, _ := rawDo(t, http.MethodPost, base+"/v1/batches/batch_nope/cancel", nil, ""); st != http.StatusNotFound {
		t.Fatalf("cancel unknown batch %d", st)
	}
}

// TestListBatches is checklist 16: newest first, first/last/has_more, after, limit bounds.
func TestListBatches(t *testing.T) {
	r := startReplica(t, testConfig("r1"), memoryStores(), nil, false)
	base := r.srv.URL
	f := upload(t, base, []byte(line("a", chatURL, okBody)+"\n"))
	var ids []string
	for range 5 {
		ids = append(ids, createBatch(t, base, f.ID, chatURL).ID)
	}
	var got []string
	after := ""
	for {
		var l listObject[batchObject]
		u := base + "/v1/batches?limit=2"
		if after != "" {
			u += "&after=" + after
		}
		if st := do(t, http.MethodGet, u, nil, "", &l); st != 200 {
			t.Fatalf("list %d", st)
		}
		if len(l.Data) > 2 || len(l.Data) == 0 || *l.FirstID != l.Data[0].ID {
			t.Fatalf("page %+v", l)
		}
		for _, b := range l.Data {
			got = append(got, b.ID)
		}
		if !l.HasMore {
			break
		}
		after = *l.LastID
	}
	for i := range ids {
		if got[i] != ids[len(ids)-1-i] {
			t.Fatalf("order %v, created %v", got, ids)
		}
	}
	var def listObject[batchObject]
	do(t, http.MethodGet, base+"/v1/batches", nil, "", &def)
	if len(def.Data) != 5 || def.HasMore {
		t.Fatalf("default page %d %v", len(def.Data), def.HasMore)
	}
	for _, q := range []string{"limit=0", "limit=101", "limit=x"} {
		st, raw := rawDo(t, http.MethodGet, base+"/v1/batches?"+q, nil, "")
		if st != 400 {
			t.Fatalf("%s: %d", q, st)
		}
		checkEnvelope(t, raw, "limit")
	}
	var empty listObject[batchObject]
	do(t, http.MethodGet, base+"/v1/batches?after=batch_unknown", nil, "", &empty)
	if len(empty.Data) != 0 || empty.HasMore || empty.FirstID != nil || empty.LastID != nil {
		t.Fatalf("unknown after %+v", empty)
	}
}
