#!/usr/bin/env bash
# Checks proto/*.proto against the real Warp client capture (fixtures/warp-capture):
#   1. turn1-request.bin decodes as warp.multi_agent.v1.Request with the expected query
#      and base model and no unknown (bare numeric) fields;
#   2. every ResponseEvent of turn1-response.sse decodes with no unknown fields at any
#      depth, and every server_message_data decodes as ServerMessageData;
#   3. decode | encode of turn1-request.bin gives back the identical bytes.
# Usage: proto_schema_capture.sh <build-dir> <source-dir>  (only the source dir is used).
# Fixtures: "$2/../shared/fixtures/warp-capture", else $W2A_FIXTURES.
set -euo pipefail

SRC=${2:?usage: $0 <build-dir> <source-dir>}
PROTO="$SRC/proto"
FIX="$SRC/../shared/fixtures/warp-capture"
if [[ ! -f "$FIX/turn1-request.bin" ]]; then
  FIX=${W2A_FIXTURES:-}
fi
if [[ -z "$FIX" || ! -f "$FIX/turn1-request.bin" || ! -f "$FIX/turn1-response.sse" ]]; then
  echo "FAIL: capture fixtures not found (looked in $SRC/../shared/fixtures/warp-capture and \$W2A_FIXTURES)" >&2
  exit 1
fi
command -v protoc >/dev/null || { echo "FAIL: protoc not installed" >&2; exit 1; }

INC=(-I "$PROTO" -I /usr/include)
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"

decode() { # type proto-file < bytes
  protoc --decode="warp.multi_agent.v1.$1" "${INC[@]}" "$PROTO/$2"
}
encode() { # type proto-file < text
  protoc --encode="warp.multi_agent.v1.$1" "${INC[@]}" "$PROTO/$2"
}
# protoc prints fields it cannot name as "<number>: value" or "<number> {".
unknown_fields() { grep -nE '^[[:space:]]*[0-9]+([[:space:]]*\{|:)' "$1" || true; }

b64url_decode() { # base64url, padded or not -> raw bytes on stdout
  local s
  s=$(printf '%s' "$1" | tr -d '\r=' | tr '_-' '/+')
  while ((${#s} % 4)); do s+='='; done
  printf '%s' "$s" | base64 -d
}

# --- 1. request decodes fully -------------------------------------------------------
if decode Request request.proto <"$FIX/turn1-request.bin" >"$TMP/req.txt" 2>"$TMP/req.err"; then
  unk=$(unknown_fields "$TMP/req.txt")
  query_octal='query: "\344\275\240\345\245\275\345\221\200"' # 你好呀
  if [[ -n "$unk" ]]; then
    bad "request: unknown fields in decode: $unk"
  elif ! grep -qF "$query_octal" "$TMP/req.txt"; then
    bad "request: query 你好呀 not found in decode"
  elif ! grep -qF 'base: "claude-4-5-opus"' "$TMP/req.txt"; then
    bad "request: model_config.base claude-4-5-opus not found in decode"
  else
    ok "request decodes with query 你好呀, base claude-4-5-opus, no unknown fields"
  fi
else
  bad "request: protoc --decode failed: $(cat "$TMP/req.err")"
fi

# --- 2. every response event decodes fully ------------------------------------------
n=0
errs=""
while IFS= read -r line; do
  line=${line%$'\r'}
  [[ $line == data:* ]] || continue
  n=$((n + 1))
  b64url_decode "${line#data:}" >"$TMP/ev$n.bin"
  if ! decode ResponseEvent response.proto <"$TMP/ev$n.bin" >"$TMP/ev$n.txt" 2>"$TMP/ev$n.err"; then
    errs+=" event $n: decode failed ($(cat "$TMP/ev$n.err"));"
    continue
  fi
  unk=$(unknown_fields "$TMP/ev$n.txt")
  [[ -z "$unk" ]] || errs+=" event $n: unknown fields: $unk;"
  # server_message_data holds a base64url ServerMessageData (spec §2.4).
  while IFS= read -r smd; do
    [[ -n "$smd" ]] || continue
    if ! b64url_decode "$smd" | decode ServerMessageData task.proto >"$TMP/smd.txt" 2>/dev/null; then
      errs+=" event $n: server_message_data $smd does not decode;"
    elif [[ -n "$(unknown_fields "$TMP/smd.txt")" ]]; then
      errs+=" event $n: server_message_data $smd has unknown fields;"
    fi
  done < <(sed -n 's/^[[:space:]]*server_message_data: "\(.*\)"$/\1/p' "$TMP/ev$n.txt")
done <"$FIX/turn1-response.sse"
if ((n == 0)); then
  bad "response: no data: lines in turn1-response.sse"
elif [[ -n "$errs" ]]; then
  bad "response:$errs"
else
  ok "response: all $n events decode with no unknown fields (server_message_data too)"
fi

# --- 3. request re-encodes byte for byte --------------------------------------------
if [[ -s "$TMP/req.txt" ]] && encode Request request.proto <"$TMP/req.txt" >"$TMP/req.bin" 2>"$TMP/enc.err"; then
  if cmp -s "$TMP/req.bin" "$FIX/turn1-request.bin"; then
    ok "request: decode | encode gives the identical $(wc -c <"$TMP/req.bin" | tr -d ' ') bytes"
  else
    bad "request: re-encoded bytes differ ($(wc -c <"$TMP/req.bin" | tr -d ' ') vs $(wc -c <"$FIX/turn1-request.bin" | tr -d ' ') bytes): $(cmp "$TMP/req.bin" "$FIX/turn1-request.bin" 2>&1 || true)"
  fi
else
  bad "request: protoc --encode failed: $(cat "$TMP/enc.err" 2>/dev/null)"
fi

summary
