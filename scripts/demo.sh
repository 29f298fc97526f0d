#!/usr/bin/env bash
# make demo: fakewarp plus warp2api with one demo account, so the whole path can be
# tried with curl in one command. Nothing here talks to the real Warp.
set -euo pipefail
build=${1:-build}
cd "$(dirname "$0")/.."
dir=$(mktemp -d /tmp/warp2api-demo.XXXXXX)
fw_pid=""
cleanup() {
  [ -n "${gw_pid:-}" ] && kill "$gw_pid" 2>/dev/null || true
  [ -n "$fw_pid" ] && kill "$fw_pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT INT TERM

"$build/fakewarp" --port 0 --port-file "$dir/fw.port" \
  --account "demo@fakewarp.invalid:demo-refresh-token:1000" >"$dir/fakewarp.log" 2>&1 &
fw_pid=$!
for _ in $(seq 100); do [ -s "$dir/fw.port" ] && break; sleep 0.05; done
[ -s "$dir/fw.port" ] || { echo "demo: fakewarp did not start"; cat "$dir/fakewarp.log"; exit 1; }
fw="http://127.0.0.1:$(cat "$dir/fw.port")"

export W2A_ENV_FILE=/dev/null DATABASE_PATH="$dir/accounts.db" WARP_BASE_URL="$fw" \
  FIREBASE_SECURETOKEN_URL="$fw" FIREBASE_IDENTITY_URL="$fw" PORT="${PORT:-8000}" \
  POOL_SERVICE_PORT="${POOL_SERVICE_PORT:-8019}" LOG_LEVEL="${LOG_LEVEL:-info}"
printf 'demo-refresh-token\n' | "$build/warp2api" accounts add --email demo@fakewarp.invalid >/dev/null

cat <<BANNER

  ###################################################################
  #  DEMO MODE: warp2api is talking to fakewarp, NOT to Warp.       #
  #  One demo account (demo@fakewarp.invalid); answers are canned.  #
  ###################################################################

  Try:
    curl -s localhost:$PORT/v1/models | jq .
    curl -s localhost:$PORT/v1/chat/completions -H 'content-type: application/json' \\
      -d '{"model":"claude-4-5-sonnet","messages":[{"role":"user","content":"hello"}]}' | jq .
    curl -sN localhost:$PORT/v1/chat/completions -H 'content-type: application/json' \\
      -d '{"model":"auto","stream":true,"messages":[{"role":"user","content":"[[fw:reasoning]] hi"}]}'
    curl -s localhost:$POOL_SERVICE_PORT/api/accounts/status | jq .

  Ctrl-C stops both.
BANNER
"$build/warp2api" serve &
gw_pid=$!
wait "$gw_pid"
