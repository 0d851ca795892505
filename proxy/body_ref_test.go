package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// The reference parser: parseJSON and the canonical prompt as they were before the
// scanner (jsonscan.go), all encoding/json. FuzzParseJSONMatchesReference holds the
// production parser to exactly its results.

func refParseJSON(body []byte, maxPrompt int) (requestInfo, error) {
	var f jsonFields
	if err := json.Unmarshal(body, &f); err != nil {
		if _, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
			return requestInfo{}, badRequest("", "the request body must be a JSON object", nil)
		}
		return requestInfo{}, badRequest("", "the request body is not valid JSON", err)
	}
	var info requestInfo
	if !isNull(f.Model) {
		if err := json.Unmarshal(f.Model, &info.Model); err != nil {
			return requestInfo{}, badRequest("model", "the model field must be a string", nil)
		}
	}
	// A mistyped stream, priority or cache_salt is the backend's to reject: the proxy
	// forwards the body as sent and only loses a routing hint.
	_ = json.Unmarshal(f.Stream, &info.Stream)
	var prio int
	if !isNull(f.Priority) && json.Unmarshal(f.Priority, &prio) == nil {
		info.Priority, info.HasPriority = prio, true
	}
	_ = json.Unmarshal(f.CacheSalt, &info.CacheSalt)
	info.Prompt = refCanonicalPrompt(&f, maxPrompt)
	return info, nil
}

// refPromptWriter accumulates text up to a byte limit and then ignores the rest.
type refPromptWriter struct {
	b   strings.Builder
	max int
}

func (w *refPromptWriter) full() bool { return w.b.Len() >= w.max }

func (w *refPromptWriter) WriteString(s string) {
	if room := w.max - w.b.Len(); room < len(s) {
		s = s[:max(room, 0)]
	}
	w.b.WriteString(s)
}

// writeCompact writes raw JSON without insignificant whitespace, so formatting differences
// between clients do not change the hash.
func (w *refPromptWriter) writeCompact(raw json.RawMessage) {
	if w.full() || isNull(raw) {
		return
	}
	var buf bytes.Buffer
	if json.Compact(&buf, raw) != nil {
		w.WriteString(string(raw))
		return
	}
	w.WriteString(buf.String())
}

// refCanonicalPrompt builds the capped canonical prompt for a JSON request: chat messages,
// else the Responses API's instructions and input, else a completions prompt, else an
// embeddings input.
func refCanonicalPrompt(f *jsonFields, maxBytes int) string {
	w := &refPromptWriter{max: maxBytes}
	switch {
	case !isNull(f.Messages):
		if !isNull(f.Tools) {
			w.WriteString("<|tools|>\n")
			w.writeCompact(f.Tools)
			w.WriteString("\n")
		}
		refWriteMessages(w, f.Messages)
	case !isNull(f.Instructions) || (!isNull(f.Input) && isResponsesInput(f.Input)):
		if !isNull(f.Tools) {
			w.WriteString("<|tools|>\n")
			w.writeCompact(f.Tools)
			w.WriteString("\n")
		}
		if !isNull(f.Instructions) {
			refWriteMessage(w, "system", f.Instructions)
		}
		refWriteInput(w, f.Input)
	case !isNull(f.Prompt):
		refWriteText(w, f.Prompt)
	case !isNull(f.Input):
		refWriteText(w, f.Input)
	}
	return w.b.String()
}

// refWriteInput writes a Responses API input: a string is one user message, a list holds
// message items.
func refWriteInput(w *refPromptWriter, raw json.RawMessage) {
	if isNull(raw) {
		return
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		refWriteMessage(w, "user", raw)
		return
	}
	refWriteMessages(w, raw)
}

func refWriteMessages(w *refPromptWriter, raw json.RawMessage) {
	var msgs []chatMessage
	if json.Unmarshal(raw, &msgs) != nil {
		w.writeCompact(raw) // malformed: the backend will reject it; still hash something stable
		return
	}
	for i := range msgs {
		if w.full() {
			return
		}
		m := &msgs[i]
		role := m.Role
		if role == "" {
			role = m.Type
		}
		w.WriteString("<|" + role + "|>")
		if m.Name != "" {
			w.WriteString(" " + m.Name)
		}
		if m.ToolCallID != "" {
			w.WriteString(" " + m.ToolCallID)
		}
		w.WriteString("\n")
		refWriteContent(w, m.Content)
		if !isNull(m.ToolCalls) {
			w.writeCompact(m.ToolCalls)
		}
		w.WriteString("\n")
	}
}

// writeMessage writes one message whose content is raw.
func refWriteMessage(w *refPromptWriter, role string, raw json.RawMessage) {
	w.WriteString("<|" + role + "|>\n")
	refWriteContent(w, raw)
	w.WriteString("\n")
}

// refWriteContent writes a message content: a string, or a list of parts of which text parts
// contribute their text and others their compact JSON.
func refWriteContent(w *refPromptWriter, raw json.RawMessage) {
	if isNull(raw) {
		return
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		w.WriteString(s)
		return
	}
	var parts []json.RawMessage
	if json.Unmarshal(raw, &parts) != nil {
		w.writeCompact(raw)
		return
	}
	for _, p := range parts {
		if w.full() {
			return
		}
		var cp contentPart
		switch {
		case json.Unmarshal(p, &cp) != nil:
			w.writeCompact(p)
		case cp.Type == "text" || cp.Type == "input_text" || cp.Type == "output_text":
			w.WriteString(cp.Text)
		case cp.ImageURL != nil:
			w.WriteString("<|image|>" + cp.ImageURL.URL)
		default:
			w.writeCompact(p)
		}
	}
}

