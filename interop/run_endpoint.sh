#!/bin/bash
# uvq's endpoint for the QUIC interop runner, following its conventions:
#
#   ROLE        server or client
#   TESTCASE    the runner's test case name
#   REQUESTS    (client) space-separated URLs; files go to $DOWNLOADS
#   SSLKEYLOGFILE, QLOGDIR   where to write TLS secrets and qlog files
#   /www, /downloads, /certs (cert.pem, priv.key), port 443
#
# Exit status 127 says "test case not supported", as the runner expects.
# Outside a container every path and the port can be moved with
# UVQ_WWW, UVQ_DOWNLOADS, UVQ_CERTS, UVQ_PORT, UVQ_LISTEN and UVQ_BIN (the
# directory holding uvq-h3-server and uvq-h3-client); the test suite runs
# it that way (interop/test-runner-cases.sh).
#
# ALPN: the runner asks for HTTP/3 ("h3") in its http3 case and for
# HTTP/0.9 over QUIC ("hq-interop") in every other case. uvq's tools speak
# HTTP/3 only, so those cases are unsupported (127) against the runner's
# peers. UVQ_RUNNER_ALPN=h3 runs every case over HTTP/3 instead, which is
# how the test suite plays them against ngtcp2's gtlsserver and
# gtlsclient (Debian ships their HTTP/3 builds only).
set -u

role=${ROLE:-}
testcase=${TESTCASE:-}
www=${UVQ_WWW:-/www}
downloads=${UVQ_DOWNLOADS:-/downloads}
certs=${UVQ_CERTS:-/certs}
port=${UVQ_PORT:-443}
bin=${UVQ_BIN:-/usr/local/bin}
alpn=${UVQ_RUNNER_ALPN:-}
server=$bin/uvq-h3-server
client=$bin/uvq-h3-client

log() { echo "run_endpoint: $*" >&2; }

# Cases uvq can play, per role. Not here: connectionmigration as a client
# is supported, but the runner's server-side case needs the server to
# learn its second address from the runner's network set-up, which this
# script does not know; it is offered as server only when
# UVQ_PREFERRED_IPV4 (or _IPV6) names it.
case $testcase in
  handshake|transfer|longrtt|chacha20|multiplexing|retry|resumption|zerortt|\
  http3|blackhole|keyupdate|ecn|amplificationlimit|handshakeloss|\
  transferloss|handshakecorruption|transfercorruption|ipv6|v2|\
  portrebinding|addressrebinding|goodput|crosstraffic|multiconnect)
    ;;
  connectionmigration)
    if [ "$role" = server ] && [ -z "${UVQ_PREFERRED_IPV4:-}${UVQ_PREFERRED_IPV6:-}" ]; then
      log "connectionmigration as server needs UVQ_PREFERRED_IPV4 or UVQ_PREFERRED_IPV6"
      exit 127
    fi
    ;;
  *)
    log "test case '$testcase' is not supported"
    exit 127
    ;;
esac
if [ "$testcase" != http3 ] && [ "$alpn" != h3 ]; then
  log "test case '$testcase' uses hq-interop (HTTP/0.9), which uvq does not speak yet"
  exit 127
fi

qlog=()
[ -n "${QLOGDIR:-}" ] && mkdir -p "$QLOGDIR" && qlog=(--qlog-dir "$QLOGDIR")
keylog=()
[ -n "${SSLKEYLOGFILE:-}" ] && keylog=(--keylog "$SSLKEYLOGFILE")

if [ "$role" = server ]; then
  opts=(--cert "$certs/cert.pem" --key "$certs/priv.key" --root "$www"
        --port "$port" --listen "${UVQ_LISTEN:-::}" --file-cache-ms 0)
  case $testcase in
    retry) opts+=(--retry=always) ;;
    # The runner checks that v2 was used: prefer it, so that a client
    # starting in v1 and offering v2 is switched (RFC 9368).
    v2) opts+=(--preferred-versions v2,v1) ;;
    # Handshakes through heavy loss can take a minute.
    handshakeloss|handshakecorruption) opts+=(--idle-timeout 180) ;;
    connectionmigration)
      [ -n "${UVQ_PREFERRED_IPV4:-}" ] && opts+=(--preferred-ipv4-addr "$UVQ_PREFERRED_IPV4")
      [ -n "${UVQ_PREFERRED_IPV6:-}" ] && opts+=(--preferred-ipv6-addr "$UVQ_PREFERRED_IPV6")
      ;;
  esac
  exec "$server" "${opts[@]}" "${qlog[@]}" "${keylog[@]}"
fi

if [ "$role" != client ]; then
  log "ROLE must be server or client"
  exit 127
fi

read -r -a urls <<<"${REQUESTS:-}"
if [ ${#urls[@]} -eq 0 ]; then
  log "no REQUESTS"
  exit 1
fi
mkdir -p "$downloads"
trust=(--insecure)
[ -s "$certs/ca.pem" ] && trust=(--cacert "$certs/ca.pem")
opts=("${trust[@]}" --output-dir "$downloads" "${qlog[@]}" "${keylog[@]}")
case $testcase in
  chacha20) opts+=(--ciphersuites TLS_CHACHA20_POLY1305_SHA256) ;;
  keyupdate) opts+=(--key-update 1M) ;;
  v2) opts+=(--quic-version v1 --preferred-versions v2,v1) ;;
  handshakeloss|handshakecorruption) opts+=(--idle-timeout 180) ;;
esac

# fetch URL...: one client run, one connection.
fetch() {
  "$client" "${opts[@]}" "$@"
}

case $testcase in
  resumption|zerortt)
    # The first file on one connection, the rest on a second one that
    # resumes the first's session (with 0-RTT when the ticket allows it).
    session=$(mktemp /tmp/uvq-runner-session.XXXXXX)
    trap 'rm -f "$session"' EXIT
    fetch --session-file "$session" "${urls[0]}" || exit 1
    if [ ${#urls[@]} -gt 1 ]; then
      fetch --session-file "$session" "${urls[@]:1}" || exit 1
    fi
    ;;
  handshakeloss|handshakecorruption|multiconnect)
    # One connection per file.
    for u in "${urls[@]}"; do
      fetch "$u" || exit 1
    done
    ;;
  *)
    fetch "${urls[@]}" || exit 1
    ;;
esac
exit 0
