#!/usr/bin/env bash
# tools/deps-quic.sh -- provide uvq's QUIC dependencies, from Debian only.
#
#   * libngtcp2-dev, libnghttp3-dev, ngtcp2-client, ngtcp2-server: binary
#     packages from the <codename>-backports suite, installed into /usr.
#   * libcurl4-gnutls-dev, also from backports, where libcurl is built with
#     ngtcp2 + nghttp3: the HTTP/3 client of the interop tests
#     (test/interop/curl-h3-fetch.c).
#   * wolfSSL with QUIC enabled, and ngtcp2's wolfSSL crypto helper
#     (libngtcp2_crypto_wolfssl): built from Debian *source* packages into a
#     cached prefix (default /var/cache/uvq/deps).
#
# Run as root (a non-root run works only when everything is already cached).
# Idempotent: a stamp file records what was installed; a run that finds a
# matching stamp only re-runs a small compile/link/run check (seconds).
# Progress goes to stderr; stdout gets exactly one line, the prefix:
#
#   prefix=$(sudo tools/deps-quic.sh)
#   export PKG_CONFIG_PATH=$prefix/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
#
# Environment:
#   UVQ_DEPS_PREFIX   install prefix                   (default /var/cache/uvq/deps)
#   UVQ_DEPS_CACHE    private apt state, sources, logs (default /var/cache/uvq)
#   UVQ_DEPS_JOBS     parallel make jobs               (default 2)
#   UVQ_DEPS_FORCE=1  ignore the stamp: refresh the indexes, rebuild, reinstall
#
# No host name or URL appears here on purpose: the mirror is whatever the
# machine's own apt configuration uses. See docs/dependencies.md.
set -Eeuo pipefail
umask 022

PREFIX=${UVQ_DEPS_PREFIX:-/var/cache/uvq/deps}
CACHE=${UVQ_DEPS_CACHE:-/var/cache/uvq}
JOBS=${UVQ_DEPS_JOBS:-2}
FORCE=${UVQ_DEPS_FORCE:-0}
PREFIX=${PREFIX%/}
CACHE=${CACHE%/}

# Bump RECIPE_REV when the way things are built changes; the recipe hash
# below also covers the flag lists, so editing them forces a rebuild.
RECIPE_REV=2
BIN_PKGS=(libngtcp2-dev libnghttp3-dev ngtcp2-client ngtcp2-server libcurl4-gnutls-dev)
# Command -> Debian package needed to fetch and build.
TOOLS=(cc:gcc make:make dpkg-source:dpkg-dev autoreconf:autoconf automake:automake
       libtoolize:libtool pkg-config:pkgconf xz:xz-utils patch:patch
       sha256sum:coreutils flock:util-linux)
# wolfSSL: what ngtcp2's README uses (--enable-all, harden, keylog export,
# no ECH) plus, spelled out, everything QUIC and the helper depend on.
# AES-XTS (disk encryption, which --enable-all turns on) is left out: its
# context is the largest member of the EVP cipher context's union and
# doubles it, 2384 against 1280 bytes, and a QUIC connection holds six to
# eight of those for as long as it lives.
# Options this wolfSSL's configure.ac does not know are dropped at run time.
WOLFSSL_FLAGS=(--enable-shared --enable-static --enable-all --enable-harden
    --enable-quic --enable-tls13 --enable-session-ticket --enable-earlydata
    --enable-psk --enable-opensslextra --enable-alpn --enable-sni
    --enable-supportedcurves --enable-hkdf --enable-aesgcm --enable-aesctr
    --enable-aesccm --enable-chacha --enable-poly1305 --enable-curve25519
    --enable-keylog-export --disable-ech
    --disable-examples --disable-crypttests --disable-benchmark
    --disable-xts --enable-sp)
WOLFSSL_FLAGS_X86_64=(--enable-aesni --enable-intelasm --enable-sp-asm)
# Handshake cost (issue 13). --enable-sp (+ --enable-sp-asm on x86_64):
# wolfSSL's single-precision P-256/P-384/P-521 code and its assembly, in
# place of the generic big-number code (--enable-intelasm already gives
# X25519 its assembly). WOLFSSL_GETRANDOM: seed the DRBG with one getrandom()
# call rather than open/read/close of /dev/urandom for every WC_RNG.
WOLFSSL_CPPFLAGS=(-DWOLFSSL_GETRANDOM)
# Local patches to wolfSSL's source (tools/patches/), each applied only to a
# source that still has what it changes; see docs/dependencies.md.
PATCHDIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/patches
HELPER_CFLAGS=(-O2 -g -fPIC -fvisibility=hidden -fstack-protector-strong
    -D_FORTIFY_SOURCE=2 -Wall -DBUILDING_NGTCP2
    -DHAVE_ARPA_INET_H=1 -DHAVE_NETINET_IN_H=1 -DHAVE_ENDIAN_H=1
    -DHAVE_BYTESWAP_H=1 -DHAVE_DECL_BE64TOH=1 -DHAVE_DECL_BSWAP_64=1)

APTDIR=$CACHE/apt
SRCROOT=$CACHE/src
BUILDROOT=$CACHE/build
LOGDIR=$CACHE/log
LOG=$LOGDIR/deps-quic.log
STAMPDIR=$PREFIX/share/uvq-deps
STAMP=$STAMPDIR/stamp
TMP=""
STEP="starting"

unset CFLAGS CPPFLAGS CXXFLAGS LDFLAGS LIBS PKG_CONFIG_LIBDIR PKG_CONFIG_SYSROOT_DIR
export LC_ALL=C DEBIAN_FRONTEND=noninteractive

log() { printf 'deps-quic: %s\n' "$*" >&2; }

die() {
    log "ERROR: $*"
    if [ -s "$LOG" ] && [ "${LOG_ACTIVE:-0}" = 1 ]; then
        log "last 40 lines of $LOG:"
        tail -n 40 "$LOG" | sed 's/^/  | /' >&2
        log "full log: $LOG"
    fi
    log "FAILED during: $STEP"
    exit 1
}

