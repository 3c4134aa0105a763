#!/usr/bin/python3
"""The QUIC server at scale (issue 13, item 6 and two of its targets).

Cases (--cases, comma-separated; all by default):
  idle   --idle-connections (10000,50000) concurrent idle HTTP/3
         connections: bench-quic-idle --mode h3-shared --requests. Server
         VmRSS and heap per connection, time to open them all (--pending 64
         handshakes at a time), then one GET on every connection (32 in
         flight) with p50/p99 latency. Server pinned to CPU 1, clients to
         CPU 0. Target: at most 40 KB per connection at 50,000.
  burst  --burst-clients (3000) uvq_h3_t clients, each its own socket,
         all connecting at once, one GET each (bench-quic-burst), against
         uvq-h3-server with default settings (2 workers here: one per
         core), uvq-h3-server --workers 1, and gtlsserver (ngtcp2's
         example, one thread). Served/refused/failed from the clients,
         accepted/refused/retried from uvq's own summary. Nothing pinned.
         Target: every client served, none refused.
  flood  a normal client fetches /small.bin (new connection each time,
         every 100 ms) for --quiet-ms, then for --flood-ms while
         bench-quic-flood sends --flood-rate (1500) real captured client
         Initials per second from 64 plain sockets: uvq-h3-server with its
         default Retry policy (auto), and with --retry never for contrast.
         Target: every fetch during the flood served, median latency at
         most 2x the quiet one.

Every case starts its own server. Writes --out-dir/quic-scale.json (all
runs, the machine note with the load average at start and end) and
quic-scale.md. This machine has 2 cores shared by the servers and the load
generator: CPU time per unit is reported beside wall time.

  bench/quic-scale.py --build-dir build-qbench [--reps 1] [--cases idle]
"""

import argparse
import datetime
import json
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from benchlib import proc_cpu_threads as proc_cpu

HERE = os.path.dirname(os.path.abspath(__file__))


def run(cmd, timeout=60):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().split()[:3]


def proc_mem_kb(pid):
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM"):
                    out[k] = int(v.split()[0])
    except OSError:
        pass
    return out


def udp_rcvbuf_errors():
    """The kernel's count of UDP datagrams dropped for a full socket
    receive buffer (all sockets: on loopback during a case, the case's)."""
    with open("/proc/net/snmp") as f:
        rows = [l.split() for l in f if l.startswith("Udp:")]
    return int(rows[1][rows[0].index("RcvbufErrors")])


def free_udp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def last_json(text):
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                return None
    return None


SUMMARY = re.compile(r"stopped \([^)]*\): (\d+) requests \((\d+) failed\) on (\d+) connections "
                     r"\((\d+) refused, (\d+) retried\)")


class Server:
    def __init__(self, kind, work, build, extra=()):
        self.kind = kind
        self.err = tempfile.TemporaryFile(mode="w+")
        if kind == "uvq":
            cmd = [os.path.join(build, "tools", "uvq-h3-server"), "--cert", work["cert"], "--key",
                   work["key"], "--root", work["www"], "--port", "0"] + list(extra)
            self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.err, text=True)
            line = self.p.stdout.readline()
            if not line.startswith("listening on"):
                raise RuntimeError("uvq-h3-server did not start: " + line)
            self.port = int(line.split()[3])
        else:
            self.port = free_udp_port()
            cmd = [shutil_which("gtlsserver") or "gtlsserver", "-q", "-d", work["www"], "127.0.0.1", str(self.port),
                   work["key"], work["cert"]]
            self.p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self.err, text=True)
            want = ":%04X" % self.port
            end = time.time() + 5
            while time.time() < end:
                with open("/proc/net/udp") as f:
                    if any(l.split()[1].endswith(want) for l in list(f)[1:]):
                        break
                time.sleep(0.02)
        self.cmd = cmd

    def stop(self):
        """Stops it; returns uvq's summary counters (or {})."""
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.err.seek(0)
        text = self.err.read()
        self.err.close()
        if self.p.stdout:
            self.p.stdout.close()
        m = SUMMARY.search(text)
        if not m:
            return {}
        keys = ("server_requests", "server_requests_failed", "server_connections",
                "server_refused", "server_retried")
        return dict(zip(keys, (int(x) for x in m.groups())))


