package routing

import (
	"fmt"
	"time"
)

// Defaults of CacheAwareConfig.
const (
	// DefaultPrefillTokensPerSecond turns uncached tokens in flight into queueing time:
	// the prefill throughput of one backend (the simulator's default; a 7–8B model on
	// one modern GPU prefills about this fast).
	DefaultPrefillTokensPerSecond = 10_000.0
	// DefaultQueueBudget is the queueing a backend may carry and still attract every
	// request whose prefix it holds: 2 s, i.e. 20,000 uncached tokens at the default
	// throughput.
	DefaultQueueBudget = 2 * time.Second
	// DefaultSaturationLoad is the load score counted as one budget: a backend at its
	// configured capacity.
	DefaultSaturationLoad = 1.0
	// DefaultRecordAhead is how many blocks past twice its matched prefix a pick that
	// matched records: 16 blocks (1 KiB at the default block length).
	DefaultRecordAhead = 16
	// DefaultFirstRecordBlocks is how many blocks a pick records of a prompt the chosen
	// backend matched nothing of: one.
	DefaultFirstRecordBlocks = 1
)

// CacheAwareConfig tunes the cache_aware policy. The zero value of every field means the
// default named on it. It is a plain value.
type CacheAwareConfig struct {
	// BlockChars is the length in characters of one prefix block. Default 0: four
	// characters per token of the smallest block_size a candidate publishes in
	// vllm:cache_config_info, else DefaultBlockChars (64, vLLM's 16-token block).
	BlockChars int
	// MaxBlocks caps the block chain hashed per request. Default 256 (DefaultMaxBlocks).
	MaxBlocks int
	// PrefillTokensPerSecond is the assumed prefill throughput of one backend; it turns a
	// backend's uncached prompt tokens in flight into an estimated queueing time.
	// Default 10000.
	PrefillTokensPerSecond float64
	// QueueBudget is how much estimated queueing (uncached tokens in flight divided by
	// PrefillTokensPerSecond) counts as one budget of pressure: below one budget a backend
	// always keeps the prefixes it holds. Default 2s.
	QueueBudget time.Duration
	// SaturationLoad is the load score that counts as one budget of pressure. Default
	// 1.0 (a backend at its configured capacity).
	SaturationLoad float64
	// LoadFactor is the bounded-load factor. Cold placement: a backend takes a cold
	// request only while its load stays within LoadFactor times its capacity-weighted
	// share. Affinity past one budget of pressure: a holder keeps a request only while its
	// pressure stays within LoadFactor times the candidates' mean pressure. Default 1.25.
	LoadFactor float64
	// LocalIndexBlocks bounds the in-process prefix index used when the Router has no
	// shared PrefixIndex (WithPrefixIndex). Default 200000 blocks.
	LocalIndexBlocks int
	// PrefixTTL is how long the in-process index believes a recorded ownership. Default
	// 5m. (The shared index has its own TTL: state.Config.PrefixTTL.)
	PrefixTTL time.Duration
	// RecordAhead and FirstRecordBlocks bound what a pick records (see RecordDepth): a
	// pick that matched m > 0 blocks of an n-block chain records the chosen backend as
	// holding the first min(n, 2·m + RecordAhead); a pick that matched nothing records
	// FirstRecordBlocks blocks, enough for every replica to send a repeat to the same
	// backend. So a one-off prompt costs one block of index (one Redis key) instead of its
	// whole chain, and each reuse doubles the recorded depth. Every replica records the
	// same depths, so they agree on which backend holds more. RecordAhead default 16
	// (DefaultRecordAhead), -1 records whole chains (the old behaviour, FirstRecordBlocks
	// then unused); FirstRecordBlocks default 1 (DefaultFirstRecordBlocks), -1 records
	// RecordAhead blocks of a new prompt too.
	RecordAhead       int
	FirstRecordBlocks int
}

// Validate reports every problem in c (zero values are valid: they mean the default).
// The error wraps ErrInvalidConfig.
func (c CacheAwareConfig) Validate() error {
	return joinConfigProblems(c.problems())
}

