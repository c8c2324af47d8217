#!/usr/bin/env bash
# What goes on the wire after the handshake (TLS 1.2, where record types are visible): the
# built-in responder's reply is one TLS record followed by close_notify, and a record that
# fails its MAC gets the fatal bad_record_mac alert before the close (RFC 5246 §7.2.2), not a
# bare TCP close. The ClientHello pre-parser's alerts follow RFC 8446 §6.2: a length that does
# not fit (decode_error, 50) is told apart from a value that parses but is unusable
# (illegal_parameter, 47); each case below is one hand-built ClientHello (tls_wire.py hello).
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
# The responder scans the request head as it comes, without keeping it: an end of head split
# over two records, a bare "\n\n", and a head past 8 KiB (431).
st=$(python3 "$WIRE" "$PA" status 'GET / HTTP/1.1\r\nHost: a.example\r\n\r' '\n')
check "a request head whose end is split over two records is answered ($st)" [ "$st" = "HTTP/1.1 200 OK" ]
st=$(python3 "$WIRE" "$PA" status 'GET /\n' '\n')
check "a head ended by a bare blank line is answered ($st)" [ "$st" = "HTTP/1.1 200 OK" ]
st=$(python3 "$WIRE" "$PA" status 'GET / HTTP/1.1\r\n\n\r\n')
check "a head with CR LF LF ends at LF LF ($st)" [ "$st" = "HTTP/1.1 200 OK" ]
st=$(python3 "$WIRE" "$PA" status big:9000)
check "a head past 8 KiB without its end gets 431 ($st)" [ "$st" = "HTTP/1.1 431 Request Header Fields Too Large" ]
st=$(python3 "$WIRE" "$PA" status 'GET / HTTP/1.1\r\nHost: a\r\n' eof)
check "an unfinished head gets no reply ($st)" [ "$st" = "status=none" ]
bad=$(python3 "$WIRE" "$PA" badmac)
check "a record with a bad MAC gets the bad_record_mac alert ($bad)" grep -qi "BAD_RECORD_MAC" <<<"$bad"

# The builder itself: an unbroken hello gets a ServerHello (a handshake record, 22).
ok=$(python3 "$WIRE" "$PA" hello ok)
check "a well-formed hand-built ClientHello is answered by a handshake record ($ok)" [ "$ok" = "alert=none first=22" ]
expect_alert() { # CASE CODE WHY
    local got
    got=$(python3 "$WIRE" "$PA" hello "$1")
    check "ClientHello $1 ($3) gets alert $2 ($got)" [ "$got" = "alert=$2" ]
}
expect_alert sni_list_past 50 "server_name list length past its extension"
expect_alert sni_list_short 50 "server_name list length short of its extension"
expect_alert sni_name_past 50 "host name length past its list"
expect_alert sni_name_empty 50 "empty HostName<1..2^16-1>"
expect_alert versions_odd 50 "odd supported_versions length"
expect_alert versions_past 50 "supported_versions length past its extension"
expect_alert psk_identity_past 50 "PSK identity length past its list"
expect_alert padding_past 50 "padding extension past the message"
expect_alert sni_bad_byte 47 "well-formed name with a space"
expect_alert sni_too_long 47 "well-formed 300-byte name"
# The record layer: a record too long is record_overflow (22), a first record that is not a
# handshake is unexpected_message (10); neither is the handshake's decode_error.
expect_alert record_overflow 22 "a record longer than 2^14 + 2048"
expect_alert record_not_handshake 10 "application data before the handshake"
check "the node still serves" sget "$PA" 1.2 a.example "" ""

finish
