#!/usr/bin/env bash
# fakewarp over HTTPS and HTTP/2, as the real Warp serves: a test CA and a certificate
# for 127.0.0.1 are made with openssl, fakewarp runs with --tls-cert/--tls-key (nghttpx
# terminates TLS in front of it), and curl talks HTTP/2 (and HTTP/1.1) over TLS to the
# token route, GraphQL and the event stream; events must arrive as they are produced
# (no buffering), a client that hangs up over HTTP/2 must be noticed as abandoned, and
# the nghttpx child must be gone after fakewarp stops.
# Usage: fakewarp_tls.sh <build-dir> <source-dir>
set -euo pipefail
BUILD=${1:?usage: $0 <build-dir> <source-dir>}
SRC=${2:?usage: $0 <build-dir> <source-dir>}
source "$SRC/tests/fixtures/fakewarp/lib.bash"
command -v nghttpx >/dev/null || [[ -x /usr/sbin/nghttpx ]] || { echo "FAIL: nghttpx not installed" >&2; exit 1; }

# ---- a CA and a server certificate, made now -------------------------------------------
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=fakewarp test CA" \
  -keyout "$TMP/ca.key" -out "$TMP/ca.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
  -keyout "$TMP/srv.key" -out "$TMP/srv.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$TMP/ext.cnf"
openssl x509 -req -in "$TMP/srv.csr" -CA "$TMP/ca.pem" -CAkey "$TMP/ca.key" -CAcreateserial \
  -days 2 -extfile "$TMP/ext.cnf" -out "$TMP/srv.pem" 2>/dev/null
ok "test CA and certificate made with openssl"

start_fw --tls-cert "$TMP/srv.pem" --tls-key "$TMP/srv.key" --http-port-file "$TMP/http_port" \
  --account t@example.test:rt-t:100
HTTPS="https://127.0.0.1:$PORT"
BASE="http://127.0.0.1:$(cat "$TMP/http_port")" # control routes over the plain port
C=(curl -sS --cacert "$TMP/ca.pem")

# ---- token route over HTTP/2 ---------------------------------------------------------------
out=$("${C[@]}" --http2 -o "$TMP/tok.json" -w '%{http_code} %{http_version}' -XPOST \
  "$HTTPS/proxy/token?key=k" -d 'grant_type=refresh_token&refresh_token=rt-t')
eq "POST /proxy/token over TLS negotiates HTTP/2" "200 2" "$out"
TOK=$(jq -r .id_token "$TMP/tok.json")
eq "HTTP/1.1 over TLS works too" "200 1.1" \
  "$("${C[@]}" --http1.1 -o /dev/null -w '%{http_code} %{http_version}' -XPOST "$HTTPS/v1/token?key=k" -d 'grant_type=refresh_token&refresh_token=rt-t')"
rc=0
curl -sS -o /dev/null --http2 -XPOST "$HTTPS/proxy/token?key=k" -d x 2>/dev/null || rc=$?
eq "the certificate is really checked (no CA: curl 60)" 60 "$rc"
eq "GraphQL over HTTP/2" "2 100" \
  "$("${C[@]}" --http2 -o "$TMP/g.json" -w '%{http_version}' -XPOST "$HTTPS/graphql/v2?op=GetRequestLimitInfo" -H "authorization: Bearer $TOK" -d '{}') $(jq .data.user.user.requestLimitInfo.requestLimit "$TMP/g.json")"

# ---- the event stream over HTTP/2 ------------------------------------------------------------
query_req "$TMP/q.bin" "hello over h2"
out=$("${C[@]}" --http2 -o "$TMP/h2.sse" -D "$TMP/h2.hdr" -w '%{http_code} %{http_version}' -XPOST \
  "$HTTPS/ai/multi-agent" -H "authorization: Bearer $TOK" -H 'content-type: application/x-protobuf' \
  --data-binary @"$TMP/q.bin")
eq "POST /ai/multi-agent over HTTP/2: 200" "200 2" "$out"
check "HTTP/2 response has content-type text/event-stream;charset=utf-8" \
  grep -qi '^content-type: text/event-stream;charset=utf-8' "$TMP/h2.hdr"
eq "HTTP/2 stream decodes (protoc) to the exact text" "You said: hello over h2" "$(sse text "$TMP/h2.sse")"
eq "HTTP/2 stream ends with finished{done}, no [DONE]" "done 0" \
  "$(sse events "$TMP/h2.sse" | jq -r 'select(.kind=="finished")|.reason') $(grep -c DONE "$TMP/h2.sse" || true)"
sse skeleton "$TMP/h2.sse" >/dev/null && ok "every HTTP/2 event decodes as a ResponseEvent"

# events are forwarded as produced: stall 3 s after the first answer event and read 1 s
query_req "$TMP/st.bin" "[[fw:stall between_ms=3000]] partial"
"${C[@]}" --http2 -N --max-time 1 -o "$TMP/st.sse" -XPOST "$HTTPS/ai/multi-agent" \
  -H "authorization: Bearer $TOK" --data-binary @"$TMP/st.bin" 2>/dev/null || true
gone=$(date +%s%3N)
eq "HTTP/2: events before a stall arrive at once (not buffered)" "7 0" \
  "$(grep -c '^data:' "$TMP/st.sse" || true) $(sse events "$TMP/st.sse" | jq -r 'select(.kind=="finished")' | wc -l | tr -d ' ')"
sleep 0.4
ctl /stats >"$TMP/s.json"
eq "HTTP/2 client hang-up reaches fakewarp through nghttpx: abandoned, none open" "1 0" \
  "$(jq -r '[.abandoned, .streams_open]|join(" ")' "$TMP/s.json")"
lat=$(( $(jq '.abandoned_streams[-1].noticed_ms' "$TMP/s.json") - gone ))
check "the hang-up was noticed within 500 ms (${lat} ms)" test "$lat" -lt 500

# several streams multiplexed on one HTTP/2 connection
urls=()
for i in 1 2 3 4 5; do urls+=(-o "$TMP/m$i.sse" "$HTTPS/ai/multi-agent"); done
"${C[@]}" --http2 --parallel --parallel-immediate -XPOST -H "authorization: Bearer $TOK" \
  --data-binary @"$TMP/q.bin" "${urls[@]}" 2>"$TMP/par.err" || cat "$TMP/par.err" >&2
all=$(for i in 1 2 3 4 5; do sse text "$TMP/m$i.sse"; echo; done | sort -u)
eq "5 parallel streams on HTTP/2 all complete" "You said: hello over h2" "$all"

NGPID=$(pgrep -f -- "--frontend=127.0.0.1,$PORT" || true)
check "nghttpx runs as fakewarp's child" test -n "$NGPID"
stop_fw
sleep 0.2
check "nghttpx is gone after fakewarp stopped" bash -c "! kill -0 $NGPID 2>/dev/null"
summary
