// x86 Linux bzImage: the Linux/x86 boot protocol, version 2.00 or later, with LOADED_HIGH set
// (Linux Documentation/arch/x86/boot.rst; "boot.rst" below).
//
// File layout (boot.rst, "The Real-Mode Kernel Header" and "Loading The Rest of The Kernel"):
//   [0, (setup_sects+1)*512)   the real-mode code: boot sector + setup, with the setup header at
//                              0x1F1 (setup_sects 0 means 4);
//   [(setup_sects+1)*512, EOF) the protected-mode kernel, which goes to guest RAM at B.
// A loader that starts the kernel through the 32/64-bit boot protocol (as this library's users
// do: they set up the vCPU themselves) places only the protected-mode part; the real-mode bytes
// are returned in the arch record so the caller can build the zero page from their setup header
// (src/boot/x86-boot-params.ts) or run the real-mode entry itself.
//
// Placement: B = the requested address (undefined: the header's code32_start, 0x100000 in every
// bzImage). A relocatable kernel (relocatable_kernel ≠ 0, protocol 2.05+) may be loaded at any
// B: "A relocatable kernel that is loaded at an alignment incompatible with the value in this
// field will be realigned during kernel initialization" (boot.rst, kernel_alignment). A
// non-relocatable one only at code32_start. The kernel then decompresses itself into init_size
// bytes from its "runtime start address" (boot.rst, init_size, algorithm as updated in Nov 2024
// by commit be4ca6c53e66, "x86/Documentation: Update algo in init_size description"):
//     if (relocatable_kernel) {
//         if (load_address < pref_address) load_address = pref_address;
//         runtime_start = align_up(load_address, kernel_alignment);
//     } else {
//         runtime_start = pref_address;
//     }
//     memory_window_start = runtime_start; memory_window_size = init_size;
// That window is written before the kernel has looked at any memory map, so it must be RAM and
// hold nothing else: the plan reserves [min(B, runtime_start), max(B + kernel, runtime_start +
// init_size)) as the image's one ledger range (which also covers any gap between the two).
import { GuestImageError, type ErrorCode } from "../errors.js";
import { alignUp, hex, isPowerOfTwo, MAX_SAFE } from "../num.js";
import type { LoadPlan } from "../plan.js";
import { readBytes, type ImageFile } from "../sources/source.js";
import type { FormatContext, ImageFormat } from "./format.js";
import { readKernelInfo } from "./kernel-info.js";

/** boot.rst, header: 'Contains the magic number "HdrS" (0x53726448)', at 0x202. */
export const BZIMAGE_MAGIC = 0x53726448;
const MAGIC_OFFSET = 0x202;
/** boot.rst, boot_flag at 0x1FE: "Contains 0xAA55". */
const BOOT_FLAG = 0xaa55;
/** Bytes needed to see boot_flag, "HdrS" and version. */
export const BZIMAGE_MIN_HEAD = 0x208;
/** Offset of the setup header in the file and in boot_params (boot.rst; zero-page.rst). */
export const SETUP_HEADER_OFFSET = 0x1f1;
/**
 * boot.rst, jump: "0xEB followed by a signed offset relative to byte 0x202 … can be used to
 * determine the size of the header"; the kernel_info section: "setup_header is permanently
 * limited to 144 bytes due to the reach of the 2-byte jump field". 0x1F1 + 144 = 0x202 + 0x7F.
 */
export const SETUP_HEADER_MAX_END = 0x202 + 0x7f;
const JMP_SHORT = 0xeb;
const SECTOR = 512;
/** boot.rst, setup_sects: "If this field is 0, the real value is 4." */
const SETUP_SECTS_IF_ZERO = 4;

