#!/usr/bin/env python3
"""Hold N idle TLS connections open: bench/proxy_compare.sh's part (c).

idle_conns.py HOST PORT N DEADLINE_SEC
Opens N TLS connections one after the other (each handshake bounded by the time left), prints
"open K" once they are up (K may be < N if the deadline or an error stopped it, with the reason on
stderr), then holds them without sending a byte until stdin closes or the deadline passes.
"""
import select
import socket
import ssl
import sys
import time


def main():
    host, port, n, limit = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    if not 0 < n <= 20000 or not 0 < limit <= 600:
        sys.exit("N in 1..20000, DEADLINE_SEC in 1..600")
    deadline = time.monotonic() + limit
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    conns = []
    try:
        for _ in range(n):
            left = deadline - time.monotonic()
            if left <= 0:
                print("deadline reached while opening", file=sys.stderr)
                break
            raw = socket.create_connection((host, port), timeout=min(left, 5))
            tls = ctx.wrap_socket(raw, server_hostname="localhost")
            conns.append(tls)
    except OSError as e:
        print("open stopped: %s" % e, file=sys.stderr)
    print("open %d" % len(conns), flush=True)
    # Hold until the caller closes our stdin (or the deadline).
    select.select([sys.stdin], [], [], max(0.0, deadline - time.monotonic()))
    for c in conns:
        c.close()


if __name__ == "__main__":
    main()
