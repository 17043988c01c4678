// Error paths: every failing load must raise a typed GuestImageError with a stable `code`, a
// message naming the image (and, for header checks, the field and the bad value), and must leave
// guest RAM and vm.placed() exactly as they were.
//
// ELF inputs are built here from the System V gABI layouts ("ELF Header", "Program Header",
// "Dynamic Section", "Relocation"), not with the library's parser.
import { describe, it, expect } from "vitest";
import {
  createVm,
  fromCpio,
  fromDirectory,
  fromMap,
  GuestImageError,
  isGuestImageError,
  parseCpio,
  vm_load_guest_kernel,
  vm_load_guest_module,
  type ErrorCode,
  type ImageFile,
  type Source,
  type Vm,
} from "../src/node.js";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { tmpdir } from "node:os";
import { join } from "node:path";

// ---------------------------------------------------------------------------------------------
// Byte helpers

type Num = number | bigint;
const B = (v: Num) => BigInt(v);
const MAX_SAFE = Number.MAX_SAFE_INTEGER;

/** Deterministic non-zero bytes. */
function pat(len: number, seed: number): Uint8Array {
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) out[i] = ((i * 13 + seed * 29) % 251) + 1;
  return out;
}

function u32le(...words: number[]): Uint8Array {
  const out = new Uint8Array(words.length * 4);
  const dv = new DataView(out.buffer);
  words.forEach((w, i) => dv.setUint32(i * 4, w >>> 0, true));
  return out;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function poke(bytes: Uint8Array, off: number, size: 1 | 2 | 4 | 8, v: Num, le = true): Uint8Array {
  const out = bytes.slice();
  const dv = new DataView(out.buffer);
  if (size === 1) dv.setUint8(off, Number(v));
  else if (size === 2) dv.setUint16(off, Number(v), le);
  else if (size === 4) dv.setUint32(off, Number(B(v) & 0xffffffffn), le);
  else dv.setBigUint64(off, B(v) & ((1n << 64n) - 1n), le);
  return out;
}

// ---------------------------------------------------------------------------------------------
// A small ELF writer (gABI). Field offsets are written out per class from the spec tables.

const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const PT_NOTE = 4;
const ET_REL = 1;
const ET_EXEC = 2;
const ET_DYN = 3;
const EM_386 = 3;
const EM_X86_64 = 62;
const EM_AARCH64 = 183;
const EM_SPARC = 2;

interface SegSpec {
  type?: number;
  flags?: number;
  /** File offset; default: the data is placed after the headers. */
  offset?: Num;
  vaddr: Num;
  paddr?: Num;
  /** Default: data.length (or 0). */
  filesz?: Num;
  /** Default: filesz. */
  memsz?: Num;
  align?: Num;
  data?: Uint8Array;
}

interface ElfSpec {
  cls?: 32 | 64;
  be?: boolean;
  eiClass?: number;
  eiData?: number;
  eiVersion?: number;
  type?: number;
  machine?: number;
  version?: number;
  entry?: Num;
  phoff?: Num;
  phentsize?: number;
  phnum?: number;
  shoff?: Num;
  shentsize?: number;
  shnum?: number;
  segs: SegSpec[];
  /** Bytes appended after everything else. */
  trailer?: Uint8Array;
}

// ELF32 header: e_type 16, e_machine 18, e_version 20, e_entry 24, e_phoff 28, e_shoff 32,
// e_flags 36, e_ehsize 40, e_phentsize 42, e_phnum 44, e_shentsize 46, e_shnum 48, e_shstrndx 50.
const EH32 = { entry: 24, phoff: 28, shoff: 32, flags: 36, ehsize: 40, phentsize: 42, phnum: 44, shentsize: 46, shnum: 48, shstrndx: 50, size: 52 };
// ELF64 header: e_entry 24, e_phoff 32, e_shoff 40, e_flags 48, e_ehsize 52, e_phentsize 54,
// e_phnum 56, e_shentsize 58, e_shnum 60, e_shstrndx 62.
const EH64 = { entry: 24, phoff: 32, shoff: 40, flags: 48, ehsize: 52, phentsize: 54, phnum: 56, shentsize: 58, shnum: 60, shstrndx: 62, size: 64 };
// Elf32_Phdr: p_type 0, p_offset 4, p_vaddr 8, p_paddr 12, p_filesz 16, p_memsz 20, p_flags 24, p_align 28.
// Elf64_Phdr: p_type 0, p_flags 4, p_offset 8, p_vaddr 16, p_paddr 24, p_filesz 32, p_memsz 40, p_align 48.
const PH32 = { type: 0, offset: 4, vaddr: 8, paddr: 12, filesz: 16, memsz: 20, flags: 24, align: 28, size: 32 };
const PH64 = { type: 0, flags: 4, offset: 8, vaddr: 16, paddr: 24, filesz: 32, memsz: 40, align: 48, size: 56 };

const align16 = (n: number) => (n + 15) & ~15;

function buildElf(spec: ElfSpec): Uint8Array {
  const is64 = (spec.cls ?? 64) === 64;
  const le = !spec.be;
  const EH = is64 ? EH64 : EH32;
  const PH = is64 ? PH64 : PH32;
  const phLoc = EH.size;
  let cursor = align16(phLoc + spec.segs.length * PH.size);
  const offsets: bigint[] = [];
  let end = cursor;
  for (const s of spec.segs) {
    let off: bigint;
    if (s.offset !== undefined) off = B(s.offset);
    else if (s.data && s.data.length) {
      off = BigInt(cursor);
      cursor = align16(cursor + s.data.length);
    } else off = 0n;
    offsets.push(off);
    if (s.data) end = Math.max(end, Number(off) + s.data.length);
  }
  end = Math.max(end, cursor);
  const buf = new Uint8Array(end);
  const dv = new DataView(buf.buffer);
  const w16 = (o: number, v: number) => dv.setUint16(o, v, le);
  const w32 = (o: number, v: Num) => dv.setUint32(o, Number(B(v) & 0xffffffffn), le);
  const wAddr = (o: number, v: Num) => (is64 ? dv.setBigUint64(o, B(v) & ((1n << 64n) - 1n), le) : w32(o, v));

  buf.set([0x7f, 0x45, 0x4c, 0x46, spec.eiClass ?? (is64 ? 2 : 1), spec.eiData ?? (le ? 1 : 2), spec.eiVersion ?? 1, 0]);
  w16(16, spec.type ?? ET_EXEC);
  w16(18, spec.machine ?? EM_X86_64);
  w32(20, spec.version ?? 1);
  wAddr(EH.entry, spec.entry ?? spec.segs.find((s) => (s.type ?? PT_LOAD) === PT_LOAD)?.vaddr ?? 0);
  wAddr(EH.phoff, spec.phoff ?? phLoc);
  wAddr(EH.shoff, spec.shoff ?? 0);
  w32(EH.flags, 0);
  w16(EH.ehsize, EH.size);
  w16(EH.phentsize, spec.phentsize ?? PH.size);
  w16(EH.phnum, spec.phnum ?? spec.segs.length);
  w16(EH.shentsize, spec.shentsize ?? (is64 ? 64 : 40));
  w16(EH.shnum, spec.shnum ?? 0);
  w16(EH.shstrndx, 0);

  spec.segs.forEach((s, i) => {
    const o = phLoc + i * PH.size;
    const filesz = s.filesz ?? s.data?.length ?? 0;
    w32(o + PH.type, s.type ?? PT_LOAD);
    w32(o + PH.flags, s.flags ?? 7);
    wAddr(o + PH.offset, offsets[i]);
    wAddr(o + PH.vaddr, s.vaddr);
    wAddr(o + PH.paddr, s.paddr ?? s.vaddr);
    wAddr(o + PH.filesz, filesz);
    wAddr(o + PH.memsz, s.memsz ?? filesz);
    wAddr(o + PH.align, s.align ?? 0x1000);
    if (s.data) buf.set(s.data, Number(offsets[i]));
  });
  return spec.trailer ? concat(buf, spec.trailer) : buf;
}

/** Byte offset of program header `i`'s field in a file built with buildElf. */
function phField(cls: 32 | 64, i: number, field: keyof typeof PH64 & keyof typeof PH32): number {
  const PH = cls === 64 ? PH64 : PH32;
  return (cls === 64 ? EH64 : EH32).size + i * PH.size + PH[field];
}

// The standard test kernel: three PT_LOADs, the second with bss, in RAM region 1.
const SEG_A = pat(0x300, 1);
const SEG_B = pat(0x200, 2);
const SEG_C = pat(0x100, 3);
const KBASE = 0x20000;
const KEND = 0x23100;

function kernelSpec(over: Partial<ElfSpec> = {}): ElfSpec {
  return {
    cls: 64,
    machine: EM_X86_64,
    entry: 0x20040,
    segs: [
      { vaddr: 0x20000, data: SEG_A },
      { vaddr: 0x21000, data: SEG_B, memsz: 0x800 },
      { vaddr: 0x23000, data: SEG_C },
    ],
    ...over,
  };
}
const KERNEL64 = buildElf(kernelSpec());
const KERNEL32BE = buildElf(kernelSpec({ cls: 32, be: true, machine: 20 /* ppc */ }));

// ---------------------------------------------------------------------------------------------
// Dynamic-relocation (PIE) images. One PT_LOAD at L holding [data | REL(A) table @0x100 |
// dynamic array @0x200], a second PT_LOAD with bss, and PT_DYNAMIC over the dynamic array.

const L = 0x20000n;
const DT_NULL = 0n, DT_RELA = 7n, DT_RELASZ = 8n, DT_RELAENT = 9n, DT_REL = 17n, DT_RELSZ = 18n, DT_RELENT = 19n;
const DT_RELRSZ = 35n, DT_RELR = 36n;
const R_X86_64_64 = 1, R_X86_64_RELATIVE = 8, R_386_32 = 1, R_386_RELATIVE = 8;

interface RelEntry {
  offset: bigint;
  type: number;
  sym?: number;
  addend?: bigint;
}

interface PieSpec {
  cls?: 32 | 64;
  be?: boolean;
  machine?: number;
  rela?: boolean;
  entries: RelEntry[];
  /** Dynamic entries; default: DT_REL(A), DT_REL(A)SZ, DT_REL(A)ENT for the table, then DT_NULL. */
  dyn?: Array<[bigint, bigint]>;
  /** paddr of the second PT_LOAD (default: same as its vaddr). */
  seg2paddr?: bigint;
  /** Override PT_DYNAMIC fields. */
  dynSeg?: Partial<SegSpec>;
}

function defaultDyn(cls: 32 | 64, rela: boolean, n: number): Array<[bigint, bigint]> {
  const ent = BigInt(rela ? (cls === 64 ? 24 : 12) : cls === 64 ? 16 : 8);
  return rela
    ? [[DT_RELA, L + 0x100n], [DT_RELASZ, ent * BigInt(n)], [DT_RELAENT, ent], [DT_NULL, 0n]]
    : [[DT_REL, L + 0x100n], [DT_RELSZ, ent * BigInt(n)], [DT_RELENT, ent], [DT_NULL, 0n]];
}

function buildPie(p: PieSpec): Uint8Array {
  const cls = p.cls ?? 64;
  const is64 = cls === 64;
  const le = !p.be;
  const rela = p.rela ?? is64;
  const seg0 = pat(0x400, 7);
  const dv = new DataView(seg0.buffer);
  const wWord = (o: number, v: bigint) => (is64 ? dv.setBigUint64(o, BigInt.asUintN(64, v), le) : dv.setUint32(o, Number(BigInt.asUintN(32, v)), le));
  // REL/RELA entries (gABI "Relocation Entries"): r_offset, r_info, [r_addend].
  const ent = rela ? (is64 ? 24 : 12) : is64 ? 16 : 8;
  const w = is64 ? 8 : 4;
  p.entries.forEach((e, i) => {
    const o = 0x100 + i * ent;
    const info = is64 ? (BigInt(e.sym ?? 0) << 32n) | BigInt(e.type) : (BigInt(e.sym ?? 0) << 8n) | BigInt(e.type & 0xff);
    wWord(o, e.offset);
    wWord(o + w, info);
    if (rela) wWord(o + 2 * w, e.addend ?? 0n);
  });
  const dyn = p.dyn ?? defaultDyn(cls, rela, p.entries.length);
  dyn.forEach(([tag, val], i) => {
    wWord(0x200 + i * 2 * w, tag);
    wWord(0x200 + i * 2 * w + w, val);
  });
  // The pointer-sized sites the RELATIVE entries patch hold their link-time values (REL form).
  for (const e of p.entries) {
    const off = Number(e.offset - L);
    if (e.type === (p.machine === EM_386 || !is64 ? R_386_RELATIVE : R_X86_64_RELATIVE) && off >= 0 && off + w <= 0x100) wWord(off, e.addend ?? L);
  }
  return buildElf({
    cls,
    be: p.be,
    type: ET_DYN,
    machine: p.machine ?? (is64 ? EM_X86_64 : EM_386),
    entry: L,
    segs: [
      { vaddr: L, offset: 0x1000, data: seg0 },
      { vaddr: L + 0x1000n, paddr: p.seg2paddr ?? L + 0x1000n, offset: 0x1400, data: pat(0x10, 8), memsz: 0x100 },
      { type: PT_DYNAMIC, vaddr: L + 0x200n, offset: 0x1200, filesz: dyn.length * 2 * w, memsz: dyn.length * 2 * w, align: 8, ...p.dynSeg },
    ],
  });
}

// ---------------------------------------------------------------------------------------------
// FDT headers (Devicetree Specification §5.2: ten big-endian u32 fields).

function fdt(over: Partial<Record<"magic" | "totalsize" | "off_dt_struct" | "off_dt_strings" | "off_mem_rsvmap" | "version" | "size_dt_strings" | "size_dt_struct", number>> = {}, fileLen?: number): Uint8Array {
  const h = { magic: 0xd00dfeed, totalsize: 0x60, off_dt_struct: 0x38, off_dt_strings: 0x58, off_mem_rsvmap: 0x28, version: 17, last_comp_version: 16, boot_cpuid_phys: 0, size_dt_strings: 0x8, size_dt_struct: 0x20, ...over };
  const out = new Uint8Array(fileLen ?? h.totalsize);
  const dv = new DataView(out.buffer);
  const order = [h.magic, h.totalsize, h.off_dt_struct, h.off_dt_strings, h.off_mem_rsvmap, h.version, h.last_comp_version, h.boot_cpuid_phys, h.size_dt_strings, h.size_dt_struct];
  order.forEach((v, i) => {
    if (i * 4 + 4 <= out.length) dv.setUint32(i * 4, v >>> 0, false);
  });
  // FDT_BEGIN_NODE "" FDT_END_NODE FDT_END in the struct block.
  if (out.length >= 0x38 + 16) out.set([0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 9], 0x38);
  return out;
}

// ---------------------------------------------------------------------------------------------
// VMs

const R1 = { base: 0x10000, size: 0x30000 }; // [0x10000, 0x40000)
const R2 = { base: 0x80000, size: 0x20000 }; // [0x80000, 0xa0000); hole [0x40000, 0x80000)
const RESIDENT = pat(0x1000, 99);
const RESIDENT_AT = 0x90000;

function isSource(x: unknown): x is Source {
  return typeof (x as Source)?.open === "function";
}

/** Routes "resident" to its own map so custom sources see only the reads of the image under test. */
function withResident(src: Source): Source {
  const res = fromMap({ resident: RESIDENT });
  return { open: (name) => (name === "resident" ? res.open(name) : src.open(name)) };
}

/**
 * dirty: region 1 filled with a non-zero pattern except a zero stripe at [0x23000, 0x23080)
 * (half of segment C), part of region 2 patterned, and "resident" already placed in region 2.
 */
async function makeVm(files: Source | Record<string, Uint8Array>, dirty = true, ram = [R1, R2]): Promise<Vm> {
  const src = isSource(files) ? files : fromMap(files);
  const vm = await createVm({ ram, files: withResident(src) });
  if (dirty) {
    const p = pat(R1.size, 42);
    p.fill(0, 0x23000 - R1.base, 0x23080 - R1.base);
    vm.ram.write(R1.base, p);
    vm.ram.write(R2.base + 0x4000, pat(0x8000, 43));
    await vm.loadModule("resident", { at: RESIDENT_AT });
    expect(vm.placed()).toEqual([{ name: "resident", paddr: RESIDENT_AT, size: RESIDENT.length }]);
  }
  return vm;
}

function snapshot(vm: Vm): { ram: Uint8Array[]; placed: ReturnType<Vm["placed"]> } {
  return { ram: vm.ram.regions.map((r) => vm.ram.read(r.base, r.size)), placed: vm.placed() };
}

function firstDiff(vm: Vm, before: Uint8Array[], after: Uint8Array[]): string | null {
  for (let r = 0; r < before.length; r++) {
    const a = before[r];
    const b = after[r];
    if (a.length !== b.length) return `region ${r} changed length`;
    for (let i = 0; i < a.length; i++) {
      if (a[i] !== b[i]) return `guest RAM changed at 0x${(vm.ram.regions[r].base + i).toString(16)}: 0x${a[i].toString(16)} -> 0x${b[i].toString(16)}`;
    }
  }
  return null;
}

interface Expect {
  /** The image the message must name (null: an error about no image, e.g. an empty name). */
  image: string | null;
  /** Strings the message must contain; an array entry means "any of these". */
  mentions?: Array<string | string[]>;
  /** Expected `field` property. */
  field?: string;
}

/**
 * Snapshots all of guest RAM and vm.placed(), runs `action`, checks it rejects with a
 * GuestImageError of `code` whose message names the image, and checks nothing changed.
 */
async function expectUnchanged(vm: Vm, action: () => unknown, code: ErrorCode, x: Expect): Promise<GuestImageError> {
  const before = snapshot(vm);
  let err: unknown;
  try {
    await action();
  } catch (e) {
    err = e;
  }
  expect(err, "the action should have failed").toBeDefined();
  if (!(err instanceof GuestImageError)) {
    expect.fail(`expected a GuestImageError ${code}, got ${Object.prototype.toString.call(err)}: ${String((err as Error)?.stack ?? err)}`);
  }
  const g = err as GuestImageError;
  expect(isGuestImageError(g)).toBe(true);
  expect(g.name).toBe("GuestImageError");
  expect({ code: g.code, message: g.message }).toMatchObject({ code });
  if (x.image !== null) {
    expect(g.message).toContain(x.image);
    expect(g.image).toBe(x.image);
  }
  for (const m of x.mentions ?? []) {
    if (Array.isArray(m)) expect(m.some((s) => g.message.includes(s)), `message ${JSON.stringify(g.message)} should mention one of ${m.join(", ")}`).toBe(true);
    else expect(g.message).toContain(m);
  }
  if (x.field !== undefined) expect(g.field).toBe(x.field);
  const after = snapshot(vm);
  expect(firstDiff(vm, before.ram, after.ram)).toBeNull();
  expect(after.placed).toEqual(before.placed);
  return g;
}

/** Rejects with a GuestImageError of `code` (for calls that have no VM, like createVm). */
async function expectCode(action: () => unknown, code: ErrorCode, mentions: string[] = []): Promise<GuestImageError> {
  let err: unknown;
  try {
    await action();
  } catch (e) {
    err = e;
  }
  if (!(err instanceof GuestImageError)) expect.fail(`expected a GuestImageError ${code}, got ${String(err)}`);
  const g = err as GuestImageError;
  expect(g.code).toBe(code);
  for (const m of mentions) expect(g.message).toContain(m);
  return g;
}

// ---------------------------------------------------------------------------------------------
// Custom sources

type FailMode = "plain" | "truncated" | "partial-plain" | "partial-truncated";

/**
 * A source over a map whose reads succeed `failAt` times (counted over all files) and then fail:
 * "plain" throws an Error, "truncated" a GuestImageError TRUNCATED; the "partial-" modes first
 * scribble 0xEE over half the destination (a read that fails halfway).
 */
class FlakySource implements Source {
  reads = 0;
  closes = 0;
  constructor(private readonly files: Record<string, Uint8Array>, private readonly failAt = Infinity, private readonly mode: FailMode = "plain", private readonly delayMs = 0) {}
  async open(name: string): Promise<ImageFile> {
    const bytes = this.files[name];
    if (!bytes) throw new GuestImageError("NOT_FOUND", `no file named "${name}"`, { image: name, field: "name" });
    const self = this;
    return {
      name,
      size: bytes.length,
      async read(dst: Uint8Array, position: number) {
        if (self.delayMs) await new Promise((r) => setTimeout(r, self.delayMs));
        const n = self.reads++;
        if (n >= self.failAt) {
          if (self.mode.startsWith("partial")) dst.fill(0xee, 0, Math.max(1, dst.length >> 1));
          if (self.mode.endsWith("truncated")) throw new GuestImageError("TRUNCATED", `injected short read #${n} at ${position}`, { image: name });
          throw new Error(`injected disk failure on read #${n}`);
        }
        if (position < 0 || position + dst.length > bytes.length) throw new GuestImageError("TRUNCATED", "read past end", { image: name });
        dst.set(bytes.subarray(position, position + dst.length));
      },
      async close() {
        self.closes++;
      },
    };
  }
}

// =============================================================================================

describe("fixtures are valid (so the error cases below fail for the reason they claim)", () => {
  it("the 3-segment ELF64 kernel loads at its link address and with `at`", async () => {
    const vm = await makeVm({ kernel: KERNEL64 });
    const k = await vm.loadKernel("kernel");
    expect(k).toMatchObject({ paddr: KBASE, size: KEND - KBASE, format: "elf" });
    expect(vm.ram.read(0x20000, SEG_A.length)).toEqual(SEG_A);
    expect(vm.ram.read(0x21000, SEG_B.length)).toEqual(SEG_B);
    expect(vm.ram.read(0x21200, 0x600)).toEqual(new Uint8Array(0x600));
    expect(vm.ram.read(0x23000, SEG_C.length)).toEqual(SEG_C);
    const vm2 = await makeVm({ kernel: KERNEL64 });
    const k2 = await vm2.loadKernel("kernel", { at: 0x30000 });
    expect(k2.paddr).toBe(0x30000);
    expect(vm2.ram.read(0x33000, SEG_C.length)).toEqual(SEG_C);
  });

  it("the ELF32 big-endian kernel loads", async () => {
    const vm = await makeVm({ kernel: KERNEL32BE });
    const k = await vm.loadKernel("kernel");
    expect(k.paddr).toBe(KBASE);
    expect(vm.ram.read(0x21000, SEG_B.length)).toEqual(SEG_B);
  });

  it("the PIE fixture relocates (RELATIVE only) at a shifted base", async () => {
    const pie = buildPie({ entries: [{ offset: L + 0x10n, type: R_X86_64_RELATIVE, addend: L + 0x50n }] });
    const vm = await makeVm({ pie });
    const k = await vm.loadKernel("pie", { at: 0x30000 });
    expect(k.paddr).toBe(0x30000);
    const site = new DataView(vm.ram.read(0x30010, 8).buffer).getBigUint64(0, true);
    expect(site).toBe(0x30050n);
  });

  it("the ELF32 i386 REL PIE fixture relocates", async () => {
    const pie = buildPie({ cls: 32, machine: EM_386, rela: false, entries: [{ offset: L + 0x10n, type: R_386_RELATIVE, addend: L + 0x44n }] });
    const vm = await makeVm({ pie });
    await vm.loadKernel("pie", { at: 0x30000 });
    expect(new DataView(vm.ram.read(0x30010, 4).buffer).getUint32(0, true)).toBe(0x30044);
  });

  it("x86 relocs fixture applies at a shifted base", async () => {
    const vm = await makeVm({ kernel: KERNEL64, relocs: u32le(0, 0, 0, 0x20010) });
    const before = new DataView(SEG_A.buffer).getUint32(0x10, true);
    await vm.loadKernel("kernel", { at: 0x30000, relocs: "relocs" });
    expect(new DataView(vm.ram.read(0x30010, 4).buffer).getUint32(0, true)).toBe((before + 0x10000) >>> 0);
  });

  it("a valid FDT module loads", async () => {
    const vm = await makeVm({ dtb: fdt() });
    await vm.loadModule("dtb", { at: 0x30000 });
    expect(vm.ram.read(0x30000, 0x60)).toEqual(fdt());
  });

  it("the flaky source counts 7 reads for the 3-segment kernel (sniff, e_ident, header, phdrs, 3 segments)", async () => {
    const src = new FlakySource({ kernel: KERNEL64 });
    const vm = await makeVm(src);
    await vm.loadKernel("kernel");
    expect(src.reads).toBe(KERNEL_READS);
  });
});

const KERNEL_READS = 7;

// ---------------------------------------------------------------------------------------------

describe("NOT_FOUND", () => {
  it("missing kernel, module and relocs file", async () => {
    const vm = await makeVm({ kernel: KERNEL64 });
    await expectUnchanged(vm, () => vm.loadKernel("nope"), "NOT_FOUND", { image: "nope", field: "name" });
    await expectUnchanged(vm, () => vm.loadModule("initrd", { at: 0x30000 }), "NOT_FOUND", { image: "initrd" });
    await expectUnchanged(vm, () => vm.loadKernel("kernel", { at: 0x30000, relocs: "vmlinux.relocs" }), "NOT_FOUND", { image: "vmlinux.relocs" });
    await expectUnchanged(vm, () => vm_load_guest_kernel(vm, "nope", 0x30000, 0), "NOT_FOUND", { image: "nope" });
    await expectUnchanged(vm, () => vm_load_guest_module(vm, "nope", 0x30000, 0), "NOT_FOUND", { image: "nope" });
  });

  it('seL4 lookup rule: "./x" finds "x", but "x" does not find "./x"', async () => {
    const vm = await makeVm({ x: pat(0x100, 5), "./y": pat(0x100, 6) });
    const m = await vm.loadModule("./x", { at: 0x30000 });
    expect(m.name).toBe("./x");
    expect(vm.ram.read(0x30000, 0x100)).toEqual(pat(0x100, 5));
    await expectUnchanged(vm, () => vm.loadModule("y", { at: 0x31000 }), "NOT_FOUND", { image: "y" });
    await expectUnchanged(vm, () => vm.loadKernel("y", { at: 0x31000 }), "NOT_FOUND", { image: "y" });
  });

  it("fromCpio and fromDirectory", async () => {
    const cpioVm = await makeVm(fromCpio(cpio([["x", pat(8, 1)]]), "rootfs.cpio"));
    await expectUnchanged(cpioVm, () => cpioVm.loadModule("initrd", { at: 0x30000 }), "NOT_FOUND", { image: "initrd", mentions: ["rootfs.cpio"] });
    const dir = mkdtempSync(join(tmpdir(), "gi-errors-"));
    writeFileSync(join(dir, "present"), pat(16, 1));
    const dirVm = await makeVm(fromDirectory(dir));
    await expectUnchanged(dirVm, () => dirVm.loadModule("absent", { at: 0x30000 }), "NOT_FOUND", { image: "absent" });
    await expectUnchanged(dirVm, () => dirVm.loadModule("../present", { at: 0x30000 }), "BAD_ARGUMENT", { image: "../present" });
  });
});

/** A newc archive (Linux buffer-format.rst). */
function cpio(files: Array<[string, Uint8Array]>, magic = "070701"): Uint8Array {
  const parts: Uint8Array[] = [];
  const enc = new TextEncoder();
  const pad = (n: number) => new Uint8Array((4 - (n % 4)) % 4);
  const entry = (name: string, data: Uint8Array, mode: number) => {
    const nameb = enc.encode(name + "\0");
    const f = [1, mode, 0, 0, 1, 0, data.length, 0, 0, 0, 0, nameb.length, 0].map((v) => v.toString(16).padStart(8, "0")).join("");
    const hdr = enc.encode(magic + f);
    parts.push(hdr, nameb, pad(hdr.length + nameb.length), data, pad(data.length));
  };
  for (const [n, d] of files) entry(n, d, 0o100644);
  entry("TRAILER!!!", new Uint8Array(0), 0);
  return concat(...parts);
}

describe("BAD_MAGIC", () => {
  it("a CPIO archive with a bad entry magic", async () => {
    const bad = cpio([["x", pat(8, 1)]], "070707");
    const e = await expectCode(() => parseCpio(bad, "rootfs.cpio"), "BAD_MAGIC", ["rootfs.cpio", "070707"]);
    expect(e.field).toBe("c_magic");
    await expectCode(() => fromCpio(bad, "rootfs.cpio"), "BAD_MAGIC", ["rootfs.cpio"]);
  });
});

// ---------------------------------------------------------------------------------------------

describe("ELF header checks (readElf)", () => {
  type Case = { what: string; bytes: () => Uint8Array; code: ErrorCode; field?: string; mentions?: Array<string | string[]> };
  const k64 = KERNEL64;
  const k32be = KERNEL32BE;
  const cases: Case[] = [
    { what: "file shorter than e_ident (12 bytes)", bytes: () => k64.slice(0, 12), code: "TRUNCATED", field: "e_ident", mentions: ["12"] },
    { what: "ELF64 file shorter than its header (40 bytes)", bytes: () => k64.slice(0, 40), code: "TRUNCATED", mentions: ["40"] },
    { what: "ELF32 file shorter than its header (48 bytes)", bytes: () => k32be.slice(0, 48), code: "TRUNCATED", mentions: ["48"] },
    { what: "EI_CLASS 3", bytes: () => poke(k64, 4, 1, 3), code: "BAD_HEADER", field: "EI_CLASS", mentions: ["EI_CLASS", "3"] },
    { what: "EI_CLASS 0", bytes: () => poke(k64, 4, 1, 0), code: "BAD_HEADER", field: "EI_CLASS", mentions: ["EI_CLASS", "0"] },
    { what: "EI_DATA 3", bytes: () => poke(k64, 5, 1, 3), code: "BAD_HEADER", field: "EI_DATA", mentions: ["EI_DATA", "3"] },
    { what: "EI_DATA 0", bytes: () => poke(k64, 5, 1, 0), code: "BAD_HEADER", field: "EI_DATA", mentions: ["EI_DATA", "0"] },
    { what: "EI_VERSION 2", bytes: () => poke(k64, 6, 1, 2), code: "BAD_HEADER", field: "EI_VERSION", mentions: ["EI_VERSION", "2"] },
    { what: "e_version 2 (ELF64 LE)", bytes: () => poke(k64, 20, 4, 2), code: "BAD_HEADER", field: "e_version", mentions: ["e_version", "2"] },
    { what: "e_version 0x100 (ELF32 BE)", bytes: () => poke(k32be, 20, 4, 0x100, false), code: "BAD_HEADER", field: "e_version", mentions: ["e_version", "256"] },
    { what: "e_type REL", bytes: () => poke(k64, 16, 2, ET_REL), code: "UNSUPPORTED", field: "e_type", mentions: ["e_type", "REL"] },
    { what: "e_type CORE (ELF32 BE)", bytes: () => poke(k32be, 16, 2, 4, false), code: "UNSUPPORTED", field: "e_type", mentions: ["e_type", "CORE"] },
    { what: "e_phentsize 48 (ELF64)", bytes: () => poke(k64, EH64.phentsize, 2, 48), code: "BAD_HEADER", field: "e_phentsize", mentions: ["e_phentsize", "48"] },
    { what: "e_phentsize 56 (ELF32 BE)", bytes: () => poke(k32be, EH32.phentsize, 2, 56, false), code: "BAD_HEADER", field: "e_phentsize", mentions: ["e_phentsize", "56"] },
    { what: "e_phnum 0", bytes: () => poke(k64, EH64.phnum, 2, 0), code: "BAD_HEADER", field: "e_phnum", mentions: ["e_phnum", "0"] },
    { what: "e_phnum 0xffff (PN_XNUM)", bytes: () => poke(k64, EH64.phnum, 2, 0xffff), code: "UNSUPPORTED", field: "e_phnum", mentions: ["e_phnum", "0xffff"] },
    { what: "e_phoff inside the ELF header", bytes: () => poke(k64, EH64.phoff, 8, 0x20), code: "BAD_HEADER", field: "e_phoff", mentions: ["e_phoff", "0x20"] },
    { what: "e_phoff 0", bytes: () => poke(k64, EH64.phoff, 8, 0), code: "BAD_HEADER", field: "e_phoff", mentions: ["e_phoff"] },
    { what: "program headers past EOF (e_phnum 200)", bytes: () => poke(k64, EH64.phnum, 2, 200), code: "TRUNCATED", mentions: [["e_phoff", "e_phnum"], "200"] },
    { what: "program headers past EOF (e_phoff near EOF)", bytes: () => poke(k64, EH64.phoff, 8, k64.length - 8), code: "TRUNCATED", mentions: [["e_phoff", "e_phnum"]] },
    { what: "program headers past EOF (e_phoff 2^64-8)", bytes: () => poke(k64, EH64.phoff, 8, (1n << 64n) - 8n), code: "TRUNCATED", mentions: [["e_phoff", "e_phnum"]] },
    { what: "p_filesz > p_memsz", bytes: () => poke(k64, phField(64, 1, "memsz"), 8, 0x100), code: "BAD_HEADER", field: "p_filesz", mentions: ["p_filesz", "p_memsz", "0x200", "0x100"] },
    { what: "p_filesz > p_memsz (ELF32 BE)", bytes: () => poke(k32be, phField(32, 0, "filesz"), 4, 0x301, false), code: "BAD_HEADER", field: "p_filesz", mentions: ["p_filesz", "0x301", "0x300"] },
    { what: "p_offset + p_filesz past EOF", bytes: () => poke(k64, phField(64, 2, "offset"), 8, k64.length - 0x80), code: "TRUNCATED", mentions: [["p_offset", "p_filesz"]] },
    { what: "p_offset 2^64-1 (wraps)", bytes: () => poke(k64, phField(64, 0, "offset"), 8, (1n << 64n) - 1n), code: "TRUNCATED", mentions: [["p_offset", "p_filesz"]] },
    { what: "p_paddr + p_memsz wraps 2^64", bytes: () => poke(poke(k64, phField(64, 2, "paddr"), 8, 0xfffffffffffff000n), phField(64, 2, "memsz"), 8, 0x2000), code: "BAD_HEADER", field: "p_paddr", mentions: ["p_paddr", "0xfffffffffffff000", "2^64"] },
    { what: "p_vaddr + p_memsz wraps 2^64", bytes: () => poke(poke(k64, phField(64, 2, "vaddr"), 8, 0xffffffffffffff00n), phField(64, 2, "memsz"), 8, 0x200), code: "BAD_HEADER", field: "p_vaddr", mentions: ["p_vaddr"] },
    { what: "overlapping PT_LOADs", bytes: () => poke(k64, phField(64, 1, "paddr"), 8, 0x20200), code: "BAD_HEADER", mentions: ["overlap", "0x20200"] },
    { what: "overlapping PT_LOADs (ELF32 BE, bss overlaps next)", bytes: () => poke(k32be, phField(32, 1, "memsz"), 4, 0x2001, false), code: "BAD_HEADER", mentions: ["overlap"] },
    { what: "no PT_LOAD (all PT_NOTE)", bytes: () => [0, 1, 2].reduce((b, i) => poke(b, phField(64, i, "type"), 4, PT_NOTE), k64), code: "BAD_HEADER", mentions: ["PT_LOAD"] },
    { what: "no PT_LOAD with p_memsz > 0", bytes: () => buildElf({ entry: 0, segs: [{ vaddr: 0x20000, filesz: 0, memsz: 0 }] }), code: "BAD_HEADER", mentions: ["PT_LOAD"] },
    { what: "e_entry outside every segment", bytes: () => poke(k64, EH64.entry, 8, 0x99999), code: "BAD_HEADER", field: "e_entry", mentions: ["e_entry", "0x99999"] },
    { what: "e_entry in the gap between segments", bytes: () => poke(k64, EH64.entry, 8, 0x20800), code: "BAD_HEADER", field: "e_entry", mentions: ["e_entry", "0x20800"] },
  ];
  for (const c of cases) {
    for (const dirty of [true, false]) {
      it(`${c.what} (${dirty ? "dirty RAM + placed image" : "fresh RAM"})`, async () => {
        const vm = await makeVm({ "vmlinux.elf": c.bytes() }, dirty);
        await expectUnchanged(vm, () => vm.loadKernel("vmlinux.elf"), c.code, { image: "vmlinux.elf", field: c.field, mentions: c.mentions });
        await expectUnchanged(vm, () => vm.loadKernel("vmlinux.elf", { at: 0x30000, align: 0x1000 }), c.code, { image: "vmlinux.elf" });
        await expectUnchanged(vm, () => vm_load_guest_kernel(vm, "vmlinux.elf", 0x30000, 0), c.code, { image: "vmlinux.elf" });
      });
    }
  }

  it("ELF32 p_paddr + p_memsz past 2^32 is a bad header, not a load above 4 GiB", async () => {
    // An Elf32_Addr range cannot run past 2^32 (gABI: 32-bit unsigned program addresses).
    const bytes = buildElf({ cls: 32, machine: EM_386, entry: 0xfffff000, segs: [{ vaddr: 0xfffff000, data: pat(0x100, 1), memsz: 0x2000 }] });
    const vm = await makeVm({ k: bytes }, false, [R1, { base: 0xffff0000, size: 0x20000 }]);
    await expectUnchanged(vm, () => vm.loadKernel("k"), "BAD_HEADER", { image: "k", mentions: ["p_paddr"] });
  });
});

// ---------------------------------------------------------------------------------------------

describe("BAD_ALIGNMENT", () => {
  const bad = [3, -1, 1.5, 0x3000, NaN, 2 ** 53 + 2];
  for (const a of bad) {
    it(`alignment ${a}: kernel and module, idiomatic and seL4 API; seL4 struct untouched`, async () => {
      const vm = await makeVm({ kernel: KERNEL64, initrd: pat(0x800, 9) });
      const m = (e: GuestImageError) => expect(e.field).toBe("alignment");
      m(await expectUnchanged(vm, () => vm.loadKernel("kernel", { at: 0x30000, align: a }), "BAD_ALIGNMENT", { image: "kernel", mentions: [["alignment"]] }));
      m(await expectUnchanged(vm, () => vm.loadKernel("kernel", { align: a }), "BAD_ALIGNMENT", { image: "kernel" }));
      m(await expectUnchanged(vm, () => vm.loadModule("initrd", { at: 0x30000, align: a }), "BAD_ALIGNMENT", { image: "initrd" }));
      const kstruct = {
        kernel_image: { load_paddr: 0x1234, alignment: 77, size: 99 },
        kernel_image_arch: { is_reloc_enabled: false, relocs_file: null, entry: 5n } as Record<string, unknown>,
      };
      const kbefore = structuredClone(kstruct);
      await expectUnchanged(vm, () => vm_load_guest_kernel(vm, "kernel", 0x30000, a, kstruct as never), "BAD_ALIGNMENT", { image: "kernel" });
      expect(kstruct).toEqual(kbefore);
      const mstruct = { load_paddr: 0x4321, alignment: 11, size: 22 };
      await expectUnchanged(vm, () => vm_load_guest_module(vm, "initrd", 0x30000, a, mstruct), "BAD_ALIGNMENT", { image: "initrd" });
      expect(mstruct).toEqual({ load_paddr: 0x4321, alignment: 11, size: 22 });
    });
  }

  it("the seL4 structs are untouched on every other failure too", async () => {
    const vm = await makeVm({ kernel: KERNEL64, initrd: pat(0x800, 9) });
    const kstruct = { kernel_image: { load_paddr: 1, alignment: 2, size: 3 }, kernel_image_arch: { is_reloc_enabled: true, relocs_file: "missing" } };
    const kbefore = structuredClone(kstruct);
    await expectUnchanged(vm, () => vm_load_guest_kernel(vm, "kernel", 0x30000, 0, kstruct as never), "NOT_FOUND", { image: "missing" });
    expect(kstruct).toEqual(kbefore);
    const k2 = { kernel_image: { load_paddr: 4, alignment: 5, size: 6 }, kernel_image_arch: { is_reloc_enabled: false, relocs_file: null } };
    const k2before = structuredClone(k2);
    await expectUnchanged(vm, () => vm_load_guest_kernel(vm, "kernel", 0x3f000, 0, k2 as never), "OUT_OF_RAM", { image: "kernel" });
    await expectUnchanged(vm, () => vm_load_guest_kernel(vm, "kernel", RESIDENT_AT, 0, k2 as never), "OVERLAP", { image: "kernel" });
    expect(k2).toEqual(k2before);
    const mstruct = { load_paddr: 1, alignment: 2, size: 3 };
    await expectUnchanged(vm, () => vm_load_guest_module(vm, "initrd", RESIDENT_AT + 0x10, 0, mstruct), "OVERLAP", { image: "initrd" });
    await expectUnchanged(vm, () => vm_load_guest_module(vm, "initrd", -1, 0, mstruct), "BAD_ARGUMENT", { image: "initrd" });
    expect(mstruct).toEqual({ load_paddr: 1, alignment: 2, size: 3 });
  });
});

// ---------------------------------------------------------------------------------------------

describe("BAD_ADDRESS", () => {
  it("a load address that rounds up past 2^53-1 (kernel, module, both APIs)", async () => {
    const vm = await makeVm({ kernel: KERNEL64, initrd: pat(0x10, 9) });
    const at = MAX_SAFE - 10;
    await expectUnchanged(vm, () => vm.loadKernel("kernel", { at, align: 0x1000 }), "BAD_ADDRESS", { image: "kernel" });
    await expectUnchanged(vm, () => vm.loadModule("initrd", { at, align: 0x1000 }), "BAD_ADDRESS", { image: "initrd" });
    await expectUnchanged(vm, () => vm_load_guest_kernel(vm, "kernel", at, 0x200000), "BAD_ADDRESS", { image: "kernel" });
    await expectUnchanged(vm, () => vm_load_guest_module(vm, "initrd", at, 2 ** 52), "BAD_ADDRESS", { image: "initrd" });
  });

  it("an ELF linked above 2^53 loaded without `at` (with and without align); with `at` it loads", async () => {
    const hi = 1n << 54n;
    const elf = buildElf({ entry: hi, segs: [{ vaddr: hi, data: pat(0x100, 1) }] });
    const vm = await makeVm({ hi: elf });
    await expectUnchanged(vm, () => vm.loadKernel("hi"), "BAD_ADDRESS", { image: "hi", mentions: ["0x40000000000000"] });
    await expectUnchanged(vm, () => vm.loadKernel("hi", { align: 0x1000 }), "BAD_ADDRESS", { image: "hi" });
    const k = await vm.loadKernel("hi", { at: 0x30000 });
    expect(k.paddr).toBe(0x30000);
  });

  it("an ELF at exactly 2^53 (one past the largest exact address)", async () => {
    const at = 1n << 53n;
    const vm = await makeVm({ k: buildElf({ entry: at, segs: [{ vaddr: at, data: pat(0x10, 1) }] }) });
    await expectUnchanged(vm, () => vm.loadKernel("k"), "BAD_ADDRESS", { image: "k" });
  });
});

// ---------------------------------------------------------------------------------------------

describe("BAD_ARGUMENT", () => {
  const badAddrs: Array<[string, unknown]> = [["negative", -0x1000], ["fractional", 0x30000 + 0.5], ["NaN", NaN], ["Infinity", Infinity], ["a string", "0x30000"], ["a bigint", 0x30000n], ["-0 fraction", -0.5]];
  for (const [what, at] of badAddrs) {
    it(`load address ${what}`, async () => {
      const vm = await makeVm({ kernel: KERNEL64, initrd: pat(0x100, 9), raw: pat(0x100, 10) });
      await expectUnchanged(vm, () => vm.loadKernel("kernel", { at: at as number }), "BAD_ARGUMENT", { image: "kernel", mentions: ["load address"] });
      await expectUnchanged(vm, () => vm.loadKernel("raw", { at: at as number }), "BAD_ARGUMENT", { image: "raw" });
      await expectUnchanged(vm, () => vm.loadModule("initrd", { at: at as number }), "BAD_ARGUMENT", { image: "initrd", mentions: ["load address"] });
      await expectUnchanged(vm, () => vm_load_guest_kernel(vm, "kernel", at as number, 0), "BAD_ARGUMENT", { image: "kernel" });
      await expectUnchanged(vm, () => vm_load_guest_module(vm, "initrd", at as number, 0x1000), "BAD_ARGUMENT", { image: "initrd" });
    });
  }

  it("raw kernel without `at`; module without `at`; relocs with a raw kernel", async () => {
    const vm = await makeVm({ raw: pat(0x100, 10), initrd: pat(0x100, 9), relocs: u32le(0) });
    const e = await expectUnchanged(vm, () => vm.loadKernel("raw"), "BAD_ARGUMENT", { image: "raw", field: "at" });
    expect(e.message).toMatch(/load address/);
    await expectUnchanged(vm, () => vm.loadKernel("raw", { align: 0x1000 }), "BAD_ARGUMENT", { image: "raw", field: "at" });
    // A module without `at` is placed automatically (vm.findFree); auto placement with no room fails cleanly.
    await expectUnchanged(vm, () => vm.loadModule("initrd", { auto: { min: R1.base, max: R1.base + 0x10 } }), "OUT_OF_RAM", { image: "initrd" });
    await expectUnchanged(vm, () => vm.loadKernel("raw", { at: 0x30000, relocs: "relocs" }), "BAD_ARGUMENT", { image: "raw", field: "relocs" });
  });

  it("empty or non-string image names; a VM without files", async () => {
    const vm = await makeVm({ kernel: KERNEL64 });
    await expectUnchanged(vm, () => vm.loadKernel("", { at: 0x30000 }), "BAD_ARGUMENT", { image: null, field: "name" });
    await expectUnchanged(vm, () => vm.loadModule(undefined as never, { at: 0x30000 }), "BAD_ARGUMENT", { image: null, field: "name" });
    const bare = await createVm({ ram: [R1] });
    await expectUnchanged(bare, () => bare.loadKernel("kernel"), "BAD_ARGUMENT", { image: "kernel" });
  });

  it("createVm: overlapping regions, zero-size region, no regions, bad region fields", async () => {
    await expectCode(() => createVm({ ram: [{ base: 0x1000, size: 0x2000 }, { base: 0x2000, size: 0x1000 }] }), "BAD_ARGUMENT", ["overlap"]);
    await expectCode(() => createVm({ ram: [{ base: 0x10000, size: 0x10000 }, { base: 0x0, size: 0x20000 }] }), "BAD_ARGUMENT", ["overlap"]);
    await expectCode(() => createVm({ ram: [{ base: 0x1000, size: 0x1000 }, { base: 0x1000, size: 0x1000 }] }), "BAD_ARGUMENT", ["overlap"]);
    const z = await expectCode(() => createVm({ ram: [R1, { base: 0x80000, size: 0 }] }), "BAD_ARGUMENT", ["ram[1]"]);
    expect(z.field).toBe("ram");
    await expectCode(() => createVm({ ram: [] }), "BAD_ARGUMENT");
    await expectCode(() => createVm({} as never), "BAD_ARGUMENT");
    await expectCode(() => createVm(undefined as never), "BAD_ARGUMENT");
    await expectCode(() => createVm({ ram: [{ base: -0x1000, size: 0x1000 }] }), "BAD_ARGUMENT", ["ram[0].base"]);
    await expectCode(() => createVm({ ram: [{ base: 0x1000, size: 1.5 }] }), "BAD_ARGUMENT", ["ram[0].size"]);
    await expectCode(() => createVm({ ram: [{ base: MAX_SAFE - 0x10, size: 0x100 }] }), "BAD_ARGUMENT", ["2^53"]);
    await expectCode(() => createVm({ ram: [R1], memoryOffset: -1 }), "BAD_ARGUMENT", ["memoryOffset"]);
  });

  it("createVm: a caller memory too small for RAM; scratchOffset inside guest RAM", async () => {
    const memory = new WebAssembly.Memory({ initial: 2 });
    await expectCode(() => createVm({ ram: [{ base: 0, size: 0x30000 }], memory }), "BAD_ARGUMENT", ["memory"]);
    const big = new WebAssembly.Memory({ initial: 8 });
    await expectCode(() => createVm({ ram: [{ base: 0, size: 0x40000 }], memory: big, scratchOffset: 0x10000 }), "BAD_ARGUMENT", ["scratchOffset"]);
    await expectCode(() => createVm({ ram: [R1], memory: {} as never }), "BAD_ARGUMENT", ["WebAssembly.Memory"]);
  });
});

// ---------------------------------------------------------------------------------------------

describe("OUT_OF_RAM", () => {
  it("image past the end of RAM (module, raw kernel, ELF with `at`, ELF at its link address)", async () => {
    const vm = await makeVm({ kernel: KERNEL64, initrd: pat(0x100, 9), far: buildElf({ entry: 0x200000, segs: [{ vaddr: 0x200000, data: pat(0x10, 1) }] }) });
    await expectUnchanged(vm, () => vm.loadModule("initrd", { at: R2.base + R2.size - 0x80 }), "OUT_OF_RAM", { image: "initrd", mentions: ["0xa0000"] });
    await expectUnchanged(vm, () => vm.loadKernel("initrd", { at: 0x200000 }), "OUT_OF_RAM", { image: "initrd" });
    await expectUnchanged(vm, () => vm.loadKernel("kernel", { at: R2.base + R2.size - 0x1000 }), "OUT_OF_RAM", { image: "kernel" });
    await expectUnchanged(vm, () => vm.loadKernel("far"), "OUT_OF_RAM", { image: "far", mentions: ["0x200000"] });
    await expectUnchanged(vm, () => vm.loadModule("initrd", { at: 0 }), "OUT_OF_RAM", { image: "initrd" });
    await expectUnchanged(vm, () => vm.loadModule("initrd", { at: MAX_SAFE }), "OUT_OF_RAM", { image: "initrd" });
  });

  it("image spanning the hole between two regions", async () => {
    const vm = await makeVm({ initrd: pat(0x100, 9), kernel: KERNEL64 });
    await expectUnchanged(vm, () => vm.loadModule("initrd", { at: R1.base + R1.size - 0x80 }), "OUT_OF_RAM", { image: "initrd", mentions: ["0x40000"] });
    await expectUnchanged(vm, () => vm.loadKernel("kernel", { at: 0x3e000 }), "OUT_OF_RAM", { image: "kernel" });
  });

  it("ELF whose second segment lands in the hole (first segment in RAM)", async () => {
    const elf = buildElf({ entry: 0x3f000, segs: [{ vaddr: 0x3f000, data: pat(0x100, 1) }, { vaddr: 0x50000, data: pat(0x100, 2) }] });
    for (const dirty of [true, false]) {
      const vm = await makeVm({ elf }, dirty);
      await expectUnchanged(vm, () => vm.loadKernel("elf"), "OUT_OF_RAM", { image: "elf" });
    }
  });

  it("ELF whose bss (p_memsz > p_filesz) runs off the end of RAM", async () => {
    const elf = buildElf({ entry: 0x9f000, segs: [{ vaddr: 0x9f000, data: pat(0x100, 1), memsz: 0x2000 }] });
    const vm = await makeVm({ elf });
    await expectUnchanged(vm, () => vm.loadKernel("elf"), "OUT_OF_RAM", { image: "elf" });
  });
});

// ---------------------------------------------------------------------------------------------

describe("OVERLAP", () => {
  it("module overlapping the kernel names both images (QEMU-style)", async () => {
    const vm = await makeVm({ kernel: KERNEL64, initrd: pat(0x800, 9) });
    await vm.loadKernel("kernel");
    const e = await expectUnchanged(vm, () => vm.loadModule("initrd", { at: 0x22000 }), "OVERLAP", { image: "initrd", mentions: ['"kernel"', "0x20000", "0x23100"] });
    expect(e.message.indexOf("initrd")).toBe(0);
    // Even in the gap between two segments: the kernel owns [lowest start, highest end).
    await expectUnchanged(vm, () => vm.loadModule("initrd", { at: 0x22000, align: 0x1000 }), "OVERLAP", { image: "initrd", mentions: ["kernel"] });
    await expectUnchanged(vm, () => vm.loadModule("initrd", { at: 0x1f900 }), "OVERLAP", { image: "initrd", mentions: ["kernel"] });
    await expectUnchanged(vm, () => vm.loadKernel("kernel"), "OVERLAP", { image: "kernel", mentions: ["kernel"] });
    await expectUnchanged(vm, () => vm.loadModule("initrd", { at: 0x22000, dryRun: true }), "OVERLAP", { image: "initrd" });
    // The already-placed resident image.
    await expectUnchanged(vm, () => vm.loadKernel("kernel", { at: RESIDENT_AT - 0x1000 }), "OVERLAP", { image: "kernel", mentions: ['"resident"'] });
    // Touching is not overlapping.
    await vm.loadModule("initrd", { at: KEND });
  });

  for (const [label, kdelay, mdelay] of [["no delays", 0, 0], ["module checked while the kernel's reservation is held", 2, 10], ["kernel checked while the module's reservation is held", 8, 30], ["kernel fast, module slow", 0, 5], ["kernel slow, module fast", 5, 0]] as const) {
    it(`two concurrent loads into overlapping ranges (${label}): exactly one wins, RAM holds only its bytes`, async () => {
      const initrd = pat(0x2000, 9);
      const ks = new FlakySource({ kernel: KERNEL64 }, Infinity, "plain", kdelay);
      const ms = new FlakySource({ initrd }, Infinity, "plain", mdelay);
      const src: Source = { open: (n) => (n === "kernel" ? ks.open(n) : ms.open(n)) };
      const vm = await makeVm(src);
      const before = snapshot(vm);
      const [a, b] = await Promise.allSettled([vm.loadKernel("kernel"), vm.loadModule("initrd", { at: 0x21000 })]);
      const won = [a, b].filter((r) => r.status === "fulfilled");
      const lost = [a, b].filter((r): r is PromiseRejectedResult => r.status === "rejected");
      expect(won.length).toBe(1);
      expect(lost.length).toBe(1);
      const e = lost[0].reason;
      expect(e).toBeInstanceOf(GuestImageError);
      expect((e as GuestImageError).code).toBe("OVERLAP");
      const kernelWon = a.status === "fulfilled";
      expect((e as GuestImageError).message).toContain(kernelWon ? "kernel" : "initrd");
      // Reference: the winner's load alone on an identical VM.
      const ref = await makeVm({ kernel: KERNEL64, initrd });
      if (kernelWon) await ref.loadKernel("kernel");
      else await ref.loadModule("initrd", { at: 0x21000 });
      const after = snapshot(vm);
      expect(firstDiff(vm, snapshot(ref).ram, after.ram)).toBeNull();
      expect(after.placed).toEqual(snapshot(ref).placed);
      expect(after.placed.length).toBe(before.placed.length + 1);
    });
  }

  for (const outcome of ["succeeds", "fails"] as const) {
    it(`deterministic: a module checked while the kernel's reservation is held is refused; the kernel then ${outcome}`, async () => {
      // The kernel's first segment read (#4) waits on a gate, so its range is reserved, not yet placed.
      let enter!: () => void;
      const entered = new Promise<void>((r) => (enter = r));
      let open!: (ok: boolean) => void;
      const gate = new Promise<boolean>((r) => (open = r));
      let n = 0;
      const inner = fromMap({ kernel: KERNEL64, initrd: pat(0x2000, 9) });
      const src: Source = {
        async open(name) {
          const f = await inner.open(name);
          return {
            name: f.name, size: f.size, close: () => f.close(),
            read: async (d, p) => {
              if (name === "kernel" && n++ === 4) {
                enter();
                if (!(await gate)) {
                  d.fill(0xee);
                  throw new Error("gate closed");
                }
              }
              return f.read(d, p);
            },
          };
        },
      };
      const vm = await makeVm(src);
      const before = snapshot(vm);
      const kernel = vm.loadKernel("kernel").then((k) => k, (e) => e as GuestImageError);
      await entered;
      expect(vm.placed()).toEqual(before.placed); // reserved, not placed
      const e = await expectUnchanged(vm, () => vm.loadModule("initrd", { at: 0x22000 }), "OVERLAP", { image: "initrd", mentions: ['"kernel"'] });
      expect(e.message).toContain("0x20000");
      open(outcome === "succeeds");
      const k = await kernel;
      if (outcome === "succeeds") {
        expect(k).not.toBeInstanceOf(Error);
        expect(vm.placed().map((p) => p.name)).toEqual(["kernel", "resident"]);
      } else {
        expect(k).toBeInstanceOf(GuestImageError);
        expect((k as GuestImageError).code).toBe("IO");
        expect(firstDiff(vm, before.ram, snapshot(vm).ram)).toBeNull();
        expect(vm.placed()).toEqual(before.placed);
        // The reservation is gone: the module now fits.
        await vm.loadModule("initrd", { at: 0x22000 });
      }
    });
  }

  it("a concurrent load rejected by a reservation whose load then fails mid-read: both fail, nothing changes", async () => {
    // The kernel reserves its range, then its 5th read (segment B) fails after a delay; the module,
    // checked while the reservation is held, is refused.
    const ks = new FlakySource({ kernel: KERNEL64 }, 5, "partial-plain", 4);
    const ms = new FlakySource({ initrd: pat(0x2000, 9) }, Infinity, "plain", 0);
    const src: Source = { open: (n) => (n === "kernel" ? ks.open(n) : ms.open(n)) };
    const vm = await makeVm(src);
    const before = snapshot(vm);
    const modAfterReserve = (async () => {
      await new Promise((r) => setTimeout(r, 18)); // kernel parsed (4 reads × 4 ms) and reserved
      return vm.loadModule("initrd", { at: 0x21000 });
    })();
    const [a, b] = await Promise.allSettled([vm.loadKernel("kernel"), modAfterReserve]);
    // Timers decide the interleaving; whatever it was, the kernel never lands (its read fails or
    // the module got there first) and the module either lands alone or is refused.
    expect(a.status).toBe("rejected");
    const ka = (a as PromiseRejectedResult).reason as GuestImageError;
    expect(ka).toBeInstanceOf(GuestImageError);
    expect(["IO", "OVERLAP"]).toContain(ka.code);
    if (b.status === "rejected") {
      expect((b.reason as GuestImageError).code).toBe("OVERLAP");
      expect(firstDiff(vm, before.ram, snapshot(vm).ram)).toBeNull();
      expect(vm.placed()).toEqual(before.placed);
    } else {
      const ref = await makeVm({ initrd: pat(0x2000, 9) });
      await ref.loadModule("initrd", { at: 0x21000 });
      expect(firstDiff(vm, snapshot(ref).ram, snapshot(vm).ram)).toBeNull();
      expect(vm.placed()).toEqual(ref.placed());
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe("TOO_LARGE", () => {
  it("createVm with more than 4 GiB of RAM", async () => {
    const e = await expectCode(() => createVm({ ram: [{ base: 0, size: 2 ** 32 }] }), "TOO_LARGE", ["4 GiB"]);
    expect(e.field).toBe("ram");
    await expectCode(() => createVm({ ram: [{ base: 0, size: 2 ** 31 }, { base: 2 ** 32, size: 2 ** 31 + 0x10000 }] }), "TOO_LARGE");
    await expectCode(() => createVm({ ram: [{ base: 0, size: 2 ** 40 }] }), "TOO_LARGE");
  });

  it("an ELF whose segments span more than 2^53 bytes", async () => {
    const far = 1n << 60n;
    const elf = buildElf({ entry: 0x20000, segs: [{ vaddr: 0x20000, data: pat(0x10, 1) }, { vaddr: far, data: pat(0x10, 2) }] });
    const vm = await makeVm({ elf });
    await expectUnchanged(vm, () => vm.loadKernel("elf"), "TOO_LARGE", { image: "elf" });
    await expectUnchanged(vm, () => vm.loadKernel("elf", { at: 0x30000 }), "TOO_LARGE", { image: "elf" });
  });
});

// ---------------------------------------------------------------------------------------------

describe("RELOCATION and relocation-related header checks", () => {
  it("x86 relocs: a 32-bit site outside the image", async () => {
    const vm = await makeVm({ kernel: KERNEL64, relocs: u32le(0, 0, 0, 0x20010, KBASE + 0x5000) });
    await expectUnchanged(vm, () => vm.loadKernel("kernel", { at: 0x30000, relocs: "relocs" }), "RELOCATION", { image: "kernel", field: "relocs", mentions: ["relocs", "0x25000"] });
  });

  it("x86 relocs: sites in the gap between segments, straddling a segment end, in the 64-bit and inverse groups", async () => {
    const vm = await makeVm({
      kernel: KERNEL64,
      gap: u32le(0, 0, 0, 0x20800),
      straddle: u32le(0, 0, 0, 0x202fe),
      sixtyfour: u32le(0, 0x202fc, 0, 0, 0x20010), // 8-byte site at segment A's last 4 bytes
      inverse: u32le(0, 0, 0x20800, 0),
      below: u32le(0, 0, 0, 0x1fff0),
    });
    for (const r of ["gap", "straddle", "sixtyfour", "inverse", "below"]) {
      await expectUnchanged(vm, () => vm.loadKernel("kernel", { at: 0x30000, relocs: r }), "RELOCATION", { image: "kernel", mentions: [r] });
    }
  });

  it("x86 relocs: a stream with no terminating zero word (separate file, appended to the kernel, empty)", async () => {
    const appended = concat(KERNEL64, u32le(0x20010, 0x20014));
    const appended32 = concat(buildElf(kernelSpec({ cls: 32, machine: EM_386 })), u32le(0x20010));
    const vm = await makeVm({ kernel: KERNEL64, nozero: u32le(0x20010, 0x20014), two: u32le(0, 0), empty: new Uint8Array(0), appended, appended32 });
    await expectUnchanged(vm, () => vm.loadKernel("kernel", { at: 0x30000, relocs: "nozero" }), "RELOCATION", { image: "kernel", mentions: ["zero"] });
    // 64-bit kernel: three groups need three zero words.
    await expectUnchanged(vm, () => vm.loadKernel("kernel", { at: 0x30000, relocs: "two" }), "RELOCATION", { image: "kernel", mentions: ["64-bit"] });
    await expectUnchanged(vm, () => vm.loadKernel("kernel", { at: 0x30000, relocs: "empty" }), "RELOCATION", { image: "kernel" });
    await expectUnchanged(vm, () => vm.loadKernel("appended", { at: 0x30000, relocs: "appended" }), "RELOCATION", { image: "appended" });
    await expectUnchanged(vm, () => vm.loadKernel("appended32", { at: 0x30000, relocs: "appended32" }), "RELOCATION", { image: "appended32" });
    // Even at the link address (nothing to apply) the data must parse.
    await expectUnchanged(vm, () => vm.loadKernel("kernel", { relocs: "nozero" }), "RELOCATION", { image: "kernel" });
    await expectUnchanged(vm, () => vm_load_guest_kernel(vm, "kernel", 0x30000, 0, { kernel_image: {} as never, kernel_image_arch: { is_reloc_enabled: true, relocs_file: "nozero" } }), "RELOCATION", { image: "kernel" });
  });

  it("x86 relocs for a non-x86 kernel (e_machine must be 3 or 62)", async () => {
    const arm64 = buildElf(kernelSpec({ machine: EM_AARCH64 }));
    const vm = await makeVm({ arm64, relocs: u32le(0, 0, 0, 0x20010) });
    await expectUnchanged(vm, () => vm.loadKernel("arm64", { at: 0x30000, relocs: "relocs" }), "UNSUPPORTED", { image: "arm64", mentions: ["aarch64"] });
  });

  it("ELF64 PIE: a non-RELATIVE relocation (R_X86_64_64) at a shifted address", async () => {
    const pie = buildPie({ entries: [{ offset: L + 0x10n, type: R_X86_64_RELATIVE, addend: L + 0x50n }, { offset: L + 0x18n, type: R_X86_64_64, sym: 1, addend: 0n }] });
    for (const dirty of [true, false]) {
      const vm = await makeVm({ pie }, dirty);
      const e = await expectUnchanged(vm, () => vm.loadKernel("pie", { at: 0x30000 }), "RELOCATION", { image: "pie", field: "r_offset", mentions: ["type 1", "0x20018", "DT_RELA"] });
      expect(e.message).toMatch(/entry 1/);
    }
  });

  it("ELF32 i386 PIE (REL): R_386_32 at a shifted address", async () => {
    const pie = buildPie({ cls: 32, machine: EM_386, rela: false, entries: [{ offset: L + 0x10n, type: R_386_32, sym: 2 }] });
    const vm = await makeVm({ pie });
    await expectUnchanged(vm, () => vm.loadKernel("pie", { at: 0x30000 }), "RELOCATION", { image: "pie", mentions: ["type 1", "DT_REL"] });
  });

  it("ELF64 PIE: a RELATIVE site outside every segment (and one straddling a segment end)", async () => {
    const out = buildPie({ entries: [{ offset: L + 0x800n, type: R_X86_64_RELATIVE, addend: 0n }] });
    const straddle = buildPie({ entries: [{ offset: L + 0x3fcn, type: R_X86_64_RELATIVE, addend: 0n }] });
    const vm = await makeVm({ out, straddle });
    await expectUnchanged(vm, () => vm.loadKernel("out", { at: 0x30000 }), "RELOCATION", { image: "out", mentions: ["0x20800"] });
    await expectUnchanged(vm, () => vm.loadKernel("straddle", { at: 0x30000 }), "RELOCATION", { image: "straddle", mentions: ["0x203fc"] });
  });

  const rel = [{ offset: L + 0x10n, type: R_X86_64_RELATIVE, addend: L }];
  const dynCases: Array<{ what: string; pie: () => Uint8Array; code: ErrorCode; mentions: Array<string | string[]>; field?: string }> = [
    { what: "DT_RELAENT 16", pie: () => buildPie({ entries: rel, dyn: [[DT_RELA, L + 0x100n], [DT_RELASZ, 24n], [DT_RELAENT, 16n], [DT_NULL, 0n]] }), code: "BAD_HEADER", field: "DT_RELAENT", mentions: ["DT_RELA", "16"] },
    { what: "DT_RELASZ not a multiple of 24", pie: () => buildPie({ entries: rel, dyn: [[DT_RELA, L + 0x100n], [DT_RELASZ, 25n], [DT_RELAENT, 24n], [DT_NULL, 0n]] }), code: "BAD_HEADER", field: "DT_RELASZ", mentions: ["0x19"] },
    { what: "DT_RELA outside every PT_LOAD's file bytes", pie: () => buildPie({ entries: rel, dyn: [[DT_RELA, L + 0x1010n], [DT_RELASZ, 24n], [DT_RELAENT, 24n], [DT_NULL, 0n]] }), code: "BAD_HEADER", field: "DT_RELA", mentions: ["0x21010"] },
    { what: "DT_RELA table running past its segment's file bytes", pie: () => buildPie({ entries: rel, dyn: [[DT_RELA, L + 0x3f0n], [DT_RELASZ, 48n], [DT_RELAENT, 24n], [DT_NULL, 0n]] }), code: "BAD_HEADER", field: "DT_RELA", mentions: ["DT_RELA"] },
    { what: "DT_RELRENT not the word size", pie: () => buildPie({ entries: rel, dyn: [[DT_RELA, L + 0x100n], [DT_RELASZ, 24n], [DT_RELAENT, 24n], [DT_RELR, L + 0x100n], [DT_RELRSZ, 8n], [37n, 4n], [DT_NULL, 0n]] }), code: "BAD_HEADER", field: "DT_RELRENT", mentions: ["DT_RELR"] },
    { what: "DT_RELR starting with a bitmap", pie: () => buildPie({ entries: [{ offset: L + 0x11n, type: R_X86_64_RELATIVE, addend: 0n }], dyn: [[DT_RELR, L + 0x100n], [DT_RELRSZ, 8n], [DT_NULL, 0n]] }), code: "RELOCATION", field: "DT_RELR", mentions: ["bitmap"] },
    { what: "a DT_RELR site outside the segments", pie: () => buildPie({ entries: [{ offset: L + 0x3000n, type: R_X86_64_RELATIVE, addend: 0n }], dyn: [[DT_RELR, L + 0x100n], [DT_RELRSZ, 8n], [DT_NULL, 0n]] }), code: "RELOCATION", field: "DT_RELR", mentions: ["0x23000"] },
    { what: "both REL and RELA", pie: () => buildPie({ entries: rel, dyn: [[DT_RELA, L + 0x100n], [DT_RELASZ, 24n], [DT_RELAENT, 24n], [DT_REL, L + 0x100n], [DT_RELSZ, 16n], [DT_RELENT, 16n], [DT_NULL, 0n]] }), code: "UNSUPPORTED", mentions: ["REL"] },
    { what: "a machine with no known RELATIVE type (sparc)", pie: () => buildPie({ machine: EM_SPARC, entries: rel }), code: "UNSUPPORTED", field: "e_machine", mentions: ["sparc"] },
    { what: "segments with different p_vaddr − p_paddr", pie: () => buildPie({ entries: rel, seg2paddr: L + 0x2000n }), code: "UNSUPPORTED", field: "p_vaddr", mentions: ["p_vaddr"] },
    { what: "PT_DYNAMIC past EOF", pie: () => buildPie({ entries: rel, dynSeg: { offset: 0x100000 } }), code: "TRUNCATED", mentions: ["PT_DYNAMIC"] },
  ];
  for (const c of dynCases) {
    it(`ELF PIE relocated to a shifted base: ${c.what} → ${c.code}`, async () => {
      const vm = await makeVm({ pie: c.pie() });
      await expectUnchanged(vm, () => vm.loadKernel("pie", { at: 0x30000 }), c.code, { image: "pie", field: c.field, mentions: c.mentions });
    });
  }

  it("relocating an image with more segments than the core's segment table (257 PT_LOADs)", async () => {
    const segs: SegSpec[] = Array.from({ length: 257 }, (_, i) => ({ vaddr: 0x20000 + i * 0x20, data: pat(0x10, i) }));
    const e1 = buildElf({ type: ET_DYN, entry: 0x20000, segs });
    const vm = await makeVm({ e1, relocs: u32le(0, 0, 0, 0x20000) });
    // With x86 relocs data (dynamic table empty here), the relocation needs the segment table.
    await expectUnchanged(vm, () => vm.loadKernel("e1", { at: 0x30000, relocs: "relocs" }), "UNSUPPORTED", { image: "e1", mentions: ["257"] });
  });

  it("relocating an image that spans RAM regions not contiguous in linear memory", async () => {
    // Region [0x21000, 0x31000) comes first in linear memory, [0x10000, 0x21000) second.
    const ram = [{ base: 0x21000, size: 0x10000 }, { base: 0x10000, size: 0x11000 }];
    const pie = buildPie({ entries: [{ offset: L + 0x10n, type: R_X86_64_RELATIVE, addend: L }] });
    const vm = await createVm({ ram, files: fromMap({ pie }) });
    vm.ram.write(0x10000, pat(0x21000, 4));
    // At its link address: its RELA RELATIVE entries are applied there too.
    await expectUnchanged(vm, () => vm.loadKernel("pie", { at: 0x20000 }), "UNSUPPORTED", { image: "pie", mentions: ["linear"] });
  });
});

// ---------------------------------------------------------------------------------------------

describe("modules: device trees and empty files", () => {
  it("unknown data (bad FDT magic) is not an error: loaded verbatim", async () => {
    const notDtb = poke(fdt({ totalsize: 0x1000 }, 0x60), 0, 4, 0xd00dfeee, false);
    const vm = await makeVm({ m: notDtb });
    await vm.loadModule("m", { at: 0x30000 });
    expect(vm.ram.read(0x30000, notDtb.length)).toEqual(notDtb);
  });

  const fdtCases: Array<{ what: string; bytes: () => Uint8Array; code: ErrorCode; field: string; mentions: string[] }> = [
    { what: "totalsize larger than the file", bytes: () => fdt({ totalsize: 0x1000 }, 0x60), code: "TRUNCATED", field: "totalsize", mentions: ["totalsize", "0x1000", "0x60"] },
    { what: "totalsize 0xffffffff", bytes: () => fdt({ totalsize: 0xffffffff }, 0x60), code: "TRUNCATED", field: "totalsize", mentions: ["totalsize", "0xffffffff"] },
    { what: "totalsize smaller than the header", bytes: () => fdt({ totalsize: 0x20 }, 0x60), code: "BAD_HEADER", field: "totalsize", mentions: ["totalsize", "0x20"] },
    { what: "off_dt_struct outside totalsize", bytes: () => fdt({ off_dt_struct: 0x100 }), code: "BAD_HEADER", field: "off_dt_struct", mentions: ["off_dt_struct", "0x100"] },
    { what: "off_dt_struct + size_dt_struct past totalsize", bytes: () => fdt({ size_dt_struct: 0x30 }), code: "BAD_HEADER", field: "size_dt_struct", mentions: ["off_dt_struct", "0x30"] },
    { what: "off_dt_struct inside the header", bytes: () => fdt({ off_dt_struct: 0x10 }), code: "BAD_HEADER", field: "off_dt_struct", mentions: ["off_dt_struct", "0x10"] },
    { what: "off_dt_strings outside totalsize", bytes: () => fdt({ off_dt_strings: 0x5c }), code: "BAD_HEADER", field: "size_dt_strings", mentions: ["off_dt_strings", "0x5c"] },
    // libfdt's check_off_ allows off_mem_rsvmap up to totalsize itself; one past it is refused.
    { what: "off_mem_rsvmap outside totalsize", bytes: () => fdt({ off_mem_rsvmap: 0x61 }), code: "BAD_HEADER", field: "off_mem_rsvmap", mentions: ["off_mem_rsvmap", "0x61"] },
    { what: "a file shorter than the FDT header", bytes: () => fdt({}, 0x10), code: "TRUNCATED", field: "totalsize", mentions: ["16"] },
  ];
  for (const c of fdtCases) {
    for (const dirty of [true, false]) {
      it(`FDT module: ${c.what} → ${c.code} (${dirty ? "dirty" : "fresh"})`, async () => {
        const vm = await makeVm({ "board.dtb": c.bytes() }, dirty);
        await expectUnchanged(vm, () => vm.loadModule("board.dtb", { at: 0x30000 }), c.code, { image: "board.dtb", field: c.field, mentions: c.mentions });
        await expectUnchanged(vm, () => vm_load_guest_module(vm, "board.dtb", 0x30000, 0x1000), c.code, { image: "board.dtb" });
      });
    }
  }

  it("an empty file as kernel and as module → TRUNCATED", async () => {
    for (const dirty of [true, false]) {
      const vm = await makeVm({ empty: new Uint8Array(0) }, dirty);
      await expectUnchanged(vm, () => vm.loadKernel("empty", { at: 0x30000 }), "TRUNCATED", { image: "empty", mentions: ["empty"] });
      await expectUnchanged(vm, () => vm.loadKernel("empty"), "TRUNCATED", { image: "empty" });
      await expectUnchanged(vm, () => vm.loadModule("empty", { at: 0x30000 }), "TRUNCATED", { image: "empty" });
      await expectUnchanged(vm, () => vm_load_guest_kernel(vm, "empty", 0x30000, 0), "TRUNCATED", { image: "empty" });
      await expectUnchanged(vm, () => vm_load_guest_module(vm, "empty", 0x30000, 0), "TRUNCATED", { image: "empty" });
    }
  });
});

describe("UNSUPPORTED: wrong input kinds as a kernel", () => {
  it("a DTB passed as a kernel says it is a device tree", async () => {
    const vm = await makeVm({ "board.dtb": fdt() });
    await expectUnchanged(vm, () => vm.loadKernel("board.dtb", { at: 0x30000 }), "UNSUPPORTED", { image: "board.dtb", mentions: ["device tree"] });
    await expectUnchanged(vm, () => vm_load_guest_kernel(vm, "board.dtb", 0x30000, 0), "UNSUPPORTED", { image: "board.dtb", mentions: ["device tree"] });
    await expectUnchanged(vm, () => vm.loadKernel("board.dtb"), "UNSUPPORTED", { image: "board.dtb", mentions: ["device tree"] });
  });

  it("a gzip file whose ISIZE trailer claims more than RAM is refused before decompressing", async () => {
    // RFC 1952 member: 10-byte header, (garbage) deflate data, CRC32, ISIZE = 0x02020202.
    const gz = concat(new Uint8Array([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]), pat(0x40, 2));
    const vm = await makeVm({ "Image.gz": gz });
    await expectUnchanged(vm, () => vm.loadKernel("Image.gz", { at: 0x30000 }), "TOO_LARGE", { image: "Image.gz" });
  });

  it("a gzip-compressed device tree passed as a kernel says what is inside", async () => {
    const dtb = new Uint8Array(readFileSync(new URL("../examples/images/linux.dtb", import.meta.url)));
    const vm = await makeVm({ "dtb.gz": new Uint8Array(gzipSync(dtb)) });
    await expectUnchanged(vm, () => vm.loadKernel("dtb.gz", { at: 0x30000 }), "UNSUPPORTED", { image: "dtb.gz", mentions: ["device tree"] });
    await expectUnchanged(vm, () => vm_load_guest_kernel(vm, "dtb.gz", 0x30000, 0x1000), "UNSUPPORTED", { image: "dtb.gz", mentions: ["device tree"] });
  });
});

// ---------------------------------------------------------------------------------------------

describe("IO / TRUNCATED mid-load: rollback", () => {
  const modes: FailMode[] = ["truncated", "partial-truncated", "plain", "partial-plain"];
  for (const mode of modes) {
    for (let failAt = 0; failAt < KERNEL_READS; failAt++) {
      for (const dirty of [true, false]) {
        const code: ErrorCode = mode.endsWith("truncated") ? "TRUNCATED" : "IO";
        it(`3-segment ELF, read #${failAt} fails (${mode}, ${dirty ? "dirty RAM" : "fresh RAM"}) → ${code}, nothing changes`, async () => {
          const src = new FlakySource({ kernel: KERNEL64 }, failAt, mode);
          const vm = await makeVm(src, dirty);
          const e = await expectUnchanged(vm, () => vm.loadKernel("kernel"), code, { image: "kernel", mentions: ["injected"] });
          if (code === "IO") expect((e as Error).cause).toBeInstanceOf(Error);
          expect(src.reads).toBe(failAt + 1);
        });
      }
    }
  }

  it("after a failed read the range is released: a retry on the same VM succeeds", async () => {
    let fail = true;
    const inner = fromMap({ kernel: KERNEL64 });
    const src: Source = {
      async open(name) {
        const f = await inner.open(name);
        return { ...f, name: f.name, size: f.size, close: () => f.close(), read: async (d, p) => { if (fail && d.length === SEG_C.length) throw new Error("flaky"); return f.read(d, p); } };
      },
    };
    const vm = await makeVm(src);
    await expectUnchanged(vm, () => vm.loadKernel("kernel"), "IO", { image: "kernel", mentions: ["flaky"] });
    fail = false;
    await vm.loadKernel("kernel");
    expect(vm.ram.read(0x23000, SEG_C.length)).toEqual(SEG_C);
  });

  // A segment split across two RAM regions that are adjacent physically but not in linear memory:
  // [0x21800, 0x31800) first in linear memory, [0x10000, 0x21800) second.
  const SPLIT_RAM = [{ base: 0x21800, size: 0x10000 }, { base: 0x10000, size: 0x11800 }];
  const SPLIT = buildElf({ entry: 0x20000, segs: [{ vaddr: 0x20000, data: pat(0x300, 1) }, { vaddr: 0x21700, data: pat(0x200, 2), memsz: 0x400 }, { vaddr: 0x23000, data: pat(0x100, 3) }] });
  it("the split-segment ELF needs 8 reads and loads", async () => {
    const src = new FlakySource({ split: SPLIT });
    const vm = await createVm({ ram: SPLIT_RAM, files: src });
    await vm.loadKernel("split");
    expect(src.reads).toBe(8);
    expect(vm.ram.read(0x21700, 0x200)).toEqual(pat(0x200, 2));
  });
  for (let failAt = 4; failAt < 8; failAt++) {
    for (const mode of ["partial-truncated", "partial-plain"] as const) {
      it(`segment split across regions, read #${failAt} fails (${mode}) → rolled back`, async () => {
        const src = new FlakySource({ split: SPLIT }, failAt, mode);
        const vm = await createVm({ ram: SPLIT_RAM, files: src });
        const fill = pat(0x21800 - 0x10000, 17);
        fill.fill(0, 0x21780 - 0x10000); // half of the split segment's first piece is zero
        vm.ram.write(0x10000, fill);
        vm.ram.write(0x21800, pat(0x1000, 18));
        await expectUnchanged(vm, () => vm.loadKernel("split"), mode.endsWith("truncated") ? "TRUNCATED" : "IO", { image: "split" });
      });
    }
  }

  it("a raw module whose only read fails: IO, nothing changes", async () => {
    const src = new FlakySource({ initrd: pat(0x800, 9) }, 1, "partial-plain");
    const vm = await makeVm(src);
    await expectUnchanged(vm, () => vm.loadModule("initrd", { at: 0x30000 }), "IO", { image: "initrd" });
  });

  it("a source whose read rejects with a non-Error value is wrapped as IO", async () => {
    const inner = fromMap({ kernel: KERNEL64 });
    let n = 0;
    const src: Source = {
      async open(name) {
        const f = await inner.open(name);
        return { name: f.name, size: f.size, close: () => f.close(), read: async (d, p) => { if (n++ === 5) throw "EIO"; return f.read(d, p); } };
      },
    };
    const vm = await makeVm(src);
    await expectUnchanged(vm, () => vm.loadKernel("kernel"), "IO", { image: "kernel", mentions: ["EIO"] });
  });

  it("a source whose open() throws a plain Error is wrapped as IO", async () => {
    const src: Source = { async open() { throw new Error("disk on fire"); } };
    const vm = await makeVm(src);
    await expectUnchanged(vm, () => vm.loadKernel("kernel"), "IO", { image: "kernel", mentions: ["disk on fire"] });
    await expectUnchanged(vm, () => vm.loadModule("initrd", { at: 0x30000 }), "IO", { image: "initrd", mentions: ["disk on fire"] });
  });

  it("a failed load whose file's close() also throws reports the load's error, not the close's", async () => {
    const inner = fromMap({ initrd: pat(0x800, 9) });
    const src: Source = {
      async open(name) {
        const f = await inner.open(name);
        return { name: f.name, size: f.size, read: (d, p) => f.read(d, p), close: async () => { throw new Error("close failed"); } };
      },
    };
    const vm = await makeVm(src);
    await expectUnchanged(vm, () => vm.loadModule("initrd", { at: RESIDENT_AT }), "OVERLAP", { image: "initrd" });
  });

  it("a successful load whose close() throws: if the call rejects, nothing may have changed", async () => {
    const inner = fromMap({ initrd: pat(0x800, 9) });
    const src: Source = {
      async open(name) {
        const f = await inner.open(name);
        return { name: f.name, size: f.size, read: (d, p) => f.read(d, p), close: async () => { throw new Error("close failed"); } };
      },
    };
    const vm = await makeVm(src);
    const before = snapshot(vm);
    let rejected: unknown;
    try {
      await vm.loadModule("initrd", { at: 0x30000 });
    } catch (e) {
      rejected = e;
    }
    if (rejected !== undefined) {
      expect(vm.placed(), "the load rejected, yet its image is recorded as placed").toEqual(before.placed);
      expect(firstDiff(vm, before.ram, snapshot(vm).ram)).toBeNull();
      expect(rejected).toBeInstanceOf(GuestImageError);
    } else {
      expect(vm.placed().map((p) => p.name)).toContain("initrd");
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe("vm.place(): caller-made bytes go through the same checks", () => {
  it("bad arguments, alignment, address, RAM and overlap", async () => {
    const vm = await makeVm({});
    const bytes = pat(0x100, 3);
    await expectUnchanged(vm, () => vm.place("zero-page", [1, 2, 3] as never, { at: 0x30000 }), "BAD_ARGUMENT", { image: "zero-page", field: "bytes" });
    await expectUnchanged(vm, () => vm.place("zero-page", bytes, { auto: { min: R1.base, max: R1.base + 1 } }), "OUT_OF_RAM", { image: "zero-page" });
    await expectUnchanged(vm, () => vm.place("zero-page", bytes, { at: -1 }), "BAD_ARGUMENT", { image: "zero-page" });
    await expectUnchanged(vm, () => vm.place("zero-page", bytes, { at: 0x30000, align: 3 }), "BAD_ALIGNMENT", { image: "zero-page" });
    await expectUnchanged(vm, () => vm.place("zero-page", bytes, { at: MAX_SAFE - 1, align: 0x1000 }), "BAD_ADDRESS", { image: "zero-page" });
    await expectUnchanged(vm, () => vm.place("zero-page", bytes, { at: R1.base + R1.size - 0x10 }), "OUT_OF_RAM", { image: "zero-page" });
    await expectUnchanged(vm, () => vm.place("zero-page", bytes, { at: RESIDENT_AT + 0xf80 }), "OVERLAP", { image: "zero-page", mentions: ['"resident"'] });
  });

  it("an empty byte array placed outside every RAM region is refused (no placement outside RAM)", async () => {
    const vm = await makeVm({});
    const before = snapshot(vm);
    let err: unknown;
    try {
      await vm.place("empty", new Uint8Array(0), { at: 0x200000 });
    } catch (e) {
      err = e;
    }
    expect(vm.placed(), "a zero-size image recorded at an address in no RAM region").toEqual(before.placed);
    expect(err).toBeInstanceOf(GuestImageError);
  });
});

describe("inspectFile error paths", () => {
  it("empty, truncated ELF, bad FDT header", async () => {
    const src = fromMap({ e: new Uint8Array(0), elf: KERNEL64.slice(0, 40), dtb: fdt({ totalsize: 0x1000 }, 0x60) });
    const { inspectFile } = await import("../src/node.js");
    await expectCode(async () => inspectFile(await src.open("e")), "TRUNCATED");
    await expectCode(async () => inspectFile(await src.open("elf")), "TRUNCATED");
    await expectCode(async () => inspectFile(await src.open("dtb")), "TRUNCATED", ["totalsize"]);
  });
});