/** boot.rst, loadflags bit 0: "If 1, the protected-mode code is loaded at 0x100000". */
export const LOADED_HIGH = 0x01;
/** boot.rst, loadflags bit 7: heap_end_ptr is valid. */
export const CAN_USE_HEAP = 0x80;
/** boot.rst, xloadflags bit 0: "this kernel has the legacy 64-bit entry point at 0x200". */
export const XLF_KERNEL_64 = 0x01;
/** boot.rst, xloadflags bit 1: "kernel/boot_params/cmdline/ramdisk can be above 4G". */
export const XLF_CAN_BE_LOADED_ABOVE_4G = 0x02;
/** boot.rst, "64-bit Boot Protocol": the entry is "the start address of loaded 64-bit kernel plus 0x200". */
export const ENTRY64_OFFSET = 0x200;
/** boot.rst, "Loading The Rest of The Kernel": a bzImage's load_address is 0x100000. */
export const BZIMAGE_LOAD_ADDRESS = 0x100000;

const FOUR_GIB = 2 ** 32;

/** The setup header, each field by its boot.rst name; null when the protocol version predates it. */
export interface BzImageSetupHeader {
  setup_sects: number;
  root_flags: number;
  /** 4 bytes from protocol 2.04; 2 bytes before (boot.rst: "cannot be trusted" then). */
  syssize: number;
  ram_size: number;
  vid_mode: number;
  root_dev: number;
  boot_flag: number;
  jump: number;
  header: number;
  version: number;
  realmode_swtch: number;
  start_sys_seg: number;
  kernel_version: number;
  type_of_loader: number;
  loadflags: number;
  setup_move_size: number;
  code32_start: number;
  ramdisk_image: number;
  ramdisk_size: number;
  bootsect_kludge: number;
  heap_end_ptr: number | null;
  ext_loader_ver: number | null;
  ext_loader_type: number | null;
  cmd_line_ptr: number | null;
  initrd_addr_max: number | null;
  kernel_alignment: number | null;
  relocatable_kernel: number | null;
  min_alignment: number | null;
  xloadflags: number | null;
  cmdline_size: number | null;
  hardware_subarch: number | null;
  hardware_subarch_data: bigint | null;
  payload_offset: number | null;
  payload_length: number | null;
  setup_data: bigint | null;
  pref_address: bigint | null;
  init_size: number | null;
  handover_offset: number | null;
  kernel_info_offset: number | null;
}

type FieldName = keyof BzImageSetupHeader;

/**
 * boot.rst, "The Real-Mode Kernel Header" table: offset, size and the protocol version that
 * introduced each field (0 = all versions). syssize is special-cased (2 bytes before 2.04).
 */
const FIELDS: ReadonlyArray<readonly [FieldName, number, 1 | 2 | 4 | 8, number]> = [
  ["setup_sects", 0x1f1, 1, 0],
  ["root_flags", 0x1f2, 2, 0],
  ["syssize", 0x1f4, 4, 0],
  ["ram_size", 0x1f8, 2, 0],
  ["vid_mode", 0x1fa, 2, 0],
  ["root_dev", 0x1fc, 2, 0],
  ["boot_flag", 0x1fe, 2, 0],
  ["jump", 0x200, 2, 0x200],
  ["header", 0x202, 4, 0x200],
  ["version", 0x206, 2, 0x200],
  ["realmode_swtch", 0x208, 4, 0x200],
  ["start_sys_seg", 0x20c, 2, 0x200],
  ["kernel_version", 0x20e, 2, 0x200],
  ["type_of_loader", 0x210, 1, 0x200],
  ["loadflags", 0x211, 1, 0x200],
  ["setup_move_size", 0x212, 2, 0x200],
  ["code32_start", 0x214, 4, 0x200],
  ["ramdisk_image", 0x218, 4, 0x200],
  ["ramdisk_size", 0x21c, 4, 0x200],
  ["bootsect_kludge", 0x220, 4, 0x200],
  ["heap_end_ptr", 0x224, 2, 0x201],
  ["ext_loader_ver", 0x226, 1, 0x202],
  ["ext_loader_type", 0x227, 1, 0x202],
  ["cmd_line_ptr", 0x228, 4, 0x202],
  ["initrd_addr_max", 0x22c, 4, 0x203],
  ["kernel_alignment", 0x230, 4, 0x205],
  ["relocatable_kernel", 0x234, 1, 0x205],
  ["min_alignment", 0x235, 1, 0x20a],
  ["xloadflags", 0x236, 2, 0x20c],
  ["cmdline_size", 0x238, 4, 0x206],
  ["hardware_subarch", 0x23c, 4, 0x207],
  ["hardware_subarch_data", 0x240, 8, 0x207],
  ["payload_offset", 0x248, 4, 0x208],
  ["payload_length", 0x24c, 4, 0x208],
  ["setup_data", 0x250, 8, 0x209],
  ["pref_address", 0x258, 8, 0x20a],
  ["init_size", 0x260, 4, 0x20a],
  ["handover_offset", 0x264, 4, 0x20b],
  ["kernel_info_offset", 0x268, 4, 0x20f],
];

