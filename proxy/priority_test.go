package proxy

import (
	"encoding/json"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vllm-proxy/vllm-proxy/routing"
	"github.com/vllm-proxy/vllm-proxy/sim"
)

func intp(n int) *int { return &n }

func TestWithPriority(t *testing.T) {
	const chat = "/v1/chat/completions"
	def := PriorityConfig{}
	clamped := PriorityConfig{Interactive: 1, Batch: intp(20), ClientMin: intp(0), ClientMax: intp(5)}
	cases := []struct {
		name  string
		cfg   PriorityConfig
		path  string
		body  string
		class routing.Class
		sched bool
		want  string
	}{
		{"interactive default 0 is not written", def, chat, `{"model":"m"}`, routing.ClassInteractive, true, `{"model":"m"}`},
		{"interactive configured priority", clamped, chat, `{"model":"m"}`, routing.ClassInteractive, true, `{"priority":1,"model":"m"}`},
		{"client priority kept", def, chat, `{"model":"m","priority":7}`, routing.ClassInteractive, true, `{"model":"m","priority":7}`},
		{"client priority clamped up", clamped, chat, `{"priority":-3,"model":"m"}`, routing.ClassInteractive, true, `{"priority":0,"model":"m"}`},
		{"client priority clamped down", clamped, chat, `{"model":"m", "priority" : 9 }`, routing.ClassInteractive, true, `{"model":"m", "priority" : 5 }`},
		{"client numeric string normalized", def, chat, `{"priority":"4"}`, routing.ClassInteractive, true, `{"priority":4}`},
		{"client mistyped priority left to the backend", def, chat, `{"priority":"high"}`, routing.ClassInteractive, true, `{"priority":"high"}`},
		{"batch default 10", def, chat, `{"model":"m","messages":[]}`, routing.ClassBatch, true, `{"priority":10,"model":"m","messages":[]}`},
		{"batch configured", clamped, "/v1/embeddings", `{"input":"x"}`, routing.ClassBatch, true, `{"priority":20,"input":"x"}`},
		{"batch own lower value raised", def, chat, `{"priority":-5}`, routing.ClassBatch, true, `{"priority":10}`},
		{"batch own higher value kept", def, chat, `{"priority":50}`, routing.ClassBatch, true, `{"priority":50}`},
		{"empty object", def, chat, ` { } `, routing.ClassBatch, true, ` {"priority":10 } `},
		{"duplicate keys all rewritten", def, chat, `{"priority":1,"x":{"priority":3},"priority":2}`, routing.ClassBatch, true, `{"priority":10,"x":{"priority":3},"priority":10}`},
		{"escaped key", def, chat, `{"priorit\u0079":3}`, routing.ClassBatch, true, `{"priorit\u0079":10}`},
		{"null priority set", def, chat, `{"priority":null}`, routing.ClassBatch, true, `{"priority":10}`},
		{"fcfs: batch gets nothing", def, chat, `{"model":"m"}`, routing.ClassBatch, false, `{"model":"m"}`},
		{"fcfs: client priority zeroed", def, chat, `{"model":"m","priority":3}`, routing.ClassInteractive, false, `{"model":"m","priority":0}`},
		{"fcfs: float and string zeroed", def, chat, `{"priority":1.0,"priority":"2"}`, routing.ClassBatch, false, `{"priority":0,"priority":0}`},
		{"fcfs: zero and null untouched", def, chat, `{"priority":0,"a":1,"priority":null}`, routing.ClassInteractive, false, `{"priority":0,"a":1,"priority":null}`},
		{"fcfs: nested priority is not the field", def, chat, `{"x":{"priority":3}}`, routing.ClassInteractive, false, `{"x":{"priority":3}}`},
		{"other endpoint untouched", def, "/tokenize", `{"priority":3}`, routing.ClassBatch, false, `{"priority":3}`},
		{"not an object", def, chat, `[1]`, routing.ClassBatch, true, `[1]`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := string(c.cfg.withPriority(c.path, []byte(c.body), c.class, c.sched))
			if got != c.want {
				t.Errorf("withPriority(%s) = %s, want %s", c.body, got, c.want)
			}
		})
	}
}

