#!/usr/bin/env bash
# Redis over SDP (tools/redis/): builds the patched Debian Redis once (cached
# in $1/redis), starts it with TCP, TLS and SDP listeners, runs one command
# script through redis-cli over TCP and over SDP and demands identical output,
# then checks what only SDP has: refused push families, the real peer address
# in CLIENT LIST, idle peers reaped, BLPOP held past the RPC timeout.  Ends
# with a few of Redis's own Tcl unit tests over TCP.  $1: the build directory.
set -uo pipefail
b=$(cd "$1" && pwd)
repo=$(cd "$(dirname "$0")/../.." && pwd)
if grep -q "^SDP_SANITIZE:BOOL=ON" "$b/CMakeCache.txt" 2>/dev/null; then
  # The patched Redis links the release libsdp; the sanitizer build covers
  # libsdp itself (test_api_inline holds the contract Redis relies on).
  echo "redis: SKIP: runs in the release build only"
  exit 0
fi
for cmd in tclsh openssl python3 dpkg-source; do
  command -v "$cmd" >/dev/null || { echo "FAIL: $cmd missing (tools/deps.txt)"; exit 1; }
done
"$repo/tools/redis/build.sh" "$b" || { echo "FAIL: building the patched Redis"; exit 1; }
bin="$b/redis/bin"
tree="$b/redis/tree"
work=$(mktemp -d)
srv=""
trap '[ -n "$srv" ] && kill "$srv" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
pass=0 fail=0
ok() { echo "ok: $*"; pass=$((pass + 1)); }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

openssl rand -hex 32 > "$work/secret"
tls="$work/tls"
"$repo/tools/redis/certs.sh" "$tls" || { echo "FAIL: test certificates"; exit 1; }
tcp=$(port) tlsp=$(port) sdpp=$(port)
"$bin/redis-server" --port "$tcp" --bind 127.0.0.1 --tls-port "$tlsp" --tls-cert-file "$tls/redis.crt" \
  --tls-key-file "$tls/redis.key" --tls-ca-cert-file "$tls/ca.crt" --tls-auth-clients no \
  --sdp-port "$sdpp" --sdp-secret-file "$work/secret" --sdp-idle-timeout 2 \
  --save '' --appendonly no --dir "$work" --logfile "$work/redis.log" &
srv=$!
cli_tcp=("$bin/redis-cli" -p "$tcp")
cli_sdp=("$bin/redis-cli" -p "$sdpp" --sdp --sdp-secret-file "$work/secret")
for _ in $(seq 50); do "${cli_tcp[@]}" ping >/dev/null 2>&1 && break; sleep 0.1; done
[ "$(timeout 10 "${cli_sdp[@]}" ping)" = PONG ] && ok "PING over SDP" || { bad "PING over SDP"; cat "$work/redis.log"; exit 1; }
[ "$(timeout 10 "$bin/redis-cli" -p "$tlsp" --tls --cacert "$tls/ca.crt" ping)" = PONG ] && ok "PING over TLS" || bad "PING over TLS"

# The command script: each line one redis-cli call (one request over SDP).
cat > "$work/script" <<'EOF'
SET s hello
GET s
APPEND s -world
GET s
STRLEN s
GETRANGE s 0 4
MSET a 1 b 2
MGET a b nokey
SETNX a 9
INCR n
INCRBY n 41
DECR n
INCRBYFLOAT f 1.5
INCR s
RPUSH l a b c
LPUSH l z
LRANGE l 0 -1
LPOP l
LLEN l
HSET h f1 v1 f2 v2
HGET h f1
HINCRBY h n 5
HDEL h f1
HGETALL h
SELECT 1
DBSIZE
NOSUCHCOMMAND x
EOF
# MULTI/EXEC and a pipeline of 100 commands are one request each over SDP.
printf 'MULTI\nINCR t\nSET u x\nGET u\nEXEC\n' > "$work/multi"
python3 - "$work/pipe" <<'PY'
import sys
out = b""
for i in range(100):
    a = [b"RPUSH", b"p", b"%d" % i] if i % 2 else [b"INCR", b"pc"]
    out += b"*%d\r\n" % len(a) + b"".join(b"$%d\r\n%s\r\n" % (len(x), x) for x in a)
open(sys.argv[1], "wb").write(out)
PY
head -c 12582912 /dev/urandom | base64 -w0 | head -c 16777216 > "$work/big" # 16 MiB
run_script() { # $1 tcp|sdp
  local -n cli="cli_$1"
  "${cli_tcp[@]}" flushall >/dev/null
  while read -r line; do
    # shellcheck disable=SC2086
    timeout 10 "${cli[@]}" $line 2>&1
  done < "$work/script"
  timeout 10 "${cli[@]}" < "$work/multi" 2>&1
  timeout 20 "${cli[@]}" --pipe < "$work/pipe" 2>&1
  timeout 10 "${cli[@]}" lrange p 0 4
  timeout 10 "${cli[@]}" get pc
  timeout 60 "${cli[@]}" -x set big < "$work/big" 2>&1
  timeout 10 "${cli[@]}" strlen big
  timeout 60 "${cli[@]}" get big > "$work/got.$1"
  head -c 16777216 "$work/got.$1" | cmp -s - "$work/big" && echo "big value intact" || echo "big value: $(wc -c < "$work/got.$1") bytes"
  local t0=$(date +%s%N)
  timeout 10 "${cli[@]}" blpop nolist 1.5 # longer than the 1 s RPC timeout: BUSY keeps it alive
  echo "blpop timed out after >= 1.4 s: $(( ($(date +%s%N) - t0) >= 1400000000 ))"
  (sleep 1.2; "${cli_tcp[@]}" lpush q served >/dev/null) &
  local pusher=$!
  timeout 10 "${cli[@]}" blpop q 0
  wait "$pusher"
  "${cli_tcp[@]}" acl setuser alice on '>pw' '~*' '+@all' >/dev/null
  timeout 10 "${cli[@]}" --user alice --pass pw --no-auth-warning acl whoami 2>&1
  timeout 10 "${cli[@]}" --user alice --pass wrong --no-auth-warning ping 2>&1
  printf 'AUTH alice pw\nACL WHOAMI\n' | timeout 10 "${cli[@]}" 2>&1
}
run_script tcp > "$work/out.tcp"
run_script sdp > "$work/out.sdp"
if cmp -s "$work/out.tcp" "$work/out.sdp" && [ "$(wc -l < "$work/out.tcp")" -ge 50 ]; then
  ok "the command script gives identical output over TCP and SDP ($(wc -l < "$work/out.tcp") lines)"
