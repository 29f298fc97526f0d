#!/usr/bin/env bash
# The admin API end to end: `warp2api pool` (admin on a free loopback port, fresh SQLite
# database) against fakewarp, driven with curl + jq. Covers every route, every bad input
# (missing fields, wrong types, malformed JSON, unknown email → 404, count out of range,
# unknown fields, bad query parameters, wrong methods), the auth rules (token required
# everywhere but /health, wrong/missing/garbled token → 401, loopback without a token is
# fine, a non-loopback bind without a token is refused at start), that no refresh token
# leaks into responses or logs, and a clean SIGTERM shutdown (no sanitizer reports).
#
# Usage: pool_admin_api.sh <build-dir> <source-dir>
# The pool service is `warp2api pool`; W2A_POOL_CMD overrides it (e.g. "test_admin --serve").
set -euo pipefail

BUILD=$(cd "${1:?usage: $0 <build-dir> <source-dir>}" && pwd)
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"
need jq curl

# ---- fakewarp ------------------------------------------------------------------------
RT_A="rt-alpha-0123456789abcdef"
RT_B="rt-bravo-0123456789abcdef"
RT_C="rt-charlie-0123456789abcdef"
RT_D="rt-delta-0123456789abcdef"
start_fakewarp --account "a@example.com:$RT_A" --account "b@example.com:$RT_B" \
  --account "c@example.com:$RT_C" --account "d@example.com:$RT_D"

# ---- the pool service ----------------------------------------------------------------
POOL_CMD=${W2A_POOL_CMD:-"$BUILD/warp2api pool"}
TOKEN="admin-secret-$RANDOM$RANDOM"
: >"$TMP/empty.env"
common_env() {
  export W2A_ENV_FILE="$TMP/empty.env" LOG_LEVEL=info LOG_FILE=""
  export WARP_BASE_URL="$FW" FIREBASE_SECURETOKEN_URL="$FW" FIREBASE_IDENTITY_URL="$FW"
  export POOL_MIN_SIZE=2 ACCOUNTS_PER_REQUEST=1 QUOTA_POLL_INTERVAL=3600
}

start_pool() { # name db port token host -> pid in LAST_PID
  local name=$1 db=$2 port=$3 token=$4 host=$5
  (
    common_env
    export DATABASE_PATH="$db" POOL_SERVICE_PORT="$port" POOL_SERVICE_HOST="$host"
    export ADMIN_TOKEN="$token" PORT="$(free_port)"
    cd "$TMP" && exec $POOL_CMD
  ) >"$TMP/$name.out" 2>"$TMP/$name.err" &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}

