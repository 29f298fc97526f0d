#!/usr/bin/env bash
# gateway_bench.sh - the gateway against its floor, side by side in one run: fakewarp as
# the upstream, nginx (Debian's nginx-light, bench/nginx/proxy.conf) passing the same
# event stream through unchanged, and `warp2api serve` turning it into OpenAI answers.
#
#   bash bench/gateway_bench.sh BUILD_DIR [RESULT_FILE]
#
# Placement on the 2-core machine (taskset): core 0 holds only the proxy under test
# (nginx or warp2api; both stay up, the idle one costs nothing); core 1 holds fakewarp,
# the load generator (bench/gateway_client.c, wrk) and this script's samplers. So the
# proxy has a core of its own while the upstream and the client share the other, as if
# the client and Warp were elsewhere; every figure below is measured the same way for
# nginx and for the gateway.
#
# Measured (each RUNS times, medians reported, then PASS/FAIL against the targets):
#   1. latency of one short request at a time (LAT_N sequential requests, keep-alive):
#      direct to fakewarp, through nginx, through the gateway (non-streamed completion of
#      the same upstream answer); added latency = proxy - direct, at p50 and at p99.
#   2. CPU per forwarded event: one long stream through each proxy, the proxy's CPU time
#      (sum of /proc/PID/task/*/schedstat, nanoseconds) over the events it forwarded;
#      once bursty (upstream as fast as it can) and once paced (1 ms between events,
#      so every event is a read and a write on its own, as with a real model).
#   3. short non-streamed completions per second: wrk -t1 -c50 on core 1, gateway on core 0.
#   4. idle RSS of a fresh gateway, and its RSS with STREAMS concurrent slow streams.
# Release build only (an ASan build would say nothing about RSS or CPU).
#
# Tunables (environment): RUNS=3 LAT_N=3000 WRK_SECONDS=10 WRK_CONNS=50 STREAMS=1000
# STREAM_EVENTS=5000 PACED_EVENTS=2000 ACCOUNTS=8 DB_DIR=(the temp dir; the pool's
# SQLite file, on disk like production; a tmpfs here shows what fsync costs).
set -euo pipefail
ulimit -n 65536 2>/dev/null || true

BUILD=$(cd "${1:?usage: $0 BUILD_DIR [RESULT_FILE]}" && pwd)
SRC=$(cd "$(dirname "$0")/.." && pwd)
RESULT=${2:-$BUILD/gateway-bench.md}
RUNS=${RUNS:-3}
LAT_N=${LAT_N:-3000}
WRK_SECONDS=${WRK_SECONDS:-10}
WRK_CONNS=${WRK_CONNS:-50}
STREAMS=${STREAMS:-1000}
STREAM_EVENTS=${STREAM_EVENTS:-5000}
PACED_EVENTS=${PACED_EVENTS:-2000}
ACCOUNTS=${ACCOUNTS:-8}
PROXY_CORE=0
LOAD_CORE=1

for t in taskset nginx wrk jq curl cc python3; do
  command -v "$t" >/dev/null || { echo "gateway_bench: $t is missing (bash scripts/deps.sh)" >&2; exit 1; }
done
[[ -x "$BUILD/warp2api" && -x "$BUILD/fakewarp" ]] || {
  echo "gateway_bench: $BUILD/warp2api or $BUILD/fakewarp missing" >&2
  exit 1
}
if ! taskset -c "$LOAD_CORE" true 2>/dev/null; then
  echo "gateway_bench: needs two cores (0 and 1) for taskset" >&2
  exit 1
fi

