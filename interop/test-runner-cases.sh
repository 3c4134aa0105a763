#!/bin/bash
# Plays the QUIC interop runner's test cases with interop/run_endpoint.sh,
# outside a container: uvq as server against ngtcp2's gtlsclient, and as
# client against gtlsserver, each in its own network namespace, joined by
# uvq's wire emulator with the runner's link (15 ms one way, 10 Mbit/s, a
# 25-packet queue). Every case checks the files byte for byte, and what the
# runner checks about the case in the peer's log (ngtcp2's packet log: the
# Retry, 0-RTT packets, the negotiated version, key phase flips, ECN). The
# runner asks for hq-interop in every case but http3; the peers here speak
# HTTP/3 only, so every case runs over HTTP/3 (UVQ_RUNNER_ALPN=h3). TAP.
#
#   test-runner-cases.sh BUILD_DIR UVQ_WIRE
set -u
build=$1
wire_bin=$2
top=$(cd "$(dirname "$0")/.." && pwd)
endpoint=$top/interop/run_endpoint.sh
tmp=$(mktemp -d /tmp/uvq-runner.XXXXXX)
prefix=uvqrc-$$
n=0
failed=0
pids=()

cleanup() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
  UVQ_WIRE=$wire_bin "$top/test/wire/wire-netns.sh" down "$prefix" >/dev/null 2>&1
  rm -rf "$tmp"
}
trap cleanup EXIT

ok() { n=$((n + 1)); echo "ok $n - $1"; }
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }
not_ok() {
  n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"
  shift
  local l
  for l in "$@"; do printf '%s\n' "$l" | head -c 3000 | sed 's/^/# /'; echo; done
}

echo "TAP version 13"
gtlsclient=$(command -v gtlsclient || true)
gtlsserver=$(command -v gtlsserver || true)
[ -x /usr/sbin/gtlsserver ] && gtlsserver=/usr/sbin/gtlsserver
if [ "$(id -u)" != 0 ]; then
  skip "runner cases" "needs root for network namespaces"; echo "1..$n"; exit 0
fi
if [ -z "$gtlsclient" ] || [ -z "$gtlsserver" ]; then
  skip "runner cases" "no gtlsclient/gtlsserver (Debian ngtcp2-client, ngtcp2-server)"; echo "1..$n"; exit 0
fi

# The unsupported cases say so with 127, as the runner expects.
ROLE=server TESTCASE=no-such-case "$endpoint" >/dev/null 2>&1; rc=$?
ROLE=client TESTCASE=handshake REQUESTS=x UVQ_RUNNER_ALPN= "$endpoint" >/dev/null 2>&1; rc2=$?
if [ $rc -eq 127 ] && [ $rc2 -eq 127 ]; then
  ok "unknown cases, and hq-interop cases, exit 127"
else
  not_ok "unknown cases, and hq-interop cases, exit 127" "unknown: $rc, hq-interop: $rc2"
fi

# The files: /www of the runner, and its certificates.
mkdir -p "$tmp/www" "$tmp/certs"
head -c 5000 /dev/urandom >"$tmp/www/small"
head -c 2000000 /dev/urandom >"$tmp/www/large"
for i in $(seq 1 30); do head -c 1000 /dev/urandom >"$tmp/www/m$i"; done
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout "$tmp/certs/priv.key" -out "$tmp/certs/cert.pem" -days 2 \
  -subj /CN=server -addext subjectAltName=DNS:server,IP:10.77.0.2 >/dev/null 2>&1

if ! env_out=$(UVQ_WIRE=$wire_bin "$top/test/wire/wire-netns.sh" up "$prefix" -- \
                 --delay 15 --rate 10 --queue-pkts 25 2>"$tmp/wire.err"); then
  not_ok "wire namespaces" "$(cat "$tmp/wire.err")"; echo "1..$n"; exit 1
fi
eval "$env_out"
port=4433

# The files a case asks for.
files_for() {
  case $1 in
    transfer|http3|chacha20|keyupdate|ecn|v2) echo small large ;;
    multiplexing) seq -f 'm%g' 1 30 | tr '\n' ' ' ;;
    resumption|zerortt) echo small m1 m2 ;;
    handshakeloss|handshakecorruption|multiconnect) echo m1 m2 m3 ;;
    transferloss|transfercorruption|connectionmigration|ipv6|goodput|\
    crosstraffic|blackhole|portrebinding|addressrebinding) echo small large ;;
    *) echo small ;;
  esac
}

# Each downloaded file equals the served one.
check_files() {
  local dir=$1 f bad=""
  shift
  for f in "$@"; do
    cmp -s "$tmp/www/$f" "$dir/$f" || bad="$bad $f"
  done
  [ -z "$bad" ] || { echo "differ or missing:$bad"; return 1; }
}

