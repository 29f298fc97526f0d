#!/usr/bin/env bash
# loop_callgrind.sh - instructions per short non-streamed completion on warp2api's
# event-loop thread, deterministic enough to compare builds on a busy machine (wall clock
# is not): `warp2api serve` runs under callgrind (--separate-threads) against fakewarp,
# curl warms it up with one completion, the counters are zeroed, bench/gateway_client.c
# sends N "hi" completions one at a time over one keep-alive connection, the counters are
# dumped, and the loop thread's instructions are divided by the completions it handled
# (calls of w2a_gw_chat_handle).
#
#   bash bench/loop_callgrind.sh BUILD_DIR [N=2000] [OUT_PREFIX=/tmp/w2a-loopcg]
#
# Prints "loop_ir_per_completion=... completions=... total_ir=..." and leaves the profile
# (OUT_PREFIX.<pid>.1-01 is the loop thread) for callgrind_annotate. Release build with -g
# gives function names (cmake -DCMAKE_C_FLAGS=-g). Caveat: valgrind counts each byte of a
# `rep movsb/stosb` (large memcpy/memset) as an instruction, and syscalls not at all.
set -euo pipefail
BUILD=$(cd "${1:?usage: $0 BUILD_DIR [N] [OUT_PREFIX]}" && pwd)
N=${2:-2000}
OUT=${3:-/tmp/w2a-loopcg}
SRC=$(cd "$(dirname "$0")/.." && pwd)
for t in valgrind callgrind_control callgrind_annotate curl python3 cc; do
  command -v "$t" >/dev/null || { echo "loop_callgrind: $t is missing" >&2; exit 1; }
done
T=$(mktemp -d /tmp/w2a-loopcg.XXXXXX)
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$T"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

cc -O2 -std=c11 -D_GNU_SOURCE -o "$T/client" "$SRC/bench/gateway_client.c"
fw_args=(--port 0 --port-file "$T/fw.port" --quota 2000000000)
: >"$T/accounts.jsonl"
for i in 1 2 3 4 5 6 7 8; do
  fw_args+=(--account "bench$i@fakewarp.invalid:bench-rt-$i:2000000000")
  printf '{"email":"bench%d@fakewarp.invalid","refresh_token":"bench-rt-%d","cap":200}\n' \
    "$i" "$i" >>"$T/accounts.jsonl"
done
"$BUILD/fakewarp" "${fw_args[@]}" >"$T/fakewarp.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 200); do [[ -s "$T/fw.port" ]] && break; sleep 0.05; done
FW=http://127.0.0.1:$(cat "$T/fw.port")
GW_PORT=$(free_port)
export W2A_ENV_FILE=/dev/null DATABASE_PATH="$T/pool.db" WARP_BASE_URL="$FW" \
  FIREBASE_SECURETOKEN_URL="$FW" FIREBASE_IDENTITY_URL="$FW" PORT="$GW_PORT" \
  POOL_SERVICE_PORT="$(free_port)" LOG_LEVEL=warning
"$BUILD/warp2api" accounts import "$T/accounts.jsonl" >/dev/null
valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$OUT.%p" \
  "$BUILD/warp2api" serve >"$T/gateway.log" 2>&1 &
GW=$!
PIDS=("$GW" "${PIDS[@]}")
for _ in $(seq 600); do
  curl -s -o /dev/null -m 1 "http://127.0.0.1:$GW_PORT/healthz" && break
  sleep 0.1
done
printf '{"model":"auto","stream":false,"messages":[{"role":"user","content":"hi"}]}' >"$T/short.json"
{
  printf 'POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:%s\r\n' "$GW_PORT"
  printf 'content-type: application/json\r\naccept: */*\r\ncontent-length: %s\r\n\r\n' \
    "$(stat -c %s "$T/short.json")"
  cat "$T/short.json"
} >"$T/gw.req"
curl -sS -m 60 -o /dev/null "http://127.0.0.1:$GW_PORT/v1/chat/completions" \
  -H 'content-type: application/json' --data-binary @"$T/short.json"
callgrind_control -z "$GW" >/dev/null
"$T/client" lat 127.0.0.1 "$GW_PORT" "$T/gw.req" "$N" 0 >&2
callgrind_control -d "$GW" >/dev/null
kill -TERM "$GW"
wait "$GW" 2>/dev/null || true
F=$OUT.$GW.1-01
tot=$(awk '/^summary:/ {print $2}' "$F")
n=$(callgrind_annotate --tree=calling --inclusive=yes --threshold=100 "$F" 2>/dev/null |
  grep -A3 '\*  .*gateway.c:handle ' | grep 'chat.c:w2a_gw_chat_handle' |
  sed 's/.*(\([0-9,]*\)x).*/\1/' | tr -d ,)
echo "loop_ir_per_completion=$((tot / n)) completions=$n total_ir=$tot profile=$F"
