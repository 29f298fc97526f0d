#!/usr/bin/env bash
# start_production.sh / stop_production.sh: the two-process start (pool, then gateway)
# with pid files, logs and health waits; refusing a second start; a clean stop; the
# --single mode; a start that fails (port taken) cleans up after itself; stale pid files;
# SIGKILL after the timeout for a process that ignores SIGTERM; bad arguments.
#
# Usage: pool_admin_scripts.sh <build-dir> <source-dir>
set -euo pipefail

BUILD=$(cd "${1:?usage: $0 <build-dir> <source-dir>}" && pwd)
SRC=$(cd "${2:?usage: $0 <build-dir> <source-dir>}" && pwd)
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"
export WARP2API_BIN="$BUILD/warp2api" W2A_RUN_DIR="$TMP/run" W2A_LOG_DIR="$TMP/logs"
START="$SRC/start_production.sh"
STOP="$SRC/stop_production.sh"
BLOCKER=""
on_cleanup() {
  "$STOP" --timeout 5 >/dev/null 2>&1 || true
  [[ -n "$BLOCKER" ]] && kill "$BLOCKER" 2>/dev/null || true
}

POOL_PORT=$(free_port)
GW_PORT=$(free_port)
cat >"$TMP/test.env" <<EOF
POOL_SERVICE_HOST=127.0.0.1
POOL_SERVICE_PORT=$POOL_PORT
HOST=127.0.0.1
PORT=$GW_PORT
DATABASE_PATH=$TMP/data/accounts.db
WARP_BASE_URL=http://127.0.0.1:1
LOG_LEVEL=info
SHUTDOWN_GRACE=2
EOF
E=(--env-file "$TMP/test.env")

runs() { # EXPECTED DESC CMD...
  local want=$1 desc=$2 rc=0
  shift 2
  "$@" >"$TMP/out" 2>&1 || rc=$?
  if ((rc == want)); then return 0; fi
  bad "$desc: exit $rc, expected $want: $(tail -c 600 "$TMP/out")"
  return 1
}
alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# ---- bad arguments ----------------------------------------------------------------------
runs 2 "start with an unknown argument" "$START" --bogus && grep -q "unknown argument" "$TMP/out" && ok "start: unknown argument → 2"
runs 2 "start --timeout x" "$START" --timeout x && ok "start: bad --timeout → 2"
runs 2 "stop with an unknown argument" "$STOP" --bogus && ok "stop: unknown argument → 2"
runs 0 "start --help" "$START" --help && grep -q "usage" "$TMP/out" && ok "start --help"

# ---- two processes -----------------------------------------------------------------------
if runs 0 "start (pool, then gateway)" "$START" "${E[@]}" --timeout 30; then
  ok "start_production.sh starts both and waits for health"
  grep -q "pool service started" "$TMP/out" && grep -q "gateway started" "$TMP/out" && ok "start reports both" || bad "start output: $(cat "$TMP/out")"
fi
alive "$TMP/run/pool-service.pid" && ok "pool pid file names a live process" || bad "no live pool pid"
alive "$TMP/run/warp2api.pid" && ok "gateway pid file names a live process" || bad "no live gateway pid"
[[ -s "$TMP/logs/pool-service.log" && -s "$TMP/logs/warp2api.log" ]] && ok "logs in logs/pool-service.log and logs/warp2api.log" || bad "logs missing: $(ls "$TMP/logs" 2>&1)"
curl -fs "http://127.0.0.1:$POOL_PORT/health" >/dev/null && ok "pool /health answers" || bad "pool /health"
curl -fs "http://127.0.0.1:$GW_PORT/healthz" >/dev/null && ok "gateway /healthz answers" || bad "gateway /healthz"
runs 1 "a second start is refused" "$START" "${E[@]}" && grep -q "already running" "$TMP/out" && ok "second start refused: already running"
POOL_PID=$(cat "$TMP/run/pool-service.pid" 2>/dev/null || echo 0)
GW_PID=$(cat "$TMP/run/warp2api.pid" 2>/dev/null || echo 0)
if runs 0 "stop" "$STOP" --timeout 20; then
  ! kill -0 "$POOL_PID" 2>/dev/null && ! kill -0 "$GW_PID" 2>/dev/null && ok "stop ends both processes" || bad "processes survived stop"
  [[ ! -e "$TMP/run/pool-service.pid" && ! -e "$TMP/run/warp2api.pid" ]] && ok "stop removes the pid files" || bad "pid files left"
  grep -q "SIGKILL" "$TMP/out" && bad "stop needed SIGKILL for a healthy service" || ok "SIGTERM was enough"
fi
runs 0 "stop with nothing running" "$STOP" && grep -q "nothing was running" "$TMP/out" && ok "stop when nothing runs"
grep -qE 'AddressSanitizer|LeakSanitizer|runtime error' "$TMP/logs/"*.log && bad "sanitizer report in the logs" || ok "no sanitizer reports in the logs"

# ---- one process (--single) ----------------------------------------------------------------
if runs 0 "start --single" "$START" "${E[@]}" --single --timeout 30; then
  [[ ! -e "$TMP/run/pool-service.pid" ]] && alive "$TMP/run/warp2api.pid" && ok "--single runs one warp2api serve" || bad "--single pid files"
  curl -fs "http://127.0.0.1:$POOL_PORT/health" >/dev/null && curl -fs "http://127.0.0.1:$GW_PORT/healthz" >/dev/null && ok "--single serves both ports" || bad "--single health"
fi
runs 0 "stop after --single" "$STOP" --timeout 20 && [[ ! -e "$TMP/run/warp2api.pid" ]] && ok "stop after --single"

# ---- a start that fails cleans up ------------------------------------------------------------
python3 -c "import socket,time;s=socket.socket();s.bind(('127.0.0.1',$POOL_PORT));s.listen();time.sleep(120)" &
BLOCKER=$!
sleep 0.3
if runs 1 "start with the pool port taken fails" "$START" "${E[@]}" --timeout 5; then
  grep -q "last lines of" "$TMP/out" && ok "failed start prints the end of the log" || bad "failed start output: $(cat "$TMP/out")"
  [[ ! -e "$TMP/run/pool-service.pid" && ! -e "$TMP/run/warp2api.pid" ]] && ok "failed start leaves no pid files" || bad "pid files after a failed start"
fi
kill "$BLOCKER" 2>/dev/null || true
wait "$BLOCKER" 2>/dev/null || true
BLOCKER=""

# ---- stale pid file; a process that ignores SIGTERM ------------------------------------------
mkdir -p "$TMP/run"
bash -c 'exit 0' &
DEAD=$!
wait "$DEAD" || true
echo "$DEAD" >"$TMP/run/pool-service.pid"
runs 0 "stop with a stale pid file" "$STOP" && grep -q "stale pid file removed" "$TMP/out" && [[ ! -e "$TMP/run/pool-service.pid" ]] && ok "stale pid file removed"
bash -c 'trap "" TERM; while :; do sleep 0.1; done' &
STUBBORN=$!
echo "$STUBBORN" >"$TMP/run/warp2api.pid"
runs 0 "stop a process that ignores SIGTERM" "$STOP" --timeout 1 && grep -q "SIGKILL" "$TMP/out" && ! kill -0 "$STUBBORN" 2>/dev/null && ok "SIGKILL after the timeout"
wait "$STUBBORN" 2>/dev/null || true

summary
