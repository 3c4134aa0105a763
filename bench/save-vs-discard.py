#!/usr/bin/env python3
"""Does saving a download cost more than discarding it? (issue 14)

Times uvq-h3-client fetching one file from uvq-h3-server on loopback, with
the body written to a file (-o) or thrown away (--discard), interleaved
(discard, save, save, discard, ...) so that a change in the machine's load
hits both alike. Reports medians of the client's wall time (process start
to exit: handshake, transfer, the last write and close) and of its own
transfer time (first request to last response, from --json), the ratio
save/discard, and the write() calls per saved body. The server runs on
CPU 1 and the client on CPU 0 where there are two.

    bench/save-vs-discard.py --tools-dir build/dev/tools [--size-mb 100]
        [--reps 9] [--out-dir bench/results] [--save-dir DIR] [--note TEXT]

Writes save-vs-discard.json and save-vs-discard.md into --out-dir. The
saved file goes to --save-dir (default: a directory next to the output
files, on the disk rather than a tmpfs, as a download would); its file
system type is in the report.
"""
import argparse
import datetime
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def pin(cpu):
    if shutil.which("taskset") and os.cpu_count() and os.cpu_count() > 1:
        return ["taskset", "-c", str(cpu)]
    return []


def fs_type(path):
    try:
        return run(["stat", "-f", "-c", "%T", path]).stdout.strip()
    except (subprocess.CalledProcessError, FileNotFoundError):
        return "unknown"


def machine_note(note):
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        commit = run(["git", "-C", os.path.dirname(os.path.abspath(__file__)),
                      "rev-parse", "--short", "HEAD"]).stdout.strip()
    except (subprocess.CalledProcessError, FileNotFoundError):
        commit = "unknown"
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "kernel": os.uname().release,
        "uvq_commit": commit,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "loadavg_start": os.getloadavg(),
        "note": note,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tools-dir", required=True)
    ap.add_argument("--size-mb", type=int, default=100)
    ap.add_argument("--reps", type=int, default=9)
    ap.add_argument("--out-dir", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    ap.add_argument("--save-dir")
    ap.add_argument("--note", default="")
    a = ap.parse_args()

    server = os.path.join(a.tools_dir, "uvq-h3-server")
    client = os.path.join(a.tools_dir, "uvq-h3-client")
    work = tempfile.mkdtemp(prefix="uvq-savebench-")
    save_dir = a.save_dir or tempfile.mkdtemp(prefix="save-", dir=os.path.abspath(a.out_dir))
    note = machine_note(a.note)
    srv = None
    try:
        www = os.path.join(work, "www")
        os.mkdir(www)
        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:P-256", "-nodes", "-keyout", os.path.join(work, "key.pem"),
             "-out", os.path.join(work, "cert.pem"), "-days", "2", "-subj", "/CN=localhost",
             "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        size = a.size_mb * 1000 * 1000
        with open(os.path.join(www, "f.bin"), "wb") as f:
            f.write(os.urandom(size))
        srv = subprocess.Popen(pin(1) + [server, "--cert", os.path.join(work, "cert.pem"),
                                         "--key", os.path.join(work, "key.pem"), "--root", www,
                                         "--port", "0", "--quiet"],
                               stdout=subprocess.PIPE, text=True)
        port = int(srv.stdout.readline().split()[3])
        url = "https://127.0.0.1:%d/f.bin" % port
        base = pin(0) + [client, "--cacert", os.path.join(work, "cert.pem"), "--json"]
        out = os.path.join(save_dir, "f.bin")

        def once(mode):
            args = base + (["-o", out] if mode == "save" else ["--discard"]) + [url]
            t0 = time.perf_counter()
            p = run(args)
            wall = time.perf_counter() - t0
            r = json.loads(p.stdout)
            assert r["completed"] == 1 and r["bytes"] == size, r
            f = r["fetches"][0]
            if mode == "save":
                assert os.path.getsize(out) == size
                os.unlink(out)  # outside the timing
            return {"mode": mode, "wall_s": wall, "transfer_s": r["seconds"],
                    "writes": f.get("writes", 0), "write_s": f.get("write_ms", 0) / 1e3}

        once("discard")  # warm-up: page cache, server's first file open
        runs = []
        for i in range(a.reps):
            order = ("discard", "save") if i % 2 == 0 else ("save", "discard")
            for mode in order:
                runs.append(once(mode))
    finally:
        if srv is not None:
            srv.terminate()
            srv.wait()
        shutil.rmtree(work, ignore_errors=True)
        if a.save_dir is None:
            shutil.rmtree(save_dir, ignore_errors=True)
    note["loadavg_end"] = os.getloadavg()
    note["save_fs"] = fs_type(a.save_dir or os.path.abspath(a.out_dir))

    res = {"size_bytes": size, "reps": a.reps, "machine": note, "runs": runs}
    for mode in ("discard", "save"):
        rs = [r for r in runs if r["mode"] == mode]
        res[mode] = {"median_wall_s": statistics.median(r["wall_s"] for r in rs),
                     "median_transfer_s": statistics.median(r["transfer_s"] for r in rs),
                     "min_wall_s": min(r["wall_s"] for r in rs),
                     "max_wall_s": max(r["wall_s"] for r in rs),
                     "median_write_s": statistics.median(r["write_s"] for r in rs),
                     "writes": sorted(set(r["writes"] for r in rs))}
    res["ratio_wall"] = res["save"]["median_wall_s"] / res["discard"]["median_wall_s"]
    res["ratio_transfer"] = res["save"]["median_transfer_s"] / res["discard"]["median_transfer_s"]
    # What saving may cost: discarding plus the kernel's copy into the page
    # cache, which is the time the client spends inside write().
    res["save_minus_discard_wall_s"] = res["save"]["median_wall_s"] - res["discard"]["median_wall_s"]
    res["kernel_copy_s"] = res["save"]["median_write_s"]
    os.makedirs(a.out_dir, exist_ok=True)
    with open(os.path.join(a.out_dir, "save-vs-discard.json"), "w") as f:
        json.dump(res, f, indent=1)
        f.write("\n")
    m = note
    lines = [
        "# Saving a download vs discarding it (uvq-h3-client)",
        "",
        "%d MB from uvq-h3-server on 127.0.0.1, %d interleaved pairs, medians "
        "(bench/save-vs-discard.py)." % (a.size_mb, a.reps),
        "",
        "| | wall s (median) | wall s (min-max) | transfer s (median) | write() calls | s in write() (median) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for mode in ("discard", "save"):
        r = res[mode]
        lines.append("| %s | %.3f | %.3f-%.3f | %.3f | %s | %.3f |" % (
            "--discard" if mode == "discard" else "-o FILE", r["median_wall_s"],
            r["min_wall_s"], r["max_wall_s"], r["median_transfer_s"],
            ", ".join(str(w) for w in r["writes"]), r["median_write_s"]))
    lines += [
        "",
        "save/discard: %.3f (wall), %.3f (transfer). Saving took %.3f s more "
        "(medians); the kernel's copy (time inside write()) was %.3f s." % (
            res["ratio_wall"], res["ratio_transfer"], res["save_minus_discard_wall_s"],
            res["kernel_copy_s"]),
        "",
        "Machine: %d cores, %s, kernel %s, uvq %s, %s; saved to %s; load average "
        "%.2f at start, %.2f at end. %s" % (
            m["cores"], m["cpu"], m["kernel"], m["uvq_commit"], m["date"], m["save_fs"],
            m["loadavg_start"][0], m["loadavg_end"][0], m["note"]),
        "",
    ]
    with open(os.path.join(a.out_dir, "save-vs-discard.md"), "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
