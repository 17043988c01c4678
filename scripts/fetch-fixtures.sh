#!/usr/bin/env bash
# Real-kernel fixtures for the QEMU conformance tests (test/qemu/).
#
# Fetches Debian 12 (bookworm) kernels with `apt-get download` into a cache OUTSIDE the repo and
# derives the other fixtures from them:
#
#   amd64/bzImage            linux-image-amd64's /boot/vmlinuz-*     (x86 bzImage)
#   arm64/Image              linux-image-arm64's /boot/vmlinuz-*     (arm64 Image, also a PE/EFI app)
#   arm64/Image.gz           gzip -9 -n Image
#   arm64/uImage             mkimage -A arm64 -T kernel        -C none -a 0x40200000 -e 0x40200000
#   arm64/uImage.gz          mkimage -A arm64 -T kernel        -C gzip (payload Image.gz), same addresses
#   arm64/uImage-noload      mkimage -A arm64 -T kernel_noload -C none -a 0 -e 0
#   armhf/zImage             linux-image-armmp's /boot/vmlinuz-*     (ARM zImage, start 0)
#   armhf/uImage             mkimage -A arm   -T kernel        -C none -a 0x40008000 -e 0x40008000 (payload zImage)
#   initrd/initrd.cpio       a tiny hand-made tree, cpio --reproducible -H newc
#   initrd/initrd.cpio.gz    gzip -9 -n initrd.cpio
#   initrd/uInitrd           mkimage -A arm64 -T ramdisk -C none -a 0 -e 0 (payload initrd.cpio)
#   dtb/tiny-arm.dtb         dtc from a small .dts (what QEMU's arm boot code needs: cells, /chosen, /memory)
#   dtb/tiny-arm.dts         its source
#
# Usage: bash scripts/fetch-fixtures.sh         (idempotent: does nothing when the cache checks out)
#        GUEST_IMAGE_FIXTURES=/some/dir bash scripts/fetch-fixtures.sh
#        FORCE=1 bash scripts/fetch-fixtures.sh (fetch again)
#
# Needs a Debian-like system (apt-get, dpkg-deb) plus u-boot-tools (mkimage), device-tree-compiler
# (dtc), cpio and gzip. Network only through apt, with a private apt state (lists, cache, sources,
# no dpkg status), so the host's apt configuration and package lists are not touched. Works as
# root (CI) and as an ordinary user.
set -euo pipefail

