#!/usr/bin/env bash
# Tests for uvq-h3-server and uvq-h3-client, on 127.0.0.1 (and ::1 when
# the loopback has IPv6). TAP output; exit status 0 only if every test
# passed (tests marked TODO are known library bugs and do not count).
#
#   bash tools/test-tools.sh [DIR]   DIR holds the two binaries
#                                    (default build/demo/tools)
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$top/build/demo/tools}
server=$bin/uvq-h3-server
client=$bin/uvq-h3-client
for b in "$server" "$client"; do
  if [ ! -x "$b" ]; then
    echo "Bail out! $b not built"
    exit 1
  fi
done

tmp=$(mktemp -d)
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do
    kill -TERM "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  rm -rf "$tmp"
}
trap cleanup EXIT

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() {
  n=$((n + 1))
  echo "not ok $n - $1"
  shift
  local line
  for line in "$@"; do echo "#   $line"; done
  failed=$((failed + 1))
}
todo() { n=$((n + 1)); echo "not ok $n - $1 # TODO $2"; }
# check NAME COND DETAIL...: ok if COND (a shell expression) holds.
check() {
  local name=$1 cond=$2
  shift 2
  if eval "$cond"; then ok "$name"; else not_ok "$name" "$@"; fi
}

# Runs the client; leaves its exit status, stdout and stderr in rc, out,
# err, and its duration in seconds in secs.
run_client() {
  local t0 t1
  t0=$(date +%s.%N)
  "$client" "$@" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  t1=$(date +%s.%N)
  out=$(cat "$tmp/out")
  err=$(cat "$tmp/err")
  secs=$(python3 -c "print(round($t1 - $t0, 2))")
}

# Starts a server with the given options; sets spid and port, and sout
# and slog, the files that get its stdout and stderr.
start_server() {
  local log=$tmp/server.$n.log i
  "$server" --cert "$tmp/cert.pem" --key "$tmp/key.pem" --root "$tmp/www" \
    --port 0 "$@" >"$log.out" 2>"$log" &
  spid=$!
  pids+=("$spid")
  slog=$log
  sout=$log.out
  port=
  for i in $(seq 50); do
    port=$(awk '/^listening on/ { print $4; exit }' "$sout")
    [ -n "$port" ] && return 0
    kill -0 "$spid" 2>/dev/null || break
    sleep 0.1
  done
  return 1
}

stop_server() {
  kill -TERM "$spid" 2>/dev/null
  wait "$spid"
  src=$?
}

echo "TAP version 13"

# ---- command lines ---------------------------------------------------------

run_client --bogus https://127.0.0.1:1/
check "client: unknown option exits 2 with a message" \
  '[ $rc -eq 2 ] && [[ $err == *"unknown option '"'"'--bogus'"'"'"* ]]' "rc=$rc" "$err"
run_client --repeat 0 https://127.0.0.1:1/
check "client: --repeat 0 exits 2" '[ $rc -eq 2 ] && [[ $err == *"--repeat"* ]]' "rc=$rc" "$err"
run_client --cc vegas https://127.0.0.1:1/
check "client: unknown --cc exits 2" '[ $rc -eq 2 ] && [[ $err == *vegas* ]]' "rc=$rc" "$err"
run_client
check "client: no URL exits 2" '[ $rc -eq 2 ] && [[ $err == *"no URL"* ]]' "rc=$rc" "$err"
run_client http://127.0.0.1:1/
check "client: http:// URL exits 2" '[ $rc -eq 2 ] && [[ $err == *https* ]]' "rc=$rc" "$err"
run_client https://127.0.0.1:1/a https://127.0.0.1:2/b
check "client: URLs of two servers exit 2" '[ $rc -eq 2 ]' "rc=$rc" "$err"
run_client --output x --repeat 2 https://127.0.0.1:1/
check "client: --output with two fetches exits 2" '[ $rc -eq 2 ]' "rc=$rc" "$err"
run_client --connect-timeout
check "client: option without its value exits 2" \
  '[ $rc -eq 2 ] && [[ $err == *"needs a value"* ]]' "rc=$rc" "$err"
