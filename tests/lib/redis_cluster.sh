# A real Redis Cluster on loopback for tests and bench scripts: 3 masters + 3 replicas.
# Source after common.sh (needs TLSC_TMP, track, wait_port, wait_for).
#
# RC_TLS_PKI=DIR (a make_test_pki directory) makes it a TLS-only cluster: every node listens
# with tls-port alone, speaks TLS on the cluster bus and for replication (tls-cluster yes), and
# shows DIR/node.pem; rc_cli (every helper's redis-cli) then verifies it against DIR/ca.pem.

# rc_cli ARGS...: redis-cli, over TLS for a TLS cluster.
rc_cli() { redis-cli ${RC_TLS_PKI:+--tls --cacert "$RC_TLS_PKI/ca.pem"} "$@"; }

# rc_free_ports N: N distinct ports P in 20000..49999 with P and its cluster bus port P+10000 both free.
rc_free_ports() {
    python3 - "$1" <<'PY'
import random, socket, sys
want, got = int(sys.argv[1]), []
for _ in range(2000):
    if len(got) == want:
        break
    p = random.randrange(20000, 50000)
    if p in got or p + 10000 in got or p - 10000 in got:
        continue
    socks = []
    try:
        for q in (p, p + 10000):
            s = socket.socket()
            s.bind(("127.0.0.1", q))
            socks.append(s)
    except OSError:
        continue
    finally:
        for s in socks:
            s.close()
    got.append(p)
print(" ".join(map(str, got)))
PY
}

# rc_start_node PORT: starts one cluster-enabled redis-server, no persistence; sets RC_PID_<PORT>.
rc_start_node() {
    local p=$1 listen=(--port "$p")
    [ -n "${RC_TLS_PKI:-}" ] && listen=(--port 0 --tls-port "$p" --tls-cluster yes --tls-replication yes --tls-auth-clients no
        --tls-cert-file "$RC_TLS_PKI/node.pem" --tls-key-file "$RC_TLS_PKI/node.key" --tls-ca-cert-file "$RC_TLS_PKI/ca.pem")
    mkdir -p "$TLSC_TMP/rc-$p"
    redis-server --bind 127.0.0.1 "${listen[@]}" --cluster-enabled yes --cluster-config-file "$TLSC_TMP/rc-$p/nodes.conf" \
        --cluster-node-timeout "${RC_NODE_TIMEOUT:-1000}" --save '' --appendonly no --dir "$TLSC_TMP/rc-$p" \
        --logfile "$TLSC_TMP/rc-$p/redis.log" --daemonize no &
    track $!
    printf -v "RC_PID_$p" '%s' $!
}

# rc_state_ok PORT: the node says cluster_state:ok (prints what it says, for wait_for).
rc_state_ok() {
    local s
    s=$(rc_cli -p "$1" cluster info 2>&1 | tr -d '\r' | grep '^cluster_state:')
    echo "node $1: ${s:-no answer}"
    [ "$s" = cluster_state:ok ]
}

# rc_masters [PORT]: the ports of the masters that hold slots and are not failed, as PORT sees them.
rc_masters() {
    rc_cli -p "${1:-${RC_PORTS[0]}}" cluster nodes | tr -d '\r' |
        awk '$3 ~ /master/ && $3 !~ /fail/ && NF >= 9 {split($2, a, "[:@]"); print a[2]}' | sort -n
}

# rc_id PORT: the node's cluster ID.
rc_id() { rc_cli -p "$1" cluster myid | tr -d '\r'; }

# start_redis_cluster: six nodes on free ports (RC_PORTS), joined with redis-cli --cluster create
# --cluster-replicas 1, then waits (bounded) until every node says cluster_state:ok and agrees
# there are three masters.
start_redis_cluster() {
    local p addrs=()
    read -r -a RC_PORTS <<<"$(rc_free_ports 6)"
    [ "${#RC_PORTS[@]}" = 6 ] || { echo "no six free port pairs" >&2; return 1; }
    for p in "${RC_PORTS[@]}"; do
        rc_start_node "$p"
        addrs+=("127.0.0.1:$p")
    done
    for p in "${RC_PORTS[@]}"; do
        wait_port "$p" 20 || return 1
    done
    local t0=$SECONDS
    timeout 60 redis-cli ${RC_TLS_PKI:+--tls --cacert "$RC_TLS_PKI/ca.pem"} --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes >"$TLSC_TMP/rc-create.log" 2>&1 ||
        { tail -20 "$TLSC_TMP/rc-create.log" >&2; return 1; }
    echo "redis-cli --cluster create took $((SECONDS - t0)) s"
    for p in "${RC_PORTS[@]}"; do
        wait_for 30 "cluster_state:ok on $p" rc_state_ok "$p" || return 1
    done
    wait_for 30 "three masters seen by every node" rc_three_masters_everywhere
}

rc_three_masters_everywhere() {
    local p n
    for p in "${RC_PORTS[@]}"; do
        n=$(rc_masters "$p" | wc -l)
        echo "node $p sees $n masters"
        [ "$n" = 3 ] || return 1
    done
}

# rc_replicas_online: every master has a replica attached and synced (state=online). Right after
# --cluster create the replicas still run their first full sync, and until then WAIT 1 answers 0.
rc_replicas_online() {
    local p
    for p in $(rc_masters); do
        redis-cli -p "$p" info replication | tr -d '\r' | grep -q '^slave0:.*state=online' ||
            { echo "master $p: no replica online"; return 1; }
    done
}

# rc_sessions PORT: how many session keys the node holds (SCAN, never KEYS).
rc_sessions() { rc_cli -p "$1" --scan --pattern 'tlscache:sess:*' | wc -l; }

# rc_bench NAME [flags...]: one bounded tlscache-bench run against the two server nodes on $PA and
# $PB, round robin; its JSON in $OUT/NAME.json (BENCH, OUT, PA and PB are the test's).
rc_bench() {
    local name=$1
    shift
    timeout 120 "$BENCH" --target "127.0.0.1:$PA" --target "127.0.0.1:$PB" --balance rr --quiet --json "$OUT/$name.json" \
        "$@" >"$OUT/$name.txt" 2>"$OUT/$name.err"
}

# rc_json NAME FILTER: a jq filter over the run's JSON.
rc_json() { jq -r "$2" "$OUT/$1.json"; }

# rc_all_resumed NAME: every offered session resumed, across nodes too, and no error.
rc_all_resumed() {
    local v
    v=$(rc_json "$1" '[.resumption.offered > 0, .resumption.resumed == .resumption.offered, .errors.total == 0,
                 ([.matrix[] | select(.issuer != .target) | .offered] | add > 0)] | all')
    echo "$1: offered $(rc_json "$1" .resumption.offered) resumed $(rc_json "$1" .resumption.resumed) errors $(rc_json "$1" .errors.total)"
    [ "$v" = true ]
}
