#!/usr/bin/env bash
# Real-kernel fixtures for the QEMU conformance tests (test/qemu/), the real-boot tests
# (test/realboot/) and the v86 tests (test/v86/).
#
# Fetches Debian kernels and busybox with `apt-get download`, through the Debian archive this
# machine's apt is configured with (scripts/apt-sources.mjs reads /etc/apt/sources.list{,.d}; no
# mirror host is named here), into a cache OUTSIDE the repo, and derives the other fixtures:
#
#   amd64/bzImage            bookworm linux-image-amd64's /boot/vmlinuz-*   (x86 bzImage, xz payload)
#   i386/bzImage             bookworm linux-image-686's /boot/vmlinuz-*     (32-bit, non-PAE: v86)
#   arm64/Image              bookworm linux-image-arm64's /boot/vmlinuz-*   (arm64 Image, also a PE/EFI app)
#   armhf/zImage             bookworm linux-image-armmp's /boot/vmlinuz-*   (ARM zImage, start 0)
#   riscv64/Image            trixie linux-image-riscv64's /boot/vmlinux-*   (bookworm has no riscv64
#                            kernel; despite the name an uncompressed EFI-stub RISC-V Image)
#   busybox/<arch>/busybox   busybox-static's /bin/busybox for amd64, i386, arm64, armhf (bookworm)
#                            and riscv64 (trixie): the userspace of the real-boot initrds
#   efi/linuxaa64.efi.stub   bookworm systemd-boot-efi:arm64's systemd-stub (the arm64 UKI tests build on it)
#   arm64/Image.gz           gzip -9 -n Image
#   arm64/uImage             mkimage -A arm64 -T kernel        -C none -a 0x40200000 -e 0x40200000
#   arm64/uImage.gz          mkimage -A arm64 -T kernel        -C gzip (payload Image.gz), same addresses
#   arm64/uImage-noload      mkimage -A arm64 -T kernel_noload -C none -a 0 -e 0
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
#        DEBIAN_MIRROR=… DEBIAN_SECURITY_MIRROR=…  (only if this machine's apt has no Debian archive)
#
# Needs a Debian system (apt-get, dpkg-deb, debian-archive-keyring) plus node, u-boot-tools
# (mkimage), device-tree-compiler (dtc), cpio and gzip. Network only through apt, with private apt
# states (lists, cache, sources, no dpkg status), so the host's package lists and dpkg database are
# not touched. Works as root (CI) and as an ordinary user.
set -euo pipefail

CACHE="${GUEST_IMAGE_FIXTURES:-${HOME:?}/.cache/guest-image-fixtures}"
KEYRING="${DEBIAN_KEYRING:-/usr/share/keyrings/debian-archive-keyring.gpg}"
# Bump when the recipe below changes, so existing caches are rebuilt.
RECIPE=3
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

for tool in node apt-get apt-cache dpkg-deb mkimage dtc cpio gzip sha256sum; do
  command -v "$tool" >/dev/null || die "$tool not found (apt-get install u-boot-tools device-tree-compiler cpio)"
done
[ -r "$KEYRING" ] || die "Debian archive keyring $KEYRING not found (apt-get install debian-archive-keyring)"

