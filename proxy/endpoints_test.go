package proxy

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/vllm-proxy/vllm-proxy/routing"
	"github.com/vllm-proxy/vllm-proxy/sim"
)

// fastHealth makes the router notice health changes within tens of milliseconds.
var fastHealth = routing.Config{
	HealthCheckInterval: 20 * time.Millisecond, EjectBackoffBase: 10 * time.Millisecond,
	EjectBackoffCap: 20 * time.Millisecond, ScrapeInterval: 20 * time.Millisecond,
	ModelsRefreshInterval: 50 * time.Millisecond,
}

// TestModelsMerged: GET /v1/models lists every backend's models once, LoRA adapters
// included, in vLLM's shape.
func TestModelsMerged(t *testing.T) {
	a := startSim(t, sim.Config{Model: "org/base", ServedModelNames: []string{"m1"}, LoRAs: []string{"m1-lora"}, Instant: true})
	b := startSim(t, sim.Config{Model: "org/base", ServedModelNames: []string{"m1"}, Instant: true})
	c := startSim(t, sim.Config{Model: "m2", Instant: true})
	e := newEnv(t, envOpts{routing: fastHealth, start: true}, backend(a.URL()), backend(b.URL()), backend(c.URL()))
	resp, body := e.get(t, "/v1/models")
	var list struct {
		Object string `json:"object"`
		Data   []struct {
			ID      string  `json:"id"`
			Object  string  `json:"object"`
			OwnedBy string  `json:"owned_by"`
			Root    *string `json:"root"`
			Parent  *string `json:"parent"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(body), &list); err != nil || resp.StatusCode != 200 || list.Object != "list" {
		t.Fatalf("status %d body %s: %v", resp.StatusCode, body, err)
	}
	var ids []string
	for _, m := range list.Data {
		ids = append(ids, m.ID)
		if m.Object != "model" || m.OwnedBy != "vllm" {
			t.Errorf("model %s: object %q owned_by %q", m.ID, m.Object, m.OwnedBy)
		}
		if m.ID == "m1-lora" && (m.Parent == nil || *m.Parent != "m1") {
			t.Errorf("adapter parent = %v, want m1", m.Parent)
		}
	}
	slices.Sort(ids)
	if strings.Join(ids, ",") != "m1,m1-lora,m2" {
		t.Fatalf("ids %v, want m1, m1-lora, m2 once each", ids)
	}
	// The adapter routes like a model.
	if resp, body := e.post(t, "/v1/chat/completions", `{"model":"m1-lora","messages":[{"role":"user","content":"x"}]}`); resp.StatusCode != 200 {
		t.Fatalf("adapter request: %d %s", resp.StatusCode, body)
	}
}

func TestVersion(t *testing.T) {
	tp := startTap(t, fixed(200, `{}`))
	e := newEnv(t, envOpts{cfg: Config{Version: "1.2.3"}}, backend(tp.URL, "m"))
	if resp, body := e.get(t, "/version"); resp.StatusCode != 200 || strings.TrimSpace(body) != `{"version":"1.2.3"}` {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
}

// TestHealth: 200 while any backend is healthy, 503 when none is, back to 200 on recovery.
func TestHealth(t *testing.T) {
	a := startSim(t, sim.Config{Instant: true})
	b := startSim(t, sim.Config{Instant: true})
	e := newEnv(t, envOpts{routing: fastHealth, start: true}, backend(a.URL(), "m"), backend(b.URL(), "m"))
	type health struct {
		Status   string `json:"status"`
		Backends []struct {
			URL     string `json:"url"`
			Healthy bool   `json:"healthy"`
		} `json:"backends"`
	}
	read := func() (int, health) {
		resp, body := e.get(t, "/health")
		var h health
		if err := json.Unmarshal([]byte(body), &h); err != nil {
			t.Fatalf("health body %s: %v", body, err)
		}
		return resp.StatusCode, h
	}
	if code, h := read(); code != 200 || h.Status != "ok" || len(h.Backends) != 2 || h.Backends[0].URL != a.URL() {
		t.Fatalf("healthy pool: %d %+v", code, h)
	}
	a.SetHealthy(false)
	b.SetHealthy(false)
	eventually(t, 5*time.Second, "/health 503", func() bool { code, _ := read(); return code == 503 })
	if _, h := read(); h.Status != "unavailable" || h.Backends[0].Healthy || h.Backends[1].Healthy {
		t.Fatalf("unhealthy pool: %+v", h)
	}
	b.SetHealthy(true)
	eventually(t, 5*time.Second, "/health 200 again", func() bool { code, _ := read(); return code == 200 })
}

func TestLoadStats(t *testing.T) {
	a := startSim(t, sim.Config{Instant: true})
	e := newEnv(t, envOpts{routing: fastHealth, start: true}, backend(a.URL(), "m"))
	resp, body := e.get(t, "/load-stats")
	var ls struct {
		Policy   string           `json:"policy"`
		Backends []map[string]any `json:"backends"`
	}
	if err := json.Unmarshal([]byte(body), &ls); err != nil || resp.StatusCode != 200 || ls.Policy != routing.DefaultPolicy || len(ls.Backends) != 1 {
		t.Fatalf("%d %s: %v", resp.StatusCode, body, err)
	}
	for _, k := range []string{"url", "healthy", "models", "running", "waiting", "in_flight", "capacity", "load",
		"kv_cache_usage", "prefix_cache_hit_rate", "metrics_age_ms"} {
		if _, ok := ls.Backends[0][k]; !ok {
			t.Errorf("load-stats entry lacks %q: %v", k, ls.Backends[0])
		}
	}
	if ls.Backends[0]["url"] != a.URL() || ls.Backends[0]["capacity"] != float64(routing.DefaultCapacity) {
		t.Errorf("entry %v", ls.Backends[0])
	}
}

// TestMetricsExposition: the proxy's series carry model, backend, code and class, pass
// promlint, and a backend's series go when it leaves the pool.
func TestMetricsExposition(t *testing.T) {
	busy := startTap(t, fixed(http.StatusServiceUnavailable, `{}`))
	ok := startSim(t, sim.Config{Instant: true})
	e := newEnv(t, envOpts{routing: routing.Config{Policy: routing.PolicyRoundRobin}},
		backend(busy.URL, "m"), backend(ok.URL(), "m"))
	for range 2 {
		e.post(t, "/v1/chat/completions", chatBody)
	}
	e.post(t, "/v1/chat/completions", streamBody)
	e.post(t, "/v1/chat/completions", `{"model":"nope"}`)
	want := `
# HELP vllm_proxy_requests_total Requests answered by the proxy, by model, final backend (empty if none), HTTP status code and traffic class.
# TYPE vllm_proxy_requests_total counter
vllm_proxy_requests_total{backend="",class="interactive",code="404",model=""} 1
vllm_proxy_requests_total{backend="` + ok.URL() + `",class="interactive",code="200",model="m"} 3
`
	if err := testutil.GatherAndCompare(e.reg, strings.NewReader(want), "vllm_proxy_requests_total"); err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(e.h.metrics.ttft); n != 1 {
		t.Fatalf("ttft series = %d, want 1 (streaming requests only)", n)
	}
	if r := testCounter(e.h.metrics.retries, busy.URL, "status_503"); r < 1 {
		t.Fatalf("retries_total = %v", r)
	}
	problems, err := testutil.GatherAndLint(e.reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "vllm_proxy_") {
			t.Errorf("promlint: %s: %s", p.Metric, p.Text)
		}
	}
	e.h.ForgetBackend(busy.URL)
	e.h.ForgetBackend(ok.URL())
	if n := testutil.CollectAndCount(e.h.metrics.requests); n != 1 {
		t.Fatalf("requests_total has %d series after ForgetBackend, want only the backend-less one", n)
	}
	if n := testutil.CollectAndCount(e.h.metrics.retries); n != 0 {
		t.Fatalf("retries_total has %d series after ForgetBackend", n)
	}
	if n := testutil.CollectAndCount(e.h.metrics.duration); n != 1 {
		t.Fatalf("request_duration_seconds has %d series after ForgetBackend, want 1", n)
	}
}