# shellcheck disable=SC2317  # invoked by the EXIT trap
cleanup() { [ -n "$TMP" ] && rm -rf "$TMP"; return 0; }
trap cleanup EXIT
trap 'die "unexpected failure (line $LINENO: $BASH_COMMAND)"' ERR

# run DESCRIPTION CMD... : run quietly, everything goes to the log.
run() {
    local what=$1; shift
    printf '\n### %s\n$ %s\n' "$what" "$*" >>"$LOG"
    "$@" >>"$LOG" 2>&1 || die "$what failed (exit $?)"
}

step() { STEP=$*; log "$*"; printf '\n##### %s (%s)\n' "$*" "$(date '+%F %T')" >>"$LOG"; }

recipe_hash() {
    { printf '%s\n' "$RECIPE_REV" "${WOLFSSL_FLAGS[@]}" "${WOLFSSL_FLAGS_X86_64[@]}" \
        "${WOLFSSL_CPPFLAGS[@]}" "${HELPER_CFLAGS[@]}"; cat "$PATCHDIR"/wolfssl-*.patch; } |
        sha256sum | cut -c1-16
}

pkg_version() {  # installed version of a package, or "none"
    local st
    st=$(dpkg-query -W -f='${db:Status-Abbrev}|${Version}' "$1" 2>/dev/null) || { echo none; return; }
    case $st in ii*) echo "${st#*|}" ;; *) echo none ;; esac
}

# The stamp lines that must match for the cached install to be reused.
stamp_key() {
    echo "recipe=$(recipe_hash)"
    echo "prefix=$PREFIX"
    echo "arch=$(dpkg --print-architecture)"
    local p
    for p in "${BIN_PKGS[@]}"; do echo "pkg:$p=$(pkg_version "$p")"; done
}

stamp_get() { sed -n "s/^$1=//p" "$STAMP" | head -n 1; }

stamp_matches() {
    [ -f "$STAMP" ] || return 1
    local line
    while IFS= read -r line; do
        case $line in *=none) return 1 ;; esac
        grep -Fxq -- "$line" "$STAMP" || return 1
    done < <(stamp_key)
}

have_tools() { command -v cc >/dev/null && command -v pkg-config >/dev/null; }

# verify PKGCONFIG_DIR ("" = the system's default search path only).
# Compiles and runs a small program against all four libraries.
verify() {
    local pcdir=$1 flags out
    [ -n "$TMP" ] || TMP=$(mktemp -d "${TMPDIR:-/tmp}/uvq-deps-quic.XXXXXX")
    write_check_c "$TMP/check.c"
    if [ -n "$pcdir" ]; then
        flags=$(PKG_CONFIG_PATH=$pcdir pkg-config --cflags --libs \
            libngtcp2_crypto_wolfssl libngtcp2 libnghttp3 wolfssl 2>"$TMP/pc.err") || {
            cat "$TMP/pc.err" >&2; return 1; }
    else
        flags=$(env -u PKG_CONFIG_PATH pkg-config --cflags --libs \
            libngtcp2_crypto_wolfssl libngtcp2 libnghttp3 wolfssl 2>"$TMP/pc.err") || {
            cat "$TMP/pc.err" >&2; return 1; }
    fi
    # shellcheck disable=SC2086  # pkg-config output is a list of words
    cc -std=gnu11 -Wall -o "$TMP/check" "$TMP/check.c" $flags >"$TMP/cc.log" 2>&1 || {
        sed 's/^/  | /' "$TMP/cc.log" >&2; return 1; }
    out=$("$TMP/check") || return 1
    log "check: $out"
    log "check: libwolfssl loaded from $(ldd "$TMP/check" | awk '/libwolfssl/{print $3; exit}')"
}

