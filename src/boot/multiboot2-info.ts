// The Multiboot2 information structure (The Multiboot2 Specification 2.0, "3.6 Boot
// information"): what EBX (MIPS: R5) points at when a Multiboot 2 kernel is entered.
//
// This builds the bytes; it writes nothing. The caller places them through the checked path,
// `vm.place("multiboot2-info", bytes, { auto: { align: 8, max: 2 ** 32 } })`, so they land inside
// RAM, 8-byte aligned ("Its start is 8-bytes aligned") and below 4 GiB (EBX is 32-bit), and never
// overlap the kernel or a module. Unlike Multiboot 1's, the structure holds no pointer into
// itself, so its bytes do not depend on where it goes.
//
// Layout: u32 total_size, u32 reserved (0), then tags {u32 type, u32 size, …}, each starting
// 8-byte aligned (padding zero, not counted in size), ended by {0, 8}. Tags written, in this order:
//   21 load base address (relocatable kernels)  1 command line       2 boot loader name
//    3 one per module: mod_start, mod_end (first byte after the module, as GRUB writes it), string
//    4 basic memory information                 6 memory map (entry_size 24, entry_version 0)
//    9 ELF sections (ELF kernels)                8 framebuffer          13 SMBIOS
//   14 ACPI old RSDP  15 ACPI new RSDP (when the caller passes them)
//
// Where the specification text and GRUB (include/multiboot2.h, the structures GRUB writes and
// kernels read) disagree, GRUB's layout is used: the ELF sections tag has u32 num, entsize and
// shndx (the text says u16 ×4), and the framebuffer tag's reserved field is a u16, so color_info
// starts at offset 32 (the text says u8).
import { GuestImageError } from "../errors.js";
import { checkAddress, hex } from "../num.js";
import type { RamRegion } from "../ram/guest-ram.js";

/** Spec 3.6.8, entry type: 1 available RAM, 2 (any value but 1, 3, 4, 5) reserved. */
export const MB2_MEMORY_AVAILABLE = 1;
export const MB2_MEMORY_RESERVED = 2;
export const MB2_MEMORY_ACPI_RECLAIMABLE = 3;
export const MB2_MEMORY_NVS = 4;
export const MB2_MEMORY_BADRAM = 5;
/** Spec 3.6.8: "entry_size … guaranteed to be a multiple of 8"; version 0 entries are 24 bytes. */
export const MB2_MMAP_ENTRY_SIZE = 24;

const KIB = 1024;
const LOWER_MAX = 640 * KIB; // spec 3.6.3: "The maximum possible value for lower memory is 640 kilobytes."
const UPPER_START = 1024 * KIB; // "upper memory starts at address 1 megabyte"
const FOUR_GIB = 2 ** 32;
const PAGE = 4096;

export interface Multiboot2ModuleInfo {
  /** mod_start. */
  paddr: number;
  /** Bytes; mod_end = paddr + size. */
  size: number;
  /** The module's string (spec 3.6.6); empty when omitted. */
  cmdline?: string;
}

/** A memory map entry the caller adds (types other than 1 carve the range out of available RAM). */
export interface Multiboot2MemoryRange {
  base: number;
  size: number;
  /** Spec 3.6.8 type; default 2 (reserved). */
  type?: number;
}

/** Framebuffer info tag (spec 3.6.12), for a framebuffer the caller has set up. */
export interface Multiboot2Framebuffer {
  addr: number;
  pitch: number;
  width: number;
  height: number;
  bpp: number;
  /** "indexed" (0) with a palette, "rgb" (1) with field positions and mask sizes, "ega-text" (2). */
  type: "indexed" | "rgb" | "ega-text";
  palette?: ReadonlyArray<readonly [number, number, number]>;
  rgb?: { red: readonly [number, number]; green: readonly [number, number]; blue: readonly [number, number] };
}

