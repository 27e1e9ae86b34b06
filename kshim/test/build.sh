#!/usr/bin/env bash
# Build the static guest test program: build.sh REPO OUT
# The library's crypto and wire files are compiled in, so the guest runs
# exactly the record code (and the kshim provider) the library ships.
set -euo pipefail
repo=${1:?repo}
out=${2:?output}
obj=$(mktemp -d)
trap 'rm -rf "$obj"' EXIT
lib=(src/crypto/aead.c src/crypto/aead_openssl.c src/crypto/aead_sodium.c src/crypto/aead_null.c
     src/crypto/aead_kshim.c src/crypto/keymem.c src/crypto/record.c src/crypto/keysched.c
     src/wire/wire.c src/common/error.c)
inc=(-I"$repo/include" -I"$repo/src" -I"$repo/kshim/uapi")
for f in "${lib[@]}"; do
  gcc -O2 -g -std=gnu11 -w "${inc[@]}" -c "$repo/$f" -o "$obj/$(basename "$f" .c).o"
done
for f in "$repo"/kshim/test/*.c; do
  gcc -O2 -g -std=gnu11 -Wall -Wextra -Werror "${inc[@]}" -c "$f" -o "$obj/t_$(basename "$f" .c).o"
done
# Static libcrypto warns that dlopen needs the shared libc; the guest never loads engines.
gcc -static -o "$out" "$obj"/*.o -lcrypto -lsodium -luring -lpthread 2> "$obj/ld.log" || { cat "$obj/ld.log"; exit 1; }