write_check_c() {
    cat >"$1" <<'EOF'
/* deps-quic.sh self-check: ngtcp2 + nghttp3 + libngtcp2_crypto_wolfssl + wolfSSL. */
#include <stdio.h>
#include <string.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <ngtcp2/ngtcp2_crypto_wolfssl.h>
#include <nghttp3/nghttp3.h>
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>
#include <wolfssl/quic.h>
#include <wolfssl/version.h>

#ifndef WOLFSSL_QUIC
#error "wolfSSL was built without QUIC support (WOLFSSL_QUIC)"
#endif
#ifndef WOLFSSL_TLS13
#error "wolfSSL was built without TLS 1.3"
#endif
#ifndef HAVE_SESSION_TICKET
#error "wolfSSL was built without session tickets"
#endif
#ifndef WOLFSSL_EARLY_DATA
#error "wolfSSL was built without early data (0-RTT)"
#endif
#ifndef HAVE_SECRET_CALLBACK
#error "wolfSSL was built without the key log (secret) callback"
#endif

#define FAIL(what)                                                           \
  do {                                                                       \
    fprintf(stderr, "deps-quic check FAILED: %s\n", what);                  \
    return 1;                                                                \
  } while (0)

static void keylog(const WOLFSSL *ssl, const char *line) {
  (void)ssl;
  (void)line;
}

static int hexeq(const uint8_t *p, size_t n, const char *hex) {
  char buf[129];
  size_t i;
  if (n > 64) return 0;
  for (i = 0; i < n; i++) snprintf(buf + 2 * i, 3, "%02x", p[i]);
  buf[2 * n] = 0;
  return strcmp(buf, hex) == 0;
}

/* HKDF-Expand-Label (RFC 8446, 7.1) with an empty context. */
static int expand_label(uint8_t *out, size_t outlen, const ngtcp2_crypto_md *md,
                        const uint8_t *secret, size_t secretlen,
                        const char *label) {
  uint8_t info[128];
  size_t ll = strlen(label), n = 0;
  info[n++] = (uint8_t)(outlen >> 8);
  info[n++] = (uint8_t)outlen;
  info[n++] = (uint8_t)(6 + ll);
  memcpy(info + n, "tls13 ", 6);
  n += 6;
  memcpy(info + n, label, ll);
  n += ll;
  info[n++] = 0;
  return ngtcp2_crypto_hkdf_expand(out, outlen, md, secret, secretlen, info, n);
}

int main(void) {
  /* RFC 9001, Appendix A.1 */
  static const uint8_t salt[] = {0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34,
                                 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8,
                                 0x0c, 0xad, 0xcc, 0xbb, 0x7f, 0x0a};
  static const uint8_t dcid_raw[] = {0x83, 0x94, 0xc8, 0xf0,
                                     0x3e, 0x51, 0x57, 0x08};
  static const uint8_t scid_raw[] = {1, 2, 3, 4, 5, 6, 7, 8};
  const ngtcp2_info *ngi = ngtcp2_version(0);
  const nghttp3_info *h3i = nghttp3_version(0);
  WOLFSSL_CTX *cctx, *sctx;
  WOLFSSL *ssl;
  ngtcp2_crypto_md md;
  ngtcp2_cid dcid, scid;
  uint8_t initial[32], client[32], key[16], iv[12], hp[16], pkt[1500];
  uint8_t secret[32] = {0x75, 0x76, 0x71}, tok[NGTCP2_CRYPTO_MAX_REGULAR_TOKENLEN];
  struct sockaddr_in sa;
  ngtcp2_ssize n;
  const ngtcp2_tstamp ts = 1000 * NGTCP2_SECONDS;

  if (!ngi || strcmp(ngi->version_str, NGTCP2_VERSION) != 0)
    FAIL("libngtcp2 library and headers differ");
  if (!h3i || strcmp(h3i->version_str, NGHTTP3_VERSION) != 0)
    FAIL("libnghttp3 library and headers differ");
  if (strcmp(wolfSSL_lib_version(), LIBWOLFSSL_VERSION_STRING) != 0)
    FAIL("libwolfssl library and headers differ");
  if (wolfSSL_Init() != WOLFSSL_SUCCESS) FAIL("wolfSSL_Init");

  cctx = wolfSSL_CTX_new(wolfTLSv1_3_client_method());
  sctx = wolfSSL_CTX_new(wolfTLSv1_3_server_method());
  if (!cctx || !sctx) FAIL("wolfSSL_CTX_new(TLS 1.3)");
  if (ngtcp2_crypto_wolfssl_configure_client_context(cctx) != 0)
    FAIL("ngtcp2_crypto_wolfssl_configure_client_context");
  if (ngtcp2_crypto_wolfssl_configure_server_context(sctx) != 0)
    FAIL("ngtcp2_crypto_wolfssl_configure_server_context");
  wolfSSL_CTX_set_keylog_callback(cctx, keylog);
  ssl = wolfSSL_new(cctx);
  if (!ssl || !wolfSSL_is_quic(ssl)) FAIL("WOLFSSL object is not in QUIC mode");

  /* Initial secrets through the helper's HKDF (RFC 9001 A.1 vectors). */
  ngtcp2_crypto_md_init(&md, (void *)wolfSSL_EVP_sha256());
  if (ngtcp2_crypto_hkdf_extract(initial, &md, dcid_raw, sizeof(dcid_raw), salt,
                                 sizeof(salt)) != 0 ||
      !hexeq(initial, 32, "7db5df06e7a69e432496adedb00851923595221596ae2ae9fb8115c1e9ed0a44"))
    FAIL("HKDF-Extract of the QUIC v1 initial secret");
  if (expand_label(client, 32, &md, initial, 32, "client in") != 0 ||
      !hexeq(client, 32, "c00cf151ca5be075ed0ebfb5c80323c42d6b7db67881289af4008f1f6c357aea") ||
      expand_label(key, 16, &md, client, 32, "quic key") != 0 ||
      !hexeq(key, 16, "1f369613dd76d5467730efcbe3b1a22d") ||
      expand_label(iv, 12, &md, client, 32, "quic iv") != 0 ||
      !hexeq(iv, 12, "fa044b2f42a3fd3b46fb255c") ||
      expand_label(hp, 16, &md, client, 32, "quic hp") != 0 ||
      !hexeq(hp, 16, "9f50449e04a0e810283a1e9933adedd2"))
    FAIL("HKDF-Expand-Label of the client initial keys");

  /* A protected Initial packet (AES-128-GCM + header protection). */
  ngtcp2_cid_init(&dcid, dcid_raw, sizeof(dcid_raw));
  ngtcp2_cid_init(&scid, scid_raw, sizeof(scid_raw));
  n = ngtcp2_crypto_write_connection_close(pkt, sizeof(pkt), NGTCP2_PROTO_VER_V1,
                                           &dcid, &scid, 0x0a, NULL, 0);
  if (n <= 0) FAIL("ngtcp2_crypto_write_connection_close");

  /* Address validation token round trip (HKDF + AEAD + RNG). */
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_port = htons(4433);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  n = ngtcp2_crypto_generate_regular_token(tok, secret, sizeof(secret),
                                           (const ngtcp2_sockaddr *)&sa,
                                           sizeof(sa), ts);
  if (n <= 0) FAIL("ngtcp2_crypto_generate_regular_token");
  if (ngtcp2_crypto_verify_regular_token(tok, (size_t)n, secret, sizeof(secret),
                                         (const ngtcp2_sockaddr *)&sa, sizeof(sa),
                                         3600 * NGTCP2_SECONDS,
                                         ts + NGTCP2_SECONDS) != 0)
    FAIL("ngtcp2_crypto_verify_regular_token");

  wolfSSL_free(ssl);
  wolfSSL_CTX_free(cctx);
  wolfSSL_CTX_free(sctx);
  wolfSSL_Cleanup();
  printf("ngtcp2 %s, nghttp3 %s, wolfSSL %s; libngtcp2_crypto_wolfssl configured "
         "TLS 1.3 client+server contexts, QUIC mode, RFC 9001 initial keys, "
         "Initial packet protection, token round trip: OK\n",
         ngi->version_str, h3i->version_str, wolfSSL_lib_version());
  return 0;
}
EOF
}

# ---------------------------------------------------------------------------
# Fast path: a complete install recorded by the stamp.
# ---------------------------------------------------------------------------
fast_path() {
    [ "$FORCE" = 1 ] && return 1
    stamp_matches || return 1
    have_tools || return 1
    local mode out
    mode=$(stamp_get mode)
    out=$(stamp_get out)
    STEP="checking the cached install ($mode, $out)"
    if [ "$mode" = system ]; then
        verify "" || { log "system install failed its check"; return 1; }
    else
        verify "$PREFIX/lib/pkgconfig" || { log "cached install failed its check"; return 1; }
    fi
    log "up to date (stamp $STAMP), ${SECONDS}s"
    echo "$out"
    exit 0
}

