#!/usr/bin/env bash
# Our transcoder (warp2api proto encode/decode) against Google's (protoc --encode/--decode)
# on the cases in tests/fixtures/protoc/:
#   cases/NAME@TYPE.txtpb  protobuf text format. protoc --encode -> bytes P; our decode of P
#                          -> JSON J (== NAME@TYPE.expect.json when present, jq -S); our
#                          encode of J == P byte for byte; protoc --decode of ours == of P.
#   cases/NAME@TYPE.json   our JSON. our encode -> O; protoc --decode O -> text;
#   types/TYPE.json        protoc --encode of that text == O byte for byte; our decode of
#                          O == the JSON (or NAME@TYPE.expect.json).
#   cases/NAME@TYPE.hex    raw bytes protoc cannot write (unpacked repeated, unknown
#                          fields...): our decode -> JSON (== expect.json when present);
#                          our encode of it, decoded by protoc, == protoc's decode of the
#                          original; and == the original bytes unless NAME starts "repack-".
# A case whose NAME starts with "textonly-" documents a known byte-level difference
# (protoc writes default map keys/values, protobuf-c omits them): it compares protoc's
# text of both encodings instead of the bytes.
# types/ must hold a case for every message of warp.multi_agent.v1 and the well-known
# types we use; `proto_protoc_agreement.sh BUILD SRC --regen` adds the missing ones from
# `warp2api proto sample`.
# Usage: proto_protoc_agreement.sh <build-dir> <source-dir> [--regen]
set -uo pipefail

BUILD=${1:?usage: $0 <build-dir> <source-dir>}
SRC=${2:?usage: $0 <build-dir> <source-dir>}
W2A="$BUILD/warp2api"
FIX="$SRC/tests/fixtures/protoc"
command -v protoc >/dev/null || { echo "FAIL: protoc not installed" >&2; exit 1; }
command -v jq >/dev/null || { echo "FAIL: jq not installed" >&2; exit 1; }
[[ -x "$W2A" ]] || { echo "FAIL: $W2A not built" >&2; exit 1; }

