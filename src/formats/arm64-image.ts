// arm64 Image and RISC-V Image: the uncompressed Linux kernel images whose 64-byte header carries
// a magic number at 0x38 ("ARM\x64" for arm64, "RSC\x05" for RISC-V, the latter placed there on
// purpose to match arm64). Both are loaded the same way: a 2 MiB-aligned base, the image at
// base + text_offset, and image_size bytes (the kernel including its BSS) reserved from there.
//
// arm64 header (Documentation/arch/arm64/booting.rst, "Call the kernel image"; asm/image.h),
// all fields little-endian since Linux 3.17:
//   0x00 u32 code0 ("MZ" when the kernel has an EFI stub)  0x04 u32 code1
//   0x08 u64 text_offset  0x10 u64 image_size  0x18 u64 flags  0x20 u64 res2..res4
//   0x38 u32 magic 0x644d5241 "ARM\x64"  0x3c u32 res5 (PE header offset)
// RISC-V header (Documentation/arch/riscv/boot-image-header.rst; arch/riscv/include/asm/image.h):
//   0x00 u32 code0  0x04 u32 code1  0x08 u64 text_offset  0x10 u64 image_size  0x18 u64 flags
//   0x20 u32 version  0x24 u32 res1  0x28 u64 res2  0x30 u64 magic "RISCV\0\0\0" (deprecated)
//   0x38 u32 magic2 0x05435352 "RSC\x05"  0x3c u32 res3 (PE/COFF offset)
//
// libsel4vm does not read this header at all (it loads such a file as a raw binary where it is
// told to), so the kernel then runs from a misaligned address — seL4/camkes-vm#131. We honour it.
import { GuestImageError, type ErrorCode } from "../errors.js";
import { alignUp, hex, MAX_SAFE, U64_MASK } from "../num.js";
import type { LoadPlan } from "../plan.js";
import type { GuestRam } from "../ram/guest-ram.js";
import { readBytes, type ImageFile } from "../sources/source.js";
import type { FormatContext, ImageFormat } from "./format.js";

export const IMAGE_HEADER_SIZE = 64;
/** booting.rst: "u32 magic = 0x644d5241; Magic number, little endian, "ARM\x64"". */
export const ARM64_IMAGE_MAGIC = 0x644d5241;
/** boot-image-header.rst: "u32 magic2 = 0x05435352; Magic number 2, little endian, "RSC\x05"". */
export const RISCV_IMAGE_MAGIC2 = 0x05435352;
/** boot-image-header.rst: "u64 magic = 0x5643534952; Magic number, little endian, "RISCV"" (deprecated since 0.2). */
const RISCV_IMAGE_MAGIC = 0x5643534952n;
const MAGIC_OFFSET = 0x38;
const RISCV_MAGIC_OFFSET = 0x30;

const MiB = 0x100000;
/** booting.rst: "The Image must be placed text_offset bytes from a 2MB aligned base address". */
const ARM64_BASE_ALIGN = 2 * MiB;
/**
 * RISC-V: the kernel must sit on a PMD boundary, 2 MiB for RV64 and 4 MiB for RV32
 * (Documentation/arch/riscv/boot.rst). The header has no class field and code0/code1 are the
 * same jump on both, so the file cannot tell us which; we use the RV64 value, as QEMU's virt
 * board and rust-vmm linux-loader do. An RV32 kernel is placed correctly when the caller asks
 * for a 4 MiB alignment (the base is rounded up to the larger of the two).
 */
const RISCV_BASE_ALIGN = 2 * MiB;
/** booting.rst: before 3.17 image_size is 0 and "text_offset can be assumed to be 0x80000". */
const ARM64_LEGACY_TEXT_OFFSET = 0x80000n;
/** 0x80000 stored big-endian (00 00 00 00 00 08 00 00) and read little-endian. */
const ARM64_LEGACY_TEXT_OFFSET_SWAPPED = 0x80000000000n;