run_client --help
check "client: --help exits 0 with the usage" '[ $rc -eq 0 ] && [[ $out == usage:* ]]' "rc=$rc"

"$server" --bogus >/dev/null 2>"$tmp/err"; rc=$?; err=$(cat "$tmp/err")
check "server: unknown option exits 2 with a message" \
  '[ $rc -eq 2 ] && [[ $err == *"unknown option"* ]]' "rc=$rc" "$err"
"$server" --root / >/dev/null 2>"$tmp/err"; rc=$?; err=$(cat "$tmp/err")
check "server: missing --cert/--key exits 2" '[ $rc -eq 2 ] && [[ $err == *--cert* ]]' "rc=$rc" "$err"
"$server" --cert x --key y --port 65536 >/dev/null 2>"$tmp/err"; rc=$?
check "server: bad port exits 2" '[ $rc -eq 2 ]' "rc=$rc"
"$server" --cert x --key y --listen localhost >/dev/null 2>"$tmp/err"; rc=$?
check "server: non-numeric listen address exits 2" '[ $rc -eq 2 ]' "rc=$rc"
"$server" --cert x --key y --retry=sometimes >/dev/null 2>"$tmp/err"; rc=$?; err=$(cat "$tmp/err")
check "server: unknown --retry policy exits 2" '[ $rc -eq 2 ] && [[ $err == *sometimes* ]]' "rc=$rc" "$err"
for o in --max-connections --max-handshakes --retry-threshold; do
  "$server" --cert x --key y $o 0 >/dev/null 2>"$tmp/err"; rc=$?; err=$(cat "$tmp/err")
  check "server: $o 0 exits 2" '[ $rc -eq 2 ] && [[ $err == *"$o"* ]]' "rc=$rc" "$err"
done
"$server" --cert x --key y --idle-timeout 0 >/dev/null 2>"$tmp/err"; rc=$?
check "server: --idle-timeout 0 exits 2" '[ $rc -eq 2 ]' "rc=$rc"

# ---- fixtures --------------------------------------------------------------

mkdir -p "$tmp/www" "$tmp/dl" "$tmp/qlog"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -keyout "$tmp/key.pem" -out "$tmp/cert.pem" -days 2 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null
# An odd size, so that no body is a whole number of packets or chunks.
head -c 3000017 /dev/urandom >"$tmp/www/blob.bin"
want=$(sha256sum "$tmp/www/blob.bin" | cut -d' ' -f1)
echo hello >"$tmp/www/index.html"

"$server" --cert "$tmp/cert.pem" --key "$tmp/nonexistent.pem" --root "$tmp/www" \
  >/dev/null 2>"$tmp/err"; rc=$?; err=$(cat "$tmp/err")
check "server: unreadable key exits 1 with a message" \
  '[ $rc -eq 1 ] && [[ $err == *"cannot set up TLS"* ]]' "rc=$rc" "$err"

# ---- against a server ------------------------------------------------------

if ! start_server; then
  echo "Bail out! the server did not start: $(cat "$slog")"
  exit 1
fi
base=https://127.0.0.1:$port

run_client --cacert "$tmp/cert.pem" --sha256 "$base/blob.bin"
check "fetch with --sha256 matches sha256sum" \
  '[ $rc -eq 0 ] && [ "$out" = "$want  $base/blob.bin" ]' "rc=$rc" "out=$out" "want=$want" "$err"

run_client --cacert "$tmp/cert.pem" --output "$tmp/dl/one.bin" "$base/blob.bin"
check "--output writes the body" '[ $rc -eq 0 ] && cmp -s "$tmp/dl/one.bin" "$tmp/www/blob.bin"' \
  "rc=$rc" "$err"

run_client --cacert "$tmp/cert.pem" "$base/"
check "body on stdout by default (/ serves index.html)" '[ $rc -eq 0 ] && [ "$out" = hello ]' \
  "rc=$rc" "out=$out" "$err"

run_client --cacert "$tmp/cert.pem" "$base/missing.bin"
check "404 exits 1 and says so" '[ $rc -eq 1 ] && [[ $err == *"HTTP status 404"* ]]' "rc=$rc" "$err"

