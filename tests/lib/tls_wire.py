#!/usr/bin/env python3
"""Looks at what a TLS server puts on the wire, record by record (TLS 1.2, where record types
are visible). Used by tests/integration/tls_wire.sh.

  tls_wire.py PORT reply     one GET; prints "data_records=N alerts=N" seen after the handshake
  tls_wire.py PORT badmac    after the handshake sends an application-data record with a bad
                             MAC; prints "alert=<what the client's OpenSSL read>" or "alert=none"
"""
import socket
import ssl
import sys

port, mode = int(sys.argv[1]), sys.argv[2]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.maximum_version = ssl.TLSVersion.TLSv1_2
sock = socket.create_connection(("127.0.0.1", port), timeout=10)
inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
tls = ctx.wrap_bio(inc, out, server_hostname="a.example")


def pump_out():
    data = out.read()
    if data:
        sock.sendall(data)


while True:
    try:
        tls.do_handshake()
        pump_out()
        break
    except ssl.SSLWantReadError:
        pump_out()
        chunk = sock.recv(65536)
        if not chunk:
            sys.exit("server closed during the handshake")
        inc.write(chunk)


def read_records():
    """Every record the server sends until it closes: (type, raw bytes)."""
    buf, records = b"", []
    while True:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, socket.timeout):
            chunk = b""
        if not chunk:
            break
        buf += chunk
        while len(buf) >= 5 and len(buf) >= 5 + int.from_bytes(buf[3:5], "big"):
            n = 5 + int.from_bytes(buf[3:5], "big")
            records.append((buf[0], buf[:n]))
            buf = buf[n:]
    return records


if mode == "reply":
    tls.write(b"GET / HTTP/1.1\r\nHost: a.example\r\n\r\n")
    pump_out()
    recs = read_records()
    print("data_records=%d alerts=%d" % (sum(t == 23 for t, _ in recs), sum(t == 21 for t, _ in recs)))
elif mode == "badmac":
    sock.sendall(bytes([23, 3, 3, 0, 40]) + bytes(40))  # 40 zero bytes: no valid MAC
    recs = read_records()
    alert = "none"
    for t, raw in recs:
        inc.write(raw)
    try:
        tls.read(100)
    except ssl.SSLError as e:
        alert = e.reason or str(e)
    except ssl.SSLWantReadError:
        pass
    print("alert=%s records=%s" % (alert, [t for t, _ in recs]))
