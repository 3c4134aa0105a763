#!/usr/bin/env bash
# tools/deps-win.sh -- provide what the `windows` test configuration needs,
# from Debian only:
#
#   * gcc-mingw-w64-x86-64 (the MinGW-w64 cross compiler) and wine64
#     (Wine 8.0), binary packages installed into /usr when missing;
#   * libuv, cross-built for x86_64 Windows from Debian's own libuv1 source
#     package (the version of the installed libuv1-dev) with CMake and
#     cmake/mingw-w64-x86_64.cmake, installed into a cached prefix
#     (default /var/cache/uvq/win);
#   * a private Wine prefix under it (<prefix>/wine), created headless.
#
# Idempotent: a stamp records what was built; a run that finds a matching
# stamp only re-runs a small check (a libuv UDP round trip over loopback
# under Wine, a few seconds). Progress goes to stderr; stdout gets exactly
# one line, the prefix:
#
#   winprefix=$(sudo tools/deps-win.sh)
#
# The Debian source indexes come from the private apt configuration that
# tools/deps-quic.sh maintains (it is run first when that is missing).
#
# Environment:
#   UVQ_WIN_PREFIX   install prefix                    (default /var/cache/uvq/win)
#   UVQ_DEPS_CACHE   private apt state, sources, logs  (default /var/cache/uvq)
#   UVQ_DEPS_JOBS    parallel make jobs                (default 2)
#   UVQ_DEPS_FORCE=1 ignore the stamp and rebuild
set -Eeuo pipefail
umask 022

top=$(cd "$(dirname "$0")/.." && pwd)
PREFIX=${UVQ_WIN_PREFIX:-/var/cache/uvq/win}
CACHE=${UVQ_DEPS_CACHE:-/var/cache/uvq}
JOBS=${UVQ_DEPS_JOBS:-2}
FORCE=${UVQ_DEPS_FORCE:-0}
PREFIX=${PREFIX%/}
CACHE=${CACHE%/}

# Bump when the way libuv is built changes.
RECIPE_REV=1
TRIPLE=x86_64-w64-mingw32
WINE=/usr/lib/wine/wine64
TOOLCHAIN=$top/cmake/mingw-w64-x86_64.cmake
# Command or file -> Debian package.
NEEDS=("$TRIPLE-gcc-win32:gcc-mingw-w64-x86-64" "$WINE:wine64" "cmake:cmake"
       "dpkg-source:dpkg-dev" "patch:patch" "flock:util-linux")

APTDIR=$CACHE/apt
SRCROOT=$CACHE/src
BUILDROOT=$CACHE/build-win
LOG=$CACHE/log/deps-win.log
STAMP=$PREFIX/share/uvq-win/stamp
TMP=""
STEP="starting"

unset CFLAGS CPPFLAGS LDFLAGS LIBS PKG_CONFIG_LIBDIR PKG_CONFIG_SYSROOT_DIR
export LC_ALL=C DEBIAN_FRONTEND=noninteractive

log() { printf 'deps-win: %s\n' "$*" >&2; }
die() {
    log "ERROR: $*"
    if [ "${LOG_ACTIVE:-0}" = 1 ] && [ -s "$LOG" ]; then
        tail -n 30 "$LOG" | sed 's/^/  | /' >&2
        log "full log: $LOG"
    fi
    log "FAILED during: $STEP"
    exit 1
}
cleanup() { [ -n "$TMP" ] && rm -rf "$TMP"; return 0; }
trap cleanup EXIT
trap 'die "unexpected failure (line $LINENO: $BASH_COMMAND)"' ERR
run() {
    local what=$1; shift
    printf '\n### %s\n$ %s\n' "$what" "$*" >>"$LOG"
    "$@" >>"$LOG" 2>&1 || die "$what failed (exit $?)"
}
step() { STEP=$*; log "$*"; }

pkg_version() {
    local st
    st=$(dpkg-query -W -f='${db:Status-Abbrev}|${Version}' "$1" 2>/dev/null) || { echo none; return; }
    case $st in ii*) echo "${st#*|}" ;; *) echo none ;; esac
}

recipe_hash() { { echo "$RECIPE_REV"; cat "$TOOLCHAIN"; } | sha256sum | cut -c1-16; }

stamp_key() {
    echo "recipe=$(recipe_hash)"
    echo "prefix=$PREFIX"
    echo "gcc-mingw-w64-x86-64=$(pkg_version gcc-mingw-w64-x86-64)"
    echo "wine64=$(pkg_version wine64)"
    echo "libuv1-source=$(dpkg-query -W -f='${source:Version}' libuv1-dev 2>/dev/null || echo none)"
}

stamp_matches() {
    [ -f "$STAMP" ] || return 1
    local line
    while IFS= read -r line; do
        case $line in *=none) return 1 ;; esac
        grep -Fxq -- "$line" "$STAMP" || return 1
    done < <(stamp_key)
}

