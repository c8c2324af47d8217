#!/usr/bin/env bash
# Sums several bench/compare.sh runs up: for each row (nodes, TLS, mode, concurrency) and each
# peer other than nginx, the server CPU per handshake over nginx's in the same run, as the mean
# of the runs and their range (min–max), so the noise of the machine shows next to the ratio.
# Also each peer's Redis share (s / 1000 handshakes, mean) and its lookup split summed over the
# runs (node-local cache / Redis / miss).
#
#   bench/compare_ratios.sh ROWS.tsv [ROWS.tsv ...]     (files written by compare.sh --rows)
#
# Prints a Markdown table. Rows whose nginx or peer figure is missing are left out of the mean.
set -u
[ $# -ge 1 ] || { echo "usage: $0 ROWS.tsv [ROWS.tsv ...]" >&2; exit 1; }
for f in "$@"; do [ -r "$f" ] || { echo "cannot read $f" >&2; exit 1; }; done

awk -F'\t' '
    # Columns: 1 peer, 2 nodes, 3 tls, 4 mode, 5 conc, 10 server CPU, 14 Redis CPU, 15 split.
    FNR == 1 { run++ }
    { key = $2 "\t" $3 "\t" $4 "\t" $5 }
    $1 == "nginx" && $10 != "-" { ref[run, key] = $10 }
    $1 != "nginx" { cpu[run, $1, key] = $10; redis[run, $1, key] = $14; sp[run, $1, key] = $15
                    peers[$1] = 1; keys[key] = 1 }
    END {
        npeer = 0
        for (p in peers) plist[++npeer] = p
        # Fixed peer order: tlscache first, then the rest by name.
        for (i = 1; i <= npeer; i++) for (j = i + 1; j <= npeer; j++)
            if ((plist[j] == "tlscache") || (plist[i] != "tlscache" && plist[j] < plist[i])) { t = plist[i]; plist[i] = plist[j]; plist[j] = t }
        printf "| nodes | TLS | mode | C |"
        for (i = 1; i <= npeer; i++) printf " %s / nginx: mean (min–max) | %s Redis s/1000 hs | %s L1 / Redis / miss |", plist[i], plist[i], plist[i]
        printf "\n|---|---|---|---|"
        for (i = 1; i <= npeer; i++) printf "---|---|---|"
        printf "\n"
        n = 0
        for (k in keys) klist[++n] = k
        for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (order(klist[j]) < order(klist[i])) { t = klist[i]; klist[i] = klist[j]; klist[j] = t }
        for (i = 1; i <= n; i++) {
            k = klist[i]
            split(k, f, "\t")
            printf "| %s | %s | %s | %s |", f[1], f[2], f[3], f[4]
            for (q = 1; q <= npeer; q++) {
                p = plist[q]; sum = 0; cnt = 0; lo = ""; hi = ""; rs = 0; rc = 0; l1 = 0; l2 = 0; ms = 0; sc = 0
                for (r = 1; r <= run; r++) {
                    if (((r, p, k) in cpu) && cpu[r, p, k] != "-" && ((r, k) in ref) && ref[r, k] > 0) {
                        x = cpu[r, p, k] / ref[r, k]; sum += x; cnt++
                        if (lo == "" || x < lo) lo = x
                        if (hi == "" || x > hi) hi = x
                    }
                    if (((r, p, k) in redis) && redis[r, p, k] != "-") { rs += redis[r, p, k]; rc++ }
                    if (((r, p, k) in sp) && sp[r, p, k] ~ /^[0-9]+ \/ [0-9]+ \/ [0-9]+$/) {
                        split(sp[r, p, k], s3, " / "); l1 += s3[1]; l2 += s3[2]; ms += s3[3]; sc++
                    }
                }
                printf " %s |", cnt ? sprintf("%.2f (%.2f–%.2f)", sum / cnt, lo, hi) : "-"
                printf " %s |", rc ? sprintf("%.3f", rs / rc) : "-"
                printf " %s |", sc ? sprintf("%d / %d / %d", l1, l2, ms) : "-"
            }
            printf "\n"
        }
    }
    # Sort: nodes, then the issue table order of TLS and mode, then concurrency.
    function order(k,   f, m) {
        split(k, f, "\t")
        m = f[2] "/" f[3]
        return f[1] * 100000 + (m == "1.2/full" ? 1 : m == "1.2/id" ? 2 : m == "1.2/mix" ? 3 : m == "1.3/full" ? 4 : m == "1.3/id" ? 5 : m == "1.3/hrr" ? 6 : m == "1.2/ticket" ? 7 : m == "1.3/ticket" ? 8 : 9) * 1000 + f[4]
    }
' "$@"
