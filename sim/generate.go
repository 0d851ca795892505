package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
)

// apiKind is the generation endpoint being served.
type apiKind uint8

const (
	kindChat apiKind = iota
	kindCompletion
	kindResponses
)

// job is one parsed, validated generation request on its way through an engine.
type job struct {
	kind    apiKind
	g       genRequest
	model   string // model name to echo
	lora    string
	engine  *engine
	seqs    []*seq
	created int64
	id      string
}

func (s *Server) handleChat(w http.ResponseWriter, r *http.Request) {
	s.generate(w, r, kindChat)
}

func (s *Server) handleCompletions(w http.ResponseWriter, r *http.Request) {
	s.generate(w, r, kindCompletion)
}

func (s *Server) handleResponses(w http.ResponseWriter, r *http.Request) {
	s.generate(w, r, kindResponses)
}

// readBody reads the request body into buf, bounded by MaxBodyBytes.
func (s *Server) readBody(r *http.Request, buf []byte) ([]byte, error) {
	limit := s.cfg.MaxBodyBytes
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limit {
			return buf, badRequest("request body exceeds %d bytes", limit)
		}
		if errors.Is(err, io.EOF) {
			return buf, nil
		}
		if err != nil {
			return buf, fmt.Errorf("reading request body: %w", err)
		}
	}
}

// resolveModel maps a requested model name to the name to echo and the adapter.
func (s *Server) resolveModel(name string) (echo, lora string, err *apiError) {
	if name == "" {
		return s.cfg.ServedModelNames[0], "", nil
	}
	m, ok := s.models[name]
	if !ok {
		return "", "", &apiError{
			Status:  http.StatusNotFound,
			Message: "The model `" + name + "` does not exist.",
			Param:   "model",
		}
	}
	return name, m.lora, nil
}

// admit checks a parsed request the way vLLM's frontend does, in the same order, and
// computes each prompt's output length.
func (s *Server) admit(g *genRequest) (maxTokens []int, aerr *apiError) {
	if !s.ready() {
		return nil, &apiError{Status: http.StatusServiceUnavailable, Message: "the model is still loading"}
	}
	if g.Priority != 0 && s.cfg.SchedulingPolicy != PolicyPriority {
		return nil, &apiError{
			Status:  http.StatusBadRequest,
			Message: "Got request with priority " + strconv.Itoa(g.Priority) + ", but Priority scheduling is not enabled.",
			Param:   "priority",
		}
	}
	maxLen := s.cfg.MaxModelLen
	maxTokens = make([]int, len(g.Prompts))
	for i, p := range g.Prompts {
		pt := countTokens(len(p))
		if pt > maxLen || (pt == maxLen && g.HasMax) {
			return nil, &apiError{
				Status: http.StatusBadRequest,
				Message: "This model's maximum context length is " + strconv.Itoa(maxLen) +
					" tokens. However, your request has " + strconv.Itoa(pt) +
					" input tokens. Please reduce the length of the input messages.",
			}
		}
		if !g.HasMax {
			maxTokens[i] = max(1, min(s.cfg.OutputTokens, maxLen-pt))
			continue
		}
		if g.MaxTokens < 1 {
			return nil, &apiError{
				Status:  http.StatusBadRequest,
				Message: "max_tokens must be at least 1, got " + strconv.Itoa(g.MaxTokens) + ".",
				Param:   "max_tokens",
			}
		}
		if pt+g.MaxTokens > maxLen {
			return nil, &apiError{
				Status: http.StatusBadRequest,
				Message: "'max_tokens' or 'max_completion_tokens' is too large: " + strconv.Itoa(g.MaxTokens) +
					". This model's maximum context length is " + strconv.Itoa(maxLen) +
					" tokens and your request has " + strconv.Itoa(pt) + " input tokens (" +
					strconv.Itoa(g.MaxTokens) + " > " + strconv.Itoa(maxLen) + " - " + strconv.Itoa(pt) + ").",
				Param: "max_tokens",
			}
		}
		maxTokens[i] = g.MaxTokens
	}
	return maxTokens, nil
}

