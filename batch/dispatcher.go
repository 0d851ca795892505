package batch

import (
	"context"
	"errors"
)

// Request is one batch line to execute.
type Request struct {
	// Path is the endpoint, e.g. "/v1/chat/completions".
	Path string
	// Body is the line's request body, exactly as in the input file.
	Body []byte
	// Model is body.model ("" when absent).
	Model string
}

// Response is a backend's answer to a line. Any status is a response; only failures to
// get one are errors.
type Response struct {
	Status int
	Body   []byte
}

// Dispatcher executes batch lines. cmd implements it over the proxy's in-process path
// (same routing, counters and failover as interactive traffic, class "batch"). It must be
// safe for concurrent use and return when ctx is done.
type Dispatcher interface {
	Dispatch(ctx context.Context, req Request) (Response, error)
}

var (
	// ErrModelUnavailable means no backend serves req.Model right now. The line is held
	// and retried every Config.RetryBackoff; after Config.ModelWait it is recorded as
	// failed with a 404 body (or batch_expired if the window ends first).
	ErrModelUnavailable = errors.New("no backend serves the model")
	// ErrRetryable means the line may succeed later (backends down, overloaded, 503). It
	// is retried up to Config.RetryAttempts times with doubling back-off, then recorded as
	// failed with status 503 (or the Response's status and body when one is returned).
	ErrRetryable = errors.New("retryable dispatch failure")
)
