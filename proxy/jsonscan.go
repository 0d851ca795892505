package proxy

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// The request body is parsed on every request, so parseBody first tries a single-pass
// scanner that validates JSON and hands out sub-slices of the body instead of decoding
// with reflection and copying (encoding/json scans the body once to validate, again to
// decode, and each nested Unmarshal of a field scans it twice more). The scanner decides
// only what it can decide exactly as encoding/json would; anything else (invalid JSON,
// keys with escapes or non-ASCII bytes, a field of an unexpected type, nesting deeper
// than maxScanDepth) makes it give up, and the encoding/json path decides. A fuzz target
// holds the two paths to identical results.

// maxScanDepth bounds nesting in the scanner; deeper bodies take the encoding/json path.
const maxScanDepth = 512

// jscan walks one JSON text. Every method takes the offset of the first byte of a token
// and returns the offset just past it; ok is false when the text is not valid there.
type jscan struct{ b []byte }

func (s jscan) space(i int) int {
	for i < len(s.b) {
		switch s.b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// str validates the string literal at i. esc reports a backslash escape, ascii that
// every byte is below 0x80.
func (s jscan) str(i int) (end int, esc, ascii, ok bool) {
	b := s.b
	if i >= len(b) || b[i] != '"' {
		return 0, false, false, false
	}
	ascii = true
	for i++; i < len(b); i++ {
		c := b[i]
		if c >= 0x20 && c < utf8.RuneSelf && c != '"' && c != '\\' {
			continue // the common byte, tested first
		}
		switch {
		case c == '"':
			return i + 1, esc, ascii, true
		case c == '\\':
			esc = true
			i++
			if i >= len(b) {
				return 0, false, false, false
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(b) {
					return 0, false, false, false
				}
				for k := 1; k <= 4; k++ {
					if !isHexDigit(b[i+k]) {
						return 0, false, false, false
					}
				}
				i += 4
			default:
				return 0, false, false, false
			}
		case c < 0x20:
			return 0, false, false, false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return 0, false, false, false
}

func isHexDigit(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isDecimal(c byte) bool { return '0' <= c && c <= '9' }

// num validates the number at i.
func (s jscan) num(i int) (int, bool) {
	b := s.b
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return 0, false
	case b[i] == '0':
		i++
	case '1' <= b[i] && b[i] <= '9':
		for i++; i < len(b) && isDecimal(b[i]); i++ {
		}
	default:
		return 0, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || !isDecimal(b[i]) {
			return 0, false
		}
		for i < len(b) && isDecimal(b[i]) {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDecimal(b[i]) {
			return 0, false
		}
		for i < len(b) && isDecimal(b[i]) {
			i++
		}
	}
	return i, true
}

// value validates the value at i, depth levels deep.
func (s jscan) value(i, depth int) (int, bool) {
	if i >= len(s.b) {
		return 0, false
	}
	switch c := s.b[i]; c {
	case '"':
		end, _, _, ok := s.str(i)
		return end, ok
	case '{':
		return s.members(i, depth+1, nil)
	case '[':
		return s.elements(i, depth+1, nil)
	case 't':
		return s.literal(i, "true")
	case 'f':
		return s.literal(i, "false")
	case 'n':
		return s.literal(i, "null")
	default:
		return s.num(i)
	}
}

func (s jscan) literal(i int, lit string) (int, bool) {
	if len(s.b)-i >= len(lit) && string(s.b[i:i+len(lit)]) == lit {
		return i + len(lit), true
	}
	return 0, false
}

// members validates the object at i and calls fn (when not nil) with each member's key
// (quotes included) and the span of its value. A key with an escape or a non-ASCII byte,
// or fn returning false, gives up (ok false): callers match keys as encoding/json does,
// case-insensitively, which is only simple for ASCII.
func (s jscan) members(i, depth int, fn func(key []byte, vs, ve int) bool) (int, bool) {
	if depth > maxScanDepth || i >= len(s.b) || s.b[i] != '{' {
		return 0, false
	}
	i = s.space(i + 1)
	if i < len(s.b) && s.b[i] == '}' {
		return i + 1, true
	}
	for {
		ke, esc, ascii, ok := s.str(i)
		if !ok || (fn != nil && (esc || !ascii)) {
			return 0, false
		}
		key := s.b[i:ke]
		i = s.space(ke)
		if i >= len(s.b) || s.b[i] != ':' {
			return 0, false
		}
		vs := s.space(i + 1)
		ve, ok := s.value(vs, depth)
		if !ok || (fn != nil && !fn(key, vs, ve)) {
			return 0, false
		}
		i = s.space(ve)
		if i >= len(s.b) {
			return 0, false
		}
		switch s.b[i] {
		case ',':
			i = s.space(i + 1)
		case '}':
			return i + 1, true
		default:
			return 0, false
		}
	}
}

// elements validates the array at i and calls fn (when not nil) with the span of each
// element; fn returning false gives up.
func (s jscan) elements(i, depth int, fn func(vs, ve int) bool) (int, bool) {
	if depth > maxScanDepth || i >= len(s.b) || s.b[i] != '[' {
		return 0, false
	}
	i = s.space(i + 1)
	if i < len(s.b) && s.b[i] == ']' {
		return i + 1, true
	}
	for {
		ve, ok := s.value(i, depth)
		if !ok || (fn != nil && !fn(i, ve)) {
			return 0, false
		}
		i = s.space(ve)
		if i >= len(s.b) {
			return 0, false
		}
		switch s.b[i] {
		case ',':
			i = s.space(i + 1)
		case ']':
			return i + 1, true
		default:
			return 0, false
		}
	}
}

// keyIs reports whether a key literal (quotes included, ASCII, no escapes) names field
// the way encoding/json matches a struct field: exactly or ASCII case-insensitively.
func keyIs(key []byte, field string) bool {
	return len(key) == len(field)+2 && (string(key[1:len(key)-1]) == field || bytes.EqualFold(key[1:len(key)-1], []byte(field)))
}

// scanObject walks a JSON object that must be the whole of raw (surrounding whitespace
// allowed), as members does.
func scanObject(raw []byte, fn func(key []byte, vs, ve int) bool) bool {
	s := jscan{raw}
	i := s.space(0)
	end, ok := s.members(i, 1, fn)
	return ok && s.space(end) == len(raw)
}

// scanArray walks a JSON array that must be the whole of raw, as elements does.
func scanArray(raw []byte, fn func(vs, ve int) bool) bool {
	s := jscan{raw}
	i := s.space(0)
	end, ok := s.elements(i, 1, fn)
	return ok && s.space(end) == len(raw)
}

// stringBytes returns the contents of a string literal that encoding/json would decode to
// those very bytes: no escapes and valid UTF-8. ok is false for anything else.
func stringBytes(lit []byte) ([]byte, bool) {
	if len(lit) < 2 || lit[0] != '"' || lit[len(lit)-1] != '"' {
		return nil, false
	}
	v := lit[1 : len(lit)-1]
	if bytes.IndexByte(v, '\\') >= 0 || !utf8.Valid(v) {
		return nil, false
	}
	return v, true
}

// decodeString decodes a JSON value that is a string literal, as json.Unmarshal into a
// string would; ok is false when raw is not a string.
func decodeString(raw []byte) (string, bool) {
	if len(raw) == 0 || raw[0] != '"' {
		return "", false
	}
	if v, ok := stringBytes(raw); ok {
		return string(v), true
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}