# What the runner checks, read from the peer's ngtcp2 log.
check_case() {
  local tc=$1 log=$2 role=$3
  case $tc in
    retry)
      # gtlsclient logs the Retry it receives; as the client, uvq's qlog
      # (gtlsserver sends its Retry without logging it).
      if [ "$role" = server ]; then
        grep -q "type=Retry" "$log" || { echo "no Retry packet"; return 1; }
      else
        grep -qh '"packet_type":"retry"' "$tmp/qlog-c-$tc"/* 2>/dev/null ||
          { echo "no Retry packet in the client's qlog"; return 1; }
      fi ;;
    zerortt) grep -Eq "pkt (rx|tx) .*type=0RTT" "$log" || { echo "no 0-RTT packet"; return 1; } ;;
    v2) grep -q "negotiated version is 0x6b3343cf" "$log" || { echo "v2 not negotiated: $(grep -o 'negotiated version is [0-9a-fx]*' "$log" | head -1)"; return 1; } ;;
    keyupdate)
      # The key phase of 1-RTT packets changes (k=0 -> k=1) in both
      # directions.
      local rx tx
      rx=$(grep -E "pkt rx .*type=1RTT k=[01]$" "$log" | grep -o "k=[01]" | uniq | wc -l)
      tx=$(grep -E "pkt tx .*type=1RTT k=[01]$" "$log" | grep -o "k=[01]" | uniq | wc -l)
      [ "$rx" -ge 2 ] && [ "$tx" -ge 2 ] || { echo "key phase changes: rx $rx tx $tx"; return 1; } ;;
    ecn)
      grep -Eq "Received packet: .* ecn=0x[23] " "$log" || { echo "no ECT packet received by the peer"; return 1; } ;;
    connectionmigration)
      # The client moved to the server's preferred address: the peer
      # received (as server) or sent (as client) packets there.
      grep -Eq "(local|remote)=\[$pref4\]" "$log" || { echo "no packet at the preferred address $pref4"; return 1; } ;;
  esac
  return 0
}

# server_case TC ADDR: uvq-h3-server through run_endpoint in namespace B,
# gtlsclient in A fetching from ADDR (server or [v6]).
server_case() {
  local tc=$1 host=$2 spid rc why gopts urls files f
  read -r -a files <<<"$(files_for "$tc")"
  rm -rf "$tmp/dl"; mkdir -p "$tmp/dl" "$tmp/qlog-s"
  ip netns exec "$NS_B" env ROLE=server TESTCASE="$tc" UVQ_RUNNER_ALPN=h3 \
    UVQ_BIN="$build/tools" UVQ_WWW="$tmp/www" UVQ_CERTS="$tmp/certs" \
    UVQ_PORT=$port UVQ_LISTEN=:: QLOGDIR="$tmp/qlog-s" \
    UVQ_PREFERRED_IPV4=$pref4 SSLKEYLOGFILE="$tmp/keys-s.log" \
    "$endpoint" >"$tmp/s-$tc.out" 2>"$tmp/s-$tc.err" &
  spid=$!
  pids+=("$spid")
  for _ in $(seq 50); do grep -q '^listening on' "$tmp/s-$tc.out" && break; sleep 0.1; done
  gopts=(--exit-on-all-streams-close --timeout=180s --download="$tmp/dl")
  case $tc in
    chacha20) gopts+=("--ciphers=NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+CHACHA20-POLY1305") ;;
    keyupdate) gopts+=(--key-update=100ms) ;;
    # Start in v1 and offer v2: the server's preference switches it.
    v2) gopts+=(--available-versions=v1,v2) ;;
  esac
  urls=()
  for f in "${files[@]}"; do urls+=("https://server:$port/$f"); done
  rc=0
  case $tc in
    resumption|zerortt)
      rm -f "$tmp/sess" "$tmp/tp"
      ip netns exec "$NS_A" "$gtlsclient" "${gopts[@]}" --session-file="$tmp/sess" \
        --tp-file="$tmp/tp" "$host" $port "${urls[0]}" >"$tmp/c1-$tc.log" 2>&1 || rc=$?
      ip netns exec "$NS_A" "$gtlsclient" "${gopts[@]}" --session-file="$tmp/sess" \
        --tp-file="$tmp/tp" "$host" $port "${urls[@]:1}" >"$tmp/c-$tc.log" 2>&1 || rc=$?
      ;;
    handshakeloss|handshakecorruption|multiconnect)
      : >"$tmp/c-$tc.log"
      for f in "${urls[@]}"; do
        ip netns exec "$NS_A" "$gtlsclient" "${gopts[@]}" "$host" $port "$f" \
          >>"$tmp/c-$tc.log" 2>&1 || rc=$?
      done
      ;;
    *)
      ip netns exec "$NS_A" "$gtlsclient" "${gopts[@]}" "$host" $port "${urls[@]}" \
        >"$tmp/c-$tc.log" 2>&1 || rc=$?
      ;;
  esac
  kill -TERM "$spid" 2>/dev/null; sleep 0.2; kill -TERM "$spid" 2>/dev/null; wait "$spid" 2>/dev/null
  why=$(check_files "$tmp/dl" "${files[@]}") && why=$(check_case "$tc" "$tmp/c-$tc.log" server)
  if [ $rc -eq 0 ] && [ -z "$why" ]; then
    ok "server, $tc: gtlsclient got every file"
  else
    not_ok "server, $tc" "gtlsclient rc=$rc; $why" "$(tail -n 5 "$tmp/c-$tc.log")" "$(tail -n 5 "$tmp/s-$tc.err")"
  fi
}

# client_case TC ADDR: gtlsserver in namespace B on ADDR, uvq-h3-client
# through run_endpoint in A.
client_case() {
  local tc=$1 host=$2 url_host spid rc why sopts urls files f
  read -r -a files <<<"$(files_for "$tc")"
  rm -rf "$tmp/dl"
  sopts=(-d "$tmp/www")
  case $tc in
    retry) sopts+=(-V) ;;
    v2) sopts+=(--preferred-versions=v2,v1) ;;
    connectionmigration) sopts+=(--preferred-ipv4-addr="$pref4:$((port + 1))") ;;
    handshakeloss|handshakecorruption) sopts+=(--timeout=180s) ;;
  esac
  ip netns exec "$NS_B" "$gtlsserver" "${sopts[@]}" "$host" $port \
    "$tmp/certs/priv.key" "$tmp/certs/cert.pem" >"$tmp/g-$tc.log" 2>&1 &
  spid=$!
  pids+=("$spid")
  sleep 0.3
  url_host=$host
  case $host in *:*) url_host="[$host]" ;; esac
  urls=()
  for f in "${files[@]}"; do urls+=("https://$url_host:$port/$f"); done
  ip netns exec "$NS_A" env ROLE=client TESTCASE="$tc" UVQ_RUNNER_ALPN=h3 \
    UVQ_BIN="$build/tools" UVQ_DOWNLOADS="$tmp/dl" UVQ_CERTS="$tmp/certs" \
    QLOGDIR="$tmp/qlog-c-$tc" SSLKEYLOGFILE="$tmp/keys-c.log" REQUESTS="${urls[*]}" \
    timeout 200 "$endpoint" >"$tmp/e-$tc.out" 2>"$tmp/e-$tc.err"
  rc=$?
  kill -TERM "$spid" 2>/dev/null; wait "$spid" 2>/dev/null
  why=$(check_files "$tmp/dl" "${files[@]}") && why=$(check_case "$tc" "$tmp/g-$tc.log" client)
  case $tc in
    resumption|zerortt)
      [ -n "$why" ] || [ "$(grep -c 'negotiated version' "$tmp/g-$tc.log")" -ge 2 ] ||
        why="not two connections" ;;
  esac
  if [ $rc -eq 0 ] && [ -z "$why" ]; then
    ok "client, $tc: every file from gtlsserver"
  else
    not_ok "client, $tc" "run_endpoint rc=$rc; $why" "$(tail -n 5 "$tmp/e-$tc.err")" "$(tail -n 3 "$tmp/g-$tc.log")"
  fi
}

# both TC [ADDR]: the case in each role.
both() {
  server_case "$1" "${2:-$ADDR_B4}"
  client_case "$1" "${2:-$ADDR_B4}"
}

# The server's second address on the link, its preferred one.
pref4=10.77.0.3
ip -n "$NS_B" addr add $pref4/24 dev b0

# The runner's plain link.
for tc in handshake transfer multiplexing chacha20 retry resumption zerortt \
          http3 keyupdate v2 ecn multiconnect connectionmigration; do
  both "$tc"
done
both ipv6 "$ADDR_B6"

# The cases with a link of their own (the runner's values, rounded: a long
# RTT; random loss; bit flips in the UDP payload with the checksum fixed,
# so that only the AEAD can tell). handshakeloss caps the losses in a row
# per flow at 3, as tools/test-tools-peers.sh explains: with independent
# drops about one handshake in 10,000 backs off past the idle timeout.
wire() {
  UVQ_WIRE=$wire_bin "$top/test/wire/wire-netns.sh" wire "$prefix" -- \
    --rate 10 --queue-pkts 25 "$@"
}
wire --delay 375; both longrtt
wire --delay 15 --loss 30 --loss-burst 3 --seed 7; both handshakeloss
wire --delay 15 --loss 2 --seed 8; both transferloss
wire --delay 15 --corrupt 30 --seed 9; both handshakecorruption
wire --delay 15 --corrupt 2 --seed 10; both transfercorruption

# The remaining cases the script supports differ from transfer only in the
# runner's network (a link that goes dark, the rebinding NAT, cross
# traffic) or in what it measures; here they run over the plain link, to
# show the script plays them. The C tests cover the mechanisms themselves
# (quic_nat_rebinding, the amplification limit, blackhole recovery).
wire --delay 15
for tc in blackhole amplificationlimit portrebinding addressrebinding \
          goodput crosstraffic; do
  both "$tc"
done

echo "1..$n"
if [ $failed -eq 0 ]; then echo "# all passed"; else echo "# $failed failed"; fi
[ $failed -eq 0 ]
