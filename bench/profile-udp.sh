#!/bin/bash
# Profiles one benchmark run with perf (cpu-clock sampling, both processes)
# and prints, per side, where the CPU time goes: the top symbols with their
# share of that side's samples and their cost in nanoseconds per datagram.
#   bench/profile-udp.sh uvq gsommsg-gro [more bench-udp-* options]
# Needs perf and a build from bench/run-udp.sh (or UVQ_BENCH_BUILD).
set -euo pipefail

impl=${1:?usage: profile-udp.sh raw|libuv|uvq MODE [options]}
mode=${2:?usage: profile-udp.sh raw|libuv|uvq MODE [options]}
shift 2
here=$(cd "$(dirname "$0")" && pwd)
build=${UVQ_BENCH_BUILD:-$(dirname "$here")/build-bench}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
freq=4999

perf record -q -e cpu-clock -F $freq -o "$tmp/perf.data" -- \
  "$build/bench/bench-udp-$impl" --mode "$mode" --no-syscall-count "$@" >"$tmp/run.json"
perf script -i "$tmp/perf.data" -F pid,ip,sym,dso 2>/dev/null >"$tmp/samples.txt"

/usr/bin/python3 - "$tmp/run.json" "$tmp/samples.txt" $freq <<'PY'
import collections, json, sys
run = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
period_ns = 1e9 / int(sys.argv[3])
by_pid = collections.defaultdict(collections.Counter)
for line in open(sys.argv[2]):
    parts = line.split(None, 2)
    if len(parts) < 3:
        continue
    by_pid[parts[0]][parts[2].strip()] += 1
pids = sorted(by_pid, key=int)
print("%s %s %d B %s: %.2f Gbit/s, lost %d" % (run["impl"], run["mode"], run["size"],
      run["pacing"], run["goodput_gbps"], run["lost"]))
# The parent (lower pid) sends; the child receives.
for pid, side in zip(pids, ("send", "recv")):
    c = by_pid[pid]
    total = sum(c.values())
    dgrams = run[side]["datagrams"] + run[side]["warmup_datagrams"]
    print("\n%s (pid %s): %d samples, %.0f ns CPU per datagram (whole run incl. warm-up)"
          % (side, pid, total, total * period_ns / max(dgrams, 1)))
    for sym, n in c.most_common(18):
        print("  %5.1f%%  %7.1f ns/dgram  %s" % (100.0 * n / total, n * period_ns / max(dgrams, 1), sym))
PY
