#!/usr/bin/env bash
# The examples work: uring_mixed reads a file and sends it in chunks through
# its own io_uring (sdp_uring_prep) to echo_server, which echoes each chunk.
# $1 is the build directory.
set -uo pipefail
b="$1/bin"
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
secret=$(python3 -c 'import os;print(os.urandom(32).hex())')
port=$(python3 -c 'import socket;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
"$b/echo_server" 127.0.0.1 "$port" "$secret" &
sleep 0.3
pass=0 fail=0
for size in 1 65536 3000001; do
  head -c "$size" /dev/urandom > "$work/f"
  chunks=$(( (size + 65535) / 65536 ))
  out=$(timeout 30 "$b/uring_mixed" "$work/f" 127.0.0.1 "$port" "$secret")
  if [ $? -eq 0 ] && [ "$out" = "uring_mixed: $chunks chunks, $size bytes echoed, $chunks intact" ]; then
    echo "ok: $out"; pass=$((pass + 1))
  else
    echo "FAIL: file of $size bytes: $out"; fail=$((fail + 1))
  fi
done
echo "examples: $pass passed, $fail failed"
[ $fail -eq 0 ]
