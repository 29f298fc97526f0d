#!/usr/bin/env bash
# fakewarp, scenarios and faults: text of N chunks x M bytes at a pace, tool calls (one,
# parallel, schema-derived and given args) and their round trips (request side field
# 12, history field 16), reasoning, echo, quota (429 texts, in-stream quota_limit, real
# enforcement and refresh), blocked, 5xx, empty 200, every finish reason, a cut
# connection, stalls, a slow accept, padding modes, token usage, per-account and
# one-shot scenarios, and abandoned streams (a client that hangs up is noticed at once).
# Usage: fakewarp_scenarios.sh <build-dir> <source-dir>
set -euo pipefail
BUILD=${1:?usage: $0 <build-dir> <source-dir>}
SRC=${2:?usage: $0 <build-dir> <source-dir>}
source "$SRC/tests/fixtures/fakewarp/lib.bash"

start_fw --account a@example.test:rt-a:1000 --account q@example.test:rt-q:2
TOK=$(id_token a@example.test)
FILLER="The quick brown fox jumps over the lazy dog. The quick brown fox jumps over the lazy dog. "

ask() { # ask QUERY [EXTRA-TEXTPROTO] -> status; body in $TMP/r.sse, events in $TMP/r.ev
  query_req "$TMP/r.bin" "$1" "${2:-}"
  local st
  st=$(ai "${ASK_TOK:-$TOK}" "$TMP/r.bin" "$TMP/r.sse")
  if [[ $st == 200 ]]; then sse events "$TMP/r.sse" >"$TMP/r.ev"; else : >"$TMP/r.ev"; fi
  echo "$st"
}
n_action() { jq -r "select(.action==\"$1\")|.action" "$TMP/r.ev" | wc -l | tr -d ' '; }
finish() { jq -r 'select(.kind=="finished")|.reason' "$TMP/r.ev"; }

TOOLS='mcp_context {
  tools { name: "get_weather" description: "Weather for a city"
    input_schema {
      fields { key: "type" value { string_value: "object" } }
      fields { key: "required" value { list_value { values { string_value: "city" } values { string_value: "days" } } } }
      fields { key: "properties" value { struct_value {
        fields { key: "city" value { struct_value { fields { key: "type" value { string_value: "string" } } } } }
        fields { key: "days" value { struct_value { fields { key: "type" value { string_value: "integer" } } } } }
        fields { key: "unit" value { struct_value { fields { key: "type" value { string_value: "string" } } } } } } } } } }
  tools { name: "get_time" description: "Time in a zone"
    input_schema {
      fields { key: "type" value { string_value: "object" } }
      fields { key: "required" value { list_value { values { string_value: "zone" } } } }
      fields { key: "properties" value { struct_value {
        fields { key: "zone" value { struct_value {
          fields { key: "type" value { string_value: "string" } }
          fields { key: "enum" value { list_value { values { string_value: "UTC" } values { string_value: "CET" } } } } } } } } } } } } }'

# ---- text ------------------------------------------------------------------------------
eq "text chunks=4 size=10: 200" 200 "$(ask '[[fw:text chunks=4 size=10]] go')"
eq "text chunks=4 size=10: 4 text events (1 add + 3 appends)" "1 3" \
  "$(jq -r 'select(.text and (.text|length>0))|.action' "$TMP/r.ev" | sort | uniq -c | awk '{print $1}' | paste -sd' ')"
eq "text chunks=4 size=10: the first 40 bytes of the filler" "${FILLER:0:40}" "$(sse text "$TMP/r.sse")"
query_req "$TMP/pace.bin" '[[fw:text chunks=6 size=4 pace_ms=100]] slow'
t=$(curl -sS -o /dev/null -w '%{time_total}' -XPOST "$BASE/ai/multi-agent" -H "authorization: Bearer $TOK" \
  --data-binary @"$TMP/pace.bin")
check "pace_ms=100 over 6 chunks takes >= 0.6 s ($t s)" awk -v t="$t" 'BEGIN{exit !(t >= 0.6 && t < 5)}'

# ---- tools -----------------------------------------------------------------------------
eq "tools: 200" 200 "$(ask '[[fw:tools]] weather?' "$TOOLS")"
eq "tools: one call_mcp_tool, schema-derived args (required props only)" \
  '[{"name":"get_weather","args":{"city":"fakewarp","days":1}}]' \
  "$(jq -c 'select(.tool_calls)|.tool_calls[]|{name,args}' "$TMP/r.ev" | jq -sc .)"
