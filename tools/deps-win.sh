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
#   * the QUIC layer's dependencies, cross-built as static libraries from
#     the same Debian source packages the Linux set-up (tools/deps-quic.sh)
#     uses: wolfSSL with QUIC, libngtcp2 and ngtcp2's wolfSSL helper
#     (libngtcp2_crypto_wolfssl), and libnghttp3 when the mirror has the
#     source of the installed libnghttp3-dev (see docs/dependencies.md);
#     pkg-config files for them go to <prefix>/lib/pkgconfig;
#   * a private Wine prefix under it (<prefix>/wine), created headless.
#
# Idempotent: a stamp records what was built; a run that finds a matching
# stamp only re-runs small checks under Wine (a libuv UDP round trip over
# loopback; RFC 9001's initial secrets derived through ngtcp2's wolfSSL
# helper), a few seconds. <prefix>/share/uvq-win/quic says whether the
# QUIC set is complete ("yes") or why not. Progress goes to stderr; stdout
# gets exactly one line, the prefix:
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

# Bump when the way something is built changes; the recipe hash below also
# covers the flag lists, so editing them forces a rebuild.
RECIPE_REV=2
TRIPLE=x86_64-w64-mingw32
WINE=/usr/lib/wine/wine64
TOOLCHAIN=$top/cmake/mingw-w64-x86_64.cmake
# Command or file -> Debian package.
NEEDS=("$TRIPLE-gcc-win32:gcc-mingw-w64-x86-64" "$WINE:wine64" "cmake:cmake"
       "dpkg-source:dpkg-dev" "patch:patch" "flock:util-linux" "make:make"
       "autoreconf:autoconf" "automake:automake" "libtoolize:libtool"
       "pkg-config:pkgconf")

# wolfSSL: the Linux set-up's feature flags (tools/deps-quic.sh), less
#   --enable-shared: static libraries keep the Wine runs free of DLL paths;
#   --enable-aesni --enable-intelasm --enable-sp-asm: wolfSSL 5.5's x86_64
#     assembly (.S files) is written for ELF and the System V calling
#     convention and does not assemble for MinGW (".type" directives), so
#     the Windows build uses the C implementations;
#   sys-ca-certs (part of --enable-all): src/ssl.c includes <Wincrypt.h>,
#     which MinGW spells <wincrypt.h>; uvq never loads the system's CA store.
# -DWOLFSSL_GETRANDOM is Linux-only (Windows seeds from the OS's CSPRNG).
WOLFSSL_FLAGS=(--disable-shared --enable-static --enable-all --enable-harden
    --enable-quic --enable-tls13 --enable-session-ticket --enable-earlydata
    --enable-psk --enable-opensslextra --enable-alpn --enable-sni
    --enable-supportedcurves --enable-hkdf --enable-aesgcm --enable-aesctr
    --enable-aesccm --enable-chacha --enable-poly1305 --enable-curve25519
    --enable-keylog-export --disable-ech
    --disable-examples --disable-crypttests --disable-benchmark
    --disable-xts --enable-sp --disable-sys-ca-certs)
# ngtcp2 and nghttp3 are plain C with no configure-time knowledge beyond
# these: their CMake projects also enable C++, for which Debian's MinGW
# packages here have no compiler, so their lib/ sources are compiled
# directly, as tools/deps-quic.sh does for the helper.
NG_CFLAGS=(-O2 -g -Wall -DWIN32 -DNGTCP2_STATICLIB -DNGHTTP3_STATICLIB)
PATCHDIR=$top/tools/patches

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

recipe_hash() {
    { printf '%s\n' "$RECIPE_REV" "${WOLFSSL_FLAGS[@]}" "${NG_CFLAGS[@]}"
      cat "$TOOLCHAIN" "$PATCHDIR"/wolfssl-*.patch; } | sha256sum | cut -c1-16
}

stamp_key() {
    echo "recipe=$(recipe_hash)"
    echo "prefix=$PREFIX"
    echo "gcc-mingw-w64-x86-64=$(pkg_version gcc-mingw-w64-x86-64)"
    echo "wine64=$(pkg_version wine64)"
    echo "libuv1-source=$(dpkg-query -W -f='${source:Version}' libuv1-dev 2>/dev/null || echo none)"
    echo "ngtcp2-source=$(dpkg-query -W -f='${source:Version}' libngtcp2-dev 2>/dev/null || echo none)"
    echo "nghttp3-source=$(dpkg-query -W -f='${source:Version}' libnghttp3-dev 2>/dev/null || echo none)"
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
#include <stdint.h>
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
    [ -f "$PREFIX/lib/libngtcp2_crypto_wolfssl.a" ] || return 0
    verify_quic
}

