// Package faults is vllm-proxy's fault-injection, limits and soak suite. It holds no
// production code: everything is in its _test.go files, run by `go test ./faults/`.
//
// TestMain builds the vllm-proxy binary once, so proxy replicas run as real processes
// that a test can SIGKILL. Backends are simulators (package sim, in-process, or
// `vllm-proxy sim` processes where a real crash matters), Redis is a real redis-server
// started by state/statetest. Everything listens on 127.0.0.1 and every test is bounded
// by deadlines.
//
// Each test's doc comment states the expected result, and the test asserts it. The
// figures a test measures (recovery times, errors, lines lost) are logged as lines that
// start with "RESULT"; docs/RELIABILITY.md records them with the commands.
//
// Modes, chosen by environment variables:
//
//	(none)                     short form, part of `make test`
//	VLLM_PXY_FAULTS=long       long form (`make faults`): more load, longer phases, and the
//	                           cases that wait minutes or show a known gap
//	VLLM_PXY_SOAK=N            TestSoak holds a mixed load for N minutes (`make soak`)
//	VLLM_PXY_BIN=path          run this vllm-proxy binary instead of building one
//	VLLM_PXY_FAULTS_NOMOUNT=1  the files-dir case uses RLIMIT_FSIZE and chmod, not tmpfs
//
// Up to 6 cases run at once (they mostly wait) unless -parallel is given. The fuzz
// targets here (FuzzProxyRequest, FuzzCreateBatchBody, FuzzFileIDPath) run in-process
// and need no binary.
package faults
