// The bzImage's kernel_info (boot protocol 2.15; Linux Documentation/arch/x86/boot.rst, "The
// kernel_info"): a read-only block in the protected-mode part of the image, at
// kernel_info_offset (setup header 0x268) "relative to the beginning of the kernel image"
// (the protected-mode code, i.e. after the setup_sects sectors).
//   0x0000 header         "LToP" (0x506f544c)
//   0x0004 size           bytes of kernel_info including the header (the fixed part)
//   0x0008 size_total     size plus the variable-size data after it
//   0x000C setup_type_max "the maximal allowed type for setup_data and setup_indirect structs"
// A field past `size` is absent (an older kernel_info), so setup_type_max is null then.
import { GuestImageError } from "../errors.js";
import { hex } from "../num.js";
import { readBytes, type ImageFile } from "../sources/source.js";
import type { BzImage } from "./bzimage.js";

export const KERNEL_INFO_MAGIC = 0x506f544c; // "LToP" little-endian
const FIXED_MIN = 12;
const SETUP_TYPE_MAX_END = 0x10;
/** A kernel_info larger than this is refused (Linux's is 16 bytes plus a few of variable data). */
const MAX_KERNEL_INFO = 1024 * 1024;

export interface KernelInfo {
  /** File offset of the block. */
  offset: number;
  size: number;
  size_total: number;
  setup_type_max: number | null;
}

/** kernel_info of a protocol ≥ 2.15 bzImage; null for older protocols or kernel_info_offset 0. */
export async function readKernelInfo(file: ImageFile, bz: BzImage): Promise<KernelInfo | null> {
  const rel = bz.header.kernel_info_offset;
  if (bz.version < 0x20f || !rel) return null;
  const image = file.name;
  const err = (code: "BAD_MAGIC" | "BAD_HEADER" | "TRUNCATED", field: string, msg: string) => new GuestImageError(code, msg, { image, field });
  const offset = bz.setupSize + rel;
  if (offset + FIXED_MIN > file.size) {
    throw err("TRUNCATED", "kernel_info_offset", `kernel_info_offset ${hex(rel)} puts kernel_info at file offset ${hex(offset)}, and its 12-byte header runs past the end of the file (${hex(file.size)} bytes)`);
  }
  const head = await readBytes(file, offset, Math.min(SETUP_TYPE_MAX_END, file.size - offset));
  const dv = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const magic = dv.getUint32(0, true);
  if (magic !== KERNEL_INFO_MAGIC) {
    throw err("BAD_MAGIC", "kernel_info.header", `kernel_info at file offset ${hex(offset)} (kernel_info_offset ${hex(rel)}) starts ${hex(magic)}, not "LToP" (${hex(KERNEL_INFO_MAGIC)})`);
  }
  const size = dv.getUint32(4, true);
  const sizeTotal = dv.getUint32(8, true);
  if (size < FIXED_MIN) throw err("BAD_HEADER", "kernel_info.size", `kernel_info.size ${hex(size)} is smaller than its own header, size and size_total fields (${FIXED_MIN} bytes)`);
  if (sizeTotal < size) throw err("BAD_HEADER", "kernel_info.size_total", `kernel_info.size_total ${hex(sizeTotal)} is smaller than kernel_info.size ${hex(size)}`);
  if (sizeTotal > MAX_KERNEL_INFO) throw err("BAD_HEADER", "kernel_info.size_total", `kernel_info.size_total ${hex(sizeTotal)} is larger than ${hex(MAX_KERNEL_INFO)}`);
  if (offset + sizeTotal > file.size) {
    throw err("TRUNCATED", "kernel_info.size_total", `kernel_info at file offset ${hex(offset)} with size_total ${hex(sizeTotal)} runs past the end of the file (${hex(file.size)} bytes)`);
  }
  const setupTypeMax = size >= SETUP_TYPE_MAX_END ? dv.getUint32(12, true) : null;
  return { offset, size, size_total: sizeTotal, setup_type_max: setupTypeMax };
}
