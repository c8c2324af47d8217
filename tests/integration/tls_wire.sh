#!/usr/bin/env bash
# What goes on the wire after the handshake (TLS 1.2, where record types are visible): the
# built-in responder's reply is one TLS record followed by close_notify, and a record that
# fails its MAC gets the fatal bad_record_mac alert before the close (RFC 5246 §7.2.2), not a
# bare TCP close.
. "$(dirname "$0")/../lib/common.sh"
. "$TLSC_ROOT/tests/lib/certs.sh"
. "$TLSC_ROOT/tests/lib/server.sh"
need redis-server openssl python3
trap cleanup EXIT
tlsc_tmpdir
make_test_pki "$TLSC_TMP/pki" || exit 1
start_redis || exit 1
PA=$(free_port)
start_node A "$PA" || exit 1
WIRE=$TLSC_ROOT/tests/lib/tls_wire.py

reply=$(python3 "$WIRE" "$PA" reply)
check "the reply is one TLS record, then close_notify ($reply)" [ "$reply" = "data_records=1 alerts=1" ]
bad=$(python3 "$WIRE" "$PA" badmac)
check "a record with a bad MAC gets the bad_record_mac alert ($bad)" grep -qi "BAD_RECORD_MAC" <<<"$bad"
check "the node still serves" sget "$PA" 1.2 a.example "" ""

finish