source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"
PROTOS=("$SRC"/proto/*.proto)
pc_encode() { protoc --encode="$1" -I "$SRC/proto" -I /usr/include "${PROTOS[@]}"; }
pc_decode() { protoc --decode="$1" -I "$SRC/proto" -I /usr/include "${PROTOS[@]}"; }
us_encode() { "$W2A" proto encode --type "$1"; }
us_decode() { "$W2A" proto decode --type "$1"; }

# The schema: every message we generate code for, less descriptor.proto's internals.
schema_types() {
  "$W2A" proto schemas | awk '{print $1}' |
    grep -E '^(warp\.multi_agent\.v1\.|google\.protobuf\.(Struct|Struct\.FieldsEntry|Value|ListValue|Timestamp|FieldMask|Empty)$)'
}

if [[ ${3:-} == --regen ]]; then
  mkdir -p "$FIX/types"
  while read -r t; do
    [[ -f "$FIX/types/$t.json" ]] || { "$W2A" proto sample --type "$t" >"$FIX/types/$t.json" && echo "added types/$t.json"; }
  done < <(schema_types)
  exit 0
fi

ok() { passed=$((passed + 1)); } # silent: one per check of every case

same_json() { # a b: equal after jq -S
  cmp -s <(jq -S . "$1" 2>/dev/null) <(jq -S . "$2" 2>/dev/null)
}

covered="$TMP/covered"
: >"$covered"

run_txt() { # file type name
  local f=$1 t=$2 n=$3 exp="${1%.txtpb}.expect.json"
  if ! pc_encode "$t" <"$f" >"$TMP/p.bin" 2>"$TMP/err"; then
    bad "$n: protoc --encode: $(head -c 300 "$TMP/err")"; return
  fi
  if ! us_decode "$t" <"$TMP/p.bin" >"$TMP/j.json" 2>"$TMP/err"; then
    bad "$n: our decode of protoc's bytes: $(cat "$TMP/err")"; return
  fi
  if [[ -f "$exp" ]] && ! same_json "$TMP/j.json" "$exp"; then
    bad "$n: our JSON differs from $(basename "$exp"): $(diff <(jq -S . "$TMP/j.json") <(jq -S . "$exp") | head -20)"; return
  fi
  if ! us_encode "$t" <"$TMP/j.json" >"$TMP/o.bin" 2>"$TMP/err"; then
    bad "$n: our encode of our JSON: $(cat "$TMP/err")"; return
  fi
  pc_decode "$t" <"$TMP/o.bin" >"$TMP/o.txt" 2>&1
  pc_decode "$t" <"$TMP/p.bin" >"$TMP/p.txt" 2>&1
  if ! cmp -s "$TMP/o.txt" "$TMP/p.txt"; then
    bad "$n: protoc reads our bytes differently: $(diff "$TMP/p.txt" "$TMP/o.txt" | head -20)"; return
  fi
  if [[ $n != textonly-* ]] && ! cmp -s "$TMP/o.bin" "$TMP/p.bin"; then
    bad "$n: our bytes differ from protoc's: $(cmp "$TMP/o.bin" "$TMP/p.bin" 2>&1)"; return
  fi
  echo "$t" >>"$covered"
  ok
}

run_json() { # file type name
  local f=$1 t=$2 n=$3 exp="${1%.json}.expect.json"
  [[ -f "$exp" ]] || exp=$f
  if ! us_encode "$t" <"$f" >"$TMP/o.bin" 2>"$TMP/err"; then
    bad "$n: our encode: $(cat "$TMP/err")"; return
  fi
  if ! pc_decode "$t" <"$TMP/o.bin" >"$TMP/o.txt" 2>"$TMP/err"; then
    bad "$n: protoc --decode of our bytes: $(cat "$TMP/err")"; return
  fi
  if grep -qE '^[[:space:]]*[0-9]+([[:space:]]*\{|:)' "$TMP/o.txt" && ! grep -q '_unknown' "$f"; then
    bad "$n: protoc sees unknown fields in our bytes: $(grep -nE '^[[:space:]]*[0-9]+' "$TMP/o.txt" | head -5)"; return
  fi
  if ! pc_encode "$t" <"$TMP/o.txt" >"$TMP/p.bin" 2>"$TMP/err"; then
    bad "$n: protoc --encode of its own text: $(head -c 300 "$TMP/err")"; return
  fi
  if [[ $n == textonly-* ]]; then
    pc_decode "$t" <"$TMP/p.bin" >"$TMP/p.txt" 2>&1
    cmp -s "$TMP/o.txt" "$TMP/p.txt" || { bad "$n: protoc text differs"; return; }
  elif ! cmp -s "$TMP/o.bin" "$TMP/p.bin"; then
    bad "$n: protoc re-encodes our bytes differently: $(cmp "$TMP/o.bin" "$TMP/p.bin" 2>&1)"; return
  fi
  if ! us_decode "$t" <"$TMP/p.bin" >"$TMP/j.json" 2>"$TMP/err"; then
    bad "$n: our decode of protoc's bytes: $(cat "$TMP/err")"; return
  fi
  if ! same_json "$TMP/j.json" "$exp"; then
    bad "$n: our JSON of protoc's bytes differs: $(diff <(jq -S . "$TMP/j.json") <(jq -S . "$exp") | head -20)"; return
  fi
  echo "$t" >>"$covered"
  ok
}

run_hex() { # file type name
  local f=$1 t=$2 n=$3 exp="${1%.hex}.expect.json"
  sed 's/#.*//' "$f" | tr -d ' \n\t' | xxd -r -p >"$TMP/h.bin"
  if ! us_decode "$t" <"$TMP/h.bin" >"$TMP/j.json" 2>"$TMP/err"; then
    bad "$n: our decode: $(cat "$TMP/err")"; return
  fi
  if [[ -f "$exp" ]] && ! same_json "$TMP/j.json" "$exp"; then
    bad "$n: our JSON differs from $(basename "$exp"): $(diff <(jq -S . "$TMP/j.json") <(jq -S . "$exp") | head -20)"; return
  fi
  if ! us_encode "$t" <"$TMP/j.json" >"$TMP/o.bin" 2>"$TMP/err"; then
    bad "$n: our encode: $(cat "$TMP/err")"; return
  fi
  pc_decode "$t" <"$TMP/o.bin" >"$TMP/o.txt" 2>&1
  pc_decode "$t" <"$TMP/h.bin" >"$TMP/h.txt" 2>&1
  if ! cmp -s "$TMP/o.txt" "$TMP/h.txt"; then
    bad "$n: protoc reads our re-encoding differently: $(diff "$TMP/h.txt" "$TMP/o.txt" | head -20)"; return
  fi
  if [[ $n != repack-* ]] && ! cmp -s "$TMP/o.bin" "$TMP/h.bin"; then
    bad "$n: re-encoded bytes differ: $(cmp "$TMP/o.bin" "$TMP/h.bin" 2>&1)"; return
  fi
  echo "$t" >>"$covered"
  ok
}

ncases=0
for f in "$FIX"/cases/*@*.txtpb "$FIX"/cases/*@*.json "$FIX"/cases/*@*.hex "$FIX"/types/*.json; do
  [[ -f $f ]] || continue
  base=$(basename "$f")
  [[ $base == *.expect.json ]] && continue
  ncases=$((ncases + 1))
  if [[ $f == */types/* ]]; then
    t=${base%.json}
    name="types/$t"
  else
    name=${base%@*}
    t=${base#*@}
    t=${t%.*}
  fi
  case $f in
  *.txtpb) run_txt "$f" "$t" "$name" ;;
  *.json) run_json "$f" "$t" "$name" ;;
  *.hex) run_hex "$f" "$t" "$name" ;;
  esac
done

# Every schema type has had at least one passing case.
missing=$(comm -23 <(schema_types | sort -u) <(sort -u "$covered"))
if [[ -n $missing ]]; then
  bad "types without a passing case (add one, or run: $0 BUILD SRC --regen): $(echo $missing)"
else
  ok
fi
echo "$ncases cases over $(sort -u "$covered" | wc -l | tr -d ' ') message types"
summary && ((ncases >= 30))
