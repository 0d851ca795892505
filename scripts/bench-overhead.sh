#!/usr/bin/env bash
# Proxy overhead benchmark (issue 4, with issue 5's Redis variant): docs/BENCHMARKS.md,
# section "Proxy overhead vs direct and nginx".
#
#   scripts/bench-overhead.sh [RUNS]          # default 5 runs; 0: the memory phase only
#
# Starts, on free loopback ports, an --instant simulator, `vllm-proxy serve -R memory`,
# `vllm-proxy serve -R redis://...` on a private redis-server (no persistence), and nginx
# (scripts/nginx-bench.conf: keep-alive upstream, 2 workers, no access log), all in front
# of that one simulator. Each run is two `vllm-proxy bench` invocations over the four
# targets interleaved (direct, proxy-memory, proxy-redis, nginx): 32 connections with
# small non-streaming chat bodies, then the same streaming. The summary gives per-run
# figures and medians of throughput ratios (vs direct and vs nginx), added p99 latency and
# added p99 TTFT over direct, and each intermediary's CPU time per request (user+system
# from /proc/PID/stat over all runs, divided by the requests it served).
#
# Then the memory phase: a simulator with the default (realistic) time model, a fresh
# proxy of each kind and nginx, and STREAMS concurrent slow streams through each in turn
# while VmRSS is sampled from /proc; VmHWM is read at the end.
#
# Environment: VP (vllm-proxy binary; default: built from this tree into $OUT), OUT
# (results directory; default a fresh /tmp/bench-overhead.XXXX), DURATION (per target
# and mode in one run; default 10s), STREAMS (default 1000), STREAM_TOKENS (output tokens
# of each slow stream; default 128), SKIP_RSS=1 to skip the memory phase, PROXY_GOGC
# (GOGC for the proxies only; default: Go's 100).
# Needs nginx (Debian package), redis-server, jq and python3.
set -euo pipefail

RUNS=${1:-5}
DURATION=${DURATION:-10s}
STREAMS=${STREAMS:-1000}
STREAM_TOKENS=${STREAM_TOKENS:-128}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-$(mktemp -d /tmp/bench-overhead.XXXX)}
mkdir -p "$OUT"
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}

if [[ -z "${VP:-}" ]]; then
	VP=$OUT/vllm-proxy
	(cd "$ROOT" && go build -o "$VP" ./cmd/vllm-proxy)
fi

PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_http URL: poll until URL answers 200 (10 s deadline).
wait_http() {
	local i
	for i in $(seq 100); do
		if curl -sf -o /dev/null "$1"; then return 0; fi
		sleep 0.1
	done
	echo "bench-overhead: $1 did not come up" >&2
	exit 1
}

# start NAME CMD...: run CMD in the background with its output in $OUT/NAME.log and
# remember its pid (in LAST_PID and PIDS; the EXIT trap stops it).
start() {
	local name=$1
	shift
	"$@" >"$OUT/$name.log" 2>&1 &
	LAST_PID=$!
	PIDS+=("$LAST_PID")
}

# start_nginx NAME UPSTREAM_ADDR LISTEN_ADDR: nginx from scripts/nginx-bench.conf in a
# private prefix directory.
start_nginx() {
	local prefix=$OUT/$1
	mkdir -p "$prefix"
	sed -e "s|@PREFIX@|$prefix|g" -e "s|@LISTEN@|$3|g" -e "s|@UPSTREAM@|$2|g" \
		"$ROOT/scripts/nginx-bench.conf" >"$prefix/nginx.conf"
	start "$1" "$NGINX" -p "$prefix" -c "$prefix/nginx.conf"
}

# ---- the services -------------------------------------------------------------------