/** Offset and size of a setup header field (boot.rst table), for writers such as the zero-page builder. */
export function setupHeaderField(name: FieldName): { offset: number; size: number; since: number } {
  const f = FIELDS.find((x) => x[0] === name)!;
  return { offset: f[1], size: f[2], since: f[3] };
}

/** Where the fields a protocol version defines end: the setup header is at least this long. */
export function headerEndForVersion(version: number): number {
  return FIELDS.reduce((end, [, off, size, since]) => (since <= version ? Math.max(end, off + size) : end), 0);
}

/** "2.15" for 0x020f: boot.rst, version: "(major << 8)+minor … 0x0a11 for a hypothetical version 10.17". */
export function protocolString(version: number): string {
  return `${version >> 8}.${String(version & 0xff).padStart(2, "0")}`;
}

/** What a bzImage reports in `kernel_image_arch`. */
export interface BzImageKernelArch {
  format: "bzimage";
  /** entry64 when the kernel has one (XLF_KERNEL_64), else entry32. */
  entry: bigint;
  /** boot.rst, "32-bit Boot Protocol": "the start address of loaded 32/64-bit kernel" (= B). */
  entry32: bigint;
  /** boot.rst, "64-bit Boot Protocol": B + 0x200, only when xloadflags has XLF_KERNEL_64. */
  entry64: bigint | null;
  /** Boot protocol version as "2.15". */
  protocol: string;
  /** The same as a number (0x020f). */
  protocol_version: number;
  /** B, where the protected-mode kernel was placed (the value the zero page's code32_start gets). */
  code32_start: number;
  /** setup_sects with 0 read as 4. */
  setup_sects: number;
  /** (setup_sects + 1) × 512: the real-mode part's size, and the file offset of the protected-mode kernel. */
  setup_size: number;
  /** The real-mode part of the file (boot sector + setup, with the setup header at 0x1F1). */
  setup_bytes: Uint8Array;
  /** 0x202 + the jump's offset byte at 0x201: where the setup header ends (boot.rst, "32-bit Boot Protocol"). */
  header_end: number;
  /** Bytes of protected-mode kernel placed at B (file size − setup_size). */
  kernel_size: number;
  relocatable: boolean;
  kernel_alignment: number | null;
  pref_address: bigint | null;
  /**
   * Start of the decompression window (boot.rst, init_size): for a relocatable kernel B raised
   * to pref_address and aligned up to kernel_alignment; else pref_address (or B when there is no
   * pref_address). null for a non-relocatable kernel before protocol 2.10.
   */
  runtime_start: number | null;
  /** Size of the decompression window; null before protocol 2.10. */
  init_size: number | null;
  /** xloadflags (0 before protocol 2.12, where the field does not exist). */
  xloadflags: number;
  /** The NUL-terminated string kernel_version points at (+0x200), if it lies in the setup. */
  kernel_version_string: string | null;
  setup_header: BzImageSetupHeader;
}

