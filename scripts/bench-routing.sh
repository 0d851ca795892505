#!/bin/bash
# Cache-aware routing benchmark (docs/BENCHMARKS.md, "Cache-aware routing"; issue 5).
#
#   scripts/bench-routing.sh [compare] [replicas] [redis-kill]    (default: all three)
#
# compare:    per policy its own 4 simulators (realistic time model, KV cache smaller than
#             the working set), its own redis-server and one `vllm-proxy serve --policy P`;
#             then ONE `vllm-proxy bench --targets proxy1,...,proxy5` per workload
#             (shared-prefix, multi-turn, bursty, uniform), interleaved rounds, scraping
#             every simulator (bench attributes the counter deltas to the target whose
#             slice runs; the policies' simulators are disjoint, so each target's engine
#             hit rate and peak waiting are its own). `routebench watch` records every
#             simulator's counters each second (requests per backend).
# replicas:   cache_aware behind a round-robin splitter (`routebench split`) over 1 and
#             over 3 proxy replicas sharing one Redis, each with its own 4 simulators;
#             one bench invocation with both splitters as targets.
# redis-kill: cache_aware, 3 replicas behind the splitter, one long run per workload
#             (KILL_WORKLOADS, default shared-prefix and multi-turn);
#             Redis is killed at 1/3 of the run and restarted at 2/3; the watch file gives
#             the engine hit rate per interval.
#
# Everything is started fresh for every repeat and stopped (by pid) at the end. Results
# go to $OUT (default /tmp/bench-routing/<time>); `routebench summarize -dir $OUT` prints
# the tables. Knobs (environment): REPEATS (3), DURATION (per target, 40s), POLICIES,
# REPEAT_FROM (1, to add repeats to a results directory), WORKLOADS, BASE_PORT (19500), SRC (tree vllm-proxy is built from, default
# this repository; e.g. a private worktree of main), BIN_DIR.
set -euo pipefail

ROOT=${ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
SRC=${SRC:-$ROOT}
OUT=${OUT:-/tmp/bench-routing/$(date -u +%Y%m%dT%H%M%S)}
BIN_DIR=${BIN_DIR:-$OUT/bin}
REPEATS=${REPEATS:-3}
DURATION=${DURATION:-40s}
POLICIES=${POLICIES:-cache_aware chwbl least_load round_robin random}
WORKLOADS=${WORKLOADS:-shared-prefix multi-turn bursty uniform}
BASE_PORT=${BASE_PORT:-19500}
MODEL=m1
# The simulated backend: vLLM defaults for timing (10k prompt tokens/s prefill, 12 ms
# decode steps + 0.15 ms per sequence), 16 running slots, and a KV cache of 1024 blocks of
# 16 tokens (16,384 tokens), below every workload's working set (see the workload knobs).
SEQS=${SEQS:-16}
SIM_FLAGS=(--model "$MODEL" --num-gpu-blocks "${GPU_BLOCKS:-1024}" --block-size 16
	--max-num-seqs "$SEQS" --max-model-len 8192 --prefill-tokens-per-s 10000
	--decode-step-ms 12 --decode-per-seq-ms 0.15 --time-scale 1)
# Workloads. shared-prefix: 16 system prompts of 2,048 tokens x 5 questions of 128 tokens,
# working set 43k tokens (2,700 blocks) against 1,024 blocks per backend. multi-turn: 31
# conversations side by side (31, not a multiple of 4, so that round_robin does not send
# every turn of a conversation to the same backend by accident), 8 turns of 128 tokens
# and 64-token answers: 1,472 tokens (92 blocks) per conversation, 2,850 blocks in all.
# bursty: waves of 80 requests of 256 tokens every 4 s against 64 running slots in all
# (-c only lifts bench's default cap of 1 request in flight for scheduled workloads).
declare -A WL_FLAGS=(
	[shared-prefix]="-c 16 --groups 16 --system-tokens 2048 --users 5 --question-tokens 128 --output-tokens 64"
	[multi-turn]="-c 16 --conversations 31 --turns 8 --turn-tokens 128 --answer-tokens 64"
	[bursty]="-c 4096 --wave-size 80 --wave-interval 4s --input-tokens 256 --output-tokens 64"
	[uniform]="-c 16 --min-input-tokens 16 --max-input-tokens 512 --min-output-tokens 16 --max-output-tokens 128"
)

PIDS=()
PROXY_PORTS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	PIDS=()
}
trap cleanup EXIT

log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }

build() {
	mkdir -p "$BIN_DIR"
	(cd "$SRC" && go build -o "$BIN_DIR/vllm-proxy" ./cmd/vllm-proxy)
	(cd "$ROOT" && go build -o "$BIN_DIR/routebench" ./bench/internal/routebench)
	(cd "$SRC" && git rev-parse --short HEAD) >"$OUT/commit" 2>/dev/null || true
}

wait_url() { # url [tries of 0.1 s]
	local i
	for ((i = 0; i < ${2:-300}; i++)); do
		curl -fsS -o /dev/null --max-time 1 "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	log "timeout waiting for $1"
	return 1
}

