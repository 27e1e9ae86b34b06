#!/usr/bin/env bash
# sdp-bench smoke test: the quick mode runs, prints a row for every
# transport in every table and the targets section, and --json parses.
# Speed is never asserted here: PASS/MISS lines are reported, not checked.
set -uo pipefail
build=${1:?usage: bench.sh BUILD_DIR}
bin="$build/bin/sdp-bench"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pass=0 fail=0
ok() { echo "ok: $*"; pass=$((pass + 1)); }
bad() { echo "FAIL: $*"; fail=$((fail + 1)); }

timeout 120 "$bin" --quick > "$work/out" 2> "$work/err"
rc=$?
[ $rc -eq 0 ] && ok "--quick exits 0" || { bad "--quick exit code $rc"; cat "$work/err"; }
for t in sdp sdp-null udp tcp tls ktls; do
  # Every table has a row per transport (ktls says unavailable where the kernel lacks it).
  n=$(grep -c "^$t " "$work/out")
  [ "$n" -ge 8 ] && ok "$t has a row in every table ($n)" || bad "$t rows: $n"
done
grep -q "^== targets ==" "$work/out" && ok "targets section" || bad "no targets section"
n=$(sed -n '/^== targets ==/,$p' "$work/out" | grep -cE "PASS|MISS|n/a")
[ "$n" -eq 8 ] && ok "8 target lines with a verdict" || bad "target lines with a verdict: $n"
sed -n '/^== Connection setup/,/^$/p' "$work/out" > "$work/hs"
grep -qE "^sdp +[0-9]" "$work/hs" && ok "sdp handshake row measured" || bad "sdp handshake row: $(cat "$work/hs")"
grep -q "^sdp-null .*never negotiated" "$work/hs" && ok "sdp-null handshake row says why not" || bad "sdp-null handshake row"
grep -qE "^ktls +(unavailable|[0-9])" "$work/out" && ok "ktls measured or reported unavailable" || bad "ktls row"

timeout 120 "$bin" --quick --json --tests rtt,rate,handshake --only sdp,tcp,tls > "$work/json" 2> "$work/jerr"
rc=$?
[ $rc -eq 0 ] && ok "--json exits 0" || { bad "--json exit code $rc"; cat "$work/jerr"; }
python3 - "$work/json" <<'EOF' && ok "--json parses, has rows and targets" || bad "--json content"
import json, sys
d = json.load(open(sys.argv[1]))
names = [t["name"] for t in d["transports"]]
assert names == ["sdp", "tcp", "tls"], names
assert {r["result"]["transport"] for r in d["rtt"]} == set(names)
assert len(d["rate"]["results"]) == 3
assert len(d["targets"]) == 8 and all(t["result"] for t in d["targets"])
hs = {h["transport"]: h for h in d["handshake"]}
assert hs["sdp"]["status"] == "ok" and hs["sdp"]["p50_us"] > 0, hs["sdp"]
EOF

"$bin" --no-such-option > /dev/null 2>&1
[ $? -eq 2 ] && ok "bad option: exit 2" || bad "bad option exit code"

echo "bench: $pass passed, $fail failed"
[ $fail -eq 0 ]
