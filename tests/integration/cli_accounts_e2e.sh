#!/usr/bin/env bash
# `warp2api accounts …` end to end against fakewarp, on a fresh database under mktemp -d:
# add (token from a file, from stdin, from argv with a warning; verified, rejected,
# unreachable, --no-verify), import (JSONL and JSON array, stdin, per-line errors, --update),
# export (json/jsonl, secrets only with --include-secrets), list (table, --json, --state),
# show (why not selectable), disable/enable/remove, refresh [EMAIL] [--force], and login
# (email-link sign-in with the link piped in: plain, wrapped in link=…, garbage). Every
# usage error exits 2, every failure 1, with a message naming the problem. The CLI also
# works while `warp2api pool` runs on the same database.
#
# Usage: cli_accounts_e2e.sh <build-dir> <source-dir>
set -euo pipefail

BUILD=$(cd "${1:?usage: $0 <build-dir> <source-dir>}" && pwd)
W2A="$BUILD/warp2api"
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"
need jq

RT_A="rt-alpha-0123456789abcdef"
RT_B="rt-bravo-0123456789abcdef"
RT_C="rt-charlie-0123456789abcdef"
start_fakewarp --account "a@example.com:$RT_A" --account "b@example.com:$RT_B" \
  --account "c@example.com:$RT_C"

: >"$TMP/empty.env"
export W2A_ENV_FILE="$TMP/empty.env" LOG_LEVEL=warn LOG_FILE=""
export WARP_BASE_URL="$FW" FIREBASE_SECURETOKEN_URL="$FW" FIREBASE_IDENTITY_URL="$FW"
export DATABASE_PATH="$TMP/data/accounts.db" QUOTA_POLL_INTERVAL=3600
cd "$TMP"

# run EXPECTED-EXIT DESC CMD...: output in $TMP/out, errors in $TMP/err
run() {
  local want=$1 desc=$2
  shift 2
  local rc=0
  "$@" >"$TMP/out" 2>"$TMP/err" </dev/null || rc=$?
  cat "$TMP/out" "$TMP/err" >>"$TMP/all-output"
  if ((rc != want)); then
    bad "$desc: exit $rc, expected $want; stdout: $(head -c 300 "$TMP/out"); stderr: $(head -c 300 "$TMP/err")"
    return 1
  fi
  return 0
}
# runin EXPECTED-EXIT DESC INPUT CMD...: like run, with INPUT on stdin
runin() {
  local want=$1 desc=$2 input=$3
  shift 3
  local rc=0
  printf '%s\n' "$input" | "$@" >"$TMP/out" 2>"$TMP/err" || rc=$?
  cat "$TMP/out" "$TMP/err" >>"$TMP/all-output"
  if ((rc != want)); then
    bad "$desc: exit $rc, expected $want; stdout: $(head -c 300 "$TMP/out"); stderr: $(head -c 300 "$TMP/err")"
    return 1
  fi
  return 0
}
has() { grep -qF -- "$2" "$TMP/$1"; }
check() { # desc file substring (this script's own, in place of lib.bash's)
  if has "$2" "$3"; then ok "$1"; else bad "$1: \"$3\" not in $2: $(head -c 300 "$TMP/$2")"; fi
}

# ---- usage errors: exit 2 ---------------------------------------------------------------
run 2 "accounts without a command" "$W2A" accounts && check "accounts alone prints usage" err "usage: warp2api accounts"
run 0 "accounts --help" "$W2A" accounts --help && check "--help lists login" out "login EMAIL"
run 2 "unknown subcommand" "$W2A" accounts frobnicate && check "unknown subcommand named" err 'unknown command "frobnicate"'
run 2 "add --cap 0" "$W2A" accounts add --email x@example.com --cap 0 && check "--cap range named" err "--cap must be an integer from 1 to 1000"
run 2 "add --weight abc" "$W2A" accounts add --email x@example.com --weight abc && check "--weight named" err "--weight must be an integer"
run 2 "add --email not-an-email" "$W2A" accounts add --email nope && check "bad --email named" err "--email must be an email address"
run 2 "add with an unknown option" "$W2A" accounts add --colour red && check "unknown option named" err "--colour"
run 2 "add with both token sources" "$W2A" accounts add --refresh-token-file f --refresh-token t && check "conflicting token sources" err "--refresh-token-file or --refresh-token"
run 2 "import without a file" "$W2A" accounts import && check "import names the missing FILE" err "which file"
run 2 "export --format xml" "$W2A" accounts export --format xml && check "bad --format named" err "--format must be json or jsonl"
run 2 "list --state bogus" "$W2A" accounts list --state bogus && check "bad --state named" err "--state must be one of"
run 2 "show without an email" "$W2A" accounts show && check "show names the missing EMAIL" err "which account"
run 2 "remove without an email" "$W2A" accounts remove
run 2 "disable without an email" "$W2A" accounts disable
run 2 "enable with an extra argument" "$W2A" accounts enable a@example.com b@example.com
run 2 "login without an email" "$W2A" accounts login
run 2 "login with a bad email" "$W2A" accounts login not-an-email && check "login names the bad email" err "not an email address"
run 2 "refresh with an unknown option" "$W2A" accounts refresh --hard

