#!/usr/bin/env python3
"""Writes the seed inputs of fuzz-h3-server (see fuzz-h3-server.c for the
script format) into a directory:

    python3 test/fuzz/h3-server-seeds.py test/fuzz/corpus/h3-server

Each seed is a client that opens its control stream (SETTINGS) and QPACK
streams and sends requests whose field sections use only QPACK's static
table and literals (RFC 9204, 4.5), so that the server can decode them
without a dynamic table."""
import os
import sys


def varint(v):
    """A QUIC variable-length integer (RFC 9000, 16)."""
    if v < 64:
        return bytes([v])
    if v < 16384:
        return bytes([0x40 | (v >> 8), v & 0xFF])
    return bytes([0x80 | (v >> 24), (v >> 16) & 0xFF, (v >> 8) & 0xFF, v & 0xFF])


def prefixed(first, bits, v):
    """A QPACK prefixed integer (RFC 9204, 4.1.1): first holds the bits
    above the prefix."""
    top = (1 << bits) - 1
    if v < top:
        return bytes([first | v])
    out = [first | top]
    v -= top
    while v >= 128:
        out.append(0x80 | (v & 0x7F))
        v >>= 7
    out.append(v)
    return bytes(out)


def frame(ftype, payload):
    return varint(ftype) + varint(len(payload)) + payload


# Static table indices (RFC 9204, Appendix A).
AUTHORITY, PATH_SLASH, METHOD_GET, METHOD_POST, SCHEME_HTTPS = 0, 1, 17, 20, 23


def indexed(i):
    return prefixed(0xC0, 6, i)


def with_name_ref(i, value):
    v = value.encode()
    return prefixed(0x50, 4, i) + prefixed(0x00, 7, len(v)) + v


def headers(method=METHOD_GET, path="/", extra=b""):
    fields = indexed(method) + indexed(SCHEME_HTTPS)
    fields += with_name_ref(AUTHORITY, "localhost")
    fields += indexed(PATH_SLASH) if path == "/" else with_name_ref(PATH_SLASH, path)
    return frame(0x01, b"\x00\x00" + fields + extra)


# Script operations.
def op_open_bidi():
    return b"\x00"


def op_open_uni():
    return b"\x01"


def op_write(data, fin=False):
    return bytes([0x82 if fin else 0x02]) + len(data).to_bytes(2, "big") + data


def op_select(i):
    return bytes([0x03, i])


def op_fin():
    return b"\x04"


def op_reset(code):
    return bytes([0x05, code])


def op_stop(code):
    return bytes([0x06, code])


def op_wait(ms):
    return bytes([0x07, ms])


def setup():
    """Control stream with an empty SETTINGS frame, then the QPACK encoder
    and decoder streams (RFC 9114, 6.2; RFC 9204, 4.2)."""
    return (op_open_uni() + op_write(b"\x00" + frame(0x04, b"")) +
            op_open_uni() + op_write(b"\x02") +
            op_open_uni() + op_write(b"\x03"))


def get(path):
    return op_open_bidi() + op_write(headers(path=path), fin=True)


SEEDS = {
    "get-index": setup() + get("/"),
    "get-memory": setup() + get("/m"),
    "get-subdir": setup() + get("/sub/a.txt"),
    "get-missing": setup() + get("/nothing-here"),
    "traversal": setup() + get("/../secret") + get("/sub/../../secret"),
    "link": setup() + get("/link"),
    "fifo": setup() + get("/fifo"),
    "post-body": setup() + op_open_bidi() +
    op_write(headers(method=METHOD_POST, path="/m")) +
    op_write(frame(0x00, b"a request body"), fin=True),
    "reset": setup() + op_open_bidi() + op_write(headers(path="/m")) +
    op_reset(0x0C),
    "stop-sending": setup() + op_open_bidi() +
    op_write(headers(path="/index.html"), fin=True) + op_stop(0x0C) +
    op_wait(50),
    "several": setup() + get("/m") + get("/") + op_open_bidi() +
    op_write(headers(path="/sub/a.txt")) + op_select(5) + op_fin() +
    op_wait(200),
    "no-settings": get("/m"),
    "truncated-headers": setup() + op_open_bidi() +
    op_write(headers(path="/m")[:6], fin=True),
}


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: h3-server-seeds.py DIR")
    os.makedirs(sys.argv[1], exist_ok=True)
    for name, data in sorted(SEEDS.items()):
        with open(os.path.join(sys.argv[1], name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
