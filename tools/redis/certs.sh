#!/usr/bin/env bash
# A throw-away CA and a server certificate for 127.0.0.1 in $1 (ca.crt,
# redis.crt, redis.key), with P-256 keys: quick to make, unlike Redis's
# gen-test-certs.sh, whose Diffie-Hellman parameters take minutes.
set -euo pipefail
d="$1"
mkdir -p "$d"
ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
openssl req -x509 "${ec[@]}" -keyout "$d/ca.key" -out "$d/ca.crt" -days 2 -subj /CN=sdp-test-ca 2>/dev/null
openssl req "${ec[@]}" -keyout "$d/redis.key" -out "$d/redis.csr" -subj /CN=localhost 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > "$d/ext"
openssl x509 -req -in "$d/redis.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial -days 2 \
  -extfile "$d/ext" -out "$d/redis.crt" 2>/dev/null
