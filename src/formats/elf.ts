// ELF kernels: ELF32 and ELF64, either byte order, any machine.
//
// Layouts from the System V ABI (gABI) "ELF Header", "Program Header" and "Dynamic Section"
// chapters. Every 64-bit field is read as a bigint; every offset + size is checked against the
// file length before it is used. Loading follows the seL4 x86 loader's whole-image relocation:
// with base B and D = B − (lowest PT_LOAD p_paddr), every PT_LOAD with p_memsz > 0 goes to
// p_paddr + D, file bytes first, then zeros up to p_memsz; gaps between segments are untouched.
// RELATIVE dynamic relocations are applied: RELA ones (*site = B + A, the addend authoritative)
// whenever the image has them, REL and DT_RELR ones (addend in place) and, if given, Linux x86
// `relocs` data when D ≠ 0.
import { GuestImageError } from "../errors.js";
import { alignUp, hex, toSafe, U64_MASK } from "../num.js";
import type { CopyOp, ElfRelocOp, LoadPlan, RelocOp, X86RelocGroup, X86RelocOp, ZeroOp } from "../plan.js";
import { readBytes, type ImageFile } from "../sources/source.js";
import { findPvhEntry } from "./elf-notes.js";
import type { ImageFormat } from "./format.js";

export const ELF_MAGIC = [0x7f, 0x45, 0x4c, 0x46]; // "\x7fELF", gABI e_ident[EI_MAG0..3]

const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const PT_NAMES: Record<number, string> = {
  0: "NULL", 1: "LOAD", 2: "DYNAMIC", 3: "INTERP", 4: "NOTE", 5: "SHLIB", 6: "PHDR", 7: "TLS",
  0x6474e550: "GNU_EH_FRAME", 0x6474e551: "GNU_STACK", 0x6474e552: "GNU_RELRO", 0x6474e553: "GNU_PROPERTY",
  0x6474e554: "GNU_SFRAME",
};
/** Processor-specific program header types, by e_machine (each psABI; names as readelf prints them). */
const PT_PROC_NAMES: Record<number, Record<number, string>> = {
  40: { 0x70000000: "ARM_ARCHEXT", 0x70000001: "EXIDX" },
  8: { 0x70000000: "REGINFO", 0x70000001: "RTPROC", 0x70000002: "OPTIONS", 0x70000003: "ABIFLAGS" },
  243: { 0x70000003: "RISCV_ATTRIBUTES" },
  183: { 0x70000002: "AARCH64_MEMTAG_MTE" },
};
const ET_NAMES: Record<number, string> = { 0: "NONE", 1: "REL", 2: "EXEC", 3: "DYN", 4: "CORE" };

/** Short machine names for e_machine values (gABI "e_machine" table). */
export const MACHINES: Record<number, string> = {
  2: "sparc", 3: "i386", 4: "m68k", 8: "mips", 10: "mips_rs3_le", 15: "parisc", 20: "ppc", 21: "ppc64",
  22: "s390", 40: "arm", 42: "sh", 43: "sparcv9", 50: "ia64", 62: "x86_64", 183: "aarch64",
  243: "riscv", 247: "bpf", 258: "loongarch",
};

/**
 * R_<machine>_RELATIVE (*site = B + A) for the machines whose images we relocate, by e_machine,
 * from each psABI's relocation table (the numbers binutils' include/elf/<machine>.h gives).
 */
const RELATIVE_TYPE: Record<number, number> = {
  62: 8, // R_X86_64_RELATIVE (x86-64 psABI)
  3: 8, // R_386_RELATIVE (i386 psABI)
  183: 1027, // R_AARCH64_RELATIVE (AAELF64)
  40: 23, // R_ARM_RELATIVE (AAELF32)
  243: 3, // R_RISCV_RELATIVE (RISC-V ELF psABI)
  22: 12, // R_390_RELATIVE (s390x ELF ABI supplement; 31-bit s390 alike)
  21: 22, // R_PPC64_RELATIVE (64-bit ELF V2 ABI, and V1; both byte orders)
  20: 22, // R_PPC_RELATIVE (Power Architecture 32-bit ELF ABI)
  258: 3, // R_LARCH_RELATIVE (LoongArch ELF psABI)
  43: 22, // R_SPARC_RELATIVE (SPARC V9 ABI; ELF64_R_TYPE_ID, with no type data)
};

// Dynamic section tags (gABI "Dynamic Section").
const DT_NULL = 0n, DT_PLTRELSZ = 2n, DT_RELA = 7n, DT_RELASZ = 8n, DT_RELAENT = 9n;
const DT_REL = 17n, DT_RELSZ = 18n, DT_RELENT = 19n, DT_PLTREL = 20n, DT_JMPREL = 23n;
const DT_RELRSZ = 35n, DT_RELR = 36n, DT_RELRENT = 37n;

