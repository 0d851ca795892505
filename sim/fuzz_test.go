package sim

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzParseRequest feeds arbitrary bodies to every request parser: none may panic, and
// each either succeeds with a usable request or fails with ErrBadRequest.
func FuzzParseRequest(f *testing.F) {
	for _, seed := range []string{
		`{"model":"m1","messages":[{"role":"user","content":"hi"}],"max_tokens":5,"stream":true,"stream_options":{"include_usage":true}}`,
		`{"model":"m1","messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url"}]}],"priority":-2,"cache_salt":"s"}`,
		`{"model":"m1","messages":[{"role":"assistant","content":null}],"max_completion_tokens":1}`,
		`{"model":"m1","prompt":"hello","max_tokens":3}`,
		`{"model":"m1","prompt":["a","b"]}`,
		`{"model":"m1","prompt":[1,2,3]}`,
		`{"model":"m1","prompt":[[1,2],[3]]}`,
		`{"model":"m1","input":[{"role":"user","content":"x"}],"instructions":"be brief","max_output_tokens":2}`,
		`{"model":"m1","input":"x"}`,
		`{"model":"m1","prompt":[-1, 4294967296]}`,
		`{"messages":[{"content":"\u0000\ud800"}]}`,
		`[]`, `null`, `{`, ``, `{"prompt":[[],"x"]}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		check := func(what string, g genRequest, err error) {
			if err != nil {
				if !errors.Is(err, ErrBadRequest) {
					t.Fatalf("%s: error %v is not ErrBadRequest", what, err)
				}
				return
			}
			if len(g.Prompts) == 0 {
				t.Fatalf("%s: accepted a request without prompts", what)
			}
		}
		g, _, err := parseChat(body, nil)
		check("chat", g, err)
		g, err = parseCompletion(body)
		check("completion", g, err)
		g, _, err = parseResponses(body, nil)
		check("responses", g, err)
		if ins, err := parseTextInputs(body, "input"); err == nil && len(ins) == 0 {
			t.Fatal("text inputs: accepted nothing")
		} else if err != nil && !errors.Is(err, ErrBadRequest) {
			t.Fatalf("text inputs: %v", err)
		}
	})
}

// FuzzTokenRoundTrip checks that detokenize inverts tokenize for texts without NUL
// bytes, and that the token count is ceil(len/4).
func FuzzTokenRoundTrip(f *testing.F) {
	for _, seed := range []string{"", "a", "hello world", "héllo wörld ✓", "\xff\xfe"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, text string) {
		ids := tokenIDs(nil, text)
		if len(ids) != countTokens(len(text)) {
			t.Fatalf("%d ids for %d bytes", len(ids), len(text))
		}
		if bytes.IndexByte([]byte(text), 0) >= 0 {
			return
		}
		if got := string(appendDetokenized(nil, ids)); got != text {
			t.Fatalf("round trip %q -> %q", text, got)
		}
	})
}

// FuzzAppendString checks that the hand-written JSON string encoder always produces
// valid JSON that decodes back to the input (invalid UTF-8 replaced).
func FuzzAppendString(f *testing.F) {
	for _, seed := range []string{"", `"quoted"`, "tab\tnew\nline", "\x00\x1f", "✓", "\xff"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		enc := appendString(nil, s)
		var got string
		if err := jsonUnmarshalString(enc, &got); err != nil {
			t.Fatalf("encoding of %q is invalid JSON %s: %v", s, enc, err)
		}
		var want []rune
		for _, r := range s { // ranging replaces each invalid byte by U+FFFD, as appendString does
			want = append(want, r)
		}
		if got != string(want) {
			t.Fatalf("decoded %q, want %q", got, string(want))
		}
	})
}

func jsonUnmarshalString(b []byte, s *string) error { return decode(b, s) }
