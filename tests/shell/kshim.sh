#!/usr/bin/env bash
# The sdp_kshim kernel module's tests run in a qemu guest with Debian's
# kernel (tests/kshim/run-guest-tests.sh).  Opt-in: they install packages
# and take about a minute, so this skips unless SDP_KSHIM_TESTS=1.
set -euo pipefail
build=${1:?usage: kshim.sh BUILD_DIR}
repo=$(cd "$(dirname "$0")/../.." && pwd)
if [ "${SDP_KSHIM_TESTS:-0}" != 1 ]; then
  echo "SKIP: kshim guest tests not requested (set SDP_KSHIM_TESTS=1; they need root or"
  echo "      qemu-system-x86, linux-image-amd64, linux-headers-amd64, busybox-static)"
  exit 0
fi
exec "$repo/tests/kshim/run-guest-tests.sh" "$build/kshim-guest"