# The QUIC set under Wine: RFC 9001 (appendix A.1)'s initial secrets derived
# through ngtcp2's wolfSSL helper, and a wolfSSL TLS 1.3 context that the
# helper turns into a QUIC one.
verify_quic() {
    cat >"$TMP/quic.c" <<'EOF'
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/quic.h>
#include <wolfssl/version.h>
#include <wolfssl/openssl/evp.h>
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <ngtcp2/ngtcp2_crypto_wolfssl.h>
#ifdef HAVE_NGHTTP3
#include <nghttp3/nghttp3.h>
#endif
#ifndef WOLFSSL_QUIC
#error "wolfSSL was built without QUIC"
#endif

static const char* hex(const uint8_t* p, size_t n) {
  static char s[129];
  size_t i;
  for (i = 0; i < n && i < 64; i++)
    sprintf(s + 2 * i, "%02x", p[i]);
  return s;
}

int main(void) {
  static const uint8_t salt[] = {
    0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17,
    0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad, 0xcc, 0xbb, 0x7f, 0x0a };
  static const uint8_t dcid[] = { 0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08 };
  /* HKDF-Expand-Label(secret, "client in", "", 32) */
  static const uint8_t info[] = { 0x00, 0x20, 0x0f, 't', 'l', 's', '1', '3', ' ',
    'c', 'l', 'i', 'e', 'n', 't', ' ', 'i', 'n', 0x00 };
  ngtcp2_crypto_md md;
  uint8_t initial[32], client[32];
  WOLFSSL_CTX* ctx;
  WOLFSSL* ssl;

  if (wolfSSL_Init() != WOLFSSL_SUCCESS)
    return 1;
  ngtcp2_crypto_md_init(&md, (void*) wolfSSL_EVP_sha256());
  if (ngtcp2_crypto_hkdf_extract(initial, &md, dcid, sizeof(dcid), salt, sizeof(salt)) != 0 ||
      strcmp(hex(initial, 32), "7db5df06e7a69e432496adedb00851923595221596ae2ae9fb8115c1e9ed0a44") != 0)
    return 2;
  if (ngtcp2_crypto_hkdf_expand(client, 32, &md, initial, 32, info, sizeof(info)) != 0 ||
      strcmp(hex(client, 32), "c00cf151ca5be075ed0ebfb5c80323c42d6b7db67881289af4008f1f6c357aea") != 0)
    return 3;
  ctx = wolfSSL_CTX_new(wolfTLSv1_3_client_method());
  if (ctx == NULL || ngtcp2_crypto_wolfssl_configure_client_context(ctx) != 0)
    return 4;
  ssl = wolfSSL_new(ctx);
  if (ssl == NULL || !wolfSSL_is_quic(ssl))
    return 5;
  wolfSSL_free(ssl);
  wolfSSL_CTX_free(ctx);
  printf("wolfSSL %s + ngtcp2 %s", LIBWOLFSSL_VERSION_STRING, ngtcp2_version(0)->version_str);
#ifdef HAVE_NGHTTP3
  printf(" + nghttp3 %s", nghttp3_version(0)->version_str);
#endif
  printf(" under Wine: RFC 9001 initial secrets and a QUIC TLS context OK\n");
  return 0;
}
EOF
    local flags out
    flags=$(PKG_CONFIG_LIBDIR=$PREFIX/lib/pkgconfig PKG_CONFIG_PATH='' pkg-config --static --cflags --libs \
        libngtcp2_crypto_wolfssl libngtcp2 wolfssl 2>"$TMP/pc.err") || { sed 's/^/  | /' "$TMP/pc.err" >&2; return 1; }
    if [ -f "$PREFIX/lib/pkgconfig/libnghttp3.pc" ]; then
        flags="-DHAVE_NGHTTP3 $flags $(PKG_CONFIG_LIBDIR=$PREFIX/lib/pkgconfig PKG_CONFIG_PATH='' pkg-config --static --cflags --libs libnghttp3)"
    fi
    # shellcheck disable=SC2086  # pkg-config output is a list of words
    "$TRIPLE-gcc-win32" -O1 -o "$TMP/quic.exe" "$TMP/quic.c" $flags >"$TMP/cc.log" 2>&1 || {
        sed 's/^/  | /' "$TMP/cc.log" >&2; return 1; }
    out=$(timeout 120 bash -c "$(declare -f wine_run); PREFIX='$PREFIX' WINE='$WINE' wine_run '$TMP/quic.exe'" 2>/dev/null) || {
        log "the QUIC check failed under Wine (exit $?)"; return 1; }
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
step "[1/8] installing the cross compiler and Wine when missing"
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

# --- sources ----------------------------------------------------------------
step "[2/8] fetching Debian source packages (libuv1, wolfssl, ngtcp2, nghttp3)"
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

# The SHA-256 the (signed) deb-src index gives for FILE of PKG VERSION.
index_sha256() {
    apt-cache "${APT_OPTS[@]}" showsrc --only-source "$1" 2>/dev/null | awk -v want="$2" -v f="$3" '
        BEGIN { RS = ""; FS = "\n" }
        { ver = ""; insha = 0; sha = ""
          for (i = 1; i <= NF; i++) {
              if ($i ~ /^Version: /) ver = substr($i, 10)
              if ($i ~ /^Checksums-Sha256:/) { insha = 1; continue }
              if (insha && $i ~ /^ /) { split($i, a, " "); if (a[3] == f) sha = a[1]; continue }
              insha = 0 }
          if (ver == want && sha != "") { print sha; exit } }'
}

newest_src_version() {
    local v best=""
    while read -r v; do
        if [ -z "$best" ] || dpkg --compare-versions "$v" gt "$best"; then best=$v; fi
    done < <(apt-cache "${APT_OPTS[@]}" showsrc --only-source "$1" 2>/dev/null | sed -n 's/^Version: //p' | sort -u)
    echo "$best"
}

# debian_source PKG VERSION DEST: unpack the source package (downloaded once
# into $SRCROOT, where tools/deps-quic.sh keeps its own) into DEST, with
# Debian's patches when the mirror has them. Sets SRC_NOTE; returns 1 when
# the mirror has not even the upstream tarball.
debian_source() {
    local pkg=$1 ver=$2 dest=$3 dl=$SRCROOT/${1}_${2} dsc orig debtar want
    mkdir -p "$dl"
    chown _apt "$dl" 2>/dev/null || true   # lets apt download without leaving its sandbox
    if ! compgen -G "$dl/${pkg}_*.orig.tar.*" >/dev/null; then
        (cd "$dl" && apt-get "${APT_OPTS[@]}" -q -y source --download-only "$pkg=$ver") >>"$LOG" 2>&1 ||
            log "  apt-get source did not fetch everything of $pkg $ver; using what arrived"
    fi
    rm -rf "$dest"
    dsc=$(compgen -G "$dl/${pkg}_*.dsc" | head -n 1 || true)
    if [ -n "$dsc" ] && dpkg-source -x "$dsc" "$dest" >>"$LOG" 2>&1; then
        SRC_NOTE="$pkg $ver (Debian source package, Debian patches applied)"
        return 0
    fi
    orig=$(compgen -G "$dl/${pkg}_*.orig.tar.*" | grep -v '\.asc$' | head -n 1 || true)
    [ -n "$orig" ] || return 1
    # Without the .dsc, dpkg-source cannot check the tarball: the index can.
    want=$(index_sha256 "$pkg" "$ver" "$(basename "$orig")")
    if [ -n "$want" ]; then
        echo "$want  $orig" | sha256sum -c --status || die "$orig does not match the deb-src index's SHA-256"
    fi
    rm -rf "$dest"; mkdir -p "$dest"
    run "unpack $orig" tar -xf "$orig" -C "$dest" --strip-components=1
    SRC_NOTE="$pkg $ver (upstream tarball only)"
    debtar=$(compgen -G "$dl/${pkg}_*.debian.tar.*" | head -n 1 || true)
    if [ -n "$debtar" ]; then
        run "unpack $debtar" tar -xf "$debtar" -C "$dest"
        if [ -f "$dest/debian/patches/series" ]; then
            local p lvl
            while read -r p lvl; do
                case $p in ''|'#'*) continue ;; esac
                run "apply debian/patches/$p" patch -d "$dest" -N -s "${lvl:--p1}" -i "debian/patches/$p"
            done <"$dest/debian/patches/series"
        fi
        SRC_NOTE="$pkg $ver (upstream tarball + Debian patches, no .dsc)"
    fi
}

