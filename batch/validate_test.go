package batch

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/vllm-proxy/vllm-proxy/state"
)

func line(id, url, body string) string {
	return fmt.Sprintf(`{"custom_id":%q,"method":"POST","url":%q,"body":%s}`, id, url, body)
}

const chatURL = "/v1/chat/completions"

var okBody = `{"model":"m1","messages":[{"role":"user","content":"hi"}]}`

func TestValidateInputCodes(t *testing.T) {
	lim := validationLimits{maxLines: 8, maxLineBytes: 200, chunkLines: 2}
	good := func(id string) string { return line(id, chatURL, okBody) }
	cases := []struct {
		name  string
		input string
		want  []state.BatchError // code, param and line only
	}{
		{"bad json on line 7", strings.Join([]string{good("a"), good("b"), good("c"), good("d"), good("e"), good("f"), `{"custom_id": "x",`}, "\n") + "\n",
			[]state.BatchError{{Code: "invalid_json_line", Line: 7}}},
		{"too many tasks", strings.Repeat("\n", 0) + strings.Join([]string{good("1"), good("2"), good("3"), good("4"), good("5"), good("6"), good("7"), good("8"), good("9")}, "\n"),
			[]state.BatchError{{Code: "too_many_tasks", Line: 9}}},
		{"invalid json", good("a") + "\nnot json\n" + good("b") + "\n", []state.BatchError{{Code: "invalid_json_line", Line: 2}}},
		{"array line", good("a") + "\n[1,2]\n", []state.BatchError{{Code: "invalid_json_line", Line: 2}}},
		{"duplicate", good("a") + "\n" + good("b") + "\n" + good("a") + "\n", []state.BatchError{{Code: "duplicate_custom_id", Param: "custom_id", Line: 3}}},
		{"url mismatch", good("a") + "\n" + line("b", "/v1/embeddings", okBody) + "\n", []state.BatchError{{Code: "url_mismatch", Param: "url", Line: 2}}},
		{"method", `{"custom_id":"a","method":"GET","url":"/v1/chat/completions","body":{}}` + "\n", []state.BatchError{{Code: "invalid_method", Param: "method", Line: 1}}},
		{"stream", line("a", chatURL, `{"model":"m1","stream":true}`) + "\n", []state.BatchError{{Code: "stream_not_supported", Param: "body.stream", Line: 1}}},
		{"stream false ok", line("a", chatURL, `{"model":"m1","stream":false}`) + "\n", nil},
		{"empty", "", []state.BatchError{{Code: "empty_file"}}},
		{"only blank lines", "\n\n  \n", []state.BatchError{{Code: "empty_file"}}},
		{"trailing blank lines ok", good("a") + "\n\n\n", nil},
		{"blank line in the middle", good("a") + "\n\n" + good("b") + "\n", []state.BatchError{{Code: "invalid_json_line", Line: 2}}},
		{"too long", good("a") + "\n" + line("b", chatURL, `{"x":"`+strings.Repeat("y", 300)+`"}`) + "\n", []state.BatchError{{Code: "invalid_json_line", Line: 2}}},
		{"custom_id not string", `{"custom_id":5,"method":"POST","url":"/v1/chat/completions","body":{}}` + "\n", []state.BatchError{{Code: "invalid_json_line", Param: "custom_id", Line: 1}}},
		{"body not object", line("a", chatURL, `"hi"`) + "\n", []state.BatchError{{Code: "invalid_json_line", Param: "body", Line: 1}}},
		{"every bad line reported", "x\n" + good("a") + "\ny\n" + good("a") + "\n", []state.BatchError{
			{Code: "invalid_json_line", Line: 1}, {Code: "invalid_json_line", Line: 3}, {Code: "duplicate_custom_id", Param: "custom_id", Line: 4}}},
		{"crlf and no final newline", good("a") + "\r\n" + good("b"), nil},
		{"escaped key", `{"cust\u006fm_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":"m1"}}` + "\n", nil},
		{"keys are case-sensitive", `{"Custom_ID":"a","method":"POST","url":"/v1/chat/completions","body":{}}` + "\n", []state.BatchError{{Code: "invalid_json_line", Param: "custom_id", Line: 1}}},
		{"no body", `{"custom_id":"a","method":"POST","url":"/v1/chat/completions"}` + "\n", []state.BatchError{{Code: "invalid_json_line", Param: "body", Line: 1}}},
		{"model not a string", line("a", chatURL, `{"model":5}`) + "\n", []state.BatchError{{Code: "invalid_json_line", Param: "body.model", Line: 1}}},
		{"model null ok", line("a", chatURL, `{"model":null}`) + "\n", nil},
		{"stream true spaced", line("a", chatURL, `{"model":"m1", "stream" : true }`) + "\n", []state.BatchError{{Code: "stream_not_supported", Param: "body.stream", Line: 1}}},
		{"last duplicate key wins", `{"custom_id":"a","method":"GET","method":"POST","url":"/v1/chat/completions","body":{}}` + "\n", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, errs, err := validateInput(iotest.HalfReader(strings.NewReader(tc.input)), chatURL, lim)
			if err != nil {
				t.Fatal(err)
			}
			if len(errs) != len(tc.want) {
				t.Fatalf("errors %+v, want %+v", errs, tc.want)
			}
			for i, e := range errs {
				w := tc.want[i]
				if e.Code != w.Code || e.Line != w.Line || e.Param != w.Param || e.Message == "" {
					t.Fatalf("error %d = %+v, want %+v", i, e, w)
				}
			}
		})
	}
}

