package proxy

import (
	"bytes"
	"encoding/json"
	"strings"
)

// The canonical prompt is the text routing hashes for prefix affinity. It need not be the
// exact text the engine renders, but two requests whose rendered prompts share a prefix
// must produce canonical prompts that share a prefix, so it follows the order the chat
// template renders: tool definitions, then every message in order (system and tool
// messages included), each behind a role marker. Parts that are not text (images, token
// ids) enter as their compact JSON so that different inputs hash differently.

// chatMessage is one entry of "messages" (chat) or "input" (Responses API).
type chatMessage struct {
	Role       string          `json:"role"`
	Type       string          `json:"type"`
	Name       string          `json:"name"`
	Content    json.RawMessage `json:"content"`
	ToolCalls  json.RawMessage `json:"tool_calls"`
	ToolCallID string          `json:"tool_call_id"`
}

// contentPart is one element of an array-valued message content.
type contentPart struct {
	Type     string `json:"type"`
	Text     string `json:"text"`
	ImageURL *struct {
		URL string `json:"url"`
	} `json:"image_url"`
}

// promptWriter accumulates text up to a byte limit and then ignores the rest.
type promptWriter struct {
	b   strings.Builder
	max int
}

func (w *promptWriter) full() bool { return w.b.Len() >= w.max }

func (w *promptWriter) WriteString(s string) {
	if room := w.max - w.b.Len(); room < len(s) {
		s = s[:max(room, 0)]
	}
	w.b.WriteString(s)
}

// Write is WriteString for bytes, without converting them to a string first.
func (w *promptWriter) Write(p []byte) {
	if room := w.max - w.b.Len(); room < len(p) {
		p = p[:max(room, 0)]
	}
	w.b.Write(p)
}

// writeJSONString writes the decoded value of a JSON string literal and reports whether
// raw was one.
func (w *promptWriter) writeJSONString(raw []byte) bool {
	if v, ok := stringBytes(raw); ok {
		w.Write(v)
		return true
	}
	if len(raw) == 0 || raw[0] != '"' {
		return false
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return false
	}
	w.WriteString(s)
	return true
}

// writeCompact writes raw JSON without insignificant whitespace, so formatting differences
// between clients do not change the hash.
func (w *promptWriter) writeCompact(raw json.RawMessage) {
	if w.full() || isNull(raw) {
		return
	}
	var buf bytes.Buffer
	if json.Compact(&buf, raw) != nil {
		w.WriteString(string(raw))
		return
	}
	w.WriteString(buf.String())
}

// canonicalPrompt builds the capped canonical prompt for a JSON request: chat messages,
// else the Responses API's instructions and input, else a completions prompt, else an
// embeddings input.
func canonicalPrompt(f *jsonFields, maxBytes int) string {
	w := &promptWriter{max: maxBytes}
	// The prompt is at most as long as the fields it comes from, plus role markers.
	if n := min(len(f.Messages)+len(f.Tools)+len(f.Prompt)+len(f.Input)+len(f.Instructions)+64, maxBytes); n > 0 {
		w.b.Grow(n)
	}
	switch {
	case !isNull(f.Messages):
		if !isNull(f.Tools) {
			w.WriteString("<|tools|>\n")
			w.writeCompact(f.Tools)
			w.WriteString("\n")
		}
		writeMessages(w, f.Messages)
	case !isNull(f.Instructions) || (!isNull(f.Input) && isResponsesInput(f.Input)):
		if !isNull(f.Tools) {
			w.WriteString("<|tools|>\n")
			w.writeCompact(f.Tools)
			w.WriteString("\n")
		}
		if !isNull(f.Instructions) {
			writeMessage(w, "system", f.Instructions)
		}
		writeInput(w, f.Input)
	case !isNull(f.Prompt):
		writeText(w, f.Prompt)
	case !isNull(f.Input):
		writeText(w, f.Input)
	}
	return w.b.String()
}

// isResponsesInput reports whether an "input" is a list of message objects (Responses
// API) rather than an embeddings input (string, strings, token ids).
func isResponsesInput(raw json.RawMessage) bool {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	if len(raw) == 0 || raw[0] != '[' {
		return false
	}
	return bytes.HasPrefix(bytes.TrimLeft(raw[1:], " \t\r\n"), []byte("{"))
}

// writeInput writes a Responses API input: a string is one user message, a list holds
// message items.
func writeInput(w *promptWriter, raw json.RawMessage) {
	if isNull(raw) {
		return
	}
	if len(raw) > 0 && raw[0] == '"' { // a string literal: raw values carry no leading space
		writeMessage(w, "user", raw)
		return
	}
	writeMessages(w, raw)
}

func writeMessages(w *promptWriter, raw json.RawMessage) {
	msgs, ok := scanMessages(raw)
	if !ok {
		msgs = nil
		if json.Unmarshal(raw, &msgs) != nil {
			w.writeCompact(raw) // malformed: the backend will reject it; still hash something stable
			return
		}
	}
	for i := range msgs {
		if w.full() {
			return
		}
		m := &msgs[i]
		role := m.Role
		if role == "" {
			role = m.Type
		}
		w.WriteString("<|")
		w.WriteString(role)
		w.WriteString("|>")
		if m.Name != "" {
			w.WriteString(" ")
			w.WriteString(m.Name)
		}
		if m.ToolCallID != "" {
			w.WriteString(" ")
			w.WriteString(m.ToolCallID)
		}
		w.WriteString("\n")
		writeContent(w, m.Content)
		if !isNull(m.ToolCalls) {
			w.writeCompact(m.ToolCalls)
		}
		w.WriteString("\n")
	}
}

