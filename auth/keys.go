package auth

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
)

// hashPrefix marks a key given as the hex SHA-256 of the real key.
const hashPrefix = "sha256:"

// maxKeyLine bounds one line of a key file.
const maxKeyLine = 4 << 10

// ErrBadKey is wrapped by the errors of ParseKeys and ParseKeyList for a malformed entry.
// The error names the line or position, never the key.
var ErrBadKey = errors.New("malformed api key")

// ParseKeys reads a key file: one key per line, either plain or "sha256:<64 hex digits>".
// Surrounding white space is trimmed; blank lines and lines starting with '#' are
// skipped. A key may not contain white space, control characters or commas. It returns
// the keys in file order.
func ParseKeys(r io.Reader) ([]string, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 256), maxKeyLine)
	var keys []string
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, err := normalizeKey(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		keys = append(keys, k)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading api keys: %w", err)
	}
	return keys, nil
}

// ParseKeyList splits a comma-separated list of keys (VLLM_PXY_API_KEYS); empty entries
// are skipped. Entries follow the rules of ParseKeys.
func ParseKeyList(s string) ([]string, error) {
	var keys []string
	for i, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		k, err := normalizeKey(f)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", i+1, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// normalizeKey checks one entry and lower-cases the hex of a hashed one.
func normalizeKey(k string) (string, error) {
	for _, r := range k {
		if unicode.IsSpace(r) || unicode.IsControl(r) || r == ',' || r == unicode.ReplacementChar {
			return "", fmt.Errorf("%w: white space, control characters and commas are not allowed", ErrBadKey)
		}
	}
	if rest, ok := strings.CutPrefix(k, hashPrefix); ok {
		b, err := hex.DecodeString(rest)
		if err != nil || len(b) != sha256.Size {
			return "", fmt.Errorf("%w: %s must be followed by 64 hex digits", ErrBadKey, hashPrefix)
		}
		return hashPrefix + hex.EncodeToString(b), nil
	}
	return k, nil
}

// digest is the SHA-256 of a key entry: computed for a plain key, decoded for a hashed
// one. Entries must have passed normalizeKey.
func digest(entry string) [sha256.Size]byte {
	var d [sha256.Size]byte
	if rest, ok := strings.CutPrefix(entry, hashPrefix); ok {
		if b, err := hex.DecodeString(rest); err == nil && len(b) == sha256.Size {
			copy(d[:], b)
			return d
		}
	}
	return sha256.Sum256([]byte(entry))
}

// tenantOf names the tenant of a key digest: "t_" and the first 16 hex digits (64 bits)
// of the digest. Unique enough to tell keys apart, useless for recovering a key.
func tenantOf(d [sha256.Size]byte) string { return "t_" + hex.EncodeToString(d[:8]) }

// TenantOf returns the tenant id of a key entry (plain or "sha256:<hex>"), as
// [Tenant] reports it for requests made with that key. Useful to operators and tests.
func TenantOf(entry string) string { return tenantOf(digest(entry)) }