TMP=$(mktemp -d /tmp/w2a-gwbench.XXXXXX)
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { echo "gateway_bench: $*" >&2; }
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_http() { # URL: up to 10 s
  local _
  for _ in $(seq 200); do
    curl -s -o /dev/null -m 1 "$1" && return 0
    sleep 0.05
  done
  echo "gateway_bench: $1 never answered" >&2
  return 1
}
cpu_ns() { # total CPU time of every thread of PID, in ns (schedstat is ns-exact)
  local sum=0 f a _
  for f in /proc/"$1"/task/*/schedstat; do
    read -r a _ <"$f" || continue
    sum=$((sum + a))
  done
  echo "$sum"
}
status_kb() { awk -v k="$2:" '$1==k {print $2}' /proc/"$1"/status; }
kv() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2"; } # kv KEY "k=v k2=v2"
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
verdict() { awk -v v="$1" -v lim="$2" 'BEGIN {print (v != "nan" && v <= lim ? "PASS" : "FAIL")}'; }
verdict_ge() { awk -v v="$1" -v lim="$2" 'BEGIN {print (v >= lim ? "PASS" : "FAIL")}'; }
fmt() { awk -v v="$1" -v d="${2:-1}" 'BEGIN {printf "%.*f", d, v}'; }

# ---- load generator ---------------------------------------------------------------------
CLIENT=$TMP/gateway_client
cc -O2 -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -o "$CLIENT" "$SRC/bench/gateway_client.c"

# ---- fakewarp on the load core -------------------------------------------------------------
fw_args=(--port 0 --port-file "$TMP/fw.port" --quota 2000000000)
: >"$TMP/accounts.jsonl"
for i in $(seq "$ACCOUNTS"); do
  fw_args+=(--account "bench$i@fakewarp.invalid:bench-rt-$i:2000000000")
  printf '{"email":"bench%d@fakewarp.invalid","refresh_token":"bench-rt-%d","cap":%d}\n' \
    "$i" "$i" $(((STREAMS + 64) / ACCOUNTS + 1)) >>"$TMP/accounts.jsonl"
done
taskset -c "$LOAD_CORE" "$BUILD/fakewarp" "${fw_args[@]}" >"$TMP/fakewarp.log" 2>&1 &
FW_PID=$!
PIDS+=("$FW_PID")
for _ in $(seq 200); do [[ -s "$TMP/fw.port" ]] && break; sleep 0.05; done
FW_PORT=$(cat "$TMP/fw.port")
FW=http://127.0.0.1:$FW_PORT

# ---- the gateway on the proxy core -----------------------------------------------------------
GW_PORT=$(free_port)
POOL_PORT=$(free_port)
DB_DIR=${DB_DIR:-$TMP}
DB_FILE=$(mktemp -u "$DB_DIR/w2a-gwbench.XXXXXX.db")
cleanup_db() { rm -f "$DB_FILE" "$DB_FILE-wal" "$DB_FILE-shm"; }
trap 'cleanup; cleanup_db' EXIT
export W2A_ENV_FILE=/dev/null DATABASE_PATH="$DB_FILE" WARP_BASE_URL="$FW" \
  FIREBASE_SECURETOKEN_URL="$FW" FIREBASE_IDENTITY_URL="$FW" PORT="$GW_PORT" \
  POOL_SERVICE_PORT="$POOL_PORT" LOG_LEVEL=warning
"$BUILD/warp2api" accounts import "$TMP/accounts.jsonl" >/dev/null
GW_PID=""
start_gw() {
  taskset -c "$PROXY_CORE" "$BUILD/warp2api" serve >>"$TMP/gateway.log" 2>&1 &
  GW_PID=$!
  PIDS+=("$GW_PID")
  wait_http "http://127.0.0.1:$GW_PORT/healthz"
}
stop_gw() {
  kill -TERM "$GW_PID"
  wait "$GW_PID" 2>/dev/null || true
}
IDLE_RSS=()
start_gw
sleep 1
IDLE_RSS+=("$(status_kb "$GW_PID" VmRSS)")
IDLE_ANON=$(status_kb "$GW_PID" RssAnon)
IDLE_PSS=$(awk '/^Pss:/ {print $2}' /proc/"$GW_PID"/smaps_rollup)

# ---- nginx on the proxy core ---------------------------------------------------------------
NG_PORT=$(free_port)
mkdir -p "$TMP/nginx"
sed -e "s|@DIR@|$TMP/nginx|g" -e "s|@PORT@|$NG_PORT|g" -e "s|@FWPORT@|$FW_PORT|g" \
  "$SRC/bench/nginx/proxy.conf" >"$TMP/nginx/nginx.conf"
taskset -c "$PROXY_CORE" nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" \
  -e "$TMP/nginx/error.log" &
NG_MASTER=$!
PIDS+=("$NG_MASTER")
wait_http "http://127.0.0.1:$NG_PORT/_fakewarp/health"
NG_PID=$(cat /proc/"$NG_MASTER"/task/*/children | awk '{print $1}')
[[ -n "$NG_PID" ]] || { echo "gateway_bench: no nginx worker" >&2; exit 1; }
NG_IDLE_KB=$(status_kb "$NG_PID" VmRSS)

