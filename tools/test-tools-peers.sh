#!/usr/bin/env bash
# Tests of uvq-h3-client's interop-runner features against real servers:
# session resumption and 0-RTT, key updates, QUIC v2, buffered writes to
# files (against uvq-h3-server on 127.0.0.1 and ngtcp2's gtlsserver), and
# the runner's handshakeloss case through the wire emulator between network
# namespaces. TAP output; exit status 0 only if every test passed. Tests
# whose peer or privilege is missing are skipped, with the reason.
#
#   bash tools/test-tools-peers.sh TOOLS_DIR WIRE_BINARY
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$top/build/demo/tools}
wire_bin=${2:-$top/build/demo/test/wire/uvq-wire}
server=$bin/uvq-h3-server
client=$bin/uvq-h3-client
for b in "$server" "$client"; do
  if [ ! -x "$b" ]; then
    echo "Bail out! $b not built"
    exit 1
  fi
done
gtlsserver=
for g in /usr/sbin/gtlsserver /usr/bin/gtlsserver /usr/local/bin/gtlsserver; do
  if [ -x "$g" ]; then gtlsserver=$g; break; fi
done

# The distribution's interpreter: a per-user shim first on PATH can take
# a second per start on a busy machine, and the checks start it often.
py=/usr/bin/python3
[ -x "$py" ] || py=python3

tmp=$(mktemp -d)
pids=()
wire_prefix=
cleanup() {
  local p
  for p in "${pids[@]}"; do
    kill -TERM "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  if [ -n "$wire_prefix" ]; then
    UVQ_WIRE=$wire_bin "$top/test/wire/wire-netns.sh" down "$wire_prefix" >/dev/null 2>&1
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }
not_ok() {
  n=$((n + 1))
  echo "not ok $n - $1"
  shift
  local line
  for line in "$@"; do echo "#   $line"; done
  failed=$((failed + 1))
}
check() {
  local name=$1 cond=$2
  shift 2
  if eval "$cond"; then ok "$name"; else not_ok "$name" "$@"; fi
}

# Runs the client; leaves its exit status, stdout and stderr in rc, out
# (also in $tmp/out) and err.
run_client() {
  "$client" "$@" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  out=$(cat "$tmp/out")
  err=$(cat "$tmp/err")
}

# json EXPR: evaluates a Python expression over the client's last --json
# output (r); exit status 0 if it holds.
json() {
  "$py" - "$tmp/out" "$1" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
sys.exit(0 if eval(sys.argv[2]) else 1)
PY
}

# Starts uvq-h3-server on 127.0.0.1 (unless --listen says otherwise) with
# the given options; sets spid, slog and port (from its "listening on ADDR
# PORT" line).
start_uvq_server() {
  local log=$tmp/server.$n.log i
  "$server" --cert "$tmp/cert.pem" --key "$tmp/key.pem" --root "$tmp/www" \
    --port 0 --quiet "$@" >"$log" 2>&1 &
  spid=$!
  pids+=("$spid")
  slog=$log
  port=
  for i in $(seq 50); do
    port=$(awk '/^listening on/ { print $4; exit }' "$log")
    [ -n "$port" ] && return 0
    kill -0 "$spid" 2>/dev/null || break
    sleep 0.1
  done
  return 1
}

