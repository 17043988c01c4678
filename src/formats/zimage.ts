// ARM (32-bit) zImage: the self-decompressing Linux kernel. Its header is a table of words at
// 0x24 written by arch/arm/boot/compressed/head.S ("Magic numbers to help the loader"), stored
// little-endian (vmlinux.lds byte-swaps them for BE8 kernels, asm/image.h ZIMAGE_MAGIC):
//   0x24 u32 magic 0x016f2818
//   0x28 u32 start: absolute load/run address, or 0 when the zImage is position independent
//   0x2c u32 end: end of the zImage (its _edata, link-relative), so end − start is its size
//   0x30 u32 endianness flag: the word 0x04030201 in the kernel's own byte order (absent in
//        kernels older than the flag, where code sits there)
// Documentation/arch/arm/booting.rst, "Calling the kernel image": enter at the image's first byte
// with r0 = 0, r1 = machine type, r2 = ATAGS/DTB; "Despite the ability to place zImage anywhere
// within memory, convention has it that it is loaded at the base of physical RAM plus an offset
// of 0x8000".
import { GuestImageError } from "../errors.js";
import { alignUp, hex } from "../num.js";
import type { LoadPlan } from "../plan.js";
import { readBytes, type ImageFile } from "../sources/source.js";
import { FDT_MAGIC } from "./fdt.js";
import type { FormatContext, ImageFormat } from "./format.js";

/** head.S / asm/image.h ARM_ZIMAGE_MAGIC1, at offset 0x24. */
export const ZIMAGE_MAGIC = 0x016f2818;
const MAGIC_OFFSET = 0x24;
/** The header words up to and including `end`. */
const HEADER_END = 0x30;
/** head.S: ".word 0x04030201 @ endianness flag" — read little-endian, a little-endian kernel's. */
const ENDIAN_FLAG_LE = 0x04030201;
/** The same word written by a big-endian (BE8) kernel, read little-endian. */
const ENDIAN_FLAG_BE = 0x01020304;
/**
 * The conventional offset from the base of RAM (booting.rst; libsel4vm and GRUB use it too).
 * QEMU 7.2 loads a zImage at RAM base + 0x10000 instead (it does not parse the header).
 */
export const ZIMAGE_RAM_OFFSET = 0x8000;
/** A 32-bit ARM kernel starts with the MMU off, so the zImage must lie below 4 GiB. */
const FOUR_GIB = 0x1_0000_0000;

export interface ZImageHeader {
  magic: number;
  start: number;
  end: number;
  /** The word at 0x30, if the file has one. */
  endian_flag: number | null;
  endian: "little" | "big" | "unknown";
  /** An FDT header sits right after the zImage proper (CONFIG_ARM_APPENDED_DTB). */
  appended_dtb: boolean;
}

/** What a zImage reports in `kernel_image_arch`. */
export interface ZImageArch {
  format: "zimage";
  /** The image's first byte (booting.rst). */
  entry: bigint;
  start: number;
  end: number;
  position_independent: boolean;
  endian: "little" | "unknown";
  endian_flag: number | null;
  appended_dtb: boolean;
}

export interface ZImageResult {
  format: "zimage";
  entry: bigint;
  arch: ZImageArch;
}

const u32le = (h: Uint8Array, o: number) => new DataView(h.buffer, h.byteOffset, h.byteLength).getUint32(o, true);

export function isZImage(head: Uint8Array): boolean {
  return head.length >= HEADER_END && u32le(head, MAGIC_OFFSET) === ZIMAGE_MAGIC;
}

/** Reads the header and checks end against start and the file. */
export async function readZImageHeader(file: ImageFile): Promise<ZImageHeader> {
  const image = file.name;
  if (file.size < HEADER_END) {
    throw new GuestImageError("TRUNCATED", `file is ${file.size} bytes, too short for the zImage header words at 0x24..0x30`, { image, field: "magic" });
  }
  const head = await readBytes(file, 0, Math.min(file.size, HEADER_END + 4));
  const magic = u32le(head, MAGIC_OFFSET);
  if (magic !== ZIMAGE_MAGIC) throw new GuestImageError("BAD_MAGIC", `magic ${hex(magic)} at 0x24 is not the zImage magic ${hex(ZIMAGE_MAGIC)}`, { image, field: "magic" });
  const start = u32le(head, 0x28);
  const end = u32le(head, 0x2c);
  if (end < start) {
    throw new GuestImageError("BAD_HEADER", `end ${hex(end)} is below start ${hex(start)}`, { image, field: "end" });
  }
  const size = end - start;
  // The header words are part of the zImage they describe.
  if (size < HEADER_END) {
    throw new GuestImageError("BAD_HEADER", `end ${hex(end)} − start ${hex(start)} = ${hex(size)} is smaller than the zImage's own header (${hex(HEADER_END)} bytes)`, { image, field: "end" });
  }
  if (size > file.size) {
    throw new GuestImageError("TRUNCATED", `end ${hex(end)} − start ${hex(start)} = ${hex(size)} bytes, but the file has only ${hex(file.size)}`, { image, field: "end" });
  }
  const endian_flag = head.length >= HEADER_END + 4 ? u32le(head, HEADER_END) : null;
  const endian = endian_flag === ENDIAN_FLAG_LE ? "little" : endian_flag === ENDIAN_FLAG_BE ? "big" : "unknown";
  let appended_dtb = false;
  if (size + 4 <= file.size) appended_dtb = u32le(await readBytes(file, size, 4), 0) === byteSwap(FDT_MAGIC);
  return { magic, start, end, endian_flag, endian, appended_dtb };
}