start=$(date +%s)
mkdir -p "$CACHE"
WORK=$(mktemp -d "$CACHE/.work.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# ── the Debian archive this machine's apt uses ──
SOURCES=$(node "$(dirname "$0")/apt-sources.mjs") || die "cannot find the Debian archive in this machine's apt configuration"
MIRROR=$(awk '$1 == "archive" {print $2}' <<<"$SOURCES")
SECURITY_MIRROR=$(awk '$1 == "security" {print $2}' <<<"$SOURCES")

# ── private apt states: one per suite, nothing shared with the host ──
# apt_state NAME SUITE ARCHES: makes $WORK/apt-NAME and sets APT_OPTS_<NAME> (an array).
apt_state() {
  local name=$1 suite=$2 arches=$3 dir="$WORK/apt-$1"
  mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial" "$dir/etc/preferences.d" "$dir/etc/apt.conf.d"
  local -n opts="APT_OPTS_$name"
  opts=(
    -o "APT::Architecture=${arches%%,*}" -o "APT::Architectures=$arches"
    -o "Dir::State=$dir" -o "Dir::State::Lists=$dir/lists" -o "Dir::State::Status=/dev/null"
    -o "Dir::Cache=$dir/cache" -o "Dir::Etc::SourceList=$dir/sources.list" -o "Dir::Etc::SourceParts=-"
    -o "Dir::Etc::Preferences=$dir/etc/preferences" -o "Dir::Etc::PreferencesParts=$dir/etc/preferences.d"
    -o "Dir::Etc::Parts=$dir/etc/apt.conf.d"
    -o "Acquire::Languages=none" -o "Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled=false"
    -o "Debug::NoLocking=1" -o "APT::Get::List-Cleanup=false"
  )
  # As root, apt would download as _apt, which cannot reach a cache under /root: stay root.
  [ "$(id -u)" = 0 ] && opts+=(-o "APT::Sandbox::User=root")
  write_sources() { # $1: "full" (suite, -updates, -security) or "plain" (the suite only)
    {
      echo "deb [signed-by=$KEYRING] $MIRROR $suite main"
      if [ "$1" = full ]; then
        echo "deb [signed-by=$KEYRING] $MIRROR $suite-updates main"
        [ -n "$SECURITY_MIRROR" ] && echo "deb [signed-by=$KEYRING] $SECURITY_MIRROR $suite-security main"
      fi
    } >"$dir/sources.list"
  }
  write_sources full
  if ! apt-get "${opts[@]}" -q update >"$dir/update.log" 2>&1 || grep -qE '^(E:|W: Failed)' "$dir/update.log"; then
    # A mirror mid-sync gives "Hash Sum mismatch" on -security or -updates: the release suite is enough.
    say "apt-get update of $suite with -updates/-security failed ($(grep -m1 -E '^(E|W):' "$dir/update.log" || true)); using plain $suite"
    rm -rf "$dir/lists"; mkdir -p "$dir/lists/partial"
    write_sources plain
    apt-get "${opts[@]}" -q update >"$dir/update.log" 2>&1 || { cat "$dir/update.log" >&2; die "apt-get update of $suite failed"; }
  fi
}
declare -a APT_OPTS_bookworm APT_OPTS_trixie
say "Debian archive from this machine's apt configuration: $MIRROR${SECURITY_MIRROR:+ (security: $SECURITY_MIRROR)}"
apt_state bookworm bookworm amd64,arm64,armhf,i386
apt_state trixie trixie riscv64
mkdir -p "$WORK/debs"

# download STATE PACKAGE ARCH: the .deb's path on stdout.
download() {
  local -n opts="APT_OPTS_$1"
  say "downloading $2:$3 ($1)"
  (cd "$WORK/debs" && apt-get "${opts[@]}" -q download "$2:$3" >>"$WORK/download.log" 2>&1) \
    || { cat "$WORK/download.log" >&2; die "apt-get download $2:$3 from $1 failed"; }
  local deb
  deb=$(ls "$WORK/debs/${2}_"*"_$3.deb" 2>/dev/null | head -1)
  [ -n "$deb" ] || die "apt-get download $2:$3 left no .deb"
  du -b "$deb" | awk '{print $1}' >>"$WORK/deb-bytes"
  echo "$deb"
}

# linux-image-<flavour> is a metapackage: its Depends names the versioned image package.
resolve() { # $1 state, $2 metapackage, $3 arch → versioned package name
  local -n opts="APT_OPTS_$1"
  apt-cache "${opts[@]}" depends "$2:$3" 2>/dev/null | awk '/^  Depends: linux-image-[0-9]/ {print $2; exit}' | sed 's/:.*//'
}
fetch_kernel() { # $1 state, $2 metapackage, $3 arch, $4 file glob inside the .deb, $5 output path
  local pkg deb
  pkg=$(resolve "$1" "$2" "$3")
  [ -n "$pkg" ] || die "cannot resolve $2:$3 ($1) to a versioned linux-image package"
  deb=$(download "$1" "$pkg" "$3")
  rm -rf "$WORK/x"; mkdir "$WORK/x"
  dpkg-deb -x "$deb" "$WORK/x"
  local files=("$WORK"/x/$4)
  [ -f "${files[0]}" ] || die "$pkg has no /$4"
  mkdir -p "$(dirname "$5")"
  cp "${files[0]}" "$5"
  echo "$1 $2:$3 $pkg $(basename "${files[0]}")" >>"$WORK/out/SOURCES"
  rm -rf "$WORK/x" "$deb"
}
fetch_busybox() { # $1 state, $2 arch
  local deb
  deb=$(download "$1" busybox-static "$2")
  rm -rf "$WORK/x"; mkdir "$WORK/x"
  dpkg-deb -x "$deb" "$WORK/x"
  local bin="$WORK/x/bin/busybox" # bookworm; trixie (merged /usr) ships /usr/bin/busybox
  [ -f "$bin" ] || bin="$WORK/x/usr/bin/busybox"
  [ -f "$bin" ] || die "busybox-static:$2 has no /bin/busybox or /usr/bin/busybox"
  mkdir -p "$OUT/busybox/$2"
  cp "$bin" "$OUT/busybox/$2/busybox"
  chmod 755 "$OUT/busybox/$2/busybox"
  echo "$1 busybox-static:$2 $(basename "$deb")" >>"$WORK/out/SOURCES"
  rm -rf "$WORK/x" "$deb"
}

OUT="$WORK/out"
mkdir -p "$OUT"
fetch_kernel bookworm linux-image-amd64 amd64 'boot/vmlinuz-*' "$OUT/amd64/bzImage"
fetch_kernel bookworm linux-image-686 i386 'boot/vmlinuz-*' "$OUT/i386/bzImage"
fetch_kernel bookworm linux-image-arm64 arm64 'boot/vmlinuz-*' "$OUT/arm64/Image"
fetch_kernel bookworm linux-image-armmp armhf 'boot/vmlinuz-*' "$OUT/armhf/zImage"
fetch_kernel trixie linux-image-riscv64 riscv64 'boot/vmlinux-*' "$OUT/riscv64/Image"
for arch in amd64 i386 arm64 armhf; do fetch_busybox bookworm "$arch"; done
fetch_busybox trixie riscv64
deb=$(download bookworm systemd-boot-efi arm64)
rm -rf "$WORK/x"; mkdir "$WORK/x"
dpkg-deb -x "$deb" "$WORK/x"
[ -f "$WORK/x/usr/lib/systemd/boot/efi/linuxaa64.efi.stub" ] || die "systemd-boot-efi:arm64 has no linuxaa64.efi.stub"
mkdir -p "$OUT/efi"
cp "$WORK/x/usr/lib/systemd/boot/efi/linuxaa64.efi.stub" "$OUT/efi/linuxaa64.efi.stub"
echo "bookworm systemd-boot-efi:arm64 $(basename "$deb")" >>"$WORK/out/SOURCES"
rm -rf "$WORK/x" "$deb"

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
lists=$(du -sbc "$WORK"/apt-*/lists | awk 'END {print $1}')
say "made in $(( $(date +%s) - start )) s, downloaded $((debs / 1000000)) MB of .debs and $((lists / 1000000)) MB of package lists; cache $CACHE:"
cat "$CACHE/SOURCES" >&2
sed 1d "$STAMP" | awk '{print $2}' | while read -r f; do printf '  %-22s %10d bytes\n' "$f" "$(stat -c %s "$CACHE/$f")"; done
