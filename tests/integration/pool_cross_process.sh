#!/usr/bin/env bash
# Two processes on one database (`warp2api gateway` twice, leases in the database):
#
#  - single-flight refresh across processes: both start at once and both want the
#    account's first ID token (for Warp's model catalog): one refresh. Tokens live 302 s
#    here, so 2 s later they are inside the 300 s refresh margin; then 40 concurrent
#    requests, 20 at each process, while fakewarp answers slowly (so both processes want
#    a new token at once): exactly one more refresh, and all 40 requests succeed (the
#    process that lost the refresh lock uses the token the other one stored);
#  - the lease lock: a `warp2api serve` next to processes that lease from the database
#    keeps its leases in the database too (LEASES=auto), or is refused with LEASES=memory;
#    alone, it keeps them in memory, and then a `warp2api gateway` is refused with a
#    message naming the serve's pid.
#
# Usage: pool_cross_process.sh <build-dir> <source-dir>
set -uo pipefail

BUILD=$(cd "${1:?usage: $0 <build-dir> <source-dir>}" && pwd)
W2A="$BUILD/warp2api"
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"
need jq curl python3

start_fakewarp --account "x@example.com:rt-xray-0123456789abcdef"
export W2A_ENV_FILE=/dev/null LOG_LEVEL=info LOG_FILE="" QUOTA_POLL_INTERVAL=3600
export WARP_BASE_URL="$FW" FIREBASE_SECURETOKEN_URL="$FW" FIREBASE_IDENTITY_URL="$FW"
export DATABASE_PATH="$TMP/db/accounts.db"
cd "$TMP"
printf 'rt-xray-0123456789abcdef\n' |
  "$W2A" accounts add --email x@example.com --cap 100 --no-verify >/dev/null 2>&1
check "the account is stored without an ID token" \
  test "$("$W2A" accounts show x@example.com --json | jq -r .has_id_token)" = false

start() { # start NAME MODE PORT [ENV=VAL...]: warp2api MODE in the background
  local name=$1 mode=$2 port=$3
  shift 3
  env PORT="$port" POOL_SERVICE_PORT="$(free_port)" "$@" "$W2A" "$mode" >"$TMP/$name.log" 2>&1 &
  PIDS+=("$!")
  eval "${name}_PID=$!"
}
up() { # up PORT: the gateway answers /healthz
  for _ in $(seq 100); do curl -s "http://127.0.0.1:$1/healthz" >/dev/null 2>&1 && return 0; sleep 0.05; done
  return 1
}

curl -s -X POST "$FW/_fakewarp/faults" -d '{"token_lifetime_s":302}' >/dev/null
PA=$(free_port)
PB=$(free_port)
start ga gateway "$PA"
start gb gateway "$PB"
check "two gateways start on one database (leases in the database)" bash -c "$(declare -f up); up $PA && up $PB"
grep -q "request leases in the database" "$TMP/ga.log"
check "… and say where their leases live" test $? -eq 0

sleep 1
r0=$(curl -s "$FW/_fakewarp/stats" | jq .refreshes)
check "two processes starting together fetch the first token once (refreshes: $r0)" test "$r0" = 1
sleep 1.5 # the token is now inside the refresh margin
curl -s -X POST "$FW/_fakewarp/faults" -d '{"accept_delay_ms":400}' >/dev/null
for i in $(seq 20); do
  for p in "$PA" "$PB"; do
    curl -s -o "$TMP/r-$p-$i.json" -w '%{http_code}\n' "http://127.0.0.1:$p/v1/chat/completions" \
      -H 'content-type: application/json' \
      -d '{"model":"auto","messages":[{"role":"user","content":"hi"}]}' >"$TMP/code-$p-$i" &
  done
done
wait_curls() {
  local n
  for _ in $(seq 300); do
    n=$(cat "$TMP"/code-* 2>/dev/null | grep -c .)
    [[ $n -ge 40 ]] && return 0
    sleep 0.1
  done
  return 1
}
wait_curls
codes=$(cat "$TMP"/code-* | sort | uniq -c | awk '{print $2 "x" $1}' | paste -sd, -)
check "40 concurrent requests at two processes all succeed ($codes)" test "$codes" = "200x40"
r1=$(curl -s "$FW/_fakewarp/stats" | jq .refreshes)
check "… with exactly one refresh at fakewarp ($r0 → $r1)" test $((r1 - r0)) -eq 1
curl -s -X POST "$FW/_fakewarp/faults" -d '{"accept_delay_ms":0}' >/dev/null

# ---- the lease lock ----------------------------------------------------------------------
PS=$(free_port)
start sv serve "$PS"
check "a serve next to database-leasing gateways starts" bash -c "$(declare -f up); up $PS"
check "… with its leases in the database too (LEASES=auto)" grep -q "leases stay in the database" "$TMP/sv.log"
kill -TERM "$sv_PID"
wait "$sv_PID"
start sm serve "$(free_port)" LEASES=memory
wait "$sm_PID"
rc=$?
check "with LEASES=memory it is refused (rc $rc)" test "$rc" -ne 0
check "… saying why" grep -q "LEASES=memory needs" "$TMP/sm.log"
kill -TERM "$ga_PID" "$gb_PID"
wait "$ga_PID" "$gb_PID"
start sv2 serve "$PS"
check "with the gateways gone, serve starts (leases in memory)" bash -c "$(declare -f up); up $PS"
grep -q "request leases in memory" "$TMP/sv2.log"
check "… and says so" test $? -eq 0
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PS/v1/chat/completions" \
  -H 'content-type: application/json' -d '{"model":"auto","messages":[{"role":"user","content":"hi"}]}')
check "… and serves (HTTP $code)" test "$code" = 200
start gc gateway "$(free_port)"
wait "$gc_PID"
rc=$?
check "a gateway next to that serve is refused (rc $rc)" test "$rc" -ne 0
check "… naming the serve's pid" grep -q "pid $sv2_PID" "$TMP/gc.log"
kill -TERM "$sv2_PID"
wait "$sv2_PID"
rc=$?
check "serve exits cleanly (rc $rc) with no sanitizer report" \
  bash -c "[[ $rc -eq 0 ]] && ! grep -q Sanitizer '$TMP/sv2.log'"
[[ $failed -eq 0 ]] || {
  for f in ga gb sv sm gc sv2; do echo "--- $f"; tail -5 "$TMP/$f.log"; done
  echo "--- refreshes"
  grep -H -i "refresh\|token" "$TMP"/g[ab].log
} >&2
summary
