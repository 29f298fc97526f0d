#!/usr/bin/env bash
# The OpenAI side of the gateway, end to end: `warp2api serve` against fakewarp, driven
# with curl, checked with jq, and — for the request mapping — at the wire, from
# fakewarp's request log (GET /_fakewarp/requests: the decoded Request JSON, plus the raw
# body, which protoc --decode_raw reads without any schema to pin the field numbers).
#
# Covers: start-up message and loopback-only without keys; API keys (Bearer, x-api-key,
# wrong key); /healthz, /readyz; CORS (preflight, allowed/refused origin); 413, 431 and
# Expect: 100-continue; keep-alive; OpenAI error form; /v1/models (Warp catalog, aliases,
# one model, 404) and model_not_found; non-streaming and streaming text (role in the
# first chunk, chunks flushed as they arrive, [DONE]); reasoning_content; usage reported
# vs estimated; finish_reason stop/length/tool_calls; parallel tool calls (distinct
# indexes, ids, JSON arguments) and their round trip; the mapping of every message kind
# (history, system/developer even after a tool result, images, tool results on both
# sides with field numbers 12 and 16, schemas intact, tool_choice none/required/named);
# the admin-token debug routes. The gateway must exit cleanly on SIGTERM with no
# sanitizer report.
#
# Usage: gateway_openai.sh <build-dir> <source-dir>
set -uo pipefail

BUILD=$(cd "${1:?usage: $0 <build-dir> <source-dir>}" && pwd)
W2A="$BUILD/warp2api"
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"
need jq curl python3 protoc

start_fakewarp --account "a@example.com:rt-alpha-0123456789abcdef" \
  --account "b@example.com:rt-bravo-0123456789abcdef"

PORT=$(free_port)
APORT=$(free_port)
export W2A_ENV_FILE=/dev/null LOG_LEVEL=info LOG_FILE=""
export WARP_BASE_URL="$FW" FIREBASE_SECURETOKEN_URL="$FW" FIREBASE_IDENTITY_URL="$FW"
export DATABASE_PATH="$TMP/accounts.db" QUOTA_POLL_INTERVAL=3600 PORT POOL_SERVICE_PORT=$APORT
export MAX_BODY_BYTES=64K MAX_HEADER_BYTES=8K KEEPALIVE_INTERVAL=1 ADMIN_TOKEN=adm-secret
export MODEL_ALIASES="my-fast=claude-4-sonnet,gpt-4o-mini=auto" CORS_ORIGINS="https://app.example"
cd "$TMP"
printf 'rt-alpha-0123456789abcdef\n' | "$W2A" accounts add --email a@example.com >/dev/null 2>&1
printf 'rt-bravo-0123456789abcdef\n' | "$W2A" accounts add --email b@example.com >/dev/null 2>&1

start_gw() { # start_gw LOGFILE [ENV=VAL...]
  local log=$1
  shift
  env "$@" "$W2A" serve >"$log" 2>&1 &
  GW_PID=$!
  PIDS+=($GW_PID)
  for _ in $(seq 100); do curl -s "localhost:$PORT/healthz" >/dev/null 2>&1 && return 0; sleep 0.05; done
  return 1
}
stop_gw() {
  kill -TERM "$GW_PID" 2>/dev/null
  wait "$GW_PID" 2>/dev/null
  return $?
}

# ---- no keys: loopback only, and it says so --------------------------------------------
start_gw "$TMP/gw0.log" HOST=0.0.0.0 || bad "gateway starts"
check "without API_KEYS a non-loopback HOST is refused and the log says so" \
  grep -q "listens on 127.0.0.1 only" "$TMP/gw0.log"
check "without API_KEYS requests need no key" \
  test "$(curl -s -o /dev/null -w '%{http_code}' "localhost:$PORT/v1/models")" = 200