const u32le = (h: Uint8Array, o: number) => new DataView(h.buffer, h.byteOffset, h.byteLength).getUint32(o, true);
const hasMagic = (h: Uint8Array, magic: number) => h.length >= IMAGE_HEADER_SIZE && u32le(h, MAGIC_OFFSET) === magic;
/**
 * boot-image-header.rst: "The "magic" field is deprecated as of version 0.2 … The "magic2" field
 * replaces it". A version 0.1 Image (Linux 5.0–5.4 era) carries only "RISCV\0\0\0" at 0x30 (u64
 * 0x5643534952) with 0x38 reserved; a current one carries both. Either is a RISC-V Image.
 */
const hasRiscvMagic = (h: Uint8Array) =>
  h.length >= IMAGE_HEADER_SIZE && new DataView(h.buffer, h.byteOffset, h.byteLength).getBigUint64(RISCV_MAGIC_OFFSET, true) === RISCV_IMAGE_MAGIC;

/** booting.rst, flags bits 1-2: "Kernel page size". */
const PAGE_SIZES = ["unspecified", "4K", "16K", "64K"] as const;
export type Arm64PageSize = (typeof PAGE_SIZES)[number];

export interface Arm64ImageHeader {
  code0: number;
  code1: number;
  text_offset: bigint;
  image_size: bigint;
  flags: bigint;
  /** res5: offset of the PE header when the kernel has an EFI stub. */
  res5: number;
}

export interface RiscvImageHeader {
  code0: number;
  code1: number;
  text_offset: bigint;
  image_size: bigint;
  flags: bigint;
  /** u32 version: major in bits 16-31, minor in bits 0-15. */
  version: number;
  /** The deprecated u64 "RISCV\0\0\0" magic at 0x30. */
  magic: bigint;
  magic2: number;
  /** res3: PE/COFF header offset. */
  res3: number;
}

/** What an arm64 Image reports in `kernel_image_arch`. */
export interface Arm64ImageArch {
  format: "arm64-image";
  /** The image's first byte (booting.rst: "jump to the first instruction of the kernel image"). */
  entry: bigint;
  /** The 2 MiB-aligned base the image is text_offset bytes above. */
  base: bigint;
  /** The text_offset used (0x80000 for a pre-3.17 image with image_size 0). */
  text_offset: bigint;
  image_size: bigint;
  flags: bigint;
  endian: "little";
  page_size: Arm64PageSize;
  /** flags bit 3: the 2 MiB-aligned base may be anywhere in RAM (else: close to the start of DRAM). */
  phys_placement_anywhere: boolean;
  /** The file starts with "MZ": the kernel is also a PE/COFF EFI application. */
  efi_stub: boolean;
}

/** What a RISC-V Image reports in `kernel_image_arch`. */
export interface RiscvImageArch {
  format: "riscv-image";
  entry: bigint;
  base: bigint;
  text_offset: bigint;
  image_size: bigint;
  flags: bigint;
  endian: "little";
  /** Header version "major.minor" (0.2 at the time of writing). */
  version: string;
  efi_stub: boolean;
}

export interface Arm64ImageResult {
  format: "arm64-image";
  entry: bigint;
  arch: Arm64ImageArch;
}

export interface RiscvImageResult {
  format: "riscv-image";
  entry: bigint;
  arch: RiscvImageArch;
}

async function readHeader(file: ImageFile, what: string, magic: number | null, magicName: string): Promise<DataView> {
  const image = file.name;
  if (file.size < IMAGE_HEADER_SIZE) {
    throw new GuestImageError("TRUNCATED", `file is ${file.size} bytes, shorter than the ${IMAGE_HEADER_SIZE}-byte ${what} header`, { image, field: "magic" });
  }
  const h = await readBytes(file, 0, IMAGE_HEADER_SIZE);
  const dv = new DataView(h.buffer, h.byteOffset, h.byteLength);
  const m = dv.getUint32(MAGIC_OFFSET, true);
  if (magic !== null && m !== magic) throw new GuestImageError("BAD_MAGIC", `magic ${hex(m)} at 0x38 is not the ${what} magic ${hex(magic)} (${magicName})`, { image, field: "magic" });
  return dv;
}

export async function readArm64Header(file: ImageFile): Promise<Arm64ImageHeader> {
  const dv = await readHeader(file, "arm64 Image", ARM64_IMAGE_MAGIC, '"ARM\\x64"');
  return {
    code0: dv.getUint32(0x00, true),
    code1: dv.getUint32(0x04, true),
    text_offset: dv.getBigUint64(0x08, true),
    image_size: dv.getBigUint64(0x10, true),
    flags: dv.getBigUint64(0x18, true),
    res5: dv.getUint32(0x3c, true),
  };
}

