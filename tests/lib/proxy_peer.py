#!/usr/bin/env python3
"""Both ends of a proxied connection, for tests/integration/proxy.sh.

backend PORT MODE [STATUS_FILE]   a plain TCP backend on 127.0.0.1:PORT (threaded), prints
                                  one line per event to stdout. MODE:
  echo        echoes bytes; on the client's FIN says "EOF-SEEN\\n", then FIN
  sink        reads to FIN, answers the sha256 of what came, then FIN
  source      reads "N\\n", sends N pattern bytes (prints "sent N SHA"), then FIN; while a send
              is blocked for 0.5 s it writes "blocked SENT" to STATUS_FILE
  first       sends "greeting\\n" and FIN at once, then reads to FIN and prints "got: ..."
  reset       reads a byte, sends 1 MiB, then resets the connection (RST)
  ppv2        reads a PROXY v2 header, answers one line with what it says
              ("pp2 src=IP:PORT authority=.. alpn=.. version=.. cipher=.. e0=RESUMED:NODE"), then FIN
  full        listens with a backlog it never accepts from, filled by itself: connects time out
  early       prints "early: accepted" at once; then as ppv2, or "early: closed, no byte came"
              when the connection ends before any byte (an early connect whose handshake died)
client PORT ACTION [ARG]          a TLS client (SNI $PEER_SNI, default a.example) that drives a memory-BIO SSL
                                  object by hand, so it can send close_notify and keep reading:
  upload N    sends N pattern bytes, then close_notify; prints "SHA REPLY" (the sink's answer)
  download N  asks a source for N bytes; prints "BYTES SHA CLEAN" (CLEAN: close_notify came)
  slow N GO   as download, but after 1 MiB stops reading until the file GO exists
  halfclose   sends "hello" then close_notify, reads to close_notify; prints what came + CLEAN
  afterfin    reads to close_notify, then sends "after\\n" and close_notify (TLS 1.3)
  pingpong N  N round trips of a line over one connection (a long-lived stream); prints "ok N"
  vanish      sends "x", reads the echo, then resets the TCP connection (no close_notify)
  read        sends "x", reads to the end; prints "BYTES CLEAN"
  hold GO     a line echoed ("first ok"), then waits (<= 60 s) for the file GO, another line
              echoed ("second ok"); then with HOLD_END=1 reads until the server ends the stream,
              else sends close_notify and reads to the end; prints "end clean|truncated"
stall PORT                        a TLS 1.3 ClientHello, the server's first flight read, and then
                                  nothing (no Finished): prints "stalled", then "closed by the
                                  server" once the server gives up on the handshake
"""
import hashlib
import os
import random
import select
import socket
import ssl
import struct
import sys
import threading
import time

BLOCK = random.Random(1).randbytes(1 << 20)


def pattern(n):
    """N bytes of a fixed pseudo-random 1 MiB block, repeated."""
    while n > 0:
        k = min(n, len(BLOCK))
        yield BLOCK[:k]
        n -= k


def say(*a):
    print(*a, flush=True)


# ---------------------------------------------------------------- backend

def recv_all(c):
    h = hashlib.sha256()
    while True:
        d = c.recv(1 << 16)
        if not d:
            return h
        h.update(d)


def recv_exact(c, n):
    b = b""
    while len(b) < n:
        d = c.recv(n - len(b))
        if not d:
            raise OSError("short PROXY header")
        b += d
    return b


def read_ppv2(c):
    """Parses a PROXY v2 header (TCP4/TCP6) and its TLVs into one line."""
    head = recv_exact(c, 16)
    if head[:12] != b"\r\n\r\n\x00\r\nQUIT\n" or head[12] != 0x21:
        return "pp2 bad signature or command"
    body = recv_exact(c, struct.unpack("!H", head[14:16])[0])
    fam = head[13] >> 4
    alen = 4 if fam == 1 else 16
    src = socket.inet_ntop(socket.AF_INET if fam == 1 else socket.AF_INET6, body[:alen])
    sport = struct.unpack("!H", body[2 * alen:2 * alen + 2])[0]
    out = {"src": "%s:%d" % (src, sport)}
    i = 2 * alen + 4
    while i < len(body):
        t, n = body[i], struct.unpack("!H", body[i + 1:i + 3])[0]
        v = body[i + 3:i + 3 + n]
        i += 3 + n
        if t == 0x01:
            out["alpn"] = v.decode()
        elif t == 0x02:
            out["authority"] = v.decode()
        elif t == 0x20:
            j = 5
            while j < len(v):
                st, sn = v[j], struct.unpack("!H", v[j + 1:j + 3])[0]
                sv = v[j + 3:j + 3 + sn].decode()
                j += 3 + sn
                out["version" if st == 0x21 else "cipher" if st == 0x23 else "sub%x" % st] = sv
            out["client"] = "%d" % v[0]
        elif t == 0xE0:
            out["e0"] = "%d:%s" % (v[0], v[1:].decode())
    return "pp2 " + " ".join("%s=%s" % kv for kv in sorted(out.items()))


