#!/usr/bin/env bash
# rss_floor.sh - build and run bench/rss_floor.c (the libraries' own resident memory after
# warp2api's first steps with them) three times. See BENCHMARKS.md "## gateway".
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
T=$(mktemp -d /tmp/w2a-rssfloor.XXXXXX)
trap 'rm -rf "$T"' EXIT
# shellcheck disable=SC2046
cc -O2 -std=c11 -D_GNU_SOURCE -o "$T/rss_floor" "$SRC/bench/rss_floor.c" \
  $(pkg-config --cflags --libs libcurl sqlite3 libuv json-c libprotobuf-c) -lhttp_parser \
  -lcrypto -ldl
for _ in 1 2 3; do
  rm -f "$T/floor.db"*
  "$T/rss_floor" "$T/floor.db"
done
