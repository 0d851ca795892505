package ui

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vllm-proxy/vllm-proxy/sim"
)

func simInstant() sim.Config { return sim.Config{Instant: true} }

// assertOpenAIError checks an error body has the four OpenAI keys and the given type.
func assertOpenAIError(t *testing.T, what string, body []byte, typ string) {
	t.Helper()
	var e map[string]map[string]any
	if err := json.Unmarshal(body, &e); err != nil {
		t.Errorf("%s: error body %q: %v", what, body, err)
		return
	}
	for _, k := range []string{"message", "type", "param", "code"} {
		if _, ok := e["error"][k]; !ok {
			t.Errorf("%s: error body lacks %q: %s", what, k, body)
		}
	}
	if e["error"]["type"] != typ || e["error"]["message"] == "" {
		t.Errorf("%s: error %v, want type %s", what, e["error"], typ)
	}
}

// keys decodes body as an object and returns its keys, sorted.
func keys(t *testing.T, body []byte) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("decoding %s: %v", body, err)
	}
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestAPIShapes(t *testing.T) {
	st := startStack(t, stackOpts{sims: 2, sim: simInstant(), ui: Config{Title: "t1", Version: "v9", APIBase: "/p"}})
	base := st.srv.URL + "/ui/api/"
	for range 3 {
		if code := chat(t, st.srv.URL, "m1"); code != http.StatusOK {
			t.Fatalf("chat: %d", code)
		}
	}
	var stats statsBody
	waitFor(t, 5*time.Second, "the sampler to see the chats", func() bool {
		getJSON(t, base+"stats", &stats)
		return stats.Lifetime.Requests == 3
	})
	counts := []string{"batch_requests", "errors", "lines_completed", "lines_failed", "requests", "upload_bytes", "uploads"}
	for _, tc := range []struct {
		path string
		keys []string
	}{
		{"config", []string{"api_base", "bucket_seconds", "poll_interval_ms", "title", "version", "window_seconds"}},
		{"backends", []string{"backends", "healthy", "policy", "time"}},
		{"models", []string{"models"}},
		{"routing", []string{"backends", "decisions", "policy", "sampled_at"}},
		{"series", []string{"bucket_seconds", "buckets", "now", "since"}},
		{"stats", []string{"bucket_seconds", "lifetime", "peak", "since", "window", "window_seconds"}},
	} {
		resp, body := call(t, http.MethodGet, base+tc.path, nil, "")
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: %d %q %q", tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"))
		}
		if got := keys(t, body); !slices.Equal(got, tc.keys) {
			t.Errorf("%s keys %v, want %v", tc.path, got, tc.keys)
		}
	}

	var cfg configBody
	getJSON(t, base+"config", &cfg)
	if cfg != (configBody{Title: "t1", Version: "v9", PollIntervalMS: 2000, BucketSeconds: 900, WindowSeconds: 86400, APIBase: "/p"}) {
		t.Errorf("config %+v", cfg)
	}

	// Backends: every /load-stats field.
	resp, raw := call(t, http.MethodGet, base+"backends", nil, "")
	if resp.StatusCode != http.StatusOK {
		t.Fatal(resp.StatusCode)
	}
	var rawB struct{ Backends []json.RawMessage }
	if err := json.Unmarshal(raw, &rawB); err != nil || len(rawB.Backends) != 2 {
		t.Fatalf("backends %s: %v", raw, err)
	}
	rowKeys := keys(t, rawB.Backends[0])
	for _, k := range []string{"url", "healthy", "models", "running", "waiting", "in_flight", "in_flight_by_class", "capacity",
		"load", "kv_cache_usage", "prefix_cache_hit_rate", "metrics_age_ms", "metrics_stale", "engines", "predicted_prefix_cache_hit_rate"} {
		if !slices.Contains(rowKeys, k) {
			t.Errorf("backend row lacks %q: %s", k, rawB.Backends[0])
		}
	}
	var bb backendsBody
	getJSON(t, base+"backends", &bb)
	if bb.Policy != "least_load" || bb.Healthy != 2 || bb.Time <= 0 {
		t.Errorf("backends %+v", bb)
	}
	for i, row := range bb.Backends {
		if row.URL != st.sims[i].URL() || !row.Healthy || !slices.Equal(row.Models, []string{"m1"}) || row.Capacity != 4 ||
			row.PredictedPrefixCacheHitRate != nil || row.MetricsStale {
			t.Errorf("backend %d: %+v", i, row)
		}
		if _, ok := row.InFlightByClass["interactive"]; !ok {
			t.Errorf("backend %d: in_flight_by_class %v lacks interactive", i, row.InFlightByClass)
		}
	}

	var mb modelsBody
	getJSON(t, base+"models", &mb)
	if len(mb.Models) != 1 || mb.Models[0].ID != "m1" || len(mb.Models[0].Backends) != 2 || mb.Models[0].Healthy != 2 || mb.Models[0].Requests != 3 {
		t.Errorf("models %+v", mb)
	}

	var rb routingBody
	getJSON(t, base+"routing", &rb)
	var total int64
	var shares float64
	for _, s := range rb.Backends {
		total += s.Count
		shares += s.Share
	}
	if rb.Policy != "least_load" || total != 3 || shares < 0.999 || shares > 1.001 || rb.SampledAt <= 0 || len(rb.Decisions) != 0 {
		t.Errorf("routing %+v", rb)
	}

	var sb seriesBody
	getJSON(t, base+"series?buckets=4", &sb)
	if sb.BucketSeconds != 900 || len(sb.Buckets) != 4 || sb.Since <= 0 || sb.Now < sb.Since {
		t.Errorf("series %+v", sb)
	}
	for i := 1; i < len(sb.Buckets); i++ {
		if sb.Buckets[i].Start-sb.Buckets[i-1].Start != 900 {
			t.Errorf("buckets not consecutive: %+v", sb.Buckets)
		}
	}
	// The chats fall in the current bucket, or the one before if a boundary just passed.
	if last := sb.Buckets[3]; last.Requests+sb.Buckets[2].Requests != 3 || last.Start > sb.Now/1000 || last.Start+900 <= sb.Now/1000 {
		t.Errorf("current bucket %+v at now %d", last, sb.Now)
	}
	getJSON(t, base+"series", &sb)
	if len(sb.Buckets) != 96 {
		t.Errorf("default series has %d buckets, want 96", len(sb.Buckets))
	}
	_, body := call(t, http.MethodGet, base+"series", nil, "")
	var anyB struct{ Buckets []json.RawMessage }
	_ = json.Unmarshal(body, &anyB)
	if got := keys(t, anyB.Buckets[0]); !slices.Equal(got, append([]string{}, slices.Sorted(slices.Values(append(counts, "start")))...)) {
		t.Errorf("bucket keys %v", got)
	}

	getJSON(t, base+"stats", &stats)
	if stats.WindowSeconds != 86400 || stats.Window.Requests != 3 || stats.Peak.Requests != 3 || stats.Lifetime.Requests != 3 || stats.Since <= 0 {
		t.Errorf("stats %+v", stats)
	}

	// The API counter counts what was served.
	if got := testutil.ToFloat64(st.ui.m.apiRequests.WithLabelValues("series", "200")); got < 3 {
		t.Errorf("api_requests_total{series,200} = %v", got)
	}
}