case $JOBS in ''|*[!0-9]*|0) die "UVQ_DEPS_JOBS must be a positive integer (got '$JOBS')" ;; esac
case $PREFIX in /?*) ;; *) die "UVQ_DEPS_PREFIX must be an absolute path (got '$PREFIX')" ;; esac

if [ "$(id -u)" != 0 ]; then
    # Without root we can only report a complete cached install.
    fast_path || true
    die "not installed yet (or out of date); run as root: $0"
fi

mkdir -p "$CACHE"
exec 9>>"$CACHE/.deps-quic.lock"
if ! flock -n 9; then
    log "another deps-quic.sh run holds $CACHE/.deps-quic.lock; waiting"
    flock 9
fi
fast_path || true

# ---------------------------------------------------------------------------
# Slow path.
# ---------------------------------------------------------------------------
mkdir -p "$APTDIR" "$SRCROOT" "$BUILDROOT" "$LOGDIR"
[ -f "$LOG" ] && mv -f "$LOG" "$LOG.1"
: >"$LOG"
LOG_ACTIVE=1
log "installing QUIC dependencies (log: $LOG)"

STEP="checking the system"
# shellcheck source=/dev/null
. /etc/os-release
CODENAME=${VERSION_CODENAME:-}
case " ${ID:-} ${ID_LIKE:-} " in *" debian "*) ;; *) die "this script supports Debian only (found ${ID:-unknown})" ;; esac
[ -n "$CODENAME" ] || die "no VERSION_CODENAME in /etc/os-release"
UNAME_M=$(uname -m)
command -v apt-get >/dev/null || die "apt-get not found"
APT_HELPER=/usr/lib/apt/apt-helper

# --- private apt configuration --------------------------------------------
# Every Debian entry of the system's configuration (suites named <codename>
# or <codename>-*) is copied, with deb-src added; the entry that carries the
# plain <codename> suite (the main archive) also gets <codename>-backports.
# Only the private copy is used, with private lists and a private cache, so
# the system's apt configuration and state stay untouched.
step "[1/7] preparing a private apt configuration for $CODENAME + $CODENAME-backports"
mkdir -p "$APTDIR/sources.list.d" "$APTDIR/lists/partial" "$APTDIR/cache/archives/partial"
rm -f "$APTDIR/sources.list.d/"*
SOURCES=$APTDIR/uvq-debian.sources
LEGACY=$APTDIR/sources.list.d/uvq-legacy.list
shopt -s nullglob
deb822_files=(/etc/apt/sources.list.d/*.sources)
legacy_files=(/etc/apt/sources.list.d/*.list)
shopt -u nullglob
[ -f /etc/apt/sources.list ] && legacy_files=(/etc/apt/sources.list "${legacy_files[@]}")

: >"$SOURCES"
if [ ${#deb822_files[@]} -gt 0 ]; then
    awk -v cn="$CODENAME" '
    BEGIN { RS = ""; FS = "\n" }
    {
        n = 0; delete nm; delete val
        for (i = 1; i <= NF; i++) {
            line = $i
            if (line ~ /^#/) continue
            if (line ~ /^[ \t]/) { if (n > 0) val[n] = val[n] "\n" line; continue }
            p = index(line, ":"); if (p == 0) continue
            n++; nm[n] = substr(line, 1, p - 1)
            val[n] = substr(line, p + 1); sub(/^[ \t]+/, "", val[n]); sub(/[ \t]+$/, "", val[n])
        }
        types = ""; suites = ""; enabled = "yes"
        for (k = 1; k <= n; k++) {
            l = tolower(nm[k])
            if (l == "types") types = val[k]
            else if (l == "suites") suites = val[k]
            else if (l == "enabled") enabled = tolower(val[k])
        }
        if (enabled == "no" || (" " types " ") !~ /[ \t\n]deb[ \t\n]/) next
        ns = split(suites, s, /[ \t\n]+/); kept = ""; main = 0
        for (j = 1; j <= ns; j++) {
            if (s[j] == "" || s[j] == cn "-backports") continue
            if (s[j] == cn) main = 1
            if (s[j] == cn || index(s[j], cn "-") == 1) kept = kept " " s[j]
        }
        if (kept == "") next
        if (main) kept = kept " " cn "-backports"
        print "Types: deb deb-src"
        for (k = 1; k <= n; k++) {
            l = tolower(nm[k])
            if (l == "types" || l == "suites" || l == "enabled") continue
            print nm[k] ": " val[k]
        }
        print "Suites:" kept
        print ""
    }' "${deb822_files[@]}" >"$SOURCES"
fi
if [ ${#legacy_files[@]} -gt 0 ]; then
    awk -v cn="$CODENAME" '
    {
        line = $0; sub(/#.*/, "", line)
        if (!match(line, /^[ \t]*deb[ \t]+/)) next
        rest = substr(line, RLENGTH + 1); opts = ""
        if (substr(rest, 1, 1) == "[") {
            e = index(rest, "]"); opts = substr(rest, 1, e) " "; rest = substr(rest, e + 1)
        }
        sub(/^[ \t]+/, "", rest); nf = split(rest, f, /[ \t]+/)
        uri = f[1]; suite = f[2]; comps = ""
        for (j = 3; j <= nf; j++) if (f[j] != "") comps = comps " " f[j]
        if (suite == cn "-backports") next
        if (suite != cn && index(suite, cn "-") != 1) next
        print "deb " opts uri " " suite comps
        print "deb-src " opts uri " " suite comps
        if (suite == cn) {
            print "deb " opts uri " " cn "-backports" comps
            print "deb-src " opts uri " " cn "-backports" comps
        }
    }' "${legacy_files[@]}" >"$LEGACY"
    [ -s "$LEGACY" ] || rm -f "$LEGACY"