# Runs a Windows program under the cached Wine prefix, headless.
wine_run() {
    WINEPREFIX=$PREFIX/wine WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml=" \
        DISPLAY="" WINEPATH="$PREFIX/bin" "$WINE" "$@"
}

# A libuv UDP round trip over loopback, built with the cross compiler and
# run under Wine: proves the compiler, the library and Wine's Winsock.
verify() {
    [ -n "$TMP" ] || TMP=$(mktemp -d "${TMPDIR:-/tmp}/uvq-deps-win.XXXXXX")
    cat >"$TMP/check.c" <<'EOF'
#include <stdio.h>
#include <string.h>
#include <uv.h>

static int got;
static void on_alloc(uv_handle_t* h, size_t n, uv_buf_t* b) {
  static char slab[256];
  (void) h; (void) n;
  *b = uv_buf_init(slab, sizeof(slab));
}
static void on_recv(uv_udp_t* h, ssize_t n, const uv_buf_t* b,
                    const struct sockaddr* a, unsigned flags) {
  (void) flags;
  if (n == 4 && a != NULL && memcmp(b->base, "ping", 4) == 0) {
    got = 1;
    uv_close((uv_handle_t*) h, NULL);
  }
}
int main(void) {
  uv_loop_t* loop = uv_default_loop();
  struct sockaddr_storage ss;
  struct sockaddr_in a;
  uv_udp_t u;
  uv_buf_t b = uv_buf_init("ping", 4);
  int len = sizeof(ss);
  uv_ip4_addr("127.0.0.1", 0, &a);
  if (uv_udp_init(loop, &u) || uv_udp_bind(&u, (struct sockaddr*) &a, 0) ||
      uv_udp_getsockname(&u, (struct sockaddr*) &ss, &len) ||
      uv_udp_recv_start(&u, on_alloc, on_recv) ||
      uv_udp_try_send(&u, &b, 1, (struct sockaddr*) &ss) != 4)
    return 1;
  uv_run(loop, UV_RUN_DEFAULT);
  if (!got)
    return 2;
  printf("libuv %s under Wine: UDP loopback round trip OK\n", uv_version_string());
  return 0;
}
EOF
    "$TRIPLE-gcc-win32" -O1 -o "$TMP/check.exe" "$TMP/check.c" -I"$PREFIX/include" \
        -L"$PREFIX/lib" -luv_a -lws2_32 -liphlpapi -luserenv -lpsapi -luser32 \
        -ladvapi32 -ldbghelp -lole32 -luuid -lshell32 >"$TMP/cc.log" 2>&1 || {
        sed 's/^/  | /' "$TMP/cc.log" >&2; return 1; }
    local out
    out=$(timeout 120 bash -c "$(declare -f wine_run); PREFIX='$PREFIX' WINE='$WINE' wine_run '$TMP/check.exe'" 2>/dev/null) ||
        return 1
    log "check: ${out%$'\r'}"
}

fast_path() {
    [ "$FORCE" = 1 ] && return 1
    stamp_matches || return 1
    STEP="checking the cached install"
    verify || { log "cached install failed its check"; return 1; }
    log "up to date ($STAMP), ${SECONDS}s"
    echo "$PREFIX"
    exit 0
}

case $JOBS in ''|*[!0-9]*|0) die "UVQ_DEPS_JOBS must be a positive integer (got '$JOBS')" ;; esac
case $PREFIX in /?*) ;; *) die "UVQ_WIN_PREFIX must be an absolute path (got '$PREFIX')" ;; esac

if [ "$(id -u)" != 0 ]; then
    fast_path || true
    die "not installed yet (or out of date); run as root: $0"
fi

mkdir -p "$CACHE/log"
exec 9>>"$CACHE/.deps-win.lock"
if ! flock -n 9; then
    log "another deps-win.sh run holds $CACHE/.deps-win.lock; waiting"
    flock 9
fi
fast_path || true

[ -f "$LOG" ] && mv -f "$LOG" "$LOG.1"
: >"$LOG"
LOG_ACTIVE=1
log "building the Windows dependencies (log: $LOG)"

# --- binary packages ------------------------------------------------------
step "[1/5] installing the cross compiler and Wine when missing"
missing=()
for n in "${NEEDS[@]}"; do
    c=${n%%:*}
    if [ "${c#/}" != "$c" ]; then [ -x "$c" ] || missing+=("${n#*:}")
    else command -v "$c" >/dev/null || missing+=("${n#*:}"); fi
