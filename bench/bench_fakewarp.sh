#!/usr/bin/env bash
# Benchmark fakewarp alone: the server pinned to one core, the load client
# (bench_fakewarp, built by CMake from bench/bench_fakewarp.c) pinned to another.
#   1. throughput: 64 keep-alive connections, answers of 200 chunks x 16 bytes, no pacing
#   2. 2,000 concurrent streams, same answers, no pacing
#   3. 2,000 concurrent streams paced at 20 ms per chunk (every event its own write)
# Usage: bench/bench_fakewarp.sh [build-dir] [seconds]   (build-dir: a Release build)
set -euo pipefail
B=${1:-build}
SECS=${2:-8}
SRC=$(cd "$(dirname "$0")/.." && pwd)
CLIENT="$B/bench_fakewarp"
[[ -x "$CLIENT" ]] || { echo "build $CLIENT first (ninja -C $B bench_fakewarp)" >&2; exit 1; }
ncpu=$(nproc)
SRV_CPU=0
CLI_CPU=$((ncpu > 1 ? 1 : 0))
TMP=$(mktemp -d)
FWP=""
trap '[[ -n "$FWP" ]] && kill -TERM $FWP 2>/dev/null; wait 2>/dev/null; rm -rf "$TMP"' EXIT
ulimit -n 65536 2>/dev/null || true

taskset -c $SRV_CPU "$B/fakewarp" --port-file "$TMP/port" --quota 2000000000 \
  --account bench@example.test:rt-bench --log-level error 2>"$TMP/fw.log" &
FWP=$!
for _ in $(seq 100); do [[ -s "$TMP/port" ]] && break; sleep 0.05; done
P=$(cat "$TMP/port")
TOK=$(curl -sS -XPOST "http://127.0.0.1:$P/proxy/token?key=k" \
  -d 'grant_type=refresh_token&refresh_token=rt-bench' | jq -r .id_token)
mk() {
  printf '%s\n' "input { user_inputs { inputs { user_query { query: '$1' } } } }
settings { model_config { base: \"claude-4-5-opus\" } }" |
    protoc --encode=warp.multi_agent.v1.Request -I "$SRC/proto" -I /usr/include request.proto >"$2"
}
mk "[[fw:text chunks=200 size=16]] bench" "$TMP/fast.bin"
mk "[[fw:text chunks=100 size=16 pace_ms=20]] bench" "$TMP/paced.bin"

cpu_of() { awk '{print $14+$15}' /proc/$FWP/stat; }
run() { # name body conns
  local t1 t2 out
  t1=$(cpu_of)
  out=$(taskset -c $CLI_CPU "$CLIENT" --port "$P" --token "$TOK" --body "$2" --conns "$3" \
    --seconds "$SECS" --warmup 2)
  t2=$(cpu_of)
  local hz
  hz=$(getconf CLK_TCK)
  echo "$1 | $3 | $(sed -E 's/.*events_per_s=([0-9]+).*/\1/' <<<"$out") | $(sed -E 's/.*streams_per_s=([0-9.]+).*/\1/' <<<"$out") | $(sed -E 's/.*MB_per_s=([0-9.]+).*/\1/' <<<"$out") | $(sed -E 's/.*peak_open=([0-9]+).*/\1/' <<<"$out") | $(( (t2 - t1) * 100 / hz / (SECS + 2) ))% | $(sed -E 's/.*errors=([0-9]+).*/\1/' <<<"$out")"
}
echo "fakewarp on CPU $SRV_CPU, client on CPU $CLI_CPU ($(nproc) CPUs, $(uname -r))"
echo "scenario | connections | events/s | streams/s | MB/s | peak open streams | fakewarp CPU | errors"
echo "---|---|---|---|---|---|---|---"
run "200 x 16 B, unpaced" "$TMP/fast.bin" 64
run "200 x 16 B, unpaced" "$TMP/fast.bin" 2000
run "100 x 16 B, 20 ms pace" "$TMP/paced.bin" 2000
echo "fakewarp RSS after the runs: $(awk '/VmRSS/{print $2, $3}' /proc/$FWP/status)"
