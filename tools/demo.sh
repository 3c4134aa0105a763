#!/usr/bin/env bash
# The main demo: builds uvq (installing what is missing) and runs a
# loopback transfer through the extended UDP handle, printing what the
# datapath did.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

bash tools/setup.sh
cmake -S . -B build/demo -DCMAKE_BUILD_TYPE=Release -DUVQ_BUILD_TESTS=OFF \
  -DUVQ_BUILD_BENCH=OFF >/dev/null
cmake --build build/demo -j"$(nproc 2>/dev/null || echo 2)" >/dev/null
./build/demo/uvq-udp-demo "${1:-1000000}"
