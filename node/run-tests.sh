#!/bin/sh
# Builds the addon and runs the node:test suite. Exits 0 only when the build
# succeeds and every test passes; prints node's summary (# pass / # fail).
#
# --asan: the same tests against build-asan/uvq.node, built with
# AddressSanitizer and UBSan. node is not instrumented, so the ASan runtime
# the addon links is preloaded into it (and into the processes the tests
# spawn). Leak detection is off: node does not free everything at exit, and
# the backpressure tests' ip and tc, which inherit the preload, leak too.
set -u
here=$(cd "$(dirname "$0")" && pwd)
cd "$here" || exit 1
mode=${1:-}
case $mode in
  "") build=build; log=build.log ;;
  --asan) build=build-asan; log=build-asan.log ;;
  *) echo "usage: run-tests.sh [--asan]" >&2; exit 2 ;;
esac
if ! UVQ_NODE_SANITIZE=$([ "$mode" = --asan ] && echo 1 || echo 0) \
     sh ./build.sh >"$log" 2>&1; then
  cat "$log" >&2
  echo "run-tests.sh: build failed" >&2
  exit 1
fi
if [ "$mode" = --asan ]; then
  # The runtime the addon was linked against (gcc: libasan.so.N). clang
  # leaves it out of shared objects; ask the compiler of the build then.
  runtime=$(ldd "$build/uvq.node" | sed -n 's/^[[:space:]]*libasan\.so[.0-9]* => \([^ ]*\) .*/\1/p')
  if [ -z "$runtime" ]; then
    cc=$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$build/CMakeCache.txt")
    runtime=$("${cc:-cc}" -print-file-name="libclang_rt.asan-$(uname -m).so")
  fi
  if [ ! -f "$runtime" ]; then
    echo "run-tests.sh: cannot find the ASan runtime of $build/uvq.node" >&2
    exit 1
  fi
  export LD_PRELOAD="$runtime"
  export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1"
  export UBSAN_OPTIONS="print_stacktrace=1"
  export UVQ_NODE_BINDING="$here/$build/uvq.node"
fi
node --expose-gc --test --test-reporter=tap test/*.test.js