// generate serves the chat, completion and responses endpoints.
func (s *Server) generate(w http.ResponseWriter, r *http.Request, kind apiKind) {
	s.load.Add(1)
	defer s.load.Add(-1)
	bodyBuf, promptBuf := getBuf(), getBuf()
	defer putBuf(bodyBuf)
	defer putBuf(promptBuf)

	body, err := s.readBody(r, (*bodyBuf)[:0])
	*bodyBuf = body
	if err != nil {
		s.writeError(w, apiError{Status: http.StatusBadRequest, Message: err.Error()})
		return
	}
	var g genRequest
	switch kind {
	case kindChat:
		g, *promptBuf, err = parseChat(body, (*promptBuf)[:0])
	case kindCompletion:
		g, err = parseCompletion(body)
	case kindResponses:
		g, *promptBuf, err = parseResponses(body, (*promptBuf)[:0])
	}
	if err != nil {
		s.writeError(w, apiError{Status: http.StatusBadRequest, Message: err.Error()})
		return
	}
	s.counts.priority(g.Priority)
	model, lora, aerr := s.resolveModel(g.Model)
	if aerr != nil {
		s.writeError(w, *aerr)
		return
	}
	maxTokens, aerr := s.admit(&g)
	if aerr != nil {
		s.writeError(w, *aerr)
		return
	}
	if s.injectFault(w, r) {
		return
	}
	j := &job{kind: kind, g: g, model: model, lora: lora, engine: s.pickEngine(), created: s.created}
	j.id = s.newID(kind)
	root := chainRoot(g.CacheSalt, lora)
	for i, p := range g.Prompts {
		q := &seq{priority: g.Priority, prompt: p, prompTok: countTokens(len(p)),
			maxTokens: maxTokens[i], seed: outputSeed(p), root: root, lora: lora, heapIndex: -1}
		j.seqs = append(j.seqs, q)
	}
	if s.cfg.Instant {
		s.runInstant(j)
	} else {
		for _, q := range j.seqs {
			q.notify = make(chan struct{}, 1)
			j.engine.submit(q)
		}
		defer func() {
			for _, q := range j.seqs {
				j.engine.abort(q) // no-op for finished sequences
			}
		}()
	}
	if g.Stream {
		s.stream(w, r, j)
		return
	}
	if !s.cfg.Instant {
		for _, q := range j.seqs {
			if err := s.waitDone(r.Context(), q); err != nil {
				if errors.Is(err, ErrClosed) {
					abortResponse()
				}
				return // the client went away: nobody to answer
			}
		}
	}
	s.writeResult(w, j)
}

// runInstant runs every sequence of j through its engine with no simulated time. The
// block hashes cover prompt and output, so a follow-up turn hits the cache.
func (s *Server) runInstant(j *job) {
	tb := getBuf()
	defer putBuf(tb)
	bb := s.cfg.BlockSize * bytesPerToken
	for _, q := range j.seqs {
		text := append((*tb)[:0], q.prompt...)
		text = appendOutput(text, q.seed, 0, q.maxTokens)
		*tb = text
		q.hashes = blockHashes(q.hashes[:0], q.root, text, bb)
		j.engine.runInstant(q)
	}
}

// waitDone blocks until q finished, the client went away, or the server closes.
func (s *Server) waitDone(ctx context.Context, q *seq) error {
	for !q.finished.Load() {
		select {
		case <-q.notify:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.ctx.Done():
			return ErrClosed
		}
	}
	return nil
}

// injectFault applies fail-rate and hang-rate; it reports whether the request was
// consumed by a fault.
func (s *Server) injectFault(w http.ResponseWriter, r *http.Request) bool {
	f := s.faults.Load()
	if f.FailRate > 0 && s.roll() < f.FailRate {
		s.writeError(w, apiError{Status: http.StatusInternalServerError, Message: "simulated failure"})
		return true
	}
	if f.HangRate > 0 && s.roll() < f.HangRate {
		select {
		case <-r.Context().Done():
		case <-s.ctx.Done():
			abortResponse()
		}
		return true
	}
	return false
}

func (s *Server) newID(kind apiKind) string {
	n := splitmix(s.cfg.Seed ^ s.ids.Add(1))
	var b [16]byte
	for i := range b {
		b[i] = hexDigits[n&0xf]
		n >>= 4
	}
	switch kind {
	case kindChat:
		return "chatcmpl-" + string(b[:])
	case kindCompletion:
		return "cmpl-" + string(b[:])
	default:
		return "resp_" + string(b[:])
	}
}

// finishReason is "length" when the output length came from the request, "stop" when
// the simulated model "chose" to stop (the default output length).
func (j *job) finishReason() string {
	if j.g.HasMax {
		return "length"
	}
	return "stop"
}

// usage sums prompt, completion and cached tokens over j's sequences.
func (j *job) usage() (prompt, completion, cached int) {
	for _, q := range j.seqs {
		prompt += q.prompTok
		completion += int(q.generated.Load())
		cached += int(q.cached.Load())
	}
	return prompt, completion, cached
}

// appendUsage appends j's usage object.
func (j *job) appendUsage(dst []byte) []byte {
	p, c, cached := j.usage()
	return appendUsage(dst, p, c, cached)
}

// abortResponse ends the handler by cutting the connection instead of answering, the
// way a vLLM process that dies mid-request looks to its client. net/http recovers this
// panic without logging.
func abortResponse() { panic(http.ErrAbortHandler) }
