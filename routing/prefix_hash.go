package routing

import (
	"encoding/binary"

	"github.com/cespare/xxhash/v2"
)

// Prefix hashing turns a canonical prompt into a chain of block hashes, the keys of prefix
// ownership. Block i's hash covers the whole prompt up to the end of block i: it is
// xxhash64 of the block's bytes seeded with block i−1's hash, and block 0 is seeded with a
// hash of (model, cache_salt, LoRA). So two prompts share hash i exactly when they share
// the first i+1 blocks and the scope, a changed block invalidates every hash after it, and
// a different cache_salt, model or adapter shares nothing (vLLM keys its cache the same
// way). Only full blocks are hashed: vLLM caches only full blocks.

// Defaults for prefix hashing.
const (
	// DefaultBlockChars is the block length in characters when no backend publishes
	// vllm:cache_config_info: vLLM's default 16-token block at about 4 characters a token.
	DefaultBlockChars = 16 * charsPerToken
	// DefaultMaxBlocks caps the hash chain (GAIE's maxPrefixBlocksToMatch): 256 blocks of
	// 64 characters cover the first 16 KiB of a prompt.
	DefaultMaxBlocks = 256
)

// PrefixSeed is the root of a chain: it scopes block hashes to a model, a cache_salt and
// a LoRA adapter, so that requests vLLM would not share cache blocks between never match.
func PrefixSeed(model, cacheSalt, lora string) uint64 {
	var d xxhash.Digest
	d.Reset()
	var n [8]byte
	// Length-prefix each part so ("ab","c") and ("a","bc") differ.
	for _, s := range [...]string{model, cacheSalt, lora} {
		binary.LittleEndian.PutUint64(n[:], uint64(len(s)))
		_, _ = d.Write(n[:])
		_, _ = d.WriteString(s)
	}
	return d.Sum64()
}

// HashPrompt appends to dst the chain hashes of prompt's full blocks of blockChars bytes,
// at most maxBlocks of them, starting from seed (see PrefixSeed), and returns the
// extended slice. A blockChars or maxBlocks below 1 yields no hashes. It does not allocate
// when dst has room.
func HashPrompt(dst []uint64, seed uint64, prompt string, blockChars, maxBlocks int) []uint64 {
	if blockChars < 1 || maxBlocks < 1 {
		return dst
	}
	n := min(len(prompt)/blockChars, maxBlocks)
	var d xxhash.Digest
	prev := seed
	for i := range n {
		d.ResetWithSeed(prev)
		_, _ = d.WriteString(prompt[i*blockChars : (i+1)*blockChars])
		prev = d.Sum64()
		dst = append(dst, prev)
	}
	return dst
}

// promptBlocks is the number of blocks prompt spans, the last one possibly partial: the
// denominator of the predicted hit.
func promptBlocks(prompt string, blockChars int) int {
	return (len(prompt) + blockChars - 1) / blockChars
}

// blockCharsFor chooses the block length for a request: the configured one, else four
// characters per token of the smallest block_size a candidate publishes (so a block never
// spans more than one engine block), else DefaultBlockChars. Every replica sees the same
// scrapes, so they agree.
func blockCharsFor(configured int, cands []Candidate) int {
	if configured > 0 {
		return configured
	}
	bs := 0
	for _, c := range cands {
		if c.BlockSize > 0 && (bs == 0 || c.BlockSize < bs) {
			bs = c.BlockSize
		}
	}
	if bs == 0 {
		return DefaultBlockChars
	}
	return bs * charsPerToken
}