done
if [ ${#missing[@]} -gt 0 ]; then
    run "apt-get update" apt-get -o DPkg::Lock::Timeout=900 update -q
    run "install ${missing[*]}" apt-get -o DPkg::Lock::Timeout=900 install -y -q \
        --no-install-recommends "${missing[@]}"
fi
[ "$(pkg_version libuv1-dev)" != none ] || die "libuv1-dev is not installed (tools/setup.sh installs it)"

# --- libuv source ---------------------------------------------------------
step "[2/5] fetching Debian's libuv1 source package"
if [ ! -f "$APTDIR/uvq-debian.sources" ]; then
    log "  no private apt configuration yet: running tools/deps-quic.sh to make it"
    bash "$top/tools/deps-quic.sh" >/dev/null
fi
APT_OPTS=(-o "Dir::Etc::SourceList=$APTDIR/uvq-debian.sources"
          -o "Dir::Etc::SourceParts=$APTDIR/sources.list.d"
          -o "Dir::State::Lists=$APTDIR/lists"
          -o "Dir::Cache=$APTDIR/cache"
          -o "Acquire::Languages=none"
          -o "DPkg::Lock::Timeout=900")
UV_VER=$(dpkg-query -W -f='${source:Version}' libuv1-dev)
dl=$SRCROOT/libuv1_$UV_VER
mkdir -p "$dl"
chown _apt "$dl" 2>/dev/null || true
if ! compgen -G "$dl/libuv1_*.orig.tar.*" >/dev/null; then
    (cd "$dl" && apt-get "${APT_OPTS[@]}" -q -y source --download-only "libuv1=$UV_VER") >>"$LOG" 2>&1 ||
        log "  apt-get source did not fetch everything; using what arrived"
fi
rm -rf "$BUILDROOT"; mkdir -p "$BUILDROOT"
SRC=$BUILDROOT/libuv
dsc=$(compgen -G "$dl/libuv1_*.dsc" | head -n 1 || true)
if [ -n "$dsc" ] && dpkg-source -x "$dsc" "$SRC" >>"$LOG" 2>&1; then
    SRC_NOTE="libuv1 $UV_VER (Debian source package, Debian patches applied)"
else
    orig=$(compgen -G "$dl/libuv1_*.orig.tar.*" | grep -v '\.asc$' | head -n 1 || true)
    [ -n "$orig" ] || die "neither the .dsc nor the upstream tarball of libuv1 $UV_VER could be fetched"
    rm -rf "$SRC"; mkdir -p "$SRC"
    run "unpack $orig" tar -xf "$orig" -C "$SRC" --strip-components=1
    SRC_NOTE="libuv1 $UV_VER (upstream tarball only)"
    debtar=$(compgen -G "$dl/libuv1_*.debian.tar.*" | head -n 1 || true)
    if [ -n "$debtar" ]; then
        run "unpack $debtar" tar -xf "$debtar" -C "$SRC"
        if [ -f "$SRC/debian/patches/series" ]; then
            while read -r p lvl; do
                case $p in ''|'#'*) continue ;; esac
                run "apply debian/patches/$p" patch -d "$SRC" -N -s "${lvl:--p1}" -i "debian/patches/$p"
            done <"$SRC/debian/patches/series"
        fi
        SRC_NOTE="libuv1 $UV_VER (upstream tarball + Debian patches, no .dsc)"
    fi
fi
log "  $SRC_NOTE"

# --- build and install ----------------------------------------------------
step "[3/5] cross-building libuv for $TRIPLE (about a minute)"
run "libuv configure" cmake -S "$SRC" -B "$BUILDROOT/build" \
    -DCMAKE_TOOLCHAIN_FILE="$TOOLCHAIN" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_INSTALL_PREFIX="$PREFIX" -DLIBUV_BUILD_TESTS=OFF -DLIBUV_BUILD_BENCH=OFF \
    -DBUILD_TESTING=OFF
run "libuv build" cmake --build "$BUILDROOT/build" -j"$JOBS"
rm -f "$STAMP"
rm -rf "$PREFIX/include" "$PREFIX/lib" "$PREFIX/bin"
run "libuv install" cmake --install "$BUILDROOT/build"
[ -f "$PREFIX/lib/libuv_a.a" ] || die "libuv_a.a was not installed"

step "[4/5] preparing the Wine prefix $PREFIX/wine"
if [ ! -f "$PREFIX/wine/system.reg" ]; then
    mkdir -p "$PREFIX/wine"
    run "wineboot --init" env WINEPREFIX="$PREFIX/wine" WINEDEBUG=-all \
        WINEDLLOVERRIDES="mscoree,mshtml=" DISPLAY="" "$WINE" wineboot --init
    WINEPREFIX="$PREFIX/wine" /usr/lib/wine/wineserver -w >>"$LOG" 2>&1 || true
fi

step "[5/5] checking"
verify || die "the check program failed under Wine"
mkdir -p "$(dirname "$STAMP")"
{ stamp_key; echo "libuv=$SRC_NOTE"; echo "date=$(date -u '+%F %T UTC')"; } >"$STAMP.tmp"
mv -f "$STAMP.tmp" "$STAMP"
rm -rf "$BUILDROOT"
log "done in ${SECONDS}s"
echo "$PREFIX"
