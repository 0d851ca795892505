package bench

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// Response parsing is deliberately minimal: the generator must stay cheap, so it scans
// bytes for the few fields it needs instead of decoding JSON.

// errStreamTruncated means the SSE stream ended without "data: [DONE]".
var errStreamTruncated = errors.New("stream ended without [DONE]")

// errStreamError means the server sent an error object inside the stream.
var errStreamError = errors.New("error event in stream")

// maxSSELine bounds one SSE line; longer lines are an error rather than unbounded memory.
const maxSSELine = 4 << 20

// usage is the token accounting of one response.
type usage struct {
	prompt, completion int
	ok                 bool
}

// parseUsage finds "usage":{..."prompt_tokens":N,..."completion_tokens":M} in a JSON body.
func parseUsage(b []byte) usage {
	i := bytes.Index(b, []byte(`"usage"`))
	if i < 0 {
		return usage{}
	}
	b = b[i+len(`"usage"`):]
	b = skipSpace(b)
	if len(b) == 0 || b[0] != ':' {
		return usage{}
	}
	b = skipSpace(b[1:])
	if len(b) == 0 || b[0] != '{' {
		return usage{}
	}
	p, okP := intField(b, `"prompt_tokens"`)
	c, okC := intField(b, `"completion_tokens"`)
	if !okP || !okC {
		return usage{}
	}
	return usage{prompt: p, completion: c, ok: true}
}

// intField returns the non-negative integer value of the first occurrence of key.
func intField(b []byte, key string) (int, bool) {
	for {
		i := bytes.Index(b, []byte(key))
		if i < 0 {
			return 0, false
		}
		b = skipSpace(b[i+len(key):])
		if len(b) == 0 || b[0] != ':' {
			continue
		}
		b = skipSpace(b[1:])
		n, digits := 0, 0
		for digits < len(b) && digits < 12 && b[digits] >= '0' && b[digits] <= '9' {
			n = n*10 + int(b[digits]-'0')
			digits++
		}
		return n, digits > 0
	}
}

func skipSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\n' || b[0] == '\r') {
		b = b[1:]
	}
	return b
}

// hasToken reports whether a chunk carries generated text: a non-empty "content",
// "reasoning_content", "reasoning" or "text" string. vLLM's first chat chunk (role only, empty content)
// does not count, so TTFT is the time to the first real token.
func hasToken(b []byte) bool {
	return nonEmptyString(b, `"content"`) || nonEmptyString(b, `"text"`) ||
		nonEmptyString(b, `"reasoning_content"`) || nonEmptyString(b, `"reasoning"`)
}

// nonEmptyString reports whether some occurrence of key has a non-empty string value.
func nonEmptyString(b []byte, key string) bool {
	for {
		i := bytes.Index(b, []byte(key))
		if i < 0 {
			return false
		}
		b = skipSpace(b[i+len(key):])
		if len(b) == 0 || b[0] != ':' {
			continue
		}
		b = skipSpace(b[1:])
		if len(b) >= 2 && b[0] == '"' && b[1] != '"' {
			return true
		}
	}
}

// isErrorEvent reports whether a data payload is an error object ({"error":...}).
func isErrorEvent(b []byte) bool {
	b = skipSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return false
	}
	b = skipSpace(b[1:])
	return bytes.HasPrefix(b, []byte(`"error"`))
}

// streamEvents receives what readStream finds, in order.
type streamEvents interface {
	// token is called for every chunk that carries generated text.
	token()
}

// readStream reads an SSE body until "data: [DONE]". It accepts "\n" and "\r\n" line
// ends and "data:" with or without the space, ignores comments, other fields and blank
// lines, and treats each data line as one event. It returns the usage seen (the last
// chunk with a usage object) and errStreamTruncated if the body ends before [DONE].
func readStream(br *bufio.Reader, ev streamEvents) (usage, error) {
	var u usage
	var long []byte
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A line longer than the buffer: accumulate, bounded.
			long = append(long[:0], line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				if len(long) > maxSSELine {
					return u, errors.New("sse line too long")
				}
				line, err = br.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if len(line) > 0 {
			done, evErr := handleLine(line, &u, ev)
			if done || evErr != nil {
				return u, evErr
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return u, errStreamTruncated
			}
			return u, err
		}
	}
}

// handleLine processes one SSE line (with its line end). done is true after [DONE].
func handleLine(line []byte, u *usage, ev streamEvents) (done bool, err error) {
	line = bytes.TrimRight(line, "\r\n")
	payload, ok := bytes.CutPrefix(line, []byte("data:"))
	if !ok {
		return false, nil
	}
	if len(payload) > 0 && payload[0] == ' ' {
		payload = payload[1:]
	}
	if bytes.Equal(bytes.TrimSpace(payload), []byte("[DONE]")) {
		return true, nil
	}
	if isErrorEvent(payload) {
		return false, errStreamError
	}
	if hasToken(payload) {
		ev.token()
	}
	if pu := parseUsage(payload); pu.ok {
		*u = pu
	}
	return false, nil
}
