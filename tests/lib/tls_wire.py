#!/usr/bin/env python3
"""Looks at what a TLS server puts on the wire, record by record (TLS 1.2, where record types
are visible). Used by tests/integration/tls_wire.sh.

  tls_wire.py PORT reply     one GET; prints "data_records=N alerts=N" seen after the handshake
  tls_wire.py PORT status PARTS...
                             sends each PART (Python escapes, e.g. 'GET / HTTP/1.1\\r\\n\\r', or
                             "big:N" for N bytes of one header line, "eof" for a TCP half-close) as a TLS record of its own;
                             prints the reply's status line, or "status=none"
  tls_wire.py PORT badmac    after the handshake sends an application-data record with a bad
                             MAC; prints "alert=<what the client's OpenSSL read>" or "alert=none"
  tls_wire.py PORT hello CASE
                             sends one hand-built ClientHello (CASE below names what is wrong
                             with it) and prints "alert=<code>" for the first alert the server
                             sends (RFC 8446 §6: 50 decode_error, 47 illegal_parameter, ...),
                             or "alert=none first=<record type>" when it answers otherwise
"""
import os
import socket
import ssl
import sys

port, mode = int(sys.argv[1]), sys.argv[2]


def u8(n):
    return bytes([n])


def u16(n):
    return n.to_bytes(2, "big")


def u24(n):
    return n.to_bytes(3, "big")


def ext(kind, body):
    return u16(kind) + u16(len(body)) + body


def sni(name, list_delta=0, name_delta=0, name_type=0):
    entry = u8(name_type) + u16(len(name) + name_delta) + name
    return ext(0, u16(len(entry) + list_delta) + entry)


def client_hello(case):
    """The ClientHello bytes (as records) for one CASE; malformed in exactly one place."""
    # Record-layer cases: the record, not the handshake message in it, is wrong.
    if case == "record_overflow":  # longer than 2^14 + 2048, the most any record may be
        return u8(22) + b"\x03\x01" + u16(18500) + bytes(18500)
    if case == "record_not_handshake":  # application data before any handshake
        return u8(23) + b"\x03\x03" + u16(16) + bytes(16)
    name = sni(b"a.example")
    versions = ext(43, u8(4) + b"\x03\x04\x03\x03")
    tail = psk = b""
    if case == "sni_list_past":  # the list length runs past the extension body
        name = sni(b"a.example", list_delta=5)
    elif case == "sni_list_short":  # the list length stops before the body ends
        name = sni(b"a.example", list_delta=-2)
    elif case == "sni_name_past":  # a name length runs past its list
        name = sni(b"a.example", name_delta=4)
    elif case == "sni_name_empty":  # HostName<1..2^16-1> with length 0
        name = ext(0, u16(3) + u8(0) + u16(0))
    elif case == "sni_bad_byte":  # well formed, but a space cannot be in a host name
        name = sni(b"a example")
    elif case == "sni_too_long":  # well formed, but longer than any DNS name
        name = sni(b"a" * 300)
    elif case == "versions_odd":  # ProtocolVersion versions<2..254>: an odd length
        versions = ext(43, u8(3) + b"\x03\x04\x03")
    elif case == "versions_past":  # the list length runs past the extension body
        versions = ext(43, u8(6) + b"\x03\x04\x03\x03")
    elif case == "psk_identity_past":  # a PSK identity's length runs past its list (the
        # pre-parser then offers no lookup; OpenSSL's own parse of the extension answers)
        ident = u16(40) + bytes(3) + u16(0) + bytes(2)  # identity<1..>: 40 bytes claimed, 3 there
        psk = ext(41, u16(len(ident)) + ident + u16(33) + u8(32) + bytes(32))
    elif case == "padding_past":  # a padding extension that runs past the message
        tail = u16(21) + u16(512) + bytes(16)
    elif case != "ok":
        sys.exit("unknown case " + case)
    exts = (name + versions
            + ext(10, u16(4) + u16(0x001D) + u16(0x0017))  # supported_groups: X25519, P-256
            + ext(13, u16(8) + u16(0x0403) + u16(0x0804) + u16(0x0401) + u16(0x0201))
            + ext(51, u16(36) + u16(0x001D) + u16(32) + os.urandom(32))  # key_share X25519
            + ext(45, u8(1) + u8(1))  # psk_key_exchange_modes: psk_dhe_ke
            + psk)  # pre_shared_key, when there is one, comes last
    exts_block = exts + tail
    # In padding_past the extensions' total covers the padding's header only, as a client
    # whose padding body was cut off would send it.
    exts_len = len(exts) + 4 if tail else len(exts)
    suites = u16(0x1301) + u16(0x1302) + u16(0xC02F) + u16(0xC02B)
    body = (b"\x03\x03" + os.urandom(32) + u8(32) + os.urandom(32) + u16(len(suites)) + suites
            + b"\x01\x00" + u16(exts_len) + exts_block)
    if tail:
        body = body[:len(body) - 16]  # the message ends right after the padding's header
    msg = u8(1) + u24(len(body)) + body
    return u8(22) + b"\x03\x01" + u16(len(msg)) + msg


if mode == "hello":
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(client_hello(sys.argv[3]))
    buf = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, socket.timeout):
            chunk = b""
        if not chunk:
            break
        buf += chunk
        if len(buf) >= 5 and len(buf) >= 5 + int.from_bytes(buf[3:5], "big"):
            break  # the first record is complete: it decides
    if len(buf) >= 7 and buf[0] == 21:
        print("alert=%d" % buf[6])
    else:
        print("alert=none first=%s" % (buf[0] if buf else "close"))
    sys.exit(0)
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
elif mode == "status":
    for part in sys.argv[3:]:
        if part == "eof":
            sock.shutdown(socket.SHUT_WR)
            continue
        if part.startswith("big:"):
            data = b"GET / HTTP/1.1\r\nX-Big: " + b"a" * int(part[4:])
        else:
            data = part.encode().decode("unicode_escape").encode("latin-1")
        tls.write(data)
        pump_out()
    for t, raw in read_records():
        inc.write(raw)
    reply = b""
    try:
        while True:
            got = tls.read(65536)
            if not got:
                break
            reply += got
    except (ssl.SSLError, ssl.SSLWantReadError):
        pass
    print(reply.split(b"\r\n")[0].decode("latin-1") if reply else "status=none")
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
