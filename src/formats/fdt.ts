// Flattened device tree header checks (Devicetree Specification v0.4, §5.2 "Header"; libfdt
// fdt.h, fdt.c fdt_check_header). A DTB passed as a module is placed verbatim, but only after its
// header passes the same check libfdt (and so U-Boot, QEMU, Linux) applies before reading it.
import { GuestImageError, type ErrorCode } from "../errors.js";
import { hex } from "../num.js";
import { readBytes, type ImageFile } from "../sources/source.js";
import type { ImageFormat } from "./format.js";

export const FDT_MAGIC = 0xd00dfeed; // big-endian at offset 0
export const FDT_HEADER_SIZE = 40;

export function isFdt(head: Uint8Array): boolean {
  return head.length >= 4 && new DataView(head.buffer, head.byteOffset, 4).getUint32(0, false) === FDT_MAGIC;
}

export interface FdtHeader {
  totalsize: number;
  off_dt_struct: number;
  off_dt_strings: number;
  off_mem_rsvmap: number;
  version: number;
  last_comp_version: number;
  boot_cpuid_phys: number;
  size_dt_strings: number;
  size_dt_struct: number;
}

/** libfdt fdt.h: the oldest version libfdt reads and the newest it writes (FDT_{FIRST,LAST}_SUPPORTED_VERSION). */
export const FDT_FIRST_SUPPORTED_VERSION = 2;
export const FDT_LAST_SUPPORTED_VERSION = 17;
/** libfdt's INT_MAX bound on totalsize (offsets are `int` inside libfdt). */
const FDT_MAX_TOTALSIZE = 0x7fffffff;

/**
 * Header size by version (libfdt fdt.h FDT_V1_SIZE…FDT_V17_SIZE): 7 words up to version 1,
 * boot_cpuid_phys from 2, size_dt_strings from 3, size_dt_struct from 17.
 */
export function fdtHeaderSize(version: number): number {
  return version <= 1 ? 28 : version <= 2 ? 32 : version <= 16 ? 36 : 40;
}

/**
 * The one device tree header check, used by every path that takes a DTB (modules, uImage
 * flat_dt payloads, bootLinux's parser). It is libfdt's fdt_check_header (dtc 1.6.1,
 * libfdt/fdt.c), rule for rule:
 *  - magic 0xd00dfeed;
 *  - FDT_FIRST_SUPPORTED_VERSION (2) ≤ version, last_comp_version ≤ FDT_LAST_SUPPORTED_VERSION
 *    (17), and version ≥ last_comp_version;
 *  - header size (by version) ≤ totalsize ≤ INT_MAX;
 *  - off_mem_rsvmap in [header size, totalsize];
 *  - the structure block [off_dt_struct, +size_dt_struct) inside [header size, totalsize]
 *    without wrapping (before version 17, which has no size_dt_struct, only its offset);
 *  - the strings block likewise (libfdt reads size_dt_strings whatever the version; so do we).
 * Plus what libfdt cannot see because it is not told the buffer's length: totalsize ≤ the file.
 * (libfdt's 8-byte alignment rule is about the buffer's address in memory; we copy, so it
 * never applies. Block alignment and overlap are the tree reader's business: src/fdt/parse.ts.)
 * `head` holds at least the first 40 bytes; `fileSize` is the whole file's (or blob's) length.
 */
export function checkFdtHeaderBytes(head: Uint8Array, fileSize: number, image: string): FdtHeader {
  const fail = (code: ErrorCode, field: string, msg: string): never => {
    throw new GuestImageError(code, msg, { image, field });
  };
  if (fileSize < FDT_HEADER_SIZE || head.length < FDT_HEADER_SIZE) {
    fail("TRUNCATED", "totalsize", `device tree is ${fileSize} bytes, shorter than its ${FDT_HEADER_SIZE}-byte header (no totalsize to read)`);
  }
  const dv = new DataView(head.buffer, head.byteOffset, FDT_HEADER_SIZE);
  const u = (o: number) => dv.getUint32(o, false);
  if (u(0) !== FDT_MAGIC) fail("BAD_MAGIC", "magic", `magic ${hex(u(0))} is not the FDT magic 0xd00dfeed`);
  const h: FdtHeader = {
    totalsize: u(4), off_dt_struct: u(8), off_dt_strings: u(12), off_mem_rsvmap: u(16), version: u(20),
    last_comp_version: u(24), boot_cpuid_phys: u(28), size_dt_strings: u(32), size_dt_struct: u(36),
  };
  if (h.version < FDT_FIRST_SUPPORTED_VERSION) {
    fail("UNSUPPORTED", "version", `version ${h.version} is older than ${FDT_FIRST_SUPPORTED_VERSION}, the oldest libfdt reads`);
  }
  if (h.last_comp_version > FDT_LAST_SUPPORTED_VERSION) {
    fail("UNSUPPORTED", "last_comp_version", `last_comp_version ${h.last_comp_version} says the tree cannot be read as version ${FDT_LAST_SUPPORTED_VERSION} or older`);
  }
  if (h.version < h.last_comp_version) {
    fail("BAD_HEADER", "version", `version ${h.version} is older than last_comp_version ${h.last_comp_version}`);
  }
  const hdr = fdtHeaderSize(h.version);
  if (h.totalsize < hdr) fail("BAD_HEADER", "totalsize", `totalsize ${hex(h.totalsize)} is smaller than the ${hdr}-byte header of version ${h.version}`);
  if (h.totalsize > FDT_MAX_TOTALSIZE) fail("TRUNCATED", "totalsize", `totalsize ${hex(h.totalsize)} is above ${hex(FDT_MAX_TOTALSIZE)} (libfdt's INT_MAX)`);
  if (h.totalsize > fileSize) fail("TRUNCATED", "totalsize", `totalsize ${hex(h.totalsize)} is larger than the file (${hex(fileSize)} bytes)`);
  const offset = (field: keyof FdtHeader) => {
    const off = h[field];
    if (off < hdr) fail("BAD_HEADER", field, `${field} ${hex(off)} lies inside the ${hdr}-byte header`);
    if (off > h.totalsize) fail("BAD_HEADER", field, `${field} ${hex(off)} runs past totalsize ${hex(h.totalsize)}`);
  };
  const block = (field: keyof FdtHeader, sizeField: keyof FdtHeader) => {
    offset(field);
    // Exact: both are < 2^32, so the sum is an exact double (libfdt checks the u32 wrap separately).
    const end = h[field] + h[sizeField];
    if (end > h.totalsize) fail("BAD_HEADER", sizeField, `${field} ${hex(h[field])} + ${sizeField} ${hex(h[sizeField])} runs past totalsize ${hex(h.totalsize)}`);
  };
  offset("off_mem_rsvmap");
  if (h.version < 17) offset("off_dt_struct");
  else block("off_dt_struct", "size_dt_struct");
  block("off_dt_strings", "size_dt_strings");
  return h;
}

export async function checkFdtHeader(file: ImageFile): Promise<FdtHeader> {
  const head = file.size < FDT_HEADER_SIZE ? new Uint8Array(0) : await readBytes(file, 0, FDT_HEADER_SIZE);
  return checkFdtHeaderBytes(head, file.size, file.name);
}

export const fdtFormat: ImageFormat = {
  name: "fdt",
  description: "a flattened device tree (DTB)",
  test: isFdt,
  notAKernel: "a device tree blob (DTB), not a kernel: load it as a module",
  checkModule: async (file) => {
    await checkFdtHeader(file);
  },
  inspect: async (file) => ({ fdt: await checkFdtHeader(file) }),
};
