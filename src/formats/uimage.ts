// U-Boot legacy images (uImage, made by `mkimage`): a 64-byte big-endian header, then ih_size
// bytes of data. Layout and numbers from U-Boot include/image.h (struct legacy_img_hdr /
// image_header_t and the IH_* enums, which only ever grow at the end):
//   0x00 ih_magic 0x27051956   0x04 ih_hcrc   0x08 ih_time   0x0c ih_size   0x10 ih_load
//   0x14 ih_ep   0x18 ih_dcrc   0x1c u8 ih_os   0x1d u8 ih_arch   0x1e u8 ih_type
//   0x1f u8 ih_comp   0x20 u8 ih_name[32] (not necessarily NUL-terminated)
//
// Checks are U-Boot's (boot/image.c image_check_hcrc / image_check_dcrc), which QEMU skips:
// the CRC-32 of the header with ih_hcrc zeroed must be ih_hcrc, and the CRC-32 of the ih_size
// data bytes must be ih_dcrc. The header CRC is checked while planning; the data CRC in guest
// RAM after the copy (uncompressed), over the compressed bytes as they stream through the
// inflater (gzip), or over the compressed bytes before decoding (bzip2, lzma, lzo, lz4, zstd:
// src/compress/decoded.ts), so the data is read once either way; a mismatch rolls the load back.
//
// Placement follows QEMU's load_uboot_image (hw/core/loader.c):
// - KERNEL: the data goes to ih_load (the header fixes it), decompressed as ih_comp says
//   (U-Boot image_decomp: gzip, bzip2, lzma "alone", lzop, LZ4 frames, zstd); entry ih_ep. Whatever the data is (an arm64 Image…), its own header is not consulted.
// - KERNEL_NOLOAD: the data runs where it is put, B; ih_ep is an offset from the data's start
//   (QEMU: `ih_load = loadaddr + sizeof(header); ih_ep += ih_load`; U-Boot bootm:
//   `ep += image_start`), so entry = B + ih_ep. QEMU puts the data 64 bytes above its chosen
//   address (where it would sit if the whole file were there); we put the data itself at B.
// - RAMDISK / FLATDT, as modules: the data at B, header stripped. A ramdisk's data is passed on
//   as it is whatever ih_comp says (U-Boot image_get_ramdisk and QEMU do not decompress it; the
//   kernel unpacks its initramfs); a device tree must be uncompressed and an FDT (U-Boot
//   image_get_fdt: "uImage is compressed", "uImage data is not a fdt").
import type { GzipPayload } from "../compress/gunzip.js";
import { GuestImageError, type ErrorCode } from "../errors.js";
import { alignUp, hex, MAX_SAFE } from "../num.js";
import type { LoadPlan } from "../plan.js";
import { checkRead, readBytes, type ImageFile } from "../sources/source.js";
import { checkFdtHeader } from "./fdt.js";
import type { FormatContext, ImageFormat, KernelResult, ModuleResult } from "./format.js";
import { openPayload, readEnd } from "./gzip.js";
import { codecNamed } from "../compress/registry.js";
import { openCodecPayload } from "./compressed.js";

export const UIMAGE_MAGIC = 0x27051956;
export const UIMAGE_HEADER_SIZE = 64;

// include/image.h enums, by position. Short names as mkimage's -O/-A/-T/-C take them
// (boot/image.c uimage_os/uimage_arch/uimage_type/uimage_comp tables).
const OS_NAMES = [
  "invalid", "openbsd", "netbsd", "freebsd", "4_4bsd", "linux", "svr4", "esix", "solaris", "irix", "sco", "dell", "ncr",
  "lynxos", "vxworks", "psos", "qnx", "u-boot", "rtems", "artos", "unity", "integrity", "ose", "plan9", "openrtos",
  "arm-trusted-firmware", "tee", "opensbi", "efi",
];
const ARCH_NAMES = [
  "invalid", "alpha", "arm", "x86", "ia64", "mips", "mips64", "powerpc", "s390", "sh", "sparc", "sparc64", "m68k", "nios",
  "microblaze", "nios2", "blackfin", "avr32", "st200", "sandbox", "nds32", "or1k", "arm64", "arc", "x86_64", "xtensa", "riscv",
];
const TYPE_NAMES = [
  "invalid", "standalone", "kernel", "ramdisk", "multi", "firmware", "script", "filesystem", "flat_dt", "kwbimage", "imximage",
  "ublimage", "omapimage", "aisimage", "kernel_noload", "pblimage", "mxsimage", "gpimage", "atmelimage", "socfpgaimage",
  "x86_setup", "lpc32xximage", "loadable", "rkimage", "rksd", "rkspi", "zynqimage", "zynqmpimage", "zynqmpbif", "fpga",
  "vybridimage", "tee", "firmware_ivt", "pmmc", "stm32image", "socfpgaimage_v1", "mtk_image", "imx8mimage", "imx8image",
  "copro", "sunxi_egon",
];
const COMP_NAMES = ["none", "gzip", "bzip2", "lzma", "lzo", "lz4", "zstd"];