export interface ElfSegment {
  index: number;
  type: number;
  typeName: string;
  flags: number;
  offset: bigint;
  vaddr: bigint;
  paddr: bigint;
  filesz: bigint;
  memsz: bigint;
  align: bigint;
}

export interface ElfHeader {
  class: 32 | 64;
  bigEndian: boolean;
  osabi: number;
  type: number;
  machine: number;
  entry: bigint;
  phoff: bigint;
  shoff: bigint;
  flags: number;
  ehsize: number;
  phentsize: number;
  phnum: number;
  shentsize: number;
  shnum: number;
  shstrndx: number;
}

export interface ElfImage {
  header: ElfHeader;
  /** All program headers, in file order. */
  segments: ElfSegment[];
  /** PT_LOAD headers with p_memsz > 0, in file order. */
  loads: ElfSegment[];
  /** End of the ELF proper (headers, segment data, section header table) in the file. */
  contentEnd: number;
}

export function isElf(head: Uint8Array): boolean {
  return head.length >= 4 && ELF_MAGIC.every((b, i) => head[i] === b);
}

const typeName = (t: number, machine: number) =>
  PT_NAMES[t] ?? PT_PROC_NAMES[machine]?.[t] ?? (t >= 0x60000000 && t < 0x70000000 ? `LOOS+${hex(t - 0x60000000)}` : t >= 0x70000000 ? `LOPROC+${hex(t - 0x70000000)}` : hex(t));

export const machineName = (m: number) => MACHINES[m] ?? `EM_${m}`;
export const elfTypeName = (t: number) => ET_NAMES[t] ?? hex(t);