# start_sims PORT0 N: N simulators on PORT0..; sets SIMS to their base URLs.
start_sims() {
	local i port
	SIMS=()
	for ((i = 0; i < $2; i++)); do
		port=$(($1 + i))
		"$BIN_DIR/vllm-proxy" -q -L json sim --listen "127.0.0.1:$port" "${SIM_FLAGS[@]}" \
			>>"$RUN/sim-$port.log" 2>&1 &
		PIDS+=($!)
		SIMS+=("http://127.0.0.1:$port")
	done
	for s in "${SIMS[@]}"; do wait_url "$s/health"; done
}

start_redis() { # port
	redis-server --port "$1" --bind 127.0.0.1 --save '' --appendonly no \
		>>"$RUN/redis-$1.log" 2>&1 &
	PIDS+=($!)
	REDIS_PID=$!
	local i
	for ((i = 0; i < 100; i++)); do redis-cli -p "$1" ping >/dev/null 2>&1 && return 0; sleep 0.1; done
	log "redis on $1 did not start"
	return 1
}

# start_proxy PORT REDIS_URL POLICY BACKEND...
start_proxy() {
	local port=$1 redis=$2 policy=$3
	shift 3
	local cfg=$RUN/proxy-$port.yaml b
	{
		echo "listen: 127.0.0.1:$port"
		echo "redis: $redis"
		echo "routing:"
		echo "  policy: $policy"
		echo "backends:"
		for b in "$@"; do
			echo "  - url: $b"
			echo "    capacity: $SEQS"
			echo "    priority_scheduling: false"
		done
	} >"$cfg"
	"$BIN_DIR/vllm-proxy" -q -L json serve --config "$cfg" --batch-workers=false \
		>>"$RUN/proxy-$port.log" 2>&1 &
	PIDS+=($!)
	PROXY_PORTS+=("$port")
	wait_url "http://127.0.0.1:$port/health"
	# ready when the model is routable
	local i
	for ((i = 0; i < 100; i++)); do
		curl -fsS --max-time 1 "http://127.0.0.1:$port/v1/models" 2>/dev/null | grep -q "\"$MODEL\"" && return 0
		sleep 0.1
	done
	log "proxy $port never listed $MODEL"
	return 1
}

start_split() { # port upstream,upstream
	"$BIN_DIR/routebench" split -listen "127.0.0.1:$1" -upstreams "$2" >>"$RUN/split-$1.log" 2>&1 &
	PIDS+=($!)
	wait_url "http://127.0.0.1:$1/health"
}

start_watch() { # interval, then -group flags
	local iv=$1
	shift
	"$BIN_DIR/routebench" watch -interval "$iv" -out "$RUN/watch.jsonl" "$@" >>"$RUN/watch.log" 2>&1 &
	WATCH_PID=$!
	PIDS+=($WATCH_PID)
}

stop_watch() { kill "$WATCH_PID" 2>/dev/null || true; wait "$WATCH_PID" 2>/dev/null || true; }

# save_proxy_metrics NAME: the /metrics page of every proxy started since the last call
# (decision reasons, prefix lookup sources, Redis errors) into $RUN/proxy-metrics/NAME-PORT.prom.
save_proxy_metrics() {
	local port
	mkdir -p "$RUN/proxy-metrics"
	for port in "${PROXY_PORTS[@]}"; do
		curl -fsS --max-time 5 "http://127.0.0.1:$port/metrics" >"$RUN/proxy-metrics/$1-$port.prom" 2>/dev/null || true
	done
	PROXY_PORTS=()
}

metrics_list() { sed 's|$|/metrics|' | paste -sd, -; }

run_bench() { # targets scrape workload extra...
	local targets=$1 scrape=$2 wl=$3
	shift 3
	# shellcheck disable=SC2086
	"$BIN_DIR/vllm-proxy" -q bench --targets "$targets" --model "$MODEL" -w "$wl" \
		${WL_FLAGS[$wl]} --scrape "$scrape" --seed "$SEED" \
		--out-md "$RUN/bench.md" --out-json "$RUN/bench.json" --out-csv "$RUN/requests.csv" "$@" \
		>>"$RUN/bench.log" 2>&1
}

machine() { echo "$(date -u +%FT%TZ) load: $(cut -d' ' -f1-3 /proc/loadavg)"; }

compare() {
	local wl rep i p
	for rep in $(seq "${REPEAT_FROM:-1}" "$REPEATS"); do
		for wl in $WORKLOADS; do
			RUN=$OUT/compare/$wl/$rep
			mkdir -p "$RUN"
			SEED=$rep
			log "compare $wl repeat $rep"
			machine >"$RUN/machine"
			local targets=() scrapes=() groups=()
			i=0
			for p in $POLICIES; do
				local base=$((BASE_PORT + 10 * i))
				start_sims "$((base + 1))" 4
				local sims=("${SIMS[@]}")
				start_redis "$((base + 6))"
				start_proxy "$((base + 5))" "redis://127.0.0.1:$((base + 6))/0" "$p" "${sims[@]}"
				PROXY_PORTS=()
				targets+=("http://127.0.0.1:$((base + 5))/v1")
				local m
				m=$(printf '%s\n' "${sims[@]}" | metrics_list)
				scrapes+=("$m")
				groups+=(-group "$p=$m")
				echo "$p http://127.0.0.1:$((base + 5))/v1 $m" >>"$RUN/targets"
				i=$((i + 1))
			done
			start_watch 250ms "${groups[@]}"
			run_bench "$(IFS=,; echo "${targets[*]}")" "$(IFS=,; echo "${scrapes[*]}")" "$wl" -d "$DURATION" || log "bench failed (see $RUN/bench.log)"
			stop_watch
			i=0
			for p in $POLICIES; do
				PROXY_PORTS=("$((BASE_PORT + 10 * i + 5))")
				save_proxy_metrics "$p"
				i=$((i + 1))
			done
			machine >>"$RUN/machine"
			cleanup
		done
	done
}