export interface BzImageResult {
  format: "bzimage";
  entry: bigint;
  arch: BzImageKernelArch;
}

/** A bzImage whose header passed every check that does not depend on where it goes. */
export interface BzImage {
  header: BzImageSetupHeader;
  version: number;
  setupSects: number;
  setupSize: number;
  setup: Uint8Array;
  headerEnd: number;
  kernelSize: number;
  relocatable: boolean;
  xloadflags: number;
  kernelVersion: string | null;
}

const dataView = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);

/** Detection: "HdrS" at 0x202 (boot.rst: its absence means the old, pre-2.00 protocol). */
export function isBzImage(head: Uint8Array): boolean {
  return head.length >= MAGIC_OFFSET + 4 && dataView(head).getUint32(MAGIC_OFFSET, true) === BZIMAGE_MAGIC;
}

function parseHeader(setup: Uint8Array, version: number): BzImageSetupHeader {
  const dv = dataView(setup);
  const out: Record<string, number | bigint | null> = {};
  for (const [name, off, size, since] of FIELDS) {
    if (since > version) {
      out[name] = null;
      continue;
    }
    if (name === "syssize" && version < 0x204) {
      // boot.rst, note (2): before 2.04 "the upper two bytes of the syssize field are unusable".
      out[name] = dv.getUint16(off, true);
      continue;
    }
    out[name] =
      size === 1 ? dv.getUint8(off)
        : size === 2 ? dv.getUint16(off, true)
          : size === 4 ? dv.getUint32(off, true)
            : dv.getBigUint64(off, true);
  }
  return out as unknown as BzImageSetupHeader;
}

/** boot.rst, kernel_version: "a pointer to a NUL-terminated … string, less 0x200". */
function kernelVersionString(setup: Uint8Array, ptr: number): string | null {
  if (ptr === 0) return null;
  const start = ptr + 0x200;
  if (start >= setup.length) return null;
  const limit = Math.min(setup.length, start + 256); // a version line, not a page of text
  let end = start;
  while (end < limit && setup[end] !== 0) end++;
  if (end === limit) return null;
  return String.fromCharCode(...setup.subarray(start, end));
}

/**
 * Reads and checks the header: boot_flag, "HdrS", version ≥ 2.00, the jump that gives the header
 * end, the setup size against the file, LOADED_HIGH, syssize and payload_offset/length against
 * the protected-mode part, and kernel_alignment of a relocatable kernel.
 */