def serve(c, mode, status):
    try:
        if mode == "echo":
            while True:
                d = c.recv(1 << 16)
                if not d:
                    c.sendall(b"EOF-SEEN\n")
                    c.shutdown(socket.SHUT_WR)
                    say("echo: client FIN")
                    break
                c.sendall(d)
        elif mode == "sink":
            h = recv_all(c)
            c.sendall(h.hexdigest().encode() + b"\n")
            c.shutdown(socket.SHUT_WR)
        elif mode == "source":
            line = b""
            while not line.endswith(b"\n"):
                d = c.recv(1)
                if not d:
                    return
                line += d
            n = int(line)
            h = hashlib.sha256()
            sent = 0
            c.setblocking(False)
            for chunk in pattern(n):
                h.update(chunk)
                view = memoryview(chunk)
                while view:
                    _, w, _ = select.select([], [c], [], 0.5)
                    if not w:
                        with open(status, "w") as f:
                            f.write("blocked %d\n" % sent)
                        continue
                    k = c.send(view)
                    view = view[k:]
                    sent += k
            c.setblocking(True)
            c.shutdown(socket.SHUT_WR)
            say("sent %d %s" % (sent, h.hexdigest()))
            recv_all(c)
        elif mode == "first":
            c.sendall(b"greeting\n")
            c.shutdown(socket.SHUT_WR)
            got = b""
            while True:
                d = c.recv(1 << 16)
                if not d:
                    break
                got += d
            say("got: " + got.decode(errors="replace").strip())
        elif mode == "ppv2":
            c.sendall(read_ppv2(c).encode() + b"\n")
            c.shutdown(socket.SHUT_WR)
            recv_all(c)
        elif mode == "early":
            say("early: accepted")
            if not c.recv(1, socket.MSG_PEEK):
                say("early: closed, no byte came")
            else:
                c.sendall(read_ppv2(c).encode() + b"\n")
                c.shutdown(socket.SHUT_WR)
                recv_all(c)
        elif mode == "reset":
            c.recv(1)  # the client's first byte: the connection is established end to end
            for chunk in pattern(1 << 20):
                c.sendall(chunk)
            c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError as e:
        say("backend error: %s" % e)
    finally:
        c.close()
        if mode == "echo":
            say("echo: closed")


def backend(port, mode, status=None):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    if mode == "full":
        # Backlog 0 holds one; two more connects of our own fill it, so the kernel drops SYNs.
        s.listen(0)
        keep = []
        for _ in range(3):
            k = socket.socket()
            k.setblocking(False)
            k.connect_ex(("127.0.0.1", port))
            keep.append(k)
        say("full")
        while True:
            time.sleep(3600)
    s.listen(128)
    say("listening")
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve, args=(c, mode, status), daemon=True).start()


# ---------------------------------------------------------------- client