rm -rf "$BUILDROOT"; mkdir -p "$BUILDROOT"
UV_VER=$(dpkg-query -W -f='${source:Version}' libuv1-dev)
debian_source libuv1 "$UV_VER" "$BUILDROOT/libuv" ||
    die "neither the .dsc nor the upstream tarball of libuv1 $UV_VER could be fetched"
UV_NOTE=$SRC_NOTE; log "  $UV_NOTE"
# The same versions tools/deps-quic.sh builds or installs for Linux.
WOLFSSL_VER=$(newest_src_version wolfssl)
[ -n "$WOLFSSL_VER" ] || die "no wolfssl source package in the deb-src indexes"
debian_source wolfssl "$WOLFSSL_VER" "$BUILDROOT/wolfssl" ||
    die "neither the .dsc nor the upstream tarball of wolfssl $WOLFSSL_VER could be fetched"
WOLFSSL_NOTE=$SRC_NOTE; log "  $WOLFSSL_NOTE"
NGTCP2_PKG=$(dpkg-query -W -f='${source:Package}' libngtcp2-dev 2>/dev/null || echo ngtcp2)
NGTCP2_VER=$(dpkg-query -W -f='${source:Version}' libngtcp2-dev 2>/dev/null) ||
    die "libngtcp2-dev is not installed (tools/deps-quic.sh installs it)"