const IH_TYPE_KERNEL = 2;
const IH_TYPE_RAMDISK = 3;
const IH_TYPE_FLATDT = 8;
const IH_TYPE_KERNEL_NOLOAD = 14;
const IH_COMP_NONE = 0;
const IH_COMP_GZIP = 1;

const nameOf = (table: string[], v: number) => table[v] ?? "unknown";
const typeName = (t: number) => `${nameOf(TYPE_NAMES, t)} (ih_type ${t})`;

export interface UImageHeader {
  ih_magic: number;
  ih_hcrc: number;
  ih_time: number;
  ih_size: number;
  ih_load: number;
  ih_ep: number;
  ih_dcrc: number;
  ih_os: number;
  ih_os_name: string;
  ih_arch: number;
  ih_arch_name: string;
  ih_type: number;
  ih_type_name: string;
  ih_comp: number;
  ih_comp_name: string;
  /** ih_name up to its first NUL, non-printable bytes as \xNN. */
  ih_name: string;
}

/** What a uImage kernel reports in `kernel_image_arch`: the header, by name and number. */
export interface UImageKernelArch extends UImageHeader {
  format: "uimage";
  entry: bigint;
  /** The compression the data was decompressed from (ih_comp's name), "none" otherwise. */
  compression: string;
  /** Compressed data: its size (ih_size) and the decompressed size placed at the load address. */
  compressed_size?: number;
  decompressed_size?: number;
}

export interface UImageResult {
  format: "uimage";
  entry: bigint;
  arch: UImageKernelArch;
}

export const isUImage = (h: Uint8Array) =>
  h.length >= 4 && new DataView(h.buffer, h.byteOffset, 4).getUint32(0, false) === UIMAGE_MAGIC;

