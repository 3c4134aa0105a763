#!/bin/bash
# selftest.sh: prove every uvq-wire feature with real traffic between two
# network namespaces.  Needs root, iproute2, iputils-ping, python3 and a C
# compiler (unless $UVQ_WIRE points at a built uvq-wire).
# Prints one line per check and "N passed, M failed" at the end.
set -u
here=$(cd "$(dirname "$0")" && pwd)
prefix=uvqw-$$
tmp=$(mktemp -d)
netns="$here/wire-netns.sh"
# the real interpreter, not a version-manager shim that is slow to start
py3=$(python3 -c 'import sys; print(sys.executable)') || exit 1
pass=0 fail=0

cleanup() {
  [ -n "${rpid:-}" ] && kill "$rpid" 2>/dev/null
  "$netns" down "$prefix" >/dev/null 2>&1
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$(id -u)" != 0 ]; then echo "selftest: needs root"; echo "0 passed, 0 failed, 1 skipped"; exit 0; fi
if [ -z "${UVQ_WIRE:-}" ]; then
  ${CC:-cc} -O2 -Wall -Wextra -Werror -o "$tmp/uvq-wire" "$here/uvq-wire.c" || exit 1
  UVQ_WIRE=$tmp/uvq-wire
fi
export UVQ_WIRE

ok() { # ok NAME CONDITION-EXIT-STATUS DETAILS
  if [ "$2" = 0 ]; then pass=$((pass + 1)); echo "PASS $1: $3"
  else fail=$((fail + 1)); echo "FAIL $1: $3"; fi
}
# py EXPR: evaluate a python expression with s (emulator stats), r (receiver
# summary) bound from $tmp/stats.json and $tmp/recv.json
py() { "$py3" - "$1" "$tmp/stats.json" "$tmp/recv.json" <<'EOF'
import json, sys
def load(p):
    try: return json.load(open(p))
    except Exception: return {}
s, r = load(sys.argv[2]), load(sys.argv[3])
v = eval(sys.argv[1])
print(int(v) if isinstance(v, bool) else v)
EOF
}
test_py() { [ "$(py "$1")" = 1 ]; }  # true if the python condition holds

wire() { "$netns" wire "$prefix" -- "$@" || exit 1; }
stats() { "$netns" stats "$prefix" >"$tmp/stats.json"; }
inA() { ip netns exec "$NS_A" "$@"; }
udpA() { ip netns exec "$NS_A" "$py3" "$here/udptool.py" "$@"; }
udpB() { ip netns exec "$NS_B" "$py3" "$here/udptool.py" "$@"; }
inB() { ip netns exec "$NS_B" "$@"; }

# start_recv ADDR [udptool options]: receiver in B, waits until it is bound
start_recv() {
  local addr=$1; shift
  rm -f "$tmp/ready" "$tmp/recv.json"
  udpB recv "$addr" 5000 --ready "$tmp/ready" "$@" >"$tmp/recv.json" &
  rpid=$!
  for _ in $(seq 200); do [ -s "$tmp/ready" ] && return; sleep 0.02; done
  echo "selftest: receiver did not start"; exit 1
}
wait_recv() { wait "$rpid"; rpid=; }

eval "$("$netns" up "$prefix")" || exit 1

# --- delay: ping RTT is twice the one-way delay; ARP and ND pass untouched
wire --delay 25
inA ping -c 1 -W 2 "$ADDR_B4" >/dev/null; inA ping -6 -c 1 -W 2 "$ADDR_B6" >/dev/null
for fam in 4 6; do
  dst=$ADDR_B4; [ $fam = 6 ] && dst=$ADDR_B6
  avg=$(inA ping -$fam -c 10 -i 0.1 "$dst" | awk -F/ '/^rtt/ {print $5}')
  ok "delay-ipv$fam" "$("$py3" -c "print(0 if 49 <= float('${avg:-0}') <= 56 else 1)")" \
    "--delay 25: ping avg RTT ${avg:-none} ms (want 49..56)"
done
stats
ok "arp-nd" "$(test_py "s['ab']['control'] > 0 and s['ba']['control'] > 0"; echo $?)" \
  "control frames forwarded ab=$(py "s['ab']['control']") ba=$(py "s['ba']['control']")"

# --- jitter spreads the delay (judged on percentiles: a loaded machine adds
# its own outliers, never removes delay)
wire --delay 20 --jitter 5 --seed 3
inA ping -c 30 -i 0.05 "$ADDR_B4" | sed -n 's/.*time=\([0-9.]*\) ms/\1/p' >"$tmp/rtt"
out=$("$py3" -c "
v = sorted(float(x) for x in open('$tmp/rtt'))
p = lambda q: v[int(q * (len(v) - 1))]
print(0 if len(v) >= 25 and v[0] > 29 and 36 <= p(.5) <= 48 and p(.9) - p(.1) > 2 else 1,
      'min %.1f p10 %.1f median %.1f p90 %.1f' % (v[0], p(.1), p(.5), p(.9)))")
ok jitter "${out%% *}" "--delay 20 --jitter 5: ping RTT ms ${out#* } (want min > 29, median 36..48, p90-p10 > 2)"

# --- ECN: every ECT packet marked CE, Not-ECT untouched, IPv4 and IPv6
wire --ce-all
for fam in 4 6; do
  dst=$ADDR_B4; [ $fam = 6 ] && dst=$ADDR_B6
  start_recv "$dst" --idle 2
  udpA send "$dst" 5000 --count 200 --interval 0.5 --ecn 2
  udpA send "$dst" 5000 --count 50 --interval 0.5 --ecn 1
  udpA send "$dst" 5000 --count 50 --interval 0.5 --ecn 0
  wait_recv; stats
  ok "ce-all-ipv$fam" "$(test_py "r['ecn'] == [50, 0, 0, 250] and s['ab']['ce_marked'] == 250 * ($fam // 2 - 1)"; echo $?)" \
    "receiver ECN counts [Not-ECT,ECT1,ECT0,CE]=$(py "r['ecn']"), emulator ce_marked=$(py "s['ab']['ce_marked']") (cumulative; want [50,0,0,250], IP_RECVTOS/IPV6_RECVTCLASS)"
done

# --- ECN bleaching
wire --ecn-bleach
start_recv "$ADDR_B4" --idle 0.5
udpA send "$ADDR_B4" 5000 --count 100 --interval 0.5 --ecn 2
wait_recv; stats
ok ecn-bleach "$(test_py "r['ecn'] == [100, 0, 0, 0] and s['ab']['bleached'] == 100"; echo $?)" \
  "ECT(0) sent, receiver ECN counts $(py "r['ecn']"), bleached=$(py "s['ab']['bleached']")"

# --- corruption: one bit flipped per chosen datagram, the UDP checksum fixed
# so every datagram is still delivered (IPv4 and IPv6); the flips show up in
# the zero padding (a few land in the 16-byte header instead)
for fam in 4 6; do
  dst=$ADDR_B4; [ $fam = 6 ] && dst=$ADDR_B6
  wire --corrupt 10 --seed 7
  start_recv "$dst" --idle 0.5
  udpA send "$dst" 5000 --count 2000 --interval 0.25 --size 1400
  wait_recv; stats
  ok "corrupt-ipv$fam" "$(test_py "r['received'] == 2000 and r['unique'] >= 1990 and 150 <= s['ab']['corrupted'] <= 250 and r['pad_bits'] == r['pad_altered'] and s['ab']['corrupted'] * 0.95 <= r['pad_altered'] <= s['ab']['corrupted']"; echo $?)" \
    "--corrupt 10: received $(py "r['received']") of 2000, corrupted=$(py "s['ab']['corrupted']"), altered in padding $(py "r['pad_altered']") with $(py "r['pad_bits']") bits flipped (want all delivered, one bit each)"
done

# --- random loss: reproducible with a seed, emulator count == receiver's gap
declare -a lost
for run in 1 2; do
  wire --loss 10 --seed 42
  start_recv "$ADDR_B4" --idle 0.5
  udpA send "$ADDR_B4" 5000 --count 2000 --interval 0.25
  wait_recv; stats
  lost[run]=$(py "2000 - r['unique']")
  ok "loss-run$run" "$(test_py "2000 - r['unique'] == s['ab']['dropped_loss'] and 150 <= s['ab']['dropped_loss'] <= 250"; echo $?)" \
    "--loss 10 --seed 42, 2000 sent: receiver missed ${lost[$run]}, emulator dropped_loss=$(py "s['ab']['dropped_loss']") (want equal, 150..250)"
done
ok loss-reproducible "$([ "${lost[1]}" = "${lost[2]}" ]; echo $?)" "same seed, same loss: ${lost[1]} and ${lost[2]}"

# --- loss bursts capped per flow: 50 % loss, never more than 2 in a row
wire --loss 50 --loss-burst 2 --seed 9
start_recv "$ADDR_B4" --idle 0.5
udpA send "$ADDR_B4" 5000 --count 2000 --interval 0.25
wait_recv; stats
run=$(py "max([b - a - 1 for a, b in zip([-1] + sorted(set(r['seqs'])), sorted(set(r['seqs'])) + [2000])] or [0])")
ok loss-burst "$(test_py "$run <= 2 and 2000 - r['unique'] == s['ab']['dropped_loss'] and s['ab']['loss_spared'] > 0 and 500 <= s['ab']['dropped_loss'] <= 1000"; echo $?)" \
  "--loss 50 --loss-burst 2, 2000 sent: longest run lost $run (want <= 2), dropped_loss=$(py "s['ab']['dropped_loss']"), spared=$(py "s['ab']['loss_spared']")"

# --- loss only in an initial window
wire --loss-initial 50 --loss-initial-ms 1000 --seed 5
start_recv "$ADDR_B4" --idle 0.5
udpA send "$ADDR_B4" 5000 --count 400 --interval 5
wait_recv; stats
early=$(py "len([q for q in range(190) if q not in set(r['seqs'])])")
late=$(py "len([q for q in range(210, 400) if q not in set(r['seqs'])])")
ok loss-initial "$(test_py "57 <= $early <= 133 and $late == 0 and s['ab']['dropped_loss'] == 400 - r['unique']"; echo $?)" \
  "50% for the first 1000 ms, 400 pkts every 5 ms: lost $early of the first 190, $late of the last 190 (want 57..133 and 0)"

# --- rate limit: 20 Mbit/s offered into a 10 Mbit/s bottleneck
wire --rate 10 --queue-pkts 50
start_recv "$ADDR_B4" --idle 0.5
udpA send "$ADDR_B4" 5000 --count 4800 --mbit 20 --size 1000
wait_recv; stats
# receiver rate counts UDP payload; on the wire each carries 42 bytes more
wire_mbit=$(py "round(r['mbit'] * 1042 / 1000, 2)")
ok rate "$(test_py "9.0 <= $wire_mbit <= 10.5 and s['ab']['dropped_queue'] > 0 and r['unique'] + s['ab']['dropped_queue'] == 4800"; echo $?)" \
  "--rate 10: measured $wire_mbit Mbit/s of frames, dropped_queue=$(py "s['ab']['dropped_queue']"), max_queue=$(py "s['ab']['max_queue']")"

# --- CE marking at a queue threshold
wire --rate 10 --queue-pkts 300 --ce-threshold 20
start_recv "$ADDR_B4" --idle 0.5
udpA send "$ADDR_B4" 5000 --count 1000 --mbit 12 --size 1000 --ecn 2
wait_recv; stats
ok ce-threshold "$(test_py "r['ecn'][3] == s['ab']['ce_marked'] and 0 < r['ecn'][3] < r['unique'] and s['ab']['dropped_queue'] == 0"; echo $?)" \
  "12 Mbit/s ECT(0) into 10 Mbit/s, threshold 20 pkts: CE seen $(py "r['ecn'][3]") of $(py "r['unique']"), emulator ce_marked=$(py "s['ab']['ce_marked']")"

# --- reordering
wire --reorder 10 --reorder-delay 20 --seed 7
start_recv "$ADDR_B4" --idle 0.5
udpA send "$ADDR_B4" 5000 --count 1000 --interval 1
wait_recv; stats
ok reorder "$(test_py "r['unique'] == 1000 and 50 <= s['ab']['reordered'] <= 150 and s['ab']['reordered'] - 6 <= r['out_of_order'] <= s['ab']['reordered']"; echo $?)" \
  "--reorder 10: emulator held $(py "s['ab']['reordered']"), receiver saw $(py "r['out_of_order']") out of order"

# --- MTU with ICMP "packet too big" back to the sender, then a black hole
wire --mtu 1300
for fam in 4 6; do
  dst=$ADDR_B4; [ $fam = 6 ] && dst=$ADDR_B6
  inA ip -$fam route flush cache >/dev/null 2>&1
  inA ping -$fam -M "do" -s 1400 -c 2 -i 0.2 -W 1 "$dst" >/dev/null 2>&1
  pmtu=$(inA ip -$fam route get "$dst" | grep -o 'mtu [0-9]*')
  small=$(inA ping -$fam -M "do" -s 1200 -c 1 -W 1 "$dst" >/dev/null 2>&1; echo $?)
  ok "mtu-icmp-ipv$fam" "$([ "$pmtu" = "mtu 1300" ] && [ "$small" = 0 ]; echo $?)" \
    "--mtu 1300: route cache after 1428-byte probes says '${pmtu:-nothing}', 1228-byte ping ok=$([ "$small" = 0 ] && echo yes || echo no)"
done
stats
ok mtu-counters "$(test_py "s['ab']['dropped_mtu'] >= 2 and s['ab']['icmp_sent'] == s['ab']['dropped_mtu']"; echo $?)" \
  "dropped_mtu=$(py "s['ab']['dropped_mtu']") icmp_sent=$(py "s['ab']['icmp_sent']")"
wire --mtu 1300 --mtu-blackhole
inA ip -4 route flush cache >/dev/null 2>&1
big=$(inA ping -M "do" -s 1400 -c 2 -i 0.2 -W 1 "$ADDR_B4" >/dev/null 2>&1; echo $?)
pmtu=$(inA ip -4 route get "$ADDR_B4" | grep -o 'mtu [0-9]*')
stats
ok mtu-blackhole "$([ "$big" != 0 ] && [ -z "$pmtu" ] && test_py "s['ab']['dropped_mtu'] == 2 and s['ab']['icmp_sent'] == 0"; echo $?)" \
  "big pings lost, no PMTU learned, dropped_mtu=$(py "s['ab']['dropped_mtu']") icmp_sent=$(py "s['ab']['icmp_sent']")"

# --- UDP GSO from the sender arrives at the wire as separate frames
wire
start_recv "$ADDR_B4" --idle 0.5
udpA send "$ADDR_B4" 5000 --count 200 --interval 0.5 --size 1200 --gso 10
wait_recv; stats
ok gso-split "$(test_py "r['unique'] == 200 and s['ab']['rx'] - s['ab']['control'] == 200 and s['ab']['dropped_oversize'] == 0"; echo $?)" \
  "20 sends of 10x1200 B with UDP_SEGMENT: wire saw $(py "s['ab']['rx'] - s['ab']['control']") IP frames, receiver got $(py "r['unique']")"

# --- 64 KiB frames on a jumbo link
for l in "$NS_A a0" "$NS_W a1" "$NS_W b1" "$NS_B b0"; do ip -n "${l% *}" link set "${l#* }" mtu 65535; done
wire
start_recv "$ADDR_B4" --idle 0.5
udpA send "$ADDR_B4" 5000 --count 20 --interval 2 --size 65000
wait_recv; stats
ok jumbo "$(test_py "r['unique'] == 20 and s['ab']['bytes'] >= 20 * 65042"; echo $?)" \
  "20 datagrams of 65000 B as single frames: received $(py "r['unique']"), forwarded $(py "s['ab']['bytes']") bytes"
for l in "$NS_A a0" "$NS_W a1" "$NS_W b1" "$NS_B b0"; do ip -n "${l% *}" link set "${l#* }" mtu 1500; done

# --- clean exit on SIGTERM writes the stats file
pid=$(cat "$WIRE_STATE/pid")
kill -TERM "$pid"
for _ in $(seq 100); do [ -d "/proc/$pid" ] || break; sleep 0.02; done
ok sigterm "$([ ! -d "/proc/$pid" ] && "$py3" -c "import json; json.load(open('$WIRE_STATE/stats'))"; echo $?)" \
  "emulator exited on SIGTERM and left a JSON stats file"

cleanup
trap - EXIT
left=$(ip netns list | grep -c "^$prefix-" || true)
ok cleanup "$([ "$left" = 0 ]; echo $?)" "namespaces left behind: $left"

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