run_client --cacert "$tmp/cert.pem" --discard "$base/index.html" "$base/nope"
check "one 404 among 200s exits 1" '[ $rc -eq 1 ] && [[ $err == *"nope: HTTP status 404"* ]]' \
  "rc=$rc" "$err"

run_client --cacert "$tmp/cert.pem" --json --sha256 --repeat 3 --concurrency 2 \
  --qlog-dir "$tmp/qlog" "$base/blob.bin" "$base/index.html"
echo "$out" >"$tmp/client.json"
check "--json is one parseable object" \
  'python3 -c "import json,sys; json.load(sys.stdin)" <"$tmp/client.json"' "rc=$rc" "$err"
check "--json figures: 6 requests, 6 x 200, bytes, digests, counters" \
  '[ $rc -eq 0 ] && python3 - "$tmp/client.json" "$want" <<'"'"'PY'"'"'
import json, sys
r = json.load(open(sys.argv[1]))
blob = [f for f in r["fetches"] if f["url"].endswith("/blob.bin")]
assert r["requests"] == 6 and r["completed"] == 6 and r["status"] == {"200": 6}, r["status"]
assert r["bytes"] == 3 * (3000017 + 6)
assert all(f["sha256"] == sys.argv[2] for f in blob)
assert r["goodput_gbps"] > 0 and r["handshake_ms"] > 0
assert r["quic"]["version"] == "0x00000001" and r["quic"]["packets_received"] > 0
u = r["udp"]
assert u["datagrams_received"] > 0 and u["send_syscalls"] > 0
assert sum(u["ecn_received"].values()) in (0, u["datagrams_received"])
PY' "rc=$rc" "$err" "$(head -c 600 "$tmp/client.json")"
check "--qlog-dir writes a qlog file" 'ls "$tmp/qlog" | grep -q .' "$(ls "$tmp/qlog")"

run_client --cacert "$tmp/cert.pem" --output-dir "$tmp/dl" --repeat 2 "$base/blob.bin"
check "--output-dir names repeats NAME.1, NAME.2" \
  '[ $rc -eq 0 ] && cmp -s "$tmp/dl/blob.bin.1" "$tmp/www/blob.bin" && cmp -s "$tmp/dl/blob.bin.2" "$tmp/www/blob.bin"' \
  "rc=$rc" "$err" "$(ls "$tmp/dl")"

run_client --cacert "$tmp/cert.pem" --keylog "$tmp/keys.txt" "$base/"
check "--keylog writes TLS secrets" '[ $rc -eq 0 ] && grep -q "^CLIENT_TRAFFIC_SECRET_0 " "$tmp/keys.txt"' \
  "rc=$rc" "$err"
SSLKEYLOGFILE=$tmp/env-keys.txt run_client --cacert "$tmp/cert.pem" "$base/"
check "SSLKEYLOGFILE is honoured" '[ $rc -eq 0 ] && grep -q "^SERVER_TRAFFIC_SECRET_0 " "$tmp/env-keys.txt"' \
  "rc=$rc" "$err"

run_client "$base/"
check "untrusted certificate: exit 4, says TLS" \
  '[ $rc -eq 4 ] && [[ $err == *"TLS handshake failed"* ]]' "rc=$rc" "$err"
run_client --cacert "$tmp/cert.pem" --sni other.example "$base/"
check "name mismatch (--sni): exit 4" '[ $rc -eq 4 ]' "rc=$rc" "$err"
run_client --insecure --sni other.example "$base/"
check "--insecure skips the check" '[ $rc -eq 0 ] && [ "$out" = hello ]' "rc=$rc" "$err"
run_client --cacert "$tmp/cert.pem" --ciphersuites TLS_CHACHA20_POLY1305_SHA256 "$base/"
check "--ciphersuites ChaCha20-Poly1305 only" '[ $rc -eq 0 ] && [ "$out" = hello ]' "rc=$rc" "$err"
run_client --cacert "$tmp/cert.pem" --ciphersuites TLS_AES_128_CCM_SHA256 "$base/"
check "client: --ciphersuites with an unsupported suite exits 2" \
  '[ $rc -eq 2 ] && [[ $err == *"--ciphersuites"* ]]' "rc=$rc" "$err"