class Tls:
    def __init__(self, port, version):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        if version == "1.2":
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        else:
            ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out, server_hostname=os.environ.get("PEER_SNI", "a.example"))
        self.clean = False
        self.eof = False
        self.pump(self.obj.do_handshake)

    def flush(self):
        d = self.out.read()
        if d:
            self.sock.sendall(d)

    def fill(self):
        d = self.sock.recv(1 << 16)
        if not d:
            self.eof = True
            self.inc.write_eof()
        else:
            self.inc.write(d)

    def pump(self, op, *a):
        while True:
            try:
                r = op(*a)
                self.flush()
                return r
            except ssl.SSLWantReadError:
                self.flush()
                if self.eof:
                    raise
                self.fill()

    def send(self, data):
        self.pump(self.obj.write, data)

    def recv(self):
        """Bytes, or b"" at the end (self.clean says whether close_notify came)."""
        try:
            d = self.pump(self.obj.read, 1 << 16)
            if not d:  # Python's read says close_notify with b""
                self.clean = True
            return d
        except ssl.SSLZeroReturnError:
            self.clean = True
            return b""
        except (ssl.SSLEOFError, ssl.SSLWantReadError, ConnectionResetError, ssl.SSLError) as e:
            if os.environ.get("PEER_DEBUG"):
                say("recv: %r" % e)
            return b""

    def close_notify(self):
        try:
            self.obj.unwrap()
        except (ssl.SSLWantReadError, ssl.SSLZeroReturnError):
            pass
        self.flush()


def stall(port):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=os.environ.get("PEER_SNI", "a.example"))
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    sock.sendall(out.read())
    if not sock.recv(1 << 16):  # the server's first flight (ServerHello .. Finished)
        say("closed before the server's first flight")
        return
    say("stalled")
    while sock.recv(1 << 16):
        pass
    say("closed by the server")


def client(port, action, arg=None, version="1.3"):
    t = Tls(port, version)
    if action == "upload":
        h = hashlib.sha256()
        for chunk in pattern(int(arg)):
            h.update(chunk)
            t.send(chunk)
        t.close_notify()
        got = b""
        while True:
            d = t.recv()
            if not d:
                break
            got += d
        say(h.hexdigest(), got.decode().strip())
    elif action in ("download", "slow"):
        n = int(arg)
        t.send(b"%d\n" % n)
        h = hashlib.sha256()
        total = 0
        stalled = False
        while True:
            if action == "slow" and not stalled and total >= (1 << 20):
                stalled = True
                go = sys.argv[5]
                deadline = time.time() + 120
                while not os.path.exists(go) and time.time() < deadline:
                    time.sleep(0.05)
            d = t.recv()
            if not d:
                break
            h.update(d)
            total += len(d)
        say(total, h.hexdigest(), "clean" if t.clean else "truncated")
    elif action == "halfclose":
        t.send(b"hello")
        t.close_notify()
        got = b""
        while True:
            d = t.recv()
            if not d:
                break
            got += d
        say(got.decode().replace("\n", "|"), "clean" if t.clean else "truncated")
    elif action == "afterfin":
        got = b""
        while True:
            d = t.recv()
            if not d:
                break
            got += d
        t.send(b"after\n")
        t.close_notify()
        say(got.decode().strip(), "clean" if t.clean else "truncated")
    elif action == "hold":
        def echo(msg):
            t.send(msg)
            got = b""
            while len(got) < len(msg):
                d = t.recv()
                if not d:
                    return False
                got += d
            return got == msg
        say("first ok" if echo(b"one\n") else "first failed")
        deadline = time.time() + 60
        while not os.path.exists(arg) and time.time() < deadline:
            time.sleep(0.05)
        say("second ok" if echo(b"two\n") else "second failed")
        if os.environ.get("HOLD_END") != "1":
            t.close_notify()
        while t.recv():
            pass
        say("end clean" if t.clean else "end truncated")
    elif action == "pingpong":
        n = int(arg)
        for i in range(n):
            msg = b"ping %d\n" % i
            t.send(msg)
            got = b""
            while len(got) < len(msg):
                d = t.recv()
                if not d:
                    say("lost at %d" % i)
                    return
                got += d
            if got != msg:
                say("bad echo at %d" % i)
                return
        say("ok %d" % n)
    elif action == "vanish":
        t.send(b"x")
        t.recv()
        t.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        t.sock.close()
        say("vanished")
    elif action == "read":
        t.send(b"x")
        total = 0
        while True:
            d = t.recv()
            if not d:
                break
            total += len(d)
        say(total, "clean" if t.clean else "truncated")


if __name__ == "__main__":
    if sys.argv[1] == "backend":
        backend(int(sys.argv[2]), sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else None)
    elif sys.argv[1] == "stall":
        stall(int(sys.argv[2]))
    else:
        ver = os.environ.get("TLS_VERSION", "1.3")
        client(int(sys.argv[2]), sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else None, ver)
