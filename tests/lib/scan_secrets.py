#!/usr/bin/env python3
"""Looks for secrets where they must never be: every value in Redis and every file under the
given directories. Secrets are given as hex on stdin, one per line, in two kinds:

    key <name-hex> <secret-hex>   a daemon key: its secret and the three keys derived from it
                                  (ticket AES, ticket HMAC, record sealing) are searched
    raw <hex>                     any other byte string (e.g. a session's master key)

Each is searched as raw bytes, lowercase hex and uppercase hex.
    scan_secrets.py REDIS_PORT DIR...   prints each hit and exits 1 if there is any
"""
import hashlib
import hmac
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import socket  # noqa: E402

from resp import encode, read_reply  # noqa: E402


def hkdf(ikm, salt, info, length=32):
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    out, t, i = b"", b"", 1
    while len(out) < length:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
        out += t
        i += 1
    return out[:length]


def needles(lines):
    out = []
    for line in lines:
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "key":
            name, secret = bytes.fromhex(parts[1]), bytes.fromhex(parts[2])
            out.append(("secret " + parts[1][:8], secret))
            for info in (b"tlscache ticket aes v1", b"tlscache ticket hmac v1", b"tlscache session seal v1"):
                out.append((info.decode() + " " + parts[1][:8], hkdf(secret, name, info)))
        elif parts[0] == "raw":
            out.append(("raw " + parts[1][:8], bytes.fromhex(parts[1])))
    forms = []
    for label, b in out:
        forms += [(label, b), (label + " (hex)", b.hex().encode()), (label + " (HEX)", b.hex().upper().encode())]
    return forms


def redis_values(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    f = s.makefile("rb")

    def cmd(*args):
        s.sendall(encode([a if isinstance(a, bytes) else str(a).encode() for a in args]))
        return read_reply(f)

    cursor = b"0"
    while True:
        cursor, keys = cmd("SCAN", cursor, "COUNT", 1000)
        for k in keys:
            t = cmd("TYPE", k)
            if t == "hash":
                for v in cmd("HGETALL", k):
                    yield k, v
            elif t == "string":
                yield k, cmd("GET", k)
            elif t == "list":
                for v in cmd("LRANGE", k, 0, -1):
                    yield k, v
        if cursor in (b"0", 0, "0"):
            break


def main():
    port = int(sys.argv[1])
    forms = needles(sys.stdin.read().splitlines())
    if not forms:
        print("scan_secrets: nothing to look for")
        return 2
    hits = 0
    nvalues = 0
    for k, v in redis_values(port):
        nvalues += 1
        for label, b in forms:
            if b in v:
                hits += 1
                print("HIT redis %s: %s" % (k.decode(errors="replace"), label))
    nfiles = 0
    for d in sys.argv[2:]:
        for root, _, files in os.walk(d):
            for name in files:
                path = os.path.join(root, name)
                try:
                    data = open(path, "rb").read()
                except OSError:
                    continue
                nfiles += 1
                for label, b in forms:
                    if b in data:
                        hits += 1
                        print("HIT file %s: %s" % (path, label))
    print("scanned %d redis values and %d files for %d forms of secrets: %d hits" % (nvalues, nfiles, len(forms), hits))
    return 1 if hits else 0


if __name__ == "__main__":
    sys.exit(main())
