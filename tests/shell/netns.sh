#!/usr/bin/env bash
# SDP between two network namespaces joined by a veth pair, at MTU 1500 and
# 9000, IPv4 and IPv6, with GSO/GRO on the veth. Skips (exit 0 with a
# message) where namespaces cannot be created. $1 is the build directory.
set -uo pipefail
bin="$1/bin/sdpcat"
a=sdpns-a-$$ b=sdpns-b-$$
work=$(mktemp -d)
cleanup() {
  ip netns pids "$a" 2>/dev/null | xargs -r kill 2>/dev/null
  ip netns del "$a" 2>/dev/null; ip netns del "$b" 2>/dev/null; rm -rf "$work"
}
trap cleanup EXIT
if ! ip netns add "$a" 2>/dev/null || ! ip netns add "$b" 2>/dev/null; then
  echo "netns: SKIP: cannot create network namespaces here (needs root and CAP_SYS_ADMIN)"
  exit 0
fi
ip link add va-$$ type veth peer name vb-$$ || { echo "netns: SKIP: no veth"; exit 0; }
ip link set va-$$ netns "$a"; ip link set vb-$$ netns "$b"
ip -n "$a" addr add 10.99.0.1/24 dev va-$$; ip -n "$b" addr add 10.99.0.2/24 dev vb-$$
ip -n "$a" addr add fd99::1/64 dev va-$$ nodad; ip -n "$b" addr add fd99::2/64 dev vb-$$ nodad
for n in "$a" "$b"; do ip -n "$n" link set lo up; done
ip -n "$a" link set va-$$ up; ip -n "$b" link set vb-$$ up
python3 -c 'import os;print(os.urandom(32).hex())' > "$work/secret"
pass=0 fail=0
for mtu in 1500 9000; do
  ip -n "$a" link set va-$$ mtu $mtu; ip -n "$b" link set vb-$$ mtu $mtu
  for fam in 4 6; do
    if [ $fam = 4 ]; then srv=10.99.0.1:7700; else srv="[fd99::1]:7700"; fi
    ip netns exec "$a" "$bin" --listen "$srv" --secret-file "$work/secret" --echo --mtu $mtu --engines 2 2>"$work/srv.err" &
    spid=$!
    sleep 0.4
    for size in 1 $((mtu - 100)) $((mtu + 100)) 70000 2000000; do
      head -c $size /dev/urandom > "$work/in"
      if timeout 20 ip netns exec "$b" "$bin" "$srv" --secret-file "$work/secret" --mtu $mtu < "$work/in" > "$work/out" 2>"$work/cli.err" \
         && cmp -s "$work/in" "$work/out"; then
        pass=$((pass + 1))
      else
        echo "FAIL: IPv$fam MTU $mtu size $size: $(cat "$work/cli.err")"; fail=$((fail + 1))
      fi
    done
    kill $spid; wait $spid 2>/dev/null
    echo "ran: IPv$fam at MTU $mtu"
  done
  # Every datagram fit the MTU: the kernel never had to fragment one.
  frags=0
  for n in "$a" "$b"; do
    f4=$(ip netns exec "$n" awk '/^Ip:/ {if (!h) {for (i=1;i<=NF;i++) if ($i=="FragCreates") c=i; h=1} else print $c}' /proc/net/snmp)
    f6=$(ip netns exec "$n" awk '$1=="Ip6FragCreates" {print $2}' /proc/net/snmp6)
    frags=$((frags + ${f4:-0} + ${f6:-0}))
  done
  if [ "$frags" -eq 0 ]; then echo "ok: no IP fragments at MTU $mtu"; pass=$((pass + 1)); else echo "FAIL: $frags IP fragments at MTU $mtu"; fail=$((fail + 1)); fi
done
echo "netns: $pass passed, $fail failed"
[ $fail -eq 0 ]
