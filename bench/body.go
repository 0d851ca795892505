package bench

import (
	"strconv"
	"unicode/utf8"
)

// Endpoints a run can drive.
const (
	// EndpointChat is POST {base}/chat/completions.
	EndpointChat = "chat"
	// EndpointCompletions is POST {base}/completions.
	EndpointCompletions = "completions"
)

// BodyOptions says how a Request becomes a JSON body.
type BodyOptions struct {
	// Endpoint is EndpointChat or EndpointCompletions.
	Endpoint string
	// Model is the "model" field.
	Model string
	// Stream sets "stream":true and "stream_options":{"include_usage":true}.
	Stream bool
	// IgnoreEOS sets vLLM's "ignore_eos":true so outputs run to max_tokens.
	IgnoreEOS bool
}

// AppendBody appends the JSON request body for r to b and returns the extended slice. It
// writes the JSON by hand so that the hot path does not reflect over structs.
func AppendBody(b []byte, r Request, o BodyOptions) []byte {
	b = append(b, `{"model":`...)
	b = appendJSONString(b, o.Model)
	if o.Endpoint == EndpointCompletions {
		b = append(b, `,"prompt":`...)
		b = appendJSONString(b, r.Prompt())
	} else {
		b = append(b, `,"messages":[`...)
		for i, m := range r.Messages {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"role":`...)
			b = appendJSONString(b, m.Role)
			b = append(b, `,"content":`...)
			b = appendJSONString(b, m.Content)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, `,"max_tokens":`...)
	b = strconv.AppendInt(b, int64(r.MaxTokens), 10)
	if o.IgnoreEOS {
		b = append(b, `,"ignore_eos":true`...)
	}
	if o.Stream {
		b = append(b, `,"stream":true,"stream_options":{"include_usage":true}`...)
	}
	return append(b, '}')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string literal; invalid UTF-8 becomes U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