run_client --cacert "$tmp/cert.pem" "https://localhost:$port/" -4
check "host name resolved (localhost, -4)" '[ $rc -eq 0 ] && [ "$out" = hello ]' "rc=$rc" "$err"

stop_server
# The summary goes to stderr; stdout holds the listening line alone. The
# requests above came on connections the server accepted, none refused.
check "server: SIGTERM exits 0 with a summary on stderr" \
  '[ $src -eq 0 ] && grep -Eq "^uvq-h3-server: stopped \(SIGTERM\): [0-9]+ requests \(0 failed\) on [1-9][0-9]* connections \(0 refused, 0 retried\); sent " "$slog" &&
   [ "$(wc -l <"$sout")" -eq 1 ] && grep -q "^listening on 127.0.0.1 $port\$" "$sout"' \
  "rc=$src" "stderr: $(cat "$slog")" "stdout: $(cat "$sout")"

# ---- a server that does not answer ----------------------------------------

# A socket that takes datagrams and never answers: the handshake can only
# time out (a closed port would do too, but only because the library does
# not read ICMP errors).
python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1], flush=True)
time.sleep(30)
' >"$tmp/hole" &
hole=$!
pids+=("$hole")
for _ in $(seq 50); do [ -s "$tmp/hole" ] && break; sleep 0.1; done
run_client --connect-timeout 1 "https://127.0.0.1:$(cat "$tmp/hole")/"
check "unreachable server: exit 3 within the handshake timeout" \
  '[ $rc -eq 3 ] && [[ $err == *"handshake timed out"* ]] && python3 -c "import sys; sys.exit(0 if $secs < 3 else 1)"' \
  "rc=$rc" "secs=$secs" "$err"
kill "$hole" 2>/dev/null; wait "$hole" 2>/dev/null

# ---- server options --------------------------------------------------------

if start_server --max-requests 2 --quiet; then
  run_client --cacert "$tmp/cert.pem" --repeat 2 --discard "https://127.0.0.1:$port/index.html"
  for _ in $(seq 50); do kill -0 "$spid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$spid" 2>/dev/null; then
    not_ok "server: --max-requests 2 exits by itself" "still running"
    stop_server
  else
    wait "$spid"; src=$?
    check "server: --max-requests 2 exits by itself, quietly" \
      '[ $rc -eq 0 ] && [ $src -eq 0 ] && [ "$(wc -l <"$sout")" -eq 1 ] && [ ! -s "$slog" ]' \
      "client rc=$rc" "server rc=$src" "$(cat "$sout" "$slog")"
  fi
else
  not_ok "server: --max-requests 2 exits by itself" "did not start"
fi

start_server --timeout 0.5
for _ in $(seq 30); do kill -0 "$spid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$spid" 2>/dev/null; then
  not_ok "server: --timeout 0.5 exits by itself"
  stop_server
else
  wait "$spid"; src=$?
  check "server: --timeout 0.5 exits by itself" '[ $src -eq 0 ] && grep -q "stopped (timeout)" "$slog"' \
    "$(cat "$slog")"
fi

if start_server --retry; then
  run_client --cacert "$tmp/cert.pem" --connect-timeout 2 "https://127.0.0.1:$port/"
  if [ $rc -eq 0 ] && [ "$out" = hello ]; then
    ok "server: --retry (address validation) still serves"
  else
    todo "server: --retry (address validation) still serves" \
      "library: the Retry packet is counted but never sent ($err)"
  fi
  stop_server
fi

# ---- the small-file cache (--file-cache-ms) ---------------------------------

