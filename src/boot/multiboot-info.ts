// The Multiboot information structure (GNU Multiboot Specification 0.6.96, "3.3 Boot
// information format"): what EBX points at when a Multiboot kernel is entered.
//
// This builds the bytes; it writes nothing. The caller places them through the checked path,
// `vm.place("multiboot-info", bytes, { at })`, so they land inside RAM and never overlap the
// kernel or a module. Layout, from `at` (every pointer in it is absolute, `at` + offset):
//
//   at + 0     multiboot_info, the full 116-byte layout of the spec (QEMU writes only the
//              first 88 bytes). The VBE fields (72-87, flag 11) and framebuffer fields (88-115,
//              flag 12) are filled when the caller describes its display (`vbe`, `framebuffer`):
//              a kernel whose header sets flags bit 2 ("information about the video mode table
//              must be available to the kernel", spec 3.1.2) needs one of them, and is refused
//              (UNSUPPORTED, naming the flag) without.
//   at + 116   module list: 16 bytes per module {mod_start, mod_end, string, reserved}
//   then       memory map: 24 bytes per entry {u32 size = 20, u64 base_addr, u64 length, u32 type}
//   then       strings, NUL-terminated UTF-8: the command line, each module's string, the boot
//              loader name
//
// Every field is a u32 physical address, so the whole structure, every string and every module
// must lie below 4 GiB (the memory map's base/length are u64 and may describe RAM above).
import { GuestImageError } from "../errors.js";
import { checkAddress, hex } from "../num.js";
import type { RamRegion } from "../ram/guest-ram.js";

/** Size of multiboot_info up to and including the framebuffer fields (spec 3.3). */
export const MULTIBOOT_INFO_SIZE = 116;
export const MULTIBOOT_MODULE_SIZE = 16;
/** One memory map entry including its leading size field; `size` itself says 20. */
export const MULTIBOOT_MMAP_ENTRY_SIZE = 24;
/** Spec 3.3, mmap "type": 1 = available RAM. */
export const MULTIBOOT_MEMORY_AVAILABLE = 1;

/** Spec 3.3: which multiboot_info fields are valid. */
export const MBI_FLAG_MEMORY = 1 << 0; // mem_lower, mem_upper
export const MBI_FLAG_CMDLINE = 1 << 2; // cmdline
export const MBI_FLAG_MODS = 1 << 3; // mods_count, mods_addr
export const MBI_FLAG_MMAP = 1 << 6; // mmap_length, mmap_addr
export const MBI_FLAG_BOOT_LOADER_NAME = 1 << 9; // boot_loader_name
export const MBI_FLAG_VBE = 1 << 11; // vbe_control_info … vbe_interface_len
export const MBI_FLAG_FRAMEBUFFER = 1 << 12; // framebuffer_addr … color_info

/** Byte offsets in multiboot_info (spec 3.3 table). */
export const MBI = {
  flags: 0, mem_lower: 4, mem_upper: 8, boot_device: 12, cmdline: 16, mods_count: 20, mods_addr: 24,
  syms: 28, mmap_length: 44, mmap_addr: 48, drives_length: 52, drives_addr: 56, config_table: 60,
  boot_loader_name: 64, apm_table: 68, vbe_control_info: 72, vbe_mode_info: 76, vbe_mode: 80,
  vbe_interface_seg: 82, vbe_interface_off: 84, vbe_interface_len: 86, framebuffer_addr: 88,
  framebuffer_pitch: 96, framebuffer_width: 100, framebuffer_height: 104, framebuffer_bpp: 108,
  framebuffer_type: 109, color_info: 110,
} as const;

const KIB = 1024;
const LOWER_START = 0;
const LOWER_MAX = 640 * KIB; // spec 3.3: "The maximum possible value for lower memory is 640 kilobytes."
const UPPER_START = 1024 * KIB; // "upper memory starts at address 1 megabyte"
const FOUR_GIB = 2 ** 32;
const PAGE = 4096;