# ---- requests: the gateway's own upstream request, replayed directly and through nginx ------
chat() { # chat QUERY STREAM(true|false) -> JSON body
  jq -cn --arg q "$1" --argjson s "$2" \
    '{model:"auto",stream:$s,messages:[{role:"user",content:$q}]}'
}
chat "hi" false >"$TMP/short.json"
curl -sS -m 10 -o "$TMP/first.json" "http://127.0.0.1:$GW_PORT/v1/chat/completions" \
  -H 'content-type: application/json' --data-binary @"$TMP/short.json"
jq -e '.choices[0].message.content' "$TMP/first.json" >/dev/null || {
  echo "gateway_bench: the gateway did not answer a completion:" >&2
  cat "$TMP/first.json" >&2
  exit 1
}
curl -sS "$FW/_fakewarp/requests" | jq '[.accounts[][]] | max_by(.at_ms)' >"$TMP/upstream.json"
EMAIL=$(jq -r .email "$TMP/upstream.json")
RT=bench-rt-${EMAIL#bench}
RT=${RT%%@*}
TOKEN=$(curl -sS -XPOST "$FW/proxy/token?key=bench" --data-urlencode grant_type=refresh_token \
  --data-urlencode "refresh_token=$RT" | jq -r .id_token)
[[ "$TOKEN" == *.*.* ]] || { echo "gateway_bench: no ID token for $EMAIL" >&2; exit 1; }
mkwarp() { # mkwarp QUERY OUT: the gateway's Request with another user query
  jq --arg q "$1" '.request | .input.user_inputs.inputs[0].user_query.query = $q' \
    "$TMP/upstream.json" | "$BUILD/warp2api" proto encode --type warp.multi_agent.v1.Request >"$2"
}
UP_HEADERS=$(jq -r '.headers | to_entries[]
  | select(.key != "host" and .key != "content-length" and .key != "authorization")
  | "\(.key): \(.value)"' "$TMP/upstream.json")
mkraw() { # mkraw OUT PORT PATH BODYFILE KIND(warp|chat)
  {
    printf 'POST %s HTTP/1.1\r\nHost: 127.0.0.1:%s\r\n' "$3" "$2"
    if [[ $5 == warp ]]; then
      printf 'authorization: Bearer %s\r\n' "$TOKEN"
      while IFS= read -r h; do [[ -n "$h" ]] && printf '%s\r\n' "$h"; done <<<"$UP_HEADERS"
    else
      printf 'content-type: application/json\r\naccept: */*\r\n'
    fi
    printf 'content-length: %s\r\n\r\n' "$(stat -c %s "$4")"
    cat "$4"
  } >"$1"
}
mkwarp "hi" "$TMP/short.bin"
mkraw "$TMP/direct.req" "$FW_PORT" /ai/multi-agent "$TMP/short.bin" warp
mkraw "$TMP/nginx.req" "$NG_PORT" /ai/multi-agent "$TMP/short.bin" warp
mkraw "$TMP/gw.req" "$GW_PORT" /v1/chat/completions "$TMP/short.json" chat

# ---- 1. latency, one request at a time ---------------------------------------------------------
say "latency: $RUNS x $LAT_N sequential requests per path"
declare -A P50 P99
for r in $(seq "$RUNS"); do
  for path in direct nginx gw; do
    case $path in direct) port=$FW_PORT ;; nginx) port=$NG_PORT ;; gw) port=$GW_PORT ;; esac
    out=$(taskset -c "$LOAD_CORE" "$CLIENT" lat 127.0.0.1 "$port" "$TMP/$path.req" "$LAT_N" 300)
    say "  run $r $path: $out"
    P50[$path]+="$(kv p50_us "$out") "
    P99[$path]+="$(kv p99_us "$out") "
  done