# ---- add -------------------------------------------------------------------------------------
printf '%s\n' "$RT_A" >"$TMP/rt_a"
chmod 600 "$TMP/rt_a"
run 0 "add from --refresh-token-file, verified" "$W2A" accounts add --email a@example.com --refresh-token-file "$TMP/rt_a" --label first --cap 2 --weight 5 &&
  check "add reports verified" out "added a@example.com" && check "add learned the uid" out "uid"
runin 0 "add with the token on stdin, email learned from the token" "$RT_B" "$W2A" accounts add &&
  check "email learned from the token" out "added b@example.com"
run 0 "add with --refresh-token (warns)" "$W2A" accounts add --email c@example.com --refresh-token "$RT_C" &&
  check "argv token warns about ps" err "process list"
run 1 "add a duplicate" "$W2A" accounts add --email a@example.com --refresh-token-file "$TMP/rt_a" &&
  check "duplicate named" err "already exists"
runin 1 "add a token Warp rejects" "bad-token-nobody-knows" "$W2A" accounts add --email z@example.com &&
  check "rejection explained" err "rejected"
runin 1 "add a token belonging to someone else" "$RT_A" "$W2A" accounts add --email other@example.com &&
  check "owner mismatch named" err "belongs to a@example.com"
runin 2 "add --no-verify without an email" "some-token" "$W2A" accounts add --no-verify &&
  check "--email required when nothing can tell it" err "--email is required"
runin 0 "add --no-verify" "rt-unverified-1" "$W2A" accounts add --email u@example.com --no-verify
runin 1 "add an empty token" "" "$W2A" accounts add --email e@example.com && check "empty token named" err "no refresh token"
run 1 "add from a missing file" "$W2A" accounts add --email e@example.com --refresh-token-file "$TMP/nope" && check "missing file named" err "$TMP/nope"
runin 0 "add when Warp is unreachable stores it unverified" "rt-offline-1" \
  env WARP_BASE_URL="http://127.0.0.1:$(free_port)" FIREBASE_SECURETOKEN_URL="http://127.0.0.1:1" \
  "$W2A" accounts add --email off@example.com && check "unreachable warned" err "could not verify"

# ---- list / show ---------------------------------------------------------------------------------
run 0 "list" "$W2A" accounts list && check "list is a table" out "EMAIL" && check "list shows a@" out "a@example.com" && check "list counts" out "5 account(s)"
run 0 "list --json" "$W2A" accounts list --json
if jq -e 'length == 5 and all(.[]; has("selectable")) and all(.[]; has("refresh_token") | not)' "$TMP/out" >/dev/null; then ok "list --json"; else bad "list --json: $(head -c 300 "$TMP/out")"; fi
run 0 "show" "$W2A" accounts show a@example.com && check "show has the label" out "first" && check "show says selectable" out "selectable"
run 0 "show --json" "$W2A" accounts show a@example.com --json
jq -e '.email == "a@example.com" and .cap == 2 and .weight == 5 and .has_id_token == true' "$TMP/out" >/dev/null && ok "show --json fields" || bad "show --json: $(cat "$TMP/out")"
run 1 "show an unknown email" "$W2A" accounts show nobody@example.com && check "unknown email named" err "no account nobody@example.com"

# ---- disable / enable / remove ---------------------------------------------------------------------
run 0 "disable with a reason" "$W2A" accounts disable b@example.com --reason "rotating keys" && check "disable confirms" out "disabled"
run 0 "show a disabled account" "$W2A" accounts show b@example.com && check "show says why not selectable" out "not selectable because" && check "show keeps the reason" out "rotating keys"
run 0 "list --state disabled" "$W2A" accounts list --state disabled && check "only the disabled one" out "1 account(s)"
run 1 "disable an unknown email" "$W2A" accounts disable nobody@example.com && check "unknown named" err "no account"
run 0 "enable" "$W2A" accounts enable b@example.com && check "enable confirms" out "available"
run 0 "list --state available" "$W2A" accounts list --state available && check "all five available" out "5 account(s)"
run 0 "remove" "$W2A" accounts remove u@example.com && check "remove confirms" out "removed u@example.com"
run 1 "remove again" "$W2A" accounts remove u@example.com && check "remove unknown named" err "no account u@example.com"