debian_source "$NGTCP2_PKG" "$NGTCP2_VER" "$BUILDROOT/ngtcp2" ||
    die "neither the .dsc nor the upstream tarball of $NGTCP2_PKG $NGTCP2_VER could be fetched"
NGTCP2_NOTE=$SRC_NOTE; log "  $NGTCP2_NOTE"
NGHTTP3_PKG=$(dpkg-query -W -f='${source:Package}' libnghttp3-dev 2>/dev/null || echo nghttp3)
NGHTTP3_VER=$(dpkg-query -W -f='${source:Version}' libnghttp3-dev 2>/dev/null) ||
    die "libnghttp3-dev is not installed (tools/deps-quic.sh installs it)"
if debian_source "$NGHTTP3_PKG" "$NGHTTP3_VER" "$BUILDROOT/nghttp3"; then
    NGHTTP3_NOTE=$SRC_NOTE; log "  $NGHTTP3_NOTE"
else
    # The Linux set-up installs nghttp3 as a binary package, so nothing
    # else needs its source; a mirror may well not carry it.
    NGHTTP3_NOTE=""
    QUIC_MISSING="the mirror has no source of $NGHTTP3_PKG $NGHTTP3_VER (the version of libnghttp3-dev)"
    log "  $QUIC_MISSING: the QUIC layer cannot be cross-built"
fi

# --- libuv ------------------------------------------------------------------
step "[3/8] cross-building libuv for $TRIPLE (about a minute)"
run "libuv configure" cmake -S "$BUILDROOT/libuv" -B "$BUILDROOT/build" \
    -DCMAKE_TOOLCHAIN_FILE="$TOOLCHAIN" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_INSTALL_PREFIX="$PREFIX" -DLIBUV_BUILD_TESTS=OFF -DLIBUV_BUILD_BENCH=OFF \
    -DBUILD_TESTING=OFF
run "libuv build" cmake --build "$BUILDROOT/build" -j"$JOBS"
rm -f "$STAMP"
rm -rf "${PREFIX:?}/include" "${PREFIX:?}/lib" "${PREFIX:?}/bin" "${PREFIX:?}/share/uvq-win"
run "libuv install" cmake --install "$BUILDROOT/build"
[ -f "$PREFIX/lib/libuv_a.a" ] || die "libuv_a.a was not installed"
mkdir -p "$PREFIX/lib/pkgconfig" "$PREFIX/include/ngtcp2" "$PREFIX/include/nghttp3" "$(dirname "$STAMP")"

