#!/usr/bin/env bash
# Builds uvq and runs the whole test suite in four configurations: the
# normal Linux datapath, the forced portable POSIX datapath, the Linux
# datapath under AddressSanitizer + UndefinedBehaviorSanitizer, and the
# Windows datapath cross-built with MinGW-w64 and run under Wine; then the
# Node addon's tests, as built and under ASan + UBSan. Installs what is
# missing first (tools/setup.sh, tools/deps-win.sh). Build trees are kept
# under build/ so a second run only rebuilds what changed.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

bash tools/setup.sh || exit 1
# The QUIC layer's dependencies: Debian's ngtcp2/nghttp3 from backports,
# and wolfSSL with QUIC plus ngtcp2's wolfSSL helper built from Debian
# sources once, cached under /var/cache/uvq.
deps=$(bash tools/deps-quic.sh) || { echo "tools/deps-quic.sh failed" >&2; exit 1; }
export PKG_CONFIG_PATH="$deps/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"

jobs=$(nproc 2>/dev/null || echo 2)
total_pass=0
total_fail=0
total_skip=0
summary=()
status=0

run_config() {
  local name=$1
  shift
  local dir="build/test-$name"
  local log="$dir/ctest.log"

  echo "=== $name: configure and build"
  if ! cmake -S . -B "$dir" -DUVQ_WERROR=ON -DUVQ_DEPS_PREFIX="$deps" "$@" >/dev/null ||
     ! cmake --build "$dir" -j"$jobs" >"$dir.build.log" 2>&1; then
    tail -n 40 "$dir.build.log" 2>/dev/null
    echo "=== $name: BUILD FAILED"
    summary+=("$name: build failed")
    status=1
    return
  fi

  echo "=== $name: ctest"
  ctest --test-dir "$dir" --output-on-failure -j"$jobs" --timeout 120 2>&1 | tee "$log"
  local line pass fail run skip
  line=$(grep -E '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -n 1)
  if [ -z "$line" ]; then
    summary+=("$name: no tests ran")
    status=1
    return
  fi
  fail=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
  run=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\2/' <<<"$line")
  skip=$(grep -cE '\*\*\*Skipped|Not Run' "$log" || true)
  pass=$((run - fail - skip))
  total_pass=$((total_pass + pass))
  total_fail=$((total_fail + fail))
  total_skip=$((total_skip + skip))
  summary+=("$name: $pass passed, $fail failed, $skip skipped")
  [ "$fail" -eq 0 ] || status=1
}

run_config linux -DCMAKE_BUILD_TYPE=RelWithDebInfo
run_config portable -DCMAKE_BUILD_TYPE=RelWithDebInfo -DUVQ_PORTABLE=ON
CC=clang run_config sanitize -DCMAKE_BUILD_TYPE=Debug -DUVQ_SANITIZE=ON

# Windows: the UDP datapath and its tests cross-built with MinGW-w64 and
# run under Wine 8 (ctest runs them through tools/wine-run.sh, the
# CMAKE_CROSSCOMPILING_EMULATOR). tools/deps-win.sh installs the cross
# compiler and Wine when missing and caches a cross-built libuv, and
# cross-builds the QUIC layer's dependencies (checked under Wine each run).
# The QUIC layer itself is not built for Windows yet: the summary says why.
if winprefix=$(bash tools/deps-win.sh); then
  export UVQ_WIN_PREFIX=$winprefix
  run_config windows -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_TOOLCHAIN_FILE="$top/cmake/mingw-w64-x86_64.cmake" \
    -DCMAKE_PREFIX_PATH="$winprefix" -DUVQ_QUIC=OFF -DUVQ_BUILD_BENCH=OFF
  quic_deps=$(cat "$winprefix/share/uvq-win/quic" 2>/dev/null || echo "no: tools/deps-win.sh left no note")
  if [ "$quic_deps" = yes ]; then
    summary+=("windows: QUIC layer not built: quic/ is not ported to Windows yet (its dependencies are cross-built)")
  else
    summary+=("windows: QUIC layer not built: ${quic_deps#no: }")
  fi
else
  echo "=== windows: tools/deps-win.sh failed"
  summary+=("windows: tools/deps-win.sh failed")
  status=1
fi

# The Node.js addon: uvq's UDP handle on Node's own event loop; then the
# same tests against the addon built with ASan + UBSan (node/run-tests.sh
# --asan preloads the ASan runtime into node).
run_node() {
  local name=$1
  shift
  echo "=== $name: build the addon and run its tests"
  local node_log=build/$name-tests.log
  mkdir -p build
  if sh node/run-tests.sh "$@" 2>&1 | tee "$node_log"; then :; fi
  local npass nfail nskip
  npass=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$node_log" | tail -n 1)
  nfail=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$node_log" | tail -n 1)
  nskip=$(sed -n 's/^# skipped \([0-9]*\)$/\1/p' "$node_log" | tail -n 1)
  if [ -z "$npass" ] || [ -z "$nfail" ]; then
    summary+=("$name: the addon did not build or its tests did not run")
    status=1
    return
  fi
  nskip=${nskip:-0}
  total_pass=$((total_pass + npass))
  total_fail=$((total_fail + nfail))
  total_skip=$((total_skip + nskip))
  summary+=("$name: $npass passed, $nfail failed, $nskip skipped")
  [ "$nfail" -eq 0 ] || status=1
}

run_node node
run_node node-asan --asan

echo
echo "=== uvq test summary"
for s in "${summary[@]}"; do
  echo "  $s"
done
echo "total: $total_pass passed, $total_fail failed, $total_skip skipped"
exit $status
