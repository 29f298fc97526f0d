#!/usr/bin/env bash
# The HTTP client speaks HTTP/2 over TLS: Debian's nghttpx terminates TLS + h2 in front
# of test_http_h2's own server, and test_http_h2's client must report version "2" for
# four concurrent calls while trusting only a throw-away self-signed certificate
# (ca_file, as WARP_CA_FILE would set it); without that CA the handshake must fail.
# Usage: http_h2.sh <build-dir> <source-dir>
set -euo pipefail

BUILD=${1:?usage: $0 <build-dir> <source-dir>}
BIN="$BUILD/test_http_h2"
[[ -x "$BIN" ]] || { echo "FAIL: $BIN not built" >&2; exit 1; }
for t in nghttpx openssl; do
  command -v "$t" >/dev/null || { echo "SKIP: $t not installed"; exit 0; }
done

TMP=$(mktemp -d)
NGPID=
cleanup() {
  [[ -n "$NGPID" ]] && kill "$NGPID" 2>/dev/null && wait "$NGPID" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

free_port() {
  local p
  for _ in $(seq 1 100); do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
  echo "no free port" >&2
  exit 1
}

openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=localhost -days 1 \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -keyout "$TMP/key.pem" -out "$TMP/cert.pem" 2>/dev/null

# Ports are picked free but bound later, so under load another process may take one in
# between: a failed start (nghttpx's or the backend's) is retried on fresh ports (at most
# three times).
attempt() {
  FRONT=$(free_port)
  BACK=$(free_port)
  while [[ "$BACK" == "$FRONT" ]]; do BACK=$(free_port); done
  nghttpx --conf=/dev/null -f"127.0.0.1,$FRONT" -b"127.0.0.1,$BACK" --no-ocsp --workers=1 \
    --errorlog-file="$TMP/nghttpx.log" --accesslog-file="$TMP/access.log" \
    "$TMP/key.pem" "$TMP/cert.pem" &
  NGPID=$!
  local up=0
  for _ in $(seq 1 100); do
    kill -0 "$NGPID" 2>/dev/null || break # nghttpx gave up (its port was taken)
    (exec 3<>"/dev/tcp/127.0.0.1/$FRONT") 2>/dev/null && up=1 && break
    sleep 0.05
  done
  if ((up == 0)); then
    echo "nghttpx did not come up on port $FRONT" >"$TMP/out"
    kill "$NGPID" 2>/dev/null || true
    wait "$NGPID" 2>/dev/null || true
    return 99
  fi
  W2A_H2_URL="https://localhost:$FRONT" W2A_H2_BACKEND_PORT="$BACK" W2A_H2_CA="$TMP/cert.pem" \
    "$BIN" >"$TMP/out" 2>&1
  local rc=$?
  kill "$NGPID" 2>/dev/null || true
  wait "$NGPID" 2>/dev/null || true
  return $rc
}

for try in 1 2 3; do
  rc=0
  attempt || rc=$?
  if ((rc == 0)); then
    cat "$TMP/out"
    echo "ok   - HTTP/2 over TLS through nghttpx with a private CA"
    exit 0
  fi
  # A port race (nghttpx's port or the backend's taken) is retried; anything else is real.
  ((rc == 99)) || grep -q "^listen: " "$TMP/out" || break
  echo "port taken on try $try; retrying on fresh ports" >&2
done
cat "$TMP/out" >&2
echo "FAIL - see above; nghttpx log:" >&2
cat "$TMP/nghttpx.log" >&2 || true
exit 1
