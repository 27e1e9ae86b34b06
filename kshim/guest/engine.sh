#!/bin/busybox sh
# Engine interop in the guest: sdpcat with kernel record crypto (the kshim
# module seals DATA on the send path and opens received records in
# io_uring batches) against sdpcat with OpenSSL, both ways, echoing
# messages of several sizes whose bytes are compared.
# Usage: engine.sh 4|6 [ENGINES]; prints "KT PASS engine<fam>" or "KT FAIL ...".
fam=$1
engines=${2:-0}
name=engine$fam
if [ "$fam" = 6 ]; then host="[::1]"; else host=127.0.0.1; fi
sizes="0 1 1449 16400 65536 300000"
nsizes=$(echo $sizes | wc -w)
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > /tmp/secret
fails=0
fail() { echo "KT   $name: $*"; fails=$((fails + 1)); }
num() { sed -n "s/.*\"$1\":\([0-9]*\).*/\1/p" "$2" | tail -1; }

# run ROLE PORT: ROLE kserver (the server uses the module) or kclient.
run() {
  role=$1
  port=$2
  ks=""; kc=""
  if [ "$role" = kserver ]; then ks="--kernel-crypto require"; else kc="--kernel-crypto require"; fi
  sdpcat --listen "$host:$port" --secret-file /tmp/secret --echo --count "$nsizes" --stats \
    --engines "$engines" $ks 2> /tmp/srv.err &
  srv=$!
  sleep 0.3
  : > /tmp/cli.all
  for n in $sizes; do
    head -c "$n" /dev/urandom > /tmp/in
    if ! sdpcat --secret-file /tmp/secret --stats --timeout 20000 $kc "$host:$port" < /tmp/in > /tmp/out \
         2> /tmp/cli.err; then
      fail "$role: $n-byte message: client failed: $(head -3 /tmp/cli.err)"
    elif ! cmp -s /tmp/in /tmp/out; then
      fail "$role: $n-byte message: echo differs"
    fi
    cat /tmp/cli.err >> /tmp/cli.all
  done
  wait $srv || fail "$role: server exited $?: $(head -3 /tmp/srv.err)"
  # The side with the module: it sealed in the kernel, opened in batches,
  # and sent multi-datagram (GSO) segments.
  if [ "$role" = kserver ]; then f=/tmp/srv.err; else f=/tmp/cli.all; fi
  tx=0; hits=0; misses=0; batches=0; pk=0; sends=0
  for v in $(sed -n 's/.*"kshim_tx_sends":\([0-9]*\).*/\1/p' $f); do tx=$((tx + v)); done
  for v in $(sed -n 's/.*"kshim_rx_hits":\([0-9]*\).*/\1/p' $f); do hits=$((hits + v)); done
  for v in $(sed -n 's/.*"kshim_rx_batches":\([0-9]*\).*/\1/p' $f); do batches=$((batches + v)); done
  for v in $(sed -n 's/.*"kshim_rx_misses":\([0-9]*\).*/\1/p' $f); do misses=$((misses + v)); done
  for v in $(sed -n 's/.*"pkts_out":\([0-9]*\).*/\1/p' $f); do pk=$((pk + v)); done
  for v in $(sed -n 's/.*"gso_sends":\([0-9]*\).*/\1/p' $f); do sends=$((sends + v)); done
  echo "KT   $name $role: kernel-sealed sends $tx, open batches $batches, records from batches $hits" \
       "(opened alone: $misses: first bursts of new peers)," \
       "datagrams $pk in $sends sends"
  [ "$tx" -gt 0 ] || fail "$role: no send went through the module"
  [ "$batches" -gt 0 ] && [ "$hits" -gt 0 ] || fail "$role: no record opened by a kernel batch"
  # The client knows its peer from the first packet: nearly all its records come from batches.
  [ "$role" = kserver ] || [ $((misses * 4)) -le "$hits" ] || fail "$role: $misses records opened alone"
  [ "$pk" -gt "$sends" ] || fail "$role: no GSO segment of several datagrams"
  grep -q 'not loaded' /tmp/srv.err /tmp/cli.all && fail "$role: module reported missing"
}

run kserver $((7400 + fam))
run kclient $((7410 + fam))
if [ $fails -eq 0 ]; then echo "KT PASS $name"; exit 0; fi
echo "KT FAIL $name: $fails problems"
exit 1
