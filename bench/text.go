package bench

import "math/rand/v2"

// CharsPerToken is the token estimate used everywhere in bench: a token is four characters.
const CharsPerToken = 4

// BlockTokens is the prefix-cache block size, in tokens, used by the oracle hit fraction.
const BlockTokens = 16

// BlockChars is BlockTokens expressed in characters.
const BlockChars = BlockTokens * CharsPerToken

// Tokens estimates the token count of s: ceil(len(s)/4).
func Tokens(s string) int { return (len(s) + CharsPerToken - 1) / CharsPerToken }

// newRand returns a generator seeded by seed and the given stream numbers, so that
// independent parts of a workload (request i, group g) draw independent sequences.
func newRand(seed uint64, stream ...uint64) *rand.Rand {
	h := mix(seed ^ 0x9e3779b97f4a7c15)
	for _, s := range stream {
		h = mix(h ^ mix(s+0x632be59bd9b4e019))
	}
	return rand.New(rand.NewPCG(h, mix(h+0xbf58476d1ce4e5b9))) // #nosec G404 -- reproducible workload text from a seed, not a secret
}

// mix is the splitmix64 finaliser.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// appendWords appends n tokens of pseudo-words to b: each token is three lowercase letters
// and a space, so the text is exactly 4n characters and needs no JSON escaping.
func appendWords(b []byte, r *rand.Rand, n int) []byte {
	for n > 0 {
		v := r.Uint64()
		// 64 bits give four 3-letter words (each letter uses 5 bits, 15 bits per word).
		for k := 0; k < 4 && n > 0; k++ {
			w := v & 0x7fff
			v >>= 16
			b = append(b, 'a'+byte((w&31)%26), 'a'+byte(((w>>5)&31)%26), 'a'+byte(((w>>10)&31)%26), ' ')
			n--
		}
	}
	return b
}

// words returns n tokens of pseudo-words as a string.
func words(r *rand.Rand, n int) string {
	return string(appendWords(make([]byte, 0, n*CharsPerToken), r, n))
}