func TestAPIErrors(t *testing.T) {
	st := startStack(t, stackOpts{sims: 1, sim: simInstant()})
	base := st.srv.URL + "/ui/api/"
	for _, tc := range []struct {
		method, path string
		status       int
		param        string
	}{
		{http.MethodGet, "nope", http.StatusNotFound, ""},
		{http.MethodGet, "", http.StatusNotFound, ""},
		{http.MethodGet, "backends/x", http.StatusNotFound, ""},
		{http.MethodPost, "backends", http.StatusMethodNotAllowed, ""},
		{http.MethodDelete, "series", http.StatusMethodNotAllowed, ""},
		{http.MethodGet, "series?buckets=0", http.StatusBadRequest, "buckets"},
		{http.MethodGet, "series?buckets=97", http.StatusBadRequest, "buckets"},
		{http.MethodGet, "series?buckets=x", http.StatusBadRequest, "buckets"},
		{http.MethodGet, "series?buckets=-1", http.StatusBadRequest, "buckets"},
	} {
		resp, body := call(t, tc.method, base+tc.path, nil, "")
		what := tc.method + " " + tc.path
		if resp.StatusCode != tc.status {
			t.Errorf("%s: status %d, want %d", what, resp.StatusCode, tc.status)
		}
		assertOpenAIError(t, what, body, "invalid_request_error")
		var e errorBody
		_ = json.Unmarshal(body, &e)
		if tc.param != "" && (e.Error.Param == nil || *e.Error.Param != tc.param) {
			t.Errorf("%s: param %v, want %s", what, e.Error.Param, tc.param)
		}
	}
}