def setup(work_dir):
    os.makedirs(os.path.join(work_dir, "www"), exist_ok=True)
    w = {"cert": os.path.join(work_dir, "cert.pem"), "key": os.path.join(work_dir, "key.pem"),
         "www": os.path.join(work_dir, "www")}
    if not os.path.exists(w["cert"]):
        r = run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-nodes", "-keyout", w["key"], "-out", w["cert"], "-days", "30", "-subj",
                 "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        if r.returncode != 0:
            raise RuntimeError("openssl: " + r.stderr)
    p = os.path.join(w["www"], "small.bin")
    if not os.path.exists(p) or os.path.getsize(p) != 100:
        with open(p, "wb") as f:
            f.write(os.urandom(100))
    return w


# ---- cases ----

def case_idle(a, w, n, mode="h3-shared"):
    cmd = [os.path.join(a.build_dir, "bench", "bench-quic-idle"), "--mode", mode,
           "--connections", str(n), "--requests", "--settle-ms", "1000", "--cert", w["cert"],
           "--key", w["key"]]
    d = {"case": "idle", "impl": "uvq-" + mode, "connections": n, "loadavg_before": loadavg()}
    t0 = time.time()
    r = run(cmd, timeout=900)
    d["wall_s"] = round(time.time() - t0, 1)
    d["loadavg_after"] = loadavg()
    j = last_json(r.stdout)
    if j is None:
        d.update(ok=False, error=r.stderr.strip()[-400:])
        return d
    d.update(ok=r.returncode == 0, raw=j)
    if j["connections"]:
        d["server_cpu_ms_per_handshake"] = round(j["server_cpu_connect_s"] * 1000 / j["connections"], 3)
    if j.get("server_requests"):
        d["server_cpu_us_per_request"] = round(j["server_cpu_requests_s"] * 1e6 / j["server_requests"], 1)
        d["server_heap_growth_per_conn_after_request"] = round(
            (j["server_heap_after_requests"] - j["server_heap_after"]) / j["connections"])
    if not d["ok"]:
        d["error"] = j.get("error") or r.stderr.strip()[-300:]
    return d


def case_burst(a, w, impl):
    kind = "gtls" if impl.startswith("gtls") else "uvq"
    extra = ["--workers", "1"] if impl == "uvq-w1" else []
    d = {"case": "burst", "impl": impl, "clients": a.burst_clients, "loadavg_before": loadavg()}
    srv = Server(kind, w, a.build_dir, extra)
    cpu0 = proc_cpu(srv.p.pid)
    drops0 = udp_rcvbuf_errors()
    cmd = [os.path.join(a.build_dir, "bench", "bench-quic-burst"), "--port", str(srv.port),
           "--clients", str(a.burst_clients), "--timeout-ms", "60000"]
    if impl.endswith("-hs30"):
        # The clients wait 30 s for their handshake instead of uvq's 10.
        cmd += ["--handshake-timeout-ms", "30000"]
    try:
        r = run(cmd, timeout=120)
        cpu1 = proc_cpu(srv.p.pid)
        mem = proc_mem_kb(srv.p.pid)
        d["udp_rcvbuf_drops"] = udp_rcvbuf_errors() - drops0
    finally:
        summary = srv.stop()
    d["loadavg_after"] = loadavg()
    j = last_json(r.stdout)
    if j is None:
        d.update(ok=False, error=r.stderr.strip()[-400:])
        return d
    d.update(raw=j, summary=summary, server_vmhwm_kb=mem.get("VmHWM"))
    if cpu0 is not None and cpu1 is not None:
        d["server_cpu_s"] = round(cpu1 - cpu0, 3)
    d["ok"] = j["served"] == a.burst_clients and j["refused"] == 0
    return d


