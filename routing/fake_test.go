package routing

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// fakeVLLM is a loopback HTTP server answering the three GETs the router makes, with
// contents the test can change at any time.
type fakeVLLM struct {
	*httptest.Server
	mu            sync.Mutex
	models        string // /v1/models body
	metrics       string // /metrics body
	healthStatus  int
	metricsStatus int
	priority      string // "on", "off", or "" (404 on POST)
	healthHits    atomic.Int64
	completeHits  atomic.Int64
	metricsHits   atomic.Int64
	modelsHits    atomic.Int64
}

func newFakeVLLM(t *testing.T, models ...string) *fakeVLLM {
	t.Helper()
	f := &fakeVLLM{healthStatus: 200, metricsStatus: 200}
	f.setModels(models...)
	f.setLoad(0, 0)
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeVLLM) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch r.URL.Path {
	case "/health":
		f.healthHits.Add(1)
		w.WriteHeader(f.healthStatus)
	case "/metrics":
		f.metricsHits.Add(1)
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		w.WriteHeader(f.metricsStatus)
		fmt.Fprint(w, f.metrics)
	case "/v1/completions":
		f.completeHits.Add(1)
		switch f.priority {
		case "on":
			fmt.Fprint(w, `{"id":"cmpl-1","object":"text_completion","choices":[{"index":0,"text":"b"}]}`)
		case "off":
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":{"message":"Got request with priority 1, but Priority scheduling is not enabled.","type":"BadRequestError","param":null,"code":400}}`)
		default:
			http.NotFound(w, r)
		}
	case "/v1/models":
		f.modelsHits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, f.models)
	default:
		http.NotFound(w, r)
	}
}

// setModels serves base models; an entry "adapter@base" is a LoRA adapter of base.
func (f *fakeVLLM) setModels(ids ...string) {
	var parts []string
	for _, id := range ids {
		parent := "null"
		root := fmt.Sprintf("%q", "/models/"+id)
		if name, base, ok := strings.Cut(id, "@"); ok {
			id, parent, root = name, fmt.Sprintf("%q", base), fmt.Sprintf("%q", "/adapters/"+name)
		}
		parts = append(parts, fmt.Sprintf(`{"id":%q,"object":"model","created":1700000000,"owned_by":"vllm","root":%s,"parent":%s,"max_model_len":4096,"permission":[{"id":"modelperm-1","object":"model_permission","allow_sampling":true}]}`, id, root, parent))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.models = `{"object":"list","data":[` + strings.Join(parts, ",") + `]}`
}

func (f *fakeVLLM) setLoad(running, waiting float64) {
	f.setMetrics(fmt.Sprintf(`# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="m"} %g
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine="0",model_name="m"} %g
`, running, waiting))
}

func (f *fakeVLLM) setMetrics(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.metrics = s
}

func (f *fakeVLLM) setHealth(status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.healthStatus = status
}

func (f *fakeVLLM) setMetricsStatus(status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.metricsStatus = status
}