stop_gw
rc=$?
check "SIGTERM: clean exit (rc $rc)" test $rc -eq 0
check "no sanitizer report after an idle run" bash -c "! grep -q 'Sanitizer' '$TMP/gw0.log'"

# ---- with keys ---------------------------------------------------------------------------
start_gw "$TMP/gw.log" API_KEYS="sk-one,sk-two" || bad "gateway starts with keys"
G="http://127.0.0.1:$PORT"
K=(-H "authorization: Bearer sk-two")
chat() { curl -s "${K[@]}" -H 'content-type: application/json' "$G/v1/chat/completions" -d "$1"; }
chat_code() { curl -s -o "$TMP/body" -w '%{http_code}' "${K[@]}" -H 'content-type: application/json' \
  "$G/v1/chat/completions" -d "$1"; }
fwlog() { curl -s "$FW/_fakewarp/requests" | jq -c '[.accounts[][]] | sort_by(.at_ms) | last'; }
fwreset() { curl -s -X POST "$FW/_fakewarp/reset" -d '{}' >/dev/null; }

check "healthz" test "$(curl -s "$G/healthz" | jq -r .status)" = ok
check "readyz with accounts" test "$(curl -s "$G/readyz" | jq -r .usable_accounts)" = 2
code=$(curl -s -o "$TMP/body" -w '%{http_code}' "$G/v1/models")
check "no key → 401 invalid_api_key in OpenAI form" \
  test "$code:$(jq -r '.error.code + "/" + .error.type' "$TMP/body")" = "401:invalid_api_key/authentication_error"
check "OpenAI error object has message, type, param, code" \
  test "$(jq -c '.error | keys' "$TMP/body")" = '["code","message","param","type"]'
check "wrong key → 401" test "$(curl -s -o /dev/null -w '%{http_code}' -H 'authorization: Bearer sk-three' "$G/v1/models")" = 401
check "x-api-key accepted" test "$(curl -s -o /dev/null -w '%{http_code}' -H 'x-api-key: sk-one' "$G/v1/models")" = 200
check "unknown route → 404 JSON" test "$(curl -s "${K[@]}" "$G/v1/nothing" | jq -r .error.code)" = not_found

# CORS
hdrs=$(curl -s -i -X OPTIONS -H 'Origin: https://app.example' -H 'Access-Control-Request-Method: POST' \
  -H 'Access-Control-Request-Headers: authorization, content-type' "$G/v1/chat/completions")
check "CORS preflight: 204 with allow-origin and allow-headers" \
  bash -c "grep -q '^HTTP/1.1 204' <<<\"\$1\" && grep -qi '^access-control-allow-origin: https://app.example' <<<\"\$1\" && grep -qi '^access-control-allow-headers: authorization, content-type' <<<\"\$1\"" _ "$hdrs"
check "CORS: other origins get no allow-origin" \
  bash -c "! curl -s -i -H 'Origin: https://evil.example' -H 'x-api-key: sk-one' '$G/v1/models' | grep -qi access-control-allow-origin"

# Limits and Expect
big=$(python3 -c 'print("{\"messages\":[{\"role\":\"user\",\"content\":\"" + "x"*70000 + "\"}]}")')
code=$(curl -s -o "$TMP/body" -w '%{http_code}' "${K[@]}" "$G/v1/chat/completions" --data-binary "$big")
check "body over MAX_BODY_BYTES → 413 OpenAI error" test "$code:$(jq -r .error.type "$TMP/body")" = "413:invalid_request_error"
code=$(curl -s -o "$TMP/body" -w '%{http_code}' "${K[@]}" -H "x-big: $(head -c 9000 /dev/zero | tr '\0' a)" "$G/v1/models")
check "headers over MAX_HEADER_BYTES → 431 OpenAI error" test "$code:$(jq -r .error.code "$TMP/body")" = "431:headers_too_large"
out=$(curl -s -v "${K[@]}" -H 'Expect: 100-continue' -H 'content-type: application/json' \
  "$G/v1/chat/completions" -d '{"messages":[{"role":"user","content":"hi"}]}' 2>&1)
