package sim

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestErrors(t *testing.T) {
	s := startSim(t, Config{Model: "m1", Instant: true, MaxModelLen: 64, NumGPUBlocks: 16})
	long := strings.Repeat("x", 300) // 75 tokens > 64
	tests := []struct {
		name, path, body string
		status           int
		typ, message     string
	}{
		{"unknown model", "/v1/chat/completions", `{"model":"nope","messages":[{"role":"user","content":"hi"}]}`,
			404, "NotFoundError", "The model `nope` does not exist."},
		{"unknown model completions", "/v1/completions", `{"model":"nope","prompt":"hi"}`,
			404, "NotFoundError", "The model `nope` does not exist."},
		{"unknown model embeddings", "/v1/embeddings", `{"model":"nope","input":"hi"}`,
			404, "NotFoundError", "The model `nope` does not exist."},
		{"malformed json", "/v1/chat/completions", `{"model":"m1","messages":[`, 400, "BadRequestError", "invalid JSON body"},
		{"malformed json completions", "/v1/completions", `nope`, 400, "BadRequestError", "invalid JSON body"},
		{"wrong field type", "/v1/chat/completions", `{"model":"m1","messages":"hi"}`, 400, "BadRequestError", "invalid JSON body"},
		{"missing messages", "/v1/chat/completions", `{"model":"m1"}`, 400, "BadRequestError", "messages"},
		{"bad content", "/v1/chat/completions", `{"model":"m1","messages":[{"role":"user","content":5}]}`, 400, "BadRequestError", "content"},
		{"priority under fcfs", "/v1/chat/completions", `{"model":"m1","priority":1,"messages":[{"role":"user","content":"hi"}]}`,
			400, "BadRequestError", "Priority scheduling is not enabled"},
		{"prompt too long", "/v1/completions", `{"model":"m1","prompt":"` + long + `"}`,
			400, "BadRequestError", "maximum context length is 64 tokens. However, your request has 75 input tokens"},
		{"max tokens too large", "/v1/chat/completions", `{"model":"m1","max_tokens":60,"messages":[{"role":"user","content":"hello"}]}`,
			400, "BadRequestError", "'max_tokens' or 'max_completion_tokens' is too large: 60"},
		{"max tokens zero", "/v1/completions", `{"model":"m1","max_tokens":0,"prompt":"hi"}`, 400, "BadRequestError", "at least 1"},
		{"empty prompt list", "/v1/completions", `{"model":"m1","prompt":[]}`, 400, "BadRequestError", "must not be empty"},
		{"embedding dimensions", "/v1/embeddings", `{"model":"m1","input":"hi","dimensions":5000}`, 400, "BadRequestError", "dimensions"},
		{"responses stream", "/v1/responses", `{"model":"m1","input":"hi","stream":true}`, 400, "BadRequestError", "stream"},
		{"tokenize nothing", "/tokenize", `{"model":"m1"}`, 400, "BadRequestError", "prompt or messages"},
		{"detokenize out of range", "/detokenize", `{"model":"m1","tokens":[-1]}`, 400, "BadRequestError", "out of vocabulary"},
		{"unknown path", "/v1/nothing", `{}`, 404, "NotFoundError", "Not Found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, body := post(t, s.URL()+tc.path, tc.body)
			var e struct {
				Error struct {
					Message string  `json:"message"`
					Type    string  `json:"type"`
					Param   *string `json:"param"`
					Code    int     `json:"code"`
				} `json:"error"`
			}
			if err := json.Unmarshal([]byte(body), &e); err != nil {
				t.Fatalf("error body %q is not JSON: %v", body, err)
			}
			if status != tc.status || e.Error.Code != tc.status || e.Error.Type != tc.typ || !strings.Contains(e.Error.Message, tc.message) {
				t.Errorf("got %d %s, want %d %s containing %q", status, body, tc.status, tc.typ, tc.message)
			}
			for _, k := range []string{`"message":`, `"type":`, `"param":`, `"code":`} {
				if !strings.Contains(body, k) {
					t.Errorf("error body lacks %s: %s", k, body)
				}
			}
		})
	}
}

