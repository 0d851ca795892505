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
	var s string
	if json.Unmarshal(raw, &s) == nil {
		writeMessage(w, "user", raw)
		return
	}
	writeMessages(w, raw)
}

func writeMessages(w *promptWriter, raw json.RawMessage) {
	var msgs []chatMessage
	if json.Unmarshal(raw, &msgs) != nil {
		w.writeCompact(raw) // malformed: the backend will reject it; still hash something stable
		return
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
		w.WriteString("<|" + role + "|>")
		if m.Name != "" {
			w.WriteString(" " + m.Name)
		}
		if m.ToolCallID != "" {
			w.WriteString(" " + m.ToolCallID)
		}
		w.WriteString("\n")
		writeContent(w, m.Content)
		if !isNull(m.ToolCalls) {
			w.writeCompact(m.ToolCalls)
		}
		w.WriteString("\n")
	}
}

// writeMessage writes one message whose content is raw.
func writeMessage(w *promptWriter, role string, raw json.RawMessage) {
	w.WriteString("<|" + role + "|>\n")
	writeContent(w, raw)
	w.WriteString("\n")
}

// writeContent writes a message content: a string, or a list of parts of which text parts
// contribute their text and others their compact JSON.
func writeContent(w *promptWriter, raw json.RawMessage) {
	if isNull(raw) {
		return
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		w.WriteString(s)
		return
	}
	var parts []json.RawMessage
	if json.Unmarshal(raw, &parts) != nil {
		w.writeCompact(raw)
		return
	}
	for _, p := range parts {
		if w.full() {
			return
		}
		var cp contentPart
		switch {
		case json.Unmarshal(p, &cp) != nil:
			w.writeCompact(p)
		case cp.Type == "text" || cp.Type == "input_text" || cp.Type == "output_text":
			w.WriteString(cp.Text)
		case cp.ImageURL != nil:
			w.WriteString("<|image|>" + cp.ImageURL.URL)
		default:
			w.writeCompact(p)
		}
	}
}

// writeText writes a completions prompt or an embeddings input: a string as is, a list of
// strings one per line, anything else (token ids) as compact JSON.
func writeText(w *promptWriter, raw json.RawMessage) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		w.WriteString(s)
		return
	}
	var list []string
	if json.Unmarshal(raw, &list) == nil {
		for i, s := range list {
			if w.full() {
				return
			}
			if i > 0 {
				w.WriteString("\n")
			}
			w.WriteString(s)
		}
		return
	}
	w.writeCompact(raw)
}
