package routing

import (
	"context"
	"math"
	"sync"
	"time"
)

// PolicyCacheAware and PolicyCHWBL are the prefix-aware policy names.
const (
	PolicyCacheAware = "cache_aware"
	PolicyCHWBL      = "chwbl"
)

// CacheAware is the cache_aware policy: sticky to the backend holding the longest cached
// prefix of the prompt until it saturates, cold requests placed by consistent hashing with
// bounded load. Per request:
//
//  1. Hash the canonical prompt (Request.Prompt) into a chain of blocks (HashPrompt,
//     seeded with model, cache_salt and LoRA; BlockChars, MaxBlocks) and look the chain up
//     in the PrefixIndex: each candidate's matched blocks m_i.
//  2. No full block (empty or short prompt): least_load (reason fallback).
//  3. Cold: every candidate matches equally (usually nothing, or a boilerplate prefix all
//     of them hold). Place by consistent hashing with bounded load (LoadFactor) keyed on
//     the first block past that common part — the first block when nothing matches — so
//     every replica chooses the same backend without Redis and hot prefixes spread once a
//     backend carries more than its share (reason cold_placement). Only backends with
//     headroom qualify: under LeastLoadThreshold, or within one request of the least
//     loaded; so under a burst, where a cold request has no cache to gain, placement is
//     as even as least_load's.
//  4. Warm: the candidates with the longest match hold it. Pressure is
//     max(load/SaturationLoad, queue/QueueBudget), where queue is the backend's uncached
//     prompt tokens in flight (over all replicas, estimated from this replica's
//     per-request average) divided by PrefillTokensPerSecond. A holder may keep the
//     request while its pressure is under 1 (one budget), and past it only while it stays
//     within LoadFactor of the mean pressure of the candidates (the bounded-load rule
//     applied to pressure): when every backend is saturated the cache still wins, but a
//     backend queueing well beyond the others gives way. Among the holders that may,
//     the first in rendezvous order of the chain's first block wins (reason affinity): an
//     order fixed per prefix and the same on every replica, so copies a release made
//     elsewhere serve only the overflow instead of splitting the prefix's traffic. When no holder may, the request is
//     released to least_load (reason saturation_release).
//  5. Record that the chosen backend now holds the chain, up to RecordDepth: its match
//     doubled plus RecordAhead blocks, or FirstRecordBlocks (one) when it matched
//     nothing, so one-off prompts cost one block of index (locally and in Redis) while
//     reused prefixes are recorded deeper with every reuse.
//
// CacheAware is safe for concurrent use if its Rand and index are.
type CacheAware struct {
	cfg   CacheAwareConfig
	idx   PrefixIndex
	least *LeastLoad
	pc    *policyCounters
	bufs  sync.Pool // *[]uint64 hash buffers

	mu          sync.Mutex
	hits        map[string]*hitRate // predicted hit per backend
	uncachedAvg float64             // decayed mean of the uncached tokens of recent picks
}

var (
	_ Policy           = (*CacheAware)(nil)
	_ BackendForgetter = (*CacheAware)(nil)
)

// NewCacheAware returns the cache_aware policy. idx is the prefix index (nil: a
// LocalPrefixIndex of cfg.LocalIndexBlocks and cfg.PrefixTTL); rnd breaks ties and drives
// least_load (nil: math/rand/v2); m receives the decision metrics (nil: not exported).
func NewCacheAware(cfg CacheAwareConfig, idx PrefixIndex, rnd Rand, m *PolicyMetrics) (*CacheAware, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if idx == nil {
		idx = NewLocalPrefixIndex(cfg.LocalIndexBlocks, cfg.PrefixTTL, nil)
	}
	p := &CacheAware{cfg: cfg, idx: idx, least: NewLeastLoad(rnd), pc: m.forPolicy(PolicyCacheAware),
		hits: map[string]*hitRate{}}
	p.bufs.New = func() any { b := make([]uint64, 0, cfg.MaxBlocks); return &b }
	return p, nil
}