done
added() { # added STAT(P50|P99) PATH: median over runs of (path - direct)
  local -n s=$1
  local -a d p v=()
  read -ra d <<<"${s[direct]}"
  read -ra p <<<"${s[$2]}"
  for i in "${!d[@]}"; do v+=("$(awk -v a="${p[$i]}" -v b="${d[$i]}" 'BEGIN {print a-b}')"); done
  median "${v[@]}"
}
# shellcheck disable=SC2086
{
  LAT_DIRECT_50=$(median ${P50[direct]}) LAT_DIRECT_99=$(median ${P99[direct]})
  LAT_NG_50=$(median ${P50[nginx]}) LAT_NG_99=$(median ${P99[nginx]})
  LAT_GW_50=$(median ${P50[gw]}) LAT_GW_99=$(median ${P99[gw]})
}
ADD_NG_50=$(added P50 nginx) ADD_NG_99=$(added P99 nginx)
ADD_GW_50=$(added P50 gw) ADD_GW_99=$(added P99 gw)

# ---- 2. CPU per forwarded event ---------------------------------------------------------------
stream_cpu() { # stream_cpu PATH(nginx|gw) QUERY -> "ns events"
  local pid req out c0 c1 ev
  if [[ $1 == nginx ]]; then
    pid=$NG_PID
    mkwarp "$2" "$TMP/s.bin"
    mkraw "$TMP/s.req" "$NG_PORT" /ai/multi-agent "$TMP/s.bin" warp
  else
    pid=$GW_PID
    chat "$2" true >"$TMP/s.json"
    mkraw "$TMP/s.req" "$GW_PORT" /v1/chat/completions "$TMP/s.json" chat
  fi
  # A stream that stalls (fakewarp's flow control has lost a wake-up before) is retried:
  # its CPU/event would be meaningless. Stalls are counted in the log.
  local attempt port
  port=$([[ $1 == nginx ]] && echo "$NG_PORT" || echo "$GW_PORT")
  for attempt in 1 2 3; do
    c0=$(cpu_ns "$pid")
    if out=$(CLIENT_TIMEOUT_S=15 taskset -c "$LOAD_CORE" "$CLIENT" lat 127.0.0.1 "$port" \
      "$TMP/s.req" 1 0 2>&1); then
      c1=$(cpu_ns "$pid")
      echo "$((c1 - c0)) $out"
      return 0
    fi
    say "  WARNING: $1 stream stalled or failed (attempt $attempt): $out"
    echo "$1" >>"$TMP/stalls"
  done
  echo "0 failed"
}
count_events() { # count_events QUERY CHUNKS: events each proxy forwards for QUERY
  # nginx: every SSE event of fakewarp's answer (CHUNKS text events + 9 around them);
  # gateway: every data: line (CHUNKS content chunks, the finish chunk, [DONE]). Counted
  # on a real answer; a stalled answer (see stream_cpu) falls back to those formulas.
  local n g
  mkwarp "$1" "$TMP/c.bin"
  n=$(curl -sS -m 20 -XPOST "$FW/ai/multi-agent" -H "authorization: Bearer $TOKEN" \
    -H 'content-type: application/x-protobuf' --data-binary @"$TMP/c.bin" | grep -c '^data:')
  chat "$1" true >"$TMP/c.json"
  g=$(curl -sSN -m 20 "http://127.0.0.1:$GW_PORT/v1/chat/completions" \
    -H 'content-type: application/json' --data-binary @"$TMP/c.json" | grep -c '^data:')
  ((n >= $2)) || n=$(($2 + 9))
  ((g >= $2)) || g=$(($2 + 2))
  echo "$n $g"
}
declare -A CPU_EV
for kind in burst paced; do
  if [[ $kind == burst ]]; then
    nchunks=$STREAM_EVENTS q="[[fw:text chunks=$STREAM_EVENTS size=16]] go"
  else
    nchunks=$PACED_EVENTS q="[[fw:text chunks=$PACED_EVENTS size=16 pace_ms=1]] go"
  fi
  read -r EV_NG EV_GW < <(count_events "$q" "$nchunks")
  say "cpu/event ($kind): nginx forwards $EV_NG events, the gateway $EV_GW chunks per stream"
  for r in $(seq "$RUNS"); do
    for path in nginx gw; do
      read -r ns rest < <(stream_cpu "$path" "$q")
      [[ $rest != failed ]] || continue
      ev=$([[ $path == nginx ]] && echo "$EV_NG" || echo "$EV_GW")
      per=$(awk -v n="$ns" -v e="$ev" 'BEGIN {printf "%.0f", n/e}')
      say "  run $r $path: ${ns} ns CPU, $per ns/event ($rest)"
      CPU_EV[$kind.$path]+="$per "
    done
  done