wait_health() { # port pid
  for _ in $(seq 200); do
    curl -fs -o /dev/null "http://127.0.0.1:$1/health" && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

PORT=$(free_port)
start_pool main "$TMP/accounts.db" "$PORT" "$TOKEN" 127.0.0.1
MAIN_PID=$LAST_PID
if ! wait_health "$PORT" "$MAIN_PID"; then
  echo "FAIL: the pool service did not become healthy" >&2
  cat "$TMP/main.err" >&2
  exit 1
fi
B="http://127.0.0.1:$PORT"

# call METHOD PATH [BODY] [extra curl args...]: status in CODE, body in $TMP/body
AUTH=(-H "Authorization: Bearer $TOKEN")
call() {
  local m=$1 p=$2 body=${3-}
  shift 2
  (($#)) && shift
  local args=(-s -o "$TMP/body" -D "$TMP/headers" -w '%{http_code}' -X "$m" "${AUTH[@]}" "$@")
  if [[ -n "$body" ]]; then args+=(-H 'Content-Type: application/json' --data-binary "$body"); fi
  CODE=$(curl "${args[@]}" "$B$p")
  cat "$TMP/body" >>"$TMP/all-responses"
}
# expect STATUS DESC [JQ-CONDITION]
expect() {
  local want=$1 desc=$2 cond=${3-}
  if [[ "$CODE" != "$want" ]]; then
    bad "$desc: status $CODE, expected $want; body: $(head -c 400 "$TMP/body")"
    return
  fi
  if [[ -n "$cond" ]] && ! jq -e "$cond" "$TMP/body" >/dev/null 2>&1; then
    bad "$desc: body fails $cond: $(head -c 400 "$TMP/body")"
    return
  fi
  ok "$desc"
}
# expect_err STATUS DESC SUBSTRING: the seed's error shape naming the problem
expect_err() {
  local want=$1 desc=$2 sub=$3
  expect "$want" "$desc" "(.error | type == \"string\" and contains(\"$sub\")) and (.timestamp | type == \"string\")"
}

# ---- auth ----------------------------------------------------------------------------------
AUTH=()
call GET /health
expect 200 "GET /health needs no token" '.status == "healthy" and (.pool_health | type == "string") and (.timestamp | type == "string")'
call GET /api/accounts/status
expect_err 401 "no token → 401" "missing admin token"
grep -qi '^WWW-Authenticate: Bearer' "$TMP/headers" && ok "401 carries WWW-Authenticate" || bad "401 without WWW-Authenticate"
call GET /api/nonexistent
expect_err 401 "unknown route without a token → 401 (routes are not revealed)" "admin token"
AUTH=(-H "Authorization: Bearer wrong-$TOKEN")
call GET /api/accounts/status
expect_err 401 "wrong token → 401" "invalid admin token"
AUTH=(-H "Authorization: Bearer ${TOKEN}x")
call GET /api/accounts
expect_err 401 "token with an extra character → 401" "invalid admin token"
AUTH=(-H "Authorization: Basic $(printf 'admin:%s' "$TOKEN" | base64)")
call GET /api/accounts/status
expect_err 401 "Basic auth → 401" "Bearer"
AUTH=(-H "Authorization: Bearer")
call POST /api/accounts/allocate '{}'
expect_err 401 "empty bearer → 401" "Bearer"
AUTH=(-H "Authorization: Bearer $TOKEN")

# ---- status --------------------------------------------------------------------------------
call GET /api/accounts/status
expect 200 "GET /api/accounts/status shape" \
  '.pool_stats.total == 0 and .pool_stats.available == 0 and .running == true and .min_pool_size == 2 and .accounts_per_request == 1 and .health == "critical" and (.active_sessions | type == "number")'
call POST /api/accounts/status '{}'
expect_err 405 "POST on a GET route → 405" "not allowed"
grep -qi '^Allow: GET' "$TMP/headers" && ok "405 names the allowed method" || bad "405 without Allow"
call GET /api/nope
expect_err 404 "unknown route → 404" "no route"

# ---- add one --------------------------------------------------------------------------------
call POST /api/accounts "{\"email\":\"a@example.com\",\"refresh_token\":\"$RT_A\",\"label\":\"first\",\"cap\":2,\"weight\":3}"
expect 201 "POST /api/accounts adds and verifies" \
  '.success == true and .account.email == "a@example.com" and .account.label == "first" and .account.cap == 2 and .account.weight == 3 and .account.status == "available"'
call POST /api/accounts "{\"email\":\"b@example.com\",\"refresh_token\":\"$RT_B\"}"
expect 201 "add a second account" '.account.email == "b@example.com"'
call POST /api/accounts "{\"email\":\"c@example.com\",\"refresh_token\":\"$RT_C\",\"verify\":false}"
expect 201 "add with verify:false" '.account.has_id_token == false and (.message | contains("not verified"))'
call POST /api/accounts "{\"email\":\"a@example.com\",\"refresh_token\":\"$RT_A\"}"
expect_err 409 "duplicate email → 409" "already exists"
call POST /api/accounts '{"email":"zed@example.com","refresh_token":"bad-unknown-token-123"}'
expect_err 422 "a refresh token Warp rejects → 422, not stored" "refresh_token"
call GET /api/accounts/zed@example.com
expect 404 "the rejected account was not kept"

# bad input on add: every field, every kind of wrongness
call POST /api/accounts '{"refresh_token":"x"}'
expect_err 400 "add: missing email" '\"email\" is required'
call POST /api/accounts '{"email":7,"refresh_token":"x"}'
expect_err 400 "add: email not a string" '\"email\" must be a string'
call POST /api/accounts '{"email":"not-an-email","refresh_token":"x"}'
expect_err 400 "add: email without @" '\"email\" must be an email address'
call POST /api/accounts '{"email":"a b@example.com","refresh_token":"x"}'
expect_err 400 "add: email with a space" '\"email\" must not contain'
call POST /api/accounts '{"email":"","refresh_token":"x"}'
expect_err 400 "add: empty email" '\"email\" must not be empty'
call POST /api/accounts '{"email":"n@example.com"}'
expect_err 400 "add: missing refresh_token" '\"refresh_token\" is required'
call POST /api/accounts '{"email":"n@example.com","refresh_token":["x"]}'
expect_err 400 "add: refresh_token not a string" '\"refresh_token\" must be a string'
call POST /api/accounts '{"email":"n@example.com","refresh_token":"has space"}'
expect_err 400 "add: refresh_token with a space" '\"refresh_token\" contains'
call POST /api/accounts '{"email":"n@example.com","refresh_token":"x","cap":0}'
expect_err 400 "add: cap 0" '\"cap\" must be an integer from 1'
call POST /api/accounts '{"email":"n@example.com","refresh_token":"x","cap":"2"}'
expect_err 400 "add: cap as a string" '\"cap\" must be an integer'
call POST /api/accounts '{"email":"n@example.com","refresh_token":"x","weight":1001}'
expect_err 400 "add: weight too large" '\"weight\" must be an integer from 1 to 1000'
call POST /api/accounts '{"email":"n@example.com","refresh_token":"x","verify":"yes"}'
expect_err 400 "add: verify not a boolean" '\"verify\" must be true or false'
call POST /api/accounts "{\"email\":\"n@example.com\",\"refresh_token\":\"x\",\"label\":\"$(printf 'L%.0s' $(seq 200))\"}"
expect_err 400 "add: label too long" '\"label\" is too long'
call POST /api/accounts '{"email":"n@example.com","refresh_token":"x","emial":"typo"}'
expect_err 400 "add: unknown field named" 'unknown field \"emial\"'
call POST /api/accounts '{"email":"n@example.com",'
expect_err 400 "add: malformed JSON" "malformed JSON"
call POST /api/accounts "$(printf '{"email":"n@example.com","refresh_token":"x","label":"caf\xe9"}')"
expect_err 400 "add: a label that is not UTF-8" "invalid utf-8"
call POST /api/accounts '["n@example.com"]'
expect_err 400 "add: body is an array" "must be a JSON object"
call POST /api/accounts '{"email":"n@example.com","refresh_token":"x"} trailing'
expect_err 400 "add: trailing garbage after the JSON" "malformed JSON"
call POST /api/accounts ''
expect_err 400 "add: empty body" '\"email\" is required'

# ---- list / show --------------------------------------------------------------------------
call GET /api/accounts
expect 200 "GET /api/accounts lists all, each saying whether it is selectable" \
  '.count == 3 and ([.accounts[].email] == ["a@example.com","b@example.com","c@example.com"]) and all(.accounts[]; has("selectable") and has("not_selectable_reason")) and .next_after_id == null'
call GET '/api/accounts?limit=2'
expect 200 "list pages with limit" '.count == 2 and (.next_after_id | type == "number")'
NEXT=$(jq -r .next_after_id "$TMP/body")
call GET "/api/accounts?limit=2&after_id=$NEXT"
expect 200 "list continues after next_after_id" '.count == 1 and .accounts[0].email == "c@example.com"'
call GET '/api/accounts?state=available'
expect 200 "list filtered by state" '.count == 3'
call GET '/api/accounts?state=disabled'
expect 200 "list filtered by an empty state" '.count == 0 and .accounts == []'
call GET '/api/accounts?state=bogus'
expect_err 400 "list: unknown state" 'query parameter \"state\" must be one of'
call GET '/api/accounts?limit=0'
expect_err 400 "list: limit 0" 'query parameter \"limit\"'
call GET '/api/accounts?limit=ten'
expect_err 400 "list: limit not a number" 'query parameter \"limit\"'
call GET /api/accounts/a@example.com
expect 200 "GET /api/accounts/{email}" '.email == "a@example.com" and .selectable == true and .not_selectable_reason == null and .use_count == 0 and (has("id_token") | not) and (has("refresh_token") | not)'
call GET /api/accounts/a%40example.com
expect 200 "GET /api/accounts/{email} percent-encoded" '.email == "a@example.com"'
call GET /api/accounts/nobody@example.com
expect_err 404 "GET unknown email → 404" 'account \"nobody@example.com\" not found'
call GET /api/accounts/a%4
expect_err 400 "GET with a broken percent-escape" "percent-encoded"
call PUT /api/accounts/a@example.com '{}'
expect_err 405 "PUT on an account → 405" "not allowed"

# ---- allocate / release ----------------------------------------------------------------------
call POST /api/accounts/allocate '{}'
expect 200 "allocate with defaults leases ACCOUNTS_PER_REQUEST (1)" \
  '.success == true and (.session_id | length) == 36 and (.accounts | length) == 1 and (.accounts[0].id_token | type == "string") and (.accounts[0] | has("refresh_token") | not) and .accounts[0].session_id == .session_id'
S1=$(jq -r .session_id "$TMP/body")
call POST /api/accounts/allocate '{"session_id":"sess-two","count":3}'
expect 200 "allocate honours count (up to what is selectable)" \
  '.success == true and .session_id == "sess-two" and (.accounts | length) >= 2'
call GET /api/accounts/status
expect 200 "status counts active leases" '.active_leases >= 3 and .pool_stats.leased_accounts >= 2'
for bodyreason in '{"count":0}|\"count\" must be an integer from 1 to 10' \
  '{"count":11}|\"count\" must be an integer from 1 to 10' \
  '{"count":"2"}|\"count\" must be an integer' \
  '{"count":1.5}|\"count\" must be an integer' \
  '{"count":true}|\"count\" must be an integer' \
  '{"session_id":5}|\"session_id\" must be a string' \
  '{"session_id":""}|\"session_id\" must not be empty' \
  '{"ttl_seconds":0}|\"ttl_seconds\" must be an integer' \
  '{"cnt":1}|unknown field \"cnt\"' \
  '{"count":|malformed JSON' \
  '[1]|must be a JSON object'; do
  body=${bodyreason%%|*}
  reason=${bodyreason#*|}
  call POST /api/accounts/allocate "$body"
  expect_err 400 "allocate rejects $body" "$reason"
done
call GET /api/accounts/allocate
expect_err 405 "GET on allocate → 405" "not allowed"
call POST /api/accounts/release "{\"session_id\":\"$S1\"}"
expect 200 "release frees the session's leases" '.success == true and .released == 1'
call POST /api/accounts/release "{\"session_id\":\"$S1\"}"
expect_err 404 "releasing it again → 404" "holds no leases"
call POST /api/accounts/release '{}'
expect_err 400 "release without session_id" '\"session_id\" is required'
call POST /api/accounts/release '{"session_id":1}'
expect_err 400 "release with a numeric session_id" '\"session_id\" must be a string'
call POST /api/accounts/release '{"session_id":"sess-two"}'
expect 200 "release the second session" '.released >= 2'
call POST /api/accounts/release '{"session_id":'
expect_err 400 "release: malformed JSON" "malformed JSON"

# ---- disable / enable / why not selectable -------------------------------------------------
call POST /api/accounts/b@example.com/disable '{"reason":"maintenance window"}'
expect 200 "disable with a reason" '.success == true and .status == "disabled"'
call GET /api/accounts/b@example.com
expect 200 "a disabled account says why it is not selectable" \
  '.status == "disabled" and .selectable == false and (.not_selectable_reason | type == "string" and length > 0) and .state_reason == "maintenance window"'
call GET '/api/accounts?state=disabled'
expect 200 "list by state shows the disabled one" '.count == 1 and .accounts[0].email == "b@example.com" and .accounts[0].selectable == false'
call POST /api/accounts/b@example.com/disable '{"reason":5}'
expect_err 400 "disable: reason not a string" '\"reason\" must be a string'
call POST /api/accounts/nobody@example.com/disable '{}'
expect_err 404 "disable unknown email → 404" "not found"
call GET /api/accounts/b@example.com/disable
expect_err 405 "GET on disable → 405" "not allowed"
call POST /api/accounts/b@example.com/frobnicate '{}'
expect_err 404 "unknown account action → 404" "no route"
call POST /api/accounts/b@example.com/enable ''
expect 200 "enable" '.status == "available"'
call POST /api/accounts/b@example.com/enable '{"force":true}'
expect_err 400 "enable takes no fields" 'unknown field \"force\"'
call POST /api/accounts/nobody@example.com/enable
expect_err 404 "enable unknown email → 404" "not found"
call GET /api/accounts/b@example.com
expect 200 "enabled account is selectable again" '.selectable == true and .status == "available"'

# ---- quota ---------------------------------------------------------------------------------
call POST /api/accounts/mark_quota_exhausted '{"email":"c@example.com"}'
expect 200 "mark_quota_exhausted" '.success == true and .status == "quota_exhausted" and (.until | type == "string")'
call GET /api/accounts/c@example.com
expect 200 "quota_exhausted account is not selectable, with a reason" '.status == "quota_exhausted" and .selectable == false and (.not_selectable_reason | length > 0)'
call GET '/api/accounts/quota_status?email=c@example.com'
expect 200 "quota_status shape" '.email == "c@example.com" and .is_exhausted == true and (.reset_at | type == "string") and (.days_until_reset | type == "number") and (.quota | type == "object")'
call GET '/api/accounts/quota_status?email=a@example.com'
expect 200 "quota_status of a fine account" '.is_exhausted == false and .status == "available"'
call GET /api/accounts/quota_status
expect_err 400 "quota_status without email" 'query parameter \"email\" is required'
call GET '/api/accounts/quota_status?email=nobody@example.com'
expect_err 404 "quota_status unknown email → 404" "not found"
call GET /api/accounts/quota_exhausted
expect 200 "quota_exhausted list" '.count == 1 and .accounts[0].email == "c@example.com"'
call POST /api/accounts/mark_quota_exhausted '{}'
expect_err 400 "mark_quota_exhausted without email" '\"email\" is required'
call POST /api/accounts/mark_quota_exhausted '{"email":["c@example.com"]}'
expect_err 400 "mark_quota_exhausted: email not a string" '\"email\" must be a string'
call POST /api/accounts/mark_quota_exhausted '{"email":"nobody@example.com"}'
expect_err 404 "mark_quota_exhausted unknown email → 404" "not found"

# ---- replenish / pool refresh ------------------------------------------------------------
call POST /api/accounts/replenish '{}'
expect 200 "replenish re-admits and re-checks quota, never creates" \
  '.success == true and (.readmitted | type == "number") and (.quota_checked | type == "number") and (.available_count | type == "number") and (.message | contains("never creates"))'
call GET /api/accounts/status
expect 200 "replenish did not create accounts" '.pool_stats.total == 3'
call POST /api/accounts/replenish '{"count":0}'
expect_err 400 "replenish count 0" '\"count\" must be an integer from 1'
call POST /api/accounts/replenish '{"count":"10"}'
expect_err 400 "replenish count as a string" '\"count\" must be an integer'
call POST /api/pool/refresh ''
expect 200 "POST /api/pool/refresh" '.success == true and (.reclaimed_leases | type == "number") and (.readmitted | type == "number")'
call POST /api/pool/refresh '{"x":1}'
expect_err 400 "pool/refresh takes no fields" 'unknown field \"x\"'
call GET /api/pool/refresh
expect_err 405 "GET on pool/refresh → 405" "not allowed"

# ---- refresh-tokens ---------------------------------------------------------------------------
call POST /api/accounts/refresh-tokens '{"email":"a@example.com","force":true}'
expect 200 "refresh-tokens for one account, forced" \
  '.result.success_count == 1 and .result.details[0].email == "a@example.com" and .result.details[0].status == "refreshed"'
call POST /api/accounts/refresh-tokens '{"email":"a@example.com"}'
expect 200 "refresh-tokens without force skips a fresh token" '.result.skipped_count == 1 and .result.details[0].status == "skipped"'
call POST /api/accounts/refresh-tokens '{}'
expect 200 "refresh-tokens for all accounts" '(.result.details | length) == 3 and (.result.success_count + .result.skipped_count + .result.failed_count) == 3'
call POST /api/accounts/refresh-tokens '{"email":"nobody@example.com"}'
expect_err 404 "refresh-tokens unknown email → 404" "not found"
call POST /api/accounts/refresh-tokens '{"force":"yes"}'
expect_err 400 "refresh-tokens force not a boolean" '\"force\" must be true or false'
call POST /api/accounts/refresh-tokens '{"email":""}'
expect_err 400 "refresh-tokens empty email" '\"email\" must not be empty'
call POST /api/accounts/refresh-tokens '{"email":3}'
expect_err 400 "refresh-tokens email not a string" '\"email\" must be a string'

# ---- import / export ---------------------------------------------------------------------------
printf '%s\n' "{\"email\":\"d@example.com\",\"refresh_token\":\"$RT_D\",\"label\":\"imported\"}" \
  '{"email":"e@example.com"}' \
  '{broken' \
  '' \
  '{"email":"a@example.com","refresh_token":"rt-new-for-a"}' \
  '{"email":"f@example.com","refresh_token":"rt-f","cap":"many"}' >"$TMP/import.jsonl"
CODE=$(curl -s -o "$TMP/body" -w '%{http_code}' "${AUTH[@]}" -X POST --data-binary @"$TMP/import.jsonl" "$B/api/accounts/import")
expect 200 "import JSONL: good lines imported, bad lines reported by line number" \
  '.imported == 1 and .skipped == 1 and .invalid == 3 and .success == false and ([.errors[].line] == [2,3,6]) and (.errors[0].error | contains("refresh_token")) and (.errors[1].error | contains("malformed JSON")) and (.errors[2].error | contains("\"cap\""))'
printf '[{"email":"g@example.com","refresh_token":"rt-g"},{"email":"h@example.com","refresh_token":"rt-h","weight":0}]' >"$TMP/import.json"
CODE=$(curl -s -o "$TMP/body" -w '%{http_code}' "${AUTH[@]}" -X POST --data-binary @"$TMP/import.json" "$B/api/accounts/import")
expect 200 "import JSON array: errors name the item" '.imported == 1 and .invalid == 1 and .errors[0].item == 2 and (.errors[0].error | contains("\"weight\""))'
call POST '/api/accounts/import?mode=update' '{"email":"g@example.com","refresh_token":"rt-g2","label":"relabelled"}'
expect 200 "import mode=update updates an existing account" '.updated == 1 and .success == true'
call GET /api/accounts/g@example.com
expect 200 "the update took" '.label == "relabelled"'
call POST '/api/accounts/import?mode=merge' '[]'
expect_err 400 "import with a bad mode" 'query parameter \"mode\"'
call POST /api/accounts/import '[{"email":'
expect_err 400 "import a malformed JSON array" "malformed JSON array"
call POST /api/accounts/import ''
expect_err 400 "import an empty body" "empty"
call POST /api/accounts/import '{"nope":1}'
expect 400 "import where every record is bad → 400 with the per-line errors" '.errors[0].line == 1 and (.error | type == "string")'

call GET /api/accounts/export
expect 200 "export JSON without secrets" 'type == "array" and length == 5 and all(.[]; has("refresh_token") | not) and all(.[]; has("email") and has("state"))'
call GET '/api/accounts/export?format=jsonl'
if [[ "$CODE" == 200 ]] && [[ $(grep -c . "$TMP/body") == 5 ]] && jq -se 'length == 5 and all(.[]; has("refresh_token") | not)' "$TMP/body" >/dev/null; then
  ok "export JSONL without secrets"
else bad "export JSONL: $CODE $(head -c 300 "$TMP/body")"; fi
grep -qi '^Content-Type: application/x-ndjson' "$TMP/headers" && ok "JSONL export is application/x-ndjson" || bad "JSONL content type"
CODE=$(curl -s -o "$TMP/export-secrets.jsonl" -w '%{http_code}' "${AUTH[@]}" "$B/api/accounts/export?format=jsonl&include_secrets=true")
if [[ "$CODE" == 200 ]] && jq -se "map(select(.email == \"d@example.com\"))[0].refresh_token == \"$RT_D\"" "$TMP/export-secrets.jsonl" >/dev/null; then
  ok "export with include_secrets=true carries refresh tokens"
else bad "export with secrets: $CODE"; fi
call GET '/api/accounts/export?format=xml'
expect_err 400 "export with a bad format" 'query parameter \"format\" must be json or jsonl'
call GET '/api/accounts/export?include_secrets=maybe'
expect_err 400 "export with a bad include_secrets" 'query parameter \"include_secrets\" must be true or false'
call GET '/api/accounts/export?state=available'
expect 200 "export filtered by state" 'all(.[]; .state == "available")'

# round trip: the secret export re-imports into a fresh database as the same accounts
PORT2=$(free_port)
start_pool second "$TMP/second.db" "$PORT2" "" 127.0.0.1
SECOND_PID=$LAST_PID
if wait_health "$PORT2" "$SECOND_PID"; then
  AUTH=()
  B2=$B
  B="http://127.0.0.1:$PORT2"
  call GET /api/accounts/status
  expect 200 "loopback without ADMIN_TOKEN: no token needed" '.pool_stats.total == 0'
  CODE=$(curl -s -o "$TMP/body" -w '%{http_code}' -X POST --data-binary @"$TMP/export-secrets.jsonl" "$B/api/accounts/import")
  expect 200 "an export with secrets re-imports completely" '.imported == 5 and .invalid == 0'
  B=$B2
  AUTH=(-H "Authorization: Bearer $TOKEN")
  kill -TERM "$SECOND_PID"
  wait "$SECOND_PID" && ok "second service exits 0 on SIGTERM" || bad "second service exit status"
else
  bad "second service (no token, loopback) did not start: $(cat "$TMP/second.err")"
fi

# ---- delete ------------------------------------------------------------------------------------
call DELETE /api/accounts/h@example.com
expect_err 404 "delete an email that was never imported → 404" "not found"
call DELETE /api/accounts/g@example.com
expect 200 "DELETE /api/accounts/{email}" '.success == true'
call DELETE /api/accounts/g@example.com
expect_err 404 "delete again → 404" "not found"
call GET /api/accounts/status
expect 200 "status after delete" '.pool_stats.total == 4'

# ---- refusing a non-loopback bind without a token -------------------------------------------
PORT3=$(free_port)
start_pool exposed "$TMP/third.db" "$PORT3" "" 0.0.0.0
EXPOSED_PID=$LAST_PID
rc=0
for _ in $(seq 100); do kill -0 "$EXPOSED_PID" 2>/dev/null || break; sleep 0.05; done
if kill -0 "$EXPOSED_PID" 2>/dev/null; then
  bad "non-loopback bind without ADMIN_TOKEN was not refused"
  kill -TERM "$EXPOSED_PID"
else
  wait "$EXPOSED_PID" || rc=$?
  if ((rc != 0)) && grep -q "ADMIN_TOKEN" "$TMP/exposed.err" "$TMP/exposed.out"; then
    ok "non-loopback bind without ADMIN_TOKEN is refused at start (exit $rc, names ADMIN_TOKEN)"
  else
    bad "non-loopback refusal: exit $rc, output: $(cat "$TMP/exposed.err" "$TMP/exposed.out")"
  fi
fi

# ---- no secret leaked ---------------------------------------------------------------------------
kill -TERM "$MAIN_PID"
rc=0
wait "$MAIN_PID" || rc=$?
((rc == 0)) && ok "pool service exits 0 on SIGTERM" || bad "pool service exit status $rc"
if grep -qE 'AddressSanitizer|LeakSanitizer|runtime error' "$TMP"/*.err; then
  bad "sanitizer report: $(grep -hE -A5 'AddressSanitizer|LeakSanitizer|runtime error' "$TMP"/*.err | head -20)"
else ok "no sanitizer reports"; fi
leaks=0
for t in "$RT_A" "$RT_B" "$RT_C" "$RT_D" rt-new-for-a rt-g2 bad-unknown-token-123; do
  if grep -qF -- "$t" "$TMP/all-responses" "$TMP/main.err" "$TMP/main.out"; then
    bad "refresh token $t appears in a response or the log"
    leaks=1
  fi
done
((leaks)) || ok "no refresh token in any response (but the secret export) or log"

summary
