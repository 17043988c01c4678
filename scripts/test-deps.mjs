// What the test suite needs from the system, in one list: read by scripts/install-test-deps.sh
// (which installs it) and by scripts/run-tests.mjs (which checks it before running vitest, so a
// machine that lacks something gets one message naming everything missing and the one command
// that installs it, instead of dozens of unrelated test failures).
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** Debian packages, each with the commands (or files) the tests use from it. */
export const APT_PACKAGES = [
  { pkg: "binutils", why: "readelf/objdump: the reference ELF reader", provides: ["readelf", "objdump"] },
  { pkg: "binutils-aarch64-linux-gnu", why: "cross assembler/linker for ELF fixtures", provides: ["aarch64-linux-gnu-as"] },
  { pkg: "binutils-riscv64-linux-gnu", why: "cross assembler/linker for ELF fixtures", provides: ["riscv64-linux-gnu-as"] },
  { pkg: "binutils-arm-linux-gnueabihf", why: "cross assembler/linker for ELF fixtures", provides: ["arm-linux-gnueabihf-as"] },
  { pkg: "binutils-i686-linux-gnu", why: "cross assembler/linker for ELF and multiboot fixtures", provides: ["i686-linux-gnu-as"] },
  { pkg: "binutils-mips-linux-gnu", why: "big-endian ELF fixtures", provides: ["mips-linux-gnu-as"] },
  { pkg: "binutils-s390x-linux-gnu", why: "s390x RELATIVE relocation fixtures", provides: ["s390x-linux-gnu-as"] },
  { pkg: "binutils-powerpc-linux-gnu", why: "ppc RELATIVE relocation fixtures", provides: ["powerpc-linux-gnu-as"] },
  { pkg: "binutils-powerpc64-linux-gnu", why: "ppc64 RELATIVE relocation fixtures", provides: ["powerpc64-linux-gnu-as"] },
  { pkg: "binutils-powerpc64le-linux-gnu", why: "ppc64le RELATIVE relocation fixtures", provides: ["powerpc64le-linux-gnu-as"] },
  { pkg: "binutils-sparc64-linux-gnu", why: "sparc64 RELATIVE relocation fixtures", provides: ["sparc64-linux-gnu-as"] },
  { pkg: "cpio", why: "reference CPIO writer/reader", provides: ["cpio"] },
  { pkg: "device-tree-compiler", why: "dtc and libfdt's fdtget: device tree references", provides: ["dtc", "fdtget"] },
  { pkg: "python3", why: "ctypes → libfdt.so.1 (libfdt1, a dtc dependency): libfdt's fdt_check_header as the DTB header oracle", provides: ["python3"] },
  { pkg: "chromium", why: "headless browser for the browser and e2e tests", provides: ["chromium"] },
  { pkg: "qemu-system-arm", why: "QEMU 7.2: reference loader and real-boot machine (arm, aarch64)", provides: ["qemu-system-aarch64", "qemu-system-arm"] },
  { pkg: "qemu-system-misc", why: "QEMU 7.2: riscv64, m68k, s390x", provides: ["qemu-system-riscv64"] },
  { pkg: "qemu-system-x86", why: "QEMU 7.2: x86_64, i386", provides: ["qemu-system-x86_64"] },
  { pkg: "opensbi", why: "RISC-V firmware for the riscv64 real boots", provides: ["/usr/share/qemu/opensbi-riscv64-generic-fw_dynamic.bin"] },
  { pkg: "seabios", why: "BIOS for v86's own boot path (benchmark baseline)", provides: ["/usr/share/seabios/bios.bin"] },
  { pkg: "gdb-multiarch", why: "sets CPU state over QEMU's gdbstub in the real-boot tests", provides: ["gdb-multiarch"] },
  { pkg: "u-boot-tools", why: "mkimage: uImage fixtures", provides: ["mkimage"] },
  { pkg: "gzip", why: "reference gzip", provides: ["gzip"] },
  { pkg: "xz-utils", why: "reference xz/lzma", provides: ["xz"] },
  { pkg: "zstd", why: "reference zstd", provides: ["zstd"] },
  { pkg: "lz4", why: "reference lz4", provides: ["lz4"] },
  { pkg: "lzop", why: "reference lzo", provides: ["lzop"] },
  { pkg: "bzip2", why: "reference bzip2", provides: ["bzip2"] },
  { pkg: "grub-pc-bin", why: "GRUB 2 (BIOS): the reference Multiboot 2 loader the real-boot tests compare with", provides: ["/usr/lib/grub/i386-pc/multiboot2.mod"] },
  { pkg: "grub-common", why: "grub-mkrescue: makes the GRUB ISO for the Multiboot 2 oracle boots", provides: ["grub-mkrescue"] },
  { pkg: "xorriso", why: "grub-mkrescue writes its ISO with xorriso", provides: ["xorriso"] },
  { pkg: "mtools", why: "grub-mkrescue builds its EFI image with mtools", provides: ["mformat"] },
  { pkg: "debian-archive-keyring", why: "verifies the Debian packages the fixture script downloads", provides: ["/usr/share/keyrings/debian-archive-keyring.gpg"] },
];

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
export const FIXTURES = process.env.GUEST_IMAGE_FIXTURES ?? join(homedir(), ".cache", "guest-image-fixtures");
export const INSTALL_COMMAND = "sudo bash scripts/install-test-deps.sh";

function onPath(cmd) {
  if (cmd.startsWith("/")) return existsSync(cmd);
  return (process.env.PATH ?? "").split(delimiter).some((d) => d && existsSync(join(d, cmd)));
}

/** The fixture recipe the script makes now (its RECIPE=N line). */
function recipe() {
  const m = /^RECIPE=(\d+)$/m.exec(readFileSync(join(ROOT, "scripts", "fetch-fixtures.sh"), "utf8"));
  return m ? m[1] : "?";
}

/** Everything missing, as lines for a person; empty when the machine has it all. */
export function missingTestDeps() {
  const out = [];
  for (const { pkg, provides, why } of APT_PACKAGES) {
    const gone = provides.filter((c) => !onPath(c));
    if (gone.length) out.push(`${gone.join(", ")} (Debian package ${pkg}: ${why})`);
  }
  const stamp = join(FIXTURES, "fixtures.stamp");
  if (!existsSync(stamp)) out.push(`fixtures in ${FIXTURES} (Debian kernels and busybox: scripts/fetch-fixtures.sh)`);
  else if (readFileSync(stamp, "utf8").split("\n")[0] !== `recipe ${recipe()}`) out.push(`fixtures in ${FIXTURES} are from an older recipe (scripts/fetch-fixtures.sh makes recipe ${recipe()})`);
  return out;
}

// `node scripts/test-deps.mjs packages` prints the package names (install-test-deps.sh uses it).
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  if (process.argv[2] === "packages") console.log(APT_PACKAGES.map((p) => p.pkg).join("\n"));
  else {
    const m = missingTestDeps();
    if (m.length) { console.log(`missing:\n  ${m.join("\n  ")}`); process.exit(1); }
    console.log("all test dependencies present");
  }
}