func TestValidateInputChunksAndModel(t *testing.T) {
	var b strings.Builder
	for i := range 5 {
		b.WriteString(line(fmt.Sprint("id", i), chatURL, okBody) + "\n")
	}
	in := b.String()
	v, errs, err := validateInput(strings.NewReader(in), chatURL, validationLimits{maxLines: 10, maxLineBytes: 1000, chunkLines: 2})
	if err != nil || errs != nil {
		t.Fatal(err, errs)
	}
	if v.Total != 5 || v.Model != "m1" || len(v.Chunks) != 3 {
		t.Fatalf("validated %+v", v)
	}
	// Chunks tile the file and each holds exactly its lines.
	var end int64
	for i, c := range v.Chunks {
		if c.Offset != end || c.First != int64(2*i) {
			t.Fatalf("chunk %d = %+v", i, c)
		}
		end = c.Offset + c.Length
		if got := strings.Count(in[c.Offset:end], "\n"); int64(got) != c.N {
			t.Fatalf("chunk %d spans %d lines, N=%d", i, got, c.N)
		}
	}
	if end != int64(len(in)) {
		t.Fatalf("chunks end at %d of %d", end, len(in))
	}
	mixed := in + line("x", chatURL, `{"model":"m2"}`) + "\n"
	v, _, _ = validateInput(strings.NewReader(mixed), chatURL, validationLimits{maxLines: 10, maxLineBytes: 1000, chunkLines: 2})
	if v.Model != "" {
		t.Fatalf("mixed models gave model %q", v.Model)
	}
}

func TestValidateEmbeddingInputs(t *testing.T) {
	lim := validationLimits{maxLines: 4, maxLineBytes: 1000, chunkLines: 2}
	in := line("a", "/v1/embeddings", `{"model":"e","input":["x","y","z"]}`) + "\n" + line("b", "/v1/embeddings", `{"model":"e","input":["p","q"]}`) + "\n"
	_, errs, _ := validateInput(strings.NewReader(in), "/v1/embeddings", lim)
	if len(errs) != 1 || errs[0].Code != "too_many_tasks" || errs[0].Line != 2 {
		t.Fatalf("errs %+v", errs)
	}
	if n := embeddingInputs([]byte(`[1,2,3]`)); n != 1 {
		t.Fatalf("token array counted %d", n)
	}
	if n := embeddingInputs([]byte(`[[1],[2]]`)); n != 2 {
		t.Fatalf("token arrays counted %d", n)
	}
}

func TestValidateStopsAtHundredErrors(t *testing.T) {
	in := strings.Repeat("bad\n", 500)
	_, errs, _ := validateInput(strings.NewReader(in), chatURL, validationLimits{maxLines: 1000, maxLineBytes: 100, chunkLines: 8})
	if len(errs) != maxValidationErrors || errs[99].Line != 100 {
		t.Fatalf("%d errors, last %+v", len(errs), errs[len(errs)-1])
	}
}

// FuzzValidateInput: any input validates without panicking; errors are at most 100 with
// line numbers within the file; a valid result's chunks tile the task lines.
func FuzzValidateInput(f *testing.F) {
	f.Add([]byte(line("a", chatURL, okBody) + "\n" + line("b", chatURL, okBody)))
	f.Add([]byte("x\n\n{}\n"))
	f.Add([]byte(line("a", chatURL, `{"stream":true}`)))
	f.Add([]byte(`{"custom_id":"a","method":"POST","url":"/v1/chat/completions","body":{"model":1}}`))
	f.Add([]byte("\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		lim := validationLimits{maxLines: 20, maxLineBytes: 64, chunkLines: 3}
		v, errs, err := validateInput(bytes.NewReader(data), chatURL, lim)
		if err != nil {
			t.Fatal(err)
		}
		lines := int64(bytes.Count(data, []byte("\n")) + 1)
		if len(errs) > maxValidationErrors {
			t.Fatalf("%d errors", len(errs))
		}
		for _, e := range errs {
			if e.Line < 0 || e.Line > lines || e.Code == "" {
				t.Fatalf("bad error %+v (%d lines)", e, lines)
			}
		}
		if len(errs) == 0 {
			var n int64
			for _, c := range v.Chunks {
				if c.First != n || c.Offset < 0 || c.Offset+c.Length > int64(len(data)) {
					t.Fatalf("chunk %+v", c)
				}
				n += c.N
			}
			if n != v.Total || v.Total == 0 {
				t.Fatalf("chunks hold %d of %d lines", n, v.Total)
			}
		}
	})
}

// BenchmarkValidateInput validates 50,000 chat lines of ~4 KB (a ~200 MB file, the
// largest accepted) from memory: the CPU cost of the validating step.
func BenchmarkValidateInput(b *testing.B) {
	var in bytes.Buffer
	pad := strings.Repeat("lorem ipsum dolor sit amet ", 150)
	for i := range 50000 {
		fmt.Fprintf(&in, `{"custom_id":"req-%d","method":"POST","url":"/v1/chat/completions","body":{"model":"m1","max_tokens":8,"messages":[{"role":"system","content":"You are assistant %d."},{"role":"user","content":"question %d %s"}]}}`+"\n", i, i%8, i, pad)
	}
	lim := validationLimits{maxLines: 50000, maxLineBytes: 1 << 20, chunkLines: 64}
	b.SetBytes(int64(in.Len()))
	for b.Loop() {
		if _, errs, err := validateInput(bytes.NewReader(in.Bytes()), chatURL, lim); err != nil || errs != nil {
			b.Fatal(err, errs)
		}
	}
}
