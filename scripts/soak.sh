#!/usr/bin/env bash
# soak.sh holds a fixed mixed load (interactive, streaming and back-to-back batches) on
# one `vllm-proxy serve` for N minutes and asserts goroutines, open fds and RSS stay
# flat after warm-up: `make soak`. See TestSoak in faults/soak_test.go.
#
#   scripts/soak.sh        # 10 minutes
#   scripts/soak.sh 60     # an hour
#
# The samples and a RESULT line with the figures are printed (go test -v).
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-${SOAK_MINUTES:-10}}
timeout=$(awk -v m="$minutes" 'BEGIN { printf "%dm", m + 10 }')
VLLM_PXY_SOAK="$minutes" exec go test -count=1 -run '^TestSoak$' -timeout "$timeout" -v ./faults/