function printable(b: Uint8Array): string {
  const end = b.indexOf(0);
  return Array.from(end < 0 ? b : b.subarray(0, end), (c) => (c >= 0x20 && c < 0x7f && c !== 0x5c ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, "0")}`)).join("");
}

function parseHeader(h: Uint8Array): UImageHeader {
  const dv = new DataView(h.buffer, h.byteOffset, UIMAGE_HEADER_SIZE);
  const u = (o: number) => dv.getUint32(o, false);
  return {
    ih_magic: u(0x00), ih_hcrc: u(0x04), ih_time: u(0x08), ih_size: u(0x0c), ih_load: u(0x10), ih_ep: u(0x14), ih_dcrc: u(0x18),
    ih_os: h[0x1c], ih_os_name: nameOf(OS_NAMES, h[0x1c]),
    ih_arch: h[0x1d], ih_arch_name: nameOf(ARCH_NAMES, h[0x1d]),
    ih_type: h[0x1e], ih_type_name: nameOf(TYPE_NAMES, h[0x1e]),
    ih_comp: h[0x1f], ih_comp_name: nameOf(COMP_NAMES, h[0x1f]),
    ih_name: printable(h.subarray(0x20, 0x40)),
  };
}

/** CRC-32 of the header with ih_hcrc read as zero (U-Boot image_check_hcrc). */
function headerCrc(ctx: Pick<FormatContext, "core">, h: Uint8Array): number {
  const copy = h.slice(0, UIMAGE_HEADER_SIZE);
  copy.fill(0, 4, 8);
  return ctx.core.crc32Bytes(copy);
}

/** Reads the header and runs U-Boot's checks on it: magic, header CRC, data inside the file. */
async function readHeader(ctx: FormatContext): Promise<UImageHeader> {
  const file = ctx.file;
  const fail = (code: ErrorCode, field: string, msg: string): never => {
    throw new GuestImageError(code, msg, { image: file.name, field });
  };
  if (file.size < UIMAGE_HEADER_SIZE) fail("TRUNCATED", "ih_magic", `file is ${file.size} bytes, shorter than the ${UIMAGE_HEADER_SIZE}-byte uImage header (ih_magic..ih_name)`);
  const raw = await readBytes(file, 0, UIMAGE_HEADER_SIZE);
  const h = parseHeader(raw);
  if (h.ih_magic !== UIMAGE_MAGIC) fail("BAD_MAGIC", "ih_magic", `ih_magic ${hex(h.ih_magic)} is not the uImage magic ${hex(UIMAGE_MAGIC)}`);
  const crc = headerCrc(ctx, raw);
  if (crc !== h.ih_hcrc) fail("BAD_CHECKSUM", "ih_hcrc", `header CRC-32 is ${hex(crc)}, ih_hcrc says ${hex(h.ih_hcrc)}`);
  if (h.ih_size === 0) fail("BAD_HEADER", "ih_size", "ih_size is 0: the image has no data");
  if (UIMAGE_HEADER_SIZE + h.ih_size > file.size) {
    fail("TRUNCATED", "ih_size", `ih_size ${hex(h.ih_size)} + the 64-byte header runs past the end of the file (${hex(file.size)} bytes)`);
  }
  return h;
}

function unsupportedComp(ctx: FormatContext, h: UImageHeader, what: string, supported: string): never {
  const name = COMP_NAMES[h.ih_comp];
  throw new GuestImageError(
    "UNSUPPORTED",
    name
      ? `${what} compressed with ${name} (ih_comp ${h.ih_comp}): only ${supported} supported; decompress the data and rebuild the uImage with -C none`
      : `ih_comp ${h.ih_comp} is not a compression type U-Boot defines (0..${COMP_NAMES.length - 1})`,
    { image: ctx.file.name, field: "ih_comp" },
  );
}

/** The data copied as it is to `dst`, its CRC checked in guest RAM before the load commits. */
function planStored<R>(ctx: FormatContext, h: UImageHeader, dst: number, result: R): LoadPlan<R> {
  return {
    name: ctx.file.name,
    file: ctx.file,
    paddr: dst,
    size: h.ih_size,
    copies: [{ dst, src: UIMAGE_HEADER_SIZE, len: h.ih_size }],
    zeros: [],
    relocs: [],
    verify: [{ what: "uImage data", field: "ih_dcrc", paddr: dst, len: h.ih_size, crc32: h.ih_dcrc }],
    patchable: [],
    result,
  };
}

/** The data gunzipped to `dst`; ih_dcrc is checked over the compressed bytes as they stream in. */
async function planGunzipped<R>(ctx: FormatContext, h: UImageHeader, dst: number, result: R): Promise<LoadPlan<R>> {
  const gz: GzipPayload = await openPayload(
    ctx,
    { start: UIMAGE_HEADER_SIZE, end: UIMAGE_HEADER_SIZE + h.ih_size, what: "uImage data (gzip)" },
    { exact: dst },
    { crc32: h.ih_dcrc, field: "ih_dcrc", what: "uImage data" },
  );
  const plan: LoadPlan<R> = {
    name: ctx.file.name,
    file: gz,
    paddr: dst,
    size: gz.size,
    copies: [{ dst, src: 0, len: gz.size }],
    zeros: [],
    relocs: [],
    patchable: [],
    result,
  };
  await gz.needUpTo(readEnd(plan));
  return plan;
}

/** The data decompressed by its ih_comp codec to `dst`; ih_dcrc is checked over the compressed bytes first. */
async function planDecoded(ctx: FormatContext, h: UImageHeader, dst: number, result: UImageResult): Promise<LoadPlan<UImageResult>> {
  const codec = codecNamed(COMP_NAMES[h.ih_comp])!;
  const f = await openCodecPayload(
    ctx,
    codec,
    { start: UIMAGE_HEADER_SIZE, end: UIMAGE_HEADER_SIZE + h.ih_size, what: `uImage data (${codec.name})` },
    { exact: dst },
    { inputCrc: { crc32: h.ih_dcrc, field: "ih_dcrc", what: "uImage data" } },
  );
  if (f.size === 0) {
    await f.close();
    throw new GuestImageError("BAD_HEADER", `uImage data (${codec.name}) decompresses to nothing`, { image: ctx.file.name, field: "ih_size" });
  }
  return {
    name: ctx.file.name,
    file: f,
    paddr: dst,
    size: f.size,
    copies: [{ dst, src: 0, len: f.size }],
    zeros: [],
    relocs: [],
    patchable: [],
    result: { ...result, arch: { ...result.arch, compressed_size: h.ih_size, decompressed_size: f.size } },
  };
}

/** Where a kernel uImage's data goes, and its entry point. */
function kernelPlacement(ctx: FormatContext, h: UImageHeader): { dst: number; entry: bigint } {
  const image = ctx.file.name;
  if (h.ih_type === IH_TYPE_KERNEL) {
    if (ctx.at !== undefined && ctx.at !== h.ih_load) {
      throw new GuestImageError(
        "BAD_ADDRESS",
        `a kernel uImage loads at ih_load ${hex(h.ih_load)}, not at the requested ${hex(ctx.at)}${ctx.align > 1 ? ` (the load address rounded up to ${hex(ctx.align)})` : ""}: pass ih_load, or rebuild it as kernel_noload`,
        { image, field: "ih_load" },
      );
    }
    if (ctx.align > 1 && alignUp(h.ih_load, ctx.align) !== h.ih_load) {
      throw new GuestImageError("BAD_ADDRESS", `ih_load ${hex(h.ih_load)} is not aligned to the requested ${hex(ctx.align)}`, { image, field: "ih_load" });
    }
    return { dst: h.ih_load, entry: BigInt(h.ih_ep) };
  }
  if (ctx.at === undefined) {
    throw new GuestImageError("BAD_ARGUMENT", "a kernel_noload uImage runs where it is put: pass a load address (at / load_address)", { image, field: "at" });
  }
  const entry = BigInt(ctx.at) + BigInt(h.ih_ep);
  if (entry > BigInt(MAX_SAFE)) {
    throw new GuestImageError("BAD_ADDRESS", `entry = load address ${hex(ctx.at)} + ih_ep ${hex(h.ih_ep)} is past 2^53-1`, { image, field: "ih_ep" });
  }
  return { dst: ctx.at, entry };
}

/** A read-only window [start, start + size) of a file. */
function sliceFile(file: ImageFile, start: number, size: number): ImageFile {
  return {
    name: file.name,
    size,
    async read(dst, position) {
      checkRead(this, dst, position);
      await file.read(dst, start + position);
    },
    async close() {},
  };
}

export const uImageFormat: ImageFormat = {
  name: "uimage",
  description: "a U-Boot legacy image (uImage)",
  test: isUImage,
  async planKernel(ctx): Promise<LoadPlan<KernelResult>> {
    const image = ctx.file.name;
    if (ctx.relocs !== undefined) throw new GuestImageError("BAD_ARGUMENT", "relocs data applies to ELF kernels only", { image, field: "relocs" });
    const h = await readHeader(ctx);
    if (h.ih_type === IH_TYPE_RAMDISK || h.ih_type === IH_TYPE_FLATDT) {
      throw new GuestImageError("UNSUPPORTED", `a uImage of type ${typeName(h.ih_type)} is not a kernel: load it as a module`, { image, field: "ih_type" });
    }
    if (h.ih_type !== IH_TYPE_KERNEL && h.ih_type !== IH_TYPE_KERNEL_NOLOAD) {
      throw new GuestImageError(
        "UNSUPPORTED",
        `uImage type ${typeName(h.ih_type)} cannot be loaded: kernels must be kernel (2) or kernel_noload (14)`,
        { image, field: "ih_type" },
      );
    }
    const codec = h.ih_comp > IH_COMP_GZIP ? codecNamed(COMP_NAMES[h.ih_comp] ?? "") : undefined;
    if (h.ih_comp !== IH_COMP_NONE && h.ih_comp !== IH_COMP_GZIP && !codec) {
      unsupportedComp(ctx, h, "the kernel data is", `none, gzip${COMP_NAMES.slice(2).filter((n) => codecNamed(n)).map((n) => `, ${n}`).join("")} are`);
    }
    const { dst, entry } = kernelPlacement(ctx, h);
    const compression = COMP_NAMES[h.ih_comp];
    const result: UImageResult = { format: "uimage", entry, arch: { format: "uimage", entry, ...h, compression } };
    if (codec) return planDecoded(ctx, h, dst, result);
    return h.ih_comp === IH_COMP_GZIP ? planGunzipped(ctx, h, dst, result) : planStored(ctx, h, dst, result);
  },
  async planModule(ctx): Promise<LoadPlan<ModuleResult>> {
    const image = ctx.file.name;
    const h = await readHeader(ctx);
    if (ctx.at === undefined) {
      throw new GuestImageError("BAD_ARGUMENT", "a module has no load address of its own: pass one (at / load_address)", { image, field: "at" });
    }
    if (h.ih_type === IH_TYPE_FLATDT) {
      if (h.ih_comp !== IH_COMP_NONE) unsupportedComp(ctx, h, "a device tree uImage's data is", "none is");
      await checkFdtHeader(sliceFile(ctx.file, UIMAGE_HEADER_SIZE, h.ih_size));
    } else if (h.ih_type !== IH_TYPE_RAMDISK) {
      const hint = h.ih_type === IH_TYPE_KERNEL || h.ih_type === IH_TYPE_KERNEL_NOLOAD ? ": load it as the kernel" : "";
      throw new GuestImageError(
        "UNSUPPORTED",
        `a uImage of type ${typeName(h.ih_type)} cannot be loaded as a module (ramdisk (3) and flat_dt (8) can)${hint}`,
        { image, field: "ih_type" },
      );
    }
    return planStored(ctx, h, ctx.at, { format: "uimage" });
  },
  async inspect(file, head) {
    if (file.size < UIMAGE_HEADER_SIZE) return {};
    const raw = head.length >= UIMAGE_HEADER_SIZE ? head : await readBytes(file, 0, UIMAGE_HEADER_SIZE);
    const h = parseHeader(raw);
    return { machine: h.ih_arch_name, entry: h.ih_type === IH_TYPE_KERNEL ? BigInt(h.ih_ep) : null, ...h };
  },
};
