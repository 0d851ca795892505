package sim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// ErrBadRequest is wrapped by every request parsing error; the API answers 400.
var ErrBadRequest = errors.New("bad request")

// requestError is a client error whose message is shown to the client as is.
type requestError struct{ msg string }

func (e *requestError) Error() string        { return e.msg }
func (e *requestError) Is(target error) bool { return target == ErrBadRequest }

func badRequest(format string, args ...any) error {
	return &requestError{msg: fmt.Sprintf(format, args...)}
}

// streamOptions is OpenAI's stream_options.
type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// genRequest is what the generation endpoints share once parsed: the model, the
// canonical prompt texts (one per completion choice or embedding input), and the knobs.
type genRequest struct {
	Model        string
	Prompts      [][]byte
	MaxTokens    int  // 0 when the request does not set it
	HasMax       bool // max_tokens or max_completion_tokens given
	Stream       bool
	IncludeUsage bool
	Priority     int
	CacheSalt    string
}

type chatRequest struct {
	Model               string         `json:"model"`
	Messages            []chatMessage  `json:"messages"`
	MaxTokens           *int           `json:"max_tokens"`
	MaxCompletionTokens *int           `json:"max_completion_tokens"`
	Stream              bool           `json:"stream"`
	StreamOptions       *streamOptions `json:"stream_options"`
	Priority            int            `json:"priority"`
	CacheSalt           string         `json:"cache_salt"`
}

type chatMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

type contentPart struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// decode unmarshals body into v, mapping every failure to ErrBadRequest.
func decode(body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return badRequest("invalid JSON body: %v", err)
	}
	return nil
}

// parseChat parses a chat completion request. The canonical prompt is every message as
// "<|role|>\ncontent\n" followed by the generation prompt "<|assistant|>\n", so a
// conversation's previous prompt plus its answer is a prefix of the next turn's prompt.
func parseChat(body []byte, buf []byte) (genRequest, []byte, error) {
	var req chatRequest
	if err := decode(body, &req); err != nil {
		return genRequest{}, buf, err
	}
	if req.Messages == nil {
		return genRequest{}, buf, badRequest("field required: messages")
	}
	buf, err := appendChatPrompt(buf, req.Messages)
	if err != nil {
		return genRequest{}, buf, err
	}
	g := genRequest{
		Model:     req.Model,
		Prompts:   [][]byte{buf},
		Stream:    req.Stream,
		Priority:  req.Priority,
		CacheSalt: req.CacheSalt,
	}
	g.IncludeUsage = req.StreamOptions != nil && req.StreamOptions.IncludeUsage
	switch {
	case req.MaxCompletionTokens != nil:
		g.MaxTokens, g.HasMax = *req.MaxCompletionTokens, true
	case req.MaxTokens != nil:
		g.MaxTokens, g.HasMax = *req.MaxTokens, true
	}
	return g, buf, nil
}

// appendChatPrompt appends the canonical prompt of messages, ending with the generation
// prompt.
func appendChatPrompt(buf []byte, msgs []chatMessage) ([]byte, error) {
	for i, m := range msgs {
		buf = append(buf, "<|"...)
		buf = append(buf, m.Role...)
		buf = append(buf, "|>\n"...)
		var err error
		if buf, err = appendContent(buf, m.Content); err != nil {
			return buf, badRequest("messages[%d].content: %v", i, err)
		}
		buf = append(buf, '\n')
	}
	return append(buf, "<|assistant|>\n"...), nil
}

// appendContent appends a message content (a string, an array of parts, or null).
func appendContent(buf []byte, raw json.RawMessage) ([]byte, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return buf, nil
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return buf, err
		}
		return append(buf, s...), nil
	case '[':
		var parts []contentPart
		if err := json.Unmarshal(raw, &parts); err != nil {
			return buf, err
		}
		for _, p := range parts {
			buf = append(buf, p.Text...)
		}
		return buf, nil
	}
	return buf, errors.New("must be a string or an array of content parts")
}

type completionRequest struct {
	Model         string          `json:"model"`
	Prompt        json.RawMessage `json:"prompt"`
	MaxTokens     *int            `json:"max_tokens"`
	Stream        bool            `json:"stream"`
	StreamOptions *streamOptions  `json:"stream_options"`
	Priority      int             `json:"priority"`
	CacheSalt     string          `json:"cache_salt"`
}

// parseCompletion parses a legacy completion request; prompt may be a string, a list of
// strings, a list of token ids, or a list of token id lists (one choice each).
func parseCompletion(body []byte) (genRequest, error) {
	var req completionRequest
	if err := decode(body, &req); err != nil {
		return genRequest{}, err
	}
	prompts, err := parseTextInputs(req.Prompt, "prompt")
	if err != nil {
		return genRequest{}, err
	}
	g := genRequest{
		Model:     req.Model,
		Prompts:   prompts,
		Stream:    req.Stream,
		Priority:  req.Priority,
		CacheSalt: req.CacheSalt,
	}
	g.IncludeUsage = req.StreamOptions != nil && req.StreamOptions.IncludeUsage
	if req.MaxTokens != nil {
		g.MaxTokens, g.HasMax = *req.MaxTokens, true
	} else {
		// vLLM's completions API defaults max_tokens to 16, as OpenAI's does.
		g.MaxTokens, g.HasMax = 16, true
	}
	return g, nil
}

