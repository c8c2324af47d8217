#!/usr/bin/env python3
"""Explains a bench run's misses by the servers' own counters, for the container cluster test.

misses_explained.py BENCH_JSON FIELDS BEFORE AFTER [--min-rate R]

FIELDS is the space-separated counter names; BEFORE and AFTER are what the workers' stats
hashes in Redis held before and after the run, one line per hash: "KEY v1 v2 ..." in FIELDS'
order (an empty value is 0). They are diffed hash by hash: a hash only in AFTER is a worker
that started since (counted from 0), one only in BEFORE has expired (a worker gone before the
run: ignored). FIELDS must include
handshakes_full, handshakes_resumed, lookups_miss, lookups_timeout, lookups_error,
lookups_skipped, l1_taken_elsewhere, records_bad, stores_timeout, stores_error and stores_skipped).

A miss under load is allowed when the server counted why: the lookup (or the TLS 1.3
confirmation) did not answer within --lookup-timeout, failed, or was skipped, and the
handshake went on in full (fail-open). A session is *lost* when Redis or the L1 said it was not
there (lookups_miss, l1_taken_elsewhere) or its record did not open (records_bad); that is
allowed only as often as a store of the run failed, timed out or was skipped (a session whose
store never landed is nowhere to be found, and its handshake had gone on without it: fail-open).
Verdict, with one line saying why:
  0  every offered session resumed or its miss is a counted timeout/error/skip; every lost one
     matched by a counted failed store;
     resumed / offered >= --min-rate (default 0.9: fail-open, not a speed bound)
  1  a session was lost, a miss is unexplained, or the rate is below the bound
  3  the workers have not yet published every handshake of the run (poll again)
  2  unusable input
"""
import json
import sys


def parse(block, n):
    """ "KEY v1 v2 ..." lines -> {KEY: [v1, v2, ...]} (missing values are 0)."""
    out = {}
    for line in block.splitlines():
        parts = line.split()
        if not parts:
            continue
        vals = [int(v) for v in parts[1:1 + n]]
        out[parts[0]] = vals + [0] * (n - len(vals))
    return out


def main():
    args = sys.argv[1:]
    min_rate = 0.9
    if "--min-rate" in args:
        i = args.index("--min-rate")
        min_rate = float(args[i + 1])
        del args[i:i + 2]
    try:
        path, fields, before, after = args
        names = fields.split()
        b, a = parse(before, len(names)), parse(after, len(names))
        d = {k: 0 for k in names}
        for key, vals in a.items():
            old = b.get(key, [0] * len(names))
            for i, k in enumerate(names):
                d[k] += vals[i] - old[i]
        with open(path) as f:
            j = json.load(f)
        offered, resumed = int(j["resumption"]["offered"]), int(j["resumption"]["resumed"])
        connections = int(j["connections"])
        errors = sum(int(v) for v in j.get("errors", {}).values() if isinstance(v, (int, float)))
    except Exception as e:  # noqa: BLE001 - any malformed input is a reason to stop
        print(f"unusable input: {e!r}")
        return 2
    split = " ".join(f"{k}={v}" for k, v in d.items())
    if d["handshakes_full"] + d["handshakes_resumed"] < connections - errors:
        print(f"the workers published {d['handshakes_full'] + d['handshakes_resumed']} of {connections - errors} handshakes: {split}")
        return 3
    missed = offered - resumed
    explained = d["lookups_timeout"] + d["lookups_error"] + d["lookups_skipped"]
    lost = d["lookups_miss"] + d["l1_taken_elsewhere"] + d["records_bad"]
    unstored = d["stores_timeout"] + d["stores_error"] + d["stores_skipped"]
    rate = resumed / offered if offered else 0.0
    line = (f"{resumed}/{offered} resumed ({rate:.2%}); {missed} missed, {explained} of them counted as lookup "
            f"timeouts/errors/skips, {lost} lost ({unstored} stores failed, timed out or skipped); servers: {split}")
    bad = []
    if lost > unstored:
        bad.append(f"{lost - unstored} sessions lost without a failed store")
    if missed > explained + min(lost, unstored):
        bad.append(f"{missed - explained - min(lost, unstored)} misses the servers do not explain")
    if offered == 0 or rate < min_rate:
        bad.append(f"rate {rate:.4f} < {min_rate}")
    print(line + ("" if not bad else "  -- " + "; ".join(bad)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
