#!/bin/bash
# Measures the load generator's own overhead against fixedserver, alternating wrk and
# `vllm-proxy bench` so that machine noise hits both alike (docs/BENCHMARKS.md, "Load
# generator overhead"). Usage, from the repository root:
#
#   go build -o /tmp/vllm-proxy ./cmd/vllm-proxy && go build -o /tmp/fixedserver ./bench/internal/fixedserver
#   /tmp/fixedserver -listen 127.0.0.1:18080 & bench/internal/fixedserver/overhead.sh 5
#
# Prints one line per run: requests/s and the client's CPU time per request (user+sys
# from /usr/bin/time), then the medians.
set -euo pipefail
RUNS=${1:-5}
URL=${URL:-http://127.0.0.1:18080}
BIN=${BIN:-/tmp/vllm-proxy}
LUA=$(mktemp --suffix=.lua)
trap 'rm -f "$LUA"' EXIT
PROMPT=$(printf 'abc %.0s' $(seq 32))
cat >"$LUA" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"m","messages":[{"role":"user","content":"$PROMPT"}],"max_tokens":2}'
LUA
declare -A RPS CPU
run() { # name, then the command; sets RPS/CPU lists
	local name=$1; shift
	local out
	out=$({ /usr/bin/time -f "CPU %U %S" "$@"; } 2>&1)
	local rps reqs cpu
	if [[ $name == wrk ]]; then
		rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
		reqs=$(awk '/requests in/ {print $1}' <<<"$out")
	else
		rps=$(grep -o '"requests_per_s": [0-9.]*' <<<"$out" | head -1 | awk '{print $2}')
		reqs=$(grep -o '"ok": [0-9]*' <<<"$out" | head -1 | awk '{print $2}')
	fi
	cpu=$(awk '/^CPU/ {print $2+$3}' <<<"$out")
	local us; us=$(awk -v c="$cpu" -v n="$reqs" 'BEGIN {printf "%.1f", c*1e6/n}')
	printf '%-13s req/s %8.0f  client CPU %5.1f us/req\n' "$name" "$rps" "$us"
	RPS[$name]+="$rps "; CPU[$name]+="$us "
}
for i in $(seq "$RUNS"); do
	run wrk wrk -t2 -c32 -d5s -s "$LUA" "$URL/v1/chat/completions"
	run bench-json "$BIN" -q bench --targets "$URL" --model m -c 32 -d 5s --no-stream \
		--input-tokens 32 --output-tokens 2 --out-md "" --out-json -
	run bench-stream "$BIN" -q bench --targets "$URL" --model m -c 32 -d 5s \
		--input-tokens 32 --output-tokens 2 --out-md "" --out-json -
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
for name in wrk bench-json bench-stream; do
	printf 'median %-13s req/s %8.0f  client CPU %5.1f us/req\n' "$name" \
		"$(median <<<"${RPS[$name]}")" "$(median <<<"${CPU[$name]}")"
done