// parseTextInputs decodes an OpenAI text input: string, []string, []int or [][]int.
func parseTextInputs(raw json.RawMessage, field string) ([][]byte, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, badRequest("field required: %s", field)
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, badRequest("%s: %v", field, err)
		}
		return [][]byte{[]byte(s)}, nil
	case '[':
	default:
		return nil, badRequest("%s must be a string, a list of strings or token ids", field)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, badRequest("%s: %v", field, err)
	}
	if len(items) == 0 {
		return nil, badRequest("%s must not be empty", field)
	}
	first := bytes.TrimSpace(items[0])
	if len(first) > 0 && (first[0] == '-' || (first[0] >= '0' && first[0] <= '9')) {
		var ids []int64
		if err := json.Unmarshal(raw, &ids); err != nil {
			return nil, badRequest("%s: %v", field, err)
		}
		return [][]byte{appendDetokenized(nil, ids)}, nil
	}
	out := make([][]byte, 0, len(items))
	for i, it := range items {
		it = bytes.TrimSpace(it)
		if len(it) == 0 {
			return nil, badRequest("%s[%d] is empty", field, i)
		}
		switch it[0] {
		case '"':
			var s string
			if err := json.Unmarshal(it, &s); err != nil {
				return nil, badRequest("%s[%d]: %v", field, i, err)
			}
			out = append(out, []byte(s))
		case '[':
			var ids []int64
			if err := json.Unmarshal(it, &ids); err != nil {
				return nil, badRequest("%s[%d]: %v", field, i, err)
			}
			out = append(out, appendDetokenized(nil, ids))
		default:
			return nil, badRequest("%s[%d] must be a string or a list of token ids", field, i)
		}
	}
	return out, nil
}

type embeddingRequest struct {
	Model          string          `json:"model"`
	Input          json.RawMessage `json:"input"`
	EncodingFormat string          `json:"encoding_format"`
	Dimensions     *int            `json:"dimensions"`
	Priority       int             `json:"priority"`
}

type responsesRequest struct {
	Model           string          `json:"model"`
	Input           json.RawMessage `json:"input"`
	Instructions    string          `json:"instructions"`
	MaxOutputTokens *int            `json:"max_output_tokens"`
	Stream          bool            `json:"stream"`
	Priority        int             `json:"priority"`
	CacheSalt       string          `json:"cache_salt"`
}

type responsesItem struct {
	Type    string          `json:"type"`
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// parseResponses parses a basic Responses API request: input is a string or a list of
// message items; it maps onto the chat prompt format.
func parseResponses(body []byte, buf []byte) (genRequest, []byte, error) {
	var req responsesRequest
	if err := decode(body, &req); err != nil {
		return genRequest{}, buf, err
	}
	if req.Stream {
		return genRequest{}, buf, badRequest("stream is not supported by the simulator's /v1/responses")
	}
	if req.Instructions != "" {
		buf = append(buf, "<|system|>\n"...)
		buf = append(buf, req.Instructions...)
		buf = append(buf, '\n')
	}
	in := bytes.TrimSpace(req.Input)
	switch {
	case len(in) == 0 || bytes.Equal(in, []byte("null")):
		return genRequest{}, buf, badRequest("field required: input")
	case in[0] == '"':
		var s string
		if err := json.Unmarshal(in, &s); err != nil {
			return genRequest{}, buf, badRequest("input: %v", err)
		}
		buf = append(append(append(buf, "<|user|>\n"...), s...), '\n')
	case in[0] == '[':
		var items []responsesItem
		if err := json.Unmarshal(in, &items); err != nil {
			return genRequest{}, buf, badRequest("input: %v", err)
		}
		for i, it := range items {
			role := it.Role
			if role == "" {
				role = "user"
			}
			buf = append(append(append(buf, "<|"...), role...), "|>\n"...)
			var err error
			if buf, err = appendContent(buf, it.Content); err != nil {
				return genRequest{}, buf, badRequest("input[%d].content: %v", i, err)
			}
			buf = append(buf, '\n')
		}
	default:
		return genRequest{}, buf, badRequest("input must be a string or a list of items")
	}
	buf = append(buf, "<|assistant|>\n"...)
	g := genRequest{Model: req.Model, Prompts: [][]byte{buf}, Priority: req.Priority, CacheSalt: req.CacheSalt}
	if req.MaxOutputTokens != nil {
		g.MaxTokens, g.HasMax = *req.MaxOutputTokens, true
	}
	return g, buf, nil
}

type tokenizeRequest struct {
	Model    string        `json:"model"`
	Prompt   *string       `json:"prompt"`
	Messages []chatMessage `json:"messages"`
	Tokens   []int64       `json:"tokens"`
}