else
  bad "TCP and SDP outputs differ"; diff "$work/out.tcp" "$work/out.sdp" | head -20
fi
expect() { grep -qx -- "$1" "$work/out.sdp" && ok "$2" || bad "$2 (no line '$1')"; }
expect "hello-world" "strings"
expect "41" "integers"
expect "z" "lists"
expect "errors: 0, replies: 100" "pipeline of 100 commands"
expect "big value intact" "16 MiB value"
expect "blpop timed out after >= 1.4 s: 1" "BLPOP that times out, held past the RPC timeout"
expect "served" "BLPOP served by another client's LPUSH"
expect "alice" "AUTH"
grep -q "^WRONGPASS\|^AUTH failed: WRONGPASS" "$work/out.sdp" && ok "AUTH with a wrong password refused" || bad "wrong password"

# Only over SDP: families that push unrequested data are refused with -ERR.
for cmd in "subscribe ch" "psubscribe c*" "ssubscribe ch" "monitor" "client tracking on"; do
  out=$(timeout 10 "${cli_sdp[@]}" $cmd 2>&1 | head -1)
  case "$out" in *"not supported over SDP"*) ok "$cmd refused";; *) bad "$cmd: '$out'";; esac
done
out=$(printf 'MULTI\nSUBSCRIBE ch\nEXEC\n' | timeout 10 "${cli_sdp[@]}" 2>&1)
case "$out" in *"not supported over SDP"*EXECABORT*) ok "SUBSCRIBE inside MULTI is refused and aborts the transaction";;
  *) bad "MULTI/SUBSCRIBE: '$out'";; esac

# The real peer address, and a peer that disappears is reaped.
info=$(timeout 10 "${cli_sdp[@]}" client info)
case "$info" in *"addr=127.0.0.1:"*"laddr=127.0.0.1:$sdpp"*) ok "CLIENT INFO shows the peer's address";;
  *) bad "client info: $info";; esac
timeout 10 "${cli_sdp[@]}" client setname ghost >/dev/null
"${cli_tcp[@]}" client list | grep -q "name=ghost" && ok "a vanished peer is listed at first" || bad "ghost missing"
sleep 3
"${cli_tcp[@]}" client list | grep -q "name=ghost" && bad "the vanished peer was not reaped" || ok "the vanished peer is reaped after sdp-idle-timeout"
kill "$srv"; wait "$srv" 2>/dev/null; srv=""

# Keys from the TLS handshake instead of a pre-shared secret.
tcp2=$(port) sdp2=$(port)
"$bin/redis-server" --port "$tcp2" --bind 127.0.0.1 --sdp-port "$sdp2" --sdp-cert-file "$tls/redis.crt" \
  --sdp-key-file "$tls/redis.key" --save '' --appendonly no --dir "$work" --logfile "$work/redis-tls.log" &
srv=$!
for _ in $(seq 50); do "$bin/redis-cli" -p "$tcp2" ping >/dev/null 2>&1 && break; sleep 0.1; done
hs=("$bin/redis-cli" -p "$sdp2" --sdp)
timeout 10 "${hs[@]}" --sdp-cacert "$tls/ca.crt" set hs ok >/dev/null
[ "$(timeout 10 "${hs[@]}" --sdp-cacert "$tls/ca.crt" get hs)" = ok ] && ok "SDP with the TLS handshake (sdp-cert-file, --sdp-cacert)" ||
  bad "SDP with the TLS handshake"
out=$(timeout 10 "${hs[@]}" --sdp-cacert "$tls/redis.crt" ping 2>&1)
case "$out" in *"not trusted"*) ok "a server certificate from an unknown CA is refused";; *) bad "unknown CA: '$out'";; esac
kill "$srv"; wait "$srv" 2>/dev/null; srv=""

# A handful of Redis's own tests, over TCP: the patch broke nothing there.
if (cd "$tree" && timeout 240 ./runtest --clients 2 --timeout 120 --single unit/type/incr --single unit/auth \
      --single unit/protocol --single unit/info-command --single unit/quit > "$work/tcl.log" 2>&1) &&
   grep -q "All tests passed" "$work/tcl.log" && [ "$(grep -c 'ok.\{0,8\}\]: ' "$work/tcl.log")" -ge 20 ]; then
  ok "Redis's Tcl tests: $(grep -c 'ok.\{0,8\}\]: ' "$work/tcl.log") passed (incr, auth, protocol, info-command, quit)"
else
  bad "Redis's Tcl tests"; grep -E "\[err\]|\[exception\]|exception" "$work/tcl.log" | head; tail -5 "$work/tcl.log"
fi

[ $fail -eq 0 ] || { echo "--- redis.log (last lines)"; tail -20 "$work/redis.log"; }
echo "redis: $pass passed, $fail failed"
[ $fail -eq 0 ]