// scanMessages decodes a list of messages as json.Unmarshal into []chatMessage would,
// with sub-slices of raw for the raw fields. ok is false when it cannot decide, including
// every case where json.Unmarshal fails; the caller then asks encoding/json.
func scanMessages(raw []byte) (msgs []chatMessage, ok bool) {
	ok = scanArray(raw, func(vs, ve int) bool {
		v := raw[vs:ve:ve]
		msgs = append(msgs, chatMessage{})
		if v[0] == 'n' { // null leaves the element zero
			return true
		}
		m := &msgs[len(msgs)-1]
		return scanObject(v, func(key []byte, ks, ke int) bool {
			val := v[ks:ke:ke]
			var str *string
			switch {
			case keyIs(key, "content"):
				m.Content = val
				return true
			case keyIs(key, "tool_calls"):
				m.ToolCalls = val
				return true
			case keyIs(key, "role"):
				str = &m.Role
			case keyIs(key, "type"):
				str = &m.Type
			case keyIs(key, "name"):
				str = &m.Name
			case keyIs(key, "tool_call_id"):
				str = &m.ToolCallID
			default:
				return true
			}
			return setString(str, val)
		})
	})
	return msgs, ok
}

// setString stores a string field's value as json.Unmarshal would: null leaves it alone;
// anything but a string is a type error (false).
func setString(dst *string, val []byte) bool {
	if val[0] == 'n' {
		return true
	}
	s, ok := decodeString(val)
	if ok {
		*dst = s
	}
	return ok
}

// writeMessage writes one message whose content is raw.
func writeMessage(w *promptWriter, role string, raw json.RawMessage) {
	w.WriteString("<|")
	w.WriteString(role)
	w.WriteString("|>\n")
	writeContent(w, raw)
	w.WriteString("\n")
}

// writeContent writes a message content: a string, or a list of parts of which text parts
// contribute their text and others their compact JSON.
func writeContent(w *promptWriter, raw json.RawMessage) {
	if isNull(raw) || w.writeJSONString(raw) {
		return
	}
	if raw[0] == '[' {
		var parts []json.RawMessage
		if !scanArray(raw, func(vs, ve int) bool {
			parts = append(parts, raw[vs:ve:ve])
			return true
		}) {
			parts = nil // nested deeper than the scanner goes
			if json.Unmarshal(raw, &parts) != nil {
				w.writeCompact(raw)
				return
			}
		}
		for _, p := range parts {
			if w.full() {
				return
			}
			writePart(w, p)
		}
		return
	}
	w.writeCompact(raw) // neither a string nor a list
}

// writePart writes one element of a content list: text parts their text, image parts
// their URL, anything else its compact JSON.
func writePart(w *promptWriter, p json.RawMessage) {
	cp, ok := scanPart(p)
	if !ok {
		cp = contentPart{}
	}
	if !ok && (p[0] != '{' || json.Unmarshal(p, &cp) != nil) {
		w.writeCompact(p) // not an object (null writes nothing), or mistyped fields
		return
	}
	switch {
	case cp.Type == "text" || cp.Type == "input_text" || cp.Type == "output_text":
		w.WriteString(cp.Text)
	case cp.ImageURL != nil:
		w.WriteString("<|image|>")
		w.WriteString(cp.ImageURL.URL)
	default:
		w.writeCompact(p)
	}
}

// scanPart decodes a content part object as json.Unmarshal into a contentPart would; ok
// is false when it cannot decide (then p may be null, not an object, or mistyped).
func scanPart(p []byte) (cp contentPart, ok bool) {
	if p[0] != '{' {
		return cp, false
	}
	ok = scanObject(p, func(key []byte, vs, ve int) bool {
		val := p[vs:ve:ve]
		switch {
		case keyIs(key, "type"):
			return setString(&cp.Type, val)
		case keyIs(key, "text"):
			return setString(&cp.Text, val)
		case keyIs(key, "image_url"):
			switch val[0] {
			case 'n':
				cp.ImageURL = nil
				return true
			case '{':
				if cp.ImageURL == nil { // a repeated key decodes into the same struct
					cp.ImageURL = &struct {
						URL string `json:"url"`
					}{}
				}
				u := cp.ImageURL
				return scanObject(val, func(key []byte, vs, ve int) bool {
					if keyIs(key, "url") {
						return setString(&u.URL, val[vs:ve:ve])
					}
					return true
				})
			}
			return false
		}
		return true
	})
	return cp, ok
}

// writeText writes a completions prompt or an embeddings input: a string as is, a list of
// strings one per line, anything else (token ids) as compact JSON.
func writeText(w *promptWriter, raw json.RawMessage) {
	if w.writeJSONString(raw) {
		return
	}
	var list [][]byte // string literals or nulls
	if raw[0] == '[' && scanArray(raw, func(vs, ve int) bool {
		list = append(list, raw[vs:ve:ve])
		return raw[vs] == '"' || raw[vs] == 'n'
	}) {
		for i, s := range list {
			if w.full() {
				return
			}
			if i > 0 {
				w.WriteString("\n")
			}
			if s[0] == '"' {
				w.writeJSONString(s)
			}
		}
		return
	}
	w.writeCompact(raw)
}
