#!/usr/bin/env python3
"""Binary-safe Redis commands for tests (redis-cli mangles binary values).

    resp.py PORT CMD ARG...        prints the reply as JSON (bytes as latin-1 strings)
    resp.py PORT --hex CMD ARG...  bulk strings printed as hex
Arguments of the form hex:ABCD are sent as raw bytes.
"""
import json
import socket
import sys


def encode(args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def read_reply(f):
    line = f.readline()
    if not line:
        raise EOFError("connection closed")
    kind, rest = line[:1], line[1:-2]
    if kind in (b"+", b"-"):
        return rest.decode("latin-1") if kind == b"+" else {"error": rest.decode("latin-1")}
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)[:-2]
        return data
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [read_reply(f) for _ in range(n)]
    raise ValueError("bad reply %r" % line)


def main():
    port = int(sys.argv[1])
    args = sys.argv[2:]
    as_hex = False
    if args and args[0] == "--hex":
        as_hex, args = True, args[1:]
    raw = [bytes.fromhex(a[4:]) if a.startswith("hex:") else a.encode() for a in args]
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(encode(raw))
    reply = read_reply(s.makefile("rb"))

    def conv(x):
        if isinstance(x, bytes):
            return x.hex() if as_hex else x.decode("latin-1")
        if isinstance(x, list):
            return [conv(y) for y in x]
        return x

    print(json.dumps(conv(reply)))


if __name__ == "__main__":
    main()
