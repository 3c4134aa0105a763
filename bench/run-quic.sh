#!/bin/bash
# Runs the QUIC/HTTP3 benchmark (issue #5): builds uvq-h3-server,
# uvq-h3-client and the bench-quic-* helpers with CMake (Release), installs
# what is missing from Debian when it runs as root (iperf3, nginx-light,
# gnuplot-nox, ngtcp2's gtls examples), and runs bench/quic-matrix.py, which
# makes certificates and test files in the build directory, runs every case
# interleaved for --reps rounds (5), and writes bench/results/quic.{json,md,
# png} and quic-runs.jsonl. Arguments go to quic-matrix.py, e.g.
#   bench/run-quic.sh --reps 3 --cases bulk,rps
# Environment: UVQ_QBENCH_BUILD (build directory, default build-qbench),
# PKG_CONFIG_PATH (default /var/cache/uvq/deps/lib/pkgconfig, where
# tools/deps-quic.sh puts ngtcp2 and wolfSSL).
#
# Servers run on CPU 1, clients on CPU 0. Run it on an otherwise idle
# machine; the load average at start and end is in the report. A full run
# takes about 5 minutes.
#
# With "scale" as the first argument it runs bench/quic-scale.py instead
# (issue 13: 10,000 and 50,000 idle HTTP/3 connections with one request on
# each, a 3,000-client burst beside gtlsserver, normal fetches during an
# Initial flood) and writes bench/results/quic-scale.{json,md}; the rest of
# the arguments go to it, e.g.
#   bench/run-quic.sh scale --cases idle --idle-connections 50000
# 5 to 7 minutes; the 50,000 connections need about 5 GB of memory.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
build=${UVQ_QBENCH_BUILD:-$root/build-qbench}
export PKG_CONFIG_PATH=${PKG_CONFIG_PATH:-/var/cache/uvq/deps/lib/pkgconfig}

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DUVQ_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target uvq-h3-server uvq-h3-client \
  bench-quic-handshake bench-quic-idle bench-quic-burst bench-quic-flood

missing=()
command -v iperf3 >/dev/null || missing+=(iperf3)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
command -v gnuplot >/dev/null || missing+=(gnuplot-nox)
command -v gtlsclient >/dev/null || missing+=(ngtcp2-client)
command -v gtlsserver >/dev/null || [ -x /usr/sbin/gtlsserver ] || missing+=(ngtcp2-server)
command -v curl >/dev/null || missing+=(curl)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing ${missing[*]}" >&2
    # nginx's package would start a system-wide server; policy-rc.d (where
    # present) stops that, and the benchmark runs its own instance anyway.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      "${missing[@]}" >/dev/null || echo "warning: could not install ${missing[*]}" >&2
  else
    echo "warning: missing ${missing[*]} and not root; those rows are skipped" >&2
  fi
fi
# gtlsserver lives in /usr/sbin, which a non-root PATH may lack.
export PATH=$PATH:/usr/sbin

py=/usr/bin/python3
[ -x "$py" ] || py=python3
if [ "${1:-}" = scale ]; then
  shift
  exec "$py" "$here/quic-scale.py" --build-dir "$build" --out-dir "$here/results" "$@"
fi
exec "$py" "$here/quic-matrix.py" --build-dir "$build" --out-dir "$here/results" "$@"