eq "tools: no text, finished done" "0 done" "$(n_action append_to_message_content) $(finish)"
CALL_ID=$(jq -r 'select(.tool_calls)|.tool_calls[0].id' "$TMP/r.ev")
eq "tools n=2: two parallel calls, one per tool, distinct ids" "get_weather get_time 2" \
  "$(ask '[[fw:tools n=2]] both' "$TOOLS" >/dev/null; jq -r 'select(.tool_calls)|.tool_calls[].name' "$TMP/r.ev" | paste -sd' ') $(jq -r 'select(.tool_calls)|.tool_calls[].id' "$TMP/r.ev" | sort -u | wc -l | tr -d ' ')"
eq "tools args=JSON overrides the derived arguments" '{"city":"Paris"}' \
  "$(ask '[[fw:tools args={"city":"Paris"}]] paris' "$TOOLS" >/dev/null; jq -c 'select(.tool_calls)|.tool_calls[0].args' "$TMP/r.ev")"
eq "tools name=get_time picks that tool; enum gives its first value" '{"name":"get_time","args":{"zone":"UTC"}}' \
  "$(ask '[[fw:tools name=get_time]] time' "$TOOLS" >/dev/null; jq -c 'select(.tool_calls)|.tool_calls[0]|{name,args}' "$TMP/r.ev")"
eq "tools without MCP tools in the request: explanatory text" "[fakewarp] tools requested but the request carries no MCP tools" \
  "$(ask '[[fw:tools]] none' >/dev/null; sse text "$TMP/r.sse")"

