#!/usr/bin/env bash
# The official `openai` npm client against warp2api against fakewarp (tests/e2e/*.test.js).
# Args: $1 build dir, $2 source dir. `make test` installs the client first (npm ci).
set -euo pipefail
build=$(cd "$1" && pwd)
src=$2
cd "$src/tests/e2e"
if [ ! -d node_modules/openai ]; then
  npm ci --no-audit --no-fund --silent
fi
W2A_BUILD="$build" node --test --test-concurrency=2 ./*.test.js