export async function readRiscvHeader(file: ImageFile): Promise<RiscvImageHeader> {
  // A version 0.1 header has only the (since deprecated) "RISCV\0\0\0" at 0x30, no magic2.
  const v01 = file.size >= IMAGE_HEADER_SIZE && hasRiscvMagic(await readBytes(file, 0, IMAGE_HEADER_SIZE));
  const dv = await readHeader(file, "RISC-V Image", v01 ? null : RISCV_IMAGE_MAGIC2, '"RSC\\x05"');
  return {
    code0: dv.getUint32(0x00, true),
    code1: dv.getUint32(0x04, true),
    text_offset: dv.getBigUint64(0x08, true),
    image_size: dv.getBigUint64(0x10, true),
    flags: dv.getBigUint64(0x18, true),
    version: dv.getUint32(0x20, true),
    magic: dv.getBigUint64(0x30, true),
    magic2: dv.getUint32(0x38, true),
    res3: dv.getUint32(0x3c, true),
  };
}

/** code0 starts with "MZ" (0x4d, 0x5a): the DOS stub of a PE/COFF image, i.e. an EFI stub kernel. */
const isEfiStub = (code0: number) => (code0 & 0xffff) === 0x5a4d;

/** The lowest guest physical address of RAM. */
function ramBase(ram: GuestRam): number {
  return ram.regions.reduce((m, r) => Math.min(m, r.base), Number.POSITIVE_INFINITY);
}

/** Where the image goes and what it occupies, from B, the header's text_offset and image_size. */
interface Placement {
  base: bigint;
  load: number;
  reserve: number;
}

/**
 * base = B rounded up to `baseAlign` (and to the caller's alignment), load = base + text_offset,
 * reserved = max(file size, image_size). All in bigint, every sum checked before it becomes a
 * number. With no address given, B is the lowest RAM base: the Image has no address of its own,
 * and both booting protocols speak of an offset from the base of RAM (QEMU does the same, though
 * on arm64 it adds 2 MiB when text_offset < 4 KiB to keep its boot stub at the RAM base).
 */
function place(ctx: FormatContext, textOffset: bigint, imageSize: bigint, baseAlign: number): Placement {
  const image = ctx.file.name;
  const err = (code: ErrorCode, field: string, msg: string) => new GuestImageError(code, msg, { image, field });
  if (textOffset + imageSize > U64_MASK) {
    throw err("BAD_HEADER", "text_offset", `text_offset ${hex(textOffset)} + image_size ${hex(imageSize)} wraps past 2^64`);
  }
  const b = ctx.at ?? ramBase(ctx.ram);
  const base = BigInt(alignUp(alignUp(b, Math.max(ctx.align, 1), { image, field: "at" }), baseAlign, { image, field: "at" }));
  const load = base + textOffset;
  if (load > BigInt(MAX_SAFE)) {
    throw err("BAD_ADDRESS", "text_offset", `load address = base ${hex(base)} + text_offset ${hex(textOffset)} = ${hex(load)} is past 2^53-1`);
  }
  const fileSize = BigInt(ctx.file.size);
  const reserve = imageSize > fileSize ? imageSize : fileSize;
  if (load + reserve > BigInt(MAX_SAFE)) {
    throw err("BAD_ADDRESS", "image_size", `image [${hex(load)}, +${hex(reserve)}) (max of file size and image_size ${hex(imageSize)}) ends past 2^53-1`);
  }
  return { base, load: Number(load), reserve: Number(reserve) };
}

/** The whole file at `load`; the tail up to image_size zeroed, so the kernel's BSS holds no stale data. */
function plan<R>(file: ImageFile, p: Placement, result: R): LoadPlan<R> {
  const zeros = p.reserve > file.size ? [{ dst: p.load + file.size, len: p.reserve - file.size }] : [];
  return {
    name: file.name,
    file,
    paddr: p.load,
    size: p.reserve,
    copies: file.size ? [{ dst: p.load, src: 0, len: file.size }] : [],
    zeros,
    relocs: [],
    patchable: [],
    result,
  };
}