printf one >"$tmp/www/cached.txt"
# One worker: each worker keeps its own cache, and the fetches below are
# connections of their own, which may reach either worker.
if start_server --file-cache-ms 300 --workers 1; then
  base=https://127.0.0.1:$port
  run_client --cacert "$tmp/cert.pem" "$base/cached.txt"
  check "cache: first fetch" '[ $rc -eq 0 ] && [ "$out" = one ]' "rc=$rc" "out=$out" "$err"
  printf two-two >"$tmp/www/cached.txt"
  sleep 0.5
  run_client --cacert "$tmp/cert.pem" "$base/cached.txt"
  check "cache: a file rewritten with a new size is served anew once checked" \
    '[ $rc -eq 0 ] && [ "$out" = two-two ]' "rc=$rc" "out=$out" "$err"
  printf TWO-TWO >"$tmp/www/cached.txt"
  touch -d '2001-01-01 00:00:00' "$tmp/www/cached.txt"
  sleep 0.5
  run_client --cacert "$tmp/cert.pem" "$base/cached.txt"
  check "cache: same size, other mtime is served anew" \
    '[ $rc -eq 0 ] && [ "$out" = TWO-TWO ]' "rc=$rc" "out=$out" "$err"
  rm -f "$tmp/www/cached.txt"
  sleep 0.5
  run_client --cacert "$tmp/cert.pem" "$base/cached.txt"
  check "cache: a deleted file is 404 once checked" \
    '[ $rc -eq 1 ] && [[ $err == *"HTTP status 404"* ]]' "rc=$rc" "out=$out" "$err"
  # More files than the cache has slots, 64 in flight, twice: entries are
  # replaced while responses that share their bytes are still sending.
  mkdir -p "$tmp/www/many"
  urls=()
  : >"$tmp/many.want"
  for i in $(seq 300); do
    head -c $((i * 37 % 5000 + 1)) /dev/urandom >"$tmp/www/many/f$i"
    urls+=("$base/many/f$i")
  done
  for i in $(seq 300); do
    echo "$(sha256sum <"$tmp/www/many/f$i" | cut -d' ' -f1)  $base/many/f$i" >>"$tmp/many.want"
  done
  run_client --cacert "$tmp/cert.pem" --sha256 --concurrency 64 "${urls[@]}" "${urls[@]}"
  check "cache: 600 fetches of 300 files through 256 slots, every body intact" \
    '[ $rc -eq 0 ] && [ "$(echo "$out" | sort -u)" = "$(sort -u "$tmp/many.want")" ] &&
     [ "$(echo "$out" | wc -l)" -eq 600 ]' "rc=$rc" "$err"
  stop_server
else
  not_ok "cache: server with --file-cache-ms" "$(cat "$slog")"
fi
printf one >"$tmp/www/cached.txt"
# One worker, as above: the two fetches must meet the same cache.
if start_server --file-cache-ms 60000 --workers 1; then
  base=https://127.0.0.1:$port
  run_client --cacert "$tmp/cert.pem" "$base/cached.txt"
  printf two >"$tmp/www/cached.txt"
  run_client --cacert "$tmp/cert.pem" "$base/cached.txt"
  check "cache: within the check interval the cached bytes are served" \
    '[ $rc -eq 0 ] && [ "$out" = one ]' "rc=$rc" "out=$out" "$err"
  stop_server
else
  not_ok "cache: server with --file-cache-ms 60000" "$(cat "$slog")"
fi
printf one >"$tmp/www/cached.txt"
if start_server --file-cache-ms 0; then
  base=https://127.0.0.1:$port
  run_client --cacert "$tmp/cert.pem" "$base/cached.txt"
  printf two >"$tmp/www/cached.txt"
  run_client --cacert "$tmp/cert.pem" "$base/cached.txt"
  check "cache off: a rewritten file is served anew at once" \
    '[ $rc -eq 0 ] && [ "$out" = two ]' "rc=$rc" "out=$out" "$err"
  stop_server
else
  not_ok "cache off: server with --file-cache-ms 0" "$(cat "$slog")"
fi

