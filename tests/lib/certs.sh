# A throwaway PKI for tests. Source it, then call `make_test_pki DIR`:
#
#   ca.pem / ca.key              the CA (ECDSA P-256)
#   a.pem / a.key                SAN a.example, www.a.example (chain: leaf + CA)
#   b.pem / b.key                SAN b.example (RSA 2048, for variety)
#   wild.pem / wild.key          SAN *.w.example
#   default.pem / default.key    CN localhost, SAN localhost, 127.0.0.1
#   node.pem / node.key          SAN localhost, 127.0.0.1, serverAuth and clientAuth: a TLS Redis,
#                                sentinel or cluster node (they show it both ways: cluster bus, replication)
#   p12.pfx + p12.pass           PKCS#12 of a cert for p12.example (p12.pem), passphrase in p12.pass
#   dhparam.pem                  ffdhe2048 DH parameters
#
# and broken files for bad-input tests:
#
#   garbage.pem                  not a certificate
#   mismatch.key                 a valid key that matches none of the certificates
#   bad-dhparam.pem              a DH PARAMETERS block whose body is not DER
#   wrong.pass                   a passphrase that does not open p12.pfx
#   notdh.pem                    valid PEM parameters, but EC rather than DH
#
# Everything is ECDSA P-256 except b (RSA) so the whole set takes well under a second.

# make_test_pki DIR: writes the files above into DIR (created if missing). Returns non-zero
# and prints openssl's output if any step fails.
make_test_pki() {
    local dir=$1 log
    mkdir -p "$dir" || return 1
    log=$(cd "$dir" && tlsc__make_pki 2>&1) || {
        echo "make_test_pki: failed in $dir:" >&2
        echo "$log" >&2
        return 1
    }
}

# tlsc__leaf NAME SUBJECT SAN [EKU]: signs NAME.key (already there) into NAME.pem with the CA and
# appends the CA so NAME.pem is a full chain, as a server would be configured. EKU: serverAuth.
tlsc__leaf() {
    local name=$1 subject=$2 san=$3 eku=${4:-serverAuth}
    openssl req -new -key "$name.key" -subj "$subject" -out "$name.csr" &&
        printf 'subjectAltName=%s\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=%s\n' \
            "$san" "$eku" >"$name.ext" &&
        openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 -sha256 \
            -extfile "$name.ext" -out "$name.leaf" &&
        cat "$name.leaf" ca.pem >"$name.pem" &&
        rm -f "$name.csr" "$name.ext" "$name.leaf"
}

tlsc__ec_key() {
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"
}

tlsc__make_pki() {
    set -e
    tlsc__ec_key ca.key
    openssl req -x509 -new -key ca.key -subj "/CN=tlscache test CA" -days 30 -sha256 \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" -out ca.pem

    tlsc__ec_key a.key
    tlsc__leaf a "/CN=a.example" "DNS:a.example,DNS:www.a.example"
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out b.key
    tlsc__leaf b "/CN=b.example" "DNS:b.example"
    tlsc__ec_key wild.key
    tlsc__leaf wild "/CN=*.w.example" "DNS:*.w.example"
    tlsc__ec_key default.key
    tlsc__leaf default "/CN=localhost" "DNS:localhost,IP:127.0.0.1"
    tlsc__ec_key node.key
    tlsc__leaf node "/CN=localhost" "DNS:localhost,IP:127.0.0.1" serverAuth,clientAuth

    tlsc__ec_key p12.key
    tlsc__leaf p12 "/CN=p12.example" "DNS:p12.example"
    printf 'correct horse battery staple\n' >p12.pass
    chmod 600 p12.pass # a passphrase file others can read is refused
    openssl pkcs12 -export -inkey p12.key -in p12.pem -certfile ca.pem -name p12 \
        -passout file:p12.pass -out p12.pfx
    rm -f p12.key

    openssl genpkey -genparam -algorithm DH -pkeyopt group:ffdhe2048 -out dhparam.pem

    # The broken files.
    printf -- '-----BEGIN CERTIFICATE-----\nthis is not base64 DER at all\n-----END CERTIFICATE-----\n' >garbage.pem
    tlsc__ec_key mismatch.key
    printf -- '-----BEGIN DH PARAMETERS-----\nMIIBCAKCAQEA//////////+t+FRYortKmq/cViAnPTzx2LnFg84tNpWp4TZBFGQz\n-----END DH PARAMETERS-----\n' >bad-dhparam.pem
    printf 'not the passphrase\n' >wrong.pass
    chmod 600 wrong.pass
    openssl genpkey -genparam -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out notdh.pem
    rm -f ca.srl
}
