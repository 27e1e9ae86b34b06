#!/usr/bin/env bash
# Redis over TCP, TLS and SDP with one patched binary (tools/redis/build.sh):
# redis-benchmark -c 50 -r 100000 -t set,get -d {64,1024,16384} -P {1,16},
# server and client pinned to different cores, transports interleaved run by
# run, medians of RUNS runs; prints ops/s and p50/p99 latency per transport
# and the ratios SDP/TLS and SDP/TCP.  Both TLS and SDP authenticate the
# server with a certificate (TLS 1.3 handshakes, AES-128-GCM records).
#
#   tools/redis/bench.sh [LIBSDP_BUILD_DIR]
#   RUNS=5 REQUESTS=200000 SIZES="64 1024 16384" PIPELINES="1 16" CLIENTS=50
#   SERVER_CPU=0 CLIENT_CPU=1 OUT=results.csv tools/redis/bench.sh
#   REDIS_BIN=DIR: use the redis-server/redis-benchmark/redis-cli in DIR as
#   they are (no build), e.g. a copy of an older build for an A/B run.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
b=$(cd "${1:-$repo/build}" && pwd)
RUNS=${RUNS:-5} REQUESTS=${REQUESTS:-200000} CLIENTS=${CLIENTS:-50}
SIZES=${SIZES:-"64 1024 16384"} PIPELINES=${PIPELINES:-"1 16"}
SERVER_CPU=${SERVER_CPU:-0} CLIENT_CPU=${CLIENT_CPU:-1}
if [ -n "${REDIS_BIN:-}" ]; then
  bin=$(cd "$REDIS_BIN" && pwd)
else
  "$here/build.sh" "$b" >/dev/null
  bin="$b/redis/bin"
fi
work=$(mktemp -d)
OUT=${OUT:-$work/results.csv}
srv=""
trap '[ -n "$srv" ] && kill "$srv" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
tls="$work/tls"
"$here/certs.sh" "$tls"
tcp=$(port) tlsp=$(port) sdpp=$(port)
taskset -c "$SERVER_CPU" "$bin/redis-server" --port "$tcp" --bind 127.0.0.1 --tls-port "$tlsp" \
  --tls-cert-file "$tls/redis.crt" --tls-key-file "$tls/redis.key" --tls-ca-cert-file "$tls/ca.crt" \
  --tls-auth-clients no --tls-ciphersuites TLS_AES_128_GCM_SHA256 --sdp-port "$sdpp" --sdp-cert-file "$tls/redis.crt" --sdp-key-file "$tls/redis.key" \
  --save '' --appendonly no --dir "$work" --logfile "$work/redis.log" &
srv=$!
for _ in $(seq 50); do "$bin/redis-cli" -p "$tcp" ping >/dev/null 2>&1 && break; sleep 0.1; done

bench() { # transport size pipeline
  local args=(-c "$CLIENTS" -n "$REQUESTS" -r 100000 -t set,get -d "$2" -P "$3" --csv)
  case $1 in
    tcp) args+=(-p "$tcp") ;;
    tls) args+=(-p "$tlsp" --tls --cacert "$tls/ca.crt") ;;
    sdp) args+=(-p "$sdpp" --sdp --sdp-cacert "$tls/ca.crt") ;;
  esac
  taskset -c "$CLIENT_CPU" timeout "${BENCH_TIMEOUT:-600}" "$bin/redis-benchmark" "${args[@]}" 2>/dev/null | tr -d '"' |
    awk -F, -v t="$1" -v d="$2" -v p="$3" '$1=="SET"||$1=="GET" {print t","$1","d","p","$2","$5","$7}' ||
    echo "bench: $1 -d $2 -P $3 did not finish within ${BENCH_TIMEOUT:-600} s" >&2
}
echo "transport,test,size,pipeline,rps,p50_ms,p99_ms" > "$OUT"
for run in $(seq "$RUNS"); do
  for d in $SIZES; do
    for p in $PIPELINES; do
      for t in tcp tls sdp; do
        bench "$t" "$d" "$p" >> "$OUT"
      done
    done
  done
  echo "bench: run $run of $RUNS done" >&2
done
python3 - "$OUT" "$RUNS" "$REQUESTS" "$CLIENTS" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
def med(t, test, d, p, k):
    v = [float(r[k]) for r in rows if (r["transport"], r["test"], r["size"], r["pipeline"]) == (t, test, d, p)]
    return statistics.median(v) if v else float("nan")
keys = sorted({(r["test"], int(r["size"]), int(r["pipeline"])) for r in rows}, key=lambda k: (k[0] != "SET", k[1], k[2]))
print(f"medians of {sys.argv[2]} runs, {sys.argv[3]} requests, -c {sys.argv[4]} -r 100000")
print("| test | size | -P | TCP ops/s | TLS ops/s | SDP ops/s | SDP/TLS | SDP/TCP | p50 ms TCP/TLS/SDP | p99 ms TCP/TLS/SDP |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |")
for test, d, p in keys:
    d, p = str(d), str(p)
    o = {t: med(t, test, d, p, "rps") for t in ("tcp", "tls", "sdp")}
    l50 = "/".join(f"{med(t, test, d, p, 'p50_ms'):.3f}" for t in ("tcp", "tls", "sdp"))
    l99 = "/".join(f"{med(t, test, d, p, 'p99_ms'):.3f}" for t in ("tcp", "tls", "sdp"))
    print(f"| {test} | {d} | {p} | {o['tcp']:.0f} | {o['tls']:.0f} | {o['sdp']:.0f} | "
          f"{o['sdp'] / o['tls']:.2f} | {o['sdp'] / o['tcp']:.2f} | {l50} | {l99} |")
PY