export async function readBzImage(file: ImageFile): Promise<BzImage> {
  const image = file.name;
  const err = (code: ErrorCode, field: string, msg: string) => new GuestImageError(code, msg, { image, field });
  if (file.size < BZIMAGE_MIN_HEAD) {
    throw err("TRUNCATED", "header", `file is ${hex(file.size)} bytes, too short for the setup header's boot_flag, "HdrS" and version (${hex(BZIMAGE_MIN_HEAD)} bytes)`);
  }
  const head = await readBytes(file, 0, BZIMAGE_MIN_HEAD);
  const hv = dataView(head);
  const bootFlag = hv.getUint16(0x1fe, true);
  if (bootFlag !== BOOT_FLAG) {
    throw err("BAD_MAGIC", "boot_flag", `boot_flag at 0x1fe is ${hex(bootFlag)}, not ${hex(BOOT_FLAG)} (boot.rst, setup header)`);
  }
  const magic = hv.getUint32(MAGIC_OFFSET, true);
  if (magic !== BZIMAGE_MAGIC) {
    throw err("BAD_MAGIC", "header", `header at 0x202 is ${hex(magic)}, not "HdrS" (${hex(BZIMAGE_MAGIC)}): boot protocol older than 2.00 (zImage), not supported`);
  }
  const version = hv.getUint16(0x206, true);
  if (version < 0x200) {
    throw err("UNSUPPORTED", "version", `boot protocol version ${hex(version)} is older than 2.00 (an old zImage, loaded low at 0x10000): not supported`);
  }
  // boot.rst, jump: "0xEB followed by a signed offset relative to byte 0x202". A backward jump
  // or another opcode leaves the header's end unknown; a header shorter than the fields its own
  // version defines contradicts itself.
  if (head[0x200] !== JMP_SHORT) {
    throw err("BAD_HEADER", "jump", `jump at 0x200 starts with ${hex(head[0x200])}, not the short jump opcode 0xeb that gives the setup header's end`);
  }
  const headerEnd = 0x202 + head[0x201];
  if (headerEnd > SETUP_HEADER_MAX_END) {
    throw err("BAD_HEADER", "jump", `jump offset ${hex(head[0x201])} at 0x201 puts the setup header's end at ${hex(headerEnd)}, past its 144-byte limit (${hex(SETUP_HEADER_MAX_END)}) inside boot_params (a negative, i.e. backward, jump)`);
  }
  const need = headerEndForVersion(version);
  if (headerEnd < need) {
    throw err("BAD_HEADER", "jump", `jump offset ${hex(head[0x201])} at 0x201 ends the setup header at ${hex(headerEnd)}, before the end of the fields protocol ${protocolString(version)} defines (${hex(need)})`);
  }
  const setupSectsRaw = head[SETUP_HEADER_OFFSET];
  const setupSects = setupSectsRaw === 0 ? SETUP_SECTS_IF_ZERO : setupSectsRaw;
  const setupSize = (setupSects + 1) * SECTOR;
  if (setupSize >= file.size) {
    throw err("TRUNCATED", "setup_sects", `setup_sects ${setupSectsRaw}${setupSectsRaw === 0 ? " (read as 4)" : ""} makes the real-mode part ${hex(setupSize)} bytes, but the file is ${hex(file.size)} bytes: no protected-mode kernel follows`);
  }
  const setup = await readBytes(file, 0, setupSize);
  const header = parseHeader(setup, version);
  // boot.rst, "Loading The Rest of The Kernel": is_bzImage = protocol >= 0x0200 && loadflags & 0x01.
  if ((header.loadflags & LOADED_HIGH) === 0) {
    throw err("UNSUPPORTED", "loadflags", `loadflags ${hex(header.loadflags)} has LOADED_HIGH (bit 0) clear: a zImage whose protected-mode part is loaded low at 0x10000, not supported`);
  }
  const kernelSize = file.size - setupSize;
  // boot.rst, syssize: "The size of the protected-mode code in units of 16-byte paragraphs";
  // only trustworthy from 2.04 (before, the field is two bytes wide).
  if (version >= 0x204 && header.syssize * 16 > kernelSize) {
    throw err("TRUNCATED", "syssize", `syssize ${hex(header.syssize)} says the protected-mode code is ${hex(header.syssize * 16)} bytes, but the file holds ${hex(kernelSize)} after the ${hex(setupSize)}-byte setup`);
  }
  // boot.rst, payload_offset: "the offset from the beginning of the protected-mode code to the payload".
  if (header.payload_offset !== null && header.payload_length !== null && header.payload_offset !== 0 && header.payload_offset + header.payload_length > kernelSize) {
    throw err("TRUNCATED", "payload_length", `payload_offset ${hex(header.payload_offset)} + payload_length ${hex(header.payload_length)} runs past the ${hex(kernelSize)}-byte protected-mode code`);
  }
  const xloadflags = header.xloadflags ?? 0;
  if ((xloadflags & XLF_KERNEL_64) !== 0 && kernelSize <= ENTRY64_OFFSET) {
    throw err("TRUNCATED", "xloadflags", `xloadflags has XLF_KERNEL_64 (64-bit entry at +0x200), but the protected-mode code is only ${hex(kernelSize)} bytes`);
  }
  const relocatable = (header.relocatable_kernel ?? 0) !== 0;
  if (relocatable && !isPowerOfTwo(header.kernel_alignment!)) {
    throw err("BAD_HEADER", "kernel_alignment", `kernel_alignment ${hex(header.kernel_alignment!)} of a relocatable kernel is not a power of two`);
  }
  return {
    header, version, setupSects, setupSize, setup, headerEnd, kernelSize, relocatable, xloadflags,
    kernelVersion: kernelVersionString(setup, header.kernel_version),
  };
}