def case_flood(a, w, impl):
    extra = {"uvq-retry-never": ["--retry=never"],
             "uvq-threshold-500": ["--retry-threshold", "500"]}.get(impl, [])
    d = {"case": "flood", "impl": impl, "rate": a.flood_rate, "loadavg_before": loadavg()}
    srv = Server("uvq", w, a.build_dir, extra)
    cmd = [os.path.join(a.build_dir, "bench", "bench-quic-flood"), "--port", str(srv.port),
           "--rate", str(a.flood_rate), "--sockets", "64", "--quiet-ms", str(a.quiet_ms),
           "--flood-ms", str(a.flood_ms), "--interval-ms", "100"]
    try:
        mem0 = proc_mem_kb(srv.p.pid)
        r = run(cmd, timeout=300)
        mem = proc_mem_kb(srv.p.pid)
    finally:
        summary = srv.stop()
    d["loadavg_after"] = loadavg()
    j = last_json(r.stdout)
    if j is None:
        d.update(ok=False, error=r.stderr.strip()[-400:])
        return d
    d.update(raw=j, summary=summary, server_rss_kb_before=mem0.get("VmRSS"),
             server_vmhwm_kb=mem.get("VmHWM"))
    if j["quiet_p50_ms"]:
        d["p50_ratio"] = round(j["flood_p50_ms"] / j["quiet_p50_ms"], 2)
        d["p90_ratio"] = round(j["flood_p90_ms"] / j["quiet_p90_ms"], 2)
        d["max_over_quiet_p50"] = round(j["flood_max_ms"] / j["quiet_p50_ms"], 1)
        # The flood's fetches slower than twice the slowest quiet one (or
        # failed), by position. Twice the quiet median would also catch
        # the quiet phase's own scatter on a shared machine.
        d["flood_slow_fetches"] = [(i, v) for i, v in enumerate(j["flood_series_ms"])
                                   if v < 0 or v > 2 * j["quiet_max_ms"]]
    d["ok"] = (j["flood_failed"] == 0 and j["flood_served"] > 0 and
               d.get("p50_ratio", 99) <= 2.0)
    return d


# ---- report ----

def machine_note():
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    root = os.path.dirname(HERE)
    commit = run(["git", "-C", root, "rev-parse", "--short", "HEAD"]).stdout.strip()
    if run(["git", "-C", root, "status", "--porcelain", "--", "src", "quic", "include",
            "bench", "tools", ":!bench/results"]).stdout.strip():
        commit += " (modified)"
    with open("/proc/meminfo") as f:
        mem = f.readline().split()[1]
    return {"date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
            "cores": os.cpu_count(), "cpu": cpu, "memory_kb": int(mem),
            "kernel": platform.release(), "uvq_commit": commit, "loadavg_start": loadavg()}


def fmt(v, nd=1):
    if v is None:
        return "-"
    if isinstance(v, float):
        return ("%%.%df" % nd) % v
    return str(v)


