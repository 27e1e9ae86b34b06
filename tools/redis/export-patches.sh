#!/usr/bin/env bash
# For whoever edits the patch: regenerate tools/redis/patches/ from a Redis
# tree that build.sh prepared (a git repository whose first commit is
# Debian's source with Debian's patches applied).  $1: that tree.
set -euo pipefail
tree="$1"
here=$(cd "$(dirname "$0")" && pwd)
cd "$tree"
git add -N src/sdp.c src/sdp_common.c src/sdp_common.h src/sdp_client.c src/sdp_client.h
base=$(git rev-list --max-parents=0 HEAD)
git diff "$base" -- src/sdp.c src/sdp_common.c src/sdp_common.h src/Makefile src/config.c src/connection.c \
  src/connection.h src/networking.c src/server.c src/server.h > "$here/patches/0001-sdp-server.patch"
git diff "$base" -- src/sdp_client.c src/sdp_client.h src/redis-cli.c src/redis-benchmark.c \
  > "$here/patches/0002-sdp-clients.patch"
echo "wrote $(ls "$here"/patches/*.patch | wc -l) patches"
