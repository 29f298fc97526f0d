#!/usr/bin/env bash
# The gateway when things go wrong, end to end (`warp2api serve` + fakewarp + curl):
#
#  - failover before the first content byte: 429 quota, finished{quota_limit}, 403
#    blocked, 5xx, empty 200, llm_unavailable, expired token (refresh, retry the same
#    account once); MAX_ATTEMPTS=1 turns failover off;
#  - no account: 429 + Retry-After when every account is out, 503 when the pool is empty
#    (and /readyz says not ready);
#  - timeouts, each with its own error code: connect failure, first event, idle (before
#    and after content), total;
#  - after content has been streamed, a failure ends the stream with an error chunk and
#    [DONE], never a silent truncation;
#  - the client going away cancels the upstream at once and gives the lease back;
#  - back-pressure: a slow client receives a 2 MB answer whole although the per-stream
#    queue is 16 KiB (the HTTP server cuts clients whose queue passes 8× the cap, so the
#    stream only survives because the upstream is paused);
#  - SIGTERM: running streams finish inside SHUTDOWN_GRACE, new connections are refused,
#    streams still running after the grace are cut, and the process exits 0 with no
#    sanitizer report (no leaked memory or handle after aborts and faults).
#
# Usage: gateway_faults.sh <build-dir> <source-dir>
set -uo pipefail

BUILD=$(cd "${1:?usage: $0 <build-dir> <source-dir>}" && pwd)
W2A="$BUILD/warp2api"
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"
need jq curl python3

start_fakewarp --account "a@example.com:rt-alpha-0123456789abcdef" \
  --account "b@example.com:rt-bravo-0123456789abcdef" \
  --account "c@example.com:rt-charl-0123456789abcdef"

PORT=$(free_port)
APORT=$(free_port)
export W2A_ENV_FILE=/dev/null LOG_LEVEL=info LOG_FILE=""
export WARP_BASE_URL="$FW" FIREBASE_SECURETOKEN_URL="$FW" FIREBASE_IDENTITY_URL="$FW"
export QUOTA_POLL_INTERVAL=3600 PORT POOL_SERVICE_PORT=$APORT ADMIN_TOKEN=adm-secret
export KEEPALIVE_INTERVAL=30
cd "$TMP"
G="http://127.0.0.1:$PORT"
RUN=0

# new_db N: a fresh database holding the first N accounts
new_db() {
  RUN=$((RUN + 1))
  export DATABASE_PATH="$TMP/db$RUN/accounts.db"
  local i=0 e
  for e in a:alpha b:bravo c:charl; do
    ((i++ < $1)) || break
    printf 'rt-%s-0123456789abcdef\n' "${e#*:}" | "$W2A" accounts add --email "${e%%:*}@example.com" >/dev/null 2>&1
  done
}
start_gw() { # start_gw [ENV=VAL...]; log in $TMP/gw$RUN.log
  GW_LOG="$TMP/gw$RUN.log"
  env "$@" "$W2A" serve >"$GW_LOG" 2>&1 &
  GW_PID=$!
  PIDS+=($GW_PID)
  for _ in $(seq 100); do curl -s "$G/healthz" >/dev/null 2>&1 && return 0; sleep 0.05; done
  bad "gateway did not start"
  return 1
}
stop_gw() {
  kill -TERM "$GW_PID" 2>/dev/null
  wait "$GW_PID"
  local rc=$?
  check "run $RUN: clean exit on SIGTERM (rc $rc)" test $rc -eq 0
  check "run $RUN: no sanitizer report" bash -c "! grep -q Sanitizer '$GW_LOG'"
  [[ $rc -eq 0 ]] || tail -20 "$GW_LOG" >&2
}
scenario() { curl -s -X POST "$FW/_fakewarp/scenario" -d "$1" >/dev/null; }
fw_reset() { curl -s -X POST "$FW/_fakewarp/reset" -d '{}' >/dev/null; }
call() { # call JSON-BODY → status in $code, body in $TMP/body, headers in $TMP/hdr
  code=$(curl -s -D "$TMP/hdr" -o "$TMP/body" -w '%{http_code}' -H 'content-type: application/json' \
    "$G/v1/chat/completions" -d "$1")
}
HI='{"messages":[{"role":"user","content":"hi"}]}'
attempts_of_last() { grep 'POST /v1/chat/completions' "$GW_LOG" | tail -1 | sed -n 's/.*attempts=\([0-9]*\).*/\1/p'; }
admin() { curl -s -H "authorization: Bearer adm-secret" "http://127.0.0.1:$APORT$1"; }

# ---- failover ------------------------------------------------------------------------
new_db 3
start_gw
for case in "quota|[[fw:quota]]" "quota_limit in stream|[[fw:quota_stream]]" "403 blocked|[[fw:blocked]]" \
  "HTTP 500|[[fw:status 500]]" "HTTP 503|[[fw:status 503]]" "empty 200|[[fw:empty]]" \
  "llm_unavailable|[[fw:finish llm_unavailable]]"; do
  name=${case%%|*}
  fw_reset
  scenario "{\"scenario\":\"${case#*|}\",\"times\":1}"
  call "$HI"
  check "failover on $name: 200 from another account (attempts $(attempts_of_last))" \
    test "$code:$(jq -r .object "$TMP/body"):$(attempts_of_last)" = "200:chat.completion:2"
  # the accounts marked bad by this case would starve later ones: start fresh
  stop_gw >/dev/null 2>&1
  new_db 3
  start_gw
