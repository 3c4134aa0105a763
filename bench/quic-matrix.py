#!/usr/bin/python3
"""Runs the QUIC/HTTP3 benchmark (issue #5) and writes its report.

Every round runs each case once, in the same order (uvq, gtls, TCP, ...),
so that slow drift of the machine hits all of them alike; --reps rounds.
Medians are reported; ratios are medians of the ratios of runs made in the
same round. Servers are pinned to --server-cpu, clients to --client-cpu,
and every run starts its own server.

Cases:
  bulk   --bulk-count sequential downloads of a --bulk-mb MiB file on one
         connection: uvq-h3-client -> uvq-h3-server; gtlsclient ->
         gtlsserver (ngtcp2's examples); iperf3 (kernel TCP, no TLS); curl
         -> nginx (HTTPS/1.1 over kernel TCP), when nginx is there.
  rps    1 KiB responses, 100 requests in flight on one connection.
  hs     sequential new connections with one small request each.
  hscpu  server and client CPU per handshake, full and resumed, X25519 and
         P-256: bench-quic-handshake --mode tls (handshake only, closed
         when the session ticket arrives) against uvq-h3-server and
         gtlsserver alike, each server's CPU read from /proc.
  idle   server memory per idle connection (uvq only).

Writes to --out-dir: quic-runs.jsonl (every run), quic.json (medians,
ratios, targets, machine note), quic.md (Markdown), quic.png (gnuplot), and
quic-profile.md when --profile is given (or "auto" and a bulk target is
missed).

Standard library only; run with Debian's /usr/bin/python3.
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")

BULK = ["uvq", "uvq-c10", "gtls", "tcp-iperf3", "tcp-https"]
BULK_NOTES = {
    "uvq": "uvq-h3-client --repeat N --discard (one request at a time) -> uvq-h3-server",
    "uvq-c10": "as uvq, with --concurrency N: all downloads in flight at once, as gtlsclient does (information)",
    "gtls": "gtlsclient -q --exit-on-all-streams-close URL x N (requests all in flight at once) -> gtlsserver -q",
    "tcp-iperf3": "iperf3 -R (server sends) -n N x size, one TCP stream, no TLS, no HTTP",
    "tcp-https": "curl --http1.1 (TLS 1.3, AES-128-GCM) -> nginx (one process, sendfile, no kTLS), N URLs on one connection",
}
RPS = ["uvq", "gtls"]
HS = ["uvq-h3", "uvq-quic", "gtls"]
HS_NOTES = {
    "uvq-h3": "bench-quic-handshake --mode h3: a new uvq_h3_t client per connection, GET, close",
    "uvq-quic": "bench-quic-handshake --mode quic: one client endpoint, uvq_quic_connect, one stream, close",
    "gtls": "a new gtlsclient process per connection (process start-up dominates)",
}
IDLE = ["uvq-h3", "uvq-quic"]
# hscpu: <server>-<group>-<full|resumed>-c<connections in flight>, uvq
# and gtls side by side; full handshakes at 1, 8 and 32 in flight,
# resumed ones one at a time.
HSCPU_GROUPS = {"x25519": "X25519", "p256": "P-256"}
HSCPU_KINDS = [("full", 1), ("full", 8), ("full", 32), ("resumed", 1)]
HSCPU = ["%s-%s-%s-c%d" % (srv, g, kind, conc) for g in HSCPU_GROUPS for kind, conc in HSCPU_KINDS
         for srv in ("uvq", "gtls")]
HSCPU_NOTES = {
    "client": "bench-quic-handshake --mode tls --connect: one uvq client endpoint, ALPN h3, no certificate "
              "check; each connection offers only the group named (tls_groups) and is closed as soon as the "
              "server's session ticket arrives; 'in flight' connections are kept going at once (--concurrency); "
              "'resumed' runs resume every connection after the first with the latest ticket (psk_dhe_ke: the "
              "key exchange is still done, the certificate is not sent or signed)",
    "servers": "uvq-h3-server -q and gtlsserver -q, a fresh one per run, pinned; server CPU from "
               "/proc/PID/schedstat (ns) before and after, the same for both",
    "certificate": "ECDSA P-256 (openssl req -newkey ec), the same file for both servers",
}


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def run(cmd, timeout=60, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


def pinned(cpu):
    def fn():
        os.sched_setaffinity(0, {cpu})
        # Servers and clients die with the script.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    return fn


def proc_cpu(pid):
    """utime + stime of a live process, in seconds (all its threads)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return None


def free_port(kind):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def port_bound(port, proto):
    """True once something listens on 127.0.0.1:port (/proc/net/udp|tcp)."""
    want = ":%04X" % port
    try:
        with open("/proc/net/" + proto) as f:
            next(f)
            for line in f:
                local = line.split()[1]
                if local.endswith(want) and (proto == "udp" or line.split()[3] == "0A"):
                    return True
    except OSError:
        pass
    return False


class Server:
    """A server process pinned to a CPU; CPU time read from /proc."""

    def __init__(self, cmd, cpu, ready, stdout=subprocess.PIPE, cwd=None):
        self.cmd = cmd
        self.p = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.PIPE, text=True,
                                  preexec_fn=pinned(cpu), cwd=cwd)
        self.port = ready(self)

    def cpu(self):
        return proc_cpu(self.p.pid)

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        err = ""
        try:
            err = self.p.stderr.read() if self.p.stderr else ""
        except (OSError, ValueError):
            pass
        for f in (self.p.stdout, self.p.stderr):
            if f:
                f.close()
        return err


def wait_port(port, proto, server, timeout=5.0):
    end = time.time() + timeout
    while time.time() < end:
        if port_bound(port, proto):
            return port
        if server.p.poll() is not None:
            raise RuntimeError("server exited: %s" % " ".join(server.cmd))
        time.sleep(0.02)
    raise RuntimeError("server did not listen on %d: %s" % (port, " ".join(server.cmd)))


def client(cmd, cpu, timeout):
    """Runs a pinned client; returns (returncode, stdout, stderr, wall s,
    cpu s) with the CPU time from wait4()."""
    out = tempfile.TemporaryFile(mode="w+")
    err = tempfile.TemporaryFile(mode="w+")
    start = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=out, stderr=err, preexec_fn=pinned(cpu))
    timer = threading.Timer(timeout, p.kill)
    timer.start()
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - start
    timer.cancel()
    p.returncode = os.waitstatus_to_exitcode(status)
    out.seek(0)
    err.seek(0)
    res = (p.returncode, out.read(), err.read(), wall, ru.ru_utime + ru.ru_stime)
    out.close()
    err.close()
    return res