def markdown(rep):
    m = rep["machine"]
    out = ["# uvq at scale: 10,000s of idle connections, a burst, an Initial flood", "",
           "Written by bench/quic-scale.py (issue 13, item 6). %s UTC, commit %s, %d cores (%s), "
           "%d GiB, Linux %s. Load average at start %s, at end %s (other builds and tests may "
           "have shared the machine; the load average says how much). **This machine has 2 "
           "cores shared by the servers and the load generator**: wall times are bounded by "
           "that; CPU per unit is the figure to compare." % (
               m["date_utc"], m["uvq_commit"], m["cores"], m["cpu"],
               round(m["memory_kb"] / 1048576), m["kernel"], " ".join(m["loadavg_start"]),
               " ".join(rep["loadavg_end"])), ""]
    runs = rep["runs"]
    idle = [r for r in runs if r["case"] == "idle"]
    if idle:
        out += ["## Idle HTTP/3 connections, then one request on each", "",
                "bench-quic-idle --mode h3-shared: a uvq_h3 server (bench/quic-common.c, "
                "max_connections raised to fit) forked and pinned to CPU 1; the clients are "
                "connections on 16 shared uvq_quic endpoints (CPU 0) speaking HTTP/3 themselves "
                "(control and QPACK streams, static-table QPACK requests): a uvq_h3_t client "
                "owns its endpoint and socket (the client heap column of the uvq_h3_t row), "
                "which 50,000 would not fit. The row marked uvq_h3_t makes each connection a "
                "uvq_h3_t client instead, to show that the server holds the same state either "
                "way. 10 warm-up connections first; at most 64 "
                "handshakes in flight; memory read once all are up and quiet for 1 s; then one "
                "GET / on every connection, 32 in flight, each timed from the request to the "
                "response's end.", "",
                "| connections | server RSS/conn | server heap/conn | time to open all | "
                "server CPU/handshake | request p50 | p99 | max | all requests | server CPU/request "
                "| heap growth/conn after the request | client heap/conn | load before/after | ok |",
                "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in idle:
            j = r.get("raw") or {}
            out.append("| %s%s | %s KB | %s KB | %s s (%s/s) | %s ms | %s ms | %s ms | %s ms | %s s | "
                       "%s us | %s B | %s KB | %s / %s | %s |" % (
                           fmt(r["connections"]),
                           " (uvq_h3_t clients)" if r.get("impl") == "uvq-h3" else "",
                           fmt(j.get("rss_bytes_per_conn", 0) / 1000.0),
                           fmt(j.get("heap_bytes_per_conn", 0) / 1000.0),
                           fmt(j.get("connect_seconds"), 1),
                           fmt(round(r["connections"] / j["connect_seconds"]) if j.get("connect_seconds") else None),
                           fmt(r.get("server_cpu_ms_per_handshake"), 3),
                           fmt(j.get("request_p50_ms"), 2), fmt(j.get("request_p99_ms"), 2),
                           fmt(j.get("request_max_ms"), 1), fmt(j.get("requests_seconds"), 2),
                           fmt(r.get("server_cpu_us_per_request")),
                           fmt(r.get("server_heap_growth_per_conn_after_request")),
                           fmt(j.get("client_heap_bytes_per_conn", 0) / 1000.0),
                           r.get("loadavg_before", "-")[0], r.get("loadavg_after", "-")[0],
                           "yes" if r.get("ok") else "NO: " + str(r.get("error"))))
        out.append("")
    burst = [r for r in runs if r["case"] == "burst"]
    if burst:
        out += ["## A burst of clients connecting at once", "",
                "bench-quic-burst: %d uvq_h3_t clients, each its own UDP socket, created first, "
                "then all handshakes started in one loop iteration; one GET /small.bin each, then "
                "a graceful close. Times from the first connect. Nothing pinned: the server (one "
                "or two threads) and the one-threaded load generator share both cores, and the "
                "generator's own CPU (the client CPU column) is part of every wall time. "
                "Dropped datagrams: the kernel's UDP RcvbufErrors over the run, server and "
                "clients together. Refused: the client's handshake ended with "
                "CONNECTION_REFUSED; failed: any "
                "other end (kind 4 is the client's handshake timeout, 10 s). uvq's "
                "figures on the right are from its own summary." % burst[0]["clients"], "",
                "| server | served | refused | failed | time to serve all | p50 | p99 | server "
                "CPU | client CPU | datagrams dropped (full receive buffers) | uvq: connections | "
                "refused | retried | load before/after | all served |",
                "|" + "---|" * 15]
        names = {"uvq": "uvq-h3-server (defaults: 2 workers)", "uvq-w1": "uvq-h3-server --workers 1",
                 "gtls": "gtlsserver",
                 "gtls-hs30": "gtlsserver, clients wait 30 s for the handshake"}
        for r in burst:
            j = r.get("raw") or {}
            s = r.get("summary") or {}
            out.append("| %s | %s | %s | %s | %s s | %s ms | %s ms | %s s | %s s | %s | %s | %s | %s | "
                       "%s / %s | %s |" % (
                           names.get(r["impl"], r["impl"]), fmt(j.get("served")),
                           fmt(j.get("refused")), fmt(j.get("failed")),
                           fmt(j.get("seconds"), 2), fmt(j.get("served_p50_ms"), 0),
                           fmt(j.get("served_p99_ms"), 0), fmt(r.get("server_cpu_s"), 2),
                           fmt(j.get("client_cpu_s"), 2), fmt(r.get("udp_rcvbuf_drops")),
                           fmt(s.get("server_connections")),
                           fmt(s.get("server_refused")), fmt(s.get("server_retried")),
                           r.get("loadavg_before", "-")[0], r.get("loadavg_after", "-")[0],
                           "yes" if r.get("ok") else "no"))
        out.append("")
    flood = [r for r in runs if r["case"] == "flood"]
    if flood:
        j0 = flood[0].get("raw") or {}
        out += ["## Normal fetches during an Initial flood", "",
                "bench-quic-flood: a new uvq_h3_t client every 100 ms fetches /small.bin "
                "(timed from connect to the response's end), %s ms quietly, then %s ms while "
                "%s real client Initials per second (captured from uvq clients, each with its "
                "own connection ID, never repeated) arrive from 64 plain UDP sockets that "
                "never answer. uvq-h3-server with default settings (2 workers, Retry auto: "
                "from 100 handshakes in progress per worker), with --retry-threshold 500 (the "
                "default until 2026-12-04), and "
                "with --retry=never for contrast. Server memory: VmHWM after the flood. The "
                "first flood fetch starts 100 ms into the flood." % (
                    a_quiet(flood), a_flood(flood), fmt(j0.get("rate"))), "",
                "| server | quiet: fetches | p50 | p90 | max | flood: fetches | served | failed | "
                "p50 | p90 | max | p50 ratio | first 6 flood fetches, in order | flood sent | Retry/Initial replies | "
                "server connections | refused | retried | server VmHWM | load before/after | "
                "median target met |", "|" + "---|" * 21]
        for r in flood:
            j = r.get("raw") or {}
            s = r.get("summary") or {}
            out.append("| %s | %s | %s ms | %s ms | %s ms | %s | %s | %s | %s ms | %s ms | %s ms | "
                       "%s | %s | %s | %s/%s | %s | %s | %s | %s MB | %s / %s | %s |" % (
                           {"uvq": "uvq-h3-server (defaults, Retry auto)",
                            "uvq-threshold-500": "uvq-h3-server --retry-threshold 500",
                            "uvq-retry-never": "uvq-h3-server --retry=never"}.get(r["impl"], r["impl"]),
                           fmt(j.get("quiet_fetches")), fmt(j.get("quiet_p50_ms"), 2),
                           fmt(j.get("quiet_p90_ms"), 2), fmt(j.get("quiet_max_ms"), 1),
                           fmt(j.get("flood_fetches")), fmt(j.get("flood_served")),
                           fmt(j.get("flood_failed")), fmt(j.get("flood_p50_ms"), 2),
                           fmt(j.get("flood_p90_ms"), 2), fmt(j.get("flood_max_ms"), 1),
                           fmt(r.get("p50_ratio"), 2),
                           " ".join("%.0f" % v if v >= 0 else "x" for v in
                                    j.get("flood_series_ms", [])[:6]),
                           fmt(j.get("flood_sent")),
                           fmt(j.get("replies_retry")), fmt(j.get("replies_initial")),
                           fmt(s.get("server_connections")), fmt(s.get("server_refused")),
                           fmt(s.get("server_retried")),
                           fmt(r["server_vmhwm_kb"] / 1024.0 if r.get("server_vmhwm_kb") else None),
                           r.get("loadavg_before", "-")[0], r.get("loadavg_after", "-")[0],
                           "yes" if r.get("ok") else "no"))
        out.append("")
    out += ["## Targets", "", "| target | result | met |", "|---|---|---|"]
    for t in rep["targets"]:
        out.append("| %s | %s | %s |" % (t["target"], t["result"], "yes" if t["met"] else "**no**"))
    out += ["", "Where a target is missed, bench/results/quic-gaps.md says why.", ""]
    return "\n".join(out)


def a_quiet(flood):
    return fmt(flood[0].get("quiet_ms"))


def a_flood(flood):
    return fmt(flood[0].get("flood_ms"))


def targets(runs):
    t = []
    for r in runs:
        j = r.get("raw") or {}
        if r["case"] == "idle" and r["connections"] >= 50000 and r["impl"] == "uvq-h3-shared" and j:
            kb = j["heap_bytes_per_conn"] / 1000.0
            t.append({"target": "idle memory at most 40 KB per HTTP/3 connection at %d" % r["connections"],
                      "result": "%.1f KB heap, %.1f KB RSS" % (kb, j["rss_bytes_per_conn"] / 1000.0),
                      "met": kb <= 40 and j["rss_bytes_per_conn"] / 1000.0 <= 40})
        if r["case"] == "burst" and not r["impl"].startswith("gtls") and j:
            t.append({"target": "%d-client burst (%s): every client served, none refused" % (
                r["clients"], r["impl"]),
                "result": "%d served, %d refused, %d failed in %.2f s" % (
                    j["served"], j["refused"], j["failed"], j["seconds"]),
                "met": bool(r.get("ok"))})
        if r["case"] == "flood" and r["impl"] == "uvq" and j:
            t.append({"target": "Initial flood (%d/s, Retry auto): every fetch served, median latency "
                      "at most 2x quiet" % r["rate"],
                      "result": "%d/%d served; p50 %.2f ms against %.2f quiet (%.2fx), p90 %.2fx" % (
                          j["flood_served"], j["flood_fetches"], j["flood_p50_ms"],
                          j["quiet_p50_ms"], r.get("p50_ratio", 0), r.get("p90_ratio", 0)),
                      "met": bool(r.get("ok"))})
            slow = r.get("flood_slow_fetches", [])
            t.append({"target": "... and no fetch slower than twice the slowest quiet fetch "
                      "(%.1f ms)" % j["quiet_max_ms"],
                      "result": ("%d of %d over (fetches #%s, up to %.0f ms)" % (
                          len(slow), j["flood_fetches"],
                          ",".join(str(i + 1) for i, _ in slow[:8]) + ("..." if len(slow) > 8 else ""),
                          j["flood_max_ms"]) if slow else "all within"),
                      "met": not slow})
    return t


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--out-dir", default=os.path.join(HERE, "results"))
    ap.add_argument("--work-dir", help="certificates and files (default BUILD/qscale)")
    ap.add_argument("--cases", default="idle,burst,flood")
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--idle-connections", default="10000,50000")
    ap.add_argument("--idle-h3-connections", type=int, default=2000,
                    help="the same with a uvq_h3_t client per connection, for comparison (0: not)")
    ap.add_argument("--burst-clients", type=int, default=3000)
    ap.add_argument("--burst-servers", default="uvq,uvq-w1,gtls,gtls-hs30")
    ap.add_argument("--flood-rate", type=int, default=1500)
    ap.add_argument("--quiet-ms", type=int, default=5000)
    ap.add_argument("--flood-ms", type=int, default=10000)
    ap.add_argument("--flood-servers", default="uvq,uvq-threshold-500,uvq-retry-never")
    a = ap.parse_args()
    a.build_dir = os.path.abspath(a.build_dir)
    w = setup(a.work_dir or os.path.join(a.build_dir, "qscale"))
    cases = a.cases.split(",")
    note = machine_note()
    runs = []
    for rep in range(a.reps):
        plan = []
        if "idle" in cases:
            plan += [("idle", int(n)) for n in a.idle_connections.split(",")]
            if a.idle_h3_connections:
                plan.append(("idle-h3", a.idle_h3_connections))
        if "burst" in cases:
            plan += [("burst", s) for s in a.burst_servers.split(",")]
        if "flood" in cases:
            plan += [("flood", s) for s in a.flood_servers.split(",")]
        for case, arg in plan:
            if case == "burst" and arg.startswith("gtls") and not shutil_which("gtlsserver"):
                print("skip burst gtls: no gtlsserver (Debian package ngtcp2-server)", file=sys.stderr)
                continue
            print("round %d: %s %s" % (rep + 1, case, arg), file=sys.stderr)
            try:
                if case == "idle-h3":
                    d = case_idle(a, w, arg, mode="h3")
                else:
                    d = {"idle": case_idle, "burst": case_burst, "flood": case_flood}[case](a, w, arg)
            except (RuntimeError, OSError, subprocess.SubprocessError) as e:
                d = {"case": case, "impl": str(arg), "ok": False, "error": str(e)}
            if case == "flood":
                d["quiet_ms"], d["flood_ms"] = a.quiet_ms, a.flood_ms
            d["round"] = rep + 1
            runs.append(d)
            print(json.dumps({k: v for k, v in d.items() if k != "raw"}), file=sys.stderr)
    rep = {"machine": note, "loadavg_end": loadavg(), "runs": runs, "targets": targets(runs),
           # Paths inside the tree relative to it: the report names no
           # machine's directories.
           "command": " ".join(sys.argv[1:]).replace(
               os.path.dirname(HERE) + os.sep, "")}
    os.makedirs(a.out_dir, exist_ok=True)
    with open(os.path.join(a.out_dir, "quic-scale.json"), "w") as f:
        json.dump(rep, f, indent=1)
        f.write("\n")
    with open(os.path.join(a.out_dir, "quic-scale.md"), "w") as f:
        f.write(markdown(rep))
    print(markdown(rep))


def shutil_which(name):
    for d in os.environ.get("PATH", "").split(":") + ["/usr/sbin"]:
        p = os.path.join(d, name)
        if os.access(p, os.X_OK):
            return p
    return None


if __name__ == "__main__":
    main()
