package faults

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// binary is the vllm-proxy executable the tests run. TestMain sets it once, before any
// test starts, and nothing writes it afterwards.
var binary string

// TestMain builds the vllm-proxy binary once into a temporary directory (or takes a
// prebuilt one from VLLM_PXY_BIN), runs the tests and checks no goroutine leaked.
func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	flag.Parse()
	// The cases mostly wait (lease expiry, header timeouts, outages) rather than
	// compute, so more of them may overlap than the default -parallel (GOMAXPROCS)
	// allows; an explicit -parallel wins.
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if !explicit {
		_ = flag.Set("test.parallel", "6")
	}
	switch {
	case fuzzing():
		// Fuzz targets run in-process; fuzz workers re-run TestMain, so no build.
	case os.Getenv("VLLM_PXY_BIN") != "":
		binary = os.Getenv("VLLM_PXY_BIN")
	default:
		dir, err := os.MkdirTemp("", "vllm-proxy-faults-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "faults: temp dir:", err)
			return 1
		}
		defer os.RemoveAll(dir)
		// World-readable, so a proxy run as an unprivileged user (filesdir_test.go) can
		// execute it.
		if err := os.Chmod(dir, 0o755); err != nil {
			fmt.Fprintln(os.Stderr, "faults: chmod:", err)
			return 1
		}
		binary = filepath.Join(dir, "vllm-proxy")
		start := time.Now()
		cmd := exec.Command("go", "build", "-o", binary, "github.com/vllm-proxy/vllm-proxy/cmd/vllm-proxy")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "faults: building vllm-proxy:", err)
			return 1
		}
		if testing.Verbose() {
			fmt.Fprintf(os.Stderr, "faults: built %s in %s\n", binary, time.Since(start).Round(time.Millisecond))
		}
	}
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "faults: goroutines leaked:", err)
			return 1
		}
	}
	return code
}

// fuzzing reports whether this process runs a fuzz target (-test.fuzz) or is one of
// its workers.
func fuzzing() bool {
	for _, name := range []string{"test.fuzz", "test.fuzzworker"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" && f.Value.String() != "false" {
			return true
		}
	}
	return false
}

// long reports whether the long form runs (VLLM_PXY_FAULTS=long, `make faults`).
func long() bool { return os.Getenv("VLLM_PXY_FAULTS") == "long" }

// scale returns short in the short form and long in the long form.
func scale[T any](short, longV T) T {
	if long() {
		return longV
	}
	return short
}