REDIS_PORT=$(free_port)
start redis redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no
REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0
for i in $(seq 100); do
	if [[ $(redis-cli -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]; then break; fi
	sleep 0.1
done

SIM=127.0.0.1:$(free_port)
start sim "$VP" -q sim --model m1 --instant --listen "$SIM"
wait_http "http://$SIM/health"

PMEM=127.0.0.1:$(free_port)
start proxy-memory env ${PROXY_GOGC:+GOGC=$PROXY_GOGC} "$VP" -q serve -R memory --backend "http://$SIM" --listen "$PMEM"
PMEM_PID=$LAST_PID
PRED=127.0.0.1:$(free_port)
start proxy-redis env ${PROXY_GOGC:+GOGC=$PROXY_GOGC} "$VP" -q serve -R "$REDIS_URL" --backend "http://$SIM" --listen "$PRED"
PRED_PID=$LAST_PID
NGX=127.0.0.1:$(free_port)
start_nginx nginx "$SIM" "$NGX"
NGX_PID=$LAST_PID
for a in "$PMEM" "$PRED" "$NGX"; do wait_http "http://$a/v1/models"; done
mapfile -t NGX_PIDS < <(echo "$NGX_PID"; pgrep -P "$NGX_PID")
# The proxies learn the model list and the first scrape asynchronously.
for a in "$PMEM" "$PRED"; do
	for i in $(seq 100); do
		if curl -sf "http://$a/v1/models" | grep -q '"m1"'; then break; fi
		sleep 0.1
	done
done

TARGETS="http://$SIM/v1,http://$PMEM/v1,http://$PRED/v1,http://$NGX/v1"
NAMES="direct proxy-memory proxy-redis nginx"
echo "$NAMES" >"$OUT/names"
{
	echo "date: $(date -u +%FT%TZ)"
	echo "vllm-proxy: $("$VP" --version 2>&1 | head -1)"
	echo "nginx: $("$NGINX" -v 2>&1)"
	echo "redis: $(redis-server --version)"
	echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2) x $(nproc)"
	echo "proxy GOGC: ${PROXY_GOGC:-default}"
} >"$OUT/env.txt"

# Warm-up: fill every keep-alive pool (not recorded).
"$VP" -q bench --targets "$TARGETS" --model m1 -c 32 -d 2s --no-stream --rounds 1 \
	--input-tokens 32 --output-tokens 16 --out-md "" >/dev/null

# ---- throughput and latency ------------------------------------------------------------

# ticks PID...: user+system CPU of the processes, in clock ticks.
ticks() {
	local p s=0
	for p in "$@"; do
		s=$((s + $(awk '{print $14 + $15}' "/proc/$p/stat")))
	done
	echo "$s"
}
# cpu_snapshot: one line per intermediary, "name ticks" (the direct target has none).
cpu_snapshot() {
	echo "proxy-memory $(ticks "$PMEM_PID")"
	echo "proxy-redis $(ticks "$PRED_PID")"
	echo "nginx $(ticks "${NGX_PIDS[@]}")"
}
getconf CLK_TCK >"$OUT/clk_tck"

for run in $(seq "$RUNS"); do
	for mode in json stream; do
		flag=()
		[[ $mode == json ]] && flag=(--no-stream)
		cut -d' ' -f1 /proc/loadavg >"$OUT/load-$mode-$run.txt"
		cpu_snapshot >"$OUT/cpu0-$mode-$run.txt"
		"$VP" -q bench --targets "$TARGETS" --model m1 -c 32 -d "$DURATION" "${flag[@]}" \
			--input-tokens 32 --output-tokens 16 --seed "$run" \
			--out-md "" --out-json "$OUT/$mode-$run.json"
		cpu_snapshot >"$OUT/cpu1-$mode-$run.txt"
		cut -d' ' -f1 /proc/loadavg >>"$OUT/load-$mode-$run.txt"
		echo "run $run $mode: load $(paste -sd- "$OUT/load-$mode-$run.txt"), req/s" \
			"$(jq -r '[.targets[].requests_per_s|floor]|join(" / ")' "$OUT/$mode-$run.json") ($NAMES)"
	done
done

# ---- memory with many slow streams -----------------------------------------------------

# sample_rss NAME PID...: VmRSS (kB, summed over the pids) every 0.25 s until the bench
# in $BENCH_PID exits; prints idle, peak-sampled and final VmHWM.
rss_of() {
	local p s=0 v
	for p in "$@"; do
		v=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
		s=$((s + ${v:-0}))
	done
	echo "$s"
}
hwm_of() {
	local p s=0 v
	for p in "$@"; do
		v=$(awk '/^VmHWM:/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
		s=$((s + ${v:-0}))
	done
	echo "$s"
}

# slow_streams NAME ADDR PID...: STREAMS concurrent streams through ADDR, sampling the
# RSS of PID... meanwhile. Appends one line to $OUT/rss.txt.
slow_streams() {
	local name=$1 addr=$2
	shift 2
	local idle peak=0 r
	idle=$(rss_of "$@")
	"$VP" -q bench --targets "http://$addr/v1" --model m1 -c "$STREAMS" -n "$STREAMS" \
		--input-tokens 32 --output-tokens "$STREAM_TOKENS" --ignore-eos \
		--out-md "" --out-json "$OUT/rss-$name.json" &
	local bench_pid=$!
	while kill -0 "$bench_pid" 2>/dev/null; do
		r=$(rss_of "$@")
		((r > peak)) && peak=$r
		sleep 0.25
	done
	wait "$bench_pid"
	echo "$name idle_kb=$idle peak_rss_kb=$peak hwm_kb=$(hwm_of "$@") ok=$(jq '.targets[0].ok' "$OUT/rss-$name.json") e2e_p50_s=$(jq '.targets[0].e2e.p50_s' "$OUT/rss-$name.json")" |
		tee -a "$OUT/rss.txt"
}

if [[ -z "${SKIP_RSS:-}" ]]; then
	# Default time model (12 ms a decode step + 0.15 ms per running sequence), with room
	# for every stream to run at once: about 160 ms per token, ~20 s per stream.
	SLOW=127.0.0.1:$(free_port)
	start sim-slow "$VP" -q sim --model m1 --listen "$SLOW" --max-num-seqs $((STREAMS + 64)) \
		--num-gpu-blocks $((STREAMS * 16 + 4096))
	wait_http "http://$SLOW/health"
	redis-cli -p "$REDIS_PORT" flushall >/dev/null
	SMEM=127.0.0.1:$(free_port)
	start rss-proxy-memory env ${PROXY_GOGC:+GOGC=$PROXY_GOGC} "$VP" -q serve -R memory --backend "http://$SLOW" --listen "$SMEM"
	SMEM_PID=$LAST_PID
	SRED=127.0.0.1:$(free_port)
	start rss-proxy-redis env ${PROXY_GOGC:+GOGC=$PROXY_GOGC} "$VP" -q serve -R "$REDIS_URL" --backend "http://$SLOW" --listen "$SRED"
	SRED_PID=$LAST_PID
	SNGX=127.0.0.1:$(free_port)
	start_nginx rss-nginx "$SLOW" "$SNGX"
	SNGX_PID=$LAST_PID
	for a in "$SMEM" "$SRED" "$SNGX"; do wait_http "http://$a/v1/models"; done
	sleep 1
	: >"$OUT/rss.txt"
	slow_streams proxy-memory "$SMEM" "$SMEM_PID"
	slow_streams proxy-redis "$SRED" "$SRED_PID"
	# nginx: the master and its workers together.
	mapfile -t ngx_pids < <(echo "$SNGX_PID"; pgrep -P "$SNGX_PID")
	slow_streams nginx "$SNGX" "${ngx_pids[@]}"
fi

# ---- summary -----------------------------------------------------------------------------

python3 - "$OUT" "$RUNS" <<'PY' | tee "$OUT/summary.md"
import json, statistics, sys, os
out, runs = sys.argv[1], int(sys.argv[2])
names = open(os.path.join(out, "names")).read().split()
med = statistics.median
def load(mode, run):
    return json.load(open(os.path.join(out, f"{mode}-{run}.json")))["targets"]
clk = int(open(os.path.join(out, "clk_tck")).read())
def cpu_us(mode, name):
    """CPU microseconds per request of an intermediary over all runs of mode."""
    ticks = reqs = 0
    for r in range(1, runs + 1):
        a = dict(l.split() for l in open(os.path.join(out, f"cpu0-{mode}-{r}.txt")))
        b = dict(l.split() for l in open(os.path.join(out, f"cpu1-{mode}-{r}.txt")))
        ticks += int(b[name]) - int(a[name])
        reqs += load(mode, r)[names.index(name)]["ok"]
    return ticks / clk * 1e6 / reqs
def loadavg(mode, run):
    return [float(x) for x in open(os.path.join(out, f"load-{mode}-{run}.txt")).read().split()]
print(open(os.path.join(out, "env.txt")).read())
for mode, lat in (("json", "e2e"), ("stream", "ttft")) if runs > 0 else ():
    loads = [x for r in range(1, runs + 1) for x in loadavg(mode, r)]
    print(f"### {mode} (32 connections; load average {min(loads):.1f}-{max(loads):.1f})\n")
    print(f"| target | req/s per run | median req/s | x direct | x nginx | {lat} p50 ms | {lat} p99 ms | added {lat} p99 vs direct, ms | CPU µs/req | errors |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    rs = [load(mode, r) for r in range(1, runs + 1)]
    ni = names.index("nginx")
    for i, n in enumerate(names):
        rps = [t[i]["requests_per_s"] for t in rs]
        vs_direct = med([t[i]["requests_per_s"] / t[0]["requests_per_s"] for t in rs])
        vs_nginx = med([t[i]["requests_per_s"] / t[ni]["requests_per_s"] for t in rs])
        p50 = med([t[i][lat]["p50_s"] * 1e3 for t in rs])
        p99 = med([t[i][lat]["p99_s"] * 1e3 for t in rs])
        added = med([(t[i][lat]["p99_s"] - t[0][lat]["p99_s"]) * 1e3 for t in rs])
        errs = sum(t[i]["requests"] - t[i]["ok"] for t in rs)
        cpu = "–" if n == "direct" else f"{cpu_us(mode, n):.1f}"
        print(f"| {n} | {' · '.join(f'{x:,.0f}' for x in rps)} | {med(rps):,.0f} | {vs_direct:.2f} | {vs_nginx:.2f} | {p50:.2f} | {p99:.2f} | {added:+.2f} | {cpu} | {errs} |")
    print()
rss = os.path.join(out, "rss.txt")
if os.path.exists(rss):
    print("### memory with slow streams\n")
    print("| through | idle RSS MiB | peak VmRSS MiB | VmHWM MiB | streams ok | e2e p50 s |")
    print("|---|---:|---:|---:|---:|---:|")
    for line in open(rss):
        f = line.split()
        kv = dict(x.split("=") for x in f[1:])
        mib = lambda k: int(kv[k]) / 1024
        print(f"| {f[0]} | {mib('idle_kb'):.1f} | {mib('peak_rss_kb'):.1f} | {mib('hwm_kb'):.1f} | {kv['ok']} | {float(kv['e2e_p50_s']):.1f} |")
PY
echo "results in $OUT"
