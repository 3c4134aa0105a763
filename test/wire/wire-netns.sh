#!/bin/bash
# wire-netns.sh: three network namespaces joined by the uvq-wire emulator.
#
#   PREFIX-A: a0 10.77.0.1/24 fd00:77::1/64  --veth--  a1 \
#   PREFIX-W:                                             uvq-wire (bridges a1 <-> b1)
#   PREFIX-B: b0 10.77.0.2/24 fd00:77::2/64  --veth--  b1 /
#
# Usage:
#   wire-netns.sh up PREFIX [--mtu N] [-- uvq-wire options]
#       create the namespaces and start the emulator; prints shell
#       assignments (NS_A=..., ADDR_B4=..., ...) on stdout for eval
#   wire-netns.sh wire PREFIX [-- uvq-wire options]
#       restart only the emulator with new options (counters start at zero)
#   wire-netns.sh stats PREFIX
#       print the emulator's counters (one JSON line) without stopping it
#   wire-netns.sh down PREFIX
#       stop the emulator, print its final counters, delete the namespaces
#
# The emulator binary is $UVQ_WIRE, else uvq-wire next to this script, else
# uvq-wire on PATH.  State (pid, ready and stats files, log) lives in
# ${UVQ_WIRE_STATE:-/tmp}/PREFIX.wire/.  Nothing outside the three
# namespaces and that directory is touched.  Needs root, iproute2 and a
# kernel with netns, veth and AF_PACKET; the offloads are switched off by
# uvq-wire itself, so ethtool is not needed.
set -euo pipefail

die() { echo "wire-netns: $*" >&2; exit 1; }
[ $# -ge 2 ] || die "usage: $0 up|wire|stats|down PREFIX [--mtu N] [-- uvq-wire options]"
cmd=$1 prefix=$2
shift 2
case $prefix in *[!A-Za-z0-9_.-]*|'') die "bad prefix '$prefix'" ;; esac
[ ${#prefix} -le 24 ] || die "prefix too long"

NS_A=$prefix-A NS_W=$prefix-W NS_B=$prefix-B
state=${UVQ_WIRE_STATE:-/tmp}/$prefix.wire
here=$(cd "$(dirname "$0")" && pwd)
bin=${UVQ_WIRE:-}
if [ -z "$bin" ]; then
  if [ -x "$here/uvq-wire" ]; then bin=$here/uvq-wire; else bin=$(command -v uvq-wire || true); fi
fi

ns_exists() { ip netns list 2>/dev/null | awk '{print $1}' | grep -qxF "$1"; }

emu_pid() {
  local pid
  [ -s "$state/pid" ] || return 1
  pid=$(cat "$state/pid")
  [ -d "/proc/$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = uvq-wire ] || return 1
  echo "$pid"
}

stop_emu() {
  local pid
  pid=$(emu_pid) || { rm -f "$state/pid"; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do [ -d "/proc/$pid" ] || break; sleep 0.02; done
  if [ -d "/proc/$pid" ]; then kill -KILL "$pid" 2>/dev/null || true; fi
  rm -f "$state/pid"
}

start_emu() {
  if [ -z "$bin" ] || [ ! -x "$bin" ]; then die "uvq-wire binary not found (set UVQ_WIRE)"; fi
  rm -f "$state/ready" "$state/stats" "$state/pid"
  ip netns exec "$NS_W" "$bin" --a a1 --b b1 --ready-file "$state/ready" \
    --stats-file "$state/stats" "$@" >>"$state/log" 2>&1 </dev/null &
  for _ in $(seq 250); do
    [ -s "$state/ready" ] && break
    kill -0 $! 2>/dev/null || { tail -5 "$state/log" >&2; die "uvq-wire exited"; }
    sleep 0.02
  done
  [ -s "$state/ready" ] || die "uvq-wire did not become ready"
  cp "$state/ready" "$state/pid"
}

print_env() {
  cat <<EOF
NS_A=$NS_A
NS_W=$NS_W
NS_B=$NS_B
ADDR_A4=10.77.0.1
ADDR_B4=10.77.0.2
ADDR_A6=fd00:77::1
ADDR_B6=fd00:77::2
WIRE_STATE=$state
EOF
}

down() {
  local ns pids
  stop_emu
  [ -s "$state/stats" ] && cat "$state/stats"
  for ns in "$NS_A" "$NS_B" "$NS_W"; do
    ns_exists "$ns" || continue
    # processes left in our namespaces (test servers) would keep them alive
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    # shellcheck disable=SC2086 # one pid per word
    if [ -n "$pids" ]; then kill -KILL $pids 2>/dev/null || true; fi
    ip netns del "$ns" 2>/dev/null || true
  done
  rm -rf "$state"
}

case $cmd in
up)
  mtu=1500
  while [ $# -gt 0 ]; do
    case $1 in
      --mtu) mtu=$2; shift 2 ;;
      --) shift; break ;;
      *) die "unknown up option $1" ;;
    esac
  done
  [ "$(id -u)" = 0 ] || die "needs root"
  if [ -z "$bin" ] || [ ! -x "$bin" ]; then die "uvq-wire binary not found (set UVQ_WIRE)"; fi
  down >/dev/null 2>&1 || true
  mkdir -p "$state"
  trap 'down >/dev/null 2>&1' EXIT   # any failure below undoes everything
  for ns in "$NS_A" "$NS_W" "$NS_B"; do ip netns add "$ns"; done
  # The wire has no addresses and must not speak: no IPv6 (no RS, no MLD).
  ip netns exec "$NS_W" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
  ip -n "$NS_A" link add a0 mtu "$mtu" type veth peer name a1 mtu "$mtu" netns "$NS_W"
  ip -n "$NS_B" link add b0 mtu "$mtu" type veth peer name b1 mtu "$mtu" netns "$NS_W"
  # No GSO super-frames and no unfilled checksums may reach or leave the
  # wire: a real link carries finished packets of at most the MTU.
  ip netns exec "$NS_A" "$bin" --offloads-off a0
  ip netns exec "$NS_B" "$bin" --offloads-off b0
  ip netns exec "$NS_W" "$bin" --offloads-off a1
  ip netns exec "$NS_W" "$bin" --offloads-off b1
  ip -n "$NS_A" addr add 10.77.0.1/24 dev a0
  ip -n "$NS_A" addr add fd00:77::1/64 dev a0 nodad
  ip -n "$NS_B" addr add 10.77.0.2/24 dev b0
  ip -n "$NS_B" addr add fd00:77::2/64 dev b0 nodad
  for ns in "$NS_A" "$NS_W" "$NS_B"; do ip -n "$ns" link set lo up; done
  ip -n "$NS_W" link set a1 up
  ip -n "$NS_W" link set b1 up
  ip -n "$NS_A" link set a0 up
  ip -n "$NS_B" link set b0 up
  start_emu "$@"
  trap - EXIT
  print_env
  ;;
wire)
  [ "${1:-}" = -- ] && shift
  ns_exists "$NS_W" || die "namespaces for $prefix are not up"
  stop_emu
  start_emu "$@"
  ;;
stats)
  pid=$(emu_pid) || die "emulator not running"
  rm -f "$state/stats"
  kill -USR1 "$pid"
  for _ in $(seq 250); do [ -s "$state/stats" ] && break; sleep 0.02; done
  cat "$state/stats"
  ;;
down) down ;;
*) die "unknown command $cmd" ;;
esac
