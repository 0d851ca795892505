package batch

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// objectFields calls fn with each member of the JSON object obj, in order, until fn
// returns false. obj must already be valid JSON (json.Valid): this only finds where
// values start and end, so a 4 KB line costs one quick byte scan instead of the several
// full decodes encoding/json would make. Keys are compared exactly (unescaped when they
// hold escapes), like a map[string]json.RawMessage decode, where the last duplicate wins
// if the caller keeps overwriting. It reports false when obj is not an object.
func objectFields(obj []byte, fn func(key string, val []byte) bool) bool {
	i := skipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return false
	}
	i++
	for {
		i = skipSpace(obj, i)
		if i >= len(obj) || obj[i] == '}' {
			return true
		}
		if obj[i] == ',' {
			i = skipSpace(obj, i+1)
		}
		kEnd := skipString(obj, i)
		key := obj[i+1 : kEnd-1]
		var k string
		if bytes.IndexByte(key, '\\') >= 0 || !utf8.Valid(key) {
			_ = json.Unmarshal(obj[i:kEnd], &k)
		} else {
			k = string(key)
		}
		i = skipSpace(obj, kEnd)
		i = skipSpace(obj, i+1) // ':'
		vEnd := skipValue(obj, i)
		if !fn(k, obj[i:vEnd]) {
			return true
		}
		i = vEnd
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index just past the string starting at b[i] == '"'.
func skipString(b []byte, i int) int {
	for j := i + 1; ; {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return len(b)
		}
		q := j + k
		esc := 0 // backslashes right before the quote: odd means it is escaped
		for p := q - 1; p > i && b[p] == '\\'; p-- {
			esc++
		}
		if esc%2 == 0 {
			return q + 1
		}
		j = q + 1
	}
}

// skipValue returns the index just past the value starting at b[i].
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				j = skipString(b, j) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return len(b)
	default: // number, true, false, null
		j := i
		for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' && b[j] != ' ' && b[j] != '\t' && b[j] != '\n' && b[j] != '\r' {
			j++
		}
		return j
	}
}

// taskLine is what validation and execution read from an input line.
type taskLine struct {
	customID, method, url, body []byte // raw JSON values; nil when absent
}

// scanTaskLine splits a valid JSON line into its members (the last of duplicates wins).
func scanTaskLine(line []byte) (taskLine, bool) {
	var t taskLine
	ok := objectFields(line, func(k string, v []byte) bool {
		switch k {
		case "custom_id":
			t.customID = v
		case "method":
			t.method = v
		case "url":
			t.url = v
		case "body":
			t.body = v
		}
		return true
	})
	return t, ok
}

// bodyFields are the members of a line's body that validation and routing use.
type bodyFields struct {
	model, stream, input, messages, prompt []byte
}

func scanBody(body []byte) (bodyFields, bool) {
	var f bodyFields
	ok := objectFields(body, func(k string, v []byte) bool {
		switch k {
		case "model":
			f.model = v
		case "stream":
			f.stream = v
		case "input":
			f.input = v
		case "messages":
			f.messages = v
		case "prompt":
			f.prompt = v
		}
		return true
	})
	return f, ok
}

// jsonString decodes a JSON string value; false when v is absent or not a string.
func jsonString(v []byte) (string, bool) {
	if len(v) < 2 || v[0] != '"' {
		return "", false
	}
	if s := v[1 : len(v)-1]; bytes.IndexByte(s, '\\') < 0 && utf8.Valid(s) {
		return string(s), true
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return "", false
	}
	return s, true
}
