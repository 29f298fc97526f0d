# lib.bash - the set-up every integration script shares (sourced, not run; the name does
# not end in .sh, so ctest does not take it for a test). tests/fixtures/fakewarp/lib.bash
# builds on it.
#
# Sourcing it gives:
#   TMP        a fresh directory, removed at exit;
#   PIDS       background processes: at exit each gets SIGTERM and is waited for, after
#              the script's own on_cleanup function when it defines one;
#   ok, bad, check, eq and the passed/failed counters they keep;
#   summary    prints "N passed, M failed" and fails unless M is 0 (end the script with it);
#   need, free_port, start_fakewarp (below).
# ASAN_OPTIONS defaults to detect_leaks=1.

TMP=$(mktemp -d)
PIDS=()
passed=0
failed=0
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}

cleanup() {
  if declare -F on_cleanup >/dev/null; then on_cleanup; fi
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT

ok() { echo "ok   - $1"; passed=$((passed + 1)); }
bad() { echo "FAIL - $1" >&2; failed=$((failed + 1)); }
check() { # description, then a command; ok if it succeeds
  local d=$1
  shift
  if "$@"; then ok "$d"; else bad "$d"; fi
}
eq() { # description expected actual
  if [[ "$2" == "$3" ]]; then ok "$1"; else bad "$1: expected [$2], got [$3]"; fi
}
summary() {
  echo "$passed passed, $failed failed"
  ((failed == 0))
}

# need TOOL...: stop here, as one failed check, unless every TOOL is installed
need() {
  local t
  for t in "$@"; do
    command -v "$t" >/dev/null || { echo "FAIL: $t not installed" >&2; echo "0 passed, 1 failed"; exit 1; }
  done
}

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

# start_fakewarp [fakewarp args...]: fakewarp on a free loopback port (output in
# $TMP/fakewarp.log, pid in PIDS); sets FW to its base URL. Needs BUILD.
start_fakewarp() {
  "$BUILD/fakewarp" --port 0 --port-file "$TMP/fw.port" "$@" >"$TMP/fakewarp.log" 2>&1 &
  PIDS+=("$!")
  for _ in $(seq 100); do [[ -s "$TMP/fw.port" ]] && break; sleep 0.05; done
  if [[ ! -s "$TMP/fw.port" ]]; then
    echo "FAIL: fakewarp did not start" >&2
    cat "$TMP/fakewarp.log" >&2
    echo "0 passed, 1 failed"
    exit 1
  fi
  FW="http://127.0.0.1:$(cat "$TMP/fw.port")"
}