# ---- import / export ---------------------------------------------------------------------------------
printf '%s\n' '{"email":"d@example.com","refresh_token":"rt-d-1","label":"imp"}' \
  '{"email":"e@example.com"}' \
  'not json' \
  '{"email":"a@example.com","refresh_token":"rt-other"}' \
  '{"email":"f@example.com","refresh_token":"rt-f-1","cap":0}' >"$TMP/in.jsonl"
run 1 "import JSONL with bad lines exits 1" "$W2A" accounts import "$TMP/in.jsonl" &&
  check "import summary" out "1 imported, 0 updated, 1 skipped (already present), 3 invalid" &&
  check "line 2 named" err "in.jsonl:line 2:" && check "line 2 names the field" err "refresh_token" &&
  check "line 3 malformed" err "in.jsonl:line 3: malformed JSON" && check "line 5 names cap" err "in.jsonl:line 5: \"cap\""
run 0 "import a JSON array from stdin" sh -c "printf '%s' '[{\"email\":\"g@example.com\",\"refresh_token\":\"rt-g-1\"}]' | '$W2A' accounts import -" &&
  check "array import summary" out "1 imported"
run 0 "import --update" sh -c "printf '%s\n' '{\"email\":\"g@example.com\",\"refresh_token\":\"rt-g-2\",\"label\":\"new\"}' | '$W2A' accounts import - --update" &&
  check "update summary" out "1 updated"
run 1 "import a missing file" "$W2A" accounts import "$TMP/missing.jsonl" && check "missing file named" err "missing.jsonl"
printf '[{"email":' >"$TMP/broken.json"
run 1 "import a malformed array" "$W2A" accounts import "$TMP/broken.json" && check "malformed array explained" err "malformed JSON array"
: >"$TMP/empty.json"
run 1 "import an empty file" "$W2A" accounts import "$TMP/empty.json" && check "empty input explained" err "empty"

run 0 "export json" "$W2A" accounts export
if jq -e 'length == 6 and all(.[]; has("refresh_token") | not)' "$TMP/out" >/dev/null; then ok "export has no secrets by default"; else bad "export: $(head -c 300 "$TMP/out")"; fi
run 0 "export jsonl --state available" "$W2A" accounts export --format jsonl --state available
[[ $(grep -c . "$TMP/out") == 6 ]] && jq -se 'all(.[]; .state == "available")' "$TMP/out" >/dev/null && ok "export jsonl" || bad "export jsonl: $(head -c 300 "$TMP/out")"
run 0 "export --include-secrets" "$W2A" accounts export --format jsonl --include-secrets &&
  check "secret export warns" err "contains refresh tokens"
cp "$TMP/out" "$TMP/secrets.jsonl"
jq -se "map(select(.email == \"g@example.com\"))[0].refresh_token == \"rt-g-2\"" "$TMP/secrets.jsonl" >/dev/null && ok "secret export has the updated token" || bad "secret export: $(head -c 300 "$TMP/secrets.jsonl")"
run 0 "the secret export imports into a fresh database" env DATABASE_PATH="$TMP/copy.db" \
  "$W2A" accounts import "$TMP/secrets.jsonl" && check "round trip count" out "6 imported"

# ---- refresh -----------------------------------------------------------------------------------------
run 0 "refresh one account --force" "$W2A" accounts refresh a@example.com --force &&
  check "forced refresh done" out "1 refreshed" && check "force warns" err "bypasses"
run 0 "refresh without --force skips a fresh token" "$W2A" accounts refresh a@example.com && check "skipped" out "1 skipped"
run 1 "refresh an unknown account" "$W2A" accounts refresh nobody@example.com && check "unknown named" err "no account"
run 1 "refresh all: imported tokens Warp does not know fail" "$W2A" accounts refresh --force &&
  check "summary line" out "refreshed" && check "a@ refreshed" out "a@example.com"
run 0 "show after refresh-all" "$W2A" accounts show d@example.com && check "unknown token → invalid" out "invalid"

# ---- login (email-link sign-in) -------------------------------------------------------------------------
mailbox_count() { curl -fs "$FW/_fakewarp/mailbox?email=$1" | jq -r '.messages | length'; }
mailbox_link() { # email -> newest link
  curl -fs "$FW/_fakewarp/mailbox?email=$1" | jq -r '.messages[-1].link // empty'
}
login_with() { # email transform-fn -> runs login, pasting transform(link); exit code in LOGIN_RC
  local email=$1 transform=$2
  local seen
  seen=$(mailbox_count "$email")
  rm -f "$TMP/fifo"
  mkfifo "$TMP/fifo"
  "$W2A" accounts login "$email" <"$TMP/fifo" >"$TMP/out" 2>"$TMP/err" &
  local pid=$!
  exec 7>"$TMP/fifo"
  local link=""
  for _ in $(seq 100); do
    if (($(mailbox_count "$email") > seen)); then
      link=$(mailbox_link "$email")
      break
    fi
    sleep 0.05
  done
  if [[ -z "$link" ]]; then
    exec 7>&-
    LOGIN_RC=99
    wait "$pid" || true
    return
  fi
  printf '%s\n' "$($transform "$link")" >&7
  exec 7>&-
  LOGIN_RC=0
  wait "$pid" || LOGIN_RC=$?
  cat "$TMP/out" "$TMP/err" >>"$TMP/all-output"
}
plain() { printf '%s' "$1"; }
wrapped() { printf 'https://warp.page.link/?link=%s&apn=dev.warp' "$(jq -rn --arg u "$1" '$u|@uri')"; }
double() { printf 'https://mail.example/redirect?u=1&link=%s' "$(jq -rn --arg u "$(wrapped "$1")" '$u|@uri')"; }
garbage() { printf 'https://example.com/nothing-here'; }

