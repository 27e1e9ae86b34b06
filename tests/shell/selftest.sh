#!/usr/bin/env bash
# Runs the crypto self-check (`make demo`) and requires a clean pass.
set -euo pipefail
build=${1:?usage: selftest.sh BUILD_DIR}
out=$("$build/bin/sdp-selftest") || { echo "$out"; echo "sdp-selftest exited non-zero"; exit 1; }
echo "$out"
grep -q '^summary: .* 0 failed' <<<"$out" || { echo "no clean summary line"; exit 1; }
if grep -q 'FAIL' <<<"$out"; then echo "a step failed"; exit 1; fi