done
# shellcheck disable=SC2086
{
  CPU_B_NG=$(median ${CPU_EV[burst.nginx]}) CPU_B_GW=$(median ${CPU_EV[burst.gw]})
  CPU_P_NG=$(median ${CPU_EV[paced.nginx]}) CPU_P_GW=$(median ${CPU_EV[paced.gw]})
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (a > 0 && b > 0) printf "%.2f", a/b; else print "nan"}'; }
RATIO_B=$(ratio "$CPU_B_GW" "$CPU_B_NG")
RATIO_P=$(ratio "$CPU_P_GW" "$CPU_P_NG")

# ---- 3. throughput of short non-streamed completions ------------------------------------------
wrk_run() { # wrk_run PATH -> "req/s proxy_cpu_share fakewarp_cpu_share"
  local pid port c0 f0 c1 f1 out rps non2xx t0 t1
  if [[ $1 == nginx ]]; then
    pid=$NG_PID port=$NG_PORT
    export WRK_BODY_FILE=$TMP/short.bin WRK_PATH=/ai/multi-agent WRK_CTYPE=application/x-protobuf
    export WRK_AUTH="Bearer $TOKEN" WRK_ACCEPT=text/event-stream
    WRK_HEADERS=$(grep '^x-warp' <<<"$UP_HEADERS" | sed 's/: /:/' | paste -sd'|')
    export WRK_HEADERS
  else
    pid=$GW_PID port=$GW_PORT
    export WRK_BODY_FILE=$TMP/short.json WRK_PATH=/v1/chat/completions WRK_CTYPE=application/json
    export WRK_AUTH="" WRK_ACCEPT="*/*" WRK_HEADERS=""
  fi
  local m0 m1
  c0=$(cpu_ns "$pid") f0=$(cpu_ns "$FW_PID") t0=$(date +%s%N)
  read -r m0 _ </proc/"$pid"/schedstat
  out=$(taskset -c "$LOAD_CORE" wrk -t1 -c"$WRK_CONNS" -d"${WRK_SECONDS}s" \
    -s "$SRC/bench/gateway_wrk.lua" "http://127.0.0.1:$port")
  c1=$(cpu_ns "$pid") f1=$(cpu_ns "$FW_PID") t1=$(date +%s%N)
  read -r m1 _ </proc/"$pid"/schedstat
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  [[ -z "$non2xx" ]] || say "  WARNING: $non2xx non-2xx answers from $1"
  awk -v r="$rps" -v c=$((c1 - c0)) -v f=$((f1 - f0)) -v t=$((t1 - t0)) -v m=$((m1 - m0)) \
    'BEGIN {n = r*t/1e9; printf "%s %.2f %.2f %.1f %.1f\n", r, c/t, f/t, c/1000/n, m/1000/n}'
}
say "throughput: wrk -t1 -c$WRK_CONNS -d${WRK_SECONDS}s, $RUNS runs per path"
declare -A RPS CPUSH FWSH USREQ USMAIN
for r in $(seq "$RUNS"); do
  for path in nginx gw; do
    read -r rps sh fsh usr usm < <(wrk_run "$path")
    say "  run $r $path: $rps req/s, proxy core busy $sh, fakewarp core share $fsh, $usr us CPU/request ($usm us in the main thread)"
    RPS[$path]+="$rps " CPUSH[$path]+="$sh " FWSH[$path]+="$fsh " USREQ[$path]+="$usr " USMAIN[$path]+="$usm "
  done
