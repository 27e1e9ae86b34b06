#!/usr/bin/env bash
# Runs every fuzz_* binary in DIR for SECONDS each, starting from the seed
# corpus in tests/fuzz/corpus/<name> when there is one. Fails on any crash.
set -euo pipefail
dir=${1:?usage: run-fuzzers.sh DIR SECONDS}
secs=${2:-15}
top=$(cd "$(dirname "$0")/.." && pwd)
shopt -s nullglob
fuzzers=("$dir"/fuzz_*)
[ ${#fuzzers[@]} -gt 0 ] || { echo "no fuzzers in $dir"; exit 1; }
pass=0 fail=0
for f in "${fuzzers[@]}"; do
  name=$(basename "$f")
  work=$(mktemp -d)
  [ -d "$top/tests/fuzz/corpus/$name" ] && cp -r "$top/tests/fuzz/corpus/$name/." "$work/"
  if "$f" -max_total_time="$secs" -rss_limit_mb=2048 -print_final_stats=0 "$work" >"$work.log" 2>&1; then
    echo "fuzz $name: ok ($(grep -c . "$work.log") log lines, $(ls "$work" | wc -l) corpus files)"
    pass=$((pass + 1))
  else
    echo "fuzz $name: FAILED"; tail -40 "$work.log"
    fail=$((fail + 1))
  fi
  rm -rf "$work" "$work.log"
done
echo "fuzzers: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
