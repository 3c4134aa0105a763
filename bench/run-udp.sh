#!/bin/bash
# Runs the UDP datapath benchmark matrix (issue #3): builds the bench-udp-*
# programs with CMake (Release), makes sure gnuplot is there for the chart,
# and runs bench/udp-matrix.py, which writes bench/results/udp.{json,md,png}
# and udp-runs.jsonl. Arguments are passed to udp-matrix.py, e.g.
#   bench/run-udp.sh --reps 3 --duration-ms 1000 --sizes 1200
# Environment: UVQ_BENCH_BUILD (build directory, default build-bench).
#
# Receive buffers are raised with SO_RCVBUFFORCE (root), so net.core.rmem_max
# is left alone. Run it on an otherwise idle machine: the two processes are
# pinned to CPU 0 and CPU 1 and anything else running skews the numbers.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
build=${UVQ_BENCH_BUILD:-$root/build-bench}

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DUVQ_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target bench-udp-raw bench-udp-libuv
# uvq itself may not build while it is being changed; the raw and libuv
# columns are still worth having then.
if ! cmake --build "$build" -j"$(nproc)" --target bench-udp-uvq bench-udp-txtime; then
  echo "warning: uvq benchmarks did not build; running raw and libuv only" >&2
  rm -f "$build/bench/bench-udp-uvq" "$build/bench/bench-udp-txtime"
fi

if ! command -v gnuplot >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q gnuplot-nox >/dev/null ||
      echo "warning: could not install gnuplot-nox; no chart" >&2
  else
    echo "warning: gnuplot missing and not root; no chart" >&2
  fi
fi

# Debian's interpreter: the orchestration needs only the standard library.
py=/usr/bin/python3
[ -x "$py" ] || py=python3
exec "$py" "$here/udp-matrix.py" --build-dir "$build/bench" --out-dir "$here/results" "$@"
