#!/usr/bin/env bash
# Builds uvq as a package and consumes it three ways, as other projects
# would: installed into a temporary prefix and found with pkg-config, and
# with find_package(uvq); and added with add_subdirectory() next to the
# parent's own libuv target. Every consumer program runs (a datagram over
# loopback, and a QUIC endpoint). TAP output.
#
#   test-package.sh SOURCE_DIR DEPS_PREFIX
set -uo pipefail
src=$1
deps=$2
tmp=$(mktemp -d /tmp/uvq-package.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
n=0
failed=0

ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() {
  n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"
  shift
  for l in "$@"; do echo "# $l" | head -c 4000; echo; done
}
# check NAME COMMAND LOG: runs COMMAND with its output in LOG.
check() {
  local name=$1 cmd=$2 log=$3
  if bash -c "$cmd" >"$log" 2>&1; then ok "$name"; else not_ok "$name" "$(tail -n 30 "$log")"; fi
}

echo "TAP version 13"
prefix=$tmp/prefix
cfg=(-DUVQ_DEPS_PREFIX="$deps" -DCMAKE_BUILD_TYPE=Release)

# 1. Shared libraries, installed. The top-level defaults build tests and
#    tools; a packager turns them off.
check "configure, build and install shared libraries" \
  "cmake -S '$src' -B '$tmp/build' ${cfg[*]} -DBUILD_SHARED_LIBS=ON \
     -DUVQ_BUILD_TESTS=OFF -DUVQ_BUILD_BENCH=OFF -DUVQ_BUILD_TOOLS=OFF \
     -DCMAKE_INSTALL_PREFIX='$prefix' -DCMAKE_INSTALL_LIBDIR=lib &&
   cmake --build '$tmp/build' -j2 && cmake --install '$tmp/build'" "$tmp/install.log"

missing=()
for f in include/uvq.h include/uvq/quic.h include/uvq/h3.h \
         lib/libuvq.so.1 lib/libuvq_quic.so.1 lib/libuvq.so lib/libuvq_quic.so \
         lib/pkgconfig/uvq.pc lib/pkgconfig/uvq-quic.pc \
         lib/cmake/uvq/uvqConfig.cmake lib/cmake/uvq/uvqConfigVersion.cmake \
         lib/cmake/uvq/uvqTargets.cmake share/doc/uvq/LICENSE; do
  [ -e "$prefix/$f" ] || missing+=("$f")
done
if [ ${#missing[@]} -eq 0 ]; then ok "installed files"; else not_ok "installed files" "missing: ${missing[*]}"; fi

# The soname carries the ABI number, and the QUIC library's names uvq's.
soname=$(readelf -d "$prefix/lib/libuvq.so" 2>/dev/null | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
qsoname=$(readelf -d "$prefix/lib/libuvq_quic.so" 2>/dev/null | sed -n 's/.*SONAME.*\[\(.*\)\]/\1/p')
needed=$(readelf -d "$prefix/lib/libuvq_quic.so" 2>/dev/null | sed -n 's/.*NEEDED.*\[\(libuvq\.so.*\)\]/\1/p')
if [ "$soname" = libuvq.so.1 ] && [ "$qsoname" = libuvq_quic.so.1 ] && [ "$needed" = libuvq.so.1 ]; then
  ok "sonames libuvq.so.1 and libuvq_quic.so.1"
else
  not_ok "sonames libuvq.so.1 and libuvq_quic.so.1" "uvq: '$soname' quic: '$qsoname' needs: '$needed'"
fi

# 2. pkg-config: cflags and libs from uvq-quic.pc (which requires uvq.pc
#    and, through it, libuv).
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig:$deps/lib/pkgconfig"
check "pkg-config consumer builds and runs" \
  "set -e
   cc -o '$tmp/pc-udp' '$src/test/package/consumer.c' \$(pkg-config --cflags --libs uvq) -Wl,-rpath,'$prefix/lib'
   cc -DUVQ_CONSUMER_QUIC -o '$tmp/pc-quic' '$src/test/package/consumer.c' \$(pkg-config --cflags --libs uvq-quic) -Wl,-rpath,'$prefix/lib'
   '$tmp/pc-udp' | grep -qx 'ok [0-9.]*'
   '$tmp/pc-quic' | grep -qx 'ok [0-9.]*'
   pkg-config --modversion uvq-quic | grep -qx '[0-9]*\.[0-9]*\.[0-9]*'" \
  "$tmp/pc.log"
unset PKG_CONFIG_PATH

# 3. find_package(uvq) from the same prefix.
check "find_package(uvq) consumer builds and runs" \
  "set -e
   cmake -S '$src/test/package/find-package' -B '$tmp/fp' -DCMAKE_PREFIX_PATH='$prefix' -DCMAKE_BUILD_RPATH='$prefix/lib'
   cmake --build '$tmp/fp' -j2
   '$tmp/fp/consumer-udp' | grep -qx 'ok [0-9.]*'
   '$tmp/fp/consumer-quic' | grep -qx 'ok [0-9.]*'" \
  "$tmp/fp.log"

# 4. add_subdirectory() beside the parent's own libuv target (static
#    libraries, the default).
check "add_subdirectory consumer with its own libuv target builds and runs" \
  "set -e
   cmake -S '$src/test/package/subdir' -B '$tmp/sub' -DUVQ_SOURCE_DIR='$src' -DUVQ_DEPS_PREFIX='$deps'
   cmake --build '$tmp/sub' -j2
   '$tmp/sub/consumer-udp' | grep -qx 'ok [0-9.]*'
   '$tmp/sub/consumer-quic' | grep -qx 'ok [0-9.]*'" \
  "$tmp/sub.log"

echo "1..$n"
[ "$failed" -eq 0 ]