// Name implements Policy.
func (*CacheAware) Name() string { return PolicyCacheAware }

// Index returns the prefix index in use.
func (p *CacheAware) Index() PrefixIndex { return p.idx }

// Choose implements Policy.
func (p *CacheAware) Choose(ctx context.Context, req *Request, cands []Candidate) (Choice, error) {
	bc := blockCharsFor(p.cfg.BlockChars, cands)
	bufp := p.bufs.Get().(*[]uint64)
	defer p.bufs.Put(bufp)
	hashes := HashPrompt((*bufp)[:0], PrefixSeed(req.Model, req.CacheSalt, req.LoRA), req.Prompt, bc, p.cfg.MaxBlocks)
	*bufp = hashes
	if len(hashes) == 0 {
		ch, err := p.least.Choose(ctx, req, cands)
		if err == nil {
			p.pc.decided(ReasonFallback)
		}
		return ch, err
	}
	matches := p.idx.Lookup(ctx, hashes)
	best, common := 0, math.MaxInt
	for _, c := range cands {
		m := matches[c.Backend.ID()]
		best, common = max(best, m), min(common, m)
	}
	var idx int
	var reason string
	if best == common {
		idx = coldPlace(hashes[min(common, len(hashes)-1)], cands, p.cfg.LoadFactor)
		reason = ReasonCold
	} else {
		idx, reason = p.warm(ctx, req, cands, matches, best, hashes[0])
	}
	chosen := cands[idx].Backend.ID()
	matched := matches[chosen]
	p.idx.Record(chosen, hashes[:RecordDepth(matched, len(hashes), p.cfg.RecordAhead, p.cfg.FirstRecordBlocks)])

	total := promptBlocks(req.Prompt, bc)
	hit := float64(matched) / float64(total)
	p.pc.decided(reason)
	p.pc.predictedHit.Observe(hit)
	uncached := max(req.PromptTokens()-matched*bc/charsPerToken, 1)
	p.observeHit(chosen, matched*bc, len(req.Prompt), uncached)
	return Choice{Index: idx, UncachedTokens: uncached}, nil
}

// warm chooses for a request some backend holds more of than another. Among the holders
// of the longest match, in rendezvous order of the chain's first block (a fixed order, the
// same on every replica, that puts first the backend a cold prompt with nothing in common
// was hashed to), the first that may keep it wins: pressure under 1, or within LoadFactor
// of the candidates' mean pressure. Preferring a fixed holder instead of the least loaded
// one keeps a prefix on one backend until it is needed elsewhere, so copies made by a
// release do not spread every prefix over every backend. When no holder may, the request
// goes to least_load.
func (p *CacheAware) warm(ctx context.Context, req *Request, cands []Candidate, matches map[string]int, best int, root uint64) (int, string) {
	tokens := p.recentUncached(req.PromptTokens())
	pr := make([]float64, len(cands))
	mean := 0.0
	for i, c := range cands {
		pr[i] = p.pressure(c, tokens)
		mean += pr[i] / float64(len(cands))
	}
	sticky, score := -1, math.Inf(-1)
	for i, c := range cands {
		if matches[c.Backend.ID()] != best || !(pr[i] < 1 || pr[i] <= p.cfg.LoadFactor*mean+loadEpsilon) {
			continue
		}
		if s := hrwScore(root, c.Backend.ID(), capOf(c)); s > score {
			sticky, score = i, s
		}
	}
	if sticky >= 0 {
		return sticky, ReasonAffinity
	}
	ch, _ := p.least.Choose(ctx, req, cands) // least_load never fails
	return ch.Index, ReasonSaturation
}

