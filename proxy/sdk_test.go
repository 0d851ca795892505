package proxy

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/vllm-proxy/vllm-proxy/sim"
)

// TestOpenAISDKThroughProxy: the official client works against the proxy as against one
// vLLM server serving every model: chat, streaming, embeddings, the model list, and
// errors it can classify.
func TestOpenAISDKThroughProxy(t *testing.T) {
	a := startSim(t, sim.Config{Model: "m1", Instant: true})
	b := startSim(t, sim.Config{Model: "m2", Instant: true})
	e := newEnv(t, envOpts{routing: fastHealth, start: true}, backend(a.URL()), backend(b.URL()))
	c := openai.NewClient(option.WithBaseURL(e.srv.URL+"/v1"), option.WithAPIKey("k"), option.WithMaxRetries(0),
		option.WithHTTPClient(e.client))
	ctx := t.Context()

	page, err := c.Models.List(ctx)
	if err != nil || len(page.Data) != 2 {
		t.Fatalf("models: %v %+v", err, page)
	}
	chat, err := c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model:     "m2",
		Messages:  []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
		MaxTokens: openai.Int(4),
	})
	if err != nil || chat.Model != "m2" || len(chat.Choices) != 1 {
		t.Fatalf("chat: %v %+v", err, chat)
	}
	stream := c.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{
		Model:         "m1",
		Messages:      []openai.ChatCompletionMessageParamUnion{openai.UserMessage("stream")},
		MaxTokens:     openai.Int(5),
		StreamOptions: openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
	})
	var text strings.Builder
	var usage int64
	for stream.Next() {
		ch := stream.Current()
		if len(ch.Choices) > 0 {
			text.WriteString(ch.Choices[0].Delta.Content)
		}
		usage += ch.Usage.CompletionTokens
	}
	if err := stream.Err(); err != nil || text.Len() == 0 || usage != 5 {
		t.Fatalf("stream: err %v text %q completion tokens %d", err, text.String(), usage)
	}
	stream.Close()
	emb, err := c.Embeddings.New(ctx, openai.EmbeddingNewParams{
		Model: "m1",
		Input: openai.EmbeddingNewParamsInputUnion{OfString: openai.String("embed me")},
	})
	if err != nil || len(emb.Data) != 1 || len(emb.Data[0].Embedding) == 0 {
		t.Fatalf("embeddings: %v", err)
	}

	_, err = c.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{
		Model:    "nope",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")},
	})
	var apiErr *openai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusNotFound || !strings.Contains(apiErr.Message, "m1, m2") {
		t.Fatalf("unknown model: %v", err)
	}
}

// TestOpenAISDKSeesStreamCut: when the backend cuts a stream, the SDK gets the events sent
// so far and then an error it can report, not a silently truncated answer.
func TestOpenAISDKSeesStreamCut(t *testing.T) {
	s := startSim(t, sim.Config{TimeScale: 50, Faults: sim.Faults{DropStreamAfter: 3}})
	e := newEnv(t, envOpts{}, backend(s.URL(), "m"))
	c := openai.NewClient(option.WithBaseURL(e.srv.URL+"/v1"), option.WithAPIKey("k"), option.WithMaxRetries(0),
		option.WithHTTPClient(e.client))
	stream := c.Chat.Completions.NewStreaming(t.Context(), openai.ChatCompletionNewParams{
		Model:     "m",
		Messages:  []openai.ChatCompletionMessageParamUnion{openai.UserMessage("stream")},
		MaxTokens: openai.Int(20),
	})
	defer stream.Close()
	chunks := 0
	for stream.Next() {
		chunks++
	}
	if err := stream.Err(); err == nil || chunks != 3 {
		t.Fatalf("after %d chunks err = %v; want 3 chunks then an error", chunks, err)
	}
}