func TestReceivedCounts(t *testing.T) {
	fcfs := startSim(t, Config{Model: "m1", Instant: true})
	prio := startSim(t, Config{Model: "m1", Instant: true, SchedulingPolicy: PolicyPriority})
	body := func(p int) string {
		b, _ := json.Marshal(map[string]any{"model": "m1", "priority": p, "max_tokens": 2,
			"messages": []map[string]string{{"role": "user", "content": "hi"}}})
		return string(b)
	}
	for _, p := range []int{0, 0, 3, -1, 3} {
		if status, resp := post(t, prio.URL()+"/v1/chat/completions", body(p)); status != 200 {
			t.Fatalf("priority %d on a priority backend: %d %s", p, status, resp)
		}
	}
	post(t, fcfs.URL()+"/v1/chat/completions", body(0))
	post(t, fcfs.URL()+"/v1/chat/completions", body(7))
	got := prio.Snapshot()
	if got.ReceivedByPriority[0] != 2 || got.ReceivedByPriority[3] != 2 || got.ReceivedByPriority[-1] != 1 || got.Statuses[200] != 5 {
		t.Errorf("priority backend counts %v statuses %v", got.ReceivedByPriority, got.Statuses)
	}
	got = fcfs.Snapshot()
	if got.ReceivedByPriority[7] != 1 || got.ReceivedByPriority[0] != 1 || got.Statuses[400] != 1 || got.Statuses[200] != 1 {
		t.Errorf("fcfs backend counts %v statuses %v", got.ReceivedByPriority, got.Statuses)
	}
}

func TestEndpointsMisc(t *testing.T) {
	s := startSim(t, Config{Model: "m1", Instant: true, Version: "0.9.9"})
	if status, body := get(t, s.URL()+"/version"); status != 200 || body != `{"version":"0.9.9"}` {
		t.Errorf("version: %d %s", status, body)
	}
	status, body := post(t, s.URL()+"/tokenize", `{"model":"m1","prompt":"hello world"}`)
	if status != 200 || !strings.HasPrefix(body, `{"count":3,"max_model_len":8192,"tokens":[`) {
		t.Fatalf("tokenize: %d %s", status, body)
	}
	var tok struct{ Tokens []int64 }
	if err := json.Unmarshal([]byte(body), &tok); err != nil {
		t.Fatal(err)
	}
	ids, _ := json.Marshal(tok.Tokens)
	if status, body := post(t, s.URL()+"/detokenize", `{"model":"m1","tokens":`+string(ids)+`}`); status != 200 || body != `{"prompt":"hello world"}` {
		t.Errorf("detokenize: %d %s", status, body)
	}
	if _, body := post(t, s.URL()+"/tokenize", `{"model":"m1","messages":[{"role":"user","content":"hi"}]}`); !strings.HasPrefix(body, `{"count":7,`) {
		t.Errorf("tokenize messages: %s", body) // "<|user|>\nhi\n<|assistant|>\n" = 26 bytes
	}
	status, body = post(t, s.URL()+"/v1/responses", `{"model":"m1","input":"hi","max_output_tokens":3}`)
	var r struct {
		Object string
		Status string
		Output []struct {
			Content []struct{ Type, Text string }
		}
		Usage struct {
			InputTokens, OutputTokens, TotalTokens int `json:"-"`
			Output                                 int `json:"output_tokens"`
		}
	}
	if err := json.Unmarshal([]byte(body), &r); err != nil || status != 200 {
		t.Fatalf("responses: %d %s %v", status, body, err)
	}
	if r.Object != "response" || r.Status != "completed" || len(r.Output) != 1 || len(r.Output[0].Content[0].Text) != 12 || r.Usage.Output != 3 {
		t.Errorf("responses body %s", body)
	}
}