class Bench:
    def __init__(self, args):
        self.a = args
        self.work = args.work_dir
        self.tools = os.path.join(args.build_dir, "tools")
        self.benchbin = os.path.join(args.build_dir, "bench")
        self.cert = os.path.join(self.work, "cert.pem")
        self.key = os.path.join(self.work, "key.pem")
        self.www = os.path.join(self.work, "www")
        self.bulk_name = "bulk-%dm.bin" % args.bulk_mb
        self.bulk_bytes = args.bulk_mb * 1024 * 1024
        self.nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)

    # ---- setup ----

    def setup(self):
        os.makedirs(self.www, exist_ok=True)
        if not (os.path.exists(self.cert) and os.path.exists(self.key)):
            r = run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                     "ec_paramgen_curve:P-256", "-nodes", "-keyout", self.key, "-out", self.cert,
                     "-days", "30", "-subj", "/CN=localhost", "-addext",
                     "subjectAltName=DNS:localhost,IP:127.0.0.1"])
            if r.returncode != 0:
                raise RuntimeError("openssl req failed: " + r.stderr)
        path = os.path.join(self.www, self.bulk_name)
        if not os.path.exists(path) or os.path.getsize(path) != self.bulk_bytes:
            with open("/dev/urandom", "rb") as src, open(path + ".tmp", "wb") as dst:
                left = self.bulk_bytes
                while left:
                    chunk = src.read(min(left, 1 << 20))
                    dst.write(chunk)
                    left -= len(chunk)
            os.rename(path + ".tmp", path)
        for name, size in (("1k.bin", 1024), ("small.bin", 100)):
            p = os.path.join(self.www, name)
            if not os.path.exists(p) or os.path.getsize(p) != size:
                with open(p, "wb") as f:
                    f.write(os.urandom(size))
        if self.nginx:
            d = os.path.join(self.work, "nginx")
            os.makedirs(os.path.join(d, "tmp"), exist_ok=True)

    def nginx_conf(self, port):
        d = os.path.join(self.work, "nginx")
        conf = os.path.join(d, "nginx.conf")
        tmp = os.path.join(d, "tmp")
        with open(conf, "w") as f:
            f.write("""daemon off;
master_process off;
worker_processes 1;
error_log %(d)s/error.log warn;
pid %(d)s/nginx.pid;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path %(t)s; proxy_temp_path %(t)s; fastcgi_temp_path %(t)s;
  uwsgi_temp_path %(t)s; scgi_temp_path %(t)s;
  sendfile on;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:%(port)d ssl;
    ssl_certificate %(cert)s;
    ssl_certificate_key %(key)s;
    ssl_protocols TLSv1.3;
    root %(www)s;
  }
}
""" % {"d": d, "t": tmp, "port": port, "cert": self.cert, "key": self.key, "www": self.www})
        return conf

    # ---- servers ----

    def uvq_server(self, workers=1, cpu=None):
        # One worker unless a case asks for more: the server is pinned to
        # one CPU, and the figures stay comparable with earlier runs.
        def ready(s):
            line = s.p.stdout.readline()
            if not line.startswith("listening on"):
                raise RuntimeError("uvq-h3-server did not start: " + line + s.p.stderr.read())
            return int(line.split()[3])
        return Server([os.path.join(self.tools, "uvq-h3-server"), "--cert", self.cert, "--key",
                       self.key, "--root", self.www, "--port", "0", "-q",
                       "--workers", str(workers)],
                      self.a.server_cpu if cpu is None else cpu, ready)

    def gtls_server(self):
        port = free_port(socket.SOCK_DGRAM)
        return Server(["gtlsserver", "-q", "-d", self.www, "127.0.0.1", str(port), self.key,
                       self.cert], self.a.server_cpu,
                      lambda s: wait_port(port, "udp", s), stdout=subprocess.DEVNULL)

    # ---- cases ----

    def bulk(self, impl):
        n = self.a.bulk_count
        total = n * self.bulk_bytes
        timeout = 120
        if impl in ("uvq", "uvq-c10"):
            srv = self.uvq_server()
            url = "https://127.0.0.1:%d/%s" % (srv.port, self.bulk_name)
            cmd = [os.path.join(self.tools, "uvq-h3-client"), "--cacert", self.cert, "--discard",
                   "--json", "--repeat", str(n), url]
            if impl == "uvq-c10":
                cmd[-1:-1] = ["--concurrency", str(n)]
        elif impl == "gtls":
            srv = self.gtls_server()
            url = "https://127.0.0.1:%d/%s" % (srv.port, self.bulk_name)
            cmd = ["gtlsclient", "-q", "--exit-on-all-streams-close", "127.0.0.1",
                   str(srv.port)] + [url] * n
        elif impl == "tcp-iperf3":
            port = free_port(socket.SOCK_STREAM)
            srv = Server(["iperf3", "-s", "-B", "127.0.0.1", "-p", str(port)], self.a.server_cpu,
                         lambda s: wait_port(port, "tcp", s), stdout=subprocess.DEVNULL)
            cmd = ["iperf3", "-c", "127.0.0.1", "-p", str(port), "-R", "-J",
                   "-n", str(total)]
        elif impl == "tcp-https":
            if not self.nginx:
                return {"skipped": "nginx not installed"}
            port = free_port(socket.SOCK_STREAM)
            srv = Server([self.nginx, "-c", self.nginx_conf(port), "-p",
                          os.path.join(self.work, "nginx")], self.a.server_cpu,
                         lambda s: wait_port(port, "tcp", s), stdout=subprocess.DEVNULL)
            url = "https://127.0.0.1:%d/%s" % (port, self.bulk_name)
            cmd = ["curl", "-s", "--http1.1", "--cacert", self.cert, "--tls13-ciphers",
                   "TLS_AES_128_GCM_SHA256", "-w", "%{http_code} %{size_download} %{num_connects}\\n"]
            for _ in range(n):
                cmd += ["-o", "/dev/null", url]
        try:
            s0 = srv.cpu()
            rc, out, err, wall, ccpu = client(cmd, self.a.client_cpu, timeout)
            s1 = srv.cpu()
        finally:
            serr = srv.stop()
        d = {"case": "bulk", "impl": impl, "rc": rc, "wall_s": wall, "client_cpu_s": ccpu,
             "server_cpu_s": (s1 - s0) if s0 is not None and s1 is not None else None,
             "bytes": None}
        ok = rc == 0
        if impl in ("uvq", "uvq-c10") and ok:
            j = json.loads(out)
            d["bytes"] = j["bytes"]
            d["tool_goodput_gbps"] = j["goodput_gbps"]
            d["tool_seconds"] = j["seconds"]
            d["handshake_ms"] = j["handshake_ms"]
            d["path_mtu"] = (j.get("quic") or {}).get("path_mtu")
            d["client_datagrams_per_recv_syscall"] = j["udp"]["datagrams_per_recv_syscall"]
            d["client_packets_sent"] = (j.get("quic") or {}).get("packets_sent")
            ok = j["completed"] == n and j["bytes"] == total
        elif impl == "gtls" and ok:
            # gtlsclient -q prints nothing; --exit-on-all-streams-close and
            # status 0 mean every stream closed. The size was checked once
            # in check_gtls().
            d["bytes"] = total
        elif impl == "tcp-iperf3" and ok:
            j = json.loads(out)
            d["bytes"] = j["end"]["sum_received"]["bytes"]
            d["tool_goodput_gbps"] = j["end"]["sum_received"]["bits_per_second"] / 1e9
            ok = d["bytes"] >= total
        elif impl == "tcp-https" and ok:
            lines = [l.split() for l in out.splitlines() if l.strip()]
            d["bytes"] = sum(int(l[1]) for l in lines if l[0] == "200")
            d["connections"] = sum(int(l[2]) for l in lines)
            ok = len(lines) == n and d["bytes"] == total
        d["ok"] = ok
        # CPU time over wall time: well below 1 on a side that should be
        # busy means it shared its CPU with something else in that run.
        d["client_cpu_util"] = ccpu / wall
        if d["server_cpu_s"] is not None:
            d["server_cpu_util"] = d["server_cpu_s"] / wall
        if ok:
            gb = d["bytes"] / 1e9
            d["goodput_gbps"] = d["bytes"] * 8 / wall / 1e9
            d["client_cpu_s_per_gb"] = ccpu / gb
            d["server_cpu_s_per_gb"] = d["server_cpu_s"] / gb if d["server_cpu_s"] is not None else None
        else:
            d["error"] = (err.strip() or out.strip())[-400:] + (" | server: " + serr.strip()[-200:] if serr.strip() else "")
        return d

    def rps(self, impl):
        n = self.a.rps_requests
        if impl == "uvq":
            srv = self.uvq_server()
            url = "https://127.0.0.1:%d/1k.bin" % srv.port
            # No --json: the tool's report counts statuses in time
            # quadratic in the number of fetches, which would be charged to
            # the client's wall and CPU time. Exit status 0 means every
            # response was a complete 2xx.
            cmd = [os.path.join(self.tools, "uvq-h3-client"), "--cacert", self.cert, "--discard",
                   "--concurrency", "100", "--repeat", str(n), url]
        else:
            srv = self.gtls_server()
            url = "https://127.0.0.1:%d/1k.bin" % srv.port
            # gtlsserver allows 100 bidirectional streams (its default
            # --max-streams-bidi), and gtlsclient opens as many as it may:
            # 100 requests in flight.
            cmd = ["gtlsclient", "-q", "--exit-on-all-streams-close", "-n", str(n),
                   "127.0.0.1", str(srv.port), url]
        try:
            s0 = srv.cpu()
            rc, out, err, wall, ccpu = client(cmd, self.a.client_cpu, 120)
            s1 = srv.cpu()
        finally:
            serr = srv.stop()
        d = {"case": "rps", "impl": impl, "rc": rc, "wall_s": wall, "client_cpu_s": ccpu,
             "server_cpu_s": (s1 - s0) if s0 is not None and s1 is not None else None,
             "requests": n, "ok": rc == 0}
        if d["ok"]:
            # Over the client process's whole life (start-up and handshake
            # included) for both, so that they are measured alike.
            d["rps"] = n / wall
            d["client_cpu_us_per_req"] = ccpu / n * 1e6
            d["server_cpu_us_per_req"] = d["server_cpu_s"] / n * 1e6 if d["server_cpu_s"] is not None else None
        else:
            d["error"] = (err.strip() or out.strip())[-400:]
        return d

    def hs(self, impl):
        ms = self.a.hs_duration_ms
        if impl.startswith("uvq"):
            cmd = [os.path.join(self.benchbin, "bench-quic-handshake"), "--mode",
                   impl.split("-")[1], "--duration-ms", str(ms), "--client-cpu",
                   str(self.a.client_cpu), "--server-cpu", str(self.a.server_cpu), "--cert",
                   self.cert, "--key", self.key]
            r = run(cmd, timeout=ms / 1000 + 30)
            d = {"case": "hs", "impl": impl, "rc": r.returncode}
            try:
                j = json.loads(r.stdout.strip().splitlines()[-1])
            except (ValueError, IndexError):
                d.update(ok=False, error=r.stderr.strip()[-400:])
                return d
            d.update(ok=r.returncode == 0, handshakes_per_s=j["handshakes_per_s"],
                     connections=j["connections"], mean_ms=j["mean_handshake_ms"],
                     client_cpu_ms_per_conn=j["client_cpu_ms_per_conn"],
                     server_cpu_ms_per_conn=j["server_cpu_ms_per_conn"])
            if not d["ok"]:
                d["error"] = (j.get("error") or "") + r.stderr.strip()[-300:]
            return d
        srv = self.gtls_server()
        url = "https://127.0.0.1:%d/small.bin" % srv.port
        cmd = ["gtlsclient", "-q", "--exit-on-all-streams-close", "127.0.0.1", str(srv.port), url]
        count = failed = 0
        ccpu = 0.0
        try:
            s0 = srv.cpu()
            start = time.perf_counter()
            while time.perf_counter() - start < ms / 1000:
                rc, out, err, wall, c = client(cmd, self.a.client_cpu, 10)
                ccpu += c
                if rc == 0:
                    count += 1
                else:
                    failed += 1
                    if failed > 3:
                        break
            elapsed = time.perf_counter() - start
            s1 = srv.cpu()
        finally:
            srv.stop()
        d = {"case": "hs", "impl": impl, "connections": count, "failed": failed,
             "ok": count > 0 and failed == 0}
        if count:
            d["handshakes_per_s"] = count / elapsed
            d["mean_ms"] = elapsed / count * 1e3
            d["client_cpu_ms_per_conn"] = ccpu / count * 1e3
            d["server_cpu_ms_per_conn"] = (s1 - s0) / count * 1e3 if s0 is not None and s1 is not None else None
        return d

    def hscpu(self, impl):
        srv_name, group, kind, conc = impl.split("-")
        srv = self.uvq_server() if srv_name == "uvq" else self.gtls_server()
        cmd = [os.path.join(self.benchbin, "bench-quic-handshake"), "--mode", "tls",
               "--duration-ms", str(self.a.hs_duration_ms), "--client-cpu", str(self.a.client_cpu),
               "--connect", "127.0.0.1:%d" % srv.port, "--server-pid", str(srv.p.pid),
               "--groups", HSCPU_GROUPS[group], "--concurrency", conc[1:]]
        if kind == "resumed":
            cmd.append("--resume")
        try:
            r = run(cmd, timeout=self.a.hs_duration_ms / 1000 + 30)
        finally:
            serr = srv.stop()
        d = {"case": "hscpu", "impl": impl, "rc": r.returncode}
        try:
            j = json.loads(r.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            d.update(ok=False, error=r.stderr.strip()[-400:] + " | server: " + serr.strip()[-200:])
            return d
        d.update(handshakes_per_s=j["handshakes_per_s"], connections=j["connections"],
                 resumed=j["resumed"], mean_ms=j["mean_handshake_ms"],
                 client_cpu_ms_per_conn=j["client_cpu_ms_per_conn"],
                 server_cpu_ms_per_conn=j["server_cpu_ms_per_conn"])
        # A resumed run must really have resumed (all but the first ones,
        # started before a ticket arrived), a full one never.
        if kind == "resumed":
            want = j["connections"] - int(conc[1:])
            d["ok"] = r.returncode == 0 and j["resumed"] >= want
        else:
            want = 0
            d["ok"] = r.returncode == 0 and j["resumed"] == 0
        if not d["ok"]:
            d["error"] = "%s; resumed %d of %d (want %d) %s" % (
                j.get("error"), j["resumed"], j["connections"], want, r.stderr.strip()[-200:])
        return d

    def idle(self, impl):
        cmd = [os.path.join(self.benchbin, "bench-quic-idle"), "--mode", impl.split("-")[1],
               "--connections", str(self.a.idle_connections), "--client-cpu",
               str(self.a.client_cpu), "--server-cpu", str(self.a.server_cpu), "--cert",
               self.cert, "--key", self.key]
        r = run(cmd, timeout=120)
        d = {"case": "idle", "impl": impl, "rc": r.returncode}
        try:
            j = json.loads(r.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            d.update(ok=False, error=r.stderr.strip()[-400:])
            return d
        d.update(ok=r.returncode == 0, connections=j["connections"],
                 rss_bytes_per_conn=j["rss_bytes_per_conn"],
                 heap_bytes_per_conn=j["heap_bytes_per_conn"],
                 client_heap_bytes_per_conn=j.get("client_heap_bytes_per_conn"),
                 connect_seconds=j["connect_seconds"])
        if not d["ok"]:
            d["error"] = j.get("error") or r.stderr.strip()[-300:]
        return d

    # ---- one-off checks ----

    def check_gtls(self):
        """gtlsclient -q prints nothing: download the file once into a
        directory and compare sizes, so that a silent short transfer would
        show up."""
        srv = self.gtls_server()
        d = tempfile.mkdtemp(prefix="uvq-qbench-gtls-")
        try:
            url = "https://127.0.0.1:%d/%s" % (srv.port, self.bulk_name)
            r = run(["gtlsclient", "-q", "--exit-on-all-streams-close", "--download", d,
                     "127.0.0.1", str(srv.port), url], timeout=60)
            got = os.path.getsize(os.path.join(d, self.bulk_name)) if os.path.exists(
                os.path.join(d, self.bulk_name)) else -1
        finally:
            srv.stop()
            shutil.rmtree(d, ignore_errors=True)
        return {"rc": r.returncode, "bytes": got, "ok": r.returncode == 0 and got == self.bulk_bytes}

    def profile_run(self, what, data_s, data_c):
        """perf record on the uvq server and client during one run of what
        ("bulk" or "rps"); returns the client's exit status."""
        srv = self.uvq_server()
        if what == "bulk":
            url = "https://127.0.0.1:%d/%s" % (srv.port, self.bulk_name)
            extra = ["--repeat", str(self.a.bulk_count)]
        else:
            url = "https://127.0.0.1:%d/1k.bin" % srv.port
            extra = ["--concurrency", "100", "--repeat", str(self.a.rps_requests)]
        rec = subprocess.Popen(["perf", "record", "-g", "-F", "2000", "-o", data_s, "-p",
                                str(srv.p.pid)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        time.sleep(0.3)
        try:
            rc = run(["perf", "record", "-g", "-F", "2000", "-o", data_c, "--", "taskset", "-c",
                      str(self.a.client_cpu), os.path.join(self.tools, "uvq-h3-client"),
                      "--cacert", self.cert, "--discard"] + extra + [url], timeout=120).returncode
        finally:
            rec.send_signal(signal.SIGINT)
            rec.wait(timeout=30)
            srv.stop()
        return rc

    def profile(self, out_dir):
        """perf record -g on both uvq processes during one bulk run and one
        requests-per-second run; self time per symbol and per library."""
        if shutil.which("perf") is None:
            return "perf not installed"
        data_s = os.path.join(self.work, "perf-server.data")
        data_c = os.path.join(self.work, "perf-client.data")
        sections = ["# uvq profiles", "",
                    "uvq-h3-client -> uvq-h3-server under `perf record -g -F 2000` (server attached "
                    "by PID, client from its start), reported with `perf report --no-children`: "
                    "self time per library, then per symbol. The Release build has no frame "
                    "pointers, so call chains are partial; self time is exact. On this virtual "
                    "machine time spent in system calls often shows as `pvm_irq_enable`.", ""]
        for what, title in (("bulk", "bulk: %d x %d MiB, one at a time" % (self.a.bulk_count, self.a.bulk_mb)),
                            ("rps", "requests/s: %d x 1 KiB, 100 in flight" % self.a.rps_requests)):
            rc = self.profile_run(what, data_s, data_c)
            sections += ["## " + title + " (client exit status %d)" % rc, ""]
            for side, data in (("server (sender)", data_s), ("client (receiver)", data_c)):
                sections += ["### " + side, "", "```"]
                for sort, limit, keep in (("dso", "1", 12), ("dso,symbol", "0.7", 40)):
                    r = run(["perf", "report", "-i", data, "--no-children", "--stdio", "--sort",
                             sort, "--percent-limit", limit, "-g", "none"], timeout=120)
                    lines = [l.rstrip(" -") for l in r.stdout.splitlines()
                             if l.strip() and not l.startswith("#")]
                    sections += lines[:keep] + [""]
                sections += ["```", ""]
        path = os.path.join(out_dir, "quic-profile.md")
        with open(path, "w") as f:
            f.write("\n".join(sections))
        for p in (data_s, data_c):
            for q in (p, p + ".old"):
                if os.path.exists(q):
                    os.unlink(q)
        return path


def versions():
    v = {}
    for pkg in ("ngtcp2-client", "ngtcp2-server", "libngtcp2-16", "libnghttp3-9", "iperf3",
                "nginx-light", "nginx", "curl"):
        r = run(["dpkg-query", "-W", "-f", "${Version}", pkg])
        if r.returncode == 0 and r.stdout:
            v[pkg] = r.stdout
    for pc in ("libngtcp2", "libnghttp3", "wolfssl", "libuv"):
        r = run(["pkg-config", "--modversion", pc])
        if r.returncode == 0:
            v[pc + " (pkg-config)"] = r.stdout.strip()
    return v


def machine_note():
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    commit = "unknown"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        commit = run(["git", "-C", root, "rev-parse", "--short", "HEAD"]).stdout.strip()
        if run(["git", "-C", root, "status", "--porcelain", "--", "src", "quic",
                "include"]).stdout.strip():
            commit += " (src/quic/include modified)"
    except (OSError, subprocess.SubprocessError):
        pass
    with open("/proc/loadavg") as f:
        load = f.read().split()[:3]
    return {"date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
            "cores": os.cpu_count(), "cpu": cpu, "kernel": platform.release(),
            "uvq_commit": commit, "loadavg_start": load}


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build-dir", required=True, help="CMake build directory (tools/, bench/)")
    ap.add_argument("--work-dir", help="certificates, files, nginx config (default BUILD/qbench)")
    ap.add_argument("--out-dir", default=os.path.join(here, "results"))
    ap.add_argument("--name", default="quic",
                    help="output file names: NAME.json, NAME.md, NAME-runs.jsonl, NAME.png (quic)")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--cases", default="bulk,rps,hs,idle")
    ap.add_argument("--bulk-mb", type=int, default=100, help="MiB per download (100)")
    ap.add_argument("--bulk-count", type=int, default=10, help="downloads per run (10)")
    ap.add_argument("--rps-requests", type=int, default=50000)
    ap.add_argument("--hs-duration-ms", type=int, default=3000)
    ap.add_argument("--idle-connections", type=int, default=1000)
    ap.add_argument("--client-cpu", type=int, default=0)
    ap.add_argument("--server-cpu", type=int, default=1)
    ap.add_argument("--profile", choices=["auto", "yes", "no"], default="auto",
                    help="perf profile of a uvq bulk run: always, never, or when a bulk target is missed")
    ap.add_argument("--no-chart", action="store_true")
    args = ap.parse_args()
    args.work_dir = args.work_dir or os.path.join(args.build_dir, "qbench")
    os.makedirs(args.out_dir, exist_ok=True)
    cases = args.cases.split(",")

    b = Bench(args)
    b.setup()
    note = machine_note()
    checks = {}
    if "bulk" in cases:
        checks["gtls_download_size"] = b.check_gtls()

    plan = []
    for rep in range(args.reps):
        if "bulk" in cases:
            plan += [(rep, "bulk", i) for i in BULK]
        if "rps" in cases:
            plan += [(rep, "rps", i) for i in RPS]
        if "hs" in cases:
            plan += [(rep, "hs", i) for i in HS]
        if "hscpu" in cases:
            plan += [(rep, "hscpu", i) for i in HSCPU]
        if "idle" in cases:
            plan += [(rep, "idle", i) for i in IDLE]
    print("%d runs in %d rounds" % (len(plan), args.reps), file=sys.stderr)

    runs, failures = [], []
    started = time.time()
    with open(os.path.join(args.out_dir, args.name + "-runs.jsonl"), "w") as log:
        for i, (rep, case, impl) in enumerate(plan):
            fn = getattr(b, case)
            try:
                d = fn(impl)
                if not d.get("ok") and not d.get("skipped"):
                    # One retry: a failed run is reported, not silently dropped.
                    failures.append(dict(d, rep=rep))
                    print("run failed, retrying once: %s %s: %s" % (case, impl, d.get("error", "")[-200:]),
                          file=sys.stderr)
                    d = fn(impl)
            except (RuntimeError, OSError, subprocess.SubprocessError, ValueError, KeyError) as e:
                d = {"case": case, "impl": impl, "ok": False, "error": str(e)}
            d["rep"] = rep
            if not d.get("ok") and not d.get("skipped"):
                failures.append(dict(d))
            runs.append(d)
            log.write(json.dumps(d) + "\n")
            log.flush()
            if (i + 1) % 10 == 0:
                print("%d/%d runs, %.0f s" % (i + 1, len(plan), time.time() - started), file=sys.stderr)
    with open("/proc/loadavg") as f:
        note["loadavg_end"] = f.read().split()[:3]
    note["matrix_seconds"] = round(time.time() - started, 1)

    report = summarize(args, runs, failures, note, checks)
    if args.profile == "yes" or (args.profile == "auto" and any(
            t["status"] == "missed" and t["target"].startswith(("bulk", "CPU", "RPS"))
            for t in report["targets"])):
        print("profiling a uvq bulk run", file=sys.stderr)
        report["profile"] = os.path.basename(b.profile(args.out_dir))
    with open(os.path.join(args.out_dir, args.name + ".json"), "w") as f:
        json.dump(report, f, indent=1)
        f.write("\n")
    md = markdown(report)
    with open(os.path.join(args.out_dir, args.name + ".md"), "w") as f:
        f.write(md)
    if not args.no_chart and set(cases) & {"bulk", "rps", "hs"}:
        chart(report, args.out_dir, args.name)
    print(md)
    met = sum(1 for t in report["targets"] if t["status"] == "met")
    print("targets: %d met, %d missed; %d failed runs" % (
        met, len(report["targets"]) - met, len(failures)), file=sys.stderr)
    return 0


METRICS = {
    "bulk": ["goodput_gbps", "client_cpu_s_per_gb", "server_cpu_s_per_gb", "tool_goodput_gbps",
             "server_cpu_util", "client_cpu_util"],
    "rps": ["rps", "client_cpu_us_per_req", "server_cpu_us_per_req"],
    "hs": ["handshakes_per_s", "mean_ms", "client_cpu_ms_per_conn", "server_cpu_ms_per_conn"],
    "hscpu": ["server_cpu_ms_per_conn", "client_cpu_ms_per_conn", "handshakes_per_s", "mean_ms"],
    "idle": ["rss_bytes_per_conn", "heap_bytes_per_conn", "client_heap_bytes_per_conn",
             "connect_seconds"],
}


def summarize(args, runs, failures, note, checks):
    summary = []
    by = {}
    for d in runs:
        if d.get("ok"):
            by.setdefault((d["case"], d["impl"]), {})[d["rep"]] = d
    order = [("bulk", BULK), ("rps", RPS), ("hs", HS), ("hscpu", HSCPU), ("idle", IDLE)]
    for case, impls in order:
        for impl in impls:
            ds = list(by.get((case, impl), {}).values())
            skipped = [d for d in runs if d["case"] == case and d["impl"] == impl and d.get("skipped")]
            if not ds:
                if skipped:
                    summary.append({"case": case, "impl": impl, "runs": 0,
                                    "skipped": skipped[0]["skipped"]})
                continue
            row = {"case": case, "impl": impl, "runs": len(ds)}
            for m in METRICS[case]:
                row[m] = median([d.get(m) for d in ds])
            main = METRICS[case][0]
            vals = [d[main] for d in ds if d.get(main) is not None]
            row[main + "_min"], row[main + "_max"] = min(vals), max(vals)
            summary.append(row)

    def paired(case, a, b, metric):
        A, B = by.get((case, a), {}), by.get((case, b), {})
        vals = [A[r][metric] / B[r][metric] for r in sorted(set(A) & set(B))
                if A[r].get(metric) is not None and B[r].get(metric)]
        return median(vals), len(vals)

    ratios, targets = [], []

    def ratio(name, case, a, b, metric, goal=None, higher=True):
        v, n = paired(case, a, b, metric)
        ratios.append({"ratio": name, "value": v, "rounds": n})
        if goal is not None:
            if v is None:
                # Not run (--cases), or every run of one side failed.
                ran = any(d["case"] == case for d in runs)
                targets.append({"target": name, "value": None, "goal": ("%s %g" % (">=" if higher else "<=", goal)),
                                "status": "missed" if ran else "not run",
                                "margin": "no successful paired runs" if ran else "-"})
                return
            met = v >= goal if higher else v <= goal
            targets.append({"target": name, "value": round(v, 3),
                            "goal": ("%s %g" % (">=" if higher else "<=", goal)),
                            "status": "met" if met else "missed",
                            "margin": "%+.1f%% vs goal" % ((v / goal - 1) * 100)})

    ratio("bulk goodput uvq/gtls", "bulk", "uvq", "gtls", "goodput_gbps", 2.0)
    ratio("bulk goodput uvq/TCP (iperf3)", "bulk", "uvq", "tcp-iperf3", "goodput_gbps", 0.5)
    ratio("CPU/GB server (sender) uvq/gtls", "bulk", "uvq", "gtls", "server_cpu_s_per_gb", 1.0, higher=False)
    ratio("CPU/GB client (receiver) uvq/gtls", "bulk", "uvq", "gtls", "client_cpu_s_per_gb", 1.0, higher=False)
    ratio("RPS uvq/gtls", "rps", "uvq", "gtls", "rps", 1.0)
    ratio("bulk goodput uvq/HTTPS over TCP (nginx)", "bulk", "uvq", "tcp-https", "goodput_gbps")
    ratio("bulk goodput uvq --concurrency 10 / gtls", "bulk", "uvq-c10", "gtls", "goodput_gbps")
    ratio("handshakes/s uvq h3 / gtls process", "hs", "uvq-h3", "gtls", "handshakes_per_s")
    if any(d["case"] == "hscpu" for d in runs):
        for g, gname in HSCPU_GROUPS.items():
            for kind, conc in HSCPU_KINDS:
                ratio("server CPU per %s handshake, %s, %d in flight, uvq/gtls" % (kind, gname, conc),
                      "hscpu", "uvq-%s-%s-c%d" % (g, kind, conc), "gtls-%s-%s-c%d" % (g, kind, conc),
                      "server_cpu_ms_per_conn", 0.5 if (kind, conc) == ("full", 1) else None,
                      higher=False)
        rows = {r["impl"]: r for r in summary if r["case"] == "hscpu" and r.get("runs")}
        for g, gname in HSCPU_GROUPS.items():
            for side in ("server", "client"):
                r = rows.get("uvq-%s-full-c1" % g)
                v = r and r[side + "_cpu_ms_per_conn"]
                name = "%s CPU per full handshake, %s, uvq" % (side, gname)
                if v is None:
                    targets.append({"target": name, "value": None, "goal": "<= 0.15 ms",
                                    "status": "missed", "margin": "no successful runs"})
                    continue
                targets.append({"target": name, "value": round(v, 4), "goal": "<= 0.15 ms",
                                "status": "met" if v <= 0.15 else "missed",
                                "margin": "%+.1f%% vs goal" % ((v / 0.15 - 1) * 100)})
    idle = [r for r in summary if r["case"] == "idle" and r.get("runs")]
    for r in idle:
        v = r["rss_bytes_per_conn"]
        targets.append({"target": "idle memory per connection, %s (server VmRSS)" % r["impl"],
                        "value": round(v), "goal": "< 51200 bytes",
                        "status": "met" if v < 51200 else "missed",
                        "margin": "%+.1f%% vs goal" % ((v / 51200 - 1) * 100)})

    config = {k: getattr(args, k) for k in ("reps", "bulk_mb", "bulk_count", "rps_requests",
                                            "hs_duration_ms", "idle_connections", "client_cpu",
                                            "server_cpu")}
    config["bulk_notes"] = BULK_NOTES
    config["hs_notes"] = HS_NOTES
    config["hscpu_notes"] = HSCPU_NOTES
    config["settings"] = SETTINGS
    return {"machine": note, "versions": versions(), "config": config, "checks": checks,
            "summary": summary, "ratios": ratios, "targets": targets, "failures": failures}


# What each stack was run with, as the defaults of their tools say (the
# gtls figures from gtlsclient/gtlsserver --help, uvq's from quic/conn.c).
SETTINGS = [
    "Congestion control: CUBIC on both QUIC stacks (uvq default, gtls --cc default); iperf3 and nginx use the kernel's (cubic).",
    "Receiver flow control: uvq client initial 8 MiB connection / 2 MiB stream, auto-tuned up to 48 MiB / 32 MiB; "
    "gtlsclient initial --max-data 24 MiB / --max-stream-data-bidi-local 16 MiB, no auto-tuning (--max-window 0).",
    "UDP payload: uvq probes up to 1452 bytes (PMTUD); gtls probes with its defaults (PMTUD on).",
    "ACKs: gtls --ack-thresh 2 (ngtcp2 default); uvq uses ngtcp2's default.",
    "TLS: uvq on wolfSSL, gtls on GnuTLS (AES-128-GCM first in its priority string), nginx/curl on OpenSSL with "
    "TLS_AES_128_GCM_SHA256 forced on the curl side.",
    "Certificate checks: uvq-h3-client verifies (--cacert); gtlsclient does not verify; bench-quic-handshake does "
    "not verify (insecure_skip_verify), to match gtlsclient.",
    "gtlsclient opens every request at once (up to the server's 100 streams): its bulk downloads run concurrently, "
    "uvq's row 'uvq' one after the other; 'uvq-c10' runs uvq the gtls way.",    "Files: uvq-h3-server keeps files of up to 64 KiB in memory and rechecks them against the disk every 1000 ms (its --file-cache-ms default); gtlsserver opened the 1 KiB file once for 10,000 requests (strace), so it caches too. Without the cache uvq's server made openat2, fstat, pread and close per request, and reached 0.45x gtls's requests/s (the 04:47 UTC run of this commit's parent).",
]


def fmt(v, digits=2):
    if v is None:
        return "-"
    if isinstance(v, int):
        return str(v)
    return ("%." + str(digits) + "f") % v


def markdown(rep):
    m, c = rep["machine"], rep["config"]
    out = ["# QUIC/HTTP3 benchmark", ""]
    out.append("Machine: %s cores, %s, kernel %s, uvq %s; %s UTC; load average %s at start, %s at end; "
               "matrix took %s s." % (m["cores"], m["cpu"], m["kernel"], m["uvq_commit"], m["date_utc"],
                                      " ".join(m["loadavg_start"]), " ".join(m.get("loadavg_end", [])),
                                      m.get("matrix_seconds")))
    out.append("")
    out.append("Versions: " + "; ".join("%s %s" % kv for kv in rep["versions"].items()) + ".")
    out.append("")
    out.append("Loopback; servers pinned to CPU %d, clients to CPU %d; a fresh server per run; median of %d "
               "interleaved rounds. CPU is utime+stime: the client's from wait4(), the server's from "
               "/proc/PID/stat before and after the client ran (10 ms ticks). On loopback the sender's "
               "CPU also runs the softirq that delivers each packet to the receiver."
               % (c["server_cpu"], c["client_cpu"], c["reps"]))
    out.append("")
    cases = {r["case"] for r in rep["summary"]}
    if "bulk" in cases:
        out += bulk_md(rep)
    if "rps" in cases:
        out += rps_md(rep)
    if "hs" in cases:
        out += hs_md(rep)
    if "hscpu" in cases:
        out += hscpu_md(rep)
    if "idle" in cases:
        out += idle_md(rep)
    return tail_md(rep, out)


def bulk_md(rep):
    c = rep["config"]
    out = ["## Bulk: %d downloads of %d MiB on one connection" % (c["bulk_count"], c["bulk_mb"]), ""]
    out.append("Goodput is bytes received over the client process's wall time (start-up and handshake "
               "included, for every stack alike); `tool` is the client's own figure where it has one.")
    out.append("")
    out.append("| stack | Gbit/s | (min-max) | tool Gbit/s | server (sender) CPU s/GB | client (receiver) CPU s/GB | CPU util server/client | runs |")
    out.append("|---|---|---|---|---|---|---|---|")
    for r in rep["summary"]:
        if r["case"] != "bulk":
            continue
        if r.get("skipped"):
            out.append("| %s | skipped: %s | | | | | | 0 |" % (r["impl"], r["skipped"]))
            continue
        out.append("| %s | %s | %s-%s | %s | %s | %s | %s/%s | %d |" % (
            r["impl"], fmt(r["goodput_gbps"]), fmt(r["goodput_gbps_min"]), fmt(r["goodput_gbps_max"]),
            fmt(r.get("tool_goodput_gbps")), fmt(r["server_cpu_s_per_gb"], 3),
            fmt(r["client_cpu_s_per_gb"], 3), fmt(r.get("server_cpu_util")),
            fmt(r.get("client_cpu_util")), r["runs"]))
    out.append("")
    out.append("CPU util is CPU time over the client's wall time: a side near 1 was the bottleneck; "
               "both well below 1 in a run means the stack waited, or shared its CPU with "
               "something else (see the load average).")
    out.append("")
    for k, v in c["bulk_notes"].items():
        out.append("- `%s`: %s" % (k, v))
    out.append("")
    return out


def rps_md(rep):
    c = rep["config"]
    out = ["## Requests per second: 1 KiB responses, 100 in flight, one connection", ""]
    out.append("%d requests per run, 100 in flight; RPS over the client process's wall time "
               "(start-up and handshake included, for both alike)." % c["rps_requests"])
    out.append("")
    out.append("| stack | RPS | (min-max) | server CPU us/req | client CPU us/req | runs |")
    out.append("|---|---|---|---|---|---|")
    for r in rep["summary"]:
        if r["case"] == "rps":
            out.append("| %s | %s | %s-%s | %s | %s | %d |" % (
                r["impl"], fmt(r["rps"], 0), fmt(r["rps_min"], 0), fmt(r["rps_max"], 0),
                fmt(r["server_cpu_us_per_req"], 1),
                fmt(r["client_cpu_us_per_req"], 1), r["runs"]))
    out.append("")
    return out


def hs_md(rep):
    c = rep["config"]
    out = ["## Handshakes per second: sequential new connections, one small request each", ""]
    out.append("| client | handshakes/s | (min-max) | ms per connection | server CPU ms/conn | client CPU ms/conn | runs |")
    out.append("|---|---|---|---|---|---|---|")
    for r in rep["summary"]:
        if r["case"] == "hs":
            out.append("| %s | %s | %s-%s | %s | %s | %s | %d |" % (
                r["impl"], fmt(r["handshakes_per_s"], 0), fmt(r["handshakes_per_s_min"], 0),
                fmt(r["handshakes_per_s_max"], 0), fmt(r["mean_ms"]),
                fmt(r["server_cpu_ms_per_conn"], 3), fmt(r["client_cpu_ms_per_conn"], 3), r["runs"]))
    out.append("")
    for k, v in c["hs_notes"].items():
        out.append("- `%s`: %s" % (k, v))
    out.append("")
    out.append("uvq's `ms per connection` is connect to handshake done; gtls's is the whole process "
               "(exec, TLS set-up, handshake, request, exit).")
    out.append("")
    return out


def hscpu_md(rep):
    c = rep["config"]
    out = ["## CPU per handshake: uvq-h3-server and gtlsserver, full and resumed, X25519 and P-256", ""]
    out.append("Handshakes for %d ms per run, the same uvq client against both servers. "
               "Server CPU per handshake is the primary figure; handshakes/s and ms per handshake "
               "(connect to handshake done) depend on both sides sharing this machine." % c["hs_duration_ms"])
    out.append("")
    out.append("| server | group | handshake | in flight | server CPU ms | (min-max) | client CPU ms | handshakes/s | ms per handshake | runs |")
    out.append("|---|---|---|---|---|---|---|---|---|---|")
    for r in rep["summary"]:
        if r["case"] == "hscpu":
            srv, g, kind, conc = r["impl"].split("-")
            out.append("| %s | %s | %s | %s | %s | %s-%s | %s | %s | %s | %d |" % (
                "uvq-h3-server" if srv == "uvq" else "gtlsserver", HSCPU_GROUPS[g], kind, conc[1:],
                fmt(r["server_cpu_ms_per_conn"], 3), fmt(r["server_cpu_ms_per_conn_min"], 3),
                fmt(r["server_cpu_ms_per_conn_max"], 3), fmt(r["client_cpu_ms_per_conn"], 3),
                fmt(r["handshakes_per_s"], 0), fmt(r["mean_ms"], 3), r["runs"]))
    out.append("")
    for k, v in c["hscpu_notes"].items():
        out.append("- %s: %s" % (k, v))
    out.append("")
    out.append("The client column is the uvq client's CPU in both rows; gtlsclient makes one connection "
               "per process, so its CPU per handshake cannot be measured the same way.")
    out.append("")
    return out


def idle_md(rep):
    c = rep["config"]
    out = ["## Memory per idle connection (uvq server)", ""]
    out.append("%d idle connections after 10 warm-up ones; server VmRSS and malloc'ed bytes in use "
               "(mallinfo2) before and after, divided by the count. The client's heap likewise, "
               "for uvq-quic only (one client endpoint holds every connection; uvq-h3 makes an "
               "endpoint per client). The bench client collects no session tickets, so it frees "
               "its TLS state when the handshake completes, as the server does." % c["idle_connections"])
    out.append("")
    out.append("| connections | server RSS bytes/conn | server heap bytes/conn | client heap bytes/conn "
               "| seconds to connect all | runs |")
    out.append("|---|---|---|---|---|---|")
    for r in rep["summary"]:
        if r["case"] == "idle":
            ch = r.get("client_heap_bytes_per_conn") if r["impl"].endswith("quic") else None
            out.append("| %s | %s | %s | %s | %s | %d |" % (
                r["impl"], fmt(r["rss_bytes_per_conn"], 0), fmt(r["heap_bytes_per_conn"], 0),
                fmt(ch, 0) if ch is not None else "-",
                fmt(r["connect_seconds"]), r["runs"]))
    out.append("")
    return out


def tail_md(rep, out):
    c = rep["config"]
    out += ["## Ratios (median of per-round ratios)", "", "| ratio | value | rounds |", "|---|---|---|"]
    for r in rep["ratios"]:
        out.append("| %s | %s | %d |" % (r["ratio"], fmt(r["value"], 3), r["rounds"]))
    out += ["", "## Targets", "", "| target | value | goal | status | margin |", "|---|---|---|---|---|"]
    for t in rep["targets"]:
        out.append("| %s | %s | %s | **%s** | %s |" % (t["target"], t["value"], t["goal"], t["status"],
                                                      t["margin"]))
    out += ["", "## Settings that matter", ""]
    out += ["- " + s for s in c["settings"]]
    if rep["checks"]:
        g = rep["checks"].get("gtls_download_size")
        if g:
            out += ["", "Check: one gtlsclient --download of the bulk file wrote %d bytes (%s)." % (
                g["bytes"], "ok" if g["ok"] else "WRONG")]
    if rep.get("profile"):
        out += ["", "Profile of a uvq bulk run: `%s`." % rep["profile"]]
    if rep["failures"]:
        out += ["", "## Failed runs (each retried once)", ""]
        for f in rep["failures"]:
            out.append("- %s %s round %s: %s" % (f["case"], f["impl"], f.get("rep"),
                                                  str(f.get("error", ""))[-300:].replace("\n", " ")))
    out.append("")
    return "\n".join(out)


def chart(rep, out_dir, name="quic"):
    gnuplot = shutil.which("gnuplot")
    if gnuplot is None:
        print("warning: gnuplot not found, no chart", file=sys.stderr)
        return
    rows = {(r["case"], r["impl"]): r for r in rep["summary"] if r.get("runs")}
    dat = os.path.join(out_dir, name + "-chart.dat")
    with open(dat, "w") as f:
        f.write("# bulk: stack goodput_gbps\n")
        for impl in BULK:
            r = rows.get(("bulk", impl))
            f.write("%s %s\n" % (impl, "%.3f" % r["goodput_gbps"] if r else "NaN"))
        f.write("\n\n# bulk CPU s/GB: stack server client\n")
        for impl in BULK:
            r = rows.get(("bulk", impl))
            f.write("%s %s %s\n" % (impl, fmt(r and r["server_cpu_s_per_gb"], 3) if r else "NaN",
                                    fmt(r and r["client_cpu_s_per_gb"], 3) if r else "NaN"))
        f.write("\n\n# rps\n")
        for impl in RPS:
            r = rows.get(("rps", impl))
            f.write("%s %s\n" % (impl, "%.0f" % r["rps"] if r else "NaN"))
        f.write("\n\n# handshakes/s\n")
        for impl in HS:
            r = rows.get(("hs", impl))
            f.write("%s %s\n" % (impl, "%.1f" % r["handshakes_per_s"] if r else "NaN"))
    m = rep["machine"]
    script = [
        "set terminal pngcairo size 1400,900 font ',10'",
        "set output '%s'" % os.path.join(out_dir, name + ".png"),
        "set multiplot layout 2,2 title 'QUIC/HTTP3 on loopback, median of %d (%s, kernel %s, load %s)'" % (
            rep["config"]["reps"], m["cpu"], m["kernel"], " ".join(m["loadavg_start"])),
        "set style data histogram", "set style histogram cluster gap 1",
        "set style fill solid 0.85 border -1", "set boxwidth 0.8", "set grid ytics",
        "set xtics noenhanced", "set key noenhanced top right", "set yrange [0:*]",
        "set title 'Bulk goodput (%d x %d MiB)'" % (rep["config"]["bulk_count"], rep["config"]["bulk_mb"]),
        "set ylabel 'Gbit/s'",
        "plot '%s' index 0 using 2:xtic(1) notitle lc rgb '#3070b0'" % dat,
        "set title 'Bulk CPU per GB'", "set ylabel 'CPU s/GB'",
        "plot '%s' index 1 using 2:xtic(1) title 'server (sender)', '' index 1 using 3 title 'client (receiver)'" % dat,
        "set title 'Requests/s, 1 KiB, 100 in flight'", "set ylabel 'requests/s'",
        "plot '%s' index 2 using 2:xtic(1) notitle lc rgb '#50a050'" % dat,
        "set title 'Handshakes/s, sequential'", "set ylabel 'handshakes/s'",
        "plot '%s' index 3 using 2:xtic(1) notitle lc rgb '#c06030'" % dat,
        "unset multiplot",
    ]
    res = subprocess.run([gnuplot], input="\n".join(script) + "\n", capture_output=True, text=True)
    if res.returncode != 0:
        print("warning: gnuplot failed: " + res.stderr.strip(), file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
