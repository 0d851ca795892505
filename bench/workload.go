package bench

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// ErrUnknownWorkload is returned by NewWorkload for a name it does not know.
var ErrUnknownWorkload = errors.New("unknown workload")

// Workload names accepted by NewWorkload.
const (
	WorkloadFixed        = "fixed"
	WorkloadUniform      = "uniform"
	WorkloadSharedPrefix = "shared-prefix"
	WorkloadMultiTurn    = "multi-turn"
	WorkloadBursty       = "bursty"
)

// WorkloadNames lists every name NewWorkload accepts.
var WorkloadNames = []string{WorkloadFixed, WorkloadUniform, WorkloadSharedPrefix, WorkloadMultiTurn, WorkloadBursty}

// Message is one chat message.
type Message struct {
	Role    string
	Content string
}

// Request is one generated request, independent of endpoint and model.
type Request struct {
	// Messages is the chat form of the prompt.
	Messages []Message
	// MaxTokens is the requested output length.
	MaxTokens int
}

// Prompt returns the prompt text: the message contents concatenated. It is what the
// completions endpoint sends and what the oracle hit fraction hashes.
func (r Request) Prompt() string {
	if len(r.Messages) == 1 {
		return r.Messages[0].Content
	}
	var b strings.Builder
	for _, m := range r.Messages {
		b.WriteString(m.Content)
	}
	return b.String()
}

// PromptTokens estimates the prompt length in tokens.
func (r Request) PromptTokens() int {
	n := 0
	for _, m := range r.Messages {
		n += len(m.Content)
	}
	return (n + CharsPerToken - 1) / CharsPerToken
}

// Workload is a deterministic, random-access sequence of requests: Request(i) depends only
// on the workload's parameters, its seed and i. Implementations are safe for concurrent use.
type Workload interface {
	// Name is the workload's name, as given to NewWorkload.
	Name() string
	// Request returns the i-th request (i >= 0).
	Request(i int) Request
}

// Scheduled is implemented by workloads that fix their own arrival times (bursty); the
// runner then ignores Config.Rate and sends request i at Arrival(i) after the start.
type Scheduled interface {
	Arrival(i int) time.Duration
}

// Params are the workload shape parameters. Zero fields take the defaults shown.
type Params struct {
	// InputTokens is the prompt length of fixed and bursty (default 128).
	InputTokens int
	// OutputTokens is max_tokens of fixed, bursty and shared-prefix (default 64).
	OutputTokens int
	// MinInputTokens and MaxInputTokens bound uniform prompt lengths (default 16..512).
	MinInputTokens, MaxInputTokens int
	// MinOutputTokens and MaxOutputTokens bound uniform output lengths (default 16..128).
	MinOutputTokens, MaxOutputTokens int
	// Groups is the number of shared system prompts of shared-prefix (default 8).
	Groups int
	// SystemTokens is the length of each shared system prompt (default 1024).
	SystemTokens int
	// Users is the number of distinct questions per group (default 5).
	Users int
	// QuestionTokens is the length of each question (default 128).
	QuestionTokens int
	// Conversations is the number of conversations multi-turn replays side by side (default 16).
	Conversations int
	// Turns is the number of user turns per conversation (default 5).
	Turns int
	// TurnTokens is the length of each user turn (default 64).
	TurnTokens int
	// AnswerTokens is the length of each replayed assistant answer and the max_tokens of
	// multi-turn requests (default 64).
	AnswerTokens int
	// WaveSize is the number of requests per bursty wave (default 32).
	WaveSize int
	// WaveInterval is the time between bursty waves (default 1s).
	WaveInterval time.Duration
}

func (p *Params) applyDefaults() {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&p.InputTokens, 128)
	def(&p.OutputTokens, 64)
	def(&p.MinInputTokens, 16)
	def(&p.MaxInputTokens, 512)
	def(&p.MinOutputTokens, 16)
	def(&p.MaxOutputTokens, 128)
	def(&p.Groups, 8)
	def(&p.SystemTokens, 1024)
	def(&p.Users, 5)
	def(&p.QuestionTokens, 128)
	def(&p.Conversations, 16)
	def(&p.Turns, 5)
	def(&p.TurnTokens, 64)
	def(&p.AnswerTokens, 64)
	def(&p.WaveSize, 32)
	if p.WaveInterval == 0 {
		p.WaveInterval = time.Second
	}
}

