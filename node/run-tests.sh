#!/bin/sh
# Builds the addon and runs the node:test suite. Exits 0 only when the build
# succeeds and every test passes; prints node's summary (# pass / # fail).
set -u
here=$(cd "$(dirname "$0")" && pwd)
cd "$here" || exit 1
if ! sh ./build.sh >build.log 2>&1; then
  cat build.log >&2
  echo "run-tests.sh: build failed" >&2
  exit 1
fi
node --expose-gc --test --test-reporter=tap test/*.test.js