/** B, the decompression window's start, and the reserved range [lo, hi). */
interface Placed {
  b: number;
  runtimeStart: number | null;
  lo: number;
  hi: number;
}

/** Where the kernel goes and which range it claims (see the top of this file). */
function place(ctx: FormatContext, bz: BzImage): Placed {
  const image = ctx.file.name;
  const err = (code: ErrorCode, field: string, msg: string) => new GuestImageError(code, msg, { image, field });
  const h = bz.header;
  const b = ctx.at ?? alignUp(h.code32_start, ctx.align, { image, field: "load_address" });
  if (!bz.relocatable && b !== h.code32_start) {
    throw err(
      "BAD_ADDRESS",
      "load_address",
      `load_address ${hex(b)} is not code32_start ${hex(h.code32_start)}: the kernel is not relocatable (relocatable_kernel ${h.relocatable_kernel === null ? `absent before protocol 2.05, this is ${protocolString(bz.version)}` : "0"}), so it can only be loaded there`,
    );
  }
  const B = BigInt(b);
  const end = B + BigInt(bz.kernelSize);
  let runtimeStart: bigint | null = null;
  const pref = h.pref_address ?? 0n; // boot.rst, pref_address: "if nonzero, represents a preferred load address"
  if (bz.relocatable) {
    const la = pref !== 0n && B < pref ? pref : B;
    const a = BigInt(h.kernel_alignment!);
    runtimeStart = ((la + a - 1n) / a) * a;
  } else if (pref !== 0n) {
    runtimeStart = pref;
  } else if (h.init_size !== null) {
    runtimeStart = B; // no pref_address: a non-relocatable kernel runs where it is loaded
  }
  const initSize = BigInt(h.init_size ?? 0);
  let lo = B;
  let hi = end;
  if (runtimeStart !== null && initSize > 0n) {
    if (runtimeStart < lo) lo = runtimeStart;
    if (runtimeStart + initSize > hi) hi = runtimeStart + initSize;
  }
  if (hi > BigInt(MAX_SAFE) || (runtimeStart !== null && runtimeStart > BigInt(MAX_SAFE))) {
    throw err("BAD_ADDRESS", "load_address", `the kernel at load_address ${hex(B)} with its decompression window${runtimeStart === null ? "" : ` [${hex(runtimeStart)}, +init_size ${hex(initSize)})`} ends at ${hex(hi)}, past 2^53-1`);
  }
  // boot.rst, xloadflags: only XLF_CAN_BE_LOADED_ABOVE_4G allows the kernel above 4 GiB; a
  // kernel without it runs (and decompresses) in 32-bit mode.
  if (hi > BigInt(FOUR_GIB) && (bz.xloadflags & XLF_CAN_BE_LOADED_ABOVE_4G) === 0) {
    throw err(
      "BAD_ADDRESS",
      "load_address",
      `the kernel would occupy [${hex(lo)}, ${hex(hi)}) (load_address ${hex(B)}${runtimeStart === null || initSize === 0n ? "" : `, decompressing into [${hex(runtimeStart)}, ${hex(runtimeStart + initSize)})`}), which ends above 4 GiB, but xloadflags ${hex(bz.xloadflags)} lacks XLF_CAN_BE_LOADED_ABOVE_4G`,
    );
  }
  return { b, runtimeStart: runtimeStart === null ? null : Number(runtimeStart), lo: Number(lo), hi: Number(hi) };
}