# Limits and Retry policy: with --retry (always) each fetch is one Retry
# and one connection, counted in the summary. (What the limits do is
# tested on the library: quic_handshake_conn_limit, quic_load_*.)
if start_server --retry --max-connections 2 --max-handshakes 4 --idle-timeout 0.3; then
  base=https://127.0.0.1:$port
  run_client --cacert "$tmp/cert.pem" "$base/"
  r1=$rc
  run_client --cacert "$tmp/cert.pem" "$base/"
  stop_server
  summary=$(grep 'stopped' "$slog")
  check "--retry: two fetches, two connections, both retried, none refused" \
    '[ $r1 -eq 0 ] && [ $rc -eq 0 ] && [ $src -eq 0 ] &&
     [[ $summary == *"on 2 connections (0 refused, 2 retried)"* ]]' \
    "rc=$r1/$rc/$src" "$summary"
else
  not_ok "--retry: server with limits" "$(cat "$slog")"
fi
if start_server --retry=never --idle-timeout 0.3; then
  base=https://127.0.0.1:$port
  run_client --cacert "$tmp/cert.pem" "$base/"
  stop_server
  summary=$(grep 'stopped' "$slog")
  check "--retry=never: no Retry" \
    '[ $rc -eq 0 ] && [[ $summary == *"on 1 connections (0 refused, 0 retried)"* ]]' \
    "rc=$rc" "$summary"
else
  not_ok "--retry=never: server" "$(cat "$slog")"
fi

# ---- workers -----------------------------------------------------------------

"$server" --cert x --key y --workers 0 >/dev/null 2>"$tmp/err"
rc=$?
check "server: --workers 0 exits 2" '[ $rc -eq 2 ] && grep -q -- "--workers" "$tmp/err"' \
  "rc=$rc" "$(cat "$tmp/err")"
# Twenty clients, each a process of its own (a new connection from a new
# port): the steering program spreads their Initials over both workers and
# keeps each connection on its worker; the summary adds the workers up.
if start_server --workers 2 -v; then
  fails=0
  for i in $(seq 20); do
    run_client --cacert "$tmp/cert.pem" --sha256 "https://127.0.0.1:$port/blob.bin"
    [ $rc -eq 0 ] && [[ $out == "$want "* ]] || fails=$((fails + 1))
  done
  stop_server
  w0=$(sed -n 's/^uvq-h3-server: worker 0: \([0-9]*\) requests.*/\1/p' "$slog")
  w1=$(sed -n 's/^uvq-h3-server: worker 1: \([0-9]*\) requests.*/\1/p' "$slog")
  check "--workers 2: 20 fetches served, steered by connection ID" \
    '[ $fails -eq 0 ] && [ $src -eq 0 ] &&
     grep -q "^uvq-h3-server: 2 workers, steering: BPF by connection ID$" "$slog" &&
     grep -q "^uvq-h3-server: stopped (SIGTERM): 20 requests (0 failed) on 20 connections" "$slog" &&
     grep -q " 0 stateless resets sent, 0 misrouted$" "$slog" &&
     [ -n "$w0" ] && [ -n "$w1" ] && [ $((w0 + w1)) -eq 20 ]' \
    "fails=$fails rc=$src" "$(grep -v ': GET ' "$slog")"
else
  not_ok "--workers 2: server" "$(cat "$slog")"
fi

if ip -6 addr show dev lo 2>/dev/null | grep -q "inet6 ::1"; then
  if start_server --listen ::1; then
    run_client --cacert "$tmp/cert.pem" --sni localhost --sha256 "https://[::1]:$port/blob.bin"
    check "IPv6: [::1] URL with --sni" '[ $rc -eq 0 ] && [[ $out == "$want "* ]]' "rc=$rc" "$err"
    stop_server
  else
    not_ok "IPv6: server on ::1" "$(cat "$slog")"
  fi
  if start_server --listen '*'; then
    run_client --cacert "$tmp/cert.pem" "https://127.0.0.1:$port/"
    check "wildcard (*) server answers IPv4" '[ $rc -eq 0 ] && [ "$out" = hello ]' "rc=$rc" "$err"
    stop_server
  fi
else
  ok "IPv6 # SKIP no ::1 on lo"
fi

echo "1..$n"
if [ "$failed" -ne 0 ]; then
  echo "# $failed of $n failed"
  exit 1
fi
echo "# all passed"