/** booting.rst: "the 48-bit addressable range of physical memory" (flags bit 3 set). */
const ARM64_PHYS_LIMIT = 2 ** 48;

/**
 * booting.rst, flags bit 3 "Kernel physical placement":
 *   0 — "2MB aligned base should be as close as possible to the base of DRAM, since memory below
 *       it is not accessible via the linear mapping" (kernels before 4.6; an image_size-0 header
 *       is older still and has the same rule: "versions prior to v4.6 cannot make use of memory
 *       below the physical offset of the Image");
 *   1 — "2MB aligned base such that all image_size bytes counted from the start of the image are
 *       within the 48-bit addressable range of physical memory".
 * Bit 3 clear: a base above the lowest 2 MiB-aligned base where the Image fits (in RAM, clear of
 * images already placed) would silently cost the guest all RAM below it: refused, naming both.
 * Bit 3 set: the image must end at or below 2^48.
 */
function checkPhysPlacement(ctx: FormatContext, p: Placement, textOffset: bigint, flags: bigint | null): void {
  const image = ctx.file.name;
  if (flags !== null && (flags & 8n) !== 0n) {
    if (p.load + p.reserve > ARM64_PHYS_LIMIT) {
      throw new GuestImageError(
        "BAD_ADDRESS",
        `the image [${hex(p.load)}, +${hex(p.reserve)}) ends past 2^48: flags bit 3 (physical placement anywhere) still asks for all image_size bytes inside the 48-bit physical range (booting.rst)`,
        { image, field: "image_size" },
      );
    }
    return;
  }
  const base = Number(p.base);
  const to = Number(textOffset);
  const step = Math.max(ARM64_BASE_ALIGN, ctx.align);
  for (const r of [...ctx.ram.regions].sort((a, b) => a.base - b.base)) {
    for (let cand = Math.ceil(r.base / step) * step; cand < base && cand < r.base + r.size; cand += step) {
      if (!Array.isArray(ctx.ram.pieces(cand + to, Math.max(p.reserve, 1)))) continue;
      if (ctx.occupied?.(cand + to, p.reserve)) continue;
      const why = flags === null ? "image_size is 0 (a kernel before 3.17)" : `flags ${hex(flags)} has bit 3 clear (a kernel before 4.6)`;
      throw new GuestImageError(
        "BAD_ADDRESS",
        `base ${hex(base)} is above ${hex(cand)}, the lowest 2 MiB-aligned base where the Image fits: ${why}, so the kernel cannot use RAM below its base (booting.rst: "as close as possible to the base of DRAM"); load it at ${hex(cand)}`,
        { image, field: flags === null ? "image_size" : "flags" },
      );
    }
  }
}

/** Plans an arm64 Image at ctx.at (or the RAM base), checking its header. */
export async function planArm64Image(ctx: FormatContext): Promise<LoadPlan<Arm64ImageResult>> {
  const image = ctx.file.name;
  const h = await readArm64Header(ctx.file);
  // booting.rst: "Prior to v3.17, the endianness of text_offset was not specified. In these
  // cases image_size is zero and text_offset is 0x80000 in the endianness of the kernel." The
  // flags field came with image_size in 3.17; in an older header it is reserved, so it is not read.
  const legacy = h.image_size === 0n;
  const flags = legacy ? 0n : h.flags;
  // In such a header, a text_offset that reads 0x80000 byte-swapped says the kernel is big-endian.
  if (legacy && h.text_offset === ARM64_LEGACY_TEXT_OFFSET_SWAPPED) {
    throw new GuestImageError("UNSUPPORTED", `image_size is 0 and text_offset reads ${hex(h.text_offset)}, 0x80000 byte-swapped: this is a big-endian (pre-3.17) kernel, which is not supported`, { image, field: "text_offset" });
  }
  if (flags & 1n) {
    throw new GuestImageError("UNSUPPORTED", `flags ${hex(h.flags)} has bit 0 (kernel endianness) set: this is a big-endian kernel, which is not supported`, { image, field: "flags" });
  }
  const textOffset = legacy ? ARM64_LEGACY_TEXT_OFFSET : h.text_offset;
  const p = place(ctx, textOffset, h.image_size, ARM64_BASE_ALIGN);
  checkPhysPlacement(ctx, p, textOffset, legacy ? null : flags);
  const entry = BigInt(p.load);
  const arch: Arm64ImageArch = {
    format: "arm64-image",
    entry,
    base: p.base,
    text_offset: textOffset,
    image_size: h.image_size,
    flags: h.flags,
    endian: "little",
    page_size: PAGE_SIZES[Number((flags >> 1n) & 3n)],
    phys_placement_anywhere: (flags & 8n) !== 0n,
    efi_stub: isEfiStub(h.code0),
  };
  return plan(ctx.file, p, { format: "arm64-image", entry, arch });
}

