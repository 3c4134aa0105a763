#!/usr/bin/env python3
"""Aggregate handshakes/s and requests/s of uvq-h3-server at 1 and 2
workers (issue 13, item 6), with CPU per unit as the primary figure.

Each round starts a fresh server per case and worker count, interleaved:
  hs   bench-quic-handshake --mode tls --connect (full handshakes, no
       request) with --concurrency connecting clients, for --hs-ms;
  rps  --clients uvq-h3-client processes at once, each one connection with
       --concurrency 25 requests in flight, --requests 1 KiB GETs each.
The server may run on every CPU; the load generator is not pinned away
from it. Server CPU is the sum over every thread of the server (each worker) of
/proc/PID/task/TID/schedstat; client CPU from wait4(). (bench-quic-
handshake's own server figure reads /proc/PID/schedstat, the main thread
only, so it is not used here.) Writes
bench/results/quic-workers.{json,md}.

  bench/quic-workers.py --build-dir build/dev [--reps 3]
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

from benchlib import proc_cpu_threads

CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid):
    """CPU time of every thread of a live process, in seconds
    (benchlib.proc_cpu_threads), else utime + stime."""
    total = proc_cpu_threads(pid)
    if total is not None:
        return total
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class Server:
    def __init__(self, a, workers, verbose=False):
        cmd = [os.path.join(a.build_dir, "tools", "uvq-h3-server"), "--cert", a.cert,
               "--key", a.key, "--root", a.www, "--port", "0", "--workers", str(workers)]
        if verbose:
            cmd.append("-v")
        self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)
        line = self.p.stdout.readline()
        if not line.startswith("listening on"):
            raise RuntimeError("server did not start: " + line + self.p.stderr.read())
        self.port = int(line.split()[3])

    def stop(self):
        self.p.terminate()
        _, err = self.p.communicate(timeout=10)
        return err


def per_worker(err):
    """Connections per worker from the -v summary."""
    return [int(m.group(2)) for m in
            re.finditer(r"^uvq-h3-server: worker (\d+): \d+ requests on (\d+) connections",
                        err, re.M)]


def hs(a, workers):
    srv = Server(a, workers, verbose=True)
    try:
        c0 = proc_cpu(srv.p.pid)
        cmd = [os.path.join(a.build_dir, "bench", "bench-quic-handshake"), "--mode", "tls",
               "--duration-ms", str(a.hs_ms), "--connect", "127.0.0.1:%d" % srv.port,
               "--server-pid", str(srv.p.pid), "--concurrency", str(a.hs_concurrency)]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=a.hs_ms / 1000 + 30)
        c1 = proc_cpu(srv.p.pid)
    finally:
        err = srv.stop()
    j = json.loads(r.stdout.strip().splitlines()[-1])
    n = j["connections"]
    d = {"case": "hs", "workers": workers, "ok": r.returncode == 0 and n > 0,
         "connections": n, "handshakes_per_s": j["handshakes_per_s"],
         "client_cpu_ms_per_hs": j["client_cpu_ms_per_conn"],
         "server_cpu_ms_per_hs": (c1 - c0) / n * 1e3 if n else None,
         "server_cpu_util": (c1 - c0) / (a.hs_ms / 1000),
         "per_worker_connections": per_worker(err)}
    return d


def rps(a, workers):
    srv = Server(a, workers)
    url = "https://127.0.0.1:%d/1k.bin" % srv.port
    cmd = [os.path.join(a.build_dir, "tools", "uvq-h3-client"), "--cacert", a.cert,
           "--discard", "--concurrency", "25", "--repeat", str(a.requests), url]
    procs = []
    try:
        c0 = proc_cpu(srv.p.pid)
        start = time.perf_counter()
        for _ in range(a.clients):
            procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.PIPE))
        ccpu = 0.0
        rcs = []
        for p in procs:
            _, status, ru = os.wait4(p.pid, 0)
            rcs.append(os.waitstatus_to_exitcode(status))
            ccpu += ru.ru_utime + ru.ru_stime
        wall = time.perf_counter() - start
        c1 = proc_cpu(srv.p.pid)
    finally:
        srv.stop()
        for p in procs:
            p.stderr.close()
    total = a.clients * a.requests
    return {"case": "rps", "workers": workers, "ok": all(rc == 0 for rc in rcs),
            "requests": total, "wall_s": wall, "requests_per_s": total / wall,
            "server_cpu_us_per_req": (c1 - c0) / total * 1e6,
            "client_cpu_us_per_req": ccpu / total * 1e6,
            "server_cpu_util": (c1 - c0) / wall}


def median(v):
    v = sorted(x for x in v if x is not None)
    return v[len(v) // 2] if v else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--out-dir", default=os.path.join(os.path.dirname(__file__), "results"))
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--hs-ms", type=int, default=3000)
    ap.add_argument("--hs-concurrency", type=int, default=8)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--requests", type=int, default=10000)
    ap.add_argument("--note", default="")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="uvq-qworkers-")
    a.cert = os.path.join(work, "cert.pem")
    a.key = os.path.join(work, "key.pem")
    a.www = os.path.join(work, "www")
    os.mkdir(a.www)
    with open(os.path.join(a.www, "1k.bin"), "wb") as f:
        f.write(os.urandom(1024))
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", a.key, "-out", a.cert,
                    "-days", "2", "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=DNS:localhost,IP:127.0.0.1"], check=True,
                   capture_output=True)
    load0 = os.getloadavg()
    runs = []
    for rep in range(a.reps):
        for w in (1, 2):
            for fn in (hs, rps):
                d = fn(a, w)
                d["rep"] = rep
                runs.append(d)
                print(json.dumps(d), file=sys.stderr)
    load1 = os.getloadavg()
    summary = []
    for case, keys in (("hs", ["handshakes_per_s", "server_cpu_ms_per_hs",
                               "client_cpu_ms_per_hs", "server_cpu_util"]),
                       ("rps", ["requests_per_s", "server_cpu_us_per_req",
                                "client_cpu_us_per_req", "server_cpu_util"])):
        for w in (1, 2):
            rs = [r for r in runs if r["case"] == case and r["workers"] == w]
            s = {"case": case, "workers": w, "runs": len(rs),
                 "failed": sum(1 for r in rs if not r["ok"])}
            for k in keys:
                s[k] = median([r[k] for r in rs if r["ok"]])
            summary.append(s)
    rep = {"machine": {"cpus": os.cpu_count(), "loadavg_start": load0, "loadavg_end": load1,
                       "note": a.note},
           "settings": vars(a), "summary": summary, "runs": runs}
    os.makedirs(a.out_dir, exist_ok=True)
    with open(os.path.join(a.out_dir, "quic-workers.json"), "w") as f:
        json.dump(rep, f, indent=1)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