export interface Multiboot2ElfSections {
  /** Number of section headers, their size, and the section name string table's index. */
  num: number;
  entsize: number;
  shndx: number;
  /** The section header table, num × entsize bytes (sh_addr of sections not loaded may be 0). */
  headers: Uint8Array;
}

export interface Multiboot2InfoOptions {
  /** Guest RAM; basic memory information and the memory map are derived from it. */
  ram: readonly RamRegion[];
  /** Further memory map entries: reserved ranges (default type 2) cut out of RAM, or other types. */
  memoryRanges?: readonly Multiboot2MemoryRange[];
  cmdline?: string;
  bootLoaderName?: string;
  modules?: readonly Multiboot2ModuleInfo[];
  /** The kernel's module alignment tag: every module must start on a 4 KiB boundary. */
  pageAlignModules?: boolean;
  elfSections?: Multiboot2ElfSections;
  /** Tag 21, for a kernel with a relocatable header tag: where the image was loaded. */
  loadBaseAddr?: number;
  framebuffer?: Multiboot2Framebuffer;
  /** ACPI 1.0 RSDP (20 bytes) for tag 14. */
  acpiRsdpV1?: Uint8Array;
  /** ACPI 2.0+ RSDP (its `length`, at least 36 bytes) for tag 15. */
  acpiRsdpV2?: Uint8Array;
  smbios?: { major: number; minor: number; tables: Uint8Array };
}

export interface Multiboot2Info {
  bytes: Uint8Array;
  size: number;
  /** Each tag written: type, offset in `bytes`, size (without padding). */
  tags: Array<{ type: number; offset: number; size: number }>;
  mem_lower: number;
  mem_upper: number;
  /** The memory map as written. */
  mmap: Array<{ base: number; length: number; type: number }>;
}

function bad(code: "BAD_ARGUMENT" | "BAD_ADDRESS" | "BAD_ALIGNMENT", field: string, msg: string): never {
  throw new GuestImageError(code, msg, { image: "multiboot2-info", field });
}

function cString(s: unknown, field: string): Uint8Array {
  if (typeof s !== "string") bad("BAD_ARGUMENT", field, `${field} must be a string, got ${typeof s}`);
  if (s.includes("\0")) bad("BAD_ARGUMENT", field, `${field} contains a NUL character, which would end the C string early`);
  const enc = new TextEncoder().encode(s);
  const out = new Uint8Array(enc.length + 1);
  out.set(enc);
  return out;
}

function u32Arg(v: unknown, field: string, max = 0xffffffff): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0 || v > max) bad("BAD_ARGUMENT", field, `${field} must be an integer from 0 to ${hex(max)}, got ${String(v)}`);
  return v;
}

function bytesArg(v: unknown, field: string, min: number): Uint8Array {
  if (!(v instanceof Uint8Array)) bad("BAD_ARGUMENT", field, `${field} must be a Uint8Array`);
  if (v.length < min) bad("BAD_ARGUMENT", field, `${field} is ${v.length} bytes, needs at least ${min}`);
  if (v.length > 0xffff_0000) bad("BAD_ARGUMENT", field, `${field} is too large for a tag`);
  return v;
}

/**
 * The memory map: RAM regions as available (type 1), then every caller range laid over them
 * (a later range wins where ranges overlap), as sorted, non-overlapping, merged entries.
 */
