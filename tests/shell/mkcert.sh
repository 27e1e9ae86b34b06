#!/usr/bin/env bash
# tools/sdp-mkcert.sh: the CA and leaves it makes verify with openssl, carry
# the SANs asked for, an expired leaf is expired, and the printed pin is the
# SHA-256 of the leaf's DER.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
mk=$top/tools/sdp-mkcert.sh
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "mkcert: $*"; exit 1; }

pin=$(bash "$mk" "$dir" sdp.test 127.0.0.1 ::1)
[[ $pin =~ ^[0-9a-f]{64}$ ]] || fail "pin '$pin' is not 64 hex digits"
want=$(openssl x509 -in "$dir/server.pem" -noout -fingerprint -sha256 | cut -d= -f2 | tr -d : | tr A-F a-f)
[ "$pin" = "$want" ] || fail "pin $pin, openssl says $want"
openssl verify -CAfile "$dir/ca.pem" "$dir/server.pem" >/dev/null || fail "leaf does not verify"
openssl verify -CAfile "$dir/ca.pem" -verify_hostname sdp.test "$dir/server.pem" >/dev/null || fail "DNS SAN"
openssl verify -CAfile "$dir/ca.pem" -verify_ip ::1 "$dir/server.pem" >/dev/null || fail "IPv6 SAN"
openssl verify -CAfile "$dir/ca.pem" -verify_ip 127.0.0.1 "$dir/server.pem" >/dev/null || fail "IPv4 SAN"
if openssl verify -CAfile "$dir/ca.pem" -verify_hostname other.test "$dir/server.pem" >/dev/null 2>&1; then
  fail "a name not asked for verifies"
fi
subject=$(openssl x509 -in "$dir/server.pem" -noout -subject)
[[ $subject == *"CN = sdp.test"* ]] || fail "subject '$subject'"

# The CA is reused: a second leaf chains to the same one.
ca_before=$(openssl x509 -in "$dir/ca.pem" -noout -fingerprint -sha256)
bash "$mk" -n client -c node-7 "$dir" >/dev/null
[ "$ca_before" = "$(openssl x509 -in "$dir/ca.pem" -noout -fingerprint -sha256)" ] || fail "CA was remade"
openssl verify -CAfile "$dir/ca.pem" "$dir/client.pem" >/dev/null || fail "client leaf"
[[ $(openssl x509 -in "$dir/client.pem" -noout -subject) == *"CN = node-7"* ]] || fail "client CN"

bash "$mk" -n old -d -2 "$dir" sdp.test >/dev/null
out=$(openssl verify -CAfile "$dir/ca.pem" "$dir/old.pem" 2>&1 || true)
[[ $out == *"expired"* ]] || fail "old leaf: $out"

if bash "$mk" "$dir" 'not a name' >/dev/null 2>&1; then fail "a bad SAN was accepted"; fi
[ "$(stat -c %a "$dir/server.key")" = 600 ] || fail "key is not private"
echo "mkcert: ok"
