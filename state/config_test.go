package state_test

import (
	"math"
	"strings"
	"testing"

	"github.com/vllm-proxy/vllm-proxy/state"
)

// TestConfigValidatePrefixCacheBlocksInt32 checks that Validate rejects an ownership cache
// larger than its int32 slot index can address.
func TestConfigValidatePrefixCacheBlocksInt32(t *testing.T) {
	if math.MaxInt == math.MaxInt32 {
		t.Skip("int is 32 bits: no int can exceed math.MaxInt32")
	}
	err := state.Config{PrefixCacheBlocks: math.MaxInt32 + 1}.Validate()
	if err == nil || !strings.Contains(err.Error(), "prefix cache blocks must be at most") {
		t.Fatalf("Validate() = %v, want the prefix cache blocks bound", err)
	}
	if err := (state.Config{PrefixCacheBlocks: math.MaxInt32}).Validate(); err != nil {
		t.Fatalf("Validate() with %d prefix cache blocks = %v, want nil", math.MaxInt32, err)
	}
}
