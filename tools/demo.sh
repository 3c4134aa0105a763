#!/usr/bin/env bash
# The main demo: builds uvq (installing what is missing), serves a 100 MiB
# file of random bytes over HTTP/3 on loopback with uvq-h3-server, fetches
# it 10 times on one connection with uvq-h3-client, checks every copy's
# SHA-256, and reports what the datapath did. Exits non-zero if any copy
# differs or any fetch fails.
#
#   bash tools/demo.sh          the HTTP/3 demo
#   bash tools/demo.sh udp [N]  the UDP datapath demo (N datagrams)
#
# Run as root on a fresh Debian bookworm machine: setup.sh and
# deps-quic.sh install what is missing. Only 127.0.0.1 is used.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

mode=${1:-h3}
case "$mode" in
  h3|udp) ;;
  *) echo "usage: bash tools/demo.sh [udp [N]]" >&2; exit 2 ;;
esac

bash tools/setup.sh
deps=$(bash tools/deps-quic.sh)
export PKG_CONFIG_PATH=$deps/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
cmake -S . -B build/demo -DCMAKE_BUILD_TYPE=Release -DUVQ_BUILD_TESTS=OFF \
  -DUVQ_BUILD_BENCH=OFF >/dev/null
cmake --build build/demo -j"$(nproc 2>/dev/null || echo 2)" >/dev/null

if [ "$mode" = udp ]; then
  exec ./build/demo/uvq-udp-demo "${2:-1000000}"
fi

demo=build/demo
certs=$demo/demo-certs
www=$demo/demo-www
file=demo-100M.bin
size=$((100 * 1024 * 1024))
repeat=10
run=$demo/demo-run
mkdir -p "$certs" "$www" "$run"

# A self-signed certificate for 127.0.0.1, made once (again when it is
# about to expire).
if [ ! -s "$certs/cert.pem" ] || [ ! -s "$certs/key.pem" ] ||
   ! openssl x509 -checkend 86400 -noout -in "$certs/cert.pem" >/dev/null 2>&1; then
  echo "demo: making a self-signed certificate in $certs"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$certs/key.pem" -out "$certs/cert.pem" -days 365 \
    -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost,IP:127.0.0.1 2>/dev/null
fi

# The file, made once: written aside and renamed, so that an interrupted
# run never leaves a short file behind.
if [ ! -f "$www/$file" ] || [ "$(stat -c %s "$www/$file")" -ne "$size" ]; then
  echo "demo: writing $((size / 1024 / 1024)) MiB of random bytes to $www/$file"
  head -c "$size" /dev/urandom > "$www/$file.tmp"
  mv "$www/$file.tmp" "$www/$file"
fi
rm -f "$www/$file.sha256"
want=$(sha256sum "$www/$file" | cut -d' ' -f1)

server_log=$run/server.out
client_json=$run/client.json
server_pid=
stop_server() {
  if [ -n "$server_pid" ]; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
  fi
}
trap stop_server EXIT

./$demo/tools/uvq-h3-server --listen 127.0.0.1 --port 0 \
  --cert "$certs/cert.pem" --key "$certs/key.pem" --root "$www" \
  >"$server_log" 2>&1 &
server_pid=$!
port=
for _ in $(seq 50); do
  port=$(awk '/^listening on/ { print $4; exit }' "$server_log")
  [ -n "$port" ] && break
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "demo: the server did not start:" >&2
    cat "$server_log" >&2
    exit 1
  fi
  sleep 0.1
done
if [ -z "$port" ]; then
  echo "demo: the server did not say which port it listens on" >&2
  exit 1
fi

url=https://127.0.0.1:$port/$file
echo "demo: uvq-h3-server on 127.0.0.1 port $port; fetching $url $repeat times"
status=0
./$demo/tools/uvq-h3-client --repeat "$repeat" --json --sha256 \
  --cacert "$certs/cert.pem" "$url" >"$client_json" || status=$?
stop_server

report=0
python3 - "$client_json" "$want" "$repeat" "$size" "$status" <<'EOF' || report=$?
import json
import sys

path, want, repeat, size, status = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
try:
    with open(path) as f:
        r = json.load(f)
except (OSError, ValueError) as e:
    print(f"demo: no report from the client ({e}); its exit status was {status}")
    sys.exit(1)

fetches = r["fetches"]
bad = [i for i, f in enumerate(fetches)
       if not f["ok"] or f.get("sha256") != want or f["bytes"] != size]
q = r["quic"] or {}
u = r["udp"]

def ecn(counts):
    names = [("ECT(0)", "ect0"), ("ECT(1)", "ect1"), ("CE", "ce"), ("not-ECT", "not_ect")]
    seen = [f"{label} {counts[key]}" for label, key in names if counts[key]]
    return ", ".join(seen) if seen else "none"

print()
print(f"  fetched         {len(fetches) - len(bad)}/{repeat} copies intact "
      f"(SHA-256 {want[:16]}...), {r['bytes'] / 1e6:.0f} MB in {r['seconds']:.2f} s")
print(f"  goodput         {r['goodput_gbps']:.2f} Gbit/s  (handshake {r['handshake_ms'] or 0:.1f} ms)")
print(f"  client receive  {u['datagrams_received']} datagrams in {u['recv_syscalls']} syscalls "
      f"= {u['datagrams_per_recv_syscall']:.1f} per syscall; "
      f"GRO {u['gro_packets']} super-packets carrying {u['gro_segments']} datagrams")
print(f"  client send     {u['datagrams_sent']} datagrams in {u['send_syscalls']} syscalls "
      f"= {u['datagrams_per_send_syscall']:.1f} per syscall; "
      f"GSO {u['gso_sends']} sends carrying {u['gso_segments']} datagrams")
print(f"  ECN             received by the client: {ecn(u['ecn_received'])}; "
      f"ECN marking {'on' if q.get('ecn_marking') else 'off'}")
print(f"  path MTU        {q.get('path_mtu', 0)} bytes of UDP payload")
print(f"  RTT             smoothed {q.get('smoothed_rtt_ms', 0):.3f} ms, "
      f"min {q.get('min_rtt_ms', 0):.3f} ms; cwnd {q.get('cwnd', 0)} bytes; "
      f"QUIC version {q.get('version', '?')}")
if u["kernel_drops"]:
    print(f"  kernel drops    {u['kernel_drops']} datagrams (client receive queue full)")
if r.get("error"):
    print(f"  error           {r['error']}")
for i in bad[:5]:
    f = fetches[i]
    print(f"  BAD fetch {i + 1}: status {f['status']}, {f['bytes']} bytes, "
          f"sha256 {f.get('sha256', 'none')}")
if bad or status != 0:
    print(f"  FAILED          {len(bad)} bad copies, client exit status {status}")
    sys.exit(1)
EOF
echo "  server          $(sed -n 's/^uvq-h3-server: stopped/stopped/p' "$server_log")"
if [ "$report" -ne 0 ]; then
  echo "demo: FAILED (client output in $client_json, server log in $server_log)"
  exit 1
fi
echo "demo: OK"
