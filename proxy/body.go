package proxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"strconv"
	"strings"
)

// requestInfo is what the proxy reads from a request body to route it. The body itself is
// forwarded as received: fields the proxy does not know pass through untouched.
type requestInfo struct {
	// Model is the "model" field; "" when absent or null.
	Model string
	// Stream is the "stream" field; false when absent or not a boolean.
	Stream bool
	// Priority is the "priority" field when it is an integer.
	Priority    int
	HasPriority bool
	// CacheSalt is the "cache_salt" field when it is a string.
	CacheSalt string
	// Prompt is the canonical prompt text for prefix hashing (see prompt.go), capped.
	Prompt string
}

// jsonFields are the top-level fields the proxy looks at. Each stays raw so that a field
// of an unexpected type is left for the backend to reject instead of failing the parse;
// only "model" must have the right type, because routing depends on it.
type jsonFields struct {
	Model        json.RawMessage `json:"model"`
	Stream       json.RawMessage `json:"stream"`
	Priority     json.RawMessage `json:"priority"`
	CacheSalt    json.RawMessage `json:"cache_salt"`
	Messages     json.RawMessage `json:"messages"`
	Tools        json.RawMessage `json:"tools"`
	Prompt       json.RawMessage `json:"prompt"`
	Input        json.RawMessage `json:"input"`
	Instructions json.RawMessage `json:"instructions"`
}

// maxFormFieldBytes bounds a multipart text field the proxy reads (model, stream).
const maxFormFieldBytes = 4 << 10

// parseBody reads the routing fields of a request body: JSON, or a multipart form for the
// audio endpoints. maxPrompt caps the canonical prompt text. Errors wrap ErrBadRequest and
// carry a message that is safe to show the client.
func parseBody(contentType string, body []byte, maxPrompt int) (requestInfo, error) {
	if maybeMultipart(contentType) {
		if mt, params, err := mime.ParseMediaType(contentType); err == nil && mt == "multipart/form-data" {
			return parseMultipart(params["boundary"], body)
		}
	}
	return parseJSON(body, maxPrompt)
}

// maybeMultipart is false for a Content-Type that mime.ParseMediaType cannot read as
// multipart/form-data (it lowercases and trims the media type), without its allocations:
// ASCII text must start with "multipart/" after ASCII space; non-ASCII text is left to it.
func maybeMultipart(contentType string) bool {
	for i := 0; i < len(contentType); i++ {
		if contentType[i] >= 0x80 {
			return true
		}
	}
	t := strings.TrimLeft(contentType, " \t\n\v\f\r")
	const prefix = "multipart/"
	return len(t) >= len(prefix) && strings.EqualFold(t[:len(prefix)], prefix)
}

func parseJSON(body []byte, maxPrompt int) (requestInfo, error) {
	var f jsonFields
	if !scanFields(body, &f) {
		// Invalid JSON, or something the scanner leaves to encoding/json (jsonscan.go).
		f = jsonFields{}
		if err := json.Unmarshal(body, &f); err != nil {
			if _, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
				return requestInfo{}, badRequest("", "the request body must be a JSON object", nil)
			}
			return requestInfo{}, badRequest("", "the request body is not valid JSON", err)
		}
	}
	var info requestInfo
	if !isNull(f.Model) {
		var ok bool
		if info.Model, ok = decodeString(f.Model); !ok {
			return requestInfo{}, badRequest("model", "the model field must be a string", nil)
		}
	}
	// A mistyped stream, priority or cache_salt is the backend's to reject: the proxy
	// forwards the body as sent and only loses a routing hint.
	info.Stream = string(f.Stream) == "true"
	var prio int
	if !isNull(f.Priority) && json.Unmarshal(f.Priority, &prio) == nil {
		info.Priority, info.HasPriority = prio, true
	}
	info.CacheSalt, _ = decodeString(f.CacheSalt)
	info.Prompt = canonicalPrompt(&f, maxPrompt)
	return info, nil
}

// scanFields fills f from a body that is one JSON object, as json.Unmarshal would: keys
// match case-insensitively and the last of repeated keys wins. The values are sub-slices
// of body. It reports false when it cannot decide (see jsonscan.go); f is then partial.
func scanFields(body []byte, f *jsonFields) bool {
	return scanObject(body, func(key []byte, vs, ve int) bool {
		raw := json.RawMessage(body[vs:ve:ve])
		switch len(key) - 2 { // cheap first cut on the unquoted length
		case 5:
			switch {
			case keyIs(key, "model"):
				f.Model = raw
			case keyIs(key, "input"):
				f.Input = raw
			case keyIs(key, "tools"):
				f.Tools = raw
			}
		case 6:
			switch {
			case keyIs(key, "stream"):
				f.Stream = raw
			case keyIs(key, "prompt"):
				f.Prompt = raw
			}
		case 8:
			switch {
			case keyIs(key, "priority"):
				f.Priority = raw
			case keyIs(key, "messages"):
				f.Messages = raw
			}
		case 10:
			if keyIs(key, "cache_salt") {
				f.CacheSalt = raw
			}
		case 12:
			if keyIs(key, "instructions") {
				f.Instructions = raw
			}
		}
		return true
	})
}

func parseMultipart(boundary string, body []byte) (requestInfo, error) {
	if boundary == "" {
		return requestInfo{}, badRequest("", "the multipart form has no boundary", nil)
	}
	var info requestInfo
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			// The reader ends quietly at EOF even without the closing delimiter.
			if !bytes.Contains(body, []byte("--"+boundary+"--")) {
				return requestInfo{}, badRequest("", "the multipart form is truncated", nil)
			}
			return info, nil
		}
		if err != nil {
			return requestInfo{}, badRequest("", "the multipart form is malformed", err)
		}
		name := part.FormName()
		if name != "model" && name != "stream" {
			continue // NextPart skips the rest of this part, file data included
		}
		v, err := io.ReadAll(io.LimitReader(part, maxFormFieldBytes+1))
		if err != nil {
			return requestInfo{}, badRequest(name, "the multipart form is malformed", err)
		}
		if len(v) > maxFormFieldBytes {
			return requestInfo{}, badRequest(name, fmt.Sprintf("the %s form field is too long", name), nil)
		}
		switch name {
		case "model":
			info.Model = strings.TrimSpace(string(v))
		case "stream":
			info.Stream, _ = strconv.ParseBool(strings.TrimSpace(string(v)))
		}
	}
}

// isNull reports whether a raw field is absent or JSON null.
func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || string(raw) == "null"
}