export interface MultibootModuleInfo {
  /** Guest physical address of the module's first byte (mod_start). */
  paddr: number;
  /** Bytes; mod_end = paddr + size, the first byte after the module (as GRUB and QEMU write it). */
  size: number;
  /** The module's string (spec: "an arbitrary string to be associated with that particular boot module"). */
  cmdline?: string;
}

export interface MultibootInfoOptions {
  /** Guest physical address where the structure (and its tables and strings) will be placed. */
  at: number;
  /** Guest RAM; mem_lower/mem_upper and the memory map are derived from it. */
  ram: readonly RamRegion[];
  /** The kernel command line (flag 2). */
  cmdline?: string;
  /** Boot modules (flag 3); an empty list still sets the flag, with mods_count 0. */
  modules?: readonly MultibootModuleInfo[];
  /** Flag 9. */
  bootLoaderName?: string;
  /** The kernel's header flag bit 0: every module must start on a 4 KiB boundary. */
  pageAlignModules?: boolean;
  /**
   * The kernel's header flag bit 2 (MultibootKernelArch.requirements.video_mode): video mode
   * information must be provided, so `framebuffer` or `vbe` is required.
   */
  videoMode?: boolean;
  /** Flag 12: the framebuffer the kernel is handed (spec 3.3, framebuffer_*). */
  framebuffer?: MultibootFramebuffer;
  /** Flag 11: VBE information (spec 3.3, vbe_*): where the caller placed the VBE 00h/01h results. */
  vbe?: MultibootVbe;
}

/** Spec 3.3 framebuffer_type: 0 indexed colour, 1 direct RGB, 2 EGA text. */
export type MultibootFramebuffer =
  & { addr: number; pitch: number; width: number; height: number; bpp: number }
  & (
    | { type: "indexed"; paletteAddr: number; paletteColors: number }
    | { type: "rgb"; red: { position: number; size: number }; green: { position: number; size: number }; blue: { position: number; size: number } }
    | { type: "text" }
  );

export interface MultibootVbe {
  /** Physical address of the VBE control information (VBE function 00h), u32. */
  controlInfo: number;
  /** Physical address of the VBE mode information (VBE function 01h), u32. */
  modeInfo: number;
  /** The current video mode, VBE 3.0 format (u16). */
  mode: number;
  /** VBE 2.0+ protected mode interface: segment, offset, length (u16 each; 0 when absent). */
  interfaceSeg?: number;
  interfaceOff?: number;
  interfaceLen?: number;
}

export interface MultibootInfo {
  bytes: Uint8Array;
  size: number;
  /** Where each part lies (absolute guest physical addresses; null when absent). */
  layout: {
    info: number;
    mods_addr: number | null;
    mmap_addr: number;
    mmap_length: number;
    cmdline: number | null;
    boot_loader_name: number | null;
  };
  mem_lower: number;
  mem_upper: number;
}

function bad(code: "BAD_ARGUMENT" | "BAD_ADDRESS" | "BAD_ALIGNMENT", field: string, msg: string): never {
  throw new GuestImageError(code, msg, { image: "multiboot-info", field });
}

/** A NUL-terminated string; an embedded NUL would cut it short, so it is refused. */
function cString(s: unknown, field: string): Uint8Array {
  if (typeof s !== "string") bad("BAD_ARGUMENT", field, `${field} must be a string, got ${typeof s}`);
  if (s.includes("\0")) bad("BAD_ARGUMENT", field, `${field} contains a NUL character, which would end the C string early`);
  const enc = new TextEncoder().encode(s);
  const out = new Uint8Array(enc.length + 1);
  out.set(enc);
  return out;
}

/** RAM as sorted, merged [base, end) ranges: one memory map entry per contiguous range. */
function ranges(ram: readonly RamRegion[]): Array<[number, number]> {
  if (!Array.isArray(ram) || ram.length === 0) bad("BAD_ARGUMENT", "ram", "ram must list at least one {base, size} region");
  const rs = ram.map((r, i) => {
    const base = checkAddress(r?.base, `ram[${i}].base`, { image: "multiboot-info" });
    const size = checkAddress(r?.size, `ram[${i}].size`, { image: "multiboot-info" });
    if (size === 0) bad("BAD_ARGUMENT", "ram", `ram[${i}].size is 0`);
    return [base, base + size] as [number, number];
  }).sort((a, b) => a[0] - b[0]);
  const out: Array<[number, number]> = [];
  for (const [b, e] of rs) {
    const last = out[out.length - 1];
    if (last && b < last[1]) bad("BAD_ARGUMENT", "ram", `RAM regions overlap at ${hex(b)}`);
    if (last && b === last[1]) last[1] = e;
    else out.push([b, e]);
  }
  return out;
}

