#!/usr/bin/env bash
# Build the static guest programs: build.sh REPO OUT [SDPCAT_OUT]
# OUT is kshim-test: the library's crypto, wire and core files and the
# engine's kshim path are compiled in, so the guest runs exactly the record
# code (and the kshim provider) the library ships.  SDPCAT_OUT, when given, is tools/sdpcat over the whole library, for
# the engine interop runs (kernel crypto against OpenSSL).
set -euo pipefail
repo=${1:?repo}
out=${2:?output}
sdpcat_out=${3:-}
obj=$(mktemp -d)
trap 'rm -rf "$obj"' EXIT
lib=(src/crypto/aead.c src/crypto/aead_openssl.c src/crypto/gcm_small.c src/crypto/aead_sodium.c src/crypto/aead_null.c
     src/crypto/aead_kshim.c src/crypto/keymem.c src/crypto/record.c src/crypto/keysched.c
     src/wire/wire.c src/common/error.c src/engine/udp.c src/engine/kshim.c)
lib+=($(cd "$repo" && ls src/core/*.c))
inc=(-I"$repo/include" -I"$repo/src" -I"$repo/kshim/uapi")
for f in "${lib[@]}"; do
  gcc -O2 -g -std=gnu11 -w "${inc[@]}" -c "$repo/$f" -o "$obj/$(basename "$f" .c).o"
done
for f in "$repo"/kshim/test/*.c; do
  gcc -O2 -g -std=gnu11 -Wall -Wextra -Werror "${inc[@]}" -c "$f" -o "$obj/t_$(basename "$f" .c).o"
done
# Static libcrypto warns that dlopen needs the shared libc; the guest never loads engines.
gcc -static -o "$out" "$obj"/*.o -lcrypto -lsodium -luring -lpthread 2> "$obj/ld.log" || { cat "$obj/ld.log"; exit 1; }
[ -n "$sdpcat_out" ] || exit 0
mkdir -p "$obj/all"
for f in "$repo"/src/*/*.c "$repo/tools/sdpcat.c"; do
  gcc -O2 -g -std=gnu11 -w "${inc[@]}" -c "$f" -o "$obj/all/$(basename "$(dirname "$f")")_$(basename "$f" .c).o"
done
gcc -static -o "$sdpcat_out" "$obj"/all/*.o -lssl -lcrypto -lsodium -luring -lpthread 2> "$obj/ld.log" ||
  { cat "$obj/ld.log"; exit 1; }