# A free UDP port on 127.0.0.1 for gtlsserver, which cannot bind port 0
# and say which it got.
free_port() {
  "$py" -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_gtlsserver() {
  local log=$tmp/gtls.$n.log
  port=$(free_port)
  "$gtlsserver" -d "$tmp/www" "$@" 127.0.0.1 "$port" "$tmp/key.pem" \
    "$tmp/cert.pem" >"$log" 2>&1 &
  spid=$!
  pids+=("$spid")
  slog=$log
  sleep 0.3
  kill -0 "$spid" 2>/dev/null
}

stop_server() {
  kill -TERM "$spid" 2>/dev/null
  wait "$spid" 2>/dev/null
}

echo "TAP version 13"

mkdir -p "$tmp/www"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout "$tmp/key.pem" -out "$tmp/cert.pem" -days 2 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost,IP:127.0.0.1,IP:10.77.0.2,IP:fd00:77::2 2>/dev/null
# 20 MiB and 17 bytes: not a whole number of write buffers (1 MiB).
head -c 20971537 /dev/urandom >"$tmp/www/big.bin"
big_sha=$(sha256sum "$tmp/www/big.bin" | cut -d' ' -f1)
head -c 1024 /dev/urandom >"$tmp/www/1k.bin"
head -c 1048576 /dev/urandom >"$tmp/www/1m.bin"
m1_sha=$(sha256sum "$tmp/www/1m.bin" | cut -d' ' -f1)

# ---- command lines ---------------------------------------------------------

run_client --quic-version v3 https://127.0.0.1:1/
check "client: unknown --quic-version exits 2" '[ $rc -eq 2 ] && [[ $err == *--quic-version* ]]' "rc=$rc" "$err"
run_client --preferred-versions v1,v1 https://127.0.0.1:1/
check "client: a version twice in --preferred-versions exits 2" '[ $rc -eq 2 ]' "rc=$rc" "$err"
run_client --key-update 0 https://127.0.0.1:1/
check "client: --key-update 0 exits 2" '[ $rc -eq 2 ] && [[ $err == *--key-update* ]]' "rc=$rc" "$err"
run_client --handshake-timeout soon https://127.0.0.1:1/
check "client: bad --handshake-timeout exits 2" '[ $rc -eq 2 ]' "rc=$rc" "$err"
"$server" --cert x --key y --preferred-versions v2,draft29 >/dev/null 2>"$tmp/err"; rc=$?
check "server: bad --preferred-versions exits 2" '[ $rc -eq 2 ]' "rc=$rc"

# ---- against uvq-h3-server ---------------------------------------------------

if ! start_uvq_server; then
  echo "Bail out! uvq-h3-server did not start: $(cat "$slog")"
  exit 1
fi
base=https://127.0.0.1:$port

# -o: one write() per MiB of body, not one per frame. The tool counts its
# own writes (JSON "writes"); strace -P counts every write-type system call
# the process makes on the file.
run_client --cacert "$tmp/cert.pem" --json -o "$tmp/big.out" "$base/big.bin"
check "-o: the file's SHA-256 matches" \
  '[ $rc -eq 0 ] && [ "$(sha256sum "$tmp/big.out" | cut -d" " -f1)" = "$big_sha" ]' "rc=$rc" "$err"
check "-o: 21 writes for 20 MiB + 17 bytes (tool's count)" \
  'json "r[\"fetches\"][0][\"writes\"] == 21"' "$out"
if command -v strace >/dev/null; then
  rm -f "$tmp/big.out"
  # LeakSanitizer (sanitizer builds) cannot run under ptrace.
  ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 \
    strace -f -qq -o "$tmp/strace" -P "$tmp/big.out" \
      -e trace=write,writev,pwrite64,pwritev,pwritev2 \
      "$client" --cacert "$tmp/cert.pem" -o "$tmp/big.out" "$base/big.bin" 2>"$tmp/err"
  rc=$?
  writes=$(grep -cE '^[0-9]+ +(write|writev|pwrite64|pwritev2?)\(' "$tmp/strace")
  check "-o: 21 write system calls in all (strace)" \
    '[ $rc -eq 0 ] && [ "$writes" -eq 21 ] && cmp -s "$tmp/big.out" "$tmp/www/big.bin"' \
    "rc=$rc" "writes=$writes" "$(head -5 "$tmp/strace")"
else
  skip "-o: 21 write system calls in all (strace)" "strace not installed"
fi

# Resumption and 0-RTT: the first run saves a ticket, the second resumes
# with it and sends its request as early data, which the server takes.
rm -f "$tmp/uvq.session"
run_client --cacert "$tmp/cert.pem" --json --sha256 --session-file "$tmp/uvq.session" "$base/1k.bin"
check "uvq server: first run is a full handshake and saves a ticket" \
  '[ $rc -eq 0 ] && json "r[\"session\"] == {\"file\": \"$tmp/uvq.session\", \"ticket_loaded\": False, \"resumed\": False, \"zero_rtt\": \"none\", \"early_requests\": 0, \"ticket_saved\": True}" && [ -s "$tmp/uvq.session" ] && [ "$(stat -c %a "$tmp/uvq.session")" = 600 ]' \
  "rc=$rc" "$out" "$err"
run_client --cacert "$tmp/cert.pem" --json --sha256 --session-file "$tmp/uvq.session" "$base/1k.bin"
check "uvq server: second run resumes, 0-RTT accepted, the request went early" \
  '[ $rc -eq 0 ] && json "r[\"session\"][\"resumed\"] and r[\"session\"][\"zero_rtt\"] == \"accepted\" and r[\"session\"][\"early_requests\"] == 1 and r[\"fetches\"][0][\"early\"] and r[\"fetches\"][0][\"ok\"] and r[\"quic\"][\"resumed\"] == 1 and r[\"quic\"][\"zero_rtt\"] == 2"' \
  "rc=$rc" "$out" "$err"
run_client --cacert "$tmp/cert.pem" --session-file "$tmp/uvq.session" -o "$tmp/1k.out" "$base/1k.bin"
check "uvq server: text output says resumed and 0-RTT accepted" \
  '[ $rc -eq 0 ] && [[ $err == *"session: resumed, 0-RTT accepted, 1 request(s) as early data, ticket saved"* ]] && cmp -s "$tmp/1k.out" "$tmp/www/1k.bin"' \
  "rc=$rc" "$err"
sed "s/^server .*/server 127.0.0.1:1/" "$tmp/uvq.session" >"$tmp/other.session"
run_client --cacert "$tmp/cert.pem" --json --session-file "$tmp/other.session" "$base/1k.bin"
check "uvq server: a ticket for another server is not used" \
  '[ $rc -eq 0 ] && [[ $err == *"ticket for another server"* ]] && json "not r[\"session\"][\"ticket_loaded\"] and not r[\"session\"][\"resumed\"]"' \
  "rc=$rc" "$out" "$err"

# A restarted server has new ticket keys: it cannot resume the session and
# refuses the early data, which the client then sends again (same port,
# so that the session file's server matches).
rport=$(free_port)
if start_uvq_server --port "$rport"; then
  rm -f "$tmp/restart.session"
  run_client --cacert "$tmp/cert.pem" --json --session-file "$tmp/restart.session" "https://127.0.0.1:$rport/1m.bin"
  stop_server
  if [ $rc -eq 0 ] && start_uvq_server --port "$rport"; then
    run_client --cacert "$tmp/cert.pem" --json --sha256 --session-file "$tmp/restart.session" "https://127.0.0.1:$rport/1m.bin"
    check "restarted uvq server: 0-RTT rejected, the request sent again and answered" \
      '[ $rc -eq 0 ] && json "r[\"session\"][\"ticket_loaded\"] and not r[\"session\"][\"resumed\"] and r[\"session\"][\"zero_rtt\"] == \"rejected\" and r[\"session\"][\"early_requests\"] == 1 and r[\"fetches\"][0][\"sha256\"] == \"$m1_sha\""' \
      "rc=$rc" "$out" "$err"
    stop_server
  else
    not_ok "restarted uvq server: 0-RTT rejected, the request sent again and answered" "rc=$rc" "$err"
  fi
else
  not_ok "uvq server on port $rport starts" "$(cat "$slog")"
fi

# Key updates. After the client's first update every packet it sends is
# in the new keys: the server can only answer the second and third
# requests, sent after it (the first update comes after 1 MiB of the first
# 20 MiB body, as -v shows), if it followed. ngtcp2 starts a further update
# only once the server acknowledged a packet in the new keys and three PTOs
# passed (RFC 9001, 6.1), which a download alone rarely allows: how many
# more follow depends on timing, and is not asserted.
run_client --cacert "$tmp/cert.pem" --json --sha256 -v --key-update 1M --repeat 3 "$base/big.bin"
first_update=$(sed -n 's/^uvq-h3-client: key update 1 after \([0-9]*\) bytes$/\1/p' "$tmp/err")
check "uvq server: --key-update 1M, 3 x 20 MiB: updated during the first body, all intact" \
  '[ $rc -eq 0 ] && [ -n "$first_update" ] && [ "$first_update" -lt 20971537 ] && json "r[\"key_updates\"] >= 1 and r[\"completed\"] == 3 and all(f[\"sha256\"] == \"$big_sha\" for f in r[\"fetches\"])"' \
  "rc=$rc" "first update after ${first_update:-?} bytes" "$(head -c 300 "$tmp/out")" "$err"
run_client --cacert "$tmp/cert.pem" --json --key-update 0.001s "$base/big.bin"
check "uvq server: --key-update in seconds updates keys" \
  '[ $rc -eq 0 ] && json "r[\"key_updates\"] >= 1"' "rc=$rc" "$err"
stop_server

# Versions (RFC 9368): a server that prefers v2 switches a client that
# starts in v1; one that prefers v1 switches a client that starts in v2.
if start_uvq_server --preferred-versions v2,v1; then
  run_client --cacert "$tmp/cert.pem" --json "https://127.0.0.1:$port/1k.bin"
  check "uvq server preferring v2: a v1 client ends on v2" \
    '[ $rc -eq 0 ] && json "r[\"quic\"][\"version\"] == \"0x6b3343cf\""' "rc=$rc" "$err"
  run_client --cacert "$tmp/cert.pem" --json --quic-version v2 "https://127.0.0.1:$port/1k.bin"
  check "uvq server preferring v2: a client starting in v2 stays on v2" \
    '[ $rc -eq 0 ] && json "r[\"quic\"][\"version\"] == \"0x6b3343cf\""' "rc=$rc" "$err"
  # A ticket from a v2 connection: the next one starts in v2, so its
  # 0-RTT packets are in the version the server keeps.
  rm -f "$tmp/v2.session"
  run_client --cacert "$tmp/cert.pem" --json --session-file "$tmp/v2.session" "https://127.0.0.1:$port/1k.bin"
  run_client --cacert "$tmp/cert.pem" --json --session-file "$tmp/v2.session" "https://127.0.0.1:$port/1k.bin"
  check "uvq server preferring v2: resumption with 0-RTT in v2" \
    '[ $rc -eq 0 ] && grep -q "^version 0x6b3343cf$" "$tmp/v2.session" && json "r[\"quic\"][\"version\"] == \"0x6b3343cf\" and r[\"session\"][\"zero_rtt\"] == \"accepted\""' \
    "rc=$rc" "$out" "$err"
  stop_server
else
  not_ok "uvq server --preferred-versions v2,v1 starts" "$(cat "$slog")"
fi
if start_uvq_server --quic-version v1; then
  run_client --cacert "$tmp/cert.pem" --json --quic-version v2 "https://127.0.0.1:$port/1k.bin"
  check "uvq server preferring v1: a client starting in v2 ends on v1" \
    '[ $rc -eq 0 ] && json "r[\"quic\"][\"version\"] == \"0x00000001\""' "rc=$rc" "$err"
  stop_server
else
  not_ok "uvq server --quic-version v1 starts" "$(cat "$slog")"
fi

# Server preferred address (RFC 9000, 9.6): the server listens on every
# address and prefers 127.0.0.2, another loopback address, on its port.
if start_uvq_server --listen 0.0.0.0 --preferred-ipv4-addr 127.0.0.2; then
  run_client --cacert "$tmp/cert.pem" --json --sha256 "https://127.0.0.1:$port/big.bin"
  check "uvq server with a preferred address: the client moves there, body intact" \
    '[ $rc -eq 0 ] && json "r[\"quic\"][\"remote\"] == \"127.0.0.2:$port\" and r[\"fetches\"][0][\"sha256\"] == \"$big_sha\""' \
    "rc=$rc" "$(grep -o '"remote[^,]*' "$tmp/out")" "$err"
  gtlsclient=$(command -v gtlsclient || true)
  if [ -n "$gtlsclient" ]; then
    # ngtcp2's client says which path it validated and where it went.
    mkdir -p "$tmp/gdl"
    timeout 30 "$gtlsclient" --exit-on-all-streams-close --download "$tmp/gdl" \
      127.0.0.1 "$port" "https://127.0.0.1:$port/1m.bin" \
      >"$tmp/gtlsclient.log" 2>&1
    rc=$?
    check "gtlsclient follows uvq-h3-server's preferred address" \
      '[ $rc -eq 0 ] && grep -q "^Path validation against path {local:\[127.0.0.1\]:[0-9]*, remote:\[127.0.0.2\]:$port} succeeded" "$tmp/gtlsclient.log" && [ "$(sha256sum "$tmp/gdl/1m.bin" | cut -d" " -f1)" = "$m1_sha" ]' \
      "rc=$rc" "$(grep -E "preferred|Path validation" "$tmp/gtlsclient.log" | head -5)"
  else
    skip "gtlsclient follows uvq-h3-server's preferred address" "no gtlsclient (Debian package ngtcp2-client)"
  fi
  stop_server
else
  not_ok "uvq server with --preferred-ipv4-addr starts" "$(cat "$slog")"
fi

# ---- against ngtcp2's gtlsserver -----------------------------------------------

gtls_tests=("gtlsserver: resumption and 0-RTT" "gtlsserver: key update seen by the server"
            "gtlsserver preferring v2: a v1 client ends on v2" "gtlsserver: a client starting in v2 stays on v2"
            "gtlsserver's preferred address: the client moves there"
            "gtlsserver: key update in QUIC v2 seen by the server")
if [ -z "$gtlsserver" ]; then
  for t in "${gtls_tests[@]}"; do skip "$t" "no gtlsserver (Debian package ngtcp2-server)"; done
else
  if start_gtlsserver -q; then
    rm -f "$tmp/gtls.session"
    run_client --cacert "$tmp/cert.pem" --json --session-file "$tmp/gtls.session" "https://127.0.0.1:$port/1k.bin"
    first_ok=$rc
    run_client --cacert "$tmp/cert.pem" --json --sha256 --session-file "$tmp/gtls.session" "https://127.0.0.1:$port/1k.bin"
    check "${gtls_tests[0]}" \
      '[ $first_ok -eq 0 ] && [ $rc -eq 0 ] && json "r[\"session\"][\"ticket_loaded\"] and r[\"session\"][\"resumed\"] and r[\"session\"][\"zero_rtt\"] == \"accepted\" and r[\"session\"][\"early_requests\"] == 1 and r[\"fetches\"][0][\"ok\"]"' \
      "first rc=$first_ok rc=$rc" "$out" "$err"
    stop_server
  else
    not_ok "gtlsserver starts" "$(cat "$slog")"
  fi
  # gtlsserver's log has a line per 1-RTT packet it receives and sends,
  # with its key phase bit (k=0 or k=1), as the interop runner reads them
  # from a decrypted capture. One connection on loopback (no reordering):
  # the server must see each of the client's updates as one flip of the
  # received bit, and every packet it sends after seeing a flip must use the
  # new phase (RFC 9001, 6.2). So its sent bit flips once per update, except
  # that an update the client starts at the end of the body can be followed
  # by no server packet at all (its last data was already in flight and the
  # client's ACKs do not elicit any): that one shows only on the receive
  # side.
  # gtls_key_update NAME VERSION [server options -- client options]
  gtls_key_update() {
    local name=$1 version=$2 sopts=() copts=()
    shift 2
    while [ $# -gt 0 ] && [ "$1" != -- ]; do sopts+=("$1"); shift; done
    [ $# -gt 0 ] && shift
    copts=("$@")
    if ! start_gtlsserver "${sopts[@]}"; then
      not_ok "$name" "gtlsserver did not start: $(cat "$slog")"
      return
    fi
    run_client --cacert "$tmp/cert.pem" --json --sha256 --key-update 1M "${copts[@]}" "https://127.0.0.1:$port/big.bin"
    stop_server
    read -r rx_flips tx_flips stale tx_after < <("$py" -c '
import re, sys
pat = re.compile(r" pkt (rx|tx) .*type=1RTT k=([01])$")
rx = tx = None
rx_flips = tx_flips = stale = tx_after = 0
for line in open(sys.argv[1]):
    m = pat.search(line.rstrip("\n"))
    if not m:
        continue
    k = int(m.group(2))
    if m.group(1) == "rx":
        if rx is not None and k != rx:
            rx_flips += 1
            tx_after = 0
        rx = k
    else:
        if tx is not None and k != tx:
            tx_flips += 1
        tx = k
        tx_after += 1
        if rx is not None and k != rx:
            stale += 1
print(rx_flips, tx_flips, stale, tx_after)' "$slog")
    check "$name" \
      '[ $rc -eq 0 ] && json "r[\"key_updates\"] >= 1 and r[\"key_updates\"] == $rx_flips and r[\"fetches\"][0][\"sha256\"] == \"$big_sha\" and r[\"quic\"][\"version\"] == \"$version\"" && [ "$stale" -eq 0 ] && { [ "$tx_flips" -eq "$rx_flips" ] || { [ "$tx_flips" -eq $((rx_flips - 1)) ] && [ "$tx_after" -eq 0 ]; }; }' \
      "rc=$rc" "key phase flips: server rx $rx_flips, tx $tx_flips; sent in an old phase after a flip: $stale; sent after the last flip: $tx_after" \
      "$(grep -o '"key_updates[^,]*' "$tmp/out")" "$(grep -o '"version[^,]*' "$tmp/out")" "$err"
  }
  gtls_key_update "${gtls_tests[1]}" 0x00000001
  # The same in QUIC version 2, whose key update derives with its own
  # labels (RFC 9369, 3.3.2).
  gtls_key_update "${gtls_tests[5]}" 0x6b3343cf --preferred-versions v2,v1 -- --quic-version v2
  if start_gtlsserver -q --preferred-versions v2,v1; then
    run_client --cacert "$tmp/cert.pem" --json "https://127.0.0.1:$port/1k.bin"
    check "${gtls_tests[2]}" '[ $rc -eq 0 ] && json "r[\"quic\"][\"version\"] == \"0x6b3343cf\""' "rc=$rc" "$err"
    stop_server
  else
    not_ok "gtlsserver --preferred-versions starts" "$(cat "$slog")"
  fi
  if start_gtlsserver -q; then
    run_client --cacert "$tmp/cert.pem" --json --quic-version v2 "https://127.0.0.1:$port/1k.bin"
    check "${gtls_tests[3]}" '[ $rc -eq 0 ] && json "r[\"quic\"][\"version\"] == \"0x6b3343cf\""' "rc=$rc" "$err"
    stop_server
  else
    not_ok "gtlsserver starts" "$(cat "$slog")"
  fi
  # gtlsserver listens on its preferred address itself (same port here).
  gport=$(free_port)
  if start_gtlsserver -q --preferred-ipv4-addr="127.0.0.2:$gport"; then
    run_client --cacert "$tmp/cert.pem" --json --sha256 "https://127.0.0.1:$port/1m.bin"
    check "${gtls_tests[4]}" \
      '[ $rc -eq 0 ] && json "r[\"quic\"][\"remote\"] == \"127.0.0.2:$gport\" and r[\"fetches\"][0][\"sha256\"] == \"$m1_sha\""' \
      "rc=$rc" "$(grep -o '"remote[^,]*' "$tmp/out")" "$err"
    stop_server
  else
    not_ok "gtlsserver --preferred-ipv4-addr starts" "$(cat "$slog")"
  fi
fi

# ---- through the wire emulator ------------------------------------------------

# Starts uvq-h3-server in namespace B with the given options; sets hl_pid
# and port.
start_ns_server() {
  ip netns exec "$NS_B" "$server" --cert "$tmp/cert.pem" --key "$tmp/key.pem" \
    --root "$tmp/www" --port 0 --quiet "$@" >"$tmp/ns-server.log" 2>&1 &
  pids+=("$!")
  hl_pid=$!
  port=
  for _ in $(seq 50); do
    port=$(awk '/^listening on/ { print $4; exit }' "$tmp/ns-server.log")
    [ -n "$port" ] && return 0
    sleep 0.1
  done
  return 1
}

# Two signals: uvq-h3-server's graceful stop would wait for connections
# whose client's CONNECTION_CLOSE the lossy wire dropped, up to their idle
# timeout; the second signal closes at once.
stop_ns_server() {
  kill -TERM "$hl_pid" 2>/dev/null
  sleep 0.2
  kill -TERM "$hl_pid" 2>/dev/null
  wait "$hl_pid" 2>/dev/null
}

# The client fetches 1 MiB in namespace A; checks it ended at WANT_REMOTE.
ns_migration() {
  local name=$1 url=$2 want=$3
  # --sni: uvq's certificate check refuses an IPv6 address literal even
  # when the certificate lists it (the same happens with [::1] and
  # IP:::1); the name check is not what this test is about.
  ip netns exec "$NS_A" "$client" --cacert "$tmp/cert.pem" --sni localhost --json --sha256 "$url" \
    >"$tmp/out" 2>"$tmp/err"
  rc=$?
  check "$name" \
    '[ $rc -eq 0 ] && json "r[\"quic\"][\"remote\"] == \"$want\" and r[\"fetches\"][0][\"sha256\"] == \"$m1_sha\""' \
    "rc=$rc" "$(grep -o '"remote[^,]*' "$tmp/out")" "$(cat "$tmp/err")"
}

# The interop runner's handshakeloss: 50 connections, each fetching a 1 KiB
# file, over its drop-rate scenario (15 ms one way, 10 Mbit/s, a 25-packet
# queue, 30 % of the packets dropped each way, each independently). The
# runner allows 300 s and its clients connect one after the other; here ten
# clients run at a time so that the case fits in about half a minute. Every
# one must succeed.
#
# One change to the scenario: no flow loses more than 3 packets in a row
# in one direction (uvq-wire --loss-burst 3). With independent drops, each
# round of the handshake (the client's Initial, then the server's first
# flight) fails about one time in three, and the retransmissions back off
# (1, 2, 4, 8, ... s apart), so a handshake takes 2^k - 1 seconds after k
# failed rounds: measured over 1,050 connections, 1.4 % took 15 s or more
# against uvq-h3-server and 1.2 % against gtlsserver, and about one in
# 10,000 needs 8 failed rounds (255 s), past the 180 s the clients wait.
# With three runs of this case per test command (the linux, portable and
# sanitize configurations) that failed a few percent of test runs, for
# both servers alike. With the cap, the slowest of 600 connections (twelve
# runs: eleven against uvq-h3-server, one against gtlsserver) took 8 s,
# and the case still drops 30 % of the packets.
#
# Both sides wait 180 s without a packet before giving up, as ngtcp2's
# interop endpoint sets its client and server for this case.
handshakeloss() {
  local name=$1 url=$2 ok_count t0 secs
  rm -f "$tmp"/hl.*
  t0=$(date +%s.%N)
  seq 50 | xargs -P 10 -I{} sh -c \
    'ip netns exec "$0" "$1" --cacert "$2" --json --idle-timeout 180 "$3" >"$4/hl.{}.json" 2>"$4/hl.{}.err"; echo $? >"$4/hl.{}.rc"' \
    "$NS_A" "$client" "$tmp/cert.pem" "$url" "$tmp"
  ok_count=$(cat "$tmp"/hl.*.rc | grep -cx 0)
  secs=$("$py" -c "import time; print(round(time.time() - $t0, 1))")
  echo "# handshakeloss against $name: $ok_count of 50 in $secs s; slowest handshakes (ms): $("$py" -c '
import glob, json, sys
hs = []
for f in glob.glob(sys.argv[1] + "/hl.*.json"):
    try:
        hs.append(json.load(open(f))["handshake_ms"] or 0)
    except ValueError:
        pass
print(" ".join("%.0f" % h for h in sorted(hs)[-5:]))' "$tmp")"
  stats=$(UVQ_WIRE=$wire_bin "$top/test/wire/wire-netns.sh" stats "$wire_prefix")
  check "handshakeloss against $name: 50 of 50 handshakes and fetches" \
    '[ "$ok_count" -eq 50 ] && "$py" -c "import json,sys; s = json.loads(sys.argv[1]); sys.exit(0 if s[\"ab\"][\"dropped_loss\"] > 0 and s[\"ba\"][\"dropped_loss\"] > 0 else 1)" "$stats"' \
    "completed $ok_count of 50" "wire: $stats" "$(cat "$tmp"/hl.*.err | sort | uniq -c | head -5)"
}

wire_tests=("preferred address through the wire: IPv4, uvq-h3-server"
            "preferred address through the wire: IPv6, uvq-h3-server"
            "preferred address through the wire: IPv4, gtlsserver"
            "handshakeloss against uvq-h3-server" "handshakeloss against gtlsserver")
if [ "$(id -u)" != 0 ]; then
  for t in "${wire_tests[@]}"; do skip "$t" "needs root for network namespaces"; done
elif [ ! -x "$wire_bin" ]; then
  for t in "${wire_tests[@]}"; do skip "$t" "uvq-wire not built ($wire_bin)"; done
else
  wire_prefix=uvqpt-$$
  # First the runner's plain link (its simple-p2p scenario: 15 ms one way,
  # 10 Mbit/s, 25-packet queue) for the preferred-address cases.
  if env_out=$(UVQ_WIRE=$wire_bin "$top/test/wire/wire-netns.sh" up "$wire_prefix" -- \
                 --delay 15 --rate 10 --queue-pkts 25 2>"$tmp/wire.err"); then
    eval "$env_out"
    # The server's second address on the same link: its preferred one.
    ip -n "$NS_B" addr add 10.77.0.3/24 dev b0
    ip -n "$NS_B" addr add fd00:77::3/64 dev b0 nodad
    if start_ns_server --listen 0.0.0.0 --preferred-ipv4-addr 10.77.0.3; then
      ns_migration "${wire_tests[0]}" "https://$ADDR_B4:$port/1m.bin" "10.77.0.3:$port"
      stop_ns_server
    else
      not_ok "${wire_tests[0]}" "server did not start: $(cat "$tmp/ns-server.log")"
    fi
    if start_ns_server --listen :: --preferred-ipv6-addr fd00:77::3; then
      ns_migration "${wire_tests[1]}" "https://[$ADDR_B6]:$port/1m.bin" "[fd00:77::3]:$port"
      stop_ns_server
    else
      not_ok "${wire_tests[1]}" "server did not start: $(cat "$tmp/ns-server.log")"
    fi
    if [ -n "$gtlsserver" ]; then
      # Fixed ports are safe here: the namespace is this test's alone.
      ip netns exec "$NS_B" "$gtlsserver" -q -d "$tmp/www" \
        --preferred-ipv4-addr=10.77.0.3:4434 "$ADDR_B4" 4433 \
        "$tmp/key.pem" "$tmp/cert.pem" >"$tmp/ns-gtls.log" 2>&1 &
      pids+=("$!")
      hl_pid=$!
      sleep 0.3
      ns_migration "${wire_tests[2]}" "https://$ADDR_B4:4433/1m.bin" "10.77.0.3:4434"
      stop_ns_server
    else
      skip "${wire_tests[2]}" "no gtlsserver (Debian package ngtcp2-server)"
    fi

    # Then the runner's drop-rate scenario for handshakeloss.
    UVQ_WIRE=$wire_bin "$top/test/wire/wire-netns.sh" wire "$wire_prefix" -- \
      --delay 15 --rate 10 --queue-pkts 25 --loss 30 --loss-burst 3 --seed 14
    if start_ns_server --listen "$ADDR_B4" --idle-timeout 180; then
      handshakeloss uvq-h3-server "https://$ADDR_B4:$port/1k.bin"
      stop_ns_server
    else
      not_ok "${wire_tests[3]}" "server did not start: $(cat "$tmp/ns-server.log")"
    fi
    if [ -n "$gtlsserver" ]; then
      ip netns exec "$NS_B" "$gtlsserver" -q --timeout=180s -d "$tmp/www" "$ADDR_B4" 4433 \
        "$tmp/key.pem" "$tmp/cert.pem" >"$tmp/hl-gtls.log" 2>&1 &
      pids+=("$!")
      hl_pid=$!
      sleep 0.3
      handshakeloss gtlsserver "https://$ADDR_B4:4433/1k.bin"
      stop_ns_server
    else
      skip "${wire_tests[4]}" "no gtlsserver (Debian package ngtcp2-server)"
    fi
  else
    for t in "${wire_tests[@]}"; do not_ok "$t" "wire namespaces: $(cat "$tmp/wire.err")"; done
  fi
fi

echo "1..$n"
if [ $failed -eq 0 ]; then echo "# all passed"; else echo "# $failed failed"; fi
[ $failed -eq 0 ]
