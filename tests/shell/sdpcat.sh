#!/usr/bin/env bash
# sdpcat end to end on loopback: echo and print modes, inline and threaded,
# sizes across the segmentation boundaries, exit codes a netcat user expects,
# -v lines and --stats JSON. $1 is the build directory.
set -uo pipefail
bin="$1/bin/sdpcat"
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
pass=0 fail=0
ok() { echo "ok: $*"; pass=$((pass + 1)); }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }
openssl rand -hex 32 > "$work/secret" 2>/dev/null || python3 -c 'import os;print(os.urandom(32).hex())' > "$work/secret"
port() { python3 -c 'import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }

for engines in 0 2; do
  p=$(port)
  "$bin" --listen "127.0.0.1:$p" --secret-file "$work/secret" --echo --engines "$engines" -v 2> "$work/srv.err" &
  srv=$!
  sleep 0.3
  for size in 0 1 1448 65536 1048577 5000000; do
    head -c "$size" /dev/urandom > "$work/in"
    if timeout 20 "$bin" "127.0.0.1:$p" --secret-file "$work/secret" --engines "$engines" < "$work/in" > "$work/out" &&
       cmp -s "$work/in" "$work/out"; then
      ok "echo of $size bytes, engines $engines"
    else
      bad "echo of $size bytes, engines $engines"
    fi
  done
  kill "$srv"; wait "$srv" 2>/dev/null
  grep -q "request id [0-9]* size 5000000 from 127.0.0.1:" "$work/srv.err" && ok "-v logs id, size and peer" || bad "-v line missing"
done

# Print mode: the request's bytes go to the server's stdout.
p=$(port)
"$bin" --listen "127.0.0.1:$p" --secret-file "$work/secret" --count 1 > "$work/printed" 2>/dev/null &
srv=$!
sleep 0.3
echo "hello over sdp" | timeout 10 "$bin" "127.0.0.1:$p" --secret-file "$work/secret" --stats > "$work/resp" 2> "$work/stats"
rc=$?
wait "$srv"
[ $rc -eq 0 ] && [ ! -s "$work/resp" ] && grep -qx "hello over sdp" "$work/printed" && ok "print mode" || bad "print mode (rc $rc)"
python3 -c 'import json,sys; d=json.loads(open(sys.argv[1]).read().strip().splitlines()[-1]); assert d["responses_received"]==1 and d["requests_sent"]==1' "$work/stats" \
  && ok "--stats prints JSON counters" || bad "--stats JSON"

# Exit codes.
p=$(port)
echo x | timeout 10 "$bin" "127.0.0.1:$p" --secret-file "$work/secret" --timeout 500 >/dev/null 2>"$work/err"
[ $? -eq 1 ] && grep -q "timed out\|no response" "$work/err" && ok "no server: exit 1 with a reason" || bad "no server exit code"
"$bin" >/dev/null 2>&1; [ $? -eq 2 ] && ok "no arguments: exit 2" || bad "usage exit code"
echo x | "$bin" "127.0.0.1:$p" >/dev/null 2>"$work/err"; [ $? -eq 2 ] && grep -q "authenticate" "$work/err" && ok "no credentials: exit 2, says why" || bad "no credentials"
echo x | "$bin" "nonsense" --secret-file "$work/secret" >/dev/null 2>&1; [ $? -eq 2 ] && ok "bad address: exit 2" || bad "bad address"
head -c 10 /dev/urandom | xxd -p > "$work/short" 2>/dev/null || echo abcd > "$work/short"
echo x | "$bin" "127.0.0.1:$p" --secret-file "$work/short" >/dev/null 2>&1; [ $? -eq 2 ] && ok "malformed secret: exit 2" || bad "malformed secret"
# A wrong secret: the server cannot open anything, the client times out.
p=$(port)
"$bin" --listen "127.0.0.1:$p" --secret-file "$work/secret" --echo 2>/dev/null &
srv=$!
sleep 0.3
openssl rand -hex 32 > "$work/other" 2>/dev/null || python3 -c 'import os;print(os.urandom(32).hex())' > "$work/other"
echo x | timeout 10 "$bin" "127.0.0.1:$p" --secret-file "$work/other" --timeout 1000 >/dev/null 2>&1
[ $? -eq 1 ] && ok "wrong secret: refused, exit 1" || bad "wrong secret"
kill "$srv"; wait "$srv" 2>/dev/null

echo "sdpcat: $pass passed, $fail failed"
[ $fail -eq 0 ]
