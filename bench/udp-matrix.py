#!/usr/bin/python3
"""Runs the UDP datapath matrix (issue #3) and writes its report.

Every (mode, datagram size, pacing) is run with each implementation that
supports it, interleaved (raw libuv uvq raw libuv uvq ...) so that slow drift
of the machine hits all of them alike, for --reps repetitions. Medians are
reported; ratios are medians of the ratios of runs made in the same round.

Writes to --out-dir: udp-runs.jsonl (every run, as the programs print it),
udp.json (summary, ratios, targets, machine note, TXTIME check), udp.md
(the same as Markdown tables) and udp.png (goodput chart, with gnuplot).

Standard library only; run with Debian's /usr/bin/python3.
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

IMPLS = ["raw", "libuv", "uvq"]
MODES = [
    "sendmsg-recvmsg",
    "sendmmsg-recvmmsg",
    "gso-recvmmsg",
    "gso-gro",
    "gsommsg-gro",
    "gsommsg-groraw",
]
MODE_NOTES = {
    "sendmsg-recvmsg": "sendmsg, 1 datagram/call -> recvmsg, 1 datagram/call",
    "sendmmsg-recvmmsg": "sendmmsg, 32 datagrams/call -> recvmmsg, 32 slots",
    "gso-recvmmsg": "GSO, 1 message of up to 64 segments/call -> recvmmsg, 32 slots, no GRO (kernel splits)",
    "gso-gro": "GSO, 1 message/call -> GRO, split into datagrams for the application",
    "gsommsg-gro": "GSO + sendmmsg, 8 messages/call -> GRO, split",
    "gsommsg-groraw": "GSO + sendmmsg, 8 messages/call -> GRO raw, application splits",
}
# uvq's batched modes: the targets ask for no loss in these.
BATCHED = ["sendmmsg-recvmmsg", "gso-recvmmsg", "gso-gro", "gsommsg-gro", "gsommsg-groraw"]
# The uvq mode compared with stock libuv's best path.
UVQ_BEST = "gsommsg-gro"

METRICS = {
    "goodput_gbps": lambda d: d["goodput_gbps"],
    "goodput_dps": lambda d: d["goodput_dps"],
    "lost": lambda d: d["lost"],
    "loss_ratio": lambda d: d["loss_ratio"],
    "send_io_per_dgram": lambda d: d["send"]["io_syscalls_per_datagram"],
    "recv_io_per_dgram": lambda d: d["recv"]["io_syscalls_per_datagram"],
    "send_all_per_dgram": lambda d: d["send"]["all_syscalls_per_datagram"],
    "recv_all_per_dgram": lambda d: d["recv"]["all_syscalls_per_datagram"],
    "send_cpu_per_gb": lambda d: d["send"]["cpu_s_per_gb"],
    "recv_cpu_per_gb": lambda d: d["recv"]["cpu_s_per_gb"],
    "send_cpu_util": lambda d: d["send"]["cpu_util"],
    "recv_cpu_util": lambda d: d["recv"]["cpu_util"],
}


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def run(cmd, timeout=60, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


def machine_note(build_dir):
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    libuv = "unknown"
    try:
        libuv = run(["pkg-config", "--modversion", "libuv"]).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    commit = "unknown"
    try:
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        commit = run(["git", "-C", root, "rev-parse", "--short", "HEAD"]).stdout.strip()
        if run(["git", "-C", root, "status", "--porcelain", "--", "src", "include"]).stdout.strip():
            commit += " (src/include modified)"
    except (OSError, subprocess.SubprocessError):
        pass
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    return {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
        "cores": os.cpu_count(),
        "cpu": cpu,
        "kernel": platform.release(),
        "libuv_pkgconfig": libuv,
        "uvq_commit": commit,
        "loadavg_start": load,
    }


def txtime_check(build_dir):
    """SO_TXTIME pacing needs an fq (or etf) qdisc: try to put fq on the
    loopback of a fresh network namespace and run the check there."""
    binary = os.path.join(build_dir, "bench-udp-txtime")
    if not os.path.exists(binary):
        return {"status": "skipped: bench-udp-txtime not built (uvq did not build)"}
    if os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("tc") is None:
        return {"status": "skipped: needs root, ip and tc to create a namespace with fq"}
    ns = "uvqbench-txtime-%d" % os.getpid()
    if run(["ip", "netns", "add", ns]).returncode != 0:
        return {"status": "skipped: cannot create a network namespace"}
    try:
        run(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"])
        tc = run(["ip", "netns", "exec", ns, "tc", "qdisc", "replace", "dev", "lo", "root", "fq"])
        if tc.returncode != 0:
            return {"status": "skipped: fq qdisc unavailable",
                    "detail": (tc.stderr or tc.stdout).strip()}
        spacing_us = 100
        out = run(["ip", "netns", "exec", ns, binary, "--count", "2000",
                   "--spacing-us", str(spacing_us)], timeout=30)
        if out.returncode != 0:
            return {"status": "failed", "detail": out.stderr.strip()}
        result = json.loads(out.stdout.strip().splitlines()[-1])
        result["status"] = "ran"
        return result
    finally:
        run(["ip", "netns", "del", ns])


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build-dir", required=True, help="directory with the bench-udp-* programs")
    ap.add_argument("--out-dir", default=os.path.join(here, "results"))
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--duration-ms", type=int, default=1500)
    ap.add_argument("--warmup-ms", type=int, default=250)
    ap.add_argument("--sizes", default="1200,1452")
    ap.add_argument("--pacings", default="flow,blast")
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--impls", default=",".join(IMPLS))
    ap.add_argument("--send-cpu", type=int, default=0)
    ap.add_argument("--recv-cpu", type=int, default=1)
    ap.add_argument("--no-syscall-count", action="store_true")
    ap.add_argument("--no-chart", action="store_true")
    args = ap.parse_args()

    os.makedirs(args.out_dir, exist_ok=True)
    sizes = [int(s) for s in args.sizes.split(",")]
    pacings = args.pacings.split(",")
    modes = args.modes.split(",")
    note = machine_note(args.build_dir)

    supported = {}
    for impl in args.impls.split(","):
        binary = os.path.join(args.build_dir, "bench-udp-" + impl)
        if not os.path.exists(binary):
            print("warning: %s not built, skipping it" % binary, file=sys.stderr)
            continue
        supported[impl] = (binary, set(run([binary, "--list-modes"]).stdout.split()))

    plan = []
    for rep in range(args.reps):
        for size in sizes:
            for pacing in pacings:
                for mode in modes:
                    for impl in IMPLS:
                        if impl in supported and mode in supported[impl][1]:
                            plan.append((rep, impl, mode, size, pacing))
    per_run = (args.duration_ms + args.warmup_ms) / 1000.0 + 0.15
    print("%d runs, about %.0f s" % (len(plan), len(plan) * per_run), file=sys.stderr)

    runs = []
    failures = []
    started = time.time()
    runs_path = os.path.join(args.out_dir, "udp-runs.jsonl")
    with open(runs_path, "w") as log:
        for i, (rep, impl, mode, size, pacing) in enumerate(plan):
            cmd = [supported[impl][0], "--mode", mode, "--size", str(size),
                   "--pacing", pacing, "--duration-ms", str(args.duration_ms),
                   "--warmup-ms", str(args.warmup_ms), "--send-cpu", str(args.send_cpu),
                   "--recv-cpu", str(args.recv_cpu)]
            if args.no_syscall_count:
                cmd.append("--no-syscall-count")
            try:
                out = run(cmd, timeout=30 + 2 * (args.duration_ms + args.warmup_ms) / 1000)
                lines = [l for l in out.stdout.splitlines() if l.startswith("{")]
                d = json.loads(lines[-1]) if lines else None
            except (subprocess.TimeoutExpired, ValueError) as e:
                out, d = None, None
                err = str(e)
            if d is None or out.returncode != 0 or not d.get("ok"):
                failures.append({"impl": impl, "mode": mode, "size": size, "pacing": pacing,
                                 "rep": rep, "stderr": out.stderr.strip()[-500:] if out else err})
                print("run failed: %s %s %d %s" % (impl, mode, size, pacing), file=sys.stderr)
                if d is None:
                    continue
            d["rep"] = rep
            runs.append(d)
            log.write(json.dumps(d) + "\n")
            if (i + 1) % 20 == 0:
                print("%d/%d runs, %.0f s" % (i + 1, len(plan), time.time() - started),
                      file=sys.stderr)
    with open("/proc/loadavg") as f:
        note["loadavg_end"] = f.read().split()[:3]
    note["matrix_seconds"] = round(time.time() - started, 1)

    # Medians per configuration.
    groups = {}
    for d in runs:
        if d.get("ok"):
            groups.setdefault((d["impl"], d["mode"], d["size"], d["pacing"]), []).append(d)
    summary = []
    for (impl, mode, size, pacing), ds in sorted(groups.items(),
                                                 key=lambda kv: (kv[0][3], kv[0][2],
                                                                 MODES.index(kv[0][1]),
                                                                 IMPLS.index(kv[0][0]))):
        row = {"impl": impl, "mode": mode, "size": size, "pacing": pacing, "runs": len(ds)}
        for name, get in METRICS.items():
            row[name] = median([get(d) for d in ds])
        row["goodput_gbps_min"] = min(d["goodput_gbps"] for d in ds)
        row["goodput_gbps_max"] = max(d["goodput_gbps"] for d in ds)
        row["lost_total"] = sum(d["lost"] for d in ds)
        summary.append(row)

    def per_rep(impl, mode, size, pacing):
        return {d["rep"]: d for d in groups.get((impl, mode, size, pacing), [])}

    def paired(a, b, get):
        """Median over rounds of get(a)/get(b), runs of the same round."""
        values = []
        for rep in sorted(set(a) & set(b)):
            x, y = get(a[rep]), get(b[rep])
            if x is not None and y:
                values.append(x / y)
        return median(values), len(values)

    def cpu_both(d):
        return d["send"]["cpu_s"] + d["recv"]["cpu_s"]

    ratios = []
    targets = []
    for size in sizes:
        for pacing in pacings:
            for mode in modes:
                raw = per_rep("raw", mode, size, pacing)
                uvq = per_rep("uvq", mode, size, pacing)
                if not raw or not uvq:
                    continue
                g, n = paired(uvq, raw, METRICS["goodput_gbps"])
                cs, _ = paired(uvq, raw, METRICS["send_cpu_per_gb"])
                cr, _ = paired(uvq, raw, METRICS["recv_cpu_per_gb"])
                ratios.append({"kind": "uvq/raw", "mode": mode, "size": size, "pacing": pacing,
                               "goodput": g, "send_cpu_per_gb": cs, "recv_cpu_per_gb": cr,
                               "rounds": n})
            # Stock libuv's best path: the libuv mode with the highest
            # median goodput at this size and pacing.
            best = None
            for mode in modes:
                rows = [r for r in summary if r["impl"] == "libuv" and r["mode"] == mode
                        and r["size"] == size and r["pacing"] == pacing]
                if rows and (best is None or rows[0]["goodput_gbps"] > best["goodput_gbps"]):
                    best = rows[0]
            uvq = per_rep("uvq", UVQ_BEST, size, pacing)
            if best is not None and uvq:
                lib = per_rep("libuv", best["mode"], size, pacing)
                g, n = paired(uvq, lib, METRICS["goodput_gbps"])
                cs, _ = paired(uvq, lib, METRICS["send_cpu_per_gb"])
                cr, _ = paired(uvq, lib, METRICS["recv_cpu_per_gb"])
                ratios.append({"kind": "uvq %s / libuv best (%s)" % (UVQ_BEST, best["mode"]),
                               "mode": UVQ_BEST, "libuv_mode": best["mode"], "size": size,
                               "pacing": pacing, "goodput": g, "send_cpu_per_gb": cs,
                               "recv_cpu_per_gb": cr, "rounds": n})

    def target(name, value, goal, met, how):
        targets.append({"target": name, "value": value, "goal": goal,
                        "status": "met" if met else "missed", "margin": how})

    # Targets are judged on the flow-controlled runs: the rate a sender
    # that does not overrun its receiver gets (see bench/README.md).
    judged = "flow" if "flow" in pacings else pacings[0]
    for r in ratios:
        if r["pacing"] != judged or r["goodput"] is None:
            continue
        tag = "%s %d B" % (r["mode"], r["size"])
        if r["kind"] == "uvq/raw":
            target("uvq/raw goodput, " + tag, round(r["goodput"], 3), ">= 0.90",
                   r["goodput"] >= 0.90, "%+.1f%% vs goal" % ((r["goodput"] / 0.90 - 1) * 100))
            for side in ("send", "recv"):
                v = r[side + "_cpu_per_gb"]
                if v is not None:
                    target("uvq/raw %s CPU/GB, %s" % (side, tag), round(v, 3), "<= 1.10",
                           v <= 1.10, "%+.1f%% vs goal" % ((v / 1.10 - 1) * 100))
        else:
            target("uvq %s / libuv best (%s) goodput, %d B" % (UVQ_BEST, r["libuv_mode"], r["size"]),
                   round(r["goodput"], 2), ">= 10x", r["goodput"] >= 10,
                   "%+.1f%% vs goal" % ((r["goodput"] / 10 - 1) * 100))
            for side in ("send", "recv"):
                v = r[side + "_cpu_per_gb"]
                if v is not None:
                    target("uvq %s / libuv best %s CPU/GB, %d B" % (UVQ_BEST, side, r["size"]),
                           round(v, 3), "<= 1.0", v <= 1.0,
                           "%+.1f%% vs goal" % ((v - 1) * 100))
    for row in summary:
        if row["impl"] == "uvq" and row["mode"] in BATCHED and row["pacing"] == judged:
            target("uvq loss, %s %d B (all runs)" % (row["mode"], row["size"]),
                   row["lost_total"], "0", row["lost_total"] == 0,
                   "%d datagrams lost in %d runs" % (row["lost_total"], row["runs"]))

    txtime = txtime_check(args.build_dir)

    config = {"reps": args.reps, "duration_ms": args.duration_ms, "warmup_ms": args.warmup_ms,
              "sizes": sizes, "pacings": pacings, "modes": {m: MODE_NOTES[m] for m in modes},
              "send_cpu": args.send_cpu, "recv_cpu": args.recv_cpu,
              "syscall_counting": not args.no_syscall_count, "judged_pacing": judged}
    versions = sorted({d["impl"] + ": " + d["version"] for d in runs})
    report = {"machine": note, "versions": versions, "config": config, "summary": summary,
              "ratios": ratios, "targets": targets, "txtime": txtime, "failures": failures,
              "runs_file": os.path.basename(runs_path)}
    with open(os.path.join(args.out_dir, "udp.json"), "w") as f:
        json.dump(report, f, indent=1)
        f.write("\n")
    with open(os.path.join(args.out_dir, "udp.md"), "w") as f:
        f.write(markdown(report))
    if not args.no_chart:
        chart(report, args.out_dir)
    met = sum(1 for t in targets if t["status"] == "met")
    print("targets: %d met, %d missed; %d failed runs" % (met, len(targets) - met, len(failures)),
          file=sys.stderr)
    print(os.path.join(args.out_dir, "udp.md"))
    return 0


def fmt(v, digits=3):
    if v is None:
        return "-"
    if isinstance(v, int):
        return str(v)
    return ("%." + str(digits) + "f") % v


def markdown(rep):
    m, c = rep["machine"], rep["config"]
    out = ["# UDP datapath benchmark", ""]
    out.append("Machine: %s cores, %s, kernel %s, libuv %s (pkg-config), uvq %s; %s UTC; "
               "load average %s at start, %s at end; matrix took %s s."
               % (m["cores"], m["cpu"], m["kernel"], m["libuv_pkgconfig"], m["uvq_commit"],
                  m["date_utc"], " ".join(m["loadavg_start"]), " ".join(m.get("loadavg_end", [])),
                  m.get("matrix_seconds")))
    out.append("")
    out.append("Programs: " + "; ".join(rep["versions"]) + ".")
    out.append("")
    out.append("Each run: sender and receiver in separate processes on loopback, pinned to CPU %d "
               "and CPU %d; %d ms warm-up, %d ms measured; median of %d interleaved rounds. "
               "Goodput is measured at the receiver. `flow`: the sender keeps at most ~4 MiB "
               "beyond the receiver's acknowledgements (a control socket, off the datagram path); "
               "`blast`: the sender never waits. Syscalls are counted per datagram with "
               "per-process tracepoint counters (`io` = sendmsg/sendmmsg/recvmsg/recvmmsg calls, "
               "`all` = every system call, event loop included). CPU is getrusage(RUSAGE_SELF) of "
               "each process per GB of payload (loopback delivery runs in the sender's softirq, "
               "so the sender also pays for most of the receive path). CPU util is CPU time over "
               "wall time of the measured part: well below 1 for a sender that never waits (blast) "
               "means something else ran on its CPU and the goodput of that run is not the "
               "program's own."
               % (c["send_cpu"], c["recv_cpu"], c["warmup_ms"], c["duration_ms"], c["reps"]))
    out.append("")
    out.append("Modes: " + "; ".join("`%s`: %s" % kv for kv in c["modes"].items()) + ".")
    for pacing in c["pacings"]:
        for size in c["sizes"]:
            rows = [r for r in rep["summary"] if r["pacing"] == pacing and r["size"] == size]
            if not rows:
                continue
            out += ["", "## %d-byte datagrams, %s" % (size, pacing), ""]
            out.append("| mode | impl | Gbit/s | (min-max) | Mdgram/s | lost (median) | "
                       "send io sc/dgram | recv io sc/dgram | send all sc/dgram | "
                       "recv all sc/dgram | send CPU s/GB | recv CPU s/GB | CPU util send/recv | runs |")
            out.append("|" + "---|" * 14)
            for r in rows:
                out.append("| %s | %s | %s | %s-%s | %s | %s | %s | %s | %s | %s | %s | %s | %s/%s | %d |" % (
                    r["mode"], r["impl"], fmt(r["goodput_gbps"], 2), fmt(r["goodput_gbps_min"], 2),
                    fmt(r["goodput_gbps_max"], 2), fmt(r["goodput_dps"] / 1e6, 3),
                    fmt(r["lost"], 0) if isinstance(r["lost"], float) else fmt(r["lost"]),
                    fmt(r["send_io_per_dgram"], 4), fmt(r["recv_io_per_dgram"], 4),
                    fmt(r["send_all_per_dgram"], 4), fmt(r["recv_all_per_dgram"], 4),
                    fmt(r["send_cpu_per_gb"], 3), fmt(r["recv_cpu_per_gb"], 3),
                    fmt(r["send_cpu_util"], 2), fmt(r["recv_cpu_util"], 2), r["runs"]))
    out += ["", "## Ratios (median of per-round ratios)", ""]
    out.append("| comparison | mode | size | pacing | goodput | send CPU/GB | recv CPU/GB |")
    out.append("|---|---|---|---|---|---|---|")
    for r in rep["ratios"]:
        out.append("| %s | %s | %d | %s | %s | %s | %s |" % (
            r["kind"], r["mode"], r["size"], r["pacing"], fmt(r["goodput"], 3),
            fmt(r["send_cpu_per_gb"], 3), fmt(r["recv_cpu_per_gb"], 3)))
    out += ["", "## Targets (judged on `%s` runs)" % c["judged_pacing"], ""]
    out.append("| target | value | goal | status | margin |")
    out.append("|---|---|---|---|---|")
    for t in rep["targets"]:
        out.append("| %s | %s | %s | **%s** | %s |" % (t["target"], t["value"], t["goal"],
                                                      t["status"], t["margin"]))
    out += ["", "## SO_TXTIME pacing check", ""]
    tx = rep["txtime"]
    if tx.get("status") == "ran":
        out.append("Requested spacing %d ns, %d of %d datagrams arrived; release error median %d ns, "
                   "p99 %d ns; spacing error median %d ns, p99 %d ns; paced: %s." % (
                       tx["spacing_ns"], tx["received"], tx["count"],
                       tx["release_error_ns"]["median"], tx["release_error_ns"]["p99"],
                       tx["spacing_error_ns"]["median"], tx["spacing_error_ns"]["p99"],
                       tx["paced"]))
    else:
        out.append(tx["status"] + (" (`%s`)" % tx["detail"] if tx.get("detail") else "") + ".")
    if rep["failures"]:
        out += ["", "## Failed runs", ""]
        for f in rep["failures"]:
            out.append("- %s %s %d B %s round %d: %s" % (f["impl"], f["mode"], f["size"],
                                                         f["pacing"], f["rep"],
                                                         f["stderr"].replace("\n", " ")))
    out.append("")
    return "\n".join(out)


def chart(rep, out_dir):
    """Grouped bars of median goodput per mode, one panel per size (flow
    runs), log scale so that one datagram per call stays visible."""
    gnuplot = shutil.which("gnuplot")
    if gnuplot is None:
        print("warning: gnuplot not found, no chart", file=sys.stderr)
        return
    c = rep["config"]
    pacing = c["judged_pacing"]
    sizes = c["sizes"]
    modes = [m for m in MODES if m in c["modes"]]
    dat = os.path.join(out_dir, "udp-chart.dat")
    with open(dat, "w") as f:
        for size in sizes:
            f.write("# size %d (%s): mode raw libuv uvq\n" % (size, pacing))
            for mode in modes:
                vals = []
                for impl in IMPLS:
                    rows = [r for r in rep["summary"] if r["impl"] == impl and r["mode"] == mode
                            and r["size"] == size and r["pacing"] == pacing]
                    vals.append("%.4f" % rows[0]["goodput_gbps"] if rows else "NaN")
                f.write("%s %s\n" % (mode, " ".join(vals)))
            f.write("\n\n")
    script = [
        "set terminal pngcairo size 1400,%d font ',10'" % (420 * len(sizes)),
        "set output '%s'" % os.path.join(out_dir, "udp.png"),
        "set multiplot layout %d,1 title 'UDP goodput at the receiver, loopback, %s pacing "
        "(median of %d; %s, kernel %s; stock libuv has no GSO/GRO)'" % (len(sizes), pacing, c["reps"],
                                          rep["machine"]["cpu"], rep["machine"]["kernel"]),
        "set style data histogram",
        "set style histogram cluster gap 1",
        "set style fill solid 0.85 border -1",
        "set boxwidth 0.9",
        "set logscale y",
        "set yrange [0.1:*]",
        "set ylabel 'Gbit/s (log)'",
        "set grid ytics",
        "set key top left",
        "set xtics noenhanced",
    ]
    for i, size in enumerate(sizes):
        script.append("set title '%d-byte datagrams'" % size)
        script.append("plot '%s' index %d using 2:xtic(1) title 'raw syscalls', "
                      "'' index %d using 3 title 'stock libuv', "
                      "'' index %d using 4 title 'uvq'" % (dat, i, i, i))
    script.append("unset multiplot")
    res = subprocess.run([gnuplot], input="\n".join(script) + "\n", capture_output=True, text=True)
    if res.returncode != 0:
        print("warning: gnuplot failed: " + res.stderr.strip(), file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
