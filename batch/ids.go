package batch

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
)

const idAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// newFileID returns "file-" and 24 random alphanumerics, as OpenAI's ids look.
func newFileID() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = idAlphabet[int(b[i])%len(idAlphabet)]
	}
	return "file-" + string(b[:])
}

// newBatchID returns "batch_" and 32 random hex digits.
func newBatchID() string { return "batch_" + randHex(16) }

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// lineRequestID is the stable "batch_req_…" id of a batch line: a re-executed line keeps it.
func lineRequestID(batchID string, line int64) string {
	h := sha256.Sum256([]byte(batchID + "#" + strconv.FormatInt(line, 10)))
	return "batch_req_" + hex.EncodeToString(h[:12])
}

// resultFileID is the stable id of a batch's output ("output") or error ("error") file, so
// a finalization re-run after a crash overwrites the same file instead of leaking one.
func resultFileID(batchID, kind string) string {
	h := sha256.Sum256([]byte(batchID + "#" + kind))
	b := h[:24]
	out := make([]byte, len(b))
	for i := range b {
		out[i] = idAlphabet[int(b[i])%len(idAlphabet)]
	}
	return "file-" + string(out)
}
