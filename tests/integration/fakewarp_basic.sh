#!/usr/bin/env bash
# fakewarp, routes: token exchange (/proxy/token, /v1/token, form and JSON, rotation,
# revocation, expiry), /ai/multi-agent plain text (exact text, capture fidelity of event
# kinds, field numbers and framing), invalid requests, GraphQL (quota counting, model
# catalog, users), email-link sign-in with the mailbox, /client/login, control routes
# (requests log with decoded JSON, stats, accounts, reset), configuration file.
# Usage: fakewarp_basic.sh <build-dir> <source-dir>
set -euo pipefail
BUILD=${1:?usage: $0 <build-dir> <source-dir>}
SRC=${2:?usage: $0 <build-dir> <source-dir>}
source "$SRC/tests/fixtures/fakewarp/lib.bash"

jwt_payload() {
  local p
  p=$(cut -d. -f2 <<<"$1" | tr '_-' '/+')
  while ((${#p} % 4)); do p+='='; done
  base64 -d <<<"$p"
}

cat >"$TMP/config.json" <<'JSON'
{ "token_lifetime_s": 3600, "default_quota": 150,
  "accounts": [
    {"email": "alice@example.test", "refresh_token": "rt-alice", "quota": 3},
    {"email": "bob@example.test", "refresh_token": "rt-bob", "rotate": true}
  ] }
JSON
start_fw --config "$TMP/config.json" --account carol@example.test:rt-carol:7

# ---- token endpoints -----------------------------------------------------------------
st=$(curl -sS -o "$TMP/t1.json" -w '%{http_code}' -XPOST "$BASE/proxy/token?key=AIzaTest" \
  -H 'content-type: application/x-www-form-urlencoded' \
  -d 'grant_type=refresh_token&refresh_token=rt-alice')
eq "/proxy/token (form) answers 200" 200 "$st"
TOK=$(jq -r .id_token "$TMP/t1.json")
eq "/proxy/token: access_token is the ID token" "$TOK" "$(jq -r .access_token "$TMP/t1.json")"
eq "/proxy/token: expires_in \"3600\"" '"3600"' "$(jq -c .expires_in "$TMP/t1.json")"
eq "/proxy/token: token_type, refresh_token, user_id, project_id" \
  "Bearer rt-alice true astral-field-294621" \
  "$(jq -r '[.token_type, .refresh_token, (.user_id|length==28), .project_id]|join(" ")' "$TMP/t1.json")"
pl=$(jwt_payload "$TOK")
eq "ID token is JWT-shaped with exp, user_id, email" "3 alice@example.test true true" \
  "$(awk -F. '{print NF}' <<<"$TOK") $(jq -r '[.email, (.exp - .iat == 3600), (.user_id == .sub)]|join(" ")' <<<"$pl")"
eq "ID token user_id matches the exchange's user_id" "$(jq -r .user_id "$TMP/t1.json")" "$(jq -r .user_id <<<"$pl")"

st=$(curl -sS -o "$TMP/t2.json" -w '%{http_code}' -XPOST "$BASE/v1/token?key=AIzaTest" \
  -H 'content-type: application/json' -d '{"grant_type":"refresh_token","refresh_token":"rt-carol"}')
eq "/v1/token (JSON) answers 200 with an id_token" "200 3" "$st $(jq -r .id_token "$TMP/t2.json" | awk -F. '{print NF}')"
st=$(curl -sS -o "$TMP/t3.json" -w '%{http_code}' -XPOST "$BASE/v1/token?key=AIzaTest" \
  -H 'x-warp-client-id: warp-app' -d 'grant_type=refresh_token&refresh_token=rt-carol')
eq "/v1/token (form, as the real client sends it) answers 200" 200 "$st"

st=$(curl -sS -o "$TMP/e1.json" -w '%{http_code}' -XPOST "$BASE/v1/token?key=k" -d 'grant_type=refresh_token&refresh_token=nope')
eq "wrong refresh token: 400 INVALID_REFRESH_TOKEN (Google's shape)" "400 INVALID_REFRESH_TOKEN 400 INVALID_ARGUMENT" \
  "$st $(jq -r '[.error.message, .error.code, .error.status]|join(" ")' "$TMP/e1.json")"
ctl /accounts '{"email":"carol@example.test","revoked":true}' >/dev/null
st=$(curl -sS -o "$TMP/e2.json" -w '%{http_code}' -XPOST "$BASE/proxy/token?key=k" -d 'grant_type=refresh_token&refresh_token=rt-carol')
eq "revoked refresh token: 400 TOKEN_EXPIRED" "400 TOKEN_EXPIRED" "$st $(jq -r .error.message "$TMP/e2.json")"
ctl /accounts '{"email":"carol@example.test","revoked":false}' >/dev/null
st=$(curl -sS -o "$TMP/e3.json" -w '%{http_code}' -XPOST "$BASE/proxy/token" -d 'grant_type=refresh_token&refresh_token=rt-carol')
eq "missing ?key=: 403 PERMISSION_DENIED" "403 PERMISSION_DENIED" "$st $(jq -r .error.status "$TMP/e3.json")"
st=$(curl -sS -o "$TMP/e4.json" -w '%{http_code}' -XPOST "$BASE/v1/token?key=k" -d 'grant_type=password&refresh_token=rt-carol')
eq "wrong grant_type: 400 INVALID_GRANT_TYPE" "400 INVALID_GRANT_TYPE" "$st $(jq -r .error.message "$TMP/e4.json")"

# rotation: bob's token changes on every exchange and the old one stops working
r1=$(curl -sS -XPOST "$BASE/v1/token?key=k" -d 'grant_type=refresh_token&refresh_token=rt-bob' | jq -r .refresh_token)
r2=$(curl -sS -XPOST "$BASE/v1/token?key=k" -d "grant_type=refresh_token&refresh_token=$r1" | jq -r .refresh_token)
old=$(curl -sS -XPOST "$BASE/v1/token?key=k" -d 'grant_type=refresh_token&refresh_token=rt-bob' | jq -r .error.message)
check "rotation: each exchange returns a new refresh token" test -n "$r2" -a "$r1" != rt-bob -a "$r2" != "$r1"
eq "rotation: the replaced refresh token is refused" INVALID_REFRESH_TOKEN "$old"

# ---- /ai/multi-agent authentication --------------------------------------------------
query_req "$TMP/hello.bin" "hello world"
st=$(ai "" "$TMP/hello.bin" "$TMP/o.txt")
eq "no bearer token: 401" 401 "$st"
st=$(ai "not.a.token" "$TMP/hello.bin" "$TMP/o.txt")
eq "unknown token: 401" 401 "$st"
forged="${TOK%.*}.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
st=$(ai "$forged" "$TMP/hello.bin" "$TMP/o.txt")
eq "token with a bad signature: 401" 401 "$st"
ctl /faults '{"token_lifetime_s":1}' >/dev/null
short=$(id_token carol@example.test)
ctl /faults '{"token_lifetime_s":3600}' >/dev/null
sleep 2.1
st=$(ai "$short" "$TMP/hello.bin" "$TMP/o.txt")
exp=$(jwt_payload "$short" | jq -r .exp)
eq "expired token: 401 {\"error\":\"ID token has expired at: <exp>\"}" \
  "401 {\"error\":\"ID token has expired at: $exp\"}" "$st $(cat "$TMP/o.txt")"

# ---- plain text answer -----------------------------------------------------------------
st=$(ai "$TOK" "$TMP/hello.bin" "$TMP/h.sse" -D "$TMP/h.hdr")
eq "plain question: 200" 200 "$st"
check "content-type text/event-stream;charset=utf-8" grep -qi '^content-type: text/event-stream;charset=utf-8' "$TMP/h.hdr"
eq "answer text is exactly \"You said: hello world\"" "You said: hello world" "$(sse text "$TMP/h.sse")"
sse events "$TMP/h.sse" >"$TMP/h.ev"
kinds=$(jq -r '[.kind, .action // .reason // ""]|join(":")' "$TMP/h.ev" | paste -sd' ')
eq "event order as in the capture (text in add, then appends)" \
  "init: client_actions:create_task client_actions:add_messages_to_task client_actions:add_messages_to_task client_actions:update_task_message client_actions:begin_transaction client_actions:add_messages_to_task client_actions:append_to_message_content client_actions:append_to_message_content client_actions:commit_transaction client_actions:update_task_description finished:done" \
  "$kinds"
eq "appends carry mask agent_output.text" "agent_output.text" \
  "$(jq -r 'select(.action=="append_to_message_content")|.mask[0]' "$TMP/h.ev" | sort -u)"
eq "update_task_message carries mask server_message_data" "server_message_data" \
  "$(jq -r 'select(.action=="update_task_message")|.mask[0]' "$TMP/h.ev")"
eq "user query echoed back" "hello world" "$(jq -r 'select(.query)|.query' "$TMP/h.ev" | head -1)"
eq "task description" "hello world" "$(jq -r 'select(.description)|.description' "$TMP/h.ev")"
eq "finished: request_cost 1" '["1"]' "$(jq -c 'select(.kind=="finished")|.request_cost' "$TMP/h.ev")"
check "no [DONE] sentinel" bash -c "! grep -q 'DONE' '$TMP/h.sse'"
check "body ends with the finished event and a blank line" bash -c \
  "tail -c 2 '$TMP/h.sse' | od -An -c | grep -q '\\\\n  *\\\\n'"

# the capture's own request, answered in five chunks like the capture's answer
ctl /scenario '{"email":"alice@example.test","scenario":"[[fw:text chunks=5 size=3]]","times":1}' >/dev/null
st=$(ai "$TOK" "$CAPTURE/turn1-request.bin" "$TMP/cap.sse")
eq "capture's request: 200" 200 "$st"
sse skeleton "$CAPTURE/turn1-response.sse" >"$TMP/cap.sk"
sse skeleton "$TMP/cap.sse" >"$TMP/mine.sk"
if diff -u "$TMP/cap.sk" "$TMP/mine.sk" >"$TMP/sk.diff"; then
  ok "fidelity: every event has the capture's kind and field structure ($(grep -c '^==' "$TMP/cap.sk") events)"
else
  bad "fidelity: event structure differs from turn1-response.sse: $(head -20 "$TMP/sk.diff")"
fi
eq "fidelity: framing (event:data, data: without space, one line)" \
  "$(sse framing "$CAPTURE/turn1-response.sse" | jq -c '[.event,.space,.lines]' | sort -u)" \
  "$(sse framing "$TMP/cap.sse" | jq -c '[.event,.space,.lines]' | sort -u)"
eq "fidelity: both padded and unpadded base64url events, like the capture" "false true" \
  "$(sse framing "$TMP/cap.sse" | jq -r .padded | sort -u | paste -sd' ')"
check "fidelity: payloads use the URL-safe alphabet only" bash -c "! grep '^data:' '$TMP/cap.sse' | grep -q '[+/]'"
check "fidelity: raw field numbers of finished match the capture (protoc --decode_raw)" bash -c "
  last() { grep '^data:' \"\$1\" | tail -1 | sed 's/^data://' | tr '_-' '/+' | tr -d '='; }
  pad() { local s=\$1; while ((\${#s} % 4)); do s+='='; done; printf '%s' \"\$s\"; }
  a=\$(pad \"\$(last '$CAPTURE/turn1-response.sse')\" | base64 -d | protoc --decode_raw | sed -E 's/: .*/:/')
  b=\$(pad \"\$(last '$TMP/cap.sse')\" | base64 -d | protoc --decode_raw | sed -E 's/: .*/:/')
  [[ \"\$a\" == \"\$b\" ]]"

# conversation continuation: the given conversation and task are kept, no create_task
mkreq "$TMP/turn2.bin" "task_context { tasks { id: \"task-1\" messages { id: \"m1\" user_query { query: \"hi\" } } } }
input { user_inputs { inputs { user_query { query: \"again\" } } } }
metadata { conversation_id: \"conv-42\" }"
ai "$TOK" "$TMP/turn2.bin" "$TMP/t2.sse" >/dev/null
sse events "$TMP/t2.sse" >"$TMP/t2.ev"
eq "second turn: init keeps the conversation_id" conv-42 "$(jq -r 'select(.kind=="init")|.conversation_id' "$TMP/t2.ev")"
eq "second turn: no create_task / description for an existing task" 0 \
  "$(jq -r 'select(.action=="create_task" or .action=="update_task_description")|.action' "$TMP/t2.ev" | wc -l | tr -d ' ')"
eq "second turn: text" "You said: again" "$(sse text "$TMP/t2.sse")"

# invalid requests
mkreq "$TMP/empty.bin" "settings { model_config { base: \"auto\" } }"
st=$(ai "$TOK" "$TMP/empty.bin" "$TMP/inv.txt")
eq "neither query nor tool result: the real invalid-request answer" \
  "400 Invalid request: Expected user query or tool call result as input; got <nil>" \
  "$st $(jq -r .error "$TMP/inv.txt")"
printf '\xff\xff\xff' >"$TMP/junk.bin"
st=$(ai "$TOK" "$TMP/junk.bin" "$TMP/junk.txt")
eq "undecodable body: 400" 400 "$st"

# ---- GraphQL ---------------------------------------------------------------------------
gql() { # op [token]
  curl -sS -XPOST "$BASE/graphql/v2?op=$1" -H "authorization: Bearer ${2:-$TOK}" \
    -H 'content-type: application/json' \
    -d "{\"query\":\"query $1 { user { __typename } }\",\"variables\":{\"requestContext\":{\"clientContext\":{\"version\":\"v0.2026.01.14.08.15.stable_04\"},\"osContext\":{\"category\":\"Linux\",\"linuxKernelVersion\":null,\"name\":\"Linux\",\"version\":\"6\"}}},\"operationName\":\"$1\"}"
}
gql GetRequestLimitInfo >"$TMP/q.json"
used=$(jq '[.[] | select(.email=="alice@example.test")][0].served' <<<"$(ctl /accounts)")
eq "GetRequestLimitInfo: shape and counters (limit 3, used = requests served)" \
  "UserOutput 3 $used false MONTHLY" \
  "$(jq -r '.data.user.__typename as $t | .data.user.user.requestLimitInfo | [$t, .requestLimit, .requestsUsedSinceLastRefresh, .isUnlimited, .requestLimitRefreshDuration]|join(" ")' "$TMP/q.json")"
check "GetRequestLimitInfo: nextRefreshTime is RFC 3339" \
  grep -qE '"nextRefreshTime":"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\.[0-9]{6}Z"' "$TMP/q.json"
gql GetFeatureModelChoices >"$TMP/m.json"
eq "GetFeatureModelChoices: defaultId auto-genius" auto-genius \
  "$(jq -r '.data.user.user.workspaces[0].featureModelChoice.agentMode.defaultId' "$TMP/m.json")"
eq "GetFeatureModelChoices: catalog has auto, auto-genius, claude-4-5-opus, claude-4-5-sonnet, gpt-5" 5 \
  "$(jq '[.data.user.user.workspaces[0].featureModelChoice.agentMode.choices[].id | select(IN("auto","auto-genius","claude-4-5-opus","claude-4-5-sonnet","gpt-5"))]|length' "$TMP/m.json")"
eq "GetFeatureModelChoices: every choice has the §4.3 fields" true \
  "$(jq '[.data.user.user.workspaces[0].featureModelChoice.agentMode.choices[] | has("displayName") and has("baseModelName") and has("id") and has("reasoningLevel") and (.usageMetadata|has("creditMultiplier") and has("requestMultiplier")) and has("description") and has("disableReason") and has("visionSupported") and (.spec|has("cost") and has("quality") and has("speed")) and has("provider")]|all' "$TMP/m.json")"
eq "GetUser: profile email" alice@example.test "$(gql GetUser | jq -r .data.user.user.profile.email)"
eq "GetOrCreateUser: uid and isOnboarded" "GetOrCreateUserOutput true true" \
  "$(gql GetOrCreateUser | jq -r '.data.getOrCreateUser | [.__typename, (.uid|length==28), .isOnboarded]|join(" ")')"
eq "GraphQL op from operationName when ?op= is absent" 3 \
  "$(curl -sS -XPOST "$BASE/graphql/v2" -H "authorization: Bearer $TOK" -d '{"operationName":"GetRequestLimitInfo","query":"q"}' | jq .data.user.user.requestLimitInfo.requestLimit)"
eq "GraphQL without a token: 401" 401 "$(curl -sS -o /dev/null -w '%{http_code}' -XPOST "$BASE/graphql/v2?op=GetUser" -d '{}')"

# ---- email-link sign-in ----------------------------------------------------------------
st=$(curl -sS -o "$TMP/oob.json" -w '%{http_code}' -XPOST "$BASE/v1/accounts:sendOobCode?key=k" \
  -H 'content-type: application/json' \
  -d '{"requestType":"EMAIL_SIGNIN","email":"dave@example.test","clientType":"CLIENT_TYPE_WEB","continueUrl":"https://app.warp.dev/login","canHandleCodeInApp":true}')
eq "sendOobCode: 200 with kind and email" "200 identitytoolkit#GetOobConfirmationCodeResponse dave@example.test" \
  "$st $(jq -r '[.kind,.email]|join(" ")' "$TMP/oob.json")"
ctl '/mailbox?email=dave@example.test' >"$TMP/mb.json"
link=$(jq -r '.messages[0].link' "$TMP/mb.json")
code=$(sed -n 's/.*[?&]oobCode=\([^&]*\).*/\1/p' <<<"$link")
check "mailbox shows the sign-in link with its oobCode" test -n "$code"
check "the link points at the Firebase action handler" grep -q 'astral-field-294621.firebaseapp.com/__/auth/action' <<<"$link"
curl -sS -XPOST "$BASE/v1/accounts:signInWithEmailLink?key=k" -H 'content-type: application/json' \
  -d "{\"email\":\"dave@example.test\",\"oobCode\":\"$code\"}" >"$TMP/si.json"
eq "signInWithEmailLink: idToken, refreshToken, expiresIn, localId, isNewUser" "true true 3600 true true" \
  "$(jq -r '[(.idToken|split(".")|length==3), (.refreshToken|length>20), .expiresIn, (.localId|length==28), .isNewUser]|join(" ")' "$TMP/si.json")"
eq "signInWithEmailLink: a used code is refused" INVALID_OOB_CODE \
  "$(curl -sS -XPOST "$BASE/v1/accounts:signInWithEmailLink?key=k" -d "{\"email\":\"dave@example.test\",\"oobCode\":\"$code\"}" | jq -r .error.message)"
drt=$(jq -r .refreshToken "$TMP/si.json")
dtok=$(curl -sS -XPOST "$BASE/v1/token?key=k" -d "grant_type=refresh_token&refresh_token=$drt" | jq -r .id_token)
st=$(ai "$dtok" "$TMP/hello.bin" "$TMP/d.sse")
eq "the signed-in account's refresh token works and its ID token gets answers" "200 You said: hello world" \
  "$st $(sse text "$TMP/d.sse")"
eq "/client/login with a token: 204" 204 "$(curl -sS -o /dev/null -w '%{http_code}' -XPOST "$BASE/client/login" -H "authorization: Bearer $TOK")"
eq "/client/login without: 403" 403 "$(curl -sS -o /dev/null -w '%{http_code}' -XPOST "$BASE/client/login")"

# ---- control routes ----------------------------------------------------------------------
ctl '/requests?email=alice@example.test' >"$TMP/req.json"
eq "requests log: decoded JSON of the received Request (per account)" "hello world" \
  "$(jq -r '[.[] | select(.status==200)][0].request.input.user_inputs.inputs[0].user_query.query' "$TMP/req.json")"
eq "requests log: summary with model and query" "claude-4-5-opus hello world" \
  "$(jq -r '[.[] | select(.status==200)][0].summary | [.model, .query]|join(" ")' "$TMP/req.json")"
check "requests log: never keeps the authorization header" bash -c "! grep -qi 'bearer' '$TMP/req.json'"
check "requests log: raw body decodes with protoc" bash -c \
  "jq -r '[.[] | select(.status==200)][0].body_b64' '$TMP/req.json' | base64 -d | protoc --decode=warp.multi_agent.v1.Request -I '$PROTO' -I /usr/include request.proto | grep -q 'hello world'"
ctl /stats >"$TMP/stats.json"
eq "stats: refreshes per account (alice 1 + id_token calls)" true \
  "$(jq '.accounts["alice@example.test"].refreshes >= 1 and .accounts["carol@example.test"].refreshes >= 3' "$TMP/stats.json")"
eq "stats: streams done, none open or abandoned" "true 0 0" \
  "$(jq -r '[(.streams_done >= 4), .streams_open, .abandoned]|join(" ")' "$TMP/stats.json")"
ctl /accounts '{"email":"erin@example.test","refresh_token":"rt-erin","quota":1}' >/dev/null
etok=$(id_token erin@example.test)
eq "account added at runtime works" 200 "$(ai "$etok" "$TMP/hello.bin" "$TMP/e.sse")"
ctl /reset '{}' >/dev/null
eq "reset: runtime accounts gone, configured ones back with zero counters" \
  "alice@example.test bob@example.test carol@example.test|0 0" \
  "$(ctl /accounts | jq -r '[.[].email]|join(" ")')|$(ctl /stats | jq -r '[.ai_requests, .accounts["alice@example.test"].used]|join(" ")')"
eq "reset: bob's original refresh token is valid again" 3 \
  "$(curl -sS -XPOST "$BASE/v1/token?key=k" -d 'grant_type=refresh_token&refresh_token=rt-bob' | jq -r .id_token | awk -F. '{print NF}')"

stop_fw
summary