/** KiB of RAM contiguous from `start` (0 if `start` is not RAM), at most `max` bytes. */
function contiguousKiB(rs: Array<[number, number]>, start: number, max: number): number {
  const r = rs.find(([b, e]) => b <= start && start < e);
  return r ? Math.floor(Math.min(r[1] - start, max) / KIB) : 0;
}

function intIn(v: unknown, field: string, max: number): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0 || v > max) {
    bad("BAD_ARGUMENT", field, `${field} must be an integer in [0, ${hex(max)}], got ${String(v)}`);
  }
  return v as number;
}

/** Spec 3.3 framebuffer_* and color_info (6 bytes), validated to their field widths. */
function framebufferFields(f: MultibootFramebuffer): { addr: number; pitch: number; width: number; height: number; bpp: number; type: number; colorInfo: Uint8Array } {
  if (!f || typeof f !== "object") bad("BAD_ARGUMENT", "framebuffer", "framebuffer must be an object");
  const U32 = 0xffffffff;
  const addr = checkAddress(f.addr, "framebuffer.addr", { image: "multiboot-info" }); // u64 in the structure
  const pitch = intIn(f.pitch, "framebuffer.pitch", U32);
  const width = intIn(f.width, "framebuffer.width", U32);
  const height = intIn(f.height, "framebuffer.height", U32);
  const bpp = intIn(f.bpp, "framebuffer.bpp", 0xff);
  const colorInfo = new Uint8Array(6);
  const cv = new DataView(colorInfo.buffer);
  let type: number;
  if (f.type === "indexed") {
    type = 0;
    // color_info: framebuffer_palette_addr (u32), framebuffer_palette_num_colors (u16).
    cv.setUint32(0, intIn(f.paletteAddr, "framebuffer.paletteAddr", U32), true);
    cv.setUint16(4, intIn(f.paletteColors, "framebuffer.paletteColors", 0xffff), true);
  } else if (f.type === "rgb") {
    type = 1;
    // color_info: red_field_position, red_mask_size, green_…, blue_… (u8 each).
    (["red", "green", "blue"] as const).forEach((c, i) => {
      const ch = f[c];
      if (!ch || typeof ch !== "object") bad("BAD_ARGUMENT", `framebuffer.${c}`, `framebuffer.${c} must be { position, size }`);
      colorInfo[2 * i] = intIn(ch.position, `framebuffer.${c}.position`, 0xff);
      colorInfo[2 * i + 1] = intIn(ch.size, `framebuffer.${c}.size`, 0xff);
    });
  } else if (f.type === "text") {
    type = 2; // EGA text: width/height in characters, pitch in bytes per line, bpp 16; no color_info
  } else {
    bad("BAD_ARGUMENT", "framebuffer.type", `framebuffer.type must be "indexed", "rgb" or "text", got ${JSON.stringify((f as { type: unknown }).type)}`);
  }
  return { addr, pitch, width, height, bpp, type: type!, colorInfo };
}

function vbeFields(v: MultibootVbe): { controlInfo: number; modeInfo: number; mode: number; seg: number; off: number; len: number } {
  if (!v || typeof v !== "object") bad("BAD_ARGUMENT", "vbe", "vbe must be an object");
  return {
    controlInfo: intIn(v.controlInfo, "vbe.controlInfo", 0xffffffff),
    modeInfo: intIn(v.modeInfo, "vbe.modeInfo", 0xffffffff),
    mode: intIn(v.mode, "vbe.mode", 0xffff),
    seg: intIn(v.interfaceSeg ?? 0, "vbe.interfaceSeg", 0xffff),
    off: intIn(v.interfaceOff ?? 0, "vbe.interfaceOff", 0xffff),
    len: intIn(v.interfaceLen ?? 0, "vbe.interfaceLen", 0xffff),
  };
}