func TestPriorityConfigValidate(t *testing.T) {
	err := Config{Priority: PriorityConfig{Interactive: 5, Batch: intp(1), ClientMin: intp(3), ClientMax: intp(2)}}.Validate()
	if err == nil {
		t.Fatal("Validate accepted client_min > client_max and batch < interactive")
	}
	for _, want := range []string{"client_min (3)", "priority.batch (1)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Validate error %q does not mention %q", err, want)
		}
	}
	if err := (Config{Priority: PriorityConfig{Batch: intp(0)}}).Validate(); err != nil {
		t.Errorf("batch priority 0 with interactive 0 rejected: %v", err)
	}
}

// TestPriorityPerBackend sends interactive requests (with and without their own
// priority) and batch lines through the proxy to a simulator running fcfs and one running
// priority scheduling. The fcfs backend must answer no 400 and see only priority 0; the
// priority backend must see the configured values.
func TestPriorityPerBackend(t *testing.T) {
	fcfs := startSim(t, sim.Config{Model: "f", Instant: true, SchedulingPolicy: sim.PolicyFCFS})
	prio := startSim(t, sim.Config{Model: "p", Instant: true, SchedulingPolicy: sim.PolicyPriority})
	off, on := false, true
	e := newEnv(t, envOpts{cfg: Config{Priority: PriorityConfig{Interactive: 1, ClientMax: intp(4)}}},
		routing.BackendConfig{URL: fcfs.URL(), Models: []string{"f"}, PriorityScheduling: &off},
		routing.BackendConfig{URL: prio.URL(), Models: []string{"p"}, PriorityScheduling: &on})

	for _, model := range []string{"f", "p"} {
		for _, body := range []string{
			`{"model":"` + model + `","messages":[{"role":"user","content":"hi"}],"max_tokens":2}`,
			`{"model":"` + model + `","messages":[{"role":"user","content":"hi"}],"max_tokens":2,"priority":3}`,
			`{"model":"` + model + `","messages":[{"role":"user","content":"hi"}],"max_tokens":2,"priority":9}`,
		} {
			resp, got := e.post(t, "/v1/chat/completions", body)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("interactive %s: status %d: %s", body, resp.StatusCode, got)
			}
		}
		for range 3 {
			resp, err := e.h.Dispatch(t.Context(), DispatchRequest{Path: "/v1/completions",
				Body: []byte(`{"model":"` + model + `","prompt":"x","max_tokens":2}`), Class: routing.ClassBatch})
			if err != nil || resp.Status != http.StatusOK {
				t.Fatalf("batch line to %s: %v %+v", model, err, resp)
			}
		}
	}
	fs := fcfs.Snapshot()
	if n := fs.Statuses[http.StatusBadRequest]; n != 0 {
		t.Errorf("fcfs backend answered %d requests with 400", n)
	}
	if want := map[int]int64{0: 6}; !maps.Equal(fs.ReceivedByPriority, want) {
		t.Errorf("fcfs backend received priorities %v, want %v", fs.ReceivedByPriority, want)
	}
	ps := prio.Snapshot()
	// interactive: none → 1, 3 kept, 9 clamped to 4; batch: 10 each.
	if want := map[int]int64{1: 1, 3: 1, 4: 1, 10: 3}; !maps.Equal(ps.ReceivedByPriority, want) {
		t.Errorf("priority backend received priorities %v, want %v", ps.ReceivedByPriority, want)
	}
	if n := ps.Statuses[http.StatusBadRequest]; n != 0 {
		t.Errorf("priority backend answered %d requests with 400", n)
	}
	e.requireIdle(t)
}

