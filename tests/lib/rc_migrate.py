#!/usr/bin/env python3
"""Holds a slot range of a Redis Cluster half-migrated, then completes the move (tests only).

    rc_migrate.py open SRC_PORT DST_PORT FIRST COUNT
        slots FIRST..FIRST+COUNT-1: IMPORTING on DST, MIGRATING on SRC (new keys there get ASK)
    rc_migrate.py close SRC_PORT DST_PORT FIRST COUNT OTHER_PORT...
        moves the range's keys SRC -> DST (MIGRATE), then SETSLOT NODE DST on DST, SRC and the others

What redis-cli --cluster reshard does per slot, but with a pause in the middle that a test
controls. Every command is pipelined per node; any error reply fails the run (exit 1).
"""
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from resp import encode, read_reply  # noqa: E402


class Node:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.f = self.sock.makefile("rb")
        self.port = port

    def run(self, cmds):
        """Sends the commands at once and returns their replies; an error reply is fatal."""
        self.sock.sendall(b"".join(encode([a if isinstance(a, bytes) else str(a).encode() for a in c]) for c in cmds))
        out = []
        for c in cmds:
            r = read_reply(self.f)
            if isinstance(r, dict):
                sys.exit("node %d: %s: %s" % (self.port, " ".join(map(str, c[:4])), r["error"]))
            out.append(r)
        return out


def main():
    op, src, dst, first, count = sys.argv[1], Node(int(sys.argv[2])), Node(int(sys.argv[3])), int(sys.argv[4]), int(sys.argv[5])
    slots = range(first, first + count)
    src_id, dst_id = src.run([["CLUSTER", "MYID"]])[0].decode(), dst.run([["CLUSTER", "MYID"]])[0].decode()
    if op == "open":
        dst.run([["CLUSTER", "SETSLOT", s, "IMPORTING", src_id] for s in slots])
        src.run([["CLUSTER", "SETSLOT", s, "MIGRATING", dst_id] for s in slots])
        return
    others = [Node(int(p)) for p in sys.argv[6:]]
    moved = 0
    for s, keys in zip(slots, src.run([["CLUSTER", "GETKEYSINSLOT", s, 1000] for s in slots])):
        if keys:
            src.run([["MIGRATE", "127.0.0.1", dst.port, "", 0, 5000, "KEYS"] + keys])
            moved += len(keys)
    for n in [dst, src] + others:
        n.run([["CLUSTER", "SETSLOT", s, "NODE", dst_id] for s in slots])
    print("moved %d keys of %d slots" % (moved, count))


main()