fi
{ grep -Eq "^Suites:.* $CODENAME-backports( |\$)" "$SOURCES" ||
  grep -Eqs "^deb .* $CODENAME-backports( |\$)" "$LEGACY"; } ||
    die "found no entry for the main Debian archive ($CODENAME) in /etc/apt/sources.list{,.d/}"
# Mirror URIs of the main archive, for fetching single source files.
mapfile -t MIRRORS < <(
    awk -v cn="$CODENAME" 'BEGIN { RS = ""; FS = "\n" }
        { u = ""; m = 0
          for (i = 1; i <= NF; i++) {
              if ($i ~ /^URIs:/) u = substr($i, 6)
              if ($i ~ /^Suites:/ && (" " substr($i, 8) " ") ~ (" " cn " ")) m = 1 }
          if (m) { ns = split(u, a, /[ \t]+/); for (j = 1; j <= ns; j++) if (a[j] != "") print a[j] } }' "$SOURCES"
    [ -f "$LEGACY" ] && awk -v cn="$CODENAME" '$1 == "deb" {
          i = 2; if ($2 ~ /^\[/) { while (i < NF && $i !~ /\]$/) i++; i++ }
          if ($(i + 1) == cn) print $i }' "$LEGACY"
    true)
MIRRORS=("${MIRRORS[@]%/}")

APT_OPTS=(-o "Dir::Etc::SourceList=$SOURCES"
          -o "Dir::Etc::SourceParts=$APTDIR/sources.list.d"
          -o "Dir::State::Lists=$APTDIR/lists"
          -o "Dir::Cache=$APTDIR/cache"
          -o "Acquire::Languages=none"
          -o "APT::Architectures=$(dpkg --print-architecture)"
          -o "DPkg::Lock::Timeout=900")
apt_get() { apt-get "${APT_OPTS[@]}" -q -y "$@"; }
apt_cache() { apt-cache "${APT_OPTS[@]}" "$@"; }

# A mirror in mid-sync can fail an index or two; that is not fatal when
# apt kept an earlier copy of the source indexes this script reads.
printf '\n### apt-get update (private lists)\n' >>"$LOG"
if ! apt_get update >>"$LOG" 2>&1; then
    for s in "$CODENAME" "$CODENAME-backports"; do
        compgen -G "$APTDIR/lists/*_dists_${s}_main_source_Sources*" >/dev/null ||
            die "apt-get update (private lists) failed (see $LOG)"
    done
    log "  warning: apt-get update failed for some indexes; using the lists apt kept"
fi

# --- binary packages ------------------------------------------------------
step "[2/7] installing build tools and ngtcp2/nghttp3 from $CODENAME-backports"
missing=()
for t in "${TOOLS[@]}"; do
    command -v "${t%%:*}" >/dev/null || missing+=("${t#*:}")