// TestPriorityDetected relies on routing's detection instead of configuration: the fcfs
// backend's only 400 is routing's probe, and the priority backend gets batch priorities
// once detection says so.
func TestPriorityDetected(t *testing.T) {
	fcfs := startSim(t, sim.Config{Model: "f", Instant: true, SchedulingPolicy: sim.PolicyFCFS})
	prio := startSim(t, sim.Config{Model: "p", Instant: true, SchedulingPolicy: sim.PolicyPriority})
	e := newEnv(t, envOpts{start: true}, backend(fcfs.URL(), "f"), backend(prio.URL(), "p"))
	deadline := time.Now().Add(10 * time.Second)
	for fcfs.Snapshot().Statuses[http.StatusBadRequest] < 1 || !e.router.Backends()[1].PriorityScheduling() {
		if time.Now().After(deadline) {
			t.Fatalf("priority detection did not finish: fcfs 400s %d, priority detected %v",
				fcfs.Snapshot().Statuses[http.StatusBadRequest], e.router.Backends()[1].PriorityScheduling())
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, model := range []string{"f", "p"} {
		resp, got := e.post(t, "/v1/completions", `{"model":"`+model+`","prompt":"x","max_tokens":1,"priority":2}`)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("interactive to %s: status %d: %s", model, resp.StatusCode, got)
		}
		r, err := e.h.Dispatch(t.Context(), DispatchRequest{Path: "/v1/completions",
			Body: []byte(`{"model":"` + model + `","prompt":"x","max_tokens":1}`)})
		if err != nil || r.Status != http.StatusOK {
			t.Fatalf("batch line to %s: %v %+v", model, err, r)
		}
	}
	if n := fcfs.Snapshot().Statuses[http.StatusBadRequest]; n != 1 {
		t.Errorf("fcfs backend answered %d requests with 400, want only the detection probe's", n)
	}
	if got := prio.Snapshot().ReceivedByPriority; got[10] != 1 || got[2] != 1 {
		t.Errorf("priority backend received %v, want one batch line at 10 and the client's 2", got)
	}
}

// FuzzScanPriority checks the scanner against encoding/json: for any JSON object,
// setPriority yields valid JSON whose top-level "priority" is the value written and whose
// other members are unchanged.
func FuzzScanPriority(f *testing.F) {
	for _, s := range []string{`{}`, `{"priority":1}`, `{"a":"}\"","priority":[1,{"b":"]"}],"c":null}`,
		` {"x" : 1 , "priority" : -2 } `, `{"priorit\u0079":3,"priority":4}`, `[]`, `{"a":1`, `"s"`,
		`{"a":{"priority":1}}`, `{"a":1e3,"b":true,"c":false}`} {
		f.Add([]byte(s), 7)
	}
	f.Fuzz(func(t *testing.T, body []byte, n int) {
		if !json.Valid(body) {
			return // the scanner's precondition: parseBody accepted the body
		}
		var orig map[string]json.RawMessage
		isObj := json.Unmarshal(body, &orig) == nil && orig != nil
		fields, ok := scanPriority(body)
		if ok != isObj {
			t.Fatalf("scanPriority(%q) ok = %v, encoding/json object = %v", body, ok, isObj)
		}
		if !ok {
			return
		}
		out := setPriority(body, fields, n)
		var got map[string]json.RawMessage
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatalf("setPriority(%q) = %q: not JSON: %v", body, out, err)
		}
		var p int
		if err := json.Unmarshal(got["priority"], &p); err != nil || p != n {
			t.Fatalf("setPriority(%q, %d) = %q: priority %s", body, n, out, got["priority"])
		}
		delete(got, "priority")
		delete(orig, "priority")
		if len(got) != len(orig) {
			t.Fatalf("setPriority(%q) = %q changed the members", body, out)
		}
		for k, v := range orig {
			if string(got[k]) != string(v) {
				t.Fatalf("setPriority(%q) = %q changed member %q", body, out, k)
			}
		}
	})
}