/** Builds the Multiboot information structure for placement at `opts.at`. */
export function buildMultibootInfo(opts: MultibootInfoOptions): MultibootInfo {
  if (!opts || typeof opts !== "object") bad("BAD_ARGUMENT", "options", "buildMultibootInfo needs an options object");
  const at = checkAddress(opts.at, "at", { image: "multiboot-info" });
  const rs = ranges(opts.ram);
  const modules = opts.modules;
  if (modules !== undefined && !Array.isArray(modules)) bad("BAD_ARGUMENT", "modules", "modules must be an array");

  // Spec 3.3 "mem_lower and mem_upper indicate the amount of lower and upper memory,
  // respectively, in kilobytes. Lower memory starts at address 0, and upper memory starts at
  // address 1 megabyte. ... The value returned for upper memory is maximally the address of the
  // first upper memory hole minus 1 megabyte." Both are u32.
  const mem_lower = contiguousKiB(rs, LOWER_START, LOWER_MAX);
  const mem_upper = Math.min(contiguousKiB(rs, UPPER_START, Number.MAX_SAFE_INTEGER), 0xffffffff);

  const mods = (modules ?? []).map((m, i) => {
    const field = `modules[${i}]`;
    const paddr = checkAddress(m?.paddr, `${field}.paddr`, { image: "multiboot-info" });
    const size = checkAddress(m?.size, `${field}.size`, { image: "multiboot-info" });
    // mod_start and mod_end are u32, and mod_end (the first byte after the module) must be one.
    if (paddr + size > FOUR_GIB - 1) {
      bad("BAD_ADDRESS", `${field}.paddr`, `${field}.paddr ${hex(paddr)} + size ${hex(size)} ends at ${hex(paddr + size)}, but mod_start and mod_end are 32-bit: a module must end below 4 GiB`);
    }
    // Spec 3.1.2, flags bit 0: "all boot modules loaded along with the operating system must be
    // aligned on page (4KB) boundaries."
    if (opts.pageAlignModules && paddr % PAGE !== 0) {
      bad("BAD_ALIGNMENT", `${field}.paddr`, `${field}.paddr ${hex(paddr)} is not 4 KiB aligned, but the kernel asks for page-aligned modules (Multiboot header flags bit 0)`);
    }
    return { paddr, end: paddr + size, str: m.cmdline === undefined ? null : cString(m.cmdline, `${field}.cmdline`) };
  });
  const fb = opts.framebuffer === undefined ? null : framebufferFields(opts.framebuffer);
  const vbe = opts.vbe === undefined ? null : vbeFields(opts.vbe);
  if (opts.videoMode && !fb && !vbe) {
    throw new GuestImageError(
      "UNSUPPORTED",
      "the kernel's Multiboot header sets flags bit 2 (video mode information must be provided, spec 3.1.2), but no framebuffer or vbe description was given to fill the info structure's fields (flags 11/12)",
      { image: "multiboot-info", field: "flags" },
    );
  }
  const cmdline = opts.cmdline === undefined ? null : cString(opts.cmdline, "cmdline");
  const loaderName = opts.bootLoaderName === undefined ? null : cString(opts.bootLoaderName, "bootLoaderName");

  // Offsets inside the blob.
  const modsOff = MULTIBOOT_INFO_SIZE;
  const mmapOff = modsOff + mods.length * MULTIBOOT_MODULE_SIZE;
  const mmapLength = rs.length * MULTIBOOT_MMAP_ENTRY_SIZE;
  let strOff = mmapOff + mmapLength;
  const place = (s: Uint8Array | null): number | null => {
    if (!s) return null;
    const o = strOff;
    strOff += s.length;
    return o;
  };
  const cmdlineOff = place(cmdline);
  const modStrOff = mods.map((m) => place(m.str));
  const loaderOff = place(loaderName);
  const size = strOff;
  // Every pointer the kernel follows is a u32: the whole blob must sit below 4 GiB.
  if (at + size > FOUR_GIB) {
    bad("BAD_ADDRESS", "at", `at ${hex(at)}: the structure [${hex(at)}, ${hex(at + size)}) must lie below 4 GiB (its pointers are 32-bit)`);
  }

  const bytes = new Uint8Array(size);
  const dv = new DataView(bytes.buffer);
  const w32 = (o: number, v: number) => dv.setUint32(o, v, true);
  let flags = MBI_FLAG_MEMORY | MBI_FLAG_MMAP;
  w32(MBI.mem_lower, mem_lower);
  w32(MBI.mem_upper, mem_upper);
  if (cmdline) {
    flags |= MBI_FLAG_CMDLINE;
    w32(MBI.cmdline, at + cmdlineOff!);
    bytes.set(cmdline, cmdlineOff!);
  }
  if (modules !== undefined) {
    flags |= MBI_FLAG_MODS;
    w32(MBI.mods_count, mods.length);
    w32(MBI.mods_addr, at + modsOff);
    mods.forEach((m, i) => {
      const o = modsOff + i * MULTIBOOT_MODULE_SIZE;
      w32(o + 0, m.paddr); // mod_start
      w32(o + 4, m.end); // mod_end
      const so = modStrOff[i];
      w32(o + 8, so === null ? 0 : at + so); // string: 0 when the module has none
      // o + 12: reserved, 0
      if (so !== null) bytes.set(m.str!, so);
    });
  }
  // Spec 3.3 memory map: mmap_addr points at the first entry's size field; mmap_length is the
  // buffer's total size. "size" counts the bytes after itself (20).
  w32(MBI.mmap_length, mmapLength);
  w32(MBI.mmap_addr, at + mmapOff);
  rs.forEach(([b, e], i) => {
    const o = mmapOff + i * MULTIBOOT_MMAP_ENTRY_SIZE;
    w32(o, MULTIBOOT_MMAP_ENTRY_SIZE - 4);
    dv.setBigUint64(o + 4, BigInt(b), true);
    dv.setBigUint64(o + 12, BigInt(e - b), true);
    w32(o + 20, MULTIBOOT_MEMORY_AVAILABLE);
  });
  if (loaderName) {
    flags |= MBI_FLAG_BOOT_LOADER_NAME;
    w32(MBI.boot_loader_name, at + loaderOff!);
    bytes.set(loaderName, loaderOff!);
  }
  if (vbe) {
    flags |= MBI_FLAG_VBE;
    w32(MBI.vbe_control_info, vbe.controlInfo);
    w32(MBI.vbe_mode_info, vbe.modeInfo);
    dv.setUint16(MBI.vbe_mode, vbe.mode, true);
    dv.setUint16(MBI.vbe_interface_seg, vbe.seg, true);
    dv.setUint16(MBI.vbe_interface_off, vbe.off, true);
    dv.setUint16(MBI.vbe_interface_len, vbe.len, true);
  }
  if (fb) {
    flags |= MBI_FLAG_FRAMEBUFFER;
    dv.setBigUint64(MBI.framebuffer_addr, BigInt(fb.addr), true);
    w32(MBI.framebuffer_pitch, fb.pitch);
    w32(MBI.framebuffer_width, fb.width);
    w32(MBI.framebuffer_height, fb.height);
    bytes[MBI.framebuffer_bpp] = fb.bpp;
    bytes[MBI.framebuffer_type] = fb.type;
    bytes.set(fb.colorInfo, MBI.color_info);
  }
  w32(MBI.flags, flags);
  return {
    bytes,
    size,
    layout: {
      info: at,
      mods_addr: modules !== undefined ? at + modsOff : null,
      mmap_addr: at + mmapOff,
      mmap_length: mmapLength,
      cmdline: cmdlineOff === null ? null : at + cmdlineOff,
      boot_loader_name: loaderOff === null ? null : at + loaderOff,
    },
    mem_lower,
    mem_upper,
  };
}
