#!/usr/bin/env python3
"""Writes the seed inputs of fuzz-h3 (see fuzz-h3.c for the format) into a
directory:

    python3 test/fuzz/h3-seeds.py test/fuzz/corpus/h3

Server seeds (mode 0) are a client that opens its control stream
(SETTINGS) and QPACK streams and sends requests; client seeds (mode 1) are
a server that opens the same streams and answers uvq's two requests. Field
sections use only QPACK's static table and literals (RFC 9204, 4.5), so
that they decode without a dynamic table."""
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


STATUS_200, STATUS_404 = 25, 27


def response(status=STATUS_200, body=b"", fin=True):
    """A response on the current stream: HEADERS (with :status from the
    static table), then DATA."""
    out = frame(0x01, b"\x00\x00" + indexed(status))
    if body:
        out += frame(0x00, body)
    return op_write(out, fin=fin)


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


SERVER = b"\x00"  # mode byte: uvq is the server
CLIENT = b"\x01"  # uvq is the client

SEEDS = {
    "server-get-index": SERVER + setup() + get("/"),
    "server-get-memory": SERVER + setup() + get("/m"),
    "server-get-subdir": SERVER + setup() + get("/sub/a.txt"),
    "server-get-missing": SERVER + setup() + get("/nothing-here"),
    "server-traversal": SERVER + setup() + get("/../secret") +
    get("/sub/../../secret"),
    "server-link": SERVER + setup() + get("/link"),
    "server-fifo": SERVER + setup() + get("/fifo"),
    "server-post-body": SERVER + setup() + op_open_bidi() +
    op_write(headers(method=METHOD_POST, path="/m")) +
    op_write(frame(0x00, b"a request body"), fin=True),
    "server-reset": SERVER + setup() + op_open_bidi() +
    op_write(headers(path="/m")) + op_reset(0x0C),
    "server-stop-sending": SERVER + setup() + op_open_bidi() +
    op_write(headers(path="/index.html"), fin=True) + op_stop(0x0C) +
    op_wait(50),
    "server-several": SERVER + setup() + get("/m") + get("/") +
    op_open_bidi() + op_write(headers(path="/sub/a.txt")) + op_fin() +
    op_wait(200),
    "server-no-settings": SERVER + get("/m"),
    "server-truncated-headers": SERVER + setup() + op_open_bidi() +
    op_write(headers(path="/m")[:6], fin=True),
    # uvq's client: the current stream starts as its first request; the
    # streams known are then uvq's control and QPACK streams, its two
    # requests (indices 3 and 4), and the ones the script opens (setup():
    # 5 to 7).
    "client-response": CLIENT + response(body=b"first body") + setup(),
    "client-two-responses": CLIENT + response(body=b"one") + op_select(4) +
    response(STATUS_404) + setup(),
    "client-goaway": CLIENT + setup() + op_select(5) +
    op_write(frame(0x07, varint(0))),
    "client-reset": CLIENT + op_reset(0x0C) + setup() + op_wait(100),
    # A push stream in place of the QPACK decoder stream (uvq allows the
    # server three unidirectional streams), though uvq never allowed pushes.
    "client-push-stream": CLIENT + op_open_uni() +
    op_write(b"\x00" + frame(0x04, b"")) + op_open_uni() + op_write(b"\x02") +
    op_open_uni() +
    op_write(b"\x01" + varint(0) + frame(0x01, b"\x00\x00" + indexed(STATUS_200))),
    "client-server-bidi": CLIENT + setup() + op_open_bidi() +
    op_write(frame(0x01, b"\x00\x00" + indexed(STATUS_200)), fin=True),
    "client-no-fin": CLIENT + response(body=b"partial", fin=False) + setup() +
    op_wait(250),
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