export function multiboot2MemoryMap(ram: readonly RamRegion[], ranges: readonly Multiboot2MemoryRange[] = []): Array<{ base: number; length: number; type: number }> {
  if (!Array.isArray(ram) || ram.length === 0) bad("BAD_ARGUMENT", "ram", "ram must list at least one {base, size} region");
  if (!Array.isArray(ranges)) bad("BAD_ARGUMENT", "memoryRanges", "memoryRanges must be an array");
  const spans: Array<{ base: number; end: number; type: number }> = [];
  ram.forEach((r, i) => {
    const base = checkAddress(r?.base, `ram[${i}].base`, { image: "multiboot2-info" });
    const size = checkAddress(r?.size, `ram[${i}].size`, { image: "multiboot2-info" });
    if (size === 0 || base + size > Number.MAX_SAFE_INTEGER) bad("BAD_ARGUMENT", "ram", `ram[${i}] is empty or ends past 2^53-1`);
    spans.push({ base, end: base + size, type: MB2_MEMORY_AVAILABLE });
  });
  spans.sort((a, b) => a.base - b.base);
  for (let i = 1; i < spans.length; i++) if (spans[i].base < spans[i - 1].end) bad("BAD_ARGUMENT", "ram", `RAM regions overlap at ${hex(spans[i].base)}`);
  let map = spans;
  ranges.forEach((r, i) => {
    const f = `memoryRanges[${i}]`;
    const base = checkAddress(r?.base, `${f}.base`, { image: "multiboot2-info" });
    const size = checkAddress(r?.size, `${f}.size`, { image: "multiboot2-info" });
    if (size === 0 || base + size > Number.MAX_SAFE_INTEGER) bad("BAD_ARGUMENT", f, `${f} is empty or ends past 2^53-1`);
    const type = r.type === undefined ? MB2_MEMORY_RESERVED : u32Arg(r.type, `${f}.type`);
    if (type === 0) bad("BAD_ARGUMENT", `${f}.type`, `${f}.type 0 is not a memory type`);
    const end = base + size;
    const next: typeof map = [];
    for (const s of map) {
      if (s.end <= base || s.base >= end) next.push(s);
      else {
        if (s.base < base) next.push({ base: s.base, end: base, type: s.type });
        if (s.end > end) next.push({ base: end, end: s.end, type: s.type });
      }
    }
    next.push({ base, end, type });
    map = next.sort((a, b) => a.base - b.base);
  });
  const out: Array<{ base: number; length: number; type: number }> = [];
  for (const s of map) {
    const last = out[out.length - 1];
    if (last && last.base + last.length === s.base && last.type === s.type) last.length += s.end - s.base;
    else out.push({ base: s.base, length: s.end - s.base, type: s.type });
  }
  return out;
}

/** KiB of available RAM contiguous from `start` (0 if `start` is not available RAM), at most `max` bytes. */
function contiguousKiB(map: ReadonlyArray<{ base: number; length: number; type: number }>, start: number, max: number): number {
  let end = start;
  for (const e of map) {
    if (e.type !== MB2_MEMORY_AVAILABLE) continue;
    if (e.base <= end && e.base + e.length > end) end = e.base + e.length;
  }
  return Math.floor(Math.min(end - start, max) / KIB);
}