login_with new@example.com plain
((LOGIN_RC == 0)) && has out "added new@example.com" && has err "paste the sign-in link from your mailbox:" &&
  ok "login: link sent, pasted, account stored" || bad "login: rc $LOGIN_RC $(cat "$TMP/out" "$TMP/err")"
run 0 "the logged-in account is verified" "$W2A" accounts show new@example.com --json
jq -e '.has_id_token == true and (.local_id | length > 0)' "$TMP/out" >/dev/null && ok "login stored uid and ID token" || bad "login show: $(cat "$TMP/out")"
login_with wrapped@example.com wrapped
((LOGIN_RC == 0)) && has out "added wrapped@example.com" && ok "login: link wrapped in link=… (percent-encoded)" || bad "login wrapped: rc $LOGIN_RC $(cat "$TMP/err")"
login_with wrapped2@example.com double
((LOGIN_RC == 0)) && has out "added wrapped2@example.com" && ok "login: link wrapped twice" || bad "login double-wrapped: rc $LOGIN_RC $(cat "$TMP/err")"
login_with new@example.com plain
((LOGIN_RC == 0)) && has out "updated new@example.com" && ok "login again updates the stored account" || bad "login again: rc $LOGIN_RC $(cat "$TMP/err")"
login_with bad@example.com garbage
((LOGIN_RC == 1)) && has err "no oobCode" && ok "login: pasted text without a code → exit 1, explained" || bad "login garbage: rc $LOGIN_RC $(cat "$TMP/err")"
run 1 "login with nothing pasted" "$W2A" accounts login empty@example.com && check "no link explained" err "no link was pasted"
run 1 "login when the identity service is unreachable" env FIREBASE_IDENTITY_URL="http://127.0.0.1:1" \
  "$W2A" accounts login x@example.com && check "unreachable named" err "cannot reach"

# ---- the CLI works while the service runs -----------------------------------------------------------
PORT=$(free_port)
POOL_SERVICE_PORT=$PORT ADMIN_TOKEN="" PORT=$(free_port) "$W2A" pool >"$TMP/pool.out" 2>"$TMP/pool.err" &
POOL_PID=$!
PIDS+=("$POOL_PID")
for _ in $(seq 200); do curl -fs -o /dev/null "http://127.0.0.1:$PORT/health" && break; sleep 0.05; done
run 0 "disable while the service runs" "$W2A" accounts disable c@example.com --reason live
state=$(curl -fs "http://127.0.0.1:$PORT/api/accounts/c@example.com" | jq -r .status)
[[ "$state" == disabled ]] && ok "the service sees the CLI's change" || bad "service saw state $state"
curl -fs -X POST "http://127.0.0.1:$PORT/api/accounts/c@example.com/enable" >/dev/null
run 0 "show after the service changed it" "$W2A" accounts show c@example.com && check "the CLI sees the service's change" out "available"
kill -TERM "$POOL_PID"
rc=0
wait "$POOL_PID" || rc=$?
((rc == 0)) && ok "pool service exits 0" || bad "pool service exit $rc: $(tail -5 "$TMP/pool.err")"

# ---- no secrets where they do not belong ---------------------------------------------------------
if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error' "$TMP/all-output" "$TMP/pool.err"; then
  bad "sanitizer report: $(grep -hE -A5 'AddressSanitizer|LeakSanitizer|runtime error' "$TMP/all-output" "$TMP/pool.err" | head -20)"
else ok "no sanitizer reports"; fi
grep -v '"refresh_token"' "$TMP/all-output" >"$TMP/non-export" || true
leak=0
for t in "$RT_A" "$RT_B" rt-d-1 rt-g-2 rt-unverified-1; do
  if grep -qF -- "$t" "$TMP/non-export" "$TMP/pool.err"; then bad "token $t printed outside the secret export"; leak=1; fi
done
((leak)) || ok "no refresh token printed outside the secret export"

summary
