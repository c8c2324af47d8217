#!/usr/bin/env python3
"""Checks that Redis holds no session secret in clear.

sealed_check.py DUMP SESSFILE...

DUMP: one line per session record, "<key> <der value as redis-cli --no-raw prints it>" (a
quoted string with \\xHH escapes), read with redis-cli in the redis container. SESSFILEs: PEM sessions the test's openssl s_client saved (-sess_out).
Fails when
  - the master key of any SESSFILE (openssl sess_id -text) appears in any der value, or
  - any der value contains a parseable DER SSL_SESSION at any offset (a record may carry a
    header of its own; a plain i2d_SSL_SESSION starts SEQUENCE, INTEGER 1, INTEGER 0x030x).
Prints one summary line.
"""
import re
import subprocess
import sys


def master_keys(files):
    keys = set()
    for f in files:
        out = subprocess.run(["openssl", "sess_id", "-in", f, "-noout", "-text"], capture_output=True, text=True)
        m = re.search(r"Master-Key:\s*([0-9A-Fa-f]+)", out.stdout)
        if m and len(m.group(1)) >= 64:
            keys.add(bytes.fromhex(m.group(1)))
    return keys


def parses_as_session(blob):
    # SSL_SESSION_ASN1: SEQUENCE { version INTEGER 1, ssl_version INTEGER 0x0301..0x0304, ...}
    for m in re.finditer(rb"\x02\x01\x01\x02\x02\x03[\x00-\x04]", blob):
        for hdr in (2, 3, 4):
            start = m.start() - hdr
            if start < 0 or blob[start] != 0x30:
                continue
            r = subprocess.run(["openssl", "sess_id", "-inform", "DER", "-noout"], input=blob[start:],
                               capture_output=True)
            if r.returncode == 0:
                return True
    return False


def unrepr(s):
    """Inverse of Redis's sdscatrepr (what redis-cli --no-raw prints for a bulk string)."""
    s = s.rstrip("\r\n")
    if len(s) < 2 or s[0] != '"' or s[-1] != '"':
        return None
    s, out, i = s[1:-1], bytearray(), 0
    simple = {"n": 10, "r": 13, "t": 9, "a": 7, "b": 8, "\\": 92, '"': 34}
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            n = s[i + 1]
            if n == "x" and i + 3 < len(s):
                out.append(int(s[i + 2:i + 4], 16))
                i += 4
                continue
            out.append(simple.get(n, ord(n)))
            i += 2
            continue
        out.extend(c.encode("latin-1"))
        i += 1
    return bytes(out)


def main():
    dump, sess = sys.argv[1], sys.argv[2:]
    mks = master_keys(sess)
    records = 0
    leaks, plain = [], []
    with open(dump) as f:
        for line in f:
            parts = line.split(" ", 1)
            if len(parts) != 2:
                continue
            key, value = parts
            blob = unrepr(value)
            if blob is None:  # (nil): expired meanwhile
                continue
            records += 1
            if any(mk in blob for mk in mks):
                leaks.append(key)
            if parses_as_session(blob):
                plain.append(key)
    print(f"{records} records, {len(mks)} known master keys: {len(leaks)} records hold a master key, "
          f"{len(plain)} hold a plain SSL_SESSION" + (f" (e.g. {(leaks + plain)[0]})" if leaks or plain else ""))
    return 0 if records > 0 and mks and not leaks and not plain else 1


if __name__ == "__main__":
    sys.exit(main())
