#!/usr/bin/env bash
# Build the sdp_kshim module and its guest tests, boot Debian's kernel in
# qemu (software emulation), run the tests there and fail unless the guest
# prints "KSHIM-RESULT: N passed, 0 failed".
#
# Usage: tests/kshim/run-guest-tests.sh [WORKDIR]
# Env: KSHIM_NO_INSTALL=1 to never call apt-get; KSHIM_QEMU_TIMEOUT (s, default 420);
#      KSHIM_APPEND="KT_ONLY=uring" runs one test program (the init's environment).
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=${1:-$(mktemp -d /tmp/kshim.XXXXXX)}
mkdir -p "$work"
log() { echo "kshim: $*"; }

# 1. Tools, Debian's kernel and matching headers (one apt call, so the versions agree).
kver() {
  local v
  for v in $(ls /lib/modules 2>/dev/null | sort -V); do
    [ -e "/lib/modules/$v/build/Makefile" ] && [ -e "/boot/vmlinuz-$v" ] && echo "$v"
  done | tail -1
}
if ! command -v qemu-system-x86_64 >/dev/null || [ -z "$(kver)" ] || [ ! -x /bin/busybox ] ||
   ! command -v cpio >/dev/null || ! command -v xz >/dev/null; then
  [ "${KSHIM_NO_INSTALL:-0}" = 1 ] && { log "qemu, kernel or headers missing"; exit 1; }
  log "installing qemu, Debian's kernel and headers"
  apt-get update -qq
  INITRD=No DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    qemu-system-x86 linux-image-amd64 linux-headers-amd64 busybox-static cpio xz-utils >/dev/null
fi
V=$(kver)
[ -n "$V" ] || { log "no kernel with headers under /lib/modules"; exit 1; }
log "kernel $V, work dir $work"

# 2. The module, built out of the source tree.
rm -rf "$work/mod" && mkdir -p "$work/mod"
cp -r "$repo"/kshim/Kbuild "$repo"/kshim/*.c "$repo"/kshim/*.h "$repo"/kshim/uapi "$work/mod/"
make -s -C "/lib/modules/$V/build" M="$work/mod" modules 2>&1 | grep -v 'Skipping BTF' || true
[ -f "$work/mod/sdp_kshim.ko" ] || { log "module build failed"; exit 1; }

# 3. The static guest programs (kshim-test, sdpcat) and the Wycheproof cases.
"$repo/kshim/test/build.sh" "$repo" "$work/kshim-test" "$work/sdpcat"
python3 "$repo/tests/kshim/wycheproof_gcm.py" "$repo/tests/vectors/wycheproof/aes_gcm_test.json" \
  "$work/wycheproof.txt"

# 4. Initramfs: busybox, the crypto modules gcm(aes) needs, the shim, the tests.
root="$work/root"
rm -rf "$root" && mkdir -p "$root"/{bin,mods,proc,sys,dev,tmp,lib/modules/$V}
cp /bin/busybox "$root/bin/busybox"
cp "$repo/kshim/guest/init" "$root/init"
cp "$work/kshim-test" "$root/bin/kshim-test"
cp "$work/sdpcat" "$root/bin/sdpcat"
cp "$repo/kshim/guest/engine.sh" "$root/engine.sh"
cp "$work/mod/sdp_kshim.ko" "$work/wycheproof.txt" "$root/"
: > "$root/deps.txt"
for m in gcm ctr ghash-generic aesni-intel tls; do
  modprobe -S "$V" --show-depends "$m" | awk '$1 == "insmod" { print $2 }'
done | awk '!seen[$0]++' | while read -r path; do
  base=$(basename "$path")
  case "$base" in
    *.ko.xz) xz -dc "$path" > "$root/mods/${base%.xz}"; base=${base%.xz} ;;
    *) cp "$path" "$root/mods/$base" ;;
  esac
  mkdir -p "$root/lib/modules/$V/kernel" && cp "$root/mods/$base" "$root/lib/modules/$V/kernel/"
  echo "$base" >> "$root/deps.txt"
done
cp "/lib/modules/$V"/modules.{order,builtin,builtin.modinfo} "$root/lib/modules/$V/" 2>/dev/null || true
depmod -b "$root" "$V"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$work/initramfs.gz"

# 5. The uncompressed kernel from the bzImage (qemu boots it directly under TCG).
if [ ! -s "$work/vmlinux-$V" ]; then
  off=$(python3 -c "import sys; print(open(sys.argv[1],'rb').read().find(b'\xfd7zXZ\x00'))" \
        "/boot/vmlinuz-$V")
  [ "$off" -ge 0 ] || { log "no XZ payload in /boot/vmlinuz-$V"; exit 1; }
  tail -c +$((off + 1)) "/boot/vmlinuz-$V" | xz -dc --single-stream > "$work/vmlinux-$V" 2>/dev/null || true
fi

# 6. Boot. Never -enable-kvm (this host's KVM cannot run a stock kernel); qemu
# exits 0 whatever happens, so the verdict is the guest's result line.
log "booting the guest"
timeout "${KSHIM_QEMU_TIMEOUT:-420}" qemu-system-x86_64 -accel tcg,thread=multi -cpu max -m 1024 \
  -smp 2 -nographic -no-reboot -kernel "$work/vmlinux-$V" -initrd "$work/initramfs.gz" \
  -append "console=ttyS0 quiet loglevel=4 oops=panic panic=-1 rdinit=/init ${KSHIM_APPEND:-}" \
  > "$work/console.log" 2>&1 || true
grep -E '^(KT |KSHIM-RESULT)' "$work/console.log" | tr -d '\r' || true
line=$(grep -a -o 'KSHIM-RESULT: [0-9]* passed, [0-9]* failed' "$work/console.log" | tail -1 || true)
if [ -z "$line" ]; then
  log "no result line from the guest; console tail:"
  tail -40 "$work/console.log"
  exit 1
fi
case "$line" in
  *" 0 failed") log "$line"; exit 0 ;;
  *) log "$line"; exit 1 ;;
esac
