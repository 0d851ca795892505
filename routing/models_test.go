package routing

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func modelIDs(r *Router) []string {
	var ids []string
	for _, m := range r.Models() {
		ids = append(ids, m.ID)
	}
	return ids
}

func TestModelsMergeStaticAndRefresh(t *testing.T) {
	a := newFakeVLLM(t, "llama")
	b := newFakeVLLM(t, "llama", "qwen")
	cfg := fastConfig(a.URL, b.URL)
	cfg.Backends[0].Models = []string{"llama", "llama-alias"}
	r, _ := startRouter(t, cfg)
	if got, want := modelIDs(r), []string{"llama", "llama-alias", "qwen"}; !slices.Equal(got, want) {
		t.Fatalf("models = %v, want %v", got, want)
	}
	// Served from cache: no backend call per Models().
	hits := a.modelsHits.Load() + b.modelsHits.Load()
	for range 100 {
		r.Models()
	}
	if got := a.modelsHits.Load() + b.modelsHits.Load(); got > hits+4 { // a refresh may tick meanwhile
		t.Fatalf("Models() fanned out to backends: %d -> %d", hits, got)
	}
	// The static alias routes only to a.
	pk, err := r.Pick(t.Context(), &Request{Model: "llama-alias"})
	if err != nil || pk.Backend.ID() != a.URL {
		t.Fatalf("Pick(llama-alias) = %v, %v", pk, err)
	}
	pk.Done(Outcome{Status: 200})

	// A LoRA adapter loaded on b at runtime appears at the next refresh; qwen goes away.
	b.setModels("llama", "sql@llama")
	eventually(t, "refreshed model list", func() bool {
		return slices.Equal(modelIDs(r), []string{"llama", "llama-alias", "sql"})
	})
	var ume *UnknownModelError
	if _, err := r.Pick(t.Context(), &Request{Model: "qwen"}); !errors.As(err, &ume) {
		t.Fatalf("Pick(qwen) after it left = %v, want *UnknownModelError", err)
	}
	if !strings.Contains(ume.Error(), "`qwen` does not exist") || !strings.Contains(ume.Error(), "llama, llama-alias, sql") {
		t.Fatalf("error message %q", ume.Error())
	}
	// The merged list keeps vLLM's fields.
	out, err := json.Marshal(r.Models())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`{"id":"llama","object":"model","created":1700000000,"owned_by":"vllm","root":"/models/llama","parent":null,"max_model_len":4096,"permission":[{"id":"modelperm-1","object":"model_permission","allow_sampling":true}]}`,
		`{"id":"llama-alias","object":"model","created":0,"owned_by":"vllm","root":"llama-alias","parent":null,"max_model_len":null,"permission":[]}`,
		`"id":"sql","object":"model","created":1700000000,"owned_by":"vllm","root":"/adapters/sql","parent":"llama"`,
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("merged models JSON lacks %s\n%s", want, out)
		}
	}
	// A failing model list keeps the last good one.
	b.setModels()
	b.mu.Lock()
	b.models = "not json"
	b.mu.Unlock()
	before := b.modelsHits.Load()
	eventually(t, "a failed refresh", func() bool { return b.modelsHits.Load() > before+1 })
	if got := modelIDs(r); !slices.Contains(got, "sql") {
		t.Fatalf("a failed refresh dropped b's models: %v", got)
	}
}

func TestParseModelsFillsShape(t *testing.T) {
	ms, err := ParseModels(strings.NewReader(`{"object":"list","data":[{"id":"a"},{"id":""},{"id":"b","object":"model","permission":null,"parent":"a"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].Object != "model" || string(ms[0].Permission) != "[]" || !ms[1].IsLoRA() || ms[0].IsLoRA() {
		t.Fatalf("ParseModels = %+v", ms)
	}
	if _, err := ParseModels(strings.NewReader(`[1,2]`)); err == nil {
		t.Fatal("a JSON array parsed as a model list")
	}
}

// TestModelsRetriedWhenFirstFetchFailed: a backend that was healthy but could not list its
// models when the router started (still loading) is asked again at the next health probe,
// not only after models_refresh_interval.
func TestModelsRetriedWhenFirstFetchFailed(t *testing.T) {
	a := newFakeVLLM(t, "llama")
	a.mu.Lock()
	a.models = "not json"
	a.mu.Unlock()
	cfg := fastConfig(a.URL)
	cfg.ModelsRefreshInterval = time.Hour
	r, _ := startRouter(t, cfg)
	if got := modelIDs(r); len(got) != 0 {
		t.Fatalf("models before the backend could list them = %v", got)
	}
	a.setModels("llama")
	eventually(t, "the model list to be fetched again", func() bool { return slices.Equal(modelIDs(r), []string{"llama"}) })
}

// TestBackendAPIKey: a vLLM started with --api-key answers /v1/models only with the key;
// the router sends Config.BackendAPIKey on its discovery calls.
func TestBackendAPIKey(t *testing.T) {
	var seen atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/models":
			seen.Store(r.Header.Get("Authorization"))
			if r.Header.Get("Authorization") != "Bearer s3cret" {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			_, _ = io.WriteString(w, `{"object":"list","data":[{"id":"llama","object":"model"}]}`)
		case "/health":
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	cfg := fastConfig(srv.URL)
	cfg.BackendAPIKey = "s3cret"
	r, _ := startRouter(t, cfg)
	if got := modelIDs(r); !slices.Equal(got, []string{"llama"}) || seen.Load() != "Bearer s3cret" {
		t.Fatalf("models %v with Authorization %q", got, seen.Load())
	}
}
