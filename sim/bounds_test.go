package sim

import (
	"math"
	"strings"
	"testing"
)

// TestValidateMaxModelLenInt32 checks that Validate rejects a context length whose token
// counts would not fit the int32 atomics that publish them.
func TestValidateMaxModelLenInt32(t *testing.T) {
	if math.MaxInt == math.MaxInt32 {
		t.Skip("int is 32 bits: no int can exceed math.MaxInt32")
	}
	c := Config{Model: "m1", MaxModelLen: math.MaxInt32 + 1, BlockSize: 16, NumGPUBlocks: math.MaxInt32}
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "max-model-len must be at most") {
		t.Fatalf("Validate() = %v, want the max-model-len bound", err)
	}
	c.MaxModelLen = math.MaxInt32
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate() with max-model-len %d = %v, want nil", c.MaxModelLen, err)
	}
}

func TestTokens32Clamps(t *testing.T) {
	for _, tc := range []struct {
		in   int
		want int32
	}{{0, 0}, {7, 7}, {-1, 0}, {math.MaxInt32, math.MaxInt32}, {math.MaxInt, math.MaxInt32}} {
		if got := tokens32(tc.in); got != tc.want {
			t.Errorf("tokens32(%d) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

// TestPromWriterOddLabels checks that a trailing label name without a value is dropped
// rather than indexing past the slice.
func TestPromWriterOddLabels(t *testing.T) {
	var p promWriter
	p.sample("x_total", 3, "a", "1", "dangling")
	if got, want := string(p.b), "x_total{a=\"1\"} 3\n"; got != want {
		t.Fatalf("sample wrote %q, want %q", got, want)
	}
}
