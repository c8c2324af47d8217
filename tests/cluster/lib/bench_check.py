#!/usr/bin/env python3
"""Judges one tlscache-bench --json file for the container cluster test.

bench_check.py FILE [--min-rate R] [--min-nodes N] [--max-errors E] [--min-resumed K]

--min-rate   resumed / offered must be at least R (default: no bound)
--min-nodes  at least N server nodes (from the servers' own stats in Redis, read by the
             bench with --redis) must have resumed handshakes during the run
--max-errors at most E connections may have failed (connect, timeout, handshake, verify, read)
--min-resumed at least K resumed handshakes
--min-replies at least M HTTP replies read to their end (--request: the backend answered)
--idle-node  NODE must have made no handshake during the run (a node that is down)
Prints one summary line; exits 1 when a bound is not met, 2 when the file is unusable.
"""
import argparse
import json
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--min-rate", type=float)
    ap.add_argument("--min-nodes", type=int)
    ap.add_argument("--max-errors", type=int)
    ap.add_argument("--min-resumed", type=int)
    ap.add_argument("--idle-node")
    ap.add_argument("--min-replies", type=int)
    a = ap.parse_args()
    try:
        with open(a.file) as f:
            j = json.load(f)
        cfg = j.get("config", {})
        res = j["resumption"]
        offered, resumed = int(res["offered"]), int(res["resumed"])
        errors = {k: int(v) for k, v in j.get("errors", {}).items() if isinstance(v, (int, float))}
        nerr = sum(errors.values())
        replies = j.get("http_replies")
        nodes, busy = {}, {}
        server = j.get("server") or {}
        for n in server.get("nodes", []) or []:
            nodes[n["node"]] = int(n.get("handshakes_resumed", 0))
            busy[n["node"]] = nodes[n["node"]] + int(n.get("handshakes_full", 0))
    except Exception as e:  # noqa: BLE001 - any malformed file is a failure with a reason
        print(f"unusable bench JSON {a.file}: {e!r}")
        return 2

    rate = resumed / offered if offered else 0.0
    resumed_nodes = sorted(k for k, v in nodes.items() if v > 0)
    line = (f"tls {cfg.get('tls')} mode {cfg.get('mode')}: {j.get('connections')} connections, "
            f"{resumed}/{offered} offered sessions resumed ({rate:.2%}), {replies} HTTP replies, errors {nerr} {errors if nerr else ''}, "
            f"resumptions by node {nodes if nodes else '(no server view: ' + str(server.get('error')) + ')'}")
    bad = []
    if a.min_rate is not None and (offered == 0 or rate < a.min_rate):
        bad.append(f"rate {rate:.4f} < {a.min_rate}")
    if a.min_nodes is not None and len(resumed_nodes) < a.min_nodes:
        bad.append(f"resumptions on {len(resumed_nodes)} nodes < {a.min_nodes}")
    if a.max_errors is not None and nerr > a.max_errors:
        bad.append(f"{nerr} errors > {a.max_errors}")
    if a.min_resumed is not None and resumed < a.min_resumed:
        bad.append(f"{resumed} resumed < {a.min_resumed}")
    if a.min_replies is not None and (replies is None or int(replies) < a.min_replies):
        bad.append(f"{replies} HTTP replies < {a.min_replies}")
    if a.idle_node is not None and (not nodes or busy.get(a.idle_node, 0) != 0):
        bad.append(f"{a.idle_node} made {busy.get(a.idle_node, 0) if nodes else 'unknown'} handshakes while down")
    print(line + ("" if not bad else "  -- " + "; ".join(bad)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