const riscvVersion = (v: number) => `${v >>> 16}.${v & 0xffff}`;

/** Plans a RISC-V Image at ctx.at (or the RAM base), checking its header. */
export async function planRiscvImage(ctx: FormatContext): Promise<LoadPlan<RiscvImageResult>> {
  const image = ctx.file.name;
  const h = await readRiscvHeader(ctx.file);
  // boot-image-header.rst: flags bit 0 is the kernel endianness (1 = big-endian).
  if (h.flags & 1n) {
    throw new GuestImageError("UNSUPPORTED", `flags ${hex(h.flags)} has bit 0 (kernel endianness) set: this is a big-endian kernel, which is not supported`, { image, field: "flags" });
  }
  // boot-image-header.rst: image_size is mandatory ("boot fails otherwise"); unlike arm64
  // there is no legacy rule for a zero value.
  if (h.image_size === 0n) {
    throw new GuestImageError("BAD_HEADER", "image_size is 0: a RISC-V Image must state its effective size (boot-image-header.rst)", { image, field: "image_size" });
  }
  const p = place(ctx, h.text_offset, h.image_size, RISCV_BASE_ALIGN);
  const entry = BigInt(p.load);
  const arch: RiscvImageArch = {
    format: "riscv-image",
    entry,
    base: p.base,
    text_offset: h.text_offset,
    image_size: h.image_size,
    flags: h.flags,
    endian: "little",
    version: riscvVersion(h.version),
    efi_stub: isEfiStub(h.code0),
  };
  return plan(ctx.file, p, { format: "riscv-image", entry, arch });
}

export const arm64ImageFormat: ImageFormat = {
  name: "arm64-image",
  description: "an arm64 Linux Image",
  test: (head) => hasMagic(head, ARM64_IMAGE_MAGIC),
  planKernel: planArm64Image,
  async inspect(file) {
    const h = await readArm64Header(file);
    const legacy = h.image_size === 0n;
    return {
      machine: "aarch64",
      endian: (legacy ? h.text_offset === ARM64_LEGACY_TEXT_OFFSET_SWAPPED : (h.flags & 1n) !== 0n) ? "big" : "little",
      code0: h.code0,
      code1: h.code1,
      text_offset: h.text_offset,
      image_size: h.image_size,
      flags: h.flags,
      page_size: legacy ? "unspecified" : PAGE_SIZES[Number((h.flags >> 1n) & 3n)],
      phys_placement_anywhere: !legacy && (h.flags & 8n) !== 0n,
      efi_stub: isEfiStub(h.code0),
      res5: h.res5,
      ...(legacy ? { legacy_header: "image_size is 0 (pre-3.17): text_offset is taken as 0x80000" } : {}),
    };
  },
};

export const riscvImageFormat: ImageFormat = {
  name: "riscv-image",
  description: "a RISC-V Linux Image",
  test: (head) => hasMagic(head, RISCV_IMAGE_MAGIC2) || hasRiscvMagic(head),
  planKernel: planRiscvImage,
  async inspect(file) {
    const h = await readRiscvHeader(file);
    return {
      machine: "riscv",
      endian: h.flags & 1n ? "big" : "little",
      code0: h.code0,
      code1: h.code1,
      text_offset: h.text_offset,
      image_size: h.image_size,
      flags: h.flags,
      version: riscvVersion(h.version),
      magic_riscv: h.magic === RISCV_IMAGE_MAGIC,
      efi_stub: isEfiStub(h.code0),
      res3: h.res3,
    };
  },
};
