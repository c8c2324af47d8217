# Redis Sentinel on loopback for tests: data nodes and three sentinels watching "mymaster".
# Source after common.sh (needs TLSC_TMP, track, wait_port, wait_for).
#
#   SN_PW           the data nodes' requirepass (and masterauth, and the sentinels' auth-pass)
#   SN_SENTINEL_PW  the sentinels' own requirepass (and sentinel-pass), or empty for none
#   SN_TLS_PKI=DIR  (a make_test_pki directory) everything TLS only: tls-port alone,
#                   tls-replication yes, DIR/node.pem shown; sn_cli / sn_scli verify DIR/ca.pem

# sn_data_node PORT [redis-server flags...]: a password-protected redis-server on 127.0.0.1.
sn_data_node() {
    local port=$1 listen=(--port "$1")
    shift
    [ -n "${SN_TLS_PKI:-}" ] && listen=(--port 0 --tls-port "$port" --tls-replication yes --tls-auth-clients no
        --tls-cert-file "$SN_TLS_PKI/node.pem" --tls-key-file "$SN_TLS_PKI/node.key" --tls-ca-cert-file "$SN_TLS_PKI/ca.pem")
    mkdir -p "$TLSC_TMP/redis-$port"
    redis-server --bind 127.0.0.1 "${listen[@]}" --save '' --appendonly no --requirepass "$SN_PW" --masterauth "$SN_PW" \
        --dir "$TLSC_TMP/redis-$port" --logfile "$TLSC_TMP/redis-$port/redis.log" --daemonize no "$@" &
    track $!
    wait_port "$port" 10
}

# sn_cli PORT ARGS...: redis-cli to a data node, with its password.
sn_cli() {
    local port=$1
    shift
    redis-cli ${SN_TLS_PKI:+--tls --cacert "$SN_TLS_PKI/ca.pem"} -p "$port" --pass "$SN_PW" --no-auth-warning "$@"
}

# sn_scli PORT ARGS...: redis-cli to a sentinel, with the sentinels' password if any.
sn_scli() {
    local port=$1
    shift
    redis-cli ${SN_TLS_PKI:+--tls --cacert "$SN_TLS_PKI/ca.pem"} -p "$port" ${SN_SENTINEL_PW:+--pass "$SN_SENTINEL_PW" --no-auth-warning} "$@"
}

# sn_start_sentinels MASTER_PORT: three redis-sentinels (1 s down-after) watching mymaster at
# 127.0.0.1:MASTER_PORT, their ports in SN_PORTS; waits (bounded) until each one knows one
# replica and the other two sentinels (needed for a quorum and a leader).
sn_start_sentinels() {
    local i port tls="" auth=""
    [ -n "${SN_TLS_PKI:-}" ] && tls="tls-cert-file $SN_TLS_PKI/node.pem
tls-key-file $SN_TLS_PKI/node.key
tls-ca-cert-file $SN_TLS_PKI/ca.pem
tls-auth-clients no
tls-replication yes"
    [ -n "${SN_SENTINEL_PW:-}" ] && auth="requirepass \"$SN_SENTINEL_PW\"
sentinel sentinel-pass \"$SN_SENTINEL_PW\""
    SN_PORTS=()
    for i in 1 2 3; do
        port=$(free_port)
        mkdir -p "$TLSC_TMP/sentinel-$port"
        cat >"$TLSC_TMP/sentinel-$port/sentinel.conf" <<CONF
bind 127.0.0.1
$([ -n "${SN_TLS_PKI:-}" ] && echo "port 0
tls-port $port" || echo "port $port")
$tls
$auth
daemonize no
dir $TLSC_TMP/sentinel-$port
logfile $TLSC_TMP/sentinel-$port/sentinel.log
sentinel monitor mymaster 127.0.0.1 $1 2
sentinel auth-pass mymaster "$SN_PW"
sentinel down-after-milliseconds mymaster 1000
sentinel failover-timeout mymaster 3000
sentinel parallel-syncs mymaster 1
CONF
        redis-sentinel "$TLSC_TMP/sentinel-$port/sentinel.conf" &
        track $!
        wait_port "$port" 10 || return 1
        SN_PORTS+=("$port")
    done
    wait_for 60 "the sentinels to know the replica and each other" sn_ready
}

sn_ready() {
    local p n
    for p in "${SN_PORTS[@]}"; do
        n=$(sn_scli "$p" SENTINEL master mymaster | awk 'p {print; p=0} /^num-other-sentinels$/ {p=1}')
        [ "$n" = 2 ] || { echo "sentinel $p sees $n other sentinels"; return 1; }
        n=$(sn_scli "$p" SENTINEL master mymaster | awk 'p {print; p=0} /^num-slaves$/ {p=1}')
        [ "$n" = 1 ] || { echo "sentinel $p sees $n replicas"; return 1; }
    done
}

# sn_start_deployment: a master (port SN_MASTER, process SN_MASTER_PID), its replica (SN_REPLICA)
# and three sentinels watching them (sn_start_sentinels), on free ports.
sn_start_deployment() {
    SN_MASTER=$(free_port)
    sn_data_node "$SN_MASTER" || return 1
    SN_MASTER_PID=$!
    SN_REPLICA=$(free_port)
    sn_data_node "$SN_REPLICA" --replicaof 127.0.0.1 "$SN_MASTER" || return 1
    sn_start_sentinels "$SN_MASTER"
}