check "Expect: 100-continue is answered, then the completion" \
  bash -c "grep -q '< HTTP/1.1 100' <<<\"\$1\" && grep -q 'chat.completion' <<<\"\$1\"" _ "$out"
out=$(curl -s -v "${K[@]}" "$G/healthz" "$G/healthz" 2>&1)
check "keep-alive: two requests, one connection" grep -q "Re-using existing connection" <<<"$out"

# Models
curl -s "${K[@]}" "$G/v1/models" >"$TMP/models"
check "/v1/models: list from Warp's catalog (GetFeatureModelChoices)" \
  test "$(jq -r '.object + ":" + (.data|length>3|tostring) + ":" + (.data[0].object)' "$TMP/models")" = "list:true:model"
check "/v1/models lists configured aliases" test "$(jq -r '.data[]|select(.id=="my-fast").alias_for' "$TMP/models")" = claude-4-sonnet
check "/v1/models/{id}" test "$(curl -s "${K[@]}" "$G/v1/models/auto" | jq -r .id)" = auto
check "/v1/models/{unknown} → 404" test "$(curl -s "${K[@]}" "$G/v1/models/nope" | jq -r .error.code)" = model_not_found
code=$(chat_code '{"model":"gpt-99","messages":[{"role":"user","content":"hi"}]}')
check "unknown model in a completion → 404 model_not_found" \
  test "$code:$(jq -r .error.code "$TMP/body")" = "404:model_not_found"
chat '{"model":"my-fast","messages":[{"role":"user","content":"hi"}]}' >/dev/null
check "an alias reaches Warp as its target model" test "$(fwlog | jq -r .request.settings.model_config.base)" = claude-4-sonnet

# Non-streaming
r=$(chat '{"model":"claude-4-sonnet","messages":[{"role":"user","content":"hello world"}]}')
check "non-stream: chat.completion with content, stop, usage" \
  test "$(jq -r '[.object, .choices[0].message.role, .choices[0].message.content, .choices[0].finish_reason, (.usage.total_tokens>0|tostring)]|join("|")' <<<"$r")" = "chat.completion|assistant|You said: hello world|stop|true"
check "non-stream: usage without Warp's token_usage is marked estimated" test "$(jq -r .usage.estimated <<<"$r")" = true
r=$(chat '{"messages":[{"role":"user","content":"[[fw:token_usage in=123 out=45]] [[fw:reasoning chunks=2]] hi"}]}')
check "usage from finished.token_usage when Warp sends it" \
  test "$(jq -r '[.usage.prompt_tokens,.usage.completion_tokens,.usage.estimated]|map(tostring)|join(",")' <<<"$r")" = "123,45,false"
check "non-stream: reasoning_content" test "$(jq -r '.choices[0].message.reasoning_content|length>0' <<<"$r")" = true
r=$(chat '{"messages":[{"role":"user","content":"[[fw:finish max_token_limit]] hi"}]}')
check "finished max_token_limit → finish_reason length" test "$(jq -r '.choices[0].finish_reason' <<<"$r")" = length
r=$(chat '{"messages":[{"role":"user","content":"[[fw:finish context_window_exceeded]] hi"}]}')
check "finished context_window_exceeded → finish_reason length" test "$(jq -r '.choices[0].finish_reason' <<<"$r")" = length
code=$(chat_code '{"messages":[{"role":"user","content":"[[fw:internal_error msg=boom]] hi"}]}')
check "upstream error is an HTTP error, never assistant text" \
  test "$code:$(jq -r '.error.type' "$TMP/body"):$(jq -r '.error.message|test("boom")' "$TMP/body")" = "502:api_error:true"

# Streaming
curl -sN "${K[@]}" "$G/v1/chat/completions" -d '{"stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"[[fw:text chunks=5 size=6 pace_ms=300]] hi"}]}' |
  while IFS= read -r line; do [[ -n $line ]] && printf '%s %s\n' "$(date +%s%3N)" "$line"; done >"$TMP/stream"
