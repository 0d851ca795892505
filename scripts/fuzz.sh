#!/usr/bin/env bash
# fuzz.sh runs every native Go fuzz target in the module for FUZZTIME each (default 60s),
# one after another: `make fuzz`. Targets are found by grepping for `func FuzzXxx(` in
# _test.go files, so a new target is picked up without editing this script.
#
#   scripts/fuzz.sh                 # every target, 60s each
#   FUZZTIME=10s scripts/fuzz.sh    # shorter
#   scripts/fuzz.sh ./batch/ ./faults/   # only the targets in these packages
#
# A failure leaves the crashing input in <pkg>/testdata/fuzz/<Target>/ (commit it as a
# regression seed once fixed) and makes the script exit 1 after running the rest.
#
# A target that ends with a bare "context deadline exceeded" and writes no failing input
# hit a race in Go's fuzz coordinator at the -fuzztime deadline (golang/go#75804, fixed
# in go1.27): it is reported as a flake, not a failure.
set -uo pipefail
cd "$(dirname "$0")/.."

FUZZTIME=${FUZZTIME:-60s}
MINIMIZE=${FUZZMINIMIZETIME:-50x}
PARALLEL=${FUZZPARALLEL:-}

if [ "$#" -gt 0 ]; then
	dirs=("$@")
else
	mapfile -t dirs < <(grep -rl --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]*\(' . | xargs -n1 dirname | sort -u)
fi

failed=()
flaked=()
total=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for dir in "${dirs[@]}"; do
	dir=${dir%/}
	mapfile -t targets < <(grep -h -o -E '^func Fuzz[A-Za-z0-9_]*\(' "$dir"/*_test.go | sed -E 's/^func (Fuzz[A-Za-z0-9_]*)\(/\1/' | sort -u)
	for t in "${targets[@]}"; do
		total=$((total + 1))
		echo "=== fuzz $dir $t ($FUZZTIME)"
		args=(test -run '^$' -fuzz "^${t}\$" -fuzztime "$FUZZTIME" -fuzzminimizetime "$MINIMIZE")
		if [ -n "$PARALLEL" ]; then
			args+=(-parallel "$PARALLEL")
		fi
		if go "${args[@]}" "./${dir#./}/" 2>&1 | tee "$out"; then
			continue
		fi
		if grep -q 'context deadline exceeded' "$out" && ! grep -q -e 'Failing input written to' -e 'panic:' "$out"; then
			flaked+=("$dir $t")
		else
			failed+=("$dir $t")
		fi
	done
done

echo "=== $total fuzz targets run, ${#failed[@]} failed, ${#flaked[@]} hit the fuzztime deadline race (golang/go#75804)"
if [ "${#flaked[@]}" -gt 0 ]; then
	printf 'FLAKE (no failing input): %s\n' "${flaked[@]}"
fi
if [ "${#failed[@]}" -gt 0 ]; then
	printf 'FAILED: %s\n' "${failed[@]}"
	exit 1
fi