# --- wolfSSL ------------------------------------------------------------------
W=$BUILDROOT/wolfssl
step "[4/8] cross-building wolfSSL $WOLFSSL_VER with QUIC (make -j$JOBS; several minutes)"
flags=()
dropped=()
for f in "${WOLFSSL_FLAGS[@]}"; do
    o=${f#--enable-}; o=${o#--disable-}
    if [ "$o" = shared ] || [ "$o" = static ] || grep -q "AC_ARG_ENABLE(\[$o\]" "$W/configure.ac"; then flags+=("$f"); else dropped+=("$f"); fi
done
cppflags=""
if [[ " ${dropped[*]} " == *" --enable-keylog-export "* ]]; then
    cppflags="-DHAVE_SECRET_CALLBACK"   # wolfSSL < 5.6 (as in tools/deps-quic.sh)
fi
[ ${#dropped[@]} -eq 0 ] || log "  options unknown to this wolfSSL, skipped: ${dropped[*]}"
if grep -q 'wolfSSL_EVP_PKEY_CTX_new_id(NID_hkdf' "$W/src/quic.c"; then
    run "apply wolfssl-quic-hkdf-direct.patch" patch -d "$W" -N -s -p1 \
        -i "$PATCHDIR/wolfssl-quic-hkdf-direct.patch"
    WOLFSSL_NOTE="$WOLFSSL_NOTE + tools/patches/wolfssl-quic-hkdf-direct.patch"
fi
[ -x "$W/configure" ] || run "wolfSSL autoreconf" autoreconf -fi "$W"
# shellcheck disable=SC2317  # invoked through run
wolfssl_configure() (
    cd "$W" && ./configure --host="$TRIPLE" CC="$TRIPLE-gcc-win32" AR="$TRIPLE-gcc-ar-win32" \
        RANLIB="$TRIPLE-gcc-ranlib-win32" --prefix="$PREFIX" "${flags[@]}" ${cppflags:+"CPPFLAGS=$cppflags"}
)
run "wolfSSL configure ${flags[*]} $cppflags" wolfssl_configure
grep -Eq '^#define WOLFSSL_QUIC([[:space:]]|$)' "$W/wolfssl/options.h" ||
    die "wolfSSL's configure did not enable QUIC (see $LOG)"
run "wolfSSL make" make -C "$W" -j"$JOBS"
run "wolfSSL make install" make -C "$W" install
rm -f "$PREFIX"/lib/*.la
[ -f "$PREFIX/lib/libwolfssl.a" ] || die "libwolfssl.a was not installed"
# A static library: what it needs from Windows goes on the Libs line, which
# CMake's pkg_check_modules reads without --static. (configure also puts
# -lpthread in LIBS, but on Windows wolfSSL locks with the Win32 API.)
sed -i -e 's|^Libs: .*|& -lws2_32 -ladvapi32|' "$PREFIX/lib/pkgconfig/wolfssl.pc"

# --- ngtcp2 + helper -------------------------------------------------------------
N=$BUILDROOT/ngtcp2
step "[5/8] cross-building libngtcp2 and libngtcp2_crypto_wolfssl $NGTCP2_VER"
ng_ver=$(sed -n 's/^project(ngtcp2 VERSION \([0-9.]*\)).*/\1/p' "$N/CMakeLists.txt")
[ -n "$ng_ver" ] || die "cannot read ngtcp2's version from its CMakeLists.txt"
# ar_from OUT.a OBJDIR CC-ARGS... -- SOURCES...
ar_from() {
    local out=$1 od=$2 a=() s; shift 2
    while [ "$1" != -- ]; do a+=("$1"); shift; done; shift
    mkdir -p "$od"
    for s in "$@"; do
        run "compile ${s#"$BUILDROOT"/}" "$TRIPLE-gcc-win32" "${NG_CFLAGS[@]}" "${a[@]}" -c "$s" \
            -o "$od/$(basename "$s" .c).o"
    done
    run "archive $(basename "$out")" "$TRIPLE-gcc-ar-win32" rcs "$out" "$od"/*.o
}
# version.h.in -> version.h where the tarball is a git export.
gen_version_h() {  # DIR NAME VERSION
    local h=$1/version.h num
    [ -f "$h" ] && return 0
    IFS=. read -r a b c <<<"$3"
    num=$(printf '0x%02x%02x%02x' "$a" "$b" "${c:-0}")
    sed -e "s/@PACKAGE_VERSION@/$3/" -e "s/@PACKAGE_VERSION_NUM@/$num/" "$h.in" >"$h"
}
gen_version_h "$N/lib/includes/ngtcp2" ngtcp2 "$ng_ver"
ar_from "$PREFIX/lib/libngtcp2.a" "$BUILDROOT/obj-ngtcp2" -DBUILDING_NGTCP2 \
    -I"$N/lib/includes" -I"$N/lib" -- "$N"/lib/*.c
ar_from "$PREFIX/lib/libngtcp2_crypto_wolfssl.a" "$BUILDROOT/obj-helper" -DBUILDING_NGTCP2 \
    -I"$N/crypto/includes" -I"$N/crypto" -I"$N/lib/includes" -I"$N/lib" -I"$PREFIX/include" -- \
    "$N/crypto/wolfssl/wolfssl.c" "$N/crypto/shared.c"
install -m 644 "$N"/lib/includes/ngtcp2/ngtcp2.h "$N"/lib/includes/ngtcp2/version.h \
    "$N"/crypto/includes/ngtcp2/ngtcp2_crypto.h "$N"/crypto/includes/ngtcp2/ngtcp2_crypto_wolfssl.h \
    "$PREFIX/include/ngtcp2/"
# pc NAME VERSION CFLAGS LIBS REQUIRES
pc() {
    printf '%s\n' "prefix=$PREFIX" "libdir=\${prefix}/lib" "includedir=\${prefix}/include" "" \
        "Name: $1" "Description: $1, cross-built for $TRIPLE by tools/deps-win.sh" "Version: $2" \
        ${5:+"Requires: $5"} "Cflags: -I\${includedir} $3" "Libs: -L\${libdir} $4" \
        >"$PREFIX/lib/pkgconfig/$1.pc"
}
pc libngtcp2 "$ng_ver" -DNGTCP2_STATICLIB "-lngtcp2 -lws2_32"
pc libngtcp2_crypto_wolfssl "$ng_ver" -DNGTCP2_STATICLIB -lngtcp2_crypto_wolfssl "libngtcp2 wolfssl"

# --- nghttp3 ----------------------------------------------------------------------
H=$BUILDROOT/nghttp3
step "[6/8] cross-building libnghttp3 $NGHTTP3_VER"
if [ -z "${QUIC_MISSING:-}" ]; then
    h3_ver=$(sed -n 's/^project(nghttp3 VERSION \([0-9.]*\)).*/\1/p' "$H/CMakeLists.txt")
    [ -n "$h3_ver" ] || die "cannot read nghttp3's version from its CMakeLists.txt"
    gen_version_h "$H/lib/includes/nghttp3" nghttp3 "$h3_ver"
    # sfparse is a subdirectory of lib/ in nghttp3 >= 1.2.
    sfp=(); [ -d "$H/lib/sfparse" ] && sfp=(-I"$H/lib/sfparse")
    mapfile -t h3src < <(compgen -G "$H/lib/*.c"; compgen -G "$H/lib/sfparse/*.c" || true)
    ar_from "$PREFIX/lib/libnghttp3.a" "$BUILDROOT/obj-nghttp3" -DBUILDING_NGHTTP3 \
        -I"$H/lib/includes" -I"$H/lib" "${sfp[@]}" -- "${h3src[@]}"
    install -m 644 "$H"/lib/includes/nghttp3/nghttp3.h "$H"/lib/includes/nghttp3/version.h \
        "$PREFIX/include/nghttp3/"
    pc libnghttp3 "$h3_ver" -DNGHTTP3_STATICLIB -lnghttp3
    echo yes >"$PREFIX/share/uvq-win/quic"
else
    log "  skipped: $QUIC_MISSING"
    echo "no: $QUIC_MISSING" >"$PREFIX/share/uvq-win/quic"
fi

step "[7/8] preparing the Wine prefix $PREFIX/wine"
if [ ! -f "$PREFIX/wine/system.reg" ]; then
    mkdir -p "$PREFIX/wine"
    run "wineboot --init" env WINEPREFIX="$PREFIX/wine" WINEDEBUG=-all \
        WINEDLLOVERRIDES="mscoree,mshtml=" DISPLAY="" "$WINE" wineboot --init
    WINEPREFIX="$PREFIX/wine" /usr/lib/wine/wineserver -w >>"$LOG" 2>&1 || true
fi

step "[8/8] checking"
verify || die "a check program failed under Wine"
{ stamp_key; echo "libuv=$UV_NOTE"; echo "wolfssl=$WOLFSSL_NOTE"
  echo "wolfssl-configure=${flags[*]} $cppflags"; echo "ngtcp2=$NGTCP2_NOTE"
  echo "nghttp3=${NGHTTP3_NOTE:-not built: $QUIC_MISSING}"
  echo "date=$(date -u '+%F %T UTC')"; } >"$STAMP.tmp"
mv -f "$STAMP.tmp" "$STAMP"
rm -rf "$BUILDROOT"
log "done in ${SECONDS}s"
echo "$PREFIX"