// TestSeriesFromRealTraffic runs interactive requests and a batch through the stack and
// reads them back from the series and the stats.
func TestSeriesFromRealTraffic(t *testing.T) {
	st := startStack(t, stackOpts{sims: 2, sim: simInstant()})
	for range 5 {
		if code := chat(t, st.srv.URL, "m1"); code != http.StatusOK {
			t.Fatalf("chat: %d", code)
		}
	}
	if code := chat(t, st.srv.URL, "no-such-model"); code != http.StatusNotFound {
		t.Fatalf("chat to an unknown model: %d", code)
	}
	lines := chatLines(12, "m1", 2)
	id, _ := submitBatch(t, st.srv.URL, lines)
	waitFor(t, 20*time.Second, "the batch to complete", func() bool { return getBatch(t, st.srv.URL, id).Status == "completed" })

	var stats statsBody
	waitFor(t, 5*time.Second, "the stats to show the batch", func() bool {
		getJSON(t, st.srv.URL+"/ui/api/stats", &stats)
		return stats.Window.LinesCompleted == 12
	})
	w := stats.Window
	if w.Requests != 6 || w.Errors != 1 || w.BatchRequests != 12 || w.LinesFailed != 0 || w.UploadBytes != int64(len(lines)) {
		t.Errorf("window %+v", w)
	}
	var sb seriesBody
	getJSON(t, st.srv.URL+"/ui/api/series?buckets=2", &sb)
	if got := sb.Buckets[0].Requests + sb.Buckets[1].Requests; got != 6 {
		t.Errorf("series requests %d, want 6: %+v", got, sb.Buckets)
	}
	var mb modelsBody
	getJSON(t, st.srv.URL+"/ui/api/models", &mb)
	if mb.Models[0].Requests != 17 {
		t.Errorf("m1 requests %d, want 17 (5 chats, 12 lines)", mb.Models[0].Requests)
	}
}

// TestBackendsShowEjection stops a simulator answering /health and sees the backends
// endpoint report it ejected.
func TestBackendsShowEjection(t *testing.T) {
	st := startStack(t, stackOpts{sims: 2, sim: simInstant()})
	st.sims[1].SetHealthy(false)
	var bb backendsBody
	waitFor(t, 10*time.Second, "the backend to be ejected", func() bool {
		getJSON(t, st.srv.URL+"/ui/api/backends", &bb)
		return bb.Healthy == 1
	})
	if bb.Backends[0].Healthy != true || bb.Backends[1].Healthy != false {
		t.Errorf("backends %+v", bb.Backends)
	}
	var mb modelsBody
	getJSON(t, st.srv.URL+"/ui/api/models", &mb)
	if mb.Models[0].Healthy != 1 || len(mb.Models[0].Backends) != 2 {
		t.Errorf("models %+v", mb)
	}
}

func FuzzParseBuckets(f *testing.F) {
	for _, s := range []string{"", "1", "96", "97", "0", "-1", "x", "1e3", " 5", "9999999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		n, err := parseBuckets(q, 96)
		if err != nil {
			if err.status != http.StatusBadRequest || err.param != "buckets" || n != 0 {
				t.Fatalf("parseBuckets(%q) = %d, %+v", q, n, err)
			}
			return
		}
		if n < 1 || n > 96 {
			t.Fatalf("parseBuckets(%q) = %d outside [1, 96]", q, n)
		}
		if q != "" && strconv.Itoa(n) != strings.TrimLeft(strings.TrimPrefix(q, "+"), "0") {
			t.Fatalf("parseBuckets(%q) = %d", q, n)
		}
	})
}
