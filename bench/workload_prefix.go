package bench

import (
	"encoding/binary"
	"hash/maphash"
)

// sharedPrefixWorkload is llm-d's b2b-saas shape: Groups system prompts of SystemTokens,
// each followed by one of Users fixed questions of QuestionTokens. Each request picks a
// group and a user at random, so (group, user) pairs repeat and the system prompt is the
// shared prefix.
type sharedPrefixWorkload struct {
	p       Params
	seed    uint64
	systems []string
}

func newSharedPrefix(p Params, seed uint64) *sharedPrefixWorkload {
	w := &sharedPrefixWorkload{p: p, seed: seed, systems: make([]string, p.Groups)}
	for g := range w.systems {
		w.systems[g] = words(newRand(seed, streamSystem, uint64(g)), p.SystemTokens)
	}
	return w
}

func (w *sharedPrefixWorkload) Name() string { return WorkloadSharedPrefix }

func (w *sharedPrefixWorkload) Request(i int) Request {
	r := newRand(w.seed, streamRequest, uint64(i)) // #nosec G115 -- a non-negative index used as a random stream key: wrap-around would only pick another stream
	g := r.IntN(w.p.Groups)
	u := r.IntN(w.p.Users)
	q := words(newRand(w.seed, streamQuestion, uint64(g), uint64(u)), w.p.QuestionTokens) // #nosec G115 -- a non-negative index used as a random stream key: wrap-around would only pick another stream
	return Request{
		Messages:  []Message{{Role: "system", Content: w.systems[g]}, {Role: "user", Content: q}},
		MaxTokens: w.p.OutputTokens,
	}
}

// multiTurnWorkload replays synthetic conversations the way KubeAI's ShareGPT replay does:
// the request for turn k carries turns 0..k of the user and the recorded (here: generated)
// assistant answers to turns 0..k-1. Conversations advance in lockstep: requests
// i = 0..C-1 are turn 0 of conversations 0..C-1, the next C are their turn 1, and so on;
// after Turns turns a fresh set of C conversations starts.
type multiTurnWorkload struct {
	p    Params
	seed uint64
}

func (w *multiTurnWorkload) Name() string { return WorkloadMultiTurn }

func (w *multiTurnWorkload) Request(i int) Request {
	c, t := w.p.Conversations, w.p.Turns
	set, within := i/(c*t), i%(c*t)
	turn := within / c
	conv := uint64(set*c + within%c) // #nosec G115 -- a non-negative index used as a random stream key: wrap-around would only pick another stream
	msgs := make([]Message, 0, 2*turn+1)
	for k := 0; k <= turn; k++ {
		msgs = append(msgs, Message{Role: "user", Content: words(newRand(w.seed, streamTurn, conv, uint64(k)), w.p.TurnTokens)})
		if k < turn {
			msgs = append(msgs, Message{Role: "assistant", Content: words(newRand(w.seed, streamAnswer, conv, uint64(k)), w.p.AnswerTokens)})
		}
	}
	return Request{Messages: msgs, MaxTokens: w.p.AnswerTokens}
}

// Oracle computes the best hit fraction any prefix cache could reach on a sequence of
// prompts: a prompt's leading full blocks of BlockChars characters count as hits when the
// same chain of blocks began an earlier prompt. The cache is unbounded. Not safe for
// concurrent use.
type Oracle struct {
	seed      maphash.Seed
	seen      map[uint64]struct{}
	hitTokens int64
	allTokens int64
}

// NewOracle returns an empty oracle.
func NewOracle() *Oracle {
	return &Oracle{seed: maphash.MakeSeed(), seen: make(map[uint64]struct{})}
}

// Add records one prompt (in arrival order) and returns its hit tokens.
func (o *Oracle) Add(prompt string) int {
	var h maphash.Hash
	h.SetSeed(o.seed)
	var prev [8]byte
	hits, matching := 0, true
	for off := 0; off+BlockChars <= len(prompt); off += BlockChars {
		h.Reset()
		_, _ = h.Write(prev[:])                            // maphash.Hash writes never fail
		_, _ = h.WriteString(prompt[off : off+BlockChars]) // maphash.Hash writes never fail
		sum := h.Sum64()
		binary.LittleEndian.PutUint64(prev[:], sum)
		if _, ok := o.seen[sum]; ok && matching {
			hits += BlockTokens
		} else {
			matching = false
			o.seen[sum] = struct{}{}
		}
	}
	o.hitTokens += int64(hits)
	o.allTokens += int64(Tokens(prompt))
	return hits
}

// Fraction is hit tokens / prompt tokens over every prompt added so far (0 when none).
func (o *Oracle) Fraction() float64 {
	if o.allTokens == 0 {
		return 0
	}
	return float64(o.hitTokens) / float64(o.allTokens)
}

// OracleHitFraction is the Oracle fraction of requests 0..n-1 of w, in index order.
func OracleHitFraction(w Workload, n int) float64 {
	o := NewOracle()
	for i := range n {
		o.Add(w.Request(i).Prompt())
	}
	return o.Fraction()
}
