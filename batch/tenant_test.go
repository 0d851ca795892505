package batch

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vllm-proxy/vllm-proxy/sim"
)

type testTenantKey struct{}

// tenantServers serves one API over loopback once per tenant: each server puts its
// tenant in the request context, as auth.Middleware does, so the usual helpers act for
// that tenant.
func tenantServers(t *testing.T, api http.Handler, tenants ...string) map[string]string {
	t.Helper()
	bases := map[string]string{}
	for _, tn := range tenants {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			api.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), testTenantKey{}, tn)))
		}))
		t.Cleanup(srv.Close)
		bases[tn] = srv.URL
	}
	return bases
}

func tenantConfig(replica string) Config {
	cfg := testConfig(replica)
	cfg.Tenant = func(ctx context.Context) string { s, _ := ctx.Value(testTenantKey{}).(string); return s }
	return cfg
}

// pageAll follows after/has_more with pages of limit and returns the ids in order.
func pageAll[T any](t *testing.T, url string, limit int, id func(T) string) []string {
	t.Helper()
	var ids []string
	after := ""
	for range 100 {
		var l listObject[T]
		q := fmt.Sprintf("%s?limit=%d", url, limit)
		if after != "" {
			q += "&after=" + after
		}
		if st := do(t, http.MethodGet, q, nil, "", &l); st != http.StatusOK {
			t.Fatalf("GET %s: %d", q, st)
		}
		if len(l.Data) > limit || (l.HasMore && len(l.Data) != limit) {
			t.Fatalf("GET %s: %d items, has_more %v", q, len(l.Data), l.HasMore)
		}
		for _, x := range l.Data {
			ids = append(ids, id(x))
		}
		if !l.HasMore {
			return ids
		}
		after = *l.LastID
	}
	t.Fatalf("paging %s does not end", url)
	return nil
}

func fileIDs(fs []fileObject) []string { return mapIDs(fs, func(f fileObject) string { return f.ID }) }

func mapIDs[T any](xs []T, id func(T) string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = id(x)
	}
	return out
}

// TestTenantScoping: files and batches belong to the tenant that created them; another
// tenant gets 404 and never sees them listed, on every page size; the batch's output
// file belongs to its owner; tenant "" (keys off) is just another tenant.
func TestTenantScoping(t *testing.T) {
	for _, mode := range []string{"memory", "redis"} {
		t.Run(mode, func(t *testing.T) {
			s := memoryStores()
			if mode == "redis" {
				s = redisStores(t, statetestRedis(t).URL, "r1")
			}
			sm := startSim(t, sim.Config{Instant: true})
			r := startReplica(t, tenantConfig("r1"), s, newHTTPDispatcher(sm.URL()), true)
			base := tenantServers(t, r.b.API, "t_a", "t_b", "")
			a, b, none := base["t_a"], base["t_b"], base[""]

			var mine = map[string][]fileObject{}
			for i := range 5 { // interleaved, so every page of one tenant skips the other's
				mine["t_a"] = append(mine["t_a"], upload(t, a, chatLines(3, "m1", 2)))
				if i < 3 {
					mine["t_b"] = append(mine["t_b"], upload(t, b, chatLines(2, "m1", 2)))
				}
				if i < 1 {
					mine[""] = append(mine[""], upload(t, none, chatLines(2, "m1", 2)))
				}
			}
			for tn, fs := range mine {
				want := fileIDs(fs)
				slices.Reverse(want) // newest first
				for _, limit := range []int{1, 2, 3, 5, 100} {
					got := pageAll(t, base[tn]+"/v1/files", limit, func(f fileObject) string { return f.ID })
					if !slices.Equal(got, want) {
						t.Fatalf("tenant %q limit %d: files %v, want %v", tn, limit, got, want)
					}
				}
				var asc listObject[fileObject]
				do(t, http.MethodGet, base[tn]+"/v1/files?order=asc&limit=2", nil, "", &asc)
				if got := fileIDs(asc.Data); !slices.Equal(got, fileIDs(fs)[:min(2, len(fs))]) || asc.HasMore != (len(fs) > 2) {
					t.Fatalf("tenant %q ascending page %v has_more %v", tn, got, asc.HasMore)
				}
			}

			fa := mine["t_a"][0]
			for _, c := range []struct{ method, path string }{
				{http.MethodGet, "/v1/files/" + fa.ID},
				{http.MethodGet, "/v1/files/" + fa.ID + "/content"},
				{http.MethodDelete, "/v1/files/" + fa.ID},
			} {
				if st := do(t, c.method, b+c.path, nil, "", nil); st != http.StatusNotFound {
					t.Fatalf("tenant b %s %s: %d, want 404", c.method, c.path, st)
				}
				if st := do(t, c.method, none+c.path, nil, "", nil); st != http.StatusNotFound {
					t.Fatalf("tenant \"\" %s %s: %d, want 404", c.method, c.path, st)
				}
			}
			var l listObject[fileObject]
			do(t, http.MethodGet, b+"/v1/files?after="+fa.ID, nil, "", &l)
			if len(l.Data) != 0 || l.HasMore {
				t.Fatalf("tenant b paging after a's file: %+v", l)
			}
			body := fmt.Sprintf(`{"input_file_id":%q,"endpoint":"/v1/chat/completions","completion_window":"24h"}`, fa.ID)
			if st := do(t, http.MethodPost, b+"/v1/batches", strings.NewReader(body), "application/json", nil); st != http.StatusNotFound {
				t.Fatalf("tenant b batch on a's file: %d, want 404", st)
			}

			ba := createBatch(t, a, fa.ID, "/v1/chat/completions")
			bb := createBatch(t, b, mine["t_b"][0].ID, "/v1/chat/completions")
			ba = waitBatch(t, a, ba.ID, 20*time.Second, terminal)
			if ba.Status != "completed" || ba.OutputFileID == nil {
				t.Fatalf("tenant a batch %s", ba.Status)
			}
			if res := allResults(t, a, ba); len(res) != 3 {
				t.Fatalf("tenant a reads %d results, want 3", len(res))
			}
			for _, p := range []string{"/v1/batches/" + ba.ID, "/v1/files/" + *ba.OutputFileID, "/v1/files/" + *ba.OutputFileID + "/content"} {
				if st := do(t, http.MethodGet, b+p, nil, "", nil); st != http.StatusNotFound {
					t.Fatalf("tenant b GET %s: %d, want 404", p, st)
				}
			}
			if st := do(t, http.MethodPost, b+"/v1/batches/"+ba.ID+"/cancel", nil, "", nil); st != http.StatusNotFound {
				t.Fatalf("tenant b cancel of a's batch: %d, want 404", st)
			}
			for tn, want := range map[string][]string{"t_a": {ba.ID}, "t_b": {bb.ID}, "": nil} {
				for _, limit := range []int{1, 20} {
					got := pageAll(t, base[tn]+"/v1/batches", limit, func(b batchObject) string { return b.ID })
					if !slices.Equal(got, want) {
						t.Fatalf("tenant %q batches %v, want %v", tn, got, want)
					}
				}
			}
			var out listObject[fileObject]
			do(t, http.MethodGet, a+"/v1/files?purpose=batch_output", nil, "", &out)
			if !slices.Contains(fileIDs(out.Data), *ba.OutputFileID) {
				t.Fatalf("tenant a does not list its output file: %v", fileIDs(out.Data))
			}
			do(t, http.MethodGet, none+"/v1/files?purpose=batch_output", nil, "", &out)
			if len(out.Data) != 0 {
				t.Fatalf("tenant \"\" lists output files %v", fileIDs(out.Data))
			}
		})
	}
}
