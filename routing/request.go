package routing

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Class is the traffic class of a request. Counts are kept per class so batch traffic can
// be held back when interactive traffic needs the room.
type Class string

// The traffic classes.
const (
	ClassInteractive Class = "interactive"
	ClassBatch       Class = "batch"
)

// classes lists every Class, in the order of classIndex.
var classes = [...]Class{ClassInteractive, ClassBatch}

// classIndex maps a Class to its counter slot; anything unknown counts as interactive.
func classIndex(c Class) int {
	if c == ClassBatch {
		return 1
	}
	return 0
}

// normalizeClass returns c, or ClassInteractive when c is empty or unknown.
func normalizeClass(c Class) Class { return classes[classIndex(c)] }

// Request is what the router needs to know about one request to choose a backend.
// Pick does not modify it.
type Request struct {
	// Model is the requested model (a base model or a LoRA adapter name). Empty only when
	// exactly one base model is served; Pick then chooses it.
	Model string
	// Class is the traffic class; empty means ClassInteractive.
	Class Class
	// Prompt is the canonical prompt text, for prefix-cache-aware policies: chat messages
	// in order, each as "<|role|>[ name][ tool_call_id]\n" + content + "\n" (tool
	// definitions first, as "<|tools|>\n" + JSON + "\n"); a completions prompt or an
	// embeddings input as is. cache_aware hashes all of it; chwbl reads the first user
	// message through the role markers (FirstUserText).
	Prompt string
	// CacheSalt is the request's cache_salt field, which scopes vLLM's prefix cache.
	CacheSalt string
	// LoRA is the LoRA adapter name when Model names one. Pick fills it in (on a copy
	// handed to the policy) from the model list when it is empty and Model is an adapter.
	LoRA string
	// Exclude lists IDs of backends already tried for this request.
	Exclude []string
}

// charsPerToken is the usual estimate of prompt characters per token without a tokenizer.
const charsPerToken = 4

// PromptTokens estimates the number of prompt tokens (about 4 characters each).
func (r *Request) PromptTokens() int {
	return (len(r.Prompt) + charsPerToken - 1) / charsPerToken
}

func (r *Request) excluded(id string) bool {
	for _, x := range r.Exclude {
		if x == id {
			return true
		}
	}
	return false
}

// Outcome is how one attempt on a picked backend ended, reported through Pick.Done.
type Outcome struct {
	// Status is the backend's HTTP status, or 0 when no response arrived.
	Status int
	// Err is the transport error, if any (connect error, timeout, stream cut). A
	// context.Canceled error (the client went away) never counts against the backend.
	Err error
	// FirstByte is the time from dispatch to the first response byte, when known.
	FirstByte time.Duration
	// Streamed is true when bytes had reached the client before the attempt ended.
	Streamed bool
}

// failure reports whether o counts against the backend for passive health: connect errors,
// timeouts and 5xx responses do; a client's 4xx and a client disconnect do not.
func (o Outcome) failure() bool {
	if o.Err != nil {
		return !errors.Is(o.Err, context.Canceled)
	}
	return o.Status >= 500
}

// Errors returned by Pick.
var (
	// ErrNoModel: the request names no model and more than one base model is served (400).
	ErrNoModel = errors.New("no model given and more than one model is served")
	// ErrNoBackend: the model is known but no healthy, non-excluded backend serves it (503).
	ErrNoBackend = errors.New("no healthy backend serves the model")
)

// UnknownModelError is returned by Pick when no backend serves the requested model (404).
type UnknownModelError struct {
	// Model is the requested name.
	Model string
	// Available lists every served model id, in the order of Router.Models.
	Available []string
}

// Error names the model and lists the available ones.
func (e *UnknownModelError) Error() string {
	return fmt.Sprintf("the model `%s` does not exist; available models: %s", e.Model, strings.Join(e.Available, ", "))
}