CACHE="${GUEST_IMAGE_FIXTURES:-${HOME:?}/.cache/guest-image-fixtures}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SECURITY_MIRROR="${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
KEYRING="${DEBIAN_KEYRING:-/usr/share/keyrings/debian-archive-keyring.gpg}"
# Bump when the recipe below changes, so existing caches are rebuilt.
RECIPE=1
STAMP="$CACHE/fixtures.stamp"

export SOURCE_DATE_EPOCH=0 LC_ALL=C TZ=UTC

say() { printf 'fetch-fixtures: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# ── the cache already checks out: nothing to do ──
stamp_ok() {
  [ -f "$STAMP" ] || return 1
  [ "$(sed -n 1p "$STAMP")" = "recipe $RECIPE" ] || return 1
  (cd "$CACHE" && sed 1d "$STAMP" | sha256sum --quiet --strict -c - >/dev/null 2>&1)
}
if [ -z "${FORCE:-}" ] && stamp_ok; then
  say "cache $CACHE is complete (recipe $RECIPE), nothing to do"
  sed 1d "$STAMP" | awk '{print $2}' | while read -r f; do printf '  %-22s %10d bytes\n' "$f" "$(stat -c %s "$CACHE/$f")"; done
  exit 0
fi

for tool in apt-get apt-cache dpkg-deb mkimage dtc cpio gzip sha256sum; do
  command -v "$tool" >/dev/null || die "$tool not found (apt-get install u-boot-tools device-tree-compiler cpio)"
done
[ -r "$KEYRING" ] || die "Debian archive keyring $KEYRING not found (apt-get install debian-archive-keyring)"

start=$(date +%s)
mkdir -p "$CACHE"
WORK=$(mktemp -d "$CACHE/.work.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# ── private apt state: amd64 + arm64 + armhf package lists, nothing shared with the host ──
APT="$WORK/apt"
mkdir -p "$APT/lists/partial" "$APT/cache/archives/partial" "$APT/etc/preferences.d" "$APT/etc/apt.conf.d" "$WORK/debs"
write_sources() { # $1: "full" (bookworm, -updates, -security) or "plain" (bookworm only)
  {
    echo "deb [signed-by=$KEYRING] $MIRROR bookworm main"
    if [ "$1" = full ]; then
      echo "deb [signed-by=$KEYRING] $MIRROR bookworm-updates main"
      echo "deb [signed-by=$KEYRING] $SECURITY_MIRROR bookworm-security main"
    fi
  } >"$APT/sources.list"
}
apt_opts=(
  -o "APT::Architecture=amd64" -o "APT::Architectures=amd64,arm64,armhf"
  -o "Dir::State=$APT" -o "Dir::State::Lists=$APT/lists" -o "Dir::State::Status=/dev/null"
  -o "Dir::Cache=$APT/cache" -o "Dir::Etc::SourceList=$APT/sources.list" -o "Dir::Etc::SourceParts=-"
  -o "Dir::Etc::Preferences=$APT/etc/preferences" -o "Dir::Etc::PreferencesParts=$APT/etc/preferences.d"
  -o "Dir::Etc::Parts=$APT/etc/apt.conf.d"
  -o "Acquire::Languages=none" -o "Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled=false"
  -o "Debug::NoLocking=1" -o "APT::Get::List-Cleanup=false"
)
# As root, apt would download as _apt, which cannot reach a cache under /root: stay root.
[ "$(id -u)" = 0 ] && apt_opts+=(-o "APT::Sandbox::User=root")

write_sources full
if ! apt-get "${apt_opts[@]}" -q update >"$WORK/update.log" 2>&1 || grep -qE '^(E:|W: Failed)' "$WORK/update.log"; then
  # A mirror mid-sync gives "Hash Sum mismatch" on -security or -updates: the release suite is enough.
  say "apt-get update with -updates/-security failed ($(grep -m1 -E '^(E|W):' "$WORK/update.log" || true)); using plain bookworm"
  rm -rf "$APT/lists"; mkdir -p "$APT/lists/partial"
  write_sources plain
  apt-get "${apt_opts[@]}" -q update >"$WORK/update.log" 2>&1 || { cat "$WORK/update.log" >&2; die "apt-get update failed"; }
fi

# linux-image-<flavour> is a metapackage: its Depends names the versioned image package.
resolve() { # $1 metapackage, $2 arch → versioned package name
  apt-cache "${apt_opts[@]}" depends "$1:$2" 2>/dev/null | awk '/^  Depends: linux-image-[0-9]/ {print $2; exit}' | sed 's/:.*//'
}
fetch_kernel() { # $1 metapackage, $2 arch, $3 output path
  local pkg
  pkg=$(resolve "$1" "$2")
  [ -n "$pkg" ] || die "cannot resolve $1:$2 to a versioned linux-image package"
  say "downloading $pkg:$2"
  (cd "$WORK/debs" && apt-get "${apt_opts[@]}" -q download "$pkg:$2" >>"$WORK/download.log" 2>&1) \
    || { cat "$WORK/download.log" >&2; die "apt-get download $pkg:$2 failed"; }
  local deb
  deb=$(ls "$WORK/debs/${pkg}_"*"_$2.deb")
  du -b "$deb" | awk '{print $1}' >>"$WORK/deb-bytes"
  rm -rf "$WORK/x"; mkdir "$WORK/x"
  dpkg-deb -x "$deb" "$WORK/x"
  local vmlinuz=("$WORK"/x/boot/vmlinuz-*)
  [ -f "${vmlinuz[0]}" ] || die "$pkg has no /boot/vmlinuz-*"
  mkdir -p "$(dirname "$3")"
  cp "${vmlinuz[0]}" "$3"
  echo "$1:$2 $pkg $(basename "${vmlinuz[0]}")" >>"$WORK/out/SOURCES"
  rm -rf "$WORK/x" "$deb"
}

OUT="$WORK/out"
mkdir -p "$OUT"
fetch_kernel linux-image-amd64 amd64 "$OUT/amd64/bzImage"
fetch_kernel linux-image-arm64 arm64 "$OUT/arm64/Image"
fetch_kernel linux-image-armmp armhf "$OUT/armhf/zImage"

# ── derived fixtures ──
mk() { mkimage "$@" >/dev/null; }
gzip -9 -n -c "$OUT/arm64/Image" >"$OUT/arm64/Image.gz"
mk -A arm64 -O linux -T kernel -C none -a 0x40200000 -e 0x40200000 -n "guest-image arm64" -d "$OUT/arm64/Image" "$OUT/arm64/uImage"
mk -A arm64 -O linux -T kernel -C gzip -a 0x40200000 -e 0x40200000 -n "guest-image arm64 gz" -d "$OUT/arm64/Image.gz" "$OUT/arm64/uImage.gz"
mk -A arm64 -O linux -T kernel_noload -C none -a 0 -e 0 -n "guest-image arm64 noload" -d "$OUT/arm64/Image" "$OUT/arm64/uImage-noload"
mk -A arm -O linux -T kernel -C none -a 0x40008000 -e 0x40008000 -n "guest-image armhf" -d "$OUT/armhf/zImage" "$OUT/armhf/uImage"

# A tiny initrd: a few directories and a shell-script /init (it is never run, only placed).
tree="$WORK/initrd"
mkdir -p "$tree"/{bin,dev,proc,sys,etc}
printf '#!/bin/sh\necho "guest-image test initrd"\nexec /bin/sh\n' >"$tree/init"
printf 'guest-image\n' >"$tree/etc/hostname"
chmod 755 "$tree/init"
find "$tree" -exec touch -h -d @0 {} +
mkdir -p "$OUT/initrd"
(cd "$tree" && find . -mindepth 1 | sort | cpio --quiet --reproducible -o -H newc -R 0:0 >"$OUT/initrd/initrd.cpio")
gzip -9 -n -c "$OUT/initrd/initrd.cpio" >"$OUT/initrd/initrd.cpio.gz"
mk -A arm64 -O linux -T ramdisk -C none -a 0 -e 0 -n "guest-image initrd" -d "$OUT/initrd/initrd.cpio" "$OUT/initrd/uInitrd"

# A small device tree with what QEMU's arm boot code needs (#address-cells/#size-cells at /,
# /chosen, /memory); QEMU rewrites /memory and /chosen in its copy.
mkdir -p "$OUT/dtb"
cat >"$WORK/tiny-arm.dts" <<'EOF'
/dts-v1/;
/ {
	compatible = "linux,dummy-virt";
	model = "guest-image test tree";
	#address-cells = <2>;
	#size-cells = <2>;
	chosen { stdout-path = "/pl011@9000000"; };
	memory@40000000 { device_type = "memory"; reg = <0x0 0x40000000 0x0 0x1000000>; };
	pl011@9000000 { compatible = "arm,pl011", "arm,primecell"; reg = <0x0 0x09000000 0x0 0x1000>; };
};
EOF
dtc -q -I dts -O dtb -o "$OUT/dtb/tiny-arm.dtb" "$WORK/tiny-arm.dts"
cp "$WORK/tiny-arm.dts" "$OUT/dtb/tiny-arm.dts"

# ── publish: replace the cache's files, then write the stamp (last, so a partial run never stamps) ──
rm -f "$STAMP"
(cd "$OUT" && find . -type f | sed 's|^\./||' | sort) >"$WORK/files"
while read -r f; do mkdir -p "$CACHE/$(dirname "$f")"; mv -f "$OUT/$f" "$CACHE/$f"; done <"$WORK/files"
{ echo "recipe $RECIPE"; (cd "$CACHE" && grep -v '^SOURCES$' "$WORK/files" | xargs sha256sum); } >"$STAMP.tmp"
mv "$STAMP.tmp" "$STAMP"

debs=$(awk '{s+=$1} END {print s+0}' "$WORK/deb-bytes")
lists=$(du -sb "$APT/lists" | awk '{print $1}')
say "made in $(( $(date +%s) - start )) s, downloaded $((debs / 1000000)) MB of .debs and $((lists / 1000000)) MB of package lists; cache $CACHE:"
cat "$CACHE/SOURCES" >&2
sed 1d "$STAMP" | awk '{print $2}' | while read -r f; do printf '  %-22s %10d bytes\n' "$f" "$(stat -c %s "$CACHE/$f")"; done