# round trip, request side (UserInput.tool_call_result.call_mcp_tool = field 12)
mkreq "$TMP/tr.bin" "input { user_inputs { inputs { tool_call_result { tool_call_id: \"$CALL_ID\"
  call_mcp_tool { success { results { text { text: \"22C and sunny\" } } } } } } } } $TOOLS"
ai "$TOK" "$TMP/tr.bin" "$TMP/tr.sse" >/dev/null
eq "tool result (request field 12) is quoted back" "Tool result: 22C and sunny" "$(sse text "$TMP/tr.sse")"
eq "tool result: echoed as a tool_call_result message" true \
  "$(sse events "$TMP/tr.sse" | jq -s 'map(select(.tool_call_result))|length>0')"
# history side (Message.tool_call_result.call_mcp_tool = field 16) plus the last result
mkreq "$TMP/tr2.bin" "task_context { tasks { id: \"t1\"
  messages { id: \"m1\" user_query { query: \"both\" } }
  messages { id: \"m2\" tool_call { tool_call_id: \"c1\" call_mcp_tool { name: \"get_weather\" } } }
  messages { id: \"m3\" tool_call { tool_call_id: \"c2\" call_mcp_tool { name: \"get_time\" } } }
  messages { id: \"m4\" tool_call_result { tool_call_id: \"c1\" call_mcp_tool { success { results { text { text: \"first\" } } } } } } } }
input { user_inputs { inputs { tool_call_result { tool_call_id: \"c2\"
  call_mcp_tool { success { results { text { text: \"second\" } } } } } } } }"
ai "$TOK" "$TMP/tr2.bin" "$TMP/tr2.sse" >/dev/null
eq "tool results from history (field 16) and input (field 12)" $'Tool result: first\nTool result: second' "$(sse text "$TMP/tr2.sse")"
mkreq "$TMP/tr3.bin" "input { user_inputs { inputs { tool_call_result { tool_call_id: \"c9\"
  call_mcp_tool { error { message: \"boom\" } } } } } }"
ai "$TOK" "$TMP/tr3.bin" "$TMP/tr3.sse" >/dev/null
eq "tool error result is quoted" "Tool result: error: boom" "$(sse text "$TMP/tr3.sse")"

# ---- reasoning, echo -------------------------------------------------------------------
ask '[[fw:reasoning chunks=3]] think' >/dev/null
eq "reasoning: 24 bytes (3 chunks of 8) before the answer" "Thinking about: think..." "$(sse reasoning "$TMP/r.sse")"
eq "reasoning: appends carry mask agent_output.reasoning" "agent_output.reasoning" \
  "$(jq -r 'select(.reasoning and (.reasoning|length>0) and .action=="append_to_message_content")|.mask[0]' "$TMP/r.ev" | sort -u)"
eq "reasoning: all reasoning events precede the text" true \
  "$(jq -s '. as $a | ([$a|to_entries[] | select(.value.reasoning and (.value.reasoning|length>0)) | .key] | max) < ([$a|to_entries[] | select(.value.text and (.value.text|length>0)) | .key] | min)' "$TMP/r.ev")"
eq "reasoning: the answer text follows" "You said: think" "$(sse text "$TMP/r.sse")"

query_req "$TMP/echo.bin" '[[fw:echo]] map me' "$TOOLS"
printf '%s\n' "input { user_inputs { inputs { user_query { query: '[[fw:echo]] map me'
  referenced_attachments { key: \"SYSTEM_PROMPT\" value { plain_text: \"be brief\" } } } } } }
settings { model_config { base: \"gpt-5\" } }
metadata { conversation_id: \"c-echo\" } $TOOLS" |
  protoc --encode=warp.multi_agent.v1.Request -I "$PROTO" -I /usr/include request.proto >"$TMP/echo.bin"
ai "$TOK" "$TMP/echo.bin" "$TMP/echo.sse" >/dev/null
eq "echo: the answer is a JSON summary of the decoded request" \
  "gpt-5|[[fw:echo]] map me|be brief|c-echo|get_weather,get_time" \
  "$(sse text "$TMP/echo.sse" | jq -r '[.model, .query, .system_prompt, .conversation_id, ([.tools[].name]|join(","))]|join("|")')"

# ---- refusals --------------------------------------------------------------------------
eq "quota: 429 No remaining quota" '429 {"error":"No remaining quota"}' "$(ask '[[fw:quota]] x') $(cat "$TMP/r.sse")"
eq "quota text=ai: 429 No AI requests remaining" '429 {"error":"No AI requests remaining"}' \
  "$(ask '[[fw:quota text=ai]] x') $(cat "$TMP/r.sse")"
eq "quota_stream: 200 then init, finished{quota_limit}" "200 init finished quota_limit" \
  "$(ask '[[fw:quota_stream]] x') $(jq -r .kind "$TMP/r.ev" | paste -sd' ') $(finish)"
BLOCK='{"error":"Your account has been blocked from using AI features. If you think this is in error, please contact appeals@warp.dev."}'
eq "blocked: 403 with the real text" "403 $BLOCK" "$(ask '[[fw:blocked]] x') $(cat "$TMP/r.sse")"
eq "blocked wording=new: adds the upgrade sentence" 403 "$(ask '[[fw:blocked wording=new]] x')"
check "blocked wording=new: text" grep -q 'Otherwise, please upgrade to a paid plan at https://app.warp.dev/upgrade.' "$TMP/r.sse"
eq "status 503" '503 {"error":"Something went wrong with this conversation"}' "$(ask '[[fw:status 503]] x') $(cat "$TMP/r.sse")"
eq "status 502 body=..." "502 upstream connect error" "$(ask '[[fw:status 502 body="upstream connect error"]] x') $(cat "$TMP/r.sse")"
eq "empty: 200 with an empty body" "200 0" "$(ask '[[fw:empty]] x') $(stat -c %s "$TMP/r.sse")"
eq "model_denied: 400 naming the model" 400 "$(ask '[[fw:model_denied]] x')"
check "model_denied: text" grep -q 'requested base model claude-4-5-opus is not allowed for your account' "$TMP/r.sse"

# ---- finish reasons --------------------------------------------------------------------
for r in max_token_limit context_window_exceeded llm_unavailable other quota_limit; do
  ask "[[fw:finish $r]] x" >/dev/null
  eq "finish $r: text then finished{$r}" "You said: x $r" "$(sse text "$TMP/r.sse") $(finish)"
done
ask '[[fw:internal_error msg="Vertex AI API error: Error 429 RESOURCE_EXHAUSTED"]] x' >/dev/null
eq "internal_error msg=...: finished{internal_error{message}}" "internal_error|Vertex AI API error: Error 429 RESOURCE_EXHAUSTED" \
  "$(jq -r 'select(.kind=="finished")|[.reason,.message]|join("|")' "$TMP/r.ev")"
ask '[[fw:token_usage in=100 out=20]] x' >/dev/null
eq "token_usage: finished.token_usage with model and counts" "claude-4-5-opus 100 20" \
  "$(jq -r 'select(.kind=="finished")|.token_usage[0]|[.model_id,.total_input,.output]|join(" ")' "$TMP/r.ev")"
ask 'x' >/dev/null
eq "token_usage is absent by default (as in the capture)" 0 "$(jq -r 'select(.kind=="finished")|.token_usage|length' "$TMP/r.ev")"
ask '[[fw:text chunks=0]] [[fw:title "Greeting"]] x' >/dev/null
eq "chunks=0: no text events; title sets the description" "0 Greeting" \
  "$(jq -s 'map(select(.text and (.text|length>0)))|length' "$TMP/r.ev") $(jq -r 'select(.description)|.description' "$TMP/r.ev")"

# ---- padding ---------------------------------------------------------------------------
ask '[[fw:pad never]] [[fw:text chunks=12 size=7]] x' >/dev/null
eq "pad never: no '=' anywhere" 0 "$(grep '^data:' "$TMP/r.sse" | grep -c '=$' || true)"
eq "pad never: still decodes (protoc)" "${FILLER:0:84}" "$(sse text "$TMP/r.sse")"
ask '[[fw:pad alternate]] [[fw:text chunks=12 size=7]] x' >/dev/null
eq "pad alternate: decodes" "${FILLER:0:84}" "$(sse text "$TMP/r.sse")"

# ---- cut, stalls, slow accept ----------------------------------------------------------
query_req "$TMP/cut.bin" '[[fw:cut after=3]] x'
rc=0
curl -sS -o "$TMP/cut.sse" -XPOST "$BASE/ai/multi-agent" -H "authorization: Bearer $TOK" --data-binary @"$TMP/cut.bin" 2>/dev/null || rc=$?
check "cut after=3: the transfer fails (curl $rc: connection closed mid-body)" test "$rc" = 18 -o "$rc" = 56
eq "cut after=3: exactly 3 events arrived, no finished" "3 0" \
  "$(grep -c '^data:' "$TMP/cut.sse") $(sse events "$TMP/cut.sse" | jq -r 'select(.kind=="finished")' | wc -l | tr -d ' ')"
eq "cut: counted in stats" 1 "$(ctl /stats | jq .cut)"

timed() { # timed QUERY -> "time_starttransfer time_total"
  query_req "$TMP/t.bin" "$1"
  curl -sS -o "$TMP/t.sse" -w '%{time_starttransfer} %{time_total}' -XPOST "$BASE/ai/multi-agent" \
    -H "authorization: Bearer $TOK" --data-binary @"$TMP/t.bin"
}
read -r tf tt <<<"$(timed '[[fw:stall first_ms=1000]] x')"
check "stall first_ms=1000: head at once ($tf s), events after >= 1 s ($tt s)" awk -v f="$tf" -v t="$tt" 'BEGIN{exit !(f < 0.5 && t >= 1.0)}'
eq "stall first_ms: the stream is complete" "You said: x" "$(sse text "$TMP/t.sse")"
read -r tf tt <<<"$(timed '[[fw:stall between_ms=800]] [[fw:text chunks=3 size=4]] x')"
check "stall between_ms=800: total >= 0.8 s ($tt s)" awk -v t="$tt" 'BEGIN{exit !(t >= 0.8)}'
read -r tf tt <<<"$(timed '[[fw:stall head_ms=700]] x')"
check "stall head_ms=700 (slow answer): first byte after >= 0.7 s ($tf s)" awk -v f="$tf" 'BEGIN{exit !(f >= 0.7)}'
ctl /faults '{"accept_delay_ms":600}' >/dev/null
tf=$(curl -sS -o /dev/null -w '%{time_starttransfer}' -XPOST "$BASE/proxy/token?key=k" -d 'grant_type=refresh_token&refresh_token=rt-a')
ctl /faults '{"accept_delay_ms":0}' >/dev/null
check "accept_delay_ms=600 (slow accept) delays every route ($tf s)" awk -v f="$tf" 'BEGIN{exit !(f >= 0.6)}'

# ---- abandoned streams -----------------------------------------------------------------
before=$(ctl /stats | jq .abandoned)
query_req "$TMP/ab.bin" '[[fw:text chunks=100 size=4 pace_ms=100]] long'
curl -sS -o /dev/null --max-time 0.6 -XPOST "$BASE/ai/multi-agent" -H "authorization: Bearer $TOK" --data-binary @"$TMP/ab.bin" 2>/dev/null || true
gone=$(date +%s%3N)
sleep 0.3
ctl /stats >"$TMP/ab.json"
eq "abandoned: counted once, nothing left open" "$((before + 1)) 0" "$(jq -r '[.abandoned, .streams_open]|join(" ")' "$TMP/ab.json")"
lat=$(( $(jq '.abandoned_streams[-1].noticed_ms' "$TMP/ab.json") - gone ))
check "abandoned: noticed within 500 ms of the hang-up (${lat} ms)" test "$lat" -lt 500
eq "abandoned: per account, with events sent before the hang-up" "1 true" \
  "$(jq -r '[.accounts["a@example.test"].abandoned, (.abandoned_streams[-1].events_sent > 3)]|join(" ")' "$TMP/ab.json")"

# ---- quotas enforced -------------------------------------------------------------------
QT=$(id_token q@example.test)
s1=$(ASK_TOK=$QT ask 'one')
s2=$(ASK_TOK=$QT ask 'two')
s3=$(ASK_TOK=$QT ask 'three')
eq "quota 2: two answers, then 429 No remaining quota" "200 200 429 No remaining quota" "$s1 $s2 $s3 $(jq -r .error "$TMP/r.sse")"
lim=$(curl -sS -XPOST "$BASE/graphql/v2?op=GetRequestLimitInfo" -H "authorization: Bearer $QT" -d '{}')
eq "GetRequestLimitInfo counts the served requests" "2 2" \
  "$(jq -r '.data.user.user.requestLimitInfo|[.requestLimit,.requestsUsedSinceLastRefresh]|join(" ")' <<<"$lim")"
ctl /accounts '{"email":"q@example.test","quota_in_stream":true}' >/dev/null
eq "exhausted account in quota_in_stream mode: 200 with finished{quota_limit}" "200 quota_limit" \
  "$(ASK_TOK=$QT ask 'four') $(finish)"
ctl /accounts '{"email":"q@example.test","next_refresh_in_s":1,"quota_in_stream":false}' >/dev/null
sleep 1.2
eq "after nextRefreshTime the quota is back" "200 You said: five" "$(ASK_TOK=$QT ask 'five') $(sse text "$TMP/r.sse")"
eq "and the count restarted" 1 \
  "$(curl -sS -XPOST "$BASE/graphql/v2?op=GetRequestLimitInfo" -H "authorization: Bearer $QT" -d '{}' | jq .data.user.user.requestLimitInfo.requestsUsedSinceLastRefresh)"
ctl /accounts '{"email":"q@example.test","blocked":true}' >/dev/null
eq "account-level blocked: 403" 403 "$(ASK_TOK=$QT ask 'six')"

# ---- scenarios chosen per account and per request ----------------------------------------
ctl /scenario '{"email":"a@example.test","scenario":"[[fw:status 500]]","times":1}' >/dev/null
eq "one-shot account scenario: first request 500, next one normal" "500 200" "$(ask 'x') $(ask 'x')"
ctl /scenario '{"email":"a@example.test","scenario":"[[fw:text chunks=2 size=5]]"}' >/dev/null
eq "account default scenario applies" "The quick " "$(ask 'x' >/dev/null; sse text "$TMP/r.sse")"
eq "the query's directive overrides the account default" "You said: y" "$(ask '[[fw:text chunks=-1]] [[fw:reset]] y' >/dev/null; sse text "$TMP/r.sse")"
ctl /scenario '{"email":"a@example.test","scenario":""}' >/dev/null
ctl /scenario '{"scenario":"[[fw:finish llm_unavailable]]"}' >/dev/null
eq "global default scenario applies" llm_unavailable "$(ask 'x' >/dev/null; finish)"
ctl /scenario '{"scenario":""}' >/dev/null
ask '[[fw:bogus]] x' >/dev/null
eq "unknown directive: answered normally, warned in the request log" "You said: x|unknown directive bogus" \
  "$(sse text "$TMP/r.sse")|$(ctl '/requests?email=a@example.test' | jq -r '.[-1].warnings')"

stop_fw
summary
