#!/usr/bin/env bash
# Build Debian 12's Redis 7.0.15 (Debian's patches applied) with the SDP patch
# (tools/redis/patches/) against this repository's libsdp, TLS included.
#
#   tools/redis/build.sh [LIBSDP_BUILD_DIR [OUT_DIR]]
#
# LIBSDP_BUILD_DIR defaults to ./build (libsdp.a must be built); OUT_DIR to
# LIBSDP_BUILD_DIR/redis.  The binaries land in OUT_DIR/bin.  The source comes
# from Debian's archive with `apt-get source` through a private apt
# configuration (deb-src twins of this machine's bookworm entries), so the
# system's apt setup is left alone.  Everything is cached in OUT_DIR: a second
# run only rebuilds what changed (patches: fresh tree; libsdp: relink).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$repo/build}" && pwd)
out=${2:-$build/redis}
lib="$build/lib/libsdp.a"
jobs=${JOBS:-2}
want_version="7.0.15"

die() { echo "redis/build.sh: $*" >&2; exit 1; }
[ -f "$lib" ] || die "$lib is missing: build libsdp first (make build)"
for cmd in apt-get dpkg-source make cc patch pkg-config python3; do
  command -v "$cmd" >/dev/null || die "$cmd not found: install tools/deps.txt (tools/install-deps.sh)"
done
[ -f /usr/include/jemalloc/jemalloc.h ] || die "libjemalloc-dev is missing: install tools/deps.txt (tools/install-deps.sh)"
mkdir -p "$out/debian" "$out/bin"

# 1. Debian's source package, once.
dsc=$(ls "$out"/debian/redis_"$want_version"-*.dsc 2>/dev/null | tail -1 || true)
if [ -z "$dsc" ]; then
  apt="$out/debian/apt"
  mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/parts"
  python3 - "$apt/sources.list" <<'PY'
import glob, sys
out = []
def emit(uris, suites, comps, signed):
    opt = f"[signed-by={signed}] " if signed else ""
    for u in uris:
        for s in suites:
            if s.startswith("bookworm"):
                out.append(f"deb-src {opt}{u} {s} {' '.join(comps)}")
for f in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
    for stanza in open(f).read().split("\n\n"):
        d = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line:
                continue
            k, v = line.split(":", 1)
            d[k.strip().lower()] = v.split()
        if "deb" in d.get("types", []) and d.get("enabled", ["yes"])[0] != "no":
            emit(d.get("uris", []), d.get("suites", []), d.get("components", []), " ".join(d.get("signed-by", [])))
try:
    for line in open("/etc/apt/sources.list"):
        w = line.split()
        if w and w[0] == "deb" and any(x.startswith("bookworm") for x in w):
            out.append("deb-src " + line.strip()[4:])
except FileNotFoundError:
    pass
if not out:
    sys.exit("no Debian bookworm entry in this machine's apt sources")
open(sys.argv[1], "w").write("\n".join(out) + "\n")
PY
  aopt=(-o "Dir::Etc::SourceList=$apt/sources.list" -o "Dir::Etc::SourceParts=$apt/parts"
        -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache" -o Debug::NoLocking=1)
  echo "redis/build.sh: fetching Debian's redis source package"
  apt-get "${aopt[@]}" -q update >"$out/debian/apt.log" 2>&1 || { cat "$out/debian/apt.log" >&2; die "apt-get update failed"; }
  (cd "$out/debian" && apt-get "${aopt[@]}" -q source --download-only redis >>apt.log 2>&1) ||
    { cat "$out/debian/apt.log" >&2; die "apt-get source redis failed"; }
  dsc=$(ls "$out"/debian/redis_"$want_version"-*.dsc 2>/dev/null | tail -1 || true)
  [ -n "$dsc" ] || die "Debian's redis source is not $want_version: $(ls "$out"/debian/*.dsc)"
fi

# 2. A tree with Debian's and our patches, renewed when the patches change.
tree="$out/tree"
phash=$(cat "$here"/patches/*.patch | sha256sum | cut -c1-16)
if [ "$(cat "$tree/.sdp-patch" 2>/dev/null || true)" != "$phash" ]; then
  # Take the old patches out (so make recompiles only what changed), or
  # start from a fresh tree when that fails.
  fresh=1
  if [ -d "$tree/.sdp-applied" ]; then
    fresh=0
    for p in $(ls -r "$tree"/.sdp-applied/*.patch); do
      patch -d "$tree" -p1 -s -R < "$p" || { fresh=1; break; }
    done
  fi
  if [ $fresh = 1 ]; then
    rm -rf "$tree"
    dpkg-source -q -x "$dsc" "$tree" >/dev/null
    if command -v git >/dev/null; then # a base commit for export-patches.sh
      git -C "$tree" init -q && git -C "$tree" add -A &&
        git -C "$tree" -c user.name=build -c user.email=build@localhost commit -qm "Debian $(basename "$dsc" .dsc)"
    fi
  fi
  rm -rf "$tree/.sdp-applied" && mkdir -p "$tree/.sdp-applied"
  for p in "$here"/patches/*.patch; do
    patch -d "$tree" -p1 -s --forward < "$p" || die "patch $(basename "$p") does not apply to $(basename "$dsc")"
    cp "$p" "$tree/.sdp-applied/"
  done
  echo "$phash" > "$tree/.sdp-patch"
fi
lhash=$(sha256sum "$lib" | cut -c1-16)
if [ "$(cat "$tree/.sdp-lib" 2>/dev/null || true)" != "$lhash" ]; then
  rm -f "$tree"/src/redis-server "$tree"/src/redis-cli "$tree"/src/redis-benchmark # relink with the new libsdp
fi

# 3. Build: Debian's choices (system jemalloc, TLS) without systemd.
echo "redis/build.sh: building Redis in $tree (make -j$jobs, log in $out/build.log)"
sdp_libs="$lib $(pkg-config --libs liburing libsodium libcrypto) -lpthread"
if ! make -C "$tree" -j"$jobs" BUILD_TLS=yes USE_SYSTEMD=no USE_SYSTEM_JEMALLOC=yes \
     SDP_CFLAGS="-I$repo/include" SDP_LIBS="$sdp_libs" >"$out/build.log" 2>&1; then
  tail -40 "$out/build.log" >&2
  die "make failed"
fi
echo "$lhash" > "$tree/.sdp-lib"
for b in redis-server redis-cli redis-benchmark; do
  cp -f "$tree/src/$b" "$out/bin/$b"
done
echo "redis/build.sh: $out/bin/redis-server ($(basename "$dsc" .dsc) + SDP)"
