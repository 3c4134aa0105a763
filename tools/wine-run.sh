#!/bin/sh
# Runs a cross-built Windows program under Wine, headless, in the private
# Wine prefix that tools/deps-win.sh prepares; the exit code is the
# program's. CMake uses it as CMAKE_CROSSCOMPILING_EMULATOR, so ctest runs
# the Windows tests with it.
#
#   tools/wine-run.sh build/test-windows/test/uvq-tests.exe udp_pktinfo_ipv4
#
# Environment: UVQ_WIN_PREFIX (default /var/cache/uvq/win), WINEDEBUG.
prefix=${UVQ_WIN_PREFIX:-/var/cache/uvq/win}
wine=/usr/lib/wine/wine64
[ -x "$wine" ] || { echo "wine-run: $wine not found (run tools/deps-win.sh)" >&2; exit 127; }
[ -f "$prefix/wine/system.reg" ] ||
  { echo "wine-run: no Wine prefix in $prefix/wine (run tools/deps-win.sh)" >&2; exit 127; }
WINEPREFIX=$prefix/wine
WINEDEBUG=${WINEDEBUG:--all}
# No display, and no Mono or Gecko prompts: console programs need neither.
DISPLAY=
WINEDLLOVERRIDES="mscoree,mshtml="
WINEPATH="$prefix/bin"
export WINEPREFIX WINEDEBUG DISPLAY WINEDLLOVERRIDES WINEPATH
exec "$wine" "$@"
