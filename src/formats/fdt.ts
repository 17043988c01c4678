// Flattened device tree header checks (Devicetree Specification v0.4, §5.2 "Header"; libfdt
// fdt.h). A DTB passed as a module is placed verbatim, but only after its header proves it is
// one: magic, and every block inside totalsize, and totalsize inside the file.
import { GuestImageError } from "../errors.js";
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

export async function checkFdtHeader(file: ImageFile): Promise<FdtHeader> {
  const image = file.name;
  if (file.size < FDT_HEADER_SIZE) {
    throw new GuestImageError("TRUNCATED", `device tree is ${file.size} bytes, shorter than its ${FDT_HEADER_SIZE}-byte header (no totalsize to read)`, { image, field: "totalsize" });
  }
  const dv = new DataView((await readBytes(file, 0, FDT_HEADER_SIZE)).buffer);
  const u = (o: number) => dv.getUint32(o, false);
  if (u(0) !== FDT_MAGIC) throw new GuestImageError("BAD_MAGIC", `magic ${hex(u(0))} is not the FDT magic 0xd00dfeed`, { image, field: "magic" });
  const h: FdtHeader = {
    totalsize: u(4), off_dt_struct: u(8), off_dt_strings: u(12), off_mem_rsvmap: u(16), version: u(20),
    last_comp_version: u(24), boot_cpuid_phys: u(28), size_dt_strings: u(32), size_dt_struct: u(36),
  };
  if (h.totalsize > file.size) {
    throw new GuestImageError("TRUNCATED", `totalsize ${hex(h.totalsize)} is larger than the file (${hex(file.size)} bytes)`, { image, field: "totalsize" });
  }
  if (h.totalsize < FDT_HEADER_SIZE) {
    throw new GuestImageError("BAD_HEADER", `totalsize ${hex(h.totalsize)} is smaller than the header`, { image, field: "totalsize" });
  }
  const blocks: Array<[keyof FdtHeader, number]> = [["off_mem_rsvmap", 16], ["off_dt_struct", h.version >= 17 ? h.size_dt_struct : 4], ["off_dt_strings", h.version >= 3 ? h.size_dt_strings : 0]];
  for (const [field, len] of blocks) {
    const off = h[field];
    if (off < FDT_HEADER_SIZE || off + len > h.totalsize) {
      throw new GuestImageError("BAD_HEADER", `${field} ${hex(off)} (+${hex(len)}) is outside [${hex(FDT_HEADER_SIZE)}, totalsize ${hex(h.totalsize)})`, { image, field });
    }
  }
  return h;
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