// Validate reports every parameter that is out of range (after defaults).
func (p Params) Validate() error {
	var errs []error
	pos := func(name string, v int) {
		if v < 1 {
			errs = append(errs, fmt.Errorf("%s must be >= 1, got %d", name, v))
		}
	}
	pos("input tokens", p.InputTokens)
	pos("output tokens", p.OutputTokens)
	pos("min input tokens", p.MinInputTokens)
	pos("min output tokens", p.MinOutputTokens)
	pos("groups", p.Groups)
	pos("system tokens", p.SystemTokens)
	pos("users", p.Users)
	pos("question tokens", p.QuestionTokens)
	pos("conversations", p.Conversations)
	pos("turns", p.Turns)
	pos("turn tokens", p.TurnTokens)
	pos("answer tokens", p.AnswerTokens)
	pos("wave size", p.WaveSize)
	if p.MaxInputTokens < p.MinInputTokens {
		errs = append(errs, fmt.Errorf("max input tokens %d < min input tokens %d", p.MaxInputTokens, p.MinInputTokens))
	}
	if p.MaxOutputTokens < p.MinOutputTokens {
		errs = append(errs, fmt.Errorf("max output tokens %d < min output tokens %d", p.MaxOutputTokens, p.MinOutputTokens))
	}
	if p.WaveInterval < 0 {
		errs = append(errs, fmt.Errorf("wave interval must be >= 0, got %s", p.WaveInterval))
	}
	return errors.Join(errs...)
}

// NewWorkload builds the named workload (one of WorkloadNames) with params p (zero fields
// take defaults) and seed.
func NewWorkload(name string, p Params, seed uint64) (Workload, error) {
	p.applyDefaults()
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("workload %s: %w", name, err)
	}
	switch name {
	case WorkloadFixed:
		return &fixedWorkload{name: name, p: p, seed: seed}, nil
	case WorkloadBursty:
		return &burstyWorkload{fixedWorkload{name: name, p: p, seed: seed}}, nil
	case WorkloadUniform:
		return &uniformWorkload{p: p, seed: seed}, nil
	case WorkloadSharedPrefix:
		return newSharedPrefix(p, seed), nil
	case WorkloadMultiTurn:
		return &multiTurnWorkload{p: p, seed: seed}, nil
	}
	return nil, fmt.Errorf("%w %q (want one of %s)", ErrUnknownWorkload, name, strings.Join(WorkloadNames, ", "))
}

// Stream numbers keep the random sequences of different workload parts independent.
const (
	streamRequest uint64 = iota + 1
	streamSystem
	streamQuestion
	streamTurn
	streamAnswer
)

func userOnly(text string, maxTokens int) Request {
	return Request{Messages: []Message{{Role: "user", Content: text}}, MaxTokens: maxTokens}
}

// fixedWorkload sends prompts of InputTokens random words and asks for OutputTokens.
type fixedWorkload struct {
	name string
	p    Params
	seed uint64
}

func (w *fixedWorkload) Name() string { return w.name }

func (w *fixedWorkload) Request(i int) Request {
	return userOnly(words(newRand(w.seed, streamRequest, uint64(i)), w.p.InputTokens), w.p.OutputTokens) // #nosec G115 -- a non-negative index used as a random stream key: wrap-around would only pick another stream
}

// burstyWorkload is fixed-length requests released in waves of WaveSize every WaveInterval.
type burstyWorkload struct{ fixedWorkload }

func (w *burstyWorkload) Arrival(i int) time.Duration {
	return time.Duration(i/w.p.WaveSize) * w.p.WaveInterval
}

// uniformWorkload draws prompt and output lengths uniformly from their ranges.
type uniformWorkload struct {
	p    Params
	seed uint64
}

func (w *uniformWorkload) Name() string { return WorkloadUniform }

func (w *uniformWorkload) Request(i int) Request {
	r := newRand(w.seed, streamRequest, uint64(i)) // #nosec G115 -- a non-negative index used as a random stream key: wrap-around would only pick another stream
	in := between(r, w.p.MinInputTokens, w.p.MaxInputTokens)
	out := between(r, w.p.MinOutputTokens, w.p.MaxOutputTokens)
	return userOnly(words(r, in), out)
}

func between(r *rand.Rand, lo, hi int) int { return lo + r.IntN(hi-lo+1) }
