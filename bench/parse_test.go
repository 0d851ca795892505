package bench

import (
	"bufio"
	"errors"
	"strings"
	"testing"
)

type countTokens struct{ n int }

func (c *countTokens) token() { c.n++ }

func TestReadStreamFraming(t *testing.T) {
	chunk := `{"choices":[{"delta":{"content":"x"}}]}`
	usageChunk := `{"choices":[],"usage":{"prompt_tokens": 12, "completion_tokens":3,"prompt_tokens_details":{"cached_tokens":8}}}`
	cases := []struct {
		name, body string
		tokens     int
		usage      usage
		err        error
	}{
		{"lf", "data: " + chunk + "\n\ndata: " + chunk + "\n\ndata: " + usageChunk + "\n\ndata: [DONE]\n\n", 2, usage{12, 3, true}, nil},
		{"crlf no space", "data:" + chunk + "\r\n\r\ndata:" + usageChunk + "\r\n\r\ndata:[DONE]\r\n\r\n", 1, usage{12, 3, true}, nil},
		{"comments and fields", ": ping\nevent: x\nid: 3\ndata: " + chunk + "\n\ndata: [DONE]\n", 1, usage{}, nil},
		{"role chunk is no token", `data: {"choices":[{"delta":{"role":"assistant","content":""}}]}` + "\n\ndata: [DONE]\n", 0, usage{}, nil},
		{"completions text", `data: {"choices":[{"text":"hi"}]}` + "\n\ndata: [DONE]\n", 1, usage{}, nil},
		{"reasoning", `data: {"choices":[{"delta":{"reasoning_content":"hm"}}]}` + "\n\ndata: [DONE]\n", 1, usage{}, nil},
		{"truncated", "data: " + chunk + "\n\n", 1, usage{}, errStreamTruncated},
		{"no final newline", "data: " + chunk + "\n\ndata: [DONE]", 1, usage{}, nil},
		{"error event", "data: " + chunk + "\n\n" + `data: {"error":{"message":"boom"}}` + "\n\n", 1, usage{}, errStreamError},
		{"long line", "data: {\"choices\":[{\"delta\":{\"content\":\"" + strings.Repeat("y", 100000) + "\"}}]}\n\ndata: [DONE]\n", 1, usage{}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var ev countTokens
			u, err := readStream(bufio.NewReaderSize(strings.NewReader(c.body), 64), &ev)
			if !errors.Is(err, c.err) || (err != nil) != (c.err != nil) {
				t.Fatalf("err = %v, want %v", err, c.err)
			}
			if ev.n != c.tokens || u != c.usage {
				t.Errorf("tokens %d usage %+v, want %d %+v", ev.n, u, c.tokens, c.usage)
			}
		})
	}
}

func TestParseUsage(t *testing.T) {
	cases := []struct {
		body string
		want usage
	}{
		{`{"usage":{"prompt_tokens":5,"total_tokens":9,"completion_tokens":4}}`, usage{5, 4, true}},
		{`{"usage" : { "completion_tokens" : 4 , "prompt_tokens" : 5 }}`, usage{5, 4, true}},
		{`{"usage":null}`, usage{}},
		{`{"choices":[]}`, usage{}},
		{`{"usage":{"prompt_tokens":5}}`, usage{}},
		{`{"usage":{"prompt_tokens":"5","completion_tokens":1}}`, usage{}},
	}
	for _, c := range cases {
		if got := parseUsage([]byte(c.body)); got != c.want {
			t.Errorf("parseUsage(%s) = %+v, want %+v", c.body, got, c.want)
		}
	}
}

// FuzzReadStream feeds arbitrary bytes to the SSE reader: it must never panic, and token
// and usage figures must stay non-negative.
func FuzzReadStream(f *testing.F) {
	f.Add([]byte("data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\ndata: [DONE]\n"))
	f.Add([]byte("data:{\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2}}\r\n\r\ndata:[DONE]\r\n"))
	f.Add([]byte(": c\nevent: e\ndata: {\"error\":{}}\n"))
	f.Add([]byte("data: \"content\":\"\ndata: \"text\":"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, b []byte) {
		var ev countTokens
		u, _ := readStream(bufio.NewReaderSize(strings.NewReader(string(b)), 16), &ev)
		if u.prompt < 0 || u.completion < 0 || ev.n < 0 {
			t.Fatalf("negative figures: %+v %d", u, ev.n)
		}
	})
}

// FuzzParseUsage feeds arbitrary bytes to the non-streaming usage parser.
func FuzzParseUsage(f *testing.F) {
	f.Add([]byte(`{"usage":{"prompt_tokens":5,"completion_tokens":4}}`))
	f.Add([]byte(`{"usage":{"prompt_tokens":999999999999999,"completion_tokens":`))
	f.Add([]byte(`"usage":`))
	f.Fuzz(func(t *testing.T, b []byte) {
		u := parseUsage(b)
		if u.prompt < 0 || u.completion < 0 {
			t.Fatalf("negative usage %+v", u)
		}
		_ = hasToken(b)
		_ = isErrorEvent(b)
	})
}