done
fw_reset
scenario '{"scenario":"[[fw:quota]]","times":1}'
call "$HI"
nq=0
for _ in $(seq 20); do # the pool records outcomes on its worker thread
  nq=$(admin /api/accounts | jq -r '[.accounts[].status] | map(select(. == "quota_exhausted")) | length')
  [[ $nq -ge 1 ]] && break
  sleep 0.1
done
check "the account that answered 429 is quota_exhausted in the pool after failover ($nq)" test "$nq" -ge 1

fw_reset
before=$(curl -s "$FW/_fakewarp/stats" | jq .refreshes)
scenario '{"scenario":"[[fw:status 401]]","times":1}'
call "$HI"
after=$(curl -s "$FW/_fakewarp/stats" | jq .refreshes)
check "expired token: refresh, retry once, 200 (refreshes $before → $after)" \
  test "$code:$((after > before))" = "200:1"

fw_reset
scenario '{"scenario":"[[fw:quota]]"}'
call "$HI"
check "every account out of quota → 429 accounts_exhausted with Retry-After" \
  test "$code:$(jq -r .error.code "$TMP/body"):$(grep -ci '^retry-after: [0-9]' "$TMP/hdr")" = "429:accounts_exhausted:1"
check "… and the message says why" bash -c "jq -r .error.message '$TMP/body' | grep -q 'no Warp account can serve'"
scenario '{"scenario":""}'
stop_gw

new_db 3
start_gw MAX_ATTEMPTS=1
fw_reset
scenario '{"scenario":"[[fw:status 500]]","times":1}'
call "$HI"
check "MAX_ATTEMPTS=1: no failover, 502 upstream_error" \
  test "$code:$(jq -r .error.code "$TMP/body"):$(attempts_of_last)" = "502:upstream_error:1"
stop_gw

new_db 0
start_gw
call "$HI"
check "empty pool → 503 no_accounts, message says the pool is empty" \
  test "$code:$(jq -r .error.code "$TMP/body"):$(jq -r '.error.message|test("pool is empty")' "$TMP/body")" = "503:no_accounts:true"
check "/readyz → 503 when no account is usable" test "$(curl -s -o /dev/null -w '%{http_code}' "$G/readyz")" = 503
stop_gw

# ---- timeouts ------------------------------------------------------------------------
new_db 1
closed=$(free_port)
start_gw WARP_BASE_URL="http://127.0.0.1:$closed" MAX_ATTEMPTS=2
call "$HI"
check "connect failure → 502 upstream_connect_failed (after MAX_ATTEMPTS)" \
  test "$code:$(jq -r .error.code "$TMP/body")" = "502:upstream_connect_failed"
stop_gw

new_db 2
start_gw WARP_FIRST_EVENT_TIMEOUT=700ms WARP_IDLE_TIMEOUT=700ms WARP_TOTAL_TIMEOUT=2500ms
fw_reset
call '{"messages":[{"role":"user","content":"[[fw:stall first_ms=2000]] hi"}]}'
check "first-event timeout → 504 first_event_timeout" test "$code:$(jq -r .error.code "$TMP/body")" = "504:first_event_timeout"
call '{"messages":[{"role":"user","content":"[[fw:text chunks=4]] [[fw:stall between_ms=2000]] hi"}]}'
check "idle timeout → 504 idle_timeout" test "$code:$(jq -r .error.code "$TMP/body")" = "504:idle_timeout"
call '{"messages":[{"role":"user","content":"[[fw:text chunks=20 size=4 pace_ms=300]] hi"}]}'
check "total timeout → 504 total_timeout" test "$code:$(jq -r .error.code "$TMP/body")" = "504:total_timeout"
curl -sN "$G/v1/chat/completions" -d '{"stream":true,"messages":[{"role":"user","content":"[[fw:text chunks=6 size=4]] [[fw:stall between_ms=2000 after=8]] hi"}]}' >"$TMP/s"
check "idle timeout after streamed content → content, error chunk, [DONE]" \
  test "$(grep -c '"content"' "$TMP/s"):$(grep '"error"' "$TMP/s" | sed 's/^data: //' | jq -r .error.code):$(tail -c 14 "$TMP/s" | tr -d '\n')" = \
  "$(grep -c '"content"' "$TMP/s"):idle_timeout:data: [DONE]"
check "… and some content did arrive first" test "$(grep -c '"content"' "$TMP/s")" -ge 1
stop_gw

