#!/usr/bin/env bash
# Install what warp2api needs to build, run and test, from Debian bookworm's packages.
# Idempotent: installs only what is missing. Needs root (or sudo) when something is.
set -euo pipefail
# libcurl: the GnuTLS build (libcurl4-gnutls-dev, as Debian's git uses), not the OpenSSL
# one: Debian links GnuTLS into libcurl either way (through librtmp and libldap), so the
# OpenSSL build loads and initialises two TLS libraries; idle RSS 12.8 -> 10.8 MiB
# (BENCHMARKS.md). apt replaces libcurl4-openssl-dev if it is installed (they conflict).
pkgs=(build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev
      libuv1-dev libcurl4-gnutls-dev libprotobuf-c-dev protobuf-c-compiler
      protobuf-compiler libprotobuf-dev libjson-c-dev libsqlite3-dev sqlite3
      libhttp-parser-dev libssl-dev openssl curl jq nghttp2-proxy nghttp2-client
      nginx-light wrk nodejs npm procps psmisc)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# node/npm may come from outside apt on some images; accept a working one.
if command -v node >/dev/null && command -v npm >/dev/null; then
  missing=("${missing[@]/nodejs}"); missing=("${missing[@]/npm}")
fi
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | grep -v '^$' || true)
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
