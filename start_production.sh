#!/usr/bin/env bash
# start_production.sh - start warp2api the way the seed did: the account-pool service
# (`warp2api pool`, admin API on POOL_SERVICE_PORT, default 8019) first, then the gateway
# (`warp2api gateway`, PORT, default 8000), both sharing DATABASE_PATH. With --single,
# one `warp2api serve` process runs both.
#
# Each process gets a pid file in run/ and a log in logs/ (logs/pool-service.log,
# logs/warp2api.log). The script waits for GET /health on the pool and GET /healthz on
# the gateway, and on failure prints the end of the log and stops what it started.
#
# usage: ./start_production.sh [--single] [--env-file FILE] [--timeout SECONDS]
# environment: WARP2API_BIN (default build/warp2api), W2A_RUN_DIR (default run),
#              W2A_LOG_DIR (default logs).
set -euo pipefail

cd "$(dirname "$0")"

SINGLE=0
TIMEOUT=30
ENV_ARGS=()
while (($#)); do
  case "$1" in
  --single) SINGLE=1 ;;
  --env-file)
    [[ $# -ge 2 ]] || { echo "start_production.sh: --env-file needs a file" >&2; exit 2; }
    ENV_ARGS=(--env-file "$2")
    shift
    ;;
  --timeout)
    [[ $# -ge 2 && "$2" =~ ^[0-9]+$ ]] || {
      echo "start_production.sh: --timeout needs a number of seconds" >&2
      exit 2
    }
    TIMEOUT=$2
    shift
    ;;
  -h | --help)
    sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  *)
    echo "start_production.sh: unknown argument $1 (see --help)" >&2
    exit 2
    ;;
  esac
  shift
done

BIN=${WARP2API_BIN:-build/warp2api}
RUN_DIR=${W2A_RUN_DIR:-run}
LOG_DIR=${W2A_LOG_DIR:-logs}
if [[ ! -x "$BIN" ]]; then
  echo "start_production.sh: $BIN not found; build it first (make build)" >&2
  exit 1
fi
command -v curl >/dev/null || { echo "start_production.sh: curl is required" >&2; exit 1; }
mkdir -p "$RUN_DIR" "$LOG_DIR"

# The effective configuration, as the binary itself resolves it (env file + environment).
conf() { "$BIN" "${ENV_ARGS[@]}" config | sed -n "s/^$1=//p" | head -n1; }
if ! conf PORT >/dev/null 2>&1; then
  echo "start_production.sh: configuration error:" >&2
  "$BIN" "${ENV_ARGS[@]}" config >/dev/null || true
  exit 1
fi
POOL_HOST=$(conf POOL_SERVICE_HOST)
POOL_PORT=$(conf POOL_SERVICE_PORT)
GW_HOST=$(conf HOST)
GW_PORT=$(conf PORT)
# A wildcard bind is reached through loopback.
probe_host() {
  case "$1" in
  0.0.0.0 | "") echo 127.0.0.1 ;;
  :: | "[::]") echo "[::1]" ;;
  *:*) echo "[$1]" ;;
  *) echo "$1" ;;
  esac
}

running() { # pidfile
  [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null
}

STARTED=()
fail() {
  echo "start_production.sh: $1" >&2
  if [[ -n "${2:-}" && -f "$2" ]]; then
    echo "---- last lines of $2 ----" >&2
    tail -n 20 "$2" >&2
  fi
  for pf in "${STARTED[@]}"; do
    if running "$pf"; then kill -TERM "$(cat "$pf")" 2>/dev/null || true; fi
    rm -f "$pf"
  done
  exit 1
}

start() { # name pidfile logfile url args...
  local name=$1 pidfile=$2 log=$3 url=$4
  shift 4
  if running "$pidfile"; then
    echo "$name is already running (pid $(cat "$pidfile")); run ./stop_production.sh first" >&2
    exit 1
  fi
  rm -f "$pidfile"
  echo "==== $(date '+%F %T') starting $name ====" >>"$log"
  nohup "$BIN" "${ENV_ARGS[@]}" "$@" >>"$log" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$pidfile"
  STARTED+=("$pidfile")
  local deadline=$((SECONDS + TIMEOUT))
  while ((SECONDS < deadline)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      fail "$name exited during start-up" "$log"
    fi
    if curl -fsS --max-time 2 -o /dev/null "$url" 2>/dev/null; then
      echo "$name started (pid $pid), healthy at $url, log $log"
      return 0
    fi
    sleep 0.2
  done
  fail "$name did not become healthy at $url within ${TIMEOUT}s" "$log"
}

POOL_URL="http://$(probe_host "$POOL_HOST"):$POOL_PORT/health"
GW_URL="http://$(probe_host "$GW_HOST"):$GW_PORT/healthz"

if ((SINGLE)); then
  start "warp2api serve" "$RUN_DIR/warp2api.pid" "$LOG_DIR/warp2api.log" "$POOL_URL" serve
  deadline=$((SECONDS + TIMEOUT))
  until curl -fsS --max-time 2 -o /dev/null "$GW_URL" 2>/dev/null; do
    ((SECONDS < deadline)) || fail "gateway did not become healthy at $GW_URL" \
      "$LOG_DIR/warp2api.log"
    sleep 0.2
  done
  echo "gateway healthy at $GW_URL"
else
  start "pool service" "$RUN_DIR/pool-service.pid" "$LOG_DIR/pool-service.log" "$POOL_URL" pool
  start "gateway" "$RUN_DIR/warp2api.pid" "$LOG_DIR/warp2api.log" "$GW_URL" gateway
fi
echo "all services started; stop them with ./stop_production.sh"