grep '^[0-9]* data: {' "$TMP/stream" | sed 's/^[0-9]* data: //' >"$TMP/chunks"
check "stream: first chunk carries the role" test "$(head -1 "$TMP/chunks" | jq -r '.choices[0].delta.role')" = assistant
check "stream: only the first chunk carries the role" test "$(jq -s '[.[]|select(.choices[0].delta.role)]|length' "$TMP/chunks")" = 1
check "stream: all five text pieces, in order" test "$(jq -rs '[.[].choices[0].delta.content//empty]|length' "$TMP/chunks")" = 5
first=$(grep -m1 'content' "$TMP/stream" | cut -d' ' -f1)
last=$(grep 'content' "$TMP/stream" | tail -1 | cut -d' ' -f1)
check "stream: chunks are flushed as Warp sends them (spread $((last - first)) ms ≥ 900)" test $((last - first)) -ge 900
check "stream: finish_reason stop, then usage chunk (choices []), then [DONE]" \
  test "$(jq -rs '[.[-2].choices[0].finish_reason, (.[-1].choices|length|tostring), (.[-1].usage.total_tokens>0|tostring)]|join(",")' "$TMP/chunks"),$(tail -1 "$TMP/stream" | cut -d' ' -f2-)" = "stop,0,true,data: [DONE]"
check "stream: all chunks share one chatcmpl- id" test "$(jq -rs '[.[].id]|unique|length' "$TMP/chunks"):$(head -1 "$TMP/chunks" | jq -r '.id|startswith("chatcmpl-")')" = "1:true"
curl -sN "${K[@]}" "$G/v1/chat/completions" -d '{"stream":true,"messages":[{"role":"user","content":"[[fw:reasoning chunks=3]] hi"}]}' >"$TMP/s2"
check "stream: reasoning as reasoning_content deltas" test "$(grep -c reasoning_content "$TMP/s2")" -ge 3
check "stream: no usage chunk unless asked" bash -c "! grep -q '\"usage\"' '$TMP/s2'"
curl -sN "${K[@]}" "$G/v1/chat/completions" -d '{"stream":true,"messages":[{"role":"user","content":"[[fw:stall first_ms=2600]] hi"}]}' >"$TMP/s3"
check "stream: keep-alive comments while Warp is silent" grep -q '^: keep-alive' "$TMP/s3"
check "stream: and the answer after them" grep -q 'data: \[DONE\]' "$TMP/s3"

# Tool calls
TOOLS='"tools":[{"type":"function","function":{"name":"get_weather","description":"Weather","parameters":{"type":"object","properties":{"city":{"type":"string","description":""},"opts":{}},"required":[]}}},{"type":"function","function":{"name":"get_time","parameters":{"type":"object","properties":{}}}}]'
r=$(chat "{\"messages\":[{\"role\":\"user\",\"content\":\"[[fw:tools n=3 name=get_weather]] go\"}],$TOOLS}")
check "non-stream: parallel tool calls, finish_reason tool_calls" \
  test "$(jq -r '[.choices[0].finish_reason, (.choices[0].message.tool_calls|length|tostring)]|join(",")' <<<"$r")" = "tool_calls,3"
check "tool calls: distinct ids, type function, arguments are JSON strings" \
  test "$(jq -r '[(.choices[0].message.tool_calls|map(.id)|unique|length), (.choices[0].message.tool_calls|map(.function.arguments|fromjson|type)|unique|join(""))]|map(tostring)|join(",")' <<<"$r")" = "3,object"
ids=$(jq -c '[.choices[0].message.tool_calls[].id]' <<<"$r")
curl -sN "${K[@]}" "$G/v1/chat/completions" -d "{\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"[[fw:tools n=3]] go\"}],$TOOLS}" |
  grep '^data: {' | sed 's/^data: //' >"$TMP/tchunks"