/** A reader of fixed-width fields in one byte order; 64-bit values as bigint. */
class Fields {
  private readonly dv: DataView;
  constructor(bytes: Uint8Array, private readonly le: boolean) {
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  u8 = (o: number) => this.dv.getUint8(o);
  u16 = (o: number) => this.dv.getUint16(o, this.le);
  u32 = (o: number) => this.dv.getUint32(o, this.le);
  u64 = (o: number) => this.dv.getBigUint64(o, this.le);
  word = (o: number, is64: boolean) => (is64 ? this.u64(o) : BigInt(this.u32(o)));
}

/** Parses the ELF header and program headers, checking every range against the file. */
export async function readElf(file: ImageFile): Promise<ElfImage> {
  const image = file.name;
  const err = (code: "BAD_MAGIC" | "BAD_HEADER" | "TRUNCATED" | "UNSUPPORTED", field: string, msg: string) =>
    new GuestImageError(code, msg, { image, field });
  if (file.size < 16) throw err("TRUNCATED", "e_ident", `file is ${file.size} bytes, shorter than e_ident (16 bytes)`);
  const ident = await readBytes(file, 0, 16);
  if (!isElf(ident)) throw err("BAD_MAGIC", "e_ident", "no ELF magic (7f 45 4c 46) at offset 0");
  const cls = ident[4];
  const data = ident[5];
  if (cls !== 1 && cls !== 2) throw err("BAD_HEADER", "EI_CLASS", `EI_CLASS ${cls} is neither ELFCLASS32 (1) nor ELFCLASS64 (2)`);
  if (data !== 1 && data !== 2) throw err("BAD_HEADER", "EI_DATA", `EI_DATA ${data} is neither ELFDATA2LSB (1) nor ELFDATA2MSB (2)`);
  if (ident[6] !== 1) throw err("BAD_HEADER", "EI_VERSION", `EI_VERSION ${ident[6]} is not EV_CURRENT (1)`);
  const is64 = cls === 2;
  const ehsize = is64 ? 64 : 52;
  if (file.size < ehsize) throw err("TRUNCATED", "e_ehsize", `file is ${file.size} bytes, shorter than an ELF${is64 ? 64 : 32} header (e_ehsize ${ehsize})`);
  const f = new Fields(await readBytes(file, 0, ehsize), data === 1);
  const w = is64 ? 8 : 4;
  const h: ElfHeader = {
    class: is64 ? 64 : 32,
    bigEndian: data === 2,
    osabi: ident[7],
    type: f.u16(16),
    machine: f.u16(18),
    entry: f.word(24, is64),
    phoff: f.word(24 + w, is64),
    shoff: f.word(24 + 2 * w, is64),
    flags: f.u32(24 + 3 * w),
    ehsize: f.u16(28 + 3 * w),
    phentsize: f.u16(30 + 3 * w),
    phnum: f.u16(32 + 3 * w),
    shentsize: f.u16(34 + 3 * w),
    shnum: f.u16(36 + 3 * w),
    shstrndx: f.u16(38 + 3 * w),
  };
  const version = f.u32(20);
  if (version !== 1) throw err("BAD_HEADER", "e_version", `e_version ${version} is not EV_CURRENT (1)`);
  if (h.type !== 2 && h.type !== 3) {
    throw err("UNSUPPORTED", "e_type", `e_type ${elfTypeName(h.type)} (${h.type}) cannot be loaded; only EXEC (2) and DYN (3) images can (link object files first)`);
  }
  const phentsize = is64 ? 56 : 32;
  if (h.phentsize !== phentsize) throw err("BAD_HEADER", "e_phentsize", `e_phentsize ${h.phentsize} is not ${phentsize}, the ELF${h.class} program header size`);
  if (h.phnum === 0) throw err("BAD_HEADER", "e_phnum", "e_phnum is 0: no program headers, nothing to load");
  if (h.phnum === 0xffff) throw err("UNSUPPORTED", "e_phnum", "e_phnum is PN_XNUM (0xffff): extended program header numbering is not supported");
  if (h.phoff < BigInt(ehsize)) throw err("BAD_HEADER", "e_phoff", `e_phoff ${hex(h.phoff)} overlaps the ELF header (${ehsize} bytes)`);
  const phEnd = h.phoff + BigInt(h.phnum * phentsize);
  if (phEnd > BigInt(file.size)) {
    throw err("TRUNCATED", "e_phoff", `e_phoff ${hex(h.phoff)} + e_phnum ${h.phnum} × e_phentsize ${phentsize} = ${hex(phEnd)} runs past the end of the file (${hex(file.size)} bytes)`);
  }
  const ph = new Fields(await readBytes(file, Number(h.phoff), h.phnum * phentsize), !h.bigEndian);
  const segments: ElfSegment[] = [];
  let contentEnd = Number(phEnd);
  for (let i = 0; i < h.phnum; i++) {
    const o = i * phentsize;
    const s: ElfSegment = is64
      ? { index: i, type: ph.u32(o), typeName: "", flags: ph.u32(o + 4), offset: ph.u64(o + 8), vaddr: ph.u64(o + 16), paddr: ph.u64(o + 24), filesz: ph.u64(o + 32), memsz: ph.u64(o + 40), align: ph.u64(o + 48) }
      : { index: i, type: ph.u32(o), typeName: "", offset: BigInt(ph.u32(o + 4)), vaddr: BigInt(ph.u32(o + 8)), paddr: BigInt(ph.u32(o + 12)), filesz: BigInt(ph.u32(o + 16)), memsz: BigInt(ph.u32(o + 20)), flags: ph.u32(o + 24), align: BigInt(ph.u32(o + 28)) };
    s.typeName = typeName(s.type, h.machine);
    segments.push(s);
    if (s.type !== PT_LOAD) continue;
    const at = `program header ${i} (LOAD)`;
    if (s.filesz > s.memsz) throw err("BAD_HEADER", "p_filesz", `${at}: p_filesz ${hex(s.filesz)} > p_memsz ${hex(s.memsz)}`);
    if (s.offset + s.filesz > BigInt(file.size)) {
      throw err("TRUNCATED", "p_offset", `${at}: p_offset ${hex(s.offset)} + p_filesz ${hex(s.filesz)} = ${hex(s.offset + s.filesz)} runs past the end of the file (${hex(file.size)} bytes)`);
    }
    // Addresses are Elf32_Addr / Elf64_Addr: a segment may not run past the top of that space.
    const top = is64 ? "2^64" : "2^32";
    const limit = is64 ? U64_MASK + 1n : 1n << 32n;
    if (s.paddr + s.memsz > limit) throw err("BAD_HEADER", "p_paddr", `${at}: p_paddr ${hex(s.paddr)} + p_memsz ${hex(s.memsz)} runs past ${top}`);
    if (s.vaddr + s.memsz > limit) throw err("BAD_HEADER", "p_vaddr", `${at}: p_vaddr ${hex(s.vaddr)} + p_memsz ${hex(s.memsz)} runs past ${top}`);
    contentEnd = Math.max(contentEnd, Number(s.offset + s.filesz));
  }
  const loads = segments.filter((s) => s.type === PT_LOAD && s.memsz > 0n);
  if (loads.length === 0) throw err("BAD_HEADER", "p_type", "no PT_LOAD program header with p_memsz > 0: nothing to load");
  const byAddr = [...loads].sort((a, b) => (a.paddr < b.paddr ? -1 : a.paddr > b.paddr ? 1 : 0));
  for (let i = 1; i < byAddr.length; i++) {
    const p = byAddr[i - 1];
    const c = byAddr[i];
    if (c.paddr < p.paddr + p.memsz) {
      throw err("BAD_HEADER", "p_paddr", `program headers ${p.index} (p_paddr ${hex(p.paddr)}, p_memsz ${hex(p.memsz)}) and ${c.index} (p_paddr ${hex(c.paddr)}) overlap in physical memory`);
    }
  }
  if (h.entry !== 0n && !loads.some((s) => inRange(h.entry, s.vaddr, s.memsz) || inRange(h.entry, s.paddr, s.memsz))) {
    throw err("BAD_HEADER", "e_entry", `e_entry ${hex(h.entry)} is inside no loadable segment`);
  }
  const shEnd = h.shoff + BigInt(h.shnum) * BigInt(h.shentsize);
  if (h.shoff > 0n && shEnd <= BigInt(file.size)) contentEnd = Math.max(contentEnd, Number(shEnd));
  return { header: h, segments, loads, contentEnd };
}

const inRange = (v: bigint, start: bigint, len: bigint) => v >= start && v < start + len;

/** What an ELF image reports in `kernel_image_arch` (seL4 field names, plus what we know more). */
export interface ElfKernelArch {
  format: "elf";
  /** e_entry + relocation_offset. */
  entry: bigint;
  /** B − link_paddr: how far the image was moved from its link address. */
  relocation_offset: bigint;
  /** Lowest PT_LOAD p_paddr. */
  link_paddr: bigint;
  /** Lowest non-zero PT_LOAD p_vaddr (0 if all are zero). */
  link_vaddr: bigint;
  machine: string;
  e_machine: number;
  class: "ELF32" | "ELF64";
  endian: "little" | "big";
  type: string;
  /** The PT_LOAD segments placed, with where each went. */
  segments: Array<{
    index: number; type: string; offset: bigint; vaddr: bigint; paddr: bigint;
    filesz: bigint; memsz: bigint; flags: number; load_paddr: bigint;
  }>;
  /** Relocation sites patched. */
  relocations: number;
  /** The x86 relocs input, as in seL4's guest_kernel_image_arch. */
  is_reloc_enabled: boolean;
  relocs_file: string | null;
}

export interface ElfPlanOptions {
  /** Load base B; undefined = the image's own address (lowest p_paddr). */
  base?: number;
  /** Linux x86 `relocs` data (arch/x86/tools/relocs output), possibly the kernel file itself. */
  relocs?: ImageFile;
  /**
   * Refuse a base that moves an ET_DYN image by other than a multiple of every PT_LOAD's p_align
   * (gABI: "p_vaddr should equal p_offset, modulo p_align"); set when the caller gave no alignment.
   */
  congruent?: boolean;
}

export interface ElfResult {
  format: "elf";
  entry: bigint;
  arch: ElfKernelArch;
}

const TOP32 = 1n << 32n;

/** Turns a parsed ELF into a load plan at base B (reads the dynamic section, writes nothing). */
export async function planElf(file: ImageFile, elf: ElfImage, opts: ElfPlanOptions = {}): Promise<LoadPlan<ElfResult>> {
  const image = file.name;
  const h = elf.header;
  let linkPaddr = elf.loads[0].paddr;
  let end = 0n;
  let vlo = elf.loads[0].vaddr;
  let vend = 0n;
  for (const s of elf.loads) {
    if (s.paddr < linkPaddr) linkPaddr = s.paddr;
    if (s.paddr + s.memsz > end) end = s.paddr + s.memsz;
    if (s.vaddr < vlo) vlo = s.vaddr;
    if (s.vaddr + s.memsz > vend) vend = s.vaddr + s.memsz;
  }
  const nonZeroV = elf.loads.map((s) => s.vaddr).filter((v) => v !== 0n);
  const linkVaddr = nonZeroV.length ? nonZeroV.reduce((a, b) => (b < a ? b : a)) : 0n;
  const base = opts.base ?? toSafe(linkPaddr, "link address (lowest p_paddr)", { image }, "BAD_ADDRESS");
  const delta = BigInt(base) - linkPaddr;
  const size = toSafe(end - linkPaddr, "image size", { image }, "TOO_LARGE");
  const dst = (p: bigint, what: string) => toSafe(p + delta, what, { image }, "BAD_ADDRESS");
  if (h.class === 32 && delta !== 0n) {
    // Elf32_Addr is 32 bits (gABI): an ELF32 image cannot be placed, relocated or entered at or
    // above 4 GiB (a RELATIVE site would silently get the move modulo 2^32).
    const outside = (lo: bigint, hi: bigint) => lo + delta < 0n || hi + delta > TOP32;
    const what = outside(linkPaddr, end) ? `placed at [${hex(linkPaddr + delta)}, ${hex(end + delta)})`
      : outside(vlo, vend) ? `relocated to virtual [${hex(vlo + delta)}, ${hex(vend + delta)})`
        : h.entry !== 0n && outside(h.entry, h.entry + 1n) ? `entered at ${hex(h.entry + delta)}` : undefined;
    if (what) {
      throw new GuestImageError("BAD_ADDRESS", `an ELF32 image's addresses are 32-bit: load address ${hex(base)} would have it ${what}, outside [0, 4 GiB)`, { image, field: "load_address" });
    }
  }
  if (opts.congruent && h.type === 3 && delta !== 0n) {
    for (const s of elf.loads) {
      if (s.align > 1n && delta % s.align !== 0n) {
        throw new GuestImageError(
          "BAD_ALIGNMENT",
          `load address ${hex(base)} moves the image by ${hex(delta)}, not a multiple of program header ${s.index}'s p_align ${hex(s.align)} (gABI: a segment keeps p_vaddr ≡ p_offset modulo p_align); give an address that keeps it, or an alignment`,
          { image, field: "p_align" },
        );
      }
    }
  }

  const loadAt = elf.loads.map((s) => dst(s.paddr, `program header ${s.index} load address`));
  const relocs: RelocOp[] = [];
  const arch: ElfKernelArch = {
    format: "elf",
    entry: (h.entry + delta) & U64_MASK,
    relocation_offset: delta,
    link_paddr: linkPaddr,
    link_vaddr: linkVaddr,
    machine: machineName(h.machine),
    e_machine: h.machine,
    class: h.class === 64 ? "ELF64" : "ELF32",
    endian: h.bigEndian ? "big" : "little",
    type: elfTypeName(h.type),
    segments: elf.loads.map((s) => ({
      index: s.index, type: s.typeName, offset: s.offset, vaddr: s.vaddr, paddr: s.paddr,
      filesz: s.filesz, memsz: s.memsz, flags: s.flags, load_paddr: s.paddr + delta,
    })),
    relocations: 0,
    is_reloc_enabled: opts.relocs !== undefined,
    relocs_file: opts.relocs?.name ?? null,
  };
  // Sites per op, known once each table is checked (check(), or execute() for tables checked
  // where they land in guest RAM).
  const sites: number[] = [];
  const count = () => (arch.relocations = sites.reduce((a, b) => a + b, 0));
  for (const op of await dynamicRelocs(file, elf, linkPaddr, delta)) {
    const k = sites.push(0) - 1;
    op.counted = (n, result) => {
      sites[k] = n;
      count();
      // A container (gzip, uImage…) reports a copy of these fields: keep its count right too.
      const outer = (result as { arch?: Partial<ElfKernelArch> } | undefined)?.arch;
      if (outer && outer !== arch && outer.format === "elf") outer.relocations = arch.relocations;
    };
    relocs.push(op);
  }
  const copies: CopyOp[] = [];
  const zeros: ZeroOp[] = [];
  elf.loads.forEach((s, i) => {
    const d = loadAt[i];
    if (s.filesz > 0n) copies.push({ dst: d, src: Number(s.offset), len: Number(s.filesz) });
    if (s.memsz > s.filesz) zeros.push({ dst: d + Number(s.filesz), len: Number(s.memsz - s.filesz) });
  });

  if (opts.relocs) {
    const x86 = await x86Relocs(opts.relocs, file, elf, linkVaddr, delta, vlo, vend);
    if (delta !== 0n) {
      relocs.push(x86);
      sites.push(x86.groups.reduce((k, g) => k + g.entries.length / 4, 0));
      count();
    }
  }
  return {
    name: image,
    file,
    paddr: base,
    size,
    copies,
    zeros,
    relocs,
    patchable: elf.loads.map((s) => [s.paddr - linkPaddr, s.paddr - linkPaddr + s.memsz] as const),
    result: { format: "elf", entry: arch.entry, arch },
  };
}

/** Maps a link-time virtual address range to the PT_LOAD whose file bytes hold it. */
function segmentOf(elf: ElfImage, vaddr: bigint, len: bigint): ElfSegment | undefined {
  return elf.segments.find((s) => s.type === PT_LOAD && vaddr >= s.vaddr && vaddr + len <= s.vaddr + s.filesz);
}

interface Table { what: string; tag: string; addr: bigint; size: bigint; format: "rela" | "rel" | "relr"; entsize: bigint }

/**
 * The dynamic relocations named by PT_DYNAMIC (DT_RELA/DT_REL with DT_JMPREL, and DT_RELR), as
 * plan ops: RELA at any base (the addend is authoritative, so even an image at its link address
 * needs them — lld leaves the sites 0), REL and RELR (addends in place) only when the image moves.
 * A table that lies in one PT_LOAD's file bytes is not read here: it is checked and applied where
 * the copies put it in guest RAM. Others are read now.
 */
async function dynamicRelocs(file: ImageFile, elf: ElfImage, linkPaddr: bigint, delta: bigint): Promise<ElfRelocOp[]> {
  const image = file.name;
  const h = elf.header;
  const dynSeg = elf.segments.find((s) => s.type === PT_DYNAMIC);
  if (!dynSeg || dynSeg.filesz === 0n) return [];
  const bad = (code: "BAD_HEADER" | "TRUNCATED" | "UNSUPPORTED" | "RELOCATION", field: string, msg: string) =>
    new GuestImageError(code, msg, { image, field });
  if (dynSeg.offset + dynSeg.filesz > BigInt(file.size)) {
    throw bad("TRUNCATED", "p_offset", `PT_DYNAMIC [${hex(dynSeg.offset)}, ${hex(dynSeg.offset + dynSeg.filesz)}) runs past the end of the file`);
  }
  // The dynamic section is part of the loaded image (gABI: PT_DYNAMIC lies inside a PT_LOAD);
  // requiring that also bounds what is read for it by the image's own size.
  if (!elf.loads.some((l) => dynSeg.offset >= l.offset && dynSeg.offset + dynSeg.filesz <= l.offset + l.filesz)) {
    throw bad("BAD_HEADER", "p_offset", `PT_DYNAMIC [${hex(dynSeg.offset)}, +${hex(dynSeg.filesz)}) is not inside the file bytes of any PT_LOAD`);
  }
  const is64 = h.class === 64;
  const w = is64 ? 8 : 4;
  const dyn = new Fields(await readBytes(file, Number(dynSeg.offset), Number(dynSeg.filesz)), !h.bigEndian);
  const tags = new Map<bigint, bigint>();
  for (let o = 0; o + 2 * w <= Number(dynSeg.filesz); o += 2 * w) {
    const tag = dyn.word(o, is64);
    if (tag === DT_NULL) break;
    if (!tags.has(tag)) tags.set(tag, dyn.word(o + w, is64));
  }
  const tables: Table[] = [];
  const relaEnt = BigInt(is64 ? 24 : 12);
  const relEnt = BigInt(is64 ? 16 : 8);
  if (tags.has(DT_RELA) && (tags.get(DT_RELASZ) ?? 0n) > 0n) {
    tables.push({ what: "DT_RELA table", tag: "DT_RELA", addr: tags.get(DT_RELA)!, size: tags.get(DT_RELASZ)!, format: "rela", entsize: tags.get(DT_RELAENT) ?? relaEnt });
  }
  if (tags.has(DT_REL) && (tags.get(DT_RELSZ) ?? 0n) > 0n) {
    tables.push({ what: "DT_REL table", tag: "DT_REL", addr: tags.get(DT_REL)!, size: tags.get(DT_RELSZ)!, format: "rel", entsize: tags.get(DT_RELENT) ?? relEnt });
  }
  if (tags.has(DT_JMPREL) && (tags.get(DT_PLTRELSZ) ?? 0n) > 0n) {
    const format = tags.get(DT_PLTREL) === DT_RELA ? "rela" : "rel";
    const addr = tags.get(DT_JMPREL)!;
    const size = tags.get(DT_PLTRELSZ)!;
    // Some linkers count the PLT relocations inside DT_RELASZ as well; do not apply them twice.
    if (!tables.some((t) => t.format === format && addr >= t.addr && addr + size <= t.addr + t.size)) {
      tables.push({ what: "DT_JMPREL table", tag: "DT_JMPREL", addr, size, format, entsize: format === "rela" ? relaEnt : relEnt });
    }
  }
  const relr: Table | undefined = tags.has(DT_RELR) && (tags.get(DT_RELRSZ) ?? 0n) > 0n
    ? { what: "DT_RELR table", tag: "DT_RELR", addr: tags.get(DT_RELR)!, size: tags.get(DT_RELRSZ)!, format: "relr", entsize: tags.get(DT_RELRENT) ?? BigInt(w) }
    : undefined;
  if (tables.some((t) => t.format === "rela") && tables.some((t) => t.format === "rel")) {
    throw bad("UNSUPPORTED", "DT_REL", "an image with both REL and RELA dynamic relocations");
  }
  // At the link address only RELA has work to do (B + A may differ from what the site holds).
  const wanted = [
    ...(tables.length && (delta !== 0n || tables[0].format === "rela") ? [tables] : []),
    ...(relr && delta !== 0n ? [[relr]] : []),
  ];
  if (wanted.length === 0) return [];
  const relativeType = RELATIVE_TYPE[h.machine];
  if (relativeType === undefined) {
    // At the link address nothing is moved: an unknown machine's tables are left as they are.
    if (delta === 0n) return [];
    throw bad("UNSUPPORTED", "e_machine", `relocating a ${machineName(h.machine)} image (e_machine ${h.machine}); RELATIVE relocations are supported for ${[...new Set(Object.keys(RELATIVE_TYPE).map((m) => machineName(Number(m))))].join(", ")}`);
  }
  const k = elf.loads[0].vaddr - elf.loads[0].paddr;
  if (elf.loads.some((s) => s.vaddr - s.paddr !== k)) {
    throw bad("UNSUPPORTED", "p_vaddr", "relocating an image whose segments do not share one p_vaddr − p_paddr offset");
  }
  const ops: ElfRelocOp[] = [];
  for (const group of wanted) {
    const format = group[0].format;
    for (const t of group) {
      const want = format === "rela" ? relaEnt : format === "rel" ? relEnt : BigInt(w);
      const entTag = format === "rela" ? "DT_RELAENT" : format === "rel" ? "DT_RELENT" : "DT_RELRENT";
      const szTag = t.tag === "DT_JMPREL" ? "DT_PLTRELSZ" : `${t.tag}SZ`;
      if (t.entsize !== want) throw bad("BAD_HEADER", entTag, `${t.what}: entry size ${t.entsize} is not ${want}`);
      if (t.size % t.entsize !== 0n) throw bad("BAD_HEADER", szTag, `${t.what}: size ${hex(t.size)} is not a multiple of the entry size ${t.entsize}`);
      if (!segmentOf(elf, t.addr, t.size)) throw bad("BAD_HEADER", t.tag, `${t.what} [${hex(t.addr)}, +${hex(t.size)}) is not inside the file bytes of any PT_LOAD`);
    }
    // One run of one segment's file bytes when the tables lie back to back in the order they
    // apply: the copies put it in guest RAM, where it is checked and applied. Otherwise read now.
    const first = group[0].addr;
    const len = group.reduce((n, t) => n + t.size, 0n);
    const contiguous = group.every((t, i) => i === 0 || group[i - 1].addr + group[i - 1].size === t.addr);
    const seg = contiguous ? segmentOf(elf, first, len) : undefined;
    let table: Uint8Array | undefined;
    if (!seg) {
      const parts: Uint8Array[] = [];
      for (const t of group) {
        const s = segmentOf(elf, t.addr, t.size)!;
        parts.push(await readBytes(file, Number(s.offset + (t.addr - s.vaddr)), Number(t.size)));
      }
      table = parts.length === 1 ? parts[0] : concat(parts);
    }
    ops.push({
      kind: "elf",
      what: group.map((t) => t.what).join(" + "),
      format,
      table,
      imageOffset: seg ? Number(seg.paddr + (first - seg.vaddr) - linkPaddr) : undefined,
      src: seg ? Number(seg.offset + (first - seg.vaddr)) : 0,
      len: Number(len),
      entsize: Number(format === "rela" ? relaEnt : format === "rel" ? relEnt : BigInt(w)),
      is64,
      bigEndian: h.bigEndian,
      rela: format === "rela",
      relativeType,
      strict: delta !== 0n,
      vbase: linkPaddr + k,
      delta,
    });
  }
  return ops;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * Linux x86 relocation data as written by arch/x86/tools/relocs and consumed by
 * arch/x86/boot/compressed/misc.c handle_relocations(): little-endian u32 words read backwards
 * from the end of the data. A 64-bit kernel has three groups, each ended (reading backwards) by
 * a zero word: 32-bit sites, then inverse 32-bit sites, then 64-bit sites; a 32-bit kernel has
 * only the 32-bit group. Each word is the link-time virtual address of a site (truncated to 32
 * bits); the site's offset in the image is that address minus link_vaddr.
 */
async function x86Relocs(
  rf: ImageFile, kernel: ImageFile, elf: ElfImage, linkVaddr: bigint, delta: bigint, vlo: bigint, vend: bigint,
): Promise<X86RelocOp> {
  const image = kernel.name;
  const h = elf.header;
  const what = `relocs data "${rf.name}"`;
  if (h.machine !== 3 && h.machine !== 62) {
    throw new GuestImageError("UNSUPPORTED", `x86 relocs data given for a ${machineName(h.machine)} kernel`, { image, field: "relocs_file" });
  }
  // When the data is appended to the kernel itself (as seL4's configurations do), it starts
  // after the ELF's own content; otherwise the whole file may be relocation data.
  const start = rf === kernel || rf.name === kernel.name ? Math.min(elf.contentEnd, rf.size) : 0;
  // Every entry names a distinct 4-byte site of the image in one of three groups, each ended by a
  // zero word: valid data is at most 3 × the image size + 12 bytes. Refuse more before reading it.
  let lo = elf.loads[0].paddr;
  let hi = 0n;
  for (const s of elf.loads) {
    if (s.paddr < lo) lo = s.paddr;
    if (s.paddr + s.memsz > hi) hi = s.paddr + s.memsz;
  }
  const limit = 3n * (hi - lo) + 12n;
  if (BigInt(rf.size - start) > limit) {
    throw new GuestImageError("RELOCATION", `${what}: ${hex(rf.size - start)} bytes of relocation data for a ${hex(hi - lo)}-byte image (at most ${hex(limit)} can be valid)`, { image, field: "relocs_file" });
  }
  const data = await readBytes(rf, start, rf.size - start);
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const names = h.class === 64 ? (["32-bit", "inverse 32-bit", "64-bit"] as const) : (["32-bit"] as const);
  const ops = [0, 1, 2] as const;
  const groups: X86RelocGroup[] = [];
  let pos = data.length; // words are read at pos − 4, pos − 8, …
  for (let g = 0; g < names.length; g++) {
    const groupEnd = pos;
    for (;;) {
      if (pos < 4) {
        throw new GuestImageError(
          "RELOCATION",
          `${what}: the ${names[g]} group has no terminating zero word before ${start ? "the end of the ELF image" : "the start of the file"}`,
          { image, field: "relocs_file" },
        );
      }
      pos -= 4;
      if (dv.getUint32(pos, true) === 0) break;
    }
    groups.push({ op: ops[g], what: `${names[g]} group`, entries: data.subarray(pos + 4, groupEnd) });
  }
  // The 32-bit groups hold 32-bit addresses (sign-extended in a 64-bit kernel: -mcmodel=kernel;
  // zero-extended in a 32-bit one): the moved image must still be addressable by them, or the
  // u32 arithmetic would silently keep the move modulo 2^32.
  if (delta !== 0n && groups.some((g) => g.op !== 2 && g.entries.length > 0)) {
    const lo = vlo + delta;
    const hi = vend + delta;
    const ok = h.class === 64
      ? (lo >= 0n && hi <= 1n << 31n) || (lo >= (1n << 64n) - (1n << 31n) && hi <= 1n << 64n)
      : lo >= 0n && hi <= 1n << 32n;
    if (!ok) {
      throw new GuestImageError(
        "BAD_ADDRESS",
        `${what} has 32-bit relocations, whose addresses are ${h.class === 64 ? "sign-extended 32-bit" : "32-bit"}: moving the kernel by ${hex(delta)} would put it at virtual [${hex(lo & U64_MASK)}, ${hex(hi & U64_MASK)}), beyond them`,
        { image, field: "load_address" },
      );
    }
  }
  return { kind: "x86", what, groups, vbase32: Number(linkVaddr & 0xffffffffn), delta };
}

export const elfFormat: ImageFormat = {
  name: "elf",
  description: "an ELF image",
  test: isElf,
  async planKernel(ctx) {
    const elf = await readElf(ctx.file);
    let base = ctx.at;
    if (base === undefined && ctx.align > 1) {
      const link = elf.loads.reduce((m, s) => (s.paddr < m ? s.paddr : m), elf.loads[0].paddr);
      base = alignUp(toSafe(link, "link address (lowest p_paddr)", { image: ctx.file.name }), ctx.align, { image: ctx.file.name });
    }
    const relocs = ctx.relocs === undefined ? undefined : ctx.relocs === ctx.file.name ? ctx.file : await ctx.open(ctx.relocs);
    return planElf(ctx.file, elf, { base, relocs, congruent: ctx.align <= 1 });
  },
  async inspect(file) {
    const elf = await readElf(file);
    const h = elf.header;
    const flags = (f: number) => `${f & 4 ? "R" : " "}${f & 2 ? "W" : " "}${f & 1 ? "E" : " "}`;
    return {
      machine: machineName(h.machine),
      class: h.class === 64 ? "ELF64" : "ELF32",
      endian: h.bigEndian ? "big" : "little",
      entry: h.entry,
      elfType: elfTypeName(h.type),
      segments: elf.segments.map((s) => ({
        type: s.typeName, offset: s.offset, vaddr: s.vaddr, paddr: s.paddr, filesz: s.filesz, memsz: s.memsz, flags: flags(s.flags), align: s.align,
      })),
      // x86 kernels: the PVH entry (XEN_ELFNOTE_PHYS32_ENTRY, src/formats/elf-notes.ts), null when absent.
      ...(h.machine === 3 || h.machine === 62 ? { pvh_entry: (await findPvhEntry(file, elf))?.entry ?? null } : {}),
    };
  },
};