done
[ -f /usr/include/stdio.h ] || missing+=(libc6-dev)
if [ ${#missing[@]} -gt 0 ]; then
    run "install build tools (${missing[*]})" apt_get install --no-install-recommends "${missing[@]}"
fi
for p in "${BIN_PKGS[@]}"; do
    apt_cache show "$p/$CODENAME-backports" >/dev/null 2>&1 ||
        die "package $p is not available in $CODENAME-backports"
done
run "install ${BIN_PKGS[*]}" apt_get install --no-install-recommends -t "$CODENAME-backports" "${BIN_PKGS[@]}"
for p in "${BIN_PKGS[@]}"; do
    [ "$(pkg_version "$p")" != none ] || die "$p did not get installed"
done
NGTCP2_DEB=$(pkg_version libngtcp2-dev)
NGHTTP3_DEB=$(pkg_version libnghttp3-dev)
NGTCP2_VER=$(env -u PKG_CONFIG_PATH pkg-config --modversion libngtcp2)
env -u PKG_CONFIG_PATH pkg-config --atleast-version=1.0.0 libngtcp2 ||
    die "libngtcp2 $NGTCP2_VER is too old (the wolfSSL helper needs ngtcp2 >= 1.0)"
log "libngtcp2-dev $NGTCP2_DEB, libnghttp3-dev $NGHTTP3_DEB, ngtcp2-client/-server $(pkg_version ngtcp2-client)"

write_stamp() {  # mode out extra-lines...
    local mode=$1 out=$2; shift 2
    mkdir -p "$STAMPDIR"
    { stamp_key; echo "mode=$mode"; echo "out=$out"; printf '%s\n' "$@"
      echo "date=$(date -u '+%F %T UTC')"; } >"$STAMP.tmp"
    mv -f "$STAMP.tmp" "$STAMP"
}

finish() {  # out
    rm -rf "$BUILDROOT"
    if [ "$1" = /usr ]; then
        log "done in ${SECONDS}s; everything is on pkg-config's default path"
    else
        log "done in ${SECONDS}s; PKG_CONFIG_PATH=$1/lib/pkgconfig"
    fi
    echo "$1"
    exit 0
}

# --- does the distribution already ship a QUIC-enabled wolfSSL + helper? ---
step "[3/7] looking for a system wolfSSL with QUIC and libngtcp2_crypto_wolfssl"
system_stack() {
    local pc=(env -u PKG_CONFIG_PATH pkg-config) inc
    "${pc[@]}" --exists libngtcp2_crypto_wolfssl wolfssl 2>/dev/null || return 1
    inc=$("${pc[@]}" --variable=includedir wolfssl)
    grep -Eq '^#define WOLFSSL_QUIC([[:space:]]|$)' "$inc/wolfssl/options.h" 2>/dev/null || return 1
    [ "$("${pc[@]}" --modversion libngtcp2_crypto_wolfssl)" = "$NGTCP2_VER" ]
}
if ! system_stack && apt_cache show libngtcp2-crypto-wolfssl-dev >/dev/null 2>&1; then
    # A future Debian may package the helper; it then depends on a wolfSSL
    # that has QUIC. Try it before building anything.
    run "install libngtcp2-crypto-wolfssl-dev" apt_get install --no-install-recommends \
        -t "$CODENAME-backports" libngtcp2-crypto-wolfssl-dev || true
fi
if system_stack && verify ""; then
    log "the system already provides a QUIC-enabled wolfSSL and the helper: nothing to build"
    write_stamp system /usr "wolfssl=$(env -u PKG_CONFIG_PATH pkg-config --modversion wolfssl) (system)"
    finish /usr
fi
log "not provided by the system: building from Debian source packages"

# --- sources ----------------------------------------------------------------
# src_record PKG VERSION: the Directory and SHA256 file list of that source
# package version, from the (signed) deb-src indexes.
src_record() {
    apt_cache showsrc --only-source "$1" | awk -v want="$2" '
        BEGIN { RS = ""; FS = "\n"; done = 0 }
        done { next }
        {
            ver = ""; dir = ""; insha = 0; nfiles = 0
            for (i = 1; i <= NF; i++) {
                l = $i
                if (l ~ /^Version: /) ver = substr(l, 10)
                else if (l ~ /^Directory: /) dir = substr(l, 12)
                if (l ~ /^Checksums-Sha256:/) { insha = 1; continue }
                if (insha && l ~ /^ /) { split(l, a, " "); files[++nfiles] = a[1] " " a[3]; continue }
                insha = 0
            }
            if (ver != want) next
            print "DIR " dir
            for (k = 1; k <= nfiles; k++) print "FILE " files[k]
            done = 1
        }'
}

newest_src_version() {
    local v best=""
    while read -r v; do
        if [ -z "$best" ] || dpkg --compare-versions "$v" gt "$best"; then best=$v; fi
    done < <(apt_cache showsrc --only-source "$1" | sed -n 's/^Version: //p' | sort -u)
    echo "$best"
}

# fetch_source PKG VERSION DEST: download (cached under $SRCROOT) and unpack
# into DEST. Sets SRC_NOTE to a description of what was used.
fetch_source() {
    local pkg=$1 ver=$2 dest=$3 dl=$SRCROOT/${1}_${2} rec dir sha name uri
    local -a names=() shas=() missing=()
    rec=$(src_record "$pkg" "$ver") || true
    [ -n "$rec" ] || die "no deb-src record for $pkg $ver"
    dir=$(sed -n 's/^DIR //p' <<<"$rec")
    while read -r _ sha name; do names+=("$name"); shas+=("$sha"); done < <(grep '^FILE ' <<<"$rec")
    mkdir -p "$dl"
    chown _apt "$dl" 2>/dev/null || true   # lets apt download without leaving its sandbox
    have_file() { [ -f "$dl/$2" ] && echo "$1  $dl/$2" | sha256sum -c --status 2>/dev/null; }
    local i all=1
    for i in "${!names[@]}"; do have_file "${shas[$i]}" "${names[$i]}" || all=0; done
    if [ $all = 0 ]; then
        printf '\n### apt-get source --download-only %s=%s\n' "$pkg" "$ver" >>"$LOG"
        if ! (cd "$dl" && apt_get source --download-only "$pkg=$ver") >>"$LOG" 2>&1; then
            log "apt-get source could not fetch all of $pkg $ver; fetching the missing files listed in the Sources index"
        fi
        for i in "${!names[@]}"; do
            have_file "${shas[$i]}" "${names[$i]}" && continue
            rm -f "$dl/${names[$i]}"
            for uri in "${MIRRORS[@]}"; do
                printf '\n### apt-helper download-file %s\n' "${names[$i]}" >>"$LOG"
                if "$APT_HELPER" download-file "$uri/$dir/${names[$i]}" "$dl/${names[$i]}" \
                        "SHA256:${shas[$i]}" >>"$LOG" 2>&1; then break; fi
            done
        done
    fi
    for i in "${!names[@]}"; do have_file "${shas[$i]}" "${names[$i]}" || missing+=("${names[$i]}"); done
    [ ${#missing[@]} -eq 0 ] || log "not available from the mirror: ${missing[*]}"

    local dsc="" orig="" debtar=""
    for name in "${names[@]}"; do
        have_file "$(sha_of "$name")" "$name" || continue
        case $name in
            *.dsc) dsc=$name ;;
            *.orig.tar.*.asc) ;;
            *.orig.tar.*) orig=$name ;;
            *.debian.tar.*) debtar=$name ;;
            *.tar.*) [ -z "$orig" ] && orig=$name ;;
        esac
    done
    rm -rf "$dest"
    if [ -n "$dsc" ] && [ ${#missing[@]} -eq 0 ]; then
        run "dpkg-source -x $dsc" dpkg-source -x "$dl/$dsc" "$dest"
        SRC_NOTE="$pkg $ver (Debian source package, Debian patches applied)"
        return
    fi
    [ -n "$orig" ] || die "neither the .dsc nor the upstream tarball of $pkg $ver could be fetched"
    local x; x=$(mktemp -d "$BUILDROOT/unpack.XXXXXX")
    run "unpack $orig" tar -xf "$dl/$orig" -C "$x"
    local top=("$x"/*)
    if [ ${#top[@]} -eq 1 ] && [ -d "${top[0]}" ]; then mv "${top[0]}" "$dest"; rmdir "$x"; else mv "$x" "$dest"; fi
    SRC_NOTE="$pkg $ver (upstream tarball $orig only"
    if [ -n "$debtar" ]; then
        run "unpack $debtar" tar -xf "$dl/$debtar" -C "$dest"
        if [ -f "$dest/debian/patches/series" ]; then
            local p lvl
            while read -r p lvl; do
                case $p in ''|'#'*) continue ;; esac
                run "apply debian/patches/$p" patch -d "$dest" -N -s "${lvl:--p1}" -i "debian/patches/$p"
            done <"$dest/debian/patches/series"
        fi
        SRC_NOTE="$pkg $ver (upstream tarball + Debian patches, no .dsc"
    fi
    SRC_NOTE+="; missing on the mirror: ${missing[*]:-none})"
}
sha_of() { local i; for i in "${!names[@]}"; do [ "${names[$i]}" = "$1" ] && { echo "${shas[$i]}"; return; }; done; }

step "[4/7] fetching Debian source packages"
WOLFSSL_SRC_VER=$(newest_src_version wolfssl)
[ -n "$WOLFSSL_SRC_VER" ] || die "no wolfssl source package in the deb-src indexes"
NGTCP2_SRC_PKG=$(dpkg-query -W -f='${source:Package}' libngtcp2-dev)
NGTCP2_SRC_VER=$(dpkg-query -W -f='${source:Version}' libngtcp2-dev)
rm -rf "$BUILDROOT"; mkdir -p "$BUILDROOT"
fetch_source wolfssl "$WOLFSSL_SRC_VER" "$BUILDROOT/wolfssl"
WOLFSSL_NOTE=$SRC_NOTE; log "  $WOLFSSL_NOTE"
fetch_source "$NGTCP2_SRC_PKG" "$NGTCP2_SRC_VER" "$BUILDROOT/ngtcp2"
NGTCP2_NOTE=$SRC_NOTE; log "  $NGTCP2_NOTE"

# --- wolfSSL ------------------------------------------------------------------
STAGE=$BUILDROOT/stage
SP=$STAGE$PREFIX            # staged prefix
W=$BUILDROOT/wolfssl
step "[5/7] building wolfSSL $WOLFSSL_SRC_VER with QUIC (make -j$JOBS; a few minutes)"
flags=()
case $UNAME_M in x86_64|amd64) want=("${WOLFSSL_FLAGS[@]}" "${WOLFSSL_FLAGS_X86_64[@]}") ;; *) want=("${WOLFSSL_FLAGS[@]}") ;; esac
dropped=()
for f in "${want[@]}"; do
    o=${f#--enable-}; o=${o#--disable-}
    # shared/static come from libtool (LT_INIT), not from AC_ARG_ENABLE.
    if [ "$o" = shared ] || [ "$o" = static ] || grep -q "AC_ARG_ENABLE(\[$o\]" "$W/configure.ac"; then flags+=("$f"); else dropped+=("$f"); fi
done
extra_cppflags="${WOLFSSL_CPPFLAGS[*]}"
keylog_note=""
if [[ " ${dropped[*]} " == *" --enable-keylog-export "* ]]; then
    # Older wolfSSL (< 5.6): the key log callback is HAVE_SECRET_CALLBACK.
    extra_cppflags="$extra_cppflags -DHAVE_SECRET_CALLBACK"
    keylog_note=" (the key log callback through -DHAVE_SECRET_CALLBACK instead)"
fi
[ ${#dropped[@]} -eq 0 ] || log "  options unknown to this wolfSSL, skipped: ${dropped[*]}$keylog_note"
# wolfssl-quic-hkdf-direct.patch: only where src/quic.c still derives HKDF
# through an EVP_PKEY_CTX (a later wolfSSL may not); failing to apply it
# there is an error, not a silently slower build.
if grep -q 'wolfSSL_EVP_PKEY_CTX_new_id(NID_hkdf' "$W/src/quic.c"; then
    run "apply wolfssl-quic-hkdf-direct.patch" patch -d "$W" -N -s -p1 \
        -i "$PATCHDIR/wolfssl-quic-hkdf-direct.patch"
    WOLFSSL_NOTE="$WOLFSSL_NOTE + tools/patches/wolfssl-quic-hkdf-direct.patch"
fi
# wolfssl-ctx-shared-rng.patch: only where wolfSSL_CTX_new_rng() is still
# for SINGLE_THREADED builds only; WOLFSSL_CTX_SHARED_RNG, which the patch
# introduces, lands in options.h, where uvq (quic/tls.c) looks for it.
if grep -q 'allow a CTX level rng to be shared with' "$W/src/ssl.c" &&
   ! grep -q 'WOLFSSL_CTX_SHARED_RNG' "$W/src/ssl.c"; then
    run "apply wolfssl-ctx-shared-rng.patch" patch -d "$W" -N -s -p1 \
        -i "$PATCHDIR/wolfssl-ctx-shared-rng.patch"
    extra_cppflags="$extra_cppflags -DWOLFSSL_CTX_SHARED_RNG"
    WOLFSSL_NOTE="$WOLFSSL_NOTE + tools/patches/wolfssl-ctx-shared-rng.patch"
fi
# wolfssl-evp-pkey-lazy-rng.patch: only where wolfSSL_EVP_PKEY_new_ex()
# still instantiates the key's generator itself.
if grep -q 'ret = wc_InitRng_ex(&pkey->rng, heap, INVALID_DEVID);' "$W/wolfcrypt/src/evp.c"; then
    run "apply wolfssl-evp-pkey-lazy-rng.patch" patch -d "$W" -N -s -p1 \
        -i "$PATCHDIR/wolfssl-evp-pkey-lazy-rng.patch"
    WOLFSSL_NOTE="$WOLFSSL_NOTE + tools/patches/wolfssl-evp-pkey-lazy-rng.patch"
fi
if [ ! -x "$W/configure" ]; then   # Debian's orig tarball is a git export
    run "wolfSSL autoreconf" autoreconf -fi "$W"
fi
# shellcheck disable=SC2317  # invoked through run
wolfssl_configure() (
    cd "$W" && ./configure --prefix="$PREFIX" --libdir="$PREFIX/lib" \
        --includedir="$PREFIX/include" "${flags[@]}" ${extra_cppflags:+"CPPFLAGS=$extra_cppflags"}
)
run "wolfSSL configure ${flags[*]} ${extra_cppflags:+CPPFLAGS=$extra_cppflags}" wolfssl_configure
grep -Eq '^#define WOLFSSL_QUIC([[:space:]]|$)' "$W/wolfssl/options.h" ||
    die "wolfSSL's configure did not enable QUIC (see $LOG)"
run "wolfSSL make" make -C "$W" -j"$JOBS"
run "wolfSSL make install" make -C "$W" install DESTDIR="$STAGE"
rm -f "$SP"/lib/*.la
sed -i "s|^Libs: |Libs: -Wl,-rpath,\${libdir} |" "$SP/lib/pkgconfig/wolfssl.pc"
WOLFSSL_UPSTREAM=$(sed -n 's/^Version: *//p' "$SP/lib/pkgconfig/wolfssl.pc")

# --- libngtcp2_crypto_wolfssl ---------------------------------------------------
N=$BUILDROOT/ngtcp2
step "[6/7] building libngtcp2_crypto_wolfssl $NGTCP2_VER against the installed libngtcp2"
src_ver=$(sed -n 's/^project(ngtcp2 VERSION \([0-9.]*\)).*/\1/p' "$N/CMakeLists.txt")
[ -n "$src_ver" ] || src_ver=$(sed -n 's/^AC_INIT(\[ngtcp2\], *\[\([0-9.]*\)\].*/\1/p' "$N/configure.ac")
[ "$src_ver" = "$NGTCP2_VER" ] ||
    die "ngtcp2 source is $src_ver but the installed libngtcp2 is $NGTCP2_VER"
lt() { sed -n "s/^set(CRYPTO_WOLFSSL_LT_$1 \([0-9]*\)).*/\1/p" "$N/CMakeLists.txt"; }
cur=$(lt CURRENT); rev=$(lt REVISION); age=$(lt AGE)
if [ -z "$cur" ] || [ -z "$rev" ] || [ -z "$age" ]; then
    die "cannot read the helper's library version from ngtcp2's CMakeLists.txt"
fi
so=$((cur - age)); full=$so.$age.$rev
HB=$BUILDROOT/helper
mkdir -p "$HB" "$SP/include/ngtcp2" "$SP/lib/pkgconfig"
NG_CFLAGS=$(env -u PKG_CONFIG_PATH pkg-config --cflags libngtcp2)
NG_LIBS=$(env -u PKG_CONFIG_PATH pkg-config --libs libngtcp2)
inc=(-I"$N/crypto/includes" -I"$N/crypto" -I"$N/lib" -I"$SP/include")
for s in wolfssl/wolfssl.c shared.c; do
    # shellcheck disable=SC2086
    run "compile crypto/$s" cc "${HELPER_CFLAGS[@]}" "${inc[@]}" $NG_CFLAGS \
        -c "$N/crypto/$s" -o "$HB/$(basename "$s" .c).o"
done
# shellcheck disable=SC2086
run "link libngtcp2_crypto_wolfssl.so.$full" cc -shared -o "$SP/lib/libngtcp2_crypto_wolfssl.so.$full" \
    -Wl,-soname,libngtcp2_crypto_wolfssl.so.$so -Wl,--no-undefined -Wl,-z,relro -Wl,-z,now \
    "$HB/wolfssl.o" "$HB/shared.o" -L"$SP/lib" -lwolfssl $NG_LIBS -Wl,-rpath,"$PREFIX/lib"
ln -sf "libngtcp2_crypto_wolfssl.so.$full" "$SP/lib/libngtcp2_crypto_wolfssl.so.$so"
ln -sf "libngtcp2_crypto_wolfssl.so.$so" "$SP/lib/libngtcp2_crypto_wolfssl.so"
rm -f "$SP/lib/libngtcp2_crypto_wolfssl.a"
run "archive libngtcp2_crypto_wolfssl.a" ar rcs "$SP/lib/libngtcp2_crypto_wolfssl.a" "$HB/wolfssl.o" "$HB/shared.o"
install -m 644 "$N/crypto/includes/ngtcp2/ngtcp2_crypto_wolfssl.h" "$SP/include/ngtcp2/"
ng_inc=$(env -u PKG_CONFIG_PATH pkg-config --variable=includedir libngtcp2)
[ -f "$ng_inc/ngtcp2/ngtcp2_crypto.h" ] ||
    install -m 644 "$N/crypto/includes/ngtcp2/ngtcp2_crypto.h" "$SP/include/ngtcp2/"
# shellcheck disable=SC2016  # ${prefix} and ${libdir} are pkg-config variables
sed -e "s|@prefix@|$PREFIX|" -e 's|@exec_prefix@|${prefix}|' -e 's|@libdir@|${exec_prefix}/lib|' \
    -e 's|@includedir@|${prefix}/include|' -e "s|@VERSION@|$NGTCP2_VER|" \
    -e 's|^Libs: |Libs: -Wl,-rpath,${libdir} |' -e '/^URL:/d' -e '/^#/d' -e '/^$/N;/^\n$/D' \
    "$N/crypto/wolfssl/libngtcp2_crypto_wolfssl.pc.in" >"$SP/lib/pkgconfig/libngtcp2_crypto_wolfssl.pc"

# --- install + check ----------------------------------------------------------
step "[7/7] installing into $PREFIX and checking"
rm -f "$STAMP"
if [ -f "$STAMPDIR/manifest" ]; then     # remove what a previous run installed
    while IFS= read -r f; do
        case $f in ./*) rm -f -- "$PREFIX/${f#./}" ;; esac
    done <"$STAMPDIR/manifest"
fi
mkdir -p "$PREFIX"
(cd "$SP" && find . ! -type d | LC_ALL=C sort) >"$BUILDROOT/manifest"
cp -a "$SP/." "$PREFIX/"
mkdir -p "$STAMPDIR"
mv -f "$BUILDROOT/manifest" "$STAMPDIR/manifest"
{
    echo "# how $PREFIX was built by tools/deps-quic.sh"
    echo "wolfssl: $WOLFSSL_NOTE"
    echo "wolfssl configure: ${flags[*]} ${extra_cppflags:+CPPFLAGS=$extra_cppflags}"
    echo "ngtcp2: $NGTCP2_NOTE"
    echo "helper: crypto/wolfssl/wolfssl.c crypto/shared.c, cc ${HELPER_CFLAGS[*]}"
    echo "binary packages: $(for p in "${BIN_PKGS[@]}"; do printf '%s=%s ' "$p" "$(pkg_version "$p")"; done)"
} >"$STAMPDIR/build-info"
STEP="checking the installed libraries"
verify "$PREFIX/lib/pkgconfig" || die "the freshly installed libraries failed the check"
write_stamp built "$PREFIX" "wolfssl=$WOLFSSL_UPSTREAM (source $WOLFSSL_SRC_VER)" \
    "ngtcp2_crypto_wolfssl=$NGTCP2_VER (source $NGTCP2_SRC_VER)"
finish "$PREFIX"