func (c CacheAwareConfig) problems() []string {
	var probs []string
	add := func(format string, args ...any) { probs = append(probs, fmt.Sprintf("cache_aware: "+format, args...)) }
	if c.BlockChars < 0 {
		add("block_chars must not be negative (got %d)", c.BlockChars)
	}
	if c.MaxBlocks < 0 {
		add("max_blocks must not be negative (got %d)", c.MaxBlocks)
	}
	if !(c.PrefillTokensPerSecond >= 0) {
		add("prefill_tokens_per_second must not be negative (got %v)", c.PrefillTokensPerSecond)
	}
	if c.QueueBudget < 0 {
		add("queue_budget must not be negative (got %s)", c.QueueBudget)
	}
	if !(c.SaturationLoad >= 0) {
		add("saturation_load must not be negative (got %v)", c.SaturationLoad)
	}
	if c.LoadFactor != 0 && !(c.LoadFactor >= 1) {
		add("load_factor must be at least 1 (got %v)", c.LoadFactor)
	}
	if c.LocalIndexBlocks < 0 {
		add("local_index_blocks must not be negative (got %d)", c.LocalIndexBlocks)
	}
	if c.PrefixTTL < 0 {
		add("prefix_ttl must not be negative (got %s)", c.PrefixTTL)
	}
	if c.RecordAhead < -1 {
		add("record_ahead must be -1 (whole chain), 0 (default) or positive (got %d)", c.RecordAhead)
	}
	if c.FirstRecordBlocks < -1 {
		add("first_record_blocks must be -1 (record_ahead), 0 (default) or positive (got %d)", c.FirstRecordBlocks)
	}
	return probs
}

func (c CacheAwareConfig) withDefaults() CacheAwareConfig {
	if c.MaxBlocks == 0 {
		c.MaxBlocks = DefaultMaxBlocks
	}
	if c.PrefillTokensPerSecond == 0 {
		c.PrefillTokensPerSecond = DefaultPrefillTokensPerSecond
	}
	if c.QueueBudget == 0 {
		c.QueueBudget = DefaultQueueBudget
	}
	if c.SaturationLoad == 0 {
		c.SaturationLoad = DefaultSaturationLoad
	}
	if c.LoadFactor == 0 {
		c.LoadFactor = DefaultLoadFactor
	}
	if c.LocalIndexBlocks == 0 {
		c.LocalIndexBlocks = DefaultLocalIndexBlocks
	}
	if c.PrefixTTL == 0 {
		c.PrefixTTL = DefaultPrefixTTL
	}
	if c.RecordAhead == 0 {
		c.RecordAhead = DefaultRecordAhead
	}
	if c.FirstRecordBlocks == 0 {
		c.FirstRecordBlocks = DefaultFirstRecordBlocks
	}
	return c
}

// RecordDepth is how many leading blocks of an n-block chain a pick records for a backend
// that matched m of them: min(n, 2·m + ahead) when m > 0, min(n, first) when m is 0
// (min(n, ahead) when first < 0), and n when ahead < 0. The index then grows with what
// is reused, not with what is sent: a prompt seen once records first blocks; a request
// sharing the recorded part records twice its match plus ahead, so a prefix shared by
// k+1 requests is recorded at least ahead·(2^k − 1) deep. Affinity needs only the first
// blocks in which prompts differ; the recorded depth is a lower bound of what the
// backend holds, so matches (and the predicted hit) err on the short side.
func RecordDepth(m, n, ahead, first int) int {
	switch {
	case ahead < 0:
		return n
	case m > 0:
		return min(n, 2*m+ahead)
	case first < 0:
		return min(n, ahead)
	}
	return min(n, first)
}

// CHWBLConfig tunes the chwbl baseline policy (KubeAI's PrefixHash). The zero value of
// every field means the default named on it.
type CHWBLConfig struct {
	// KeyChars is how many leading characters of the first user message form the hash
	// key. Default 100 (KubeAI's prefixCharLength).
	KeyChars int
	// LoadFactor bounds placement as in CacheAwareConfig.LoadFactor. Default 1.25.
	LoadFactor float64
}

// DefaultCHWBLKeyChars is KubeAI's default key length.
const DefaultCHWBLKeyChars = 100

// Validate reports every problem in c. The error wraps ErrInvalidConfig.
func (c CHWBLConfig) Validate() error { return joinConfigProblems(c.problems()) }

func (c CHWBLConfig) problems() []string {
	var probs []string
	if c.KeyChars < 0 {
		probs = append(probs, fmt.Sprintf("chwbl: key_chars must not be negative (got %d)", c.KeyChars))
	}
	if c.LoadFactor != 0 && !(c.LoadFactor >= 1) {
		probs = append(probs, fmt.Sprintf("chwbl: load_factor must be at least 1 (got %v)", c.LoadFactor))
	}
	return probs
}

func (c CHWBLConfig) withDefaults() CHWBLConfig {
	if c.KeyChars == 0 {
		c.KeyChars = DefaultCHWBLKeyChars
	}
	if c.LoadFactor == 0 {
		c.LoadFactor = DefaultLoadFactor
	}
	return c
}

// joinConfigProblems wraps problems into one ErrInvalidConfig error, or returns nil.
func joinConfigProblems(probs []string) error {
	if len(probs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrInvalidConfig, joinProblems(probs))
}