export async function planBzImage(ctx: FormatContext): Promise<LoadPlan<BzImageResult>> {
  const file = ctx.file;
  if (ctx.relocs !== undefined) {
    throw new GuestImageError("BAD_ARGUMENT", "relocs data applies to ELF kernels only (a bzImage relocates itself)", { image: file.name, field: "relocs" });
  }
  const bz = await readBzImage(file);
  const p = place(ctx, bz);
  const h = bz.header;
  // The general check would refuse a window outside RAM too, naming only the whole range; say why.
  if (p.runtimeStart !== null && h.init_size) {
    const hole = ctx.ram.pieces(p.runtimeStart, h.init_size);
    if (!Array.isArray(hole)) {
      throw new GuestImageError(
        "OUT_OF_RAM",
        `the kernel decompresses into [runtime_start ${hex(p.runtimeStart)}, +init_size ${hex(h.init_size)}) (boot.rst, init_size), but ${hex(hole.hole)} is in no RAM region (RAM: ${ctx.ram.describe()})`,
        { image: file.name, field: "init_size" },
      );
    }
  }
  const entry32 = BigInt(p.b);
  const entry64 = (bz.xloadflags & XLF_KERNEL_64) !== 0 ? entry32 + BigInt(ENTRY64_OFFSET) : null;
  const entry = entry64 ?? entry32;
  const arch: BzImageKernelArch = {
    format: "bzimage",
    entry,
    entry32,
    entry64,
    protocol: protocolString(bz.version),
    protocol_version: bz.version,
    code32_start: p.b,
    setup_sects: bz.setupSects,
    setup_size: bz.setupSize,
    setup_bytes: bz.setup,
    header_end: bz.headerEnd,
    kernel_size: bz.kernelSize,
    relocatable: bz.relocatable,
    kernel_alignment: h.kernel_alignment,
    pref_address: h.pref_address,
    runtime_start: p.runtimeStart,
    init_size: h.init_size,
    xloadflags: bz.xloadflags,
    kernel_version_string: bz.kernelVersion,
    setup_header: h,
  };
  return {
    name: file.name,
    file,
    paddr: p.b,
    size: bz.kernelSize,
    // The window the kernel decompresses into is kept free too; where it overlaps or touches
    // the loaded kernel the two are recorded as one range.
    reserve: p.runtimeStart !== null && h.init_size ? [{ what: "decompression window", paddr: p.runtimeStart, size: h.init_size }] : [],
    copies: [{ dst: p.b, src: bz.setupSize, len: bz.kernelSize }],
    zeros: [],
    relocs: [],
    patchable: [],
    result: { format: "bzimage", entry, arch },
  };
}

export const bzImageFormat: ImageFormat = {
  name: "bzimage",
  description: "an x86 Linux bzImage (boot protocol 2.00+)",
  test: isBzImage,
  planKernel: planBzImage,
  async inspect(file) {
    const bz = await readBzImage(file);
    return {
      machine: (bz.xloadflags & XLF_KERNEL_64) !== 0 ? "x86_64" : "x86",
      endian: "little",
      protocol: protocolString(bz.version),
      setup_sects: bz.setupSects,
      setup_size: bz.setupSize,
      kernel_size: bz.kernelSize,
      header_end: bz.headerEnd,
      relocatable: bz.relocatable,
      kernel_version_string: bz.kernelVersion,
      setup_header: bz.header,
      // boot.rst "The kernel_info" (protocol 2.15): null when absent. A malformed one does not stop
      // the kernel from loading (only setup_data needs it), so inspect reports why instead of failing.
      ...(await readKernelInfo(file, bz).then(
        (kernel_info) => ({ kernel_info }),
        (e) => {
          if (!(e instanceof GuestImageError)) throw e;
          return { kernel_info: null, kernel_info_error: { code: e.code, message: e.message } };
        },
      )),
    };
  },
};
