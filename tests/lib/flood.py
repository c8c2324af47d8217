#!/usr/bin/env python3
"""Opens N idle (or slowloris) TCP connections to 127.0.0.1:PORT, holds them for SECS seconds,
then closes them all. Bounded in count and time; prints how many connected.

  flood.py PORT N SECS [idle|slowloris]
slowloris sends the first 5 bytes of a TLS record header and nothing more.
"""
import resource
import select
import socket
import sys
import time

port, n, secs = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
mode = sys.argv[4] if len(sys.argv) > 4 else "idle"
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 64), hard))
socks = []
for _ in range(n):
    s = socket.socket()
    s.setblocking(False)
    try:
        s.connect(("127.0.0.1", port))
    except BlockingIOError:
        pass
    socks.append(s)
deadline = time.monotonic() + secs
connected = set()
poller = select.poll()
by_fd = {s.fileno(): s for s in socks}
for fd in by_fd:
    poller.register(fd, select.POLLOUT)
last_progress = time.monotonic()
# Connect what the kernel lets through; the rest stay pending (queues full), which is the point.
while time.monotonic() < deadline and len(connected) < n and time.monotonic() - last_progress < 1.0:
    for fd, ev in poller.poll(200):
        last_progress = time.monotonic()
        poller.unregister(fd)
        s = by_fd[fd]
        if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
            connected.add(fd)
            if mode == "slowloris":
                try:
                    s.send(b"\x16\x03\x01\x02\x00")
                except OSError:
                    pass
print("connected=%d" % len(connected), flush=True)
time.sleep(max(0.0, deadline - time.monotonic()))
for s in socks:
    s.close()
