#!/usr/bin/env bash
# The in-band TLS handshake end to end with sdpcat on loopback: an
# ephemeral certificate and a pin, CA-signed certificates with IP and DNS
# names, mutual TLS, PSK; every failure cause with exit status 1 and the
# cause on stderr; the handshake through the impairment relay at 10% loss,
# and a relay that alters one handshake byte.  $1 is the build directory.
set -uo pipefail
bin="$1/bin/sdpcat"
relay="$1/bin/sdp-relay"
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
pass=0 fail=0
ok() { echo "ok: $*"; pass=$((pass + 1)); }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }
port() { python3 -c 'import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
command -v openssl >/dev/null || { echo "FAIL: the openssl command is needed (tools/deps.txt)"; exit 1; }

# Certificates: a CA, a server certificate for 127.0.0.1 and localhost, the
# same expired, one from another CA, a client certificate.
cd "$work"
mkcert() { # name cn san days ca
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" -out "$1.csr" -subj "/CN=$2" 2>/dev/null
  printf "subjectAltName=%s\n" "$3" > "$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$5.pem" -CAkey "$5.key" -CAcreateserial -out "$1.pem" -days "$4" \
    -extfile "$1.ext" 2>/dev/null
}
for ca in ca otherca; do
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $ca.key -out $ca.pem \
    -subj "/CN=$ca" -days 30 2>/dev/null
done
mkcert server localhost "IP:127.0.0.1,DNS:localhost" 30 ca
mkcert expired localhost "IP:127.0.0.1,DNS:localhost" -1 ca
mkcert foreign localhost "IP:127.0.0.1,DNS:localhost" 30 otherca
mkcert client client-1 "DNS:client-1" 30 ca
[ -s server.pem ] && [ -s expired.pem ] && [ -s client.pem ] || { echo "FAIL: could not make certificates"; exit 1; }
openssl rand -hex 32 > psk
openssl rand -hex 32 > otherpsk
cd - >/dev/null

# start_server NAME ARGS...: echo server in the background, its port in $p.
start_server() {
  local name=$1; shift
  p=$(port)
  "$bin" --listen "127.0.0.1:$p" --echo -v "$@" 2> "$work/$name.srv" &
  srv=$!
  for _ in $(seq 50); do grep -q "listening\|pin" "$work/$name.srv" 2>/dev/null && break; sleep 0.05; done
  sleep 0.2
}
stop_server() { kill "$srv" 2>/dev/null; wait "$srv" 2>/dev/null; }
# expect_ok NAME TARGET ARGS...: a 20 KB echo comes back intact.
expect_ok() {
  local name=$1 target=$2; shift 2
  head -c 20000 /dev/urandom > "$work/in"
  if timeout 20 "$bin" "$target" "$@" < "$work/in" > "$work/out" 2> "$work/$name.cli" && cmp -s "$work/in" "$work/out"; then
    ok "$name"
  else
    bad "$name: $(tail -2 "$work/$name.cli" | tr '\n' ' ')"
  fi
}
# expect_fail NAME PATTERN TARGET ARGS...: exit 1 and PATTERN on stderr.
expect_fail() {
  local name=$1 pat=$2 target=$3; shift 3
  echo hello | timeout 20 "$bin" "$target" "$@" > "$work/out" 2> "$work/$name.cli"
  local rc=$?
  if [ $rc -eq 1 ] && grep -qi "$pat" "$work/$name.cli" && [ ! -s "$work/out" ]; then
    ok "$name (exit 1: $(grep -i "$pat" "$work/$name.cli" | head -1))"
  else
    bad "$name: rc $rc, stderr: $(tail -2 "$work/$name.cli" | tr '\n' ' ')"
  fi
}

# 1. No files: ephemeral certificate, the client pins it.
start_server eph
pin=$(sed -n 's/.*--pin \([0-9a-f]\{64\}\).*/\1/p' "$work/eph.srv" | head -1)
[ ${#pin} -eq 64 ] && ok "listen without credentials prints a pin" || bad "no pin printed: $(cat "$work/eph.srv")"
expect_ok "pinned ephemeral certificate" "127.0.0.1:$p" --pin "$pin"
expect_ok "pinned, threaded client" "127.0.0.1:$p" --pin "$pin" --engines 2
expect_fail "wrong pin" "pinned" "127.0.0.1:$p" --pin "$(echo "$pin" | tr '0-9a-f' '1-9a-f0')"
expect_fail "self-signed without pin" "not trusted" "127.0.0.1:$p" --ca "$work/ca.pem"
echo x | "$bin" "127.0.0.1:$p" > /dev/null 2> "$work/nocred"; rc=$?
[ $rc -eq 2 ] && grep -q "authenticate" "$work/nocred" && ok "client without credentials: exit 2, says why" || bad "no credentials rc $rc"
echo x | timeout 20 "$bin" "127.0.0.1:$p" --insecure > /dev/null 2> "$work/insec"; rc=$?
[ $rc -eq 0 ] && grep -q "WARNING" "$work/insec" && ok "--insecure works and warns" || bad "--insecure rc $rc"
stop_server

# 2. CA-signed server certificate.
start_server ca --cert "$work/server.pem" --key "$work/server.key"
expect_ok "CA and IP SAN" "127.0.0.1:$p" --ca "$work/ca.pem"
expect_ok "CA and DNS name" "127.0.0.1:$p" --ca "$work/ca.pem" --name localhost
expect_fail "wrong name" "name" "127.0.0.1:$p" --ca "$work/ca.pem" --name db.example
expect_fail "wrong CA" "not trusted" "127.0.0.1:$p" --ca "$work/otherca.pem"
stop_server
start_server expired --cert "$work/expired.pem" --key "$work/expired.key"
expect_fail "expired certificate" "expired" "127.0.0.1:$p" --ca "$work/ca.pem"
stop_server
start_server foreign --cert "$work/foreign.pem" --key "$work/foreign.key"
expect_fail "certificate from another CA" "not trusted" "127.0.0.1:$p" --ca "$work/ca.pem"
stop_server

# 3. Mutual TLS.
start_server mtls --cert "$work/server.pem" --key "$work/server.key" --ca "$work/ca.pem" --verify-clients
expect_ok "mutual TLS" "127.0.0.1:$p" --ca "$work/ca.pem" --cert "$work/client.pem" --key "$work/client.key"
expect_fail "mutual TLS without a client certificate" "handshake\|certificate" "127.0.0.1:$p" --ca "$work/ca.pem"
stop_server

# 4. PSK.
start_server psk --psk "$work/psk" --psk-identity c1
expect_ok "PSK" "127.0.0.1:$p" --psk "$work/psk" --psk-identity c1
expect_fail "PSK mismatch" "pre-shared" "127.0.0.1:$p" --psk "$work/otherpsk" --psk-identity c1
stop_server

# 5. Through the impairment relay: 10% loss both ways, 20 fresh handshakes.
start_server lossy --cert "$work/server.pem" --key "$work/server.key"
lp=$(port)
"$relay" --listen "127.0.0.1:$lp" --to "127.0.0.1:$p" --drop 0.1 --seed 7 --duration 120 > "$work/relay.json" &
rl=$!
sleep 0.3
n_ok=0
for i in $(seq 20); do
  head -c 5000 /dev/urandom > "$work/in"
  timeout 20 "$bin" "127.0.0.1:$lp" --ca "$work/ca.pem" < "$work/in" > "$work/out" 2>/dev/null && cmp -s "$work/in" "$work/out" &&
    n_ok=$((n_ok + 1))
done
kill "$rl"; wait "$rl" 2>/dev/null
[ $n_ok -eq 20 ] && ok "20 handshakes and echoes through 10% loss" || bad "only $n_ok of 20 through 10% loss"
grep -q '"dropped":[1-9]' "$work/relay.json" && ok "the relay did drop packets" || bad "relay dropped nothing: $(cat "$work/relay.json")"

# 6. A relay that flips one byte of the server's first flight (the second
# handshake datagram with a payload: the client's ClientHello, then the
# server's answer, no RETRY in between): the handshake fails cleanly (TLS
# notices), nothing reaches the server's application.
lp=$(port)
"$relay" --listen "127.0.0.1:$lp" --to "127.0.0.1:$p" --alter-handshake 2 --seed 3 --duration 30 > "$work/alter.json" &
rl=$!
sleep 0.3
expect_fail "one altered handshake byte" "handshake\|certificate\|authentic" "127.0.0.1:$lp" --ca "$work/ca.pem" --timeout 8000
kill "$rl"; wait "$rl" 2>/dev/null
grep -q '"hs_altered":1' "$work/alter.json" && ok "the relay altered exactly one byte" || bad "relay: $(cat "$work/alter.json")"
stop_server

echo "handshake: $pass passed, $fail failed"
[ $fail -eq 0 ]