done
# shellcheck disable=SC2086
{
  RPS_NG=$(median ${RPS[nginx]}) RPS_GW=$(median ${RPS[gw]})
  SH_GW=$(median ${CPUSH[gw]}) FWSH_GW=$(median ${FWSH[gw]}) US_GW=$(median ${USREQ[gw]})
  USM_GW=$(median ${USMAIN[gw]})
  SH_NG=$(median ${CPUSH[nginx]}) US_NG=$(median ${USREQ[nginx]})
}

# ---- 4. idle RSS and STREAMS concurrent streams ------------------------------------------------
SLOW="[[fw:text chunks=50 size=8 pace_ms=200]] go"
chat "$SLOW" true >"$TMP/slow.json"
mkraw "$TMP/slow-gw.req" "$GW_PORT" /v1/chat/completions "$TMP/slow.json" chat
mkwarp "$SLOW" "$TMP/slow.bin"
mkraw "$TMP/slow-nginx.req" "$NG_PORT" /ai/multi-agent "$TMP/slow.bin" warp
streams_run() { # streams_run PATH PID PORT -> "client_line|rss_at_all_live_kb|max_sampled_kb"
  local live=$TMP/live.$1 out smp=$TMP/rss.$1
  rm -f "$live" "$smp"
  # sampler on the load core: the proxy's VmRSS every 50 ms until the client is done
  taskset -c "$LOAD_CORE" bash -c 'while kill -0 '"$2"' 2>/dev/null && [ ! -e '"$smp"'.stop ]; do
      awk "/^VmRSS:/ {print \$2}" /proc/'"$2"'/status; [ -e '"$live"' ] && [ ! -e '"$smp"'.at ] &&
      awk "/^VmRSS:/ {print \$2}" /proc/'"$2"'/status >'"$smp"'.at; sleep 0.05; done >'"$smp" &
  local sp=$!
  out=$(STREAMS_LIVE_FILE=$live taskset -c "$LOAD_CORE" "$CLIENT" streams 127.0.0.1 "$3" \
    "$TMP/slow-$1.req" "$STREAMS" 120000) || true
  touch "$smp.stop"
  wait "$sp" 2>/dev/null || true
  echo "$out|$(cat "$smp.at" 2>/dev/null || echo -1)|$(sort -n "$smp" | tail -1)"
  rm -f "$smp.stop" "$smp.at"
}
say "concurrency: $STREAMS streams of 50 events 200 ms apart, $RUNS runs, fresh gateway each"
declare -a GW_PEAK=() GW_HWM=() NG_PEAK=()
for r in $(seq "$RUNS"); do
  stop_gw
  start_gw
  sleep 1
  IDLE_RSS+=("$(status_kb "$GW_PID" VmRSS)")
  IFS='|' read -r line at mx < <(streams_run gw "$GW_PID" "$GW_PORT")
  hwm=$(status_kb "$GW_PID" VmHWM)
  say "  run $r gateway: idle ${IDLE_RSS[-1]} kB; $line; RSS with all live $at kB, max sampled $mx kB, VmHWM $hwm kB"
  [[ $(kv failed "$line") == 0 && $(kv done "$line") == "$STREAMS" ]] || say "  WARNING: not every stream completed"
  GW_PEAK+=("$mx") GW_HWM+=("$hwm")
  IFS='|' read -r line at mx < <(streams_run nginx "$NG_PID" "$NG_PORT")
  say "  run $r nginx worker: $line; RSS with all live $at kB, max sampled $mx kB"
  NG_PEAK+=("$mx")
done
IDLE_KB=$(median "${IDLE_RSS[@]}")
PEAK_KB=$(median "${GW_HWM[@]}")
NG_PEAK_KB=$(median "${NG_PEAK[@]}")

