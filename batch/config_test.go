package batch

import (
	"strings"
	"testing"
	"time"
)

// TestConfigDefaults: the flush size keeps a replica's finished-but-uncommitted lines
// (what a crash re-executes besides those in flight) within one chunk.
func TestConfigDefaults(t *testing.T) {
	for _, c := range []Config{{}, {MaxConcurrentRequests: 256}, {MaxConcurrentRequests: 1000, ChunkLines: 16}, {ChunkLines: 1}} {
		d := c.withDefaults()
		if d.FlushLines < 1 || d.FlushLines*d.MaxChunks > d.ChunkLines && d.FlushLines > 1 {
			t.Errorf("%+v: flush %d lines × %d chunks > chunk of %d", c, d.FlushLines, d.MaxChunks, d.ChunkLines)
		}
	}
	d := Config{}.withDefaults()
	if d.FlushLines != 32 || d.MaxChunks != 2 || d.ChunkLines != 64 || d.LeaseTTL != 15*time.Second || d.ReplicaID == "" {
		t.Fatalf("defaults %+v", d)
	}
}

// TestConfigValidate reports every problem at once.
func TestConfigValidate(t *testing.T) {
	err := Config{MaxLines: -1, ChunkLines: -2, LeaseTTL: time.Second, PollInterval: time.Second, CompletionWindow: time.Millisecond}.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"max_lines", "chunk_lines", "lease_ttl", "completion_window"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	if err := (Config{}).Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
}
