#!/bin/sh
# Builds build/uvq.node with CMake against the headers of the node that runs
# this script. Never downloads anything. With UVQ_NODE_SANITIZE=1 it builds
# build-asan/uvq.node with AddressSanitizer and UBSan instead.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
node_bin=${NODE:-node}
prefix=$("$node_bin" -p 'process.config.variables.node_prefix')
inc=${NODE_INCLUDE_DIR:-}
if [ -z "$inc" ]; then
  for d in "$prefix/include/node" /usr/include/node /usr/local/include/node; do
    if [ -f "$d/node_api.h" ] && [ -f "$d/uv.h" ]; then inc=$d; break; fi
  done
fi
if [ -z "$inc" ]; then
  echo "build.sh: cannot find Node's headers (node_api.h, uv.h); set NODE_INCLUDE_DIR" >&2
  exit 1
fi
dir=$here/build
sanitize=OFF
if [ "${UVQ_NODE_SANITIZE:-0}" = 1 ]; then
  dir=$here/build-asan
  sanitize=ON
fi
cmake -S "$here" -B "$dir" -DNODE_INCLUDE_DIR="$inc" -DUVQ_NODE_SANITIZE=$sanitize >/dev/null
cmake --build "$dir" -j "${JOBS:-2}"