// refWriteText writes a completions prompt or an embeddings input: a string as is, a list of
// strings one per line, anything else (token ids) as compact JSON.
func refWriteText(w *refPromptWriter, raw json.RawMessage) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		w.WriteString(s)
		return
	}
	var list []string
	if json.Unmarshal(raw, &list) == nil {
		for i, s := range list {
			if w.full() {
				return
			}
			if i > 0 {
				w.WriteString("\n")
			}
			w.WriteString(s)
		}
		return
	}
	w.writeCompact(raw)
}

// referenceSeeds are bodies where the scanner and encoding/json could part ways: key case
// and repeats, nulls, escapes, non-ASCII, mistyped fields, odd numbers, deep nesting.
var referenceSeeds = []string{
	`{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true}`,
	`{"MODEL":"a","model":"b","Stream":true,"STREAM":false,"Messages":[{"ROLE":"user","Content":"x"}]}`,
	`{"model":"a","model":null}`, `{"model":null}`, `{"model":5}`, `{"model":"\u006d\n"}`, `{"mod\u0065l":"x"}`,
	`{"modèl":"x","model":"y"}`, `{"ſtream":true,"model":"m"}`, `{"model":"m\xff"}`, `{"model":"\ud800x"}`,
	`{"model":"m","stream":"true","priority":1.0,"cache_salt":7}`, `{"priority":-0,"cache_salt":null}`,
	`{"priority":99999999999999999999}`, `{"priority":1e2}`, `{"priority":-7,"priority":null}`,
	`{"messages":[null,{"role":"user","role":null,"content":"a"},{"type":"message","name":"n","tool_call_id":"t"}]}`,
	`{"messages":[{"role":5,"content":"a"}]}`, `{"messages":["x"]}`, `{"messages":{"role":"user"}}`, `{"messages":[]}`,
	`{"messages":[{"role":"user","content":[{"type":"text","text":"a"},null,"s",5,[1],{"type":"text","text":null},{"type":"x"}]}]}`,
	`{"messages":[{"role":"user","content":[{"image_url":{"url":"u"},"image_url":{}},{"image_url":null},{"image_url":"s"},{"image_url":{"url":1}}]}]}`,
	`{"messages":[{"role":"user","content":[{"TYPE":"Text","TEXT":"a"},{"type":"input_text","text":"b","text":"c"}]}]}`,
	`{"messages":[{"role":"user","content":{"a":1}},{"role":"assistant","content":null,"tool_calls":[{"id":"c"}]}]}`,
	`{"messages":[{"role":"user","content":[{"ключ":1,"type":"text","text":"t"}]}]}`,
	`{"tools":[{"type":"function"}],"messages":[{"role":"system","content":"s"}]}`,
	`{"prompt":"p"}`, `{"prompt":["a",null,"b"]}`, `{"prompt":["a",1]}`, `{"prompt":[[1,2],[3]]}`, `{"prompt":{"a":1}}`,
	`{"input":"x"}`, `{"input":["a","b"]}`, `{"input":[{"type":"message","role":"user","content":"x"}],"instructions":"i"}`,
	`{"instructions":null,"input":[1]}`, ` { "model" : "m" , "prompt" : "p" } `, `{"model":"m"}x`, `{"model":"m",}`,
	`{"a":01}`, `{"a":-}`, `{"a":1.}`, `{"a":.5}`, `{"a":1e}`, `{"a":tru}`, `{"a":"\x01"}`, `{"a":"\q"}`, `{"a":"\u12"}`,
	`null`, `[]`, `"s"`, `5`, `{}`, ``, `{`, `{"a"}`, `{"a":1 "b":2}`,
	`{"prompt":` + strings.Repeat("[", 600) + strings.Repeat("]", 600) + `}`,
	`{"messages":[{"role":"user","content":` + strings.Repeat("[", 520) + strings.Repeat("]", 520) + `}]}`,
}

func FuzzParseJSONMatchesReference(f *testing.F) {
	for _, s := range referenceSeeds {
		f.Add([]byte(s), 512)
	}
	f.Add([]byte(referenceSeeds[0]), 3)
	f.Fuzz(func(t *testing.T, body []byte, maxPrompt int) {
		maxPrompt = max(maxPrompt%4096, 0)
		got, err := parseJSON(body, maxPrompt)
		want, wantErr := refParseJSON(body, maxPrompt)
		if (err == nil) != (wantErr == nil) || (err != nil && err.Error() != wantErr.Error()) {
			t.Fatalf("error %v, reference %v", err, wantErr)
		}
		if got != want {
			t.Fatalf("parsed\n%+v\nreference\n%+v", got, want)
		}
	})
}

func TestParseJSONMatchesReference(t *testing.T) {
	for _, s := range referenceSeeds {
		for _, maxPrompt := range []int{0, 7, 512} {
			got, err := parseJSON([]byte(s), maxPrompt)
			want, wantErr := refParseJSON([]byte(s), maxPrompt)
			if (err == nil) != (wantErr == nil) || (err != nil && err.Error() != wantErr.Error()) || got != want {
				t.Errorf("%s (max %d):\n got %+v, %v\nwant %+v, %v", s, maxPrompt, got, err, want, wantErr)
			}
		}
	}
}

// BenchmarkParseBodyReference is BenchmarkParseBody on the reference parser, for the
// speed-up of the scanner:
//
//	go test -run XXX -bench 'ParseBody' -benchmem ./proxy/
func BenchmarkParseBodyReference(b *testing.B) {
	body := []byte(`{"model":"m","stream":true,"messages":[{"role":"system","content":"` + strings.Repeat("You are helpful. ", 50) +
		`"},{"role":"user","content":"` + strings.Repeat("question ", 100) + `"}],"max_tokens":64,"temperature":0.7}`)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := refParseJSON(body, DefaultMaxPromptBytes); err != nil {
			b.Fatal(err)
		}
	}
}