/** The FDT magic is big-endian in the file; read little-endian it is byte-swapped. */
const byteSwap = (v: number) => (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)) >>> 0;

function lowestRamBase(ctx: FormatContext): number {
  return ctx.ram.regions.reduce((m, r) => Math.min(m, r.base), Number.POSITIVE_INFINITY);
}

/**
 * start 0: position independent, goes to B (ctx.at) as given — libsel4vm would add 0x8000 to its
 * load_address here; we do not, the caller's address is where the image goes. With no address,
 * RAM base + 0x8000 (the booting.rst convention), rounded up to the alignment.
 * start ≠ 0: the image was linked to run at `start` and must be loaded exactly there.
 *
 * The whole file is copied and recorded, not only end − start bytes: a DTB appended after the
 * zImage (CONFIG_ARM_APPENDED_DTB) is found by the decompressor right after `end`, so it must
 * arrive with it. The space the kernel decompresses into is not ours to reserve.
 */
export async function planZImage(ctx: FormatContext): Promise<LoadPlan<ZImageResult>> {
  const file = ctx.file;
  const image = file.name;
  const h = await readZImageHeader(file);
  if (h.endian === "big") {
    throw new GuestImageError("UNSUPPORTED", `endian_flag (the endianness flag at 0x30) is ${hex(h.endian_flag ?? 0)}: this is a big-endian kernel, which is not supported`, { image, field: "endian_flag" });
  }
  let load: number;
  if (h.start === 0) {
    load = ctx.at ?? alignUp(lowestRamBase(ctx) + ZIMAGE_RAM_OFFSET, ctx.align, { image, field: "at" });
  } else {
    if (ctx.at !== undefined && ctx.at !== h.start) {
      throw new GuestImageError(
        "BAD_ADDRESS",
        `the zImage is linked to run at start ${hex(h.start)} and cannot be loaded at ${hex(ctx.at)} (pass ${hex(h.start)}, or no address)`,
        { image, field: "start" },
      );
    }
    if (ctx.align > 1 && h.start % ctx.align !== 0) {
      throw new GuestImageError("BAD_ADDRESS", `start ${hex(h.start)} is not aligned to ${hex(ctx.align)} and the zImage cannot move`, { image, field: "start" });
    }
    load = h.start;
  }
  if (load + (h.end - h.start) > FOUR_GIB) {
    const field = h.start === 0 ? "at" : "start";
    throw new GuestImageError(
      "BAD_ADDRESS",
      `zImage at ${field} ${hex(load)} would span [${hex(load)}, ${hex(load + h.end - h.start)}), past 4 GiB, where a 32-bit ARM kernel cannot start`,
      { image, field },
    );
  }
  const entry = BigInt(load);
  const arch: ZImageArch = {
    format: "zimage",
    entry,
    start: h.start,
    end: h.end,
    position_independent: h.start === 0,
    endian: h.endian,
    endian_flag: h.endian_flag,
    appended_dtb: h.appended_dtb,
  };
  return {
    name: image,
    file,
    paddr: load,
    size: file.size,
    copies: [{ dst: load, src: 0, len: file.size }],
    zeros: [],
    relocs: [],
    patchable: [],
    result: { format: "zimage", entry, arch },
  };
}

export const zImageFormat: ImageFormat = {
  name: "zimage",
  description: "an ARM Linux zImage",
  test: isZImage,
  planKernel: planZImage,
  async inspect(file) {
    const h = await readZImageHeader(file);
    return {
      machine: "arm",
      endian: h.endian === "unknown" ? null : h.endian,
      magic: h.magic,
      start: h.start,
      end: h.end,
      position_independent: h.start === 0,
      endian_flag: h.endian_flag,
      appended_dtb: h.appended_dtb,
    };
  },
};
