package logging

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"

	"github.com/goccy/go-yaml"
)

// yamlWriter turns each JSON line slog's JSONHandler writes (one Write per record) into
// one YAML document. The handler serializes calls, so it needs no lock of its own.
type yamlWriter struct {
	w io.Writer
}

func (y *yamlWriter) Write(p []byte) (int, error) {
	line := bytes.TrimRight(p, "\n")
	var v any
	doc, err := []byte(nil), yaml.UnmarshalWithOptions(line, &v, yaml.UseOrderedMap())
	if err == nil {
		doc, err = yaml.MarshalWithOptions(v, yaml.CustomMarshaler[string](marshalYAMLString))
	}
	if err != nil {
		// JSON is YAML too: the flow form always reads back, so the record is never lost.
		doc = append(line, '\n')
	}
	out := make([]byte, 0, len(doc)+4)
	out = append(out, "---\n"...)
	out = append(out, doc...)
	if _, err := y.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// marshalYAMLString writes a string plain when that cannot be misread and double-quoted
// with JSON escapes (a subset of YAML's) otherwise. go-yaml's own quoting misses cases
// such as a leading tab.
func marshalYAMLString(s string) ([]byte, error) {
	if plainSafe(s) {
		return []byte(s), nil
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// plainSafe accepts words like `listening`, `http://b1:8000/v1` and `/path/x.sock`: a
// letter or '/' first, then letters, digits and . _ / : @ + -, never ": " and never a
// word YAML reads as a bool or null.
func plainSafe(s string) bool {
	if s == "" || len(s) > 200 {
		return false
	}
	if c := s[0]; !isLetter(c) && c != '/' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isLetter(c) && !isDigit(c) && strings.IndexByte("._/:@+-", c) < 0 {
			return false
		}
	}
	if strings.HasSuffix(s, ":") {
		return false
	}
	switch strings.ToLower(s) {
	case "true", "false", "yes", "no", "on", "off", "y", "n", "null", "nan", "inf":
		return false
	}
	return true
}

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