# ---- mid-stream failure, abort, back-pressure --------------------------------------------
new_db 2
start_gw STREAM_QUEUE_MAX_BYTES=16K
fw_reset
# (paced, so content has reached the client before the cut; unpaced, both may arrive in one
# read, and then failing over - the client has seen nothing yet - is right too)
curl -sN "$G/v1/chat/completions" -d '{"stream":true,"messages":[{"role":"user","content":"[[fw:text chunks=8 size=4 pace_ms=150]] [[fw:cut after=10]] hi"}]}' >"$TMP/s"
check "upstream cut after content → error chunk + [DONE], not a silent end" \
  test "$(grep -c '"error"' "$TMP/s"):$(tail -c 14 "$TMP/s" | tr -d '\n')" = "1:data: [DONE]"
check "… and no finish_reason stop was claimed" bash -c "! grep -q '\"finish_reason\":\"stop\"' '$TMP/s'"
# serve keeps request leases in memory (LEASES=auto): the admin API still counts them
fw_reset
curl -sN "$G/v1/chat/completions" -d '{"stream":true,"messages":[{"role":"user","content":"[[fw:text chunks=8 size=4 pace_ms=100]] hi"}]}' >/dev/null &
cl=$!
sleep 0.4
st=$(admin /api/accounts/status)
check "a request's in-memory lease shows in /api/accounts/status ($(jq -c '{active_leases, leased: .pool_stats.leased_accounts}' <<<"$st"))" \
  test "$(jq '[.active_leases, .pool_stats.leased_accounts] | join(",")' -r <<<"$st")" = "1,1"
held=$(admin /api/accounts | jq -c '[.accounts[] | select(.memory_leases == 1)][0] | {email, selectable, not_selectable_reason}')
check "… and on its account, which is not selectable at cap 1 ($held)" \
  test "$(jq -r '[.selectable, (.not_selectable_reason | test("leased to its cap"))] | join(",")' <<<"$held")" = "false,true"
wait $cl
check "… and is gone when the request ends" test "$(admin /api/accounts/status | jq .active_leases)" = 0
grep -q "request leases in memory" "$GW_LOG"
check "… (serve logged that its request leases live in memory)" test $? -eq 0
fw_reset
ab0=$(curl -s "$FW/_fakewarp/stats" | jq .abandoned)
curl -sN --max-time 1 "$G/v1/chat/completions" -d '{"stream":true,"messages":[{"role":"user","content":"[[fw:text chunks=100 size=4 pace_ms=100]] hi"}]}' >/dev/null 2>&1
sleep 0.5
ab1=$(curl -s "$FW/_fakewarp/stats" | jq .abandoned)
check "client gone → upstream transfer cancelled at once (abandoned $ab0 → $ab1)" test "$ab1" -gt "$ab0"
check "client gone → lease released" test "$(admin /api/accounts/status | jq .active_leases)" = 0
curl -sN --limit-rate 400k "$G/v1/chat/completions" \
  -d '{"stream":true,"messages":[{"role":"user","content":"[[fw:text chunks=200 size=10000]] hi"}]}' >"$TMP/big"
n=$(grep -c '"content"' "$TMP/big")
check "back-pressure: a slow client gets the whole 2 MB answer through a 16 KiB queue ($n chunks)" \
  test "$n:$(tail -c 14 "$TMP/big" | tr -d '\n')" = "200:data: [DONE]"
stop_gw

# ---- graceful shutdown -----------------------------------------------------------------
new_db 2
start_gw SHUTDOWN_GRACE=5
curl -sN "$G/v1/chat/completions" -d '{"stream":true,"messages":[{"role":"user","content":"[[fw:text chunks=10 size=4 pace_ms=200]] hi"}]}' >"$TMP/g1" &
c1=$!
sleep 0.5
kill -TERM "$GW_PID"
sleep 0.3
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$G/healthz")
check "after SIGTERM new connections are refused (got $code)" test "$code" = 000
wait $c1
check "a stream running at SIGTERM finishes within the grace period" \
  test "$(grep -c '"content"' "$TMP/g1"):$(tail -c 14 "$TMP/g1" | tr -d '\n')" = "10:data: [DONE]"
wait "$GW_PID"
rc=$?
check "… then the process exits 0 (rc $rc)" test $rc -eq 0
check "… with no sanitizer report" bash -c "! grep -q Sanitizer '$GW_LOG'"

new_db 2
start_gw SHUTDOWN_GRACE=1
curl -sN "$G/v1/chat/completions" -d '{"stream":true,"messages":[{"role":"user","content":"[[fw:text chunks=100 size=4 pace_ms=100]] hi"}]}' >"$TMP/g2" &
c2=$!
sleep 0.4
t0=$(date +%s%3N)
kill -TERM "$GW_PID"
wait "$GW_PID"
rc=$?
t1=$(date +%s%3N)
wait $c2
check "a stream still running after the grace is cut and the process ends ($((t1 - t0)) ms, rc $rc)" \
  test "$rc:$(((t1 - t0) < 4000))" = "0:1"
check "… no [DONE] was faked for the cut stream" bash -c "! grep -q 'DONE' '$TMP/g2'"
check "… and no sanitizer report (leaks) after the aborts" bash -c "! grep -q Sanitizer '$GW_LOG'"

[[ $failed -eq 0 ]] || { echo "--- last gateway log (tail)"; tail -30 "$GW_LOG"; } >&2
summary
