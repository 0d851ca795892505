package sim

import (
	"math"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

func sdkClient(s *Server) openai.Client {
	return openai.NewClient(option.WithBaseURL(s.URL()+"/v1"), option.WithAPIKey("sim"), option.WithMaxRetries(0))
}

// modes runs f against an instant sim and a time-scaled one.
func modes(t *testing.T, base Config, f func(t *testing.T, s *Server)) {
	for _, m := range []struct {
		name    string
		instant bool
	}{{"instant", true}, {"timed", false}} {
		t.Run(m.name, func(t *testing.T) {
			cfg := base
			cfg.Instant = m.instant
			if !m.instant {
				cfg.TimeScale = 1000
			}
			f(t, startSim(t, cfg))
		})
	}
}

func TestSDKModelsList(t *testing.T) {
	s := startSim(t, Config{Model: "org/base", ServedModelNames: []string{"m1", "m2"}, LoRAs: []string{"ad1"}, Instant: true})
	c := sdkClient(s)
	page, err := c.Models.List(t.Context())
	if err != nil {
		t.Fatalf("listing models: %v", err)
	}
	var ids []string
	for _, m := range page.Data {
		ids = append(ids, m.ID)
		if m.OwnedBy != "vllm" || m.Object != "model" || m.Created == 0 {
			t.Errorf("model %s: owned_by %q object %q created %d", m.ID, m.OwnedBy, m.Object, m.Created)
		}
	}
	if got := strings.Join(ids, ","); got != "m1,m2,ad1" {
		t.Fatalf("model ids = %s, want m1,m2,ad1", got)
	}
	if p := page.Data[2].JSON.ExtraFields["parent"].Raw(); p != `"m1"` {
		t.Errorf("adapter parent = %s, want \"m1\"", p)
	}
	if p := page.Data[0].JSON.ExtraFields["root"].Raw(); p != `"org/base"` {
		t.Errorf("base root = %s, want \"org/base\"", p)
	}
}

func TestSDKChat(t *testing.T) {
	modes(t, Config{Model: "m1"}, func(t *testing.T, s *Server) {
		c := sdkClient(s)
		params := openai.ChatCompletionNewParams{
			Model: "m1",
			Messages: []openai.ChatCompletionMessageParamUnion{
				openai.SystemMessage("You are a simulator."),
				openai.UserMessage("Say something deterministic."),
			},
			MaxCompletionTokens: openai.Int(7),
		}
		first, err := c.Chat.Completions.New(t.Context(), params)
		if err != nil {
			t.Fatalf("chat: %v", err)
		}
		second, err := c.Chat.Completions.New(t.Context(), params)
		if err != nil {
			t.Fatalf("chat again: %v", err)
		}
		prompt := "<|system|>\nYou are a simulator.\n<|user|>\nSay something deterministic.\n<|assistant|>\n"
		wantPrompt := int64(countTokens(len(prompt)))
		if first.Object != "chat.completion" || !strings.HasPrefix(first.ID, "chatcmpl-") || first.Model != "m1" {
			t.Errorf("object %q id %q model %q", first.Object, first.ID, first.Model)
		}
		if len(first.Choices) != 1 || first.Choices[0].FinishReason != "length" || first.Choices[0].Message.Role != "assistant" {
			t.Fatalf("choices = %+v", first.Choices)
		}
		content := first.Choices[0].Message.Content
		if len(content) != 7*bytesPerToken {
			t.Errorf("content %q has %d bytes, want %d", content, len(content), 7*bytesPerToken)
		}
		if second.Choices[0].Message.Content != content {
			t.Errorf("output not deterministic: %q vs %q", content, second.Choices[0].Message.Content)
		}
		u := first.Usage
		if u.PromptTokens != wantPrompt || u.CompletionTokens != 7 || u.TotalTokens != wantPrompt+7 {
			t.Errorf("usage = %+v, want prompt %d completion 7", u, wantPrompt)
		}
		// The prompt is 76 bytes = 19 tokens: one full block, cached on the repeat.
		if got := second.Usage.PromptTokensDetails.CachedTokens; got != 16 {
			t.Errorf("cached tokens on repeat = %d, want 16", got)
		}
		if first.Usage.PromptTokensDetails.CachedTokens != 0 {
			t.Errorf("cached tokens on first = %d, want 0", first.Usage.PromptTokensDetails.CachedTokens)
		}
	})
}

func TestSDKChatStream(t *testing.T) {
	modes(t, Config{Model: "m1"}, func(t *testing.T, s *Server) {
		c := sdkClient(s)
		params := openai.ChatCompletionNewParams{
			Model:     "m1",
			Messages:  []openai.ChatCompletionMessageParamUnion{openai.UserMessage("stream me")},
			MaxTokens: openai.Int(5),
		}
		whole, err := c.Chat.Completions.New(t.Context(), params)
		if err != nil {
			t.Fatalf("chat: %v", err)
		}
		params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
		stream := c.Chat.Completions.NewStreaming(t.Context(), params)
		defer stream.Close()
		var text strings.Builder
		var chunks, usageChunks int
		var finish string
		var usage openai.CompletionUsage
		for stream.Next() {
			ch := stream.Current()
			chunks++
			if ch.Object != "chat.completion.chunk" || ch.ID == "" {
				t.Errorf("chunk object %q id %q", ch.Object, ch.ID)
			}
			if len(ch.Choices) == 0 {
				usageChunks++
				usage = ch.Usage
				continue
			}
			text.WriteString(ch.Choices[0].Delta.Content)
			if ch.Choices[0].FinishReason != "" {
				finish = ch.Choices[0].FinishReason
			}
		}
		if err := stream.Err(); err != nil {
			t.Fatalf("stream: %v", err)
		}
		if text.String() != whole.Choices[0].Message.Content {
			t.Errorf("streamed %q, whole %q", text.String(), whole.Choices[0].Message.Content)
		}
		// role chunk + 5 token chunks + usage chunk
		if chunks != 7 || usageChunks != 1 || finish != "length" {
			t.Errorf("chunks %d usage chunks %d finish %q", chunks, usageChunks, finish)
		}
		if usage.CompletionTokens != 5 || usage.PromptTokens != whole.Usage.PromptTokens {
			t.Errorf("stream usage %+v, whole usage %+v", usage, whole.Usage)
		}
	})
}

func TestSDKCompletions(t *testing.T) {
	modes(t, Config{Model: "m1"}, func(t *testing.T, s *Server) {
		c := sdkClient(s)
		resp, err := c.Completions.New(t.Context(), openai.CompletionNewParams{
			Model:     "m1",
			Prompt:    openai.CompletionNewParamsPromptUnion{OfArrayOfStrings: []string{"first prompt", "second"}},
			MaxTokens: openai.Int(3),
		})
		if err != nil {
			t.Fatalf("completions: %v", err)
		}
		if resp.Object != "text_completion" || len(resp.Choices) != 2 {
			t.Fatalf("object %q, %d choices", resp.Object, len(resp.Choices))
		}
		for i, ch := range resp.Choices {
			if ch.Index != int64(i) || len(ch.Text) != 12 || ch.FinishReason != "length" {
				t.Errorf("choice %d: %+v", i, ch)
			}
		}
		if want := int64(countTokens(len("first prompt")) + countTokens(len("second"))); resp.Usage.PromptTokens != want || resp.Usage.CompletionTokens != 6 {
			t.Errorf("usage %+v, want prompt %d completion 6", resp.Usage, want)
		}

		stream := c.Completions.NewStreaming(t.Context(), openai.CompletionNewParams{
			Model:     "m1",
			Prompt:    openai.CompletionNewParamsPromptUnion{OfString: openai.String("first prompt")},
			MaxTokens: openai.Int(3),
		})
		defer stream.Close()
		var text strings.Builder
		for stream.Next() {
			for _, ch := range stream.Current().Choices {
				text.WriteString(ch.Text)
			}
		}
		if err := stream.Err(); err != nil {
			t.Fatalf("stream: %v", err)
		}
		if text.String() != resp.Choices[0].Text {
			t.Errorf("streamed %q, whole %q", text.String(), resp.Choices[0].Text)
		}
	})
}

func TestSDKEmbeddings(t *testing.T) {
	modes(t, Config{Model: "m1", EmbeddingDim: 32}, func(t *testing.T, s *Server) {
		c := sdkClient(s)
		for _, format := range []openai.EmbeddingNewParamsEncodingFormat{openai.EmbeddingNewParamsEncodingFormatFloat, openai.EmbeddingNewParamsEncodingFormatBase64} {
			resp, err := c.Embeddings.New(t.Context(), openai.EmbeddingNewParams{
				Model:          "m1",
				Input:          openai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"alpha", "beta", "alpha"}},
				EncodingFormat: format,
			})
			if err != nil {
				t.Fatalf("embeddings (%s): %v", format, err)
			}
			if len(resp.Data) != 3 || resp.Object != "list" {
				t.Fatalf("%s: %d embeddings, object %q", format, len(resp.Data), resp.Object)
			}
			var norm float64
			for _, x := range resp.Data[0].Embedding {
				norm += x * x
			}
			if len(resp.Data[0].Embedding) != 32 || math.Abs(norm-1) > 1e-4 {
				t.Errorf("%s: dim %d norm %g", format, len(resp.Data[0].Embedding), norm)
			}
			if resp.Data[0].Embedding[0] != resp.Data[2].Embedding[0] || resp.Data[0].Embedding[0] == resp.Data[1].Embedding[0] {
				t.Errorf("%s: embeddings not deterministic per input", format)
			}
			if resp.Usage.PromptTokens != 5 {
				t.Errorf("%s: prompt tokens %d, want 5", format, resp.Usage.PromptTokens)
			}
		}
	})
}