// coldPlace places a request no backend has an edge on: consistent hashing with bounded
// load over the backends with headroom, those under LeastLoadThreshold or within one
// request of the least loaded. Below half load the key decides (least_load would choose
// at random there anyway), so replicas agree and later requests of the same prefix follow;
// under a burst a cold request has no cache to gain and goes where least_load would.
//
// Candidates marked Crowded (prefill spreading) are passed over while another is not.
func coldPlace(key uint64, all []Candidate, factor float64) int {
	cands, index := uncrowded(all)
	return original(index, coldPlaceAmong(key, cands, factor))
}

func coldPlaceAmong(key uint64, cands []Candidate, factor float64) int {
	least := math.Inf(1)
	for _, c := range cands {
		least = min(least, c.Load)
	}
	idx, _ := boundedHash(key, cands, factor, func(c Candidate) bool {
		return c.Load < LeastLoadThreshold || c.Load <= least+1/float64(capOf(c))+loadEpsilon
	})
	return idx
}

// pressure is how saturated a candidate is, in budgets: max(load/SaturationLoad,
// queue/QueueBudget). queue is the backend's uncached prompt tokens in flight over
// PrefillTokensPerSecond. Candidate.InFlightTokens counts this replica's requests only, so
// the other replicas' requests are counted at this replica's average per request there
// (or at fallbackTokens each, the recent average over all picks, when this replica has
// none in flight there).
func (p *CacheAware) pressure(c Candidate, fallbackTokens int) float64 {
	tokens := float64(c.InFlightTokens)
	if others := c.InFlight - c.OwnInFlight; others > 0 {
		avg := float64(fallbackTokens)
		if c.OwnInFlight > 0 {
			avg = float64(c.InFlightTokens) / float64(c.OwnInFlight)
		}
		tokens += float64(others) * avg
	}
	queue := time.Duration(tokens / p.cfg.PrefillTokensPerSecond * float64(time.Second))
	return max(c.Load/p.cfg.SaturationLoad, float64(queue)/float64(p.cfg.QueueBudget))
}

// BackendRemoved implements BackendForgetter: the backend's ownerships and predicted hit
// rate are dropped.
func (p *CacheAware) BackendRemoved(id string) {
	if f, ok := p.idx.(prefixForgetter); ok {
		f.Forget(id)
	}
	p.mu.Lock()
	delete(p.hits, id)
	p.mu.Unlock()
}

// hitRateDecay weights the predicted hit rate toward the last ~50 picks of a backend.
const hitRateDecay = 0.98

// hitRate is a decayed ratio of predicted cached characters over prompt characters.
type hitRate struct {
	hit, total float64
}

// recentUncached is the decayed mean of the uncached tokens of this replica's recent
// picks, or def before the first.
func (p *CacheAware) recentUncached(def int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.uncachedAvg == 0 {
		return def
	}
	return int(p.uncachedAvg)
}

// observeHit accounts one pick: predicted cached characters of the prompt on backend, and
// the uncached tokens it leaves to prefill.
func (p *CacheAware) observeHit(backend string, hitChars, totalChars, uncached int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.uncachedAvg == 0 {
		p.uncachedAvg = float64(uncached)
	} else {
		p.uncachedAvg = p.uncachedAvg*hitRateDecay + float64(uncached)*(1-hitRateDecay)
	}
	h := p.hits[backend]
	if h == nil {
		h = &hitRate{}
		p.hits[backend] = h
	}
	h.hit = h.hit*hitRateDecay + float64(min(hitChars, totalChars))
	h.total = h.total*hitRateDecay + float64(totalChars)
}

// PredictedHitRate is the predicted prefix-cache hit rate of the requests this replica
// recently sent to backend: cached prompt characters over prompt characters, decayed over
// about the last 50 picks, comparable to the engine's Δhits/Δqueries. ok is false before
// the first pick.
func (p *CacheAware) PredictedHitRate(backend string) (rate float64, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	h := p.hits[backend]
	if h == nil || h.total == 0 {
		return 0, false
	}
	return h.hit / h.total, true
}