/** Builds the Multiboot2 information structure (8-byte aligned placement is the caller's). */
export function buildMultiboot2Info(opts: Multiboot2InfoOptions): Multiboot2Info {
  if (!opts || typeof opts !== "object") bad("BAD_ARGUMENT", "options", "buildMultiboot2Info needs an options object");
  const mmap = multiboot2MemoryMap(opts.ram, opts.memoryRanges ?? []);
  const mem_lower = contiguousKiB(mmap, 0, LOWER_MAX);
  const mem_upper = Math.min(contiguousKiB(mmap, UPPER_START, Number.MAX_SAFE_INTEGER), 0xffffffff);

  const parts: Array<{ type: number; body: Uint8Array }> = [];
  const tag = (type: number, size: number, fill: (d: DataView, b: Uint8Array) => void) => {
    const body = new Uint8Array(size - 8);
    fill(new DataView(body.buffer), body);
    parts.push({ type, body });
  };

  if (opts.loadBaseAddr !== undefined) {
    const base = u32Arg(opts.loadBaseAddr, "loadBaseAddr");
    tag(21, 12, (d) => d.setUint32(0, base, true));
  }
  if (opts.cmdline !== undefined) {
    const s = cString(opts.cmdline, "cmdline");
    tag(1, 8 + s.length, (_d, b) => b.set(s));
  }
  if (opts.bootLoaderName !== undefined) {
    const s = cString(opts.bootLoaderName, "bootLoaderName");
    tag(2, 8 + s.length, (_d, b) => b.set(s));
  }
  const modules = opts.modules ?? [];
  if (!Array.isArray(modules)) bad("BAD_ARGUMENT", "modules", "modules must be an array");
  modules.forEach((m, i) => {
    const f = `modules[${i}]`;
    const paddr = checkAddress(m?.paddr, `${f}.paddr`, { image: "multiboot2-info" });
    const size = checkAddress(m?.size, `${f}.size`, { image: "multiboot2-info" });
    // mod_start and mod_end are u32, and mod_end is the first byte after the module.
    if (paddr + size > FOUR_GIB - 1) bad("BAD_ADDRESS", `${f}.paddr`, `${f} [${hex(paddr)}, ${hex(paddr + size)}) must end below 4 GiB: mod_start and mod_end are 32-bit`);
    if (opts.pageAlignModules && paddr % PAGE !== 0) bad("BAD_ALIGNMENT", `${f}.paddr`, `${f}.paddr ${hex(paddr)} is not 4 KiB aligned, but the kernel's module alignment tag asks for page-aligned modules`);
    const s = cString(m.cmdline ?? "", `${f}.cmdline`);
    tag(3, 16 + s.length, (d, b) => {
      d.setUint32(0, paddr, true);
      d.setUint32(4, paddr + size, true);
      b.set(s, 8);
    });
  });
  tag(4, 16, (d) => {
    d.setUint32(0, mem_lower, true);
    d.setUint32(4, mem_upper, true);
  });
  tag(6, 16 + mmap.length * MB2_MMAP_ENTRY_SIZE, (d) => {
    d.setUint32(0, MB2_MMAP_ENTRY_SIZE, true); // entry_size
    d.setUint32(4, 0, true); // entry_version
    mmap.forEach((e, i) => {
      const o = 8 + i * MB2_MMAP_ENTRY_SIZE;
      d.setBigUint64(o, BigInt(e.base), true);
      d.setBigUint64(o + 8, BigInt(e.length), true);
      d.setUint32(o + 16, e.type, true);
      // o + 20: reserved, 0
    });
  });
  if (opts.elfSections !== undefined) {
    const e = opts.elfSections;
    const num = u32Arg(e?.num, "elfSections.num", 0xffff);
    const entsize = u32Arg(e?.entsize, "elfSections.entsize", 0xffff);
    const shndx = u32Arg(e?.shndx, "elfSections.shndx", 0xffff);
    const headers = bytesArg(e?.headers, "elfSections.headers", 0);
    if (headers.length !== num * entsize) bad("BAD_ARGUMENT", "elfSections.headers", `elfSections.headers is ${headers.length} bytes, num × entsize is ${num * entsize}`);
    tag(9, 20 + headers.length, (d, b) => {
      d.setUint32(0, num, true);
      d.setUint32(4, entsize, true);
      d.setUint32(8, shndx, true);
      b.set(headers, 12);
    });
  }
  if (opts.framebuffer !== undefined) {
    const fb = opts.framebuffer;
    if (!fb || typeof fb !== "object") bad("BAD_ARGUMENT", "framebuffer", "framebuffer must be an object");
    const addr = checkAddress(fb.addr, "framebuffer.addr", { image: "multiboot2-info" });
    const pitch = u32Arg(fb.pitch, "framebuffer.pitch");
    const width = u32Arg(fb.width, "framebuffer.width");
    const height = u32Arg(fb.height, "framebuffer.height");
    const bpp = u32Arg(fb.bpp, "framebuffer.bpp", 0xff);
    const type = fb.type === "indexed" ? 0 : fb.type === "rgb" ? 1 : fb.type === "ega-text" ? 2 : bad("BAD_ARGUMENT", "framebuffer.type", `framebuffer.type must be "indexed", "rgb" or "ega-text", got ${String(fb.type)}`);
    let color: Uint8Array;
    if (type === 0) {
      const pal = fb.palette ?? [];
      if (!Array.isArray(pal) || pal.length > 0xffff) bad("BAD_ARGUMENT", "framebuffer.palette", "framebuffer.palette must be an array of at most 65535 [r, g, b] colours");
      // GRUB's multiboot_tag_framebuffer: u16 framebuffer_palette_num_colors, then {u8 r, g, b}.
      color = new Uint8Array(2 + 3 * pal.length);
      new DataView(color.buffer).setUint16(0, pal.length, true);
      pal.forEach((c, i) => {
        if (!Array.isArray(c) || c.length !== 3) bad("BAD_ARGUMENT", "framebuffer.palette", `framebuffer.palette[${i}] must be [r, g, b]`);
        for (let j = 0; j < 3; j++) color[2 + 3 * i + j] = u32Arg(c[j], `framebuffer.palette[${i}][${j}]`, 0xff);
      });
    } else if (type === 1) {
      const rgb = fb.rgb;
      const pairs = [rgb?.red, rgb?.green, rgb?.blue];
      if (!pairs.every((x) => Array.isArray(x) && x.length === 2)) {
        bad("BAD_ARGUMENT", "framebuffer.rgb", "an rgb framebuffer needs rgb: { red, green, blue }, each [field position, mask size]");
      }
      color = new Uint8Array(pairs.flatMap((x) => [...(x as readonly number[])]).map((v, i) => u32Arg(v, `framebuffer.rgb[${i}]`, 0xff)));
    } else color = new Uint8Array(0);
    tag(8, 32 + color.length, (d, b) => {
      d.setBigUint64(0, BigInt(addr), true);
      d.setUint32(8, pitch, true);
      d.setUint32(12, width, true);
      d.setUint32(16, height, true);
      d.setUint8(20, bpp);
      d.setUint8(21, type);
      // 22-23: reserved (u16 in GRUB's header), 0
      b.set(color, 24);
    });
  }
  if (opts.smbios !== undefined) {
    const sm = opts.smbios;
    const major = u32Arg(sm?.major, "smbios.major", 0xff);
    const minor = u32Arg(sm?.minor, "smbios.minor", 0xff);
    const tables = bytesArg(sm?.tables, "smbios.tables", 1);
    tag(13, 16 + tables.length, (_d, b) => {
      b[0] = major;
      b[1] = minor;
      b.set(tables, 8);
    });
  }
  if (opts.acpiRsdpV1 !== undefined) {
    const r = bytesArg(opts.acpiRsdpV1, "acpiRsdpV1", 20);
    tag(14, 8 + r.length, (_d, b) => b.set(r));
  }
  if (opts.acpiRsdpV2 !== undefined) {
    const r = bytesArg(opts.acpiRsdpV2, "acpiRsdpV2", 36);
    tag(15, 8 + r.length, (_d, b) => b.set(r));
  }

  // Serialize: fixed part, tags at 8-byte boundaries, end tag.
  let size = 8;
  for (const p of parts) size = Math.ceil((size + 8 + p.body.length) / 8) * 8;
  size += 8;
  if (size > 0xffffffff) bad("BAD_ARGUMENT", "options", `the structure would be ${hex(size)} bytes, more than total_size (u32) can say`);
  const bytes = new Uint8Array(size);
  const d = new DataView(bytes.buffer);
  d.setUint32(0, size, true); // total_size, "including this field and terminating tag"
  const tags: Multiboot2Info["tags"] = [];
  let o = 8;
  for (const p of parts) {
    d.setUint32(o, p.type, true);
    d.setUint32(o + 4, 8 + p.body.length, true);
    bytes.set(p.body, o + 8);
    tags.push({ type: p.type, offset: o, size: 8 + p.body.length });
    o = Math.ceil((o + 8 + p.body.length) / 8) * 8;
  }
  d.setUint32(o, 0, true);
  d.setUint32(o + 4, 8, true);
  tags.push({ type: 0, offset: o, size: 8 });
  return { bytes, size, tags, mem_lower, mem_upper, mmap };
}
