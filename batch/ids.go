package batch

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"sync"
	"time"
)

const idAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// idGen makes ids that sort in creation order: lists order by creation millisecond, then
// by id, so ids created in one millisecond must compare in creation order too. Safe for
// concurrent use; one per API.
type idGen struct {
	mu   sync.Mutex
	last int64
}

// timeHex is 16 hex digits of a strictly increasing nanosecond clock.
func (g *idGen) timeHex(now time.Time) string {
	g.mu.Lock()
	n := max(now.UnixNano(), g.last+1)
	g.last = n
	g.mu.Unlock()
	return fmt.Sprintf("%016x", n)
}

// file returns "file-" and 28 hex digits (time-ordered, then random).
func (g *idGen) file(now time.Time) string { return "file-" + g.timeHex(now) + randHex(6) }

// batch returns "batch_" and 32 hex digits (time-ordered, then random).
func (g *idGen) batch(now time.Time) string { return "batch_" + g.timeHex(now) + randHex(8) }

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