# ---- report ------------------------------------------------------------------------------------
MIB() { awk -v k="$1" 'BEGIN {printf "%.1f", k/1024}'; }
V_LAT50=$(verdict "$ADD_GW_50" 150)
V_LAT99=$(verdict "$ADD_GW_99" 500)
V_CPUB=$(verdict "$RATIO_B" 2)
V_CPUP=$(verdict "$RATIO_P" 2)
V_RPS=$(verdict_ge "$RPS_GW" 10000)
V_STREAMS=$(verdict "$PEAK_KB" 65536)
V_IDLE=$(verdict "$IDLE_KB" 10240)
{
  echo "Run $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$SRC" diff --quiet 2>/dev/null || echo '+dirty'),"
  echo "$(nproc) cores ($(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)), kernel $(uname -r),"
  echo "$(nginx -v 2>&1 | sed 's/.*: //'), $(wrk -v 2>&1 | head -1 | awk '{print $1, $2}'); medians of $RUNS runs."
  echo
  echo "| target | measured | nginx (floor) | result |"
  echo "|---|---|---|---|"
  echo "| added latency p50 ≤ 150 µs | $(fmt "$ADD_GW_50") µs (gateway $(fmt "$LAT_GW_50") − direct $(fmt "$LAT_DIRECT_50")) | $(fmt "$ADD_NG_50") µs (nginx $(fmt "$LAT_NG_50")) | $V_LAT50 |"
  echo "| added latency p99 ≤ 500 µs | $(fmt "$ADD_GW_99") µs (gateway $(fmt "$LAT_GW_99") − direct $(fmt "$LAT_DIRECT_99")) | $(fmt "$ADD_NG_99") µs (nginx $(fmt "$LAT_NG_99")) | $V_LAT99 |"
  echo "| CPU per event ≤ 2× nginx, paced stream | $CPU_P_GW ns/event (${RATIO_P}×) | $CPU_P_NG ns/event | $V_CPUP |"
  echo "| CPU per event ≤ 2× nginx, burst stream | $CPU_B_GW ns/event (${RATIO_B}×) | $CPU_B_NG ns/event | $V_CPUB |"
  echo "| ≥ 10,000 short completions/s on one core | $(fmt "$RPS_GW" 0) req/s (core 0 busy $(fmt "$SH_GW" 2), $US_GW µs CPU/request) | $(fmt "$RPS_NG" 0) req/s ($US_NG µs CPU/request) | $V_RPS |"
  echo "| $STREAMS concurrent streams ≤ 64 MiB RSS | $(MIB "$PEAK_KB") MiB (VmHWM) | $(MIB "$NG_PEAK_KB") MiB (worker) | $V_STREAMS |"
  echo "| idle RSS ≤ 10 MiB | $(MIB "$IDLE_KB") MiB (anon $(MIB "$IDLE_ANON"), PSS $(MIB "$IDLE_PSS")) | $(MIB "$NG_IDLE_KB") MiB (worker) | $V_IDLE |"
  echo
  echo "Details: latency p50/p99 in µs, direct $LAT_DIRECT_50/$LAT_DIRECT_99, nginx $LAT_NG_50/$LAT_NG_99,"
  echo "gateway $LAT_GW_50/$LAT_GW_99 ($LAT_N requests per run after 300 warm-up);"
  echo "paced stream $PACED_EVENTS text events 1 ms apart, burst stream $STREAM_EVENTS text events;"
  echo "wrk -t1 -c$WRK_CONNS -d${WRK_SECONDS}s; gateway CPU per request $US_GW µs, of which $USM_GW µs on the event-loop"
  echo "thread (the rest: the pool's SQLite worker); one core at that cost: $(awk -v u="$US_GW" 'BEGIN {printf "%.0f", 1e6/u}') req/s;"
  echo "fakewarp's share of core 1 during the gateway's wrk run: $FWSH_GW;"
  echo "idle RSS samples (kB): ${IDLE_RSS[*]}; gateway VmHWM with $STREAMS streams (kB): ${GW_HWM[*]};"
  touch "$TMP/stalls"
  st=$(sort "$TMP/stalls" | uniq -c | awk '{printf "%s%s %s", (NR > 1 ? ", " : ""), $1, $2}')
  echo "long streams that stalled and were retried: ${st:-none}."
} | tee "$RESULT"
