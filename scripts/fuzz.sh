#!/usr/bin/env bash
# Run every libFuzzer target in BUILD_DIR for SECONDS each, starting from its seed
# corpus in fuzz/corpus/<target>/ (copied, so the repo stays clean), with
# fuzz/<target>.dict as its dictionary when there is one. Fails on the first
# crash, leak or sanitizer report; the reproducer is left in the work directory.
set -euo pipefail
build=$(cd "${1:?usage: fuzz.sh BUILD_DIR SECONDS}" && pwd)
secs=${2:-60}
src=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
shopt -s nullglob
targets=("$build"/fuzz_*)
if ((${#targets[@]} == 0)); then
  echo "fuzz: no fuzz targets in $build" >&2
  exit 1
fi
pass=0 fail=0
for t in "${targets[@]}"; do
  [ -x "$t" ] || continue
  name=$(basename "$t")
  mkdir -p "$work/$name"
  [ -d "$src/fuzz/corpus/$name" ] && cp -r "$src/fuzz/corpus/$name/." "$work/$name/"
  echo "fuzz: $name for ${secs}s" >&2
  dict=()
  [ -f "$src/fuzz/$name.dict" ] && dict=(-dict="$src/fuzz/$name.dict")
  if (cd "$work" && ASAN_OPTIONS=detect_leaks=1 "$t" -max_total_time="$secs" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 "${dict[@]}" "$work/$name" >"$work/$name.log" 2>&1); then
    pass=$((pass + 1))
    grep -E "stat::number_of_executed_units" "$work/$name.log" | sed "s/^/fuzz: $name /" >&2 || true
  else
    fail=$((fail + 1))
    echo "fuzz: $name FAILED" >&2
    tail -60 "$work/$name.log" >&2
    mkdir -p "$src/build-fuzz-crashes"
    cp "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$src/build-fuzz-crashes/" 2>/dev/null || true
  fi
done
echo "fuzz: $pass passed, $fail failed"
[ "$fail" = 0 ]