# start_replicas BASE N REDIS_URL: N cache_aware proxies (each with its own 4 sims) behind
# a splitter on BASE+9; sets SPLIT_URL, REP_METRICS.
start_replicas() {
	local base=$1 n=$2 redis=$3 j ups=() allsims=()
	start_sims "$((base + 1))" 4
	local sims=("${SIMS[@]}")
	for ((j = 0; j < n; j++)); do
		start_proxy "$((base + 5 + j))" "$redis" cache_aware "${sims[@]}"
		ups+=("http://127.0.0.1:$((base + 5 + j))")
	done
	start_split "$((base + 9))" "$(IFS=,; echo "${ups[*]}")"
	SPLIT_URL="http://127.0.0.1:$((base + 9))/v1"
	REP_METRICS=$(printf '%s\n' "${sims[@]}" | metrics_list)
}

replicas() {
	local rep wl
	for rep in $(seq "$REPEATS"); do
		for wl in ${REPLICA_WORKLOADS:-shared-prefix multi-turn}; do
			RUN=$OUT/replicas/$wl/$rep
			mkdir -p "$RUN"
			SEED=$rep
			log "replicas $wl repeat $rep"
			machine >"$RUN/machine"
			start_redis "$((BASE_PORT + 66))"
			start_replicas "$((BASE_PORT + 100))" 1 "redis://127.0.0.1:$((BASE_PORT + 66))/0"
			local t1=$SPLIT_URL m1=$REP_METRICS p1=("${PROXY_PORTS[@]}")
			PROXY_PORTS=()
			start_replicas "$((BASE_PORT + 110))" 3 "redis://127.0.0.1:$((BASE_PORT + 66))/1"
			local t3=$SPLIT_URL m3=$REP_METRICS p3=("${PROXY_PORTS[@]}")
			printf '1-replica %s %s\n3-replicas %s %s\n' "$t1" "$m1" "$t3" "$m3" >"$RUN/targets"
			start_watch 1s -group "1-replica=$m1" -group "3-replicas=$m3"
			run_bench "$t1,$t3" "$m1,$m3" "$wl" -d "$DURATION" || log "bench failed (see $RUN/bench.log)"
			stop_watch
			PROXY_PORTS=("${p1[@]}")
			save_proxy_metrics 1-replica
			PROXY_PORTS=("${p3[@]}")
			save_proxy_metrics 3-replicas
			machine >>"$RUN/machine"
			cleanup
		done
	done
}

redis_kill() {
	local rep secs wl
	secs=${KILL_RUN_SECONDS:-90}
	for rep in $(seq "$REPEATS"); do
		for wl in ${KILL_WORKLOADS:-shared-prefix multi-turn}; do
			RUN=$OUT/redis-kill/$wl/$rep
			mkdir -p "$RUN"
			SEED=$rep
			log "redis-kill $wl repeat $rep"
			machine >"$RUN/machine"
			local rport=$((BASE_PORT + 76))
			start_redis "$rport"
			start_replicas "$((BASE_PORT + 120))" 3 "redis://127.0.0.1:$rport/0"
			echo "3-replicas $SPLIT_URL $REP_METRICS" >"$RUN/targets"
			start_watch 1s -group "3-replicas=$REP_METRICS"
			run_bench "$SPLIT_URL" "$REP_METRICS" "$wl" -d "${secs}s" &
			local bench=$!
			sleep $((secs / 3))
			echo "kill $(date -u +%s.%N)" >>"$RUN/events"
			kill -9 "$REDIS_PID"
			sleep $((secs / 3))
			echo "restart $(date -u +%s.%N)" >>"$RUN/events"
			start_redis "$rport"
			wait "$bench" || log "bench failed (see $RUN/bench.log)"
			stop_watch
			save_proxy_metrics 3-replicas
			machine >>"$RUN/machine"
			cleanup
		done
	done
}

mkdir -p "$OUT"
log "results in $OUT"
build
for part in "${@:-compare replicas redis-kill}"; do
	for p in $part; do
		case $p in
		compare) compare ;;
		replicas) replicas ;;
		redis-kill) redis_kill ;;
		*) echo "unknown part $p" >&2; exit 2 ;;
		esac
	done
done
"$BIN_DIR/routebench" summarize -dir "$OUT" | tee "$OUT/summary.md"
