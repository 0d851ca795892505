package proxy

import (
	"bytes"
	"errors"
	"mime/multipart"
	"strings"
	"testing"
)

func TestParseBody(t *testing.T) {
	tests := []struct {
		name    string
		ct      string
		body    string
		want    requestInfo
		wantErr string // substring; "" means no error
	}{
		{
			name: "chat with system, tool and parts",
			body: `{"model":"m1","stream":true,"priority":-3,"cache_salt":"s1","unknown":{"x":1},
				"tools":[{"type":"function", "function":{"name":"f"}}],
				"messages":[{"role":"system","content":"be brief"},
					{"role":"user","content":[{"type":"text","text":"hi "},{"type":"image_url","image_url":{"url":"http://i/1.png"}},{"type":"text","text":"there"}]},
					{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},
					{"role":"tool","tool_call_id":"c1","content":"42"}]}`,
			want: requestInfo{Model: "m1", Stream: true, Priority: -3, HasPriority: true, CacheSalt: "s1",
				Prompt: "<|tools|>\n" + `[{"type":"function","function":{"name":"f"}}]` + "\n" +
					"<|system|>\nbe brief\n" +
					"<|user|>\nhi <|image|>http://i/1.pngthere\n" +
					"<|assistant|>\n" + `[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]` + "\n" +
					"<|tool|> c1\n42\n"},
		},
		{
			name: "completions prompt list",
			body: `{"model":"m","prompt":["a","b"]}`,
			want: requestInfo{Model: "m", Prompt: "a\nb"},
		},
		{
			name: "completions token ids",
			body: `{"model":"m","prompt":[1, 2, 3]}`,
			want: requestInfo{Model: "m", Prompt: "[1,2,3]"},
		},
		{
			name: "embeddings input",
			body: `{"model":"e","input":"hello"}`,
			want: requestInfo{Model: "e", Prompt: "hello"},
		},
		{
			name: "responses api",
			body: `{"model":"m","instructions":"sys","input":[{"role":"user","content":[{"type":"input_text","text":"q"}]}]}`,
			want: requestInfo{Model: "m", Prompt: "<|system|>\nsys\n<|user|>\nq\n"},
		},
		{
			name: "no model, null fields, mistyped hints pass",
			body: `{"model":null,"stream":"yes","priority":"high","cache_salt":5,"prompt":"p"}`,
			want: requestInfo{Prompt: "p"},
		},
		{
			name:    "model not a string",
			body:    `{"model":7}`,
			wantErr: "the model field must be a string",
		},
		{
			name:    "not an object",
			body:    `[1,2]`,
			wantErr: "must be a JSON object",
		},
		{
			name:    "invalid json",
			body:    `{"model":`,
			wantErr: "not valid JSON",
		},
		{
			name:    "empty body",
			body:    ``,
			wantErr: "not valid JSON",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseBody(tc.ct, []byte(tc.body), 1<<20)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrBadRequest) {
					t.Fatalf("err = %v, want ErrBadRequest containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseBody: %v", err)
			}
			if got != tc.want {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestParseBodyPromptCap(t *testing.T) {
	body := `{"model":"m","messages":[{"role":"user","content":"` + strings.Repeat("x", 1000) + `"}]}`
	got, err := parseBody("application/json", []byte(body), 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Prompt) != 100 || !strings.HasPrefix(got.Prompt, "<|user|>\nxxx") {
		t.Fatalf("prompt len %d = %q, want the first 100 bytes", len(got.Prompt), got.Prompt)
	}
}

// TestPromptSharesPrefix: a follow-up turn's canonical prompt extends the first turn's,
// which is what prefix affinity relies on.
func TestPromptSharesPrefix(t *testing.T) {
	turn1 := `{"model":"m","messages":[{"role":"system","content":"S"},{"role":"user","content":"Q1"}]}`
	turn2 := `{"model":"m","messages":[{"role":"system","content":"S"},{"role":"user","content":"Q1"},{"role":"assistant","content":"A1"},{"role":"user","content":"Q2"}]}`
	p1, err1 := parseBody("", []byte(turn1), 1<<20)
	p2, err2 := parseBody("", []byte(turn2), 1<<20)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if !strings.HasPrefix(p2.Prompt, p1.Prompt) {
		t.Fatalf("turn 2 prompt %q does not extend turn 1 prompt %q", p2.Prompt, p1.Prompt)
	}
}

func multipartBody(t testing.TB, fields map[string]string) (string, []byte) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, err := mw.CreateFormFile("file", "a.wav")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = fw.Write(bytes.Repeat([]byte{0, 1, 2}, 1000))
	for k, v := range fields {
		if err := mw.WriteField(k, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return mw.FormDataContentType(), buf.Bytes()
}

func TestParseBodyMultipart(t *testing.T) {
	ct, body := multipartBody(t, map[string]string{"model": "whisper", "stream": "true", "language": "en"})
	got, err := parseBody(ct, body, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if got.Model != "whisper" || !got.Stream {
		t.Fatalf("got %+v, want model whisper, stream", got)
	}
	if _, err := parseBody("multipart/form-data", body, 1<<20); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("no boundary: err = %v, want ErrBadRequest", err)
	}
	if _, err := parseBody(ct, body[:len(body)/2], 1<<20); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("truncated form: err = %v, want ErrBadRequest", err)
	}
}

func FuzzParseBody(f *testing.F) {
	for _, s := range []string{
		`{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true}`,
		`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"u"}}]}]}`,
		`{"model":"m","prompt":[[1,2],[3]]}`,
		`{"model":"m","input":["a","b"],"priority":5,"cache_salt":"x"}`,
		`{"model":"m","instructions":"i","input":[{"type":"message","role":"user","content":"x"}]}`,
		`{"messages":{"role":"user"}}`,
		`{"model":1}`, `[]`, `nul`, ``, `{"model":"\ud800"}`,
	} {
		f.Add("application/json", []byte(s))
	}
	ct, body := multipartBody(f, map[string]string{"model": "w"})
	f.Add(ct, body)
	f.Add("multipart/form-data; boundary=x", []byte("--x\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nm\r\n--x--\r\n"))
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		const maxPrompt = 512
		info, err := parseBody(ct, body, maxPrompt)
		if err != nil {
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("error %v does not wrap ErrBadRequest", err)
			}
			return
		}
		if len(info.Prompt) > maxPrompt {
			t.Fatalf("prompt is %d bytes, over the cap %d", len(info.Prompt), maxPrompt)
		}
		again, err := parseBody(ct, body, maxPrompt)
		if err != nil || again != info {
			t.Fatalf("parsing twice differs: %+v / %+v, %v", info, again, err)
		}
	})
}
