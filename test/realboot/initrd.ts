// The initrd every real-boot test boots: the marker initrd of bench/lib/initrd.mjs (one newc
// writer for tests and bench) around Debian's static busybox from the fixture cache (see
// scripts/fetch-fixtures.sh).
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { FIXTURES } from "../qemu/fixtures.js";
import { markerInitrdBytes, type MarkerInitrdOptions } from "../../bench/lib/initrd.mjs";

export type { MarkerInitrdOptions };

/** Debian architecture names, as in the fixture cache (busybox/<arch>/busybox). */
export type DebianArch = "amd64" | "i386" | "arm64" | "armhf" | "riscv64";

/** The path of the static busybox for `arch`; throws, naming the fixture script, when absent. */
export function busyboxPath(arch: DebianArch): string {
  const p = join(FIXTURES, "busybox", arch, "busybox");
  if (!existsSync(p)) throw new Error(`missing fixture ${p}: run bash scripts/fetch-fixtures.sh`);
  return p;
}

/** The initrd as newc cpio bytes (uncompressed; the kernel accepts that as it is). */
export function markerInitrd(arch: DebianArch, options: MarkerInitrdOptions): Uint8Array {
  return markerInitrdBytes(readFileSync(busyboxPath(arch)), options);
}
