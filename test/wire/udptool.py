#!/usr/bin/env python3
"""Tiny UDP sender/receiver for the uvq-wire self-test.

  udptool.py recv ADDR PORT --ready FILE [--idle S] [--max S]
      Receive until no datagram arrived for --idle seconds (after the first)
      or --max seconds passed; print one JSON summary line.
  udptool.py send ADDR PORT --count N [--interval MS | --mbit R] [--size B]
                 [--ecn 0-3] [--gso K]
      Send N numbered datagrams, paced by interval or by a target rate;
      with --gso, K datagrams at a time as one UDP_SEGMENT send.

Each datagram carries its sequence number and its send time; the receiver
reports what it missed, what arrived out of order, the ECN codepoints seen
(IP_RECVTOS / IPV6_RECVTCLASS) and the arrival rate.
"""
import json
import socket
import struct
import sys
import time

IP_TOS, IP_RECVTOS = 1, 13
IPV6_RECVTCLASS, IPV6_TCLASS = 66, 67


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def opt(args, name, default, conv=float):
    if name in args:
        return conv(args[args.index(name) + 1])
    return default


def recv(addr, port, args):
    fam = family(addr)
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    if fam == socket.AF_INET:
        s.setsockopt(socket.IPPROTO_IP, IP_RECVTOS, 1)
    else:
        s.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVTCLASS, 1)
    s.bind((addr, port))
    idle, limit = opt(args, "--idle", 1.0), opt(args, "--max", 30.0)
    with open(opt(args, "--ready", None, str), "w") as f:
        f.write("ready\n")
    start = time.monotonic()
    seen, ecn = set(), [0, 0, 0, 0]
    n = dup = ooo = nbytes = 0
    pad_altered = pad_bits = 0  # the sender pads with zeros after 16 bytes
    maxseq = -1
    first = last = None
    arrivals = []  # (seq, arrival time relative to the first)
    s.settimeout(0.1)
    while True:
        now = time.monotonic()
        if now - start > limit or (last is not None and now - last > idle):
            break
        try:
            data, anc, _, _ = s.recvmsg(65536, 64)
        except socket.timeout:
            continue
        t = time.monotonic()
        if first is None:
            first = t
        last = t
        seq = struct.unpack("!Q", data[:8])[0]
        for level, typ, cdata in anc:
            if (level, typ) in ((socket.IPPROTO_IP, IP_TOS), (socket.IPPROTO_IPV6, IPV6_TCLASS)):
                ecn[cdata[0] & 3 if len(cdata) == 1 else struct.unpack("i", cdata[:4])[0] & 3] += 1
        n += 1
        nbytes += len(data)
        bits = sum(bin(x).count("1") for x in data[16:] if x)
        if bits:
            pad_altered += 1
            pad_bits += bits
        if seq in seen:
            dup += 1
            continue
        seen.add(seq)
        if seq < maxseq:
            ooo += 1
        maxseq = max(maxseq, seq)
        arrivals.append((seq, round((t - first) * 1000.0, 3)))
    span = (last - first) if first is not None and last > first else 0.0
    print(json.dumps({
        "received": n, "unique": len(seen), "dup": dup, "out_of_order": ooo,
        "max_seq": maxseq, "ecn": ecn, "bytes": nbytes,
        "pad_altered": pad_altered, "pad_bits": pad_bits,
        "span_s": round(span, 4),
        "mbit": round(nbytes * 8 / span / 1e6, 3) if span else 0.0,
        "seqs": sorted(seen),
    }))


def send(addr, port, args):
    fam = family(addr)
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
    e = opt(args, "--ecn", 0, int)
    if fam == socket.AF_INET:
        s.setsockopt(socket.IPPROTO_IP, IP_TOS, e)
    else:
        s.setsockopt(socket.IPPROTO_IPV6, IPV6_TCLASS, e)
    count = opt(args, "--count", 100, int)
    size = max(16, opt(args, "--size", 100, int))
    interval = opt(args, "--interval", 1.0) / 1000.0
    mbit = opt(args, "--mbit", 0.0)
    if mbit > 0:  # pace by rate counting the IP+UDP+Ethernet overhead
        hdr = 42 if fam == socket.AF_INET else 62
        interval = (size + hdr) * 8 / (mbit * 1e6)
    pad = b"\0" * (size - 16)
    gso = opt(args, "--gso", 0, int)
    if gso:
        s.setsockopt(socket.IPPROTO_UDP, 103, size)  # UDP_SEGMENT
    start = time.monotonic()
    for i in range(count):
        due = start + i * interval
        while True:
            d = due - time.monotonic()
            if d <= 0:
                break
            if d > 0.0003:
                time.sleep(d - 0.0002)
        if gso:
            # one send() of several segments: the kernel splits it (UDP GSO)
            if i % gso == 0:
                k = min(gso, count - i)
                buf = b"".join(struct.pack("!Qd", i + j, time.monotonic()) + pad for j in range(k))
                s.sendto(buf, (addr, port))
            continue
        s.sendto(struct.pack("!Qd", i, time.monotonic()) + pad, (addr, port))


if __name__ == "__main__":
    mode, a, p = sys.argv[1], sys.argv[2], int(sys.argv[3])
    (recv if mode == "recv" else send)(a, p, sys.argv[4:])
