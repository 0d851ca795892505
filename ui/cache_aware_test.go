package ui

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vllm-proxy/vllm-proxy/routing"
)

// chatPrompt sends one chat request with the given user message.
func chatPrompt(t *testing.T, base, prompt string) int {
	t.Helper()
	body := fmt.Sprintf(`{"model":"m1","messages":[{"role":"user","content":%q}],"max_tokens":2}`, prompt)
	r, _ := call(t, http.MethodPost, base+"/v1/chat/completions", strings.NewReader(body), "application/json")
	return r.StatusCode
}

// TestCacheAwareFigures routes requests sharing a long prefix with the cache_aware policy
// and sees its decisions in the routing mix and its predicted hit rate in the backends.
func TestCacheAwareFigures(t *testing.T) {
	st := startStack(t, stackOpts{sims: 2, sim: simInstant(), policy: routing.PolicyCacheAware})
	shared := strings.Repeat("You are a careful assistant answering questions about the manual. ", 20)
	for i := range 8 {
		if code := chatPrompt(t, st.srv.URL, shared+fmt.Sprintf("Question %d?", i)); code != http.StatusOK {
			t.Fatalf("chat %d: %d", i, code)
		}
	}
	var rb routingBody
	waitFor(t, 5*time.Second, "the routing mix to count 8 decisions", func() bool {
		getJSON(t, st.srv.URL+"/ui/api/routing", &rb)
		var n int64
		for _, d := range rb.Decisions {
			n += d.Count
		}
		return n == 8
	})
	if rb.Policy != routing.PolicyCacheAware {
		t.Errorf("policy %q", rb.Policy)
	}
	names := map[string]int64{}
	for _, d := range rb.Decisions {
		names[d.Name] = d.Count
	}
	if names[routing.ReasonAffinity] == 0 {
		t.Errorf("decisions %+v: no affinity decision for requests sharing a prefix", rb.Decisions)
	}
	for n := range names {
		switch n {
		case routing.ReasonAffinity, routing.ReasonSaturation, routing.ReasonCold, routing.ReasonFallback:
		default:
			t.Errorf("decision %q is not a routing reason (policy label leaked into the key?)", n)
		}
	}
	var bb backendsBody
	getJSON(t, st.srv.URL+"/ui/api/backends", &bb)
	predicted := 0
	for _, b := range bb.Backends {
		if p := b.PredictedPrefixCacheHitRate; p != nil {
			predicted++
			if *p <= 0 || *p > 1 {
				t.Errorf("backend %s predicted hit rate %v outside (0, 1]", b.URL, *p)
			}
		}
	}
	if predicted == 0 {
		t.Errorf("no backend shows a predicted hit rate: %+v", bb.Backends)
	}
}
