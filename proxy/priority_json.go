package proxy

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
)

// The "priority" field is found and rewritten by a small scanner over the top level of
// the request object instead of a decode and re-encode: every other byte of the body
// reaches the backend exactly as the client sent it.

// jsonSpan is the byte range [start, end) of one top-level value.
type jsonSpan struct{ start, end int }

// priorityFields is what the scanner found in one JSON object.
type priorityFields struct {
	// values are the spans of every top-level "priority" value, in body order (a body may
	// repeat the key; vLLM's JSON parser keeps the last one).
	values []jsonSpan
	// open is the offset just past the object's '{'; empty reports an object with no
	// members (an inserted field then needs no comma).
	open  int
	empty bool
}

// scanPriority finds the top-level "priority" fields of body, which must be valid JSON
// (parseBody checked it). ok is false when body is not a JSON object (the caller then
// leaves the body alone); the scanner is no validator.
func scanPriority(body []byte) (f priorityFields, ok bool) {
	i := skipSpace(body, 0)
	if i >= len(body) || body[i] != '{' {
		return f, false
	}
	f.open = i + 1
	i = skipSpace(body, i+1)
	if i < len(body) && body[i] == '}' {
		f.empty = true
		return f, skipSpace(body, i+1) == len(body)
	}
	for {
		keyStart := i
		keyEnd, ok := skipString(body, i)
		if !ok {
			return f, false
		}
		i = skipSpace(body, keyEnd)
		if i >= len(body) || body[i] != ':' {
			return f, false
		}
		vs := skipSpace(body, i+1)
		ve, ok := skipValue(body, vs)
		if !ok {
			return f, false
		}
		if isPriorityKey(body[keyStart:keyEnd]) {
			f.values = append(f.values, jsonSpan{vs, ve})
		}
		i = skipSpace(body, ve)
		if i >= len(body) {
			return f, false
		}
		switch body[i] {
		case ',':
			i = skipSpace(body, i+1)
		case '}':
			return f, skipSpace(body, i+1) == len(body)
		default:
			return f, false
		}
	}
}

// isPriorityKey reports whether a JSON string literal (quotes included) spells
// "priority", escapes decoded as a JSON parser would.
func isPriorityKey(lit []byte) bool {
	if string(lit) == `"priority"` {
		return true
	}
	if len(lit) < 10 || !strings.Contains(string(lit), `\`) {
		return false
	}
	var s string
	return json.Unmarshal(lit, &s) == nil && s == "priority"
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the offset past the string literal starting at b[i].
func skipString(b []byte, i int) (int, bool) {
	if i >= len(b) || b[i] != '"' {
		return 0, false
	}
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1, true
		}
	}
	return 0, false
}

// skipValue returns the offset past the JSON value starting at b[i]. Nested objects and
// arrays are matched by bracket depth; their contents are checked by json.Valid on the
// whole body before this scanner runs.
func skipValue(b []byte, i int) (int, bool) {
	if i >= len(b) {
		return 0, false
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				end, ok := skipString(b, i)
				if !ok {
					return 0, false
				}
				i = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, true
				}
			}
		}
		return 0, false
	default: // number, true, false, null
		j := i
		for j < len(b) && !strings.ContainsRune(" \t\r\n,}]", rune(b[j])) {
			j++
		}
		return j, j > i
	}
}

// priorityValue reads a priority the way vLLM's request model does (an integer; a float
// with no fraction and a numeric string are accepted too). ok is false for anything else,
// which the backend rejects on its own.
func priorityValue(raw []byte) (int, bool) {
	s := string(raw)
	if len(s) >= 2 && s[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, false
		}
		s = strings.TrimSpace(s)
	}
	if n, err := strconv.Atoi(s); err == nil {
		return n, true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > math.MaxInt32 {
		return 0, false
	}
	return int(f), true
}

// isZeroOrNull reports whether a priority value is JSON null or the number zero: the
// only values a backend without priority scheduling accepts.
func isZeroOrNull(raw []byte) bool {
	if string(raw) == "null" {
		return true
	}
	if raw[0] == '"' {
		return false
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	return err == nil && f == 0
}

// setPriority returns body with every top-level "priority" value replaced by n, or with
// "priority": n added first in the object when there is none. body is not modified.
func setPriority(body []byte, f priorityFields, n int) []byte {
	val := strconv.AppendInt(nil, int64(n), 10)
	if len(f.values) == 0 {
		out := make([]byte, 0, len(body)+len(`"priority":,`)+len(val))
		out = append(out, body[:f.open]...)
		out = append(out, `"priority":`...)
		out = append(out, val...)
		if !f.empty {
			out = append(out, ',')
		}
		return append(out, body[f.open:]...)
	}
	out := make([]byte, 0, len(body)+len(f.values)*len(val))
	last := 0
	for _, sp := range f.values {
		out = append(out, body[last:sp.start]...)
		out = append(out, val...)
		last = sp.end
	}
	return append(out, body[last:]...)
}
