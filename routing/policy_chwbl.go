package routing

import (
	"context"
	"strings"

	"github.com/cespare/xxhash/v2"
)

// CHWBL is the chwbl baseline policy, KubeAI's PrefixHash load balancing: the key is the
// first KeyChars characters of the first user message (of the prompt, for completions and
// embeddings), scoped by model and LoRA adapter, placed by consistent hashing with bounded
// load (LoadFactor). It ignores everything else in the prompt (system prompt, history),
// which is what cache_aware is measured against. Requests with an empty key go to
// least_load (reason fallback). Safe for concurrent use if its Rand is.
type CHWBL struct {
	cfg   CHWBLConfig
	least *LeastLoad
	pc    *policyCounters
}

var _ Policy = (*CHWBL)(nil)

// NewCHWBL returns the chwbl policy; rnd drives the least_load fallback (nil:
// math/rand/v2); m receives the decision metrics (nil: not exported).
func NewCHWBL(cfg CHWBLConfig, rnd Rand, m *PolicyMetrics) (*CHWBL, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &CHWBL{cfg: cfg.withDefaults(), least: NewLeastLoad(rnd), pc: m.forPolicy(PolicyCHWBL)}, nil
}

// Name implements Policy.
func (*CHWBL) Name() string { return PolicyCHWBL }

// Choose implements Policy.
func (p *CHWBL) Choose(ctx context.Context, req *Request, cands []Candidate) (Choice, error) {
	key := FirstUserText(req.Prompt, p.cfg.KeyChars)
	if key == "" {
		ch, err := p.least.Choose(ctx, req, cands)
		if err == nil {
			p.pc.decided(ReasonFallback)
		}
		return ch, err
	}
	var d xxhash.Digest
	d.ResetWithSeed(PrefixSeed(req.Model, "", req.LoRA))
	_, _ = d.WriteString(key)
	idx, _ := boundedHash(d.Sum64(), cands, p.cfg.LoadFactor, nil)
	p.pc.decided(ReasonCold)
	return Choice{Index: idx}, nil
}

// userMarker opens a user message in the proxy's canonical prompt: each message is
// "<|role|>[ name][ tool_call_id]\n" + content + "\n".
const userMarker = "<|user|>"

// FirstUserText returns up to n bytes of the first user message's content in a canonical
// prompt (as the proxy builds it), or of the prompt itself when it has no user message
// (completions, embeddings). The content ends at the next message marker. It never splits
// a UTF-8 sequence. The result is a substring of prompt.
func FirstUserText(prompt string, n int) string {
	if n <= 0 {
		return ""
	}
	text := prompt
	if strings.HasPrefix(prompt, "<|") {
		at := -1
		for i := 0; i < len(prompt); {
			j := strings.Index(prompt[i:], userMarker)
			if j < 0 {
				break
			}
			if k := i + j; k == 0 || prompt[k-1] == '\n' {
				at = k
				break
			}
			i += j + 1
		}
		if at < 0 {
			return capUTF8(prompt, n)
		}
		text = prompt[at+len(userMarker):]
		if nl := strings.IndexByte(text, '\n'); nl >= 0 {
			text = text[nl+1:]
		} else {
			text = ""
		}
		// The message ends with "\n" before the next marker or at the end of the prompt.
		if end := strings.Index(text, "\n<|"); end >= 0 {
			text = text[:end]
		} else {
			text = strings.TrimSuffix(text, "\n")
		}
	}
	return capUTF8(text, n)
}

// capUTF8 returns the longest prefix of s of at most n bytes that does not end inside a
// UTF-8 sequence.
func capUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && i > n-4 && s[i]&0xC0 == 0x80 { // s[i] continues a sequence: back up
		i--
	}
	return s[:i]
}
