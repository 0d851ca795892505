package batch

import (
	"errors"
	"io"
	"unicode/utf8"
)

// errNotUTF8 is returned by utf8Reader at the first invalid byte sequence.
var errNotUTF8 = errors.New("content is not valid UTF-8")

// utf8Reader passes bytes through and fails with errNotUTF8 as soon as they stop being
// valid UTF-8, keeping at most one incomplete rune between reads.
type utf8Reader struct {
	r     io.Reader
	carry [utf8.UTFMax]byte
	nc    int
}

func (u *utf8Reader) Read(p []byte) (int, error) {
	n, err := u.r.Read(p)
	data := p[:n]
	i := 0
	for u.nc > 0 && i < len(data) { // finish the rune split by the previous read
		u.carry[u.nc] = data[i]
		u.nc++
		i++
		if utf8.FullRune(u.carry[:u.nc]) {
			if !utf8.Valid(u.carry[:u.nc]) {
				return 0, errNotUTF8
			}
			u.nc = 0
		}
	}
	rest := data[i:]
	// Keep an incomplete rune at the end for the next read.
	for j := len(rest) - 1; j >= 0 && j >= len(rest)-utf8.UTFMax; j-- {
		if utf8.RuneStart(rest[j]) {
			if !utf8.FullRune(rest[j:]) {
				u.nc = copy(u.carry[:], rest[j:])
				rest = rest[:j]
			}
			break
		}
	}
	if !utf8.Valid(rest) {
		return 0, errNotUTF8
	}
	if errors.Is(err, io.EOF) && u.nc > 0 {
		return 0, errNotUTF8
	}
	return n, err
}
