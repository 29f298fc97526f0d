#!/usr/bin/env bash
# stop_production.sh - stop what start_production.sh started: for each pid file in run/
# (gateway first, then the pool service) send SIGTERM, wait up to --timeout seconds
# (default 40: the gateway lets running streams finish for SHUTDOWN_GRACE, 30 s), then
# SIGKILL. Stale pid files (process gone) are removed.
#
# usage: ./stop_production.sh [--timeout SECONDS]
# environment: W2A_RUN_DIR (default run).
set -euo pipefail

cd "$(dirname "$0")"

TIMEOUT=40
while (($#)); do
  case "$1" in
  --timeout)
    [[ $# -ge 2 && "$2" =~ ^[0-9]+$ ]] || {
      echo "stop_production.sh: --timeout needs a number of seconds" >&2
      exit 2
    }
    TIMEOUT=$2
    shift
    ;;
  -h | --help)
    sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  *)
    echo "stop_production.sh: unknown argument $1 (see --help)" >&2
    exit 2
    ;;
  esac
  shift
done

RUN_DIR=${W2A_RUN_DIR:-run}
status=0
stopped=0

stop() { # name pidfile
  local name=$1 pidfile=$2 pid
  [[ -f "$pidfile" ]] || return 0
  pid=$(cat "$pidfile")
  if [[ ! "$pid" =~ ^[0-9]+$ ]]; then
    echo "$name: bad pid file $pidfile, removed" >&2
    rm -f "$pidfile"
    return 0
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "$name: not running (stale pid file removed)"
    rm -f "$pidfile"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + TIMEOUT))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "$name (pid $pid) did not stop within ${TIMEOUT}s; sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.2
    if kill -0 "$pid" 2>/dev/null; then
      echo "$name (pid $pid) survived SIGKILL" >&2
      status=1
      return 0
    fi
  fi
  rm -f "$pidfile"
  echo "$name stopped (pid $pid)"
  stopped=$((stopped + 1))
}

stop "gateway" "$RUN_DIR/warp2api.pid"
stop "pool service" "$RUN_DIR/pool-service.pid"
((stopped)) || echo "nothing was running"
exit $status
