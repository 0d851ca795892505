#!/usr/bin/env bash
# Batch API benchmarks for docs/BENCHMARKS.md ("Batch API"). Each run starts a fresh stack:
# one redis-server (no persistence), two `vllm-proxy sim --instant` backends and two
# `vllm-proxy serve` replicas on that Redis (backends of capacity 256, the simulators'
# max-num-seqs; default batch and backpressure settings), both running batch workers; then
# scripts/benchbatch uploads through replica 0, creates the batch there, polls it through
# replica 1 and prints one JSON line of figures. The stack is torn down after every run.
#
#   scripts/bench-batch.sh [throughput|big|kill|filesdir|all]    (default all)
#
# Env: RUNS (default 3), OUT (default /tmp/bench-batch), BASE_PORT (default 19300),
# SERVE_ARGS (extra `serve` flags, e.g. "--policy round_robin"),
# VP / DRV to use prebuilt binaries instead of building from this tree.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
OUT=${OUT:-/tmp/bench-batch}
BASE=${BASE_PORT:-19300}
VP=${VP:-$OUT/vllm-proxy}
DRV=${DRV:-$OUT/benchbatch}
WHAT=${1:-all}
mkdir -p "$OUT"
[ -x "$VP" ] || go build -o "$VP" ./cmd/vllm-proxy
[ -x "$DRV" ] || go build -o "$DRV" ./scripts/benchbatch

RP=$BASE S1=$((BASE + 1)) S2=$((BASE + 2)) A=$((BASE + 3)) B=$((BASE + 4))
PIDS=()

wait_http() { # url
	for _ in $(seq 1 200); do
		curl -sf -o /dev/null "$1" && return 0
		sleep 0.05
	done
	echo "timeout waiting for $1" >&2
	return 1
}

start_stack() {
	rm -rf "$OUT/redis" && mkdir -p "$OUT/redis"
	redis-server --port "$RP" --bind 127.0.0.1 --save '' --appendonly no --dir "$OUT/redis" \
		--logfile "$OUT/redis.log" &
	PIDS+=($!)
	"$VP" sim --model m1 --instant --listen "127.0.0.1:$S1" -q >"$OUT/sim1.log" 2>&1 &
	PIDS+=($!)
	"$VP" sim --model m1 --instant --listen "127.0.0.1:$S2" -q >"$OUT/sim2.log" 2>&1 &
	PIDS+=($!)
	until redis-cli -p "$RP" ping >/dev/null 2>&1; do sleep 0.05; done
	wait_http "http://127.0.0.1:$S1/health" && wait_http "http://127.0.0.1:$S2/health"
	local extra=()
	[ -n "${FILES_DIR:-}" ] && rm -rf "$FILES_DIR" && extra=(--files-dir "$FILES_DIR")
	# shellcheck disable=SC2206 # SERVE_ARGS is split on purpose
	[ -n "${SERVE_ARGS:-}" ] && extra+=(${SERVE_ARGS})
	# capacity = the simulators' max-num-seqs (256), as docs/CONFIG.md asks: batch
	# backpressure budgets each backend's capacity minus 2 reserved slots.
	cat >"$OUT/serve.yaml" <<-EOF
		backends:
		  - url: http://127.0.0.1:$S1
		    capacity: 256
		  - url: http://127.0.0.1:$S2
		    capacity: 256
	EOF
	for p in $A $B; do
		"$VP" serve -R "redis://127.0.0.1:$RP/0" --listen "127.0.0.1:$p" -q "${extra[@]}" \
			--config "$OUT/serve.yaml" >"$OUT/serve-$p.log" 2>&1 &
		PIDS+=($!)
	done
	SERVE_PIDS="${PIDS[3]},${PIDS[4]}"
	wait_http "http://127.0.0.1:$A/health" && wait_http "http://127.0.0.1:$B/health"
	sleep 1 # let the replicas settle (first scrape, baseline RSS)
}

stop_stack() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	PIDS=()
}
trap stop_stack EXIT

run() { # label file [driver flags...]
	local label=$1 file=$2
	shift 2
	start_stack
	echo "== $label load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
	"$DRV" run -label "$label" -file "$file" -api "http://127.0.0.1:$A,http://127.0.0.1:$B" \
		-pids "$SERVE_PIDS" -redis "127.0.0.1:$RP" -sims "http://127.0.0.1:$S1,http://127.0.0.1:$S2" "$@" |
		tee -a "$OUT/results.jsonl"
	stop_stack
}

: >"$OUT/results.jsonl"
if [ "$WHAT" = throughput ] || [ "$WHAT" = all ]; then
	[ -f "$OUT/chat-50k.jsonl" ] || "$DRV" gen -out "$OUT/chat-50k.jsonl" -lines 50000 -line-bytes 200
	for _ in $(seq "$RUNS"); do run chat-50k "$OUT/chat-50k.jsonl"; done
fi
if [ "$WHAT" = big ] || [ "$WHAT" = all ]; then
	# 50,000 lines of ~4,150 bytes: a 198 MiB file, just under the 200 MiB limit.
	[ -f "$OUT/chat-200mb.jsonl" ] || "$DRV" gen -out "$OUT/chat-200mb.jsonl" -lines 50000 -line-bytes 4150
	for _ in $(seq "$RUNS"); do run chat-200mb "$OUT/chat-200mb.jsonl"; done
fi
if [ "$WHAT" = kill ] || [ "$WHAT" = all ]; then
	[ -f "$OUT/chat-50k.jsonl" ] || "$DRV" gen -out "$OUT/chat-50k.jsonl" -lines 50000 -line-bytes 200
	for _ in $(seq "$RUNS"); do run kill9 "$OUT/chat-50k.jsonl" -kill 1 -kill-at 0.3; done
fi
if [ "$WHAT" = filesdir ] || [ "$WHAT" = all ]; then
	# Blobs in a shared directory: Redis holds only metadata, so INFO used_memory deltas
	# are the batch's own footprint.
	[ -f "$OUT/chat-50k.jsonl" ] || "$DRV" gen -out "$OUT/chat-50k.jsonl" -lines 50000 -line-bytes 200
	for _ in $(seq "$RUNS"); do FILES_DIR=$OUT/files run chat-50k-filesdir "$OUT/chat-50k.jsonl"; done
fi
"$DRV" table "$OUT/results.jsonl"