check "stream: parallel tool calls carry distinct index values 0,1,2" \
  test "$(jq -rs '[.[].choices[0].delta.tool_calls[]?.index]|map(tostring)|join(",")' "$TMP/tchunks")" = "0,1,2"
check "stream: tool calls end with finish_reason tool_calls" \
  test "$(jq -rs '[.[].choices[0]?.finish_reason//empty]|last' "$TMP/tchunks")" = tool_calls
WRAP='"tools":[{"type":"function","function":{"name":"get_time"}},{"type":"function","function":{"name":"call_mcp_tool"}}]'
r=$(chat "{\"messages\":[{\"role\":\"user\",\"content\":\"[[fw:tools n=1 name=call_mcp_tool args={\\\"name\\\":\\\"get_time\\\",\\\"args\\\":{\\\"tz\\\":\\\"UTC\\\"}}]] go\"}],$WRAP}")
check "a model call wrapped as call_mcp_tool is unwrapped" \
  test "$(jq -r '.choices[0].message.tool_calls[0].function | .name + " " + .arguments' <<<"$r")" = 'get_time {"tz":"UTC"}'

# ---- the mapping, at the wire ---------------------------------------------------------
fwreset
id0=$(jq -r '.[0]' <<<"$ids")
id1=$(jq -r '.[1]' <<<"$ids")
body=$(cat <<JSON
{"model":"auto","messages":[
 {"role":"system","content":"You are terse."},
 {"role":"user","content":[{"type":"text","text":"weather in Paris?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}}]},
 {"role":"assistant","content":"Let me check.","tool_calls":[
   {"id":"$id0","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},
   {"id":"$id1","type":"function","function":{"name":"get_time","arguments":"{}"}}]},
 {"role":"tool","tool_call_id":"$id0","content":"sunny"},
 {"role":"tool","tool_call_id":"$id1","content":""},
 {"role":"assistant","content":"It is sunny."},
 {"role":"developer","content":"Answer in French."},
 {"role":"user","content":"and tomorrow?"},
 {"role":"assistant","content":null,"tool_calls":[{"id":"call_X","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\",\"day\":1}"}}]},
 {"role":"tool","tool_call_id":"call_X","content":[{"type":"text","text":"rain"}]}
],$TOOLS}
JSON
)
code=$(chat_code "$body")
check "multi-turn request with tools accepted ($code)" test "$code" = 200
L=$(fwlog)
RQ=$(jq -c .request <<<"$L")
msgs=$(jq -c '.task_context.tasks[0].messages' <<<"$RQ")
check "wire: every history message is mapped (preamble + 9)" test "$(jq length <<<"$msgs")" = 10
check "wire: history kinds in order" \
  test "$(jq -r '[.[] | keys_unsorted | map(select(. != "id" and . != "task_id"))[0]] | join(",")' <<<"$msgs")" = \
  "tool_call,user_query,agent_output,tool_call,tool_call,tool_call_result,tool_call_result,agent_output,user_query,tool_call"
check "wire: history user image goes into that message's context" \
  test "$(jq -r '.[1].user_query.context.images[0].mime_type' <<<"$msgs")" = image/png
check "wire: assistant tool call ids and Struct args round-trip" \
  test "$(jq -r '.[3].tool_call | .tool_call_id + " " + .call_mcp_tool.name + " " + (.call_mcp_tool.args|tojson)' <<<"$msgs")" = "$id0 get_weather {\"city\":\"Paris\"}"
check "wire: history tool results are Message.tool_call_result.call_mcp_tool" \
  test "$(jq -r '.[5].tool_call_result | .tool_call_id + " " + .call_mcp_tool.success.results[0].text.text' <<<"$msgs")" = "$id0 sunny"
check "wire: an empty tool result keeps its result body" \
  test "$(jq -r '.[6].tool_call_result.call_mcp_tool.success.results|length' <<<"$msgs")" = 1
check "wire: per-request task id, messages carry it, active_task_id set" \
  test "$(jq -r '(.task_context.tasks[0].id|length|tostring) + " " + ((.task_context.tasks[0].messages|map(.task_id)|unique|length)|tostring) + " " + ((.task_context.active_task_id==.task_context.tasks[0].id)|tostring)' <<<"$RQ")" = "36 1 true"
check "wire: the input is the final tool result (request side)" \
  test "$(jq -r '.input.user_inputs.inputs[0].tool_call_result | .tool_call_id + " " + .call_mcp_tool.success.results[0].text.text' <<<"$RQ")" = "call_X rain"
check "wire: system + developer reach the SYSTEM_PROMPT attachment even after a tool result" \
  test "$(jq -r '.[8].user_query.referenced_attachments.SYSTEM_PROMPT.plain_text' <<<"$msgs")" = $'You are terse.\n\nAnswer in French.'
check "wire: tools → mcp_context with the schema intact (empty values kept)" \
  test "$(jq -c '.mcp_context.tools[0] | [.name, .description, .input_schema.properties.city.description, .input_schema.properties.opts, .input_schema.required]' <<<"$RQ")" = '["get_weather","Weather","",{},[]]'
check "wire: settings (model, CALL_MCP_TOOL only) and logging metadata" \
  test "$(jq -r '[.settings.model_config.base, (.settings.supported_tools|join(",")), .metadata.logging.entrypoint]|join(" ")' <<<"$RQ")" = "auto CALL_MCP_TOOL USER_INITIATED"
check "wire: no process-wide conversation id" test "$(jq -r '.metadata.conversation_id // "none"' <<<"$RQ")" = none
jq -r .body_b64 <<<"$L" | base64 -d >"$TMP/req.bin"
protoc --decode_raw <"$TMP/req.bin" >"$TMP/req.txt" 2>&1
check "raw wire: input tool result uses field 12 (Input.ToolCallResult.call_mcp_tool)" \
  bash -c "python3 - '$TMP/req.txt' <<'PY'
import sys,re
t=open(sys.argv[1]).read()
# input(2) > user_inputs(6) > inputs(1) > tool_call_result(2) > 12 { 1 { 1 { 1 { 1: \"rain\"
m=re.search(r'^2 \{.*?^  6 \{\s*1 \{\s*2 \{\s*1: \"call_X\"\s*12 \{', t, re.S|re.M)
sys.exit(0 if m else 1)
PY"
check "raw wire: history tool result uses field 16 (Message.ToolCallResult.call_mcp_tool)" \
  bash -c "grep -A3 '1: \"$id0\"' '$TMP/req.txt' | grep -q '16 {'"

fwreset
chat "{\"tool_choice\":\"none\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],$TOOLS}" >/dev/null
check "tool_choice none: no tools sent" test "$(fwlog | jq -r '.request.mcp_context // "absent"')" = absent
chat "{\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"get_time\"}},\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],$TOOLS}" >/dev/null
check "tool_choice named: only that tool, with an instruction in the system prompt" \
  test "$(fwlog | jq -r '[(.request.mcp_context.tools|map(.name)|join(",")), (.request.input.user_inputs.inputs[0].user_query.referenced_attachments.SYSTEM_PROMPT.plain_text|test("get_time")|tostring)]|join(" ")')" = "get_time true"
code=$(chat_code '{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://example.com/cat.png"}}]}]}')
check "image URL that is not a data: URI → clear 400 naming the parameter" \
  test "$code:$(jq -r .error.param "$TMP/body")" = "400:messages[0].content[0].image_url.url"
code=$(chat_code '{"messages":[{"role":"user","content":"hi"}')
check "broken JSON → 400 invalid_json" test "$code:$(jq -r .error.code "$TMP/body")" = "400:invalid_json"
# Bytes that are not UTF-8 cannot travel in a protobuf string: refused at the door, not
# forwarded for Warp to reject (in a key of a tool's schema, and in a message).
n0=$(curl -s "$FW/_fakewarp/requests" | jq '[.accounts[][]] | length')
code=$(chat_code "$(printf '{"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","re\xffquired":[]}}}],"messages":[{"role":"user","content":"hi"}]}')")
check "invalid UTF-8 in a schema key → 400 invalid_json naming UTF-8 ($(jq -r .error.message "$TMP/body"))" \
  test "$code:$(jq -r .error.code "$TMP/body"):$(jq -r '.error.message|test("UTF-8")' "$TMP/body")" = "400:invalid_json:true"
code=$(chat_code "$(printf '{"messages":[{"role":"user","content":"caf\xe9"}]}')")
check "invalid UTF-8 in a message → 400 invalid_json" test "$code:$(jq -r .error.code "$TMP/body")" = "400:invalid_json"
code=$(chat_code "$(printf '{"messages":[{"role":"tool","tool_call_id":"c\xc0\x9f","content":"x"}]}')")
check "an overlong UTF-8 form (json-c's own check passes it) → 400 at its byte" \
  test "$code:$(jq -r .error.message "$TMP/body")" = "400:the request body is not valid UTF-8 (at byte 45)"
code=$(chat_code '{"messages":[{"role":"user","content":"before\u0000after"}]}')
check "a NUL character (\\u0000), which protobuf-c's strings would cut at → 400 unsupported_content" \
  test "$code:$(jq -r .error.code "$TMP/body")" = "400:unsupported_content"
check "… and none of them reached fakewarp" test "$(curl -s "$FW/_fakewarp/requests" | jq '[.accounts[][]] | length')" = "$n0"

# ---- debug routes --------------------------------------------------------------------
A=(-H "authorization: Bearer adm-secret")
code=$(curl -s -o /dev/null -w '%{http_code}' "$G/api/schemas")
check "debug routes need the admin token" test "$code" = 401
check "/api/schemas" test "$(curl -s "${A[@]}" "$G/api/schemas" | jq -r '(.total_count>10) and (.schemas|map(.full_name)|index("warp.multi_agent.v1.Request")!=null)')" = true
enc=$(curl -s "${A[@]}" "$G/api/encode" -d '{"json_data":{"input":{"user_inputs":{"inputs":[{"user_query":{"query":"hi"}}]}}},"message_type":"warp.multi_agent.v1.Request"}')
check "/api/encode → base64 protobuf" test "$(jq -r '.size>0 and (.protobuf_bytes|length>0)' <<<"$enc")" = true
dec=$(curl -s "${A[@]}" "$G/api/decode" -d "{\"protobuf_bytes\":\"$(jq -r .protobuf_bytes <<<"$enc")\"}")
check "/api/decode round-trips" test "$(jq -r '.json_data.input.user_inputs.inputs[0].user_query.query' <<<"$dec")" = hi
ev=$(printf '\x0a\x04\x0a\x02c1' | base64)
sd=$(curl -s "${A[@]}" "$G/api/stream-decode" -d "{\"protobuf_chunks\":[\"$ev\",\"!!\"]}")
check "/api/stream-decode defaults to ResponseEvent, reports bad chunks" \
  test "$(jq -r '[.message_type, .chunks[0].json_data.init.conversation_id, (.chunks[1].error!=null|tostring), (.complete|tostring)]|join(",")' <<<"$sd")" = "warp.multi_agent.v1.ResponseEvent,c1,true,false"

stop_gw
rc=$?
check "SIGTERM after the run: clean exit (rc $rc)" test $rc -eq 0
check "no sanitizer report (leaks, UB) in the gateway log" bash -c "! grep -q 'Sanitizer' '$TMP/gw.log'"
[[ $failed -eq 0 ]] || { echo "--- gateway log (tail)"; tail -30 "$TMP/gw.log"; } >&2

summary
