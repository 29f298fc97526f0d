#!/usr/bin/env bash
# run.sh - every benchmark, one after the other (make bench → bash bench/run.sh build).
#
#   bash bench/run.sh BUILD_DIR      (a release build: make build)
#
# 1. every bench_* executable in BUILD_DIR that runs on its own (CMake builds one per
#    bench/bench_*.c), each printing its own results;
# 2. every bench/bench_*.sh driver (it starts its servers and runs its own client, e.g.
#    bench_fakewarp.sh drives bench_fakewarp), given BUILD_DIR;
# 3. bench_http_server under wrk (a server: it runs until killed);
# 4. bench/gateway_bench.sh: the gateway against nginx and a direct call (see its header).
# Everything goes to the terminal and to BUILD_DIR/bench-results.log; the gateway's
# summary table also to BUILD_DIR/gateway-bench.md. A failing benchmark is reported and
# the next one still runs; the exit status is 1 if any failed. Each step has a time
# limit (STEP_TIMEOUT, default 300 s) so the whole run stays bounded (about 6-8 min).
set -uo pipefail

BUILD=$(cd "${1:?usage: $0 BUILD_DIR}" && pwd) || exit 2
SRC=$(cd "$(dirname "$0")/.." && pwd)
LOG=$BUILD/bench-results.log
STEP_TIMEOUT=${STEP_TIMEOUT:-300}
export W2A_SRC=$SRC W2A_BUILD=$BUILD
failed=()

: >"$LOG"
exec > >(tee -a "$LOG") 2>&1

echo "# warp2api benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "# $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), kernel $(uname -r)"
echo "# commit $(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo '?'), build $BUILD"
echo "# load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"

step() { # step NAME CMD...: run with a time limit, remember failures
  local name=$1 rc t0
  shift
  echo
  echo "=== $name"
  t0=$(date +%s)
  timeout --kill-after=10 "$STEP_TIMEOUT" "$@"
  rc=$?
  echo "=== $name: exit $rc, $(($(date +%s) - t0)) s"
  ((rc == 0)) || failed+=("$name")
}

# bench_http_server: a server; measure it with wrk, server on core 0 and wrk on core 1.
http_server_bench() {
  local port pid rc
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  taskset -c 0 "$BUILD/bench_http_server" "$port" 2>/dev/null &
  pid=$!
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.05; done
  taskset -c 1 wrk -t1 -c50 -d5s "http://127.0.0.1:$port/"
  rc=$?
  kill -TERM "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  return $rc
}

export BUILD
export -f http_server_bench # timeout runs commands, not functions: bash -c runs it
shopt -s nullglob
for exe in "$BUILD"/bench_*; do
  name=$(basename "$exe")
  [[ -x "$exe" && -f "$exe" ]] || continue
  [[ -f "$SRC/bench/$name.sh" ]] && continue # driven by its script below
  if [[ $name == bench_http_server ]]; then
    if command -v wrk >/dev/null; then step "$name (wrk -t1 -c50 -d5s)" bash -c http_server_bench
    else echo "=== $name: skipped (wrk missing)"; fi
    continue
  fi
  step "$name" "$exe"
done
for drv in "$SRC"/bench/bench_*.sh; do
  step "$(basename "$drv")" bash "$drv" "$BUILD"
done
step "gateway_bench.sh" bash "$SRC/bench/gateway_bench.sh" "$BUILD" "$BUILD/gateway-bench.md"

echo
if ((${#failed[@]})); then
  echo "# failed: ${failed[*]}"
  echo "# results: $LOG"
  exit 1
fi
echo "# all benchmarks ran; results: $LOG"
