package sim

import (
	"encoding/binary"
	"math"
)

// The simulator has no tokenizer. A token is 4 bytes of the canonical prompt text (the
// last one may be shorter), so a text of n bytes has ceil(n/4) tokens, and a token's id
// is its bytes read as a little-endian uint32. This keeps /tokenize and /detokenize
// inverse to each other and makes prefix-cache blocks byte ranges of 4*block_size bytes.
const bytesPerToken = 4

// countTokens returns ceil(n/4) for a text of n bytes.
func countTokens(n int) int { return (n + bytesPerToken - 1) / bytesPerToken }

// tokenIDs appends the ids of text's tokens to dst.
func tokenIDs(dst []int64, text string) []int64 {
	for i := 0; i < len(text); i += bytesPerToken {
		var b [4]byte
		copy(b[:], text[i:min(i+bytesPerToken, len(text))])
		dst = append(dst, int64(binary.LittleEndian.Uint32(b[:])))
	}
	return dst
}

// appendDetokenized appends the text of the token ids to dst. Ids outside uint32 are
// rendered as nothing; trailing zero bytes of a token are dropped.
func appendDetokenized(dst []byte, ids []int64) []byte {
	for _, id := range ids {
		if id < 0 || id > math.MaxUint32 {
			continue
		}
		var b [4]byte
		binary.LittleEndian.PutUint32(b[:], uint32(id))
		n := 4
		for n > 0 && b[n-1] == 0 {
			n--
		}
		dst = append(dst, b[:n]...)
	}
	return dst
}

// vocab holds the 4-byte output tokens. Output text is drawn from it so that every
// generated token is exactly one simulated token.
var vocab = [...]string{
	" the", " sim", " lat", " one", " two", " and", " for", " was", " are", " not",
	" fox", " dog", " run", " map", " key", " set", " get", " new", " old", " big",
	" red", " sky", " sea", " sun", " day", " way", " use", " can", " may", " all",
	" any", " our",
}

// outputSeed derives the seed of a request's output text from its canonical prompt, so the
// same request always gets the same answer.
func outputSeed(prompt []byte) uint64 { return fnv64(fnvOffset, prompt) }

// appendOutput appends output tokens [from, to) of the sequence seeded by seed.
func appendOutput(dst []byte, seed uint64, from, to int) []byte {
	for k := from; k < to; k++ {
		dst = append(dst, vocab[splitmix(seed+uint64(k))%uint64(len(vocab))]...) // #nosec G115 -- k is a token index (>= 0); the sum is a hash input, wrap-around is intended
	}
	return dst
}

// outputToken returns output token k of the sequence seeded by seed.
func outputToken(seed uint64, k int) string {
	return vocab[splitmix(seed+uint64(k))%uint64(len(vocab))] // #nosec G115 -- k is a token index (>= 0); the sum is a hash input, wrap-around is intended
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// fnv64 continues an FNV-1a hash h over b.
func fnv64(h uint64, b []byte) uint64 {
	for _, c := range b {
		h ^= uint64(c)
		h *= fnvPrime
	}
	return h
}

// fnv64s is fnv64 over a string.
func fnv64s(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}

// mixHash folds v into h; used to chain a block's hash onto its parent's.
func mixHash(h, v uint64) uint64 {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	return fnv64(h, b[:])
}

// splitmix is the SplitMix64 finalizer: a fast, well-mixed hash of x.
func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// embedding fills v with a deterministic unit vector derived from text.
func embedding(v []float32, text []byte) {
	seed := fnv64(fnvOffset, text)
	var norm float64
	for i := range v {
		// Uniform in [-1, 1).
		x := float64(splitmix(seed+uint64(i))>>11)/float64(1<<53)*2 - 1
		v[i] = float32(x)
		norm += x * x
	}
	if norm == 0 {
		return
	}
	inv := 1 / math.Sqrt(norm)
	for i := range v {
		v[i] = float32(float64(v[i]) * inv)
	}
}

// blockHashes appends the chained hashes of the full blocks of text (blockBytes bytes
// each) to dst. The chain starts from root, which covers the cache salt and the LoRA
// adapter, so a block matches only when every block before it matches too.
func blockHashes(dst []uint64, root uint64, text []byte, blockBytes int) []uint64 {
	h := root
	for i := 0; i+blockBytes <= len(text); i += blockBytes {
		h = fnv64(mixHash(fnvOffset, h), text[i:i+blockBytes])
		dst = append(dst, h)
	}
	return dst
}

// chainRoot is the hash every block chain of a request starts from.
func chainRoot(salt, lora string) uint64 {
	h := fnv64s(fnvOffset, salt)
	h = fnv64s(mixHash(h, uint64(len(salt))), lora)
	return h
}
