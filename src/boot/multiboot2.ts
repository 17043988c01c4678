// bootMultiboot2: a Multiboot 2 kernel, its modules and the information structure in guest RAM,
// and the CPU state its first instruction must see (The Multiboot2 Specification 2.0, 3.2/3.3).
//
//   kernel       where its header says (address tag or ELF program headers); a relocatable one
//                (tag 10) at the base `at` asks for, else the lowest (preference none/lowest) or
//                highest free base within [min_addr, max_addr] (as GRUB chooses)
//   modules      each file verbatim, page aligned (GRUB aligns every module to 4 KiB; the module
//                alignment tag demands it), in free RAM below 4 GiB unless `at` is given (and, for
//                i386 kernels, above 1 MiB: out of the PC legacy area the memory map reserves)
//   ELF sections for an ELF kernel, its section header table in tag 9; sections the program
//                headers do not load (symbol and string tables) are placed too and their sh_addr
//                set, as the specification says ("All sections are loaded") and GRUB does
//   info         src/boot/multiboot2-info.ts, 8-byte aligned below 4 GiB
//   GDT          i386 kernels: the flat one of src/boot/x86-tables.ts (0x10 code, 0x18 data), at
//                the lowest free address below 4 GiB, unless x86Tables: false (the VMM's GDT)
//   CPU          an X86CpuState (src/boot/cpu-x86.ts): EAX = 0x36d76289, EBX = info, every other
//                general register 0, CS/DS/ES/FS/GS/SS flat 32-bit, CR0.PE, paging off, IF clear
//
// Everything runs in one transaction: a boot that fails at any step leaves guest RAM, the ledger
// and the event log as they were. Header requirements that depend on what the caller passes are
// checked before anything is placed: a required framebuffer header tag or a required console with
// no framebuffer given is refused (UNSUPPORTED).
import { GuestImageError } from "../errors.js";
import { SNIFF_BYTES } from "../formats/format.js";
import { checkRelocatableFits, MB2_ARCH_I386, MULTIBOOT2_BOOTLOADER_MAGIC, readMultiboot2, type Multiboot2Image } from "../formats/multiboot2.js";
import { hex } from "../num.js";
import { readBytes, type ImageFile } from "../sources/source.js";
import type { LoadedImage, LoadedKernel, Vm } from "../vm.js";
import { protectedModeState, type X86CpuState } from "./cpu-x86.js";
import { placeX86Tables } from "./x86-tables.js";
import {
  buildMultiboot2Info, MB2_MEMORY_RESERVED,
  type Multiboot2ElfSections, type Multiboot2Framebuffer, type Multiboot2InfoOptions, type Multiboot2MemoryRange,
} from "./multiboot2-info.js";

const FOUR_GIB = 2 ** 32;
const PAGE = 0x1000;
/** The PC's legacy area the kernel must not use as RAM: EBDA (from 639 KiB), VGA memory, option and BIOS ROMs, up to 1 MiB. */
const PC_LEGACY = { base: 0x9fc00, end: 0x100000 };
const SHT_NOBITS = 8;
const SHF_ALLOC = 2;

export interface BootMultiboot2Options {
  /** Kernel file name in the VM's files. */
  kernel: string;
  /** Tag 1. */
  cmdline?: string;
  /** Boot modules, in order: a file name, its string (tag 3), and optionally where it goes. */
  modules?: ReadonlyArray<{ name: string; cmdline?: string; at?: number }>;
  /** Tag 2 (default "guest-image"). */
  bootLoaderName?: string;
  /** A relocatable kernel's load base; refused for one that is not relocatable unless it is its own address. */
  at?: number;
  /** A framebuffer the caller has set up (tag 8); required when the kernel's framebuffer or console tag demands one. */
  framebuffer?: Multiboot2Framebuffer;
  acpiRsdpV1?: Uint8Array;
  acpiRsdpV2?: Uint8Array;
  smbios?: { major: number; minor: number; tables: Uint8Array };
  /** Extra memory map entries (reserved by default), e.g. ranges a device or firmware owns. */
  memoryRanges?: readonly Multiboot2MemoryRange[];
  /** i386 kernels: mark [0x9fc00, 0x100000) reserved in the memory map where RAM covers it (default true), as a PC's firmware does. */
  pcLegacyArea?: boolean;
  /** Where the information structure goes (8-byte aligned, below 4 GiB); default: free RAM. */
  infoAt?: number;
  /** i386 kernels: place the flat GDT the segment registers are loaded from (default true); false: the VMM provides it (cpu.gdtr null). */
  x86Tables?: boolean;
}

/** MIPS (spec 3.2): R4 (a0) = magic, R5 (a1) = the information structure. */
export interface Mips32CpuState {
  arch: "mips32";
  mode: "mips32";
  pc: bigint;
  regs: { a0: bigint; a1: bigint };
}

/**
 * The machine state at the kernel's first instruction (spec 3.3; MIPS 3.2). For i386 kernels the
 * x86 CPU state bootLinux reports for its 32-bit entry, with EAX = magic and EBX = info (spec 3.3:
 * "CS must be a 32-bit read/execute code segment with an offset of 0 and a limit of 0xFFFFFFFF",
 * DS…SS read/write data likewise; CR0.PE set, PG clear; EFLAGS.VM and IF clear).
 */
export type Multiboot2CpuState = X86CpuState | Mips32CpuState;

export interface Multiboot2Boot {
  kernel: LoadedKernel;
  modules: Array<LoadedImage & { cmdline: string }>;
  /** The information structure as placed, and the tags it holds. */
  info: { paddr: number; size: number; tags: Array<{ type: number; offset: number; size: number }> };
  /** Where the image went (load base); differs from its link base only when relocatable and moved. */
  loadBase: number;
  /** Requested information tags (optional or not) that were not provided because the caller gave no data for them. */
  missingInfo: number[];
  cpu: Multiboot2CpuState;
  /** Every placement in order: kernel, modules, ELF sections, gdt, info. */
  placements: Array<{ role: string; name: string; paddr: number; size: number }>;
}

const bad = (field: string, msg: string) => new GuestImageError("BAD_ARGUMENT", msg, { field });

/** Boots a Multiboot 2 kernel: places it, its modules and the information structure. */
export async function bootMultiboot2(vm: Vm, opts: BootMultiboot2Options): Promise<Multiboot2Boot> {
  if (!opts || typeof opts !== "object") throw bad("options", "bootMultiboot2 needs an options object");
  if (typeof opts.kernel !== "string" || opts.kernel === "") throw bad("kernel", "kernel must name a file");
  const modules = opts.modules ?? [];
  if (!Array.isArray(modules)) throw bad("modules", "modules must be an array of { name, cmdline? }");
  modules.forEach((m, i) => {
    if (!m || typeof m.name !== "string" || m.name === "") throw bad(`modules[${i}].name`, `modules[${i}].name must name a file`);
    if (m.cmdline !== undefined && typeof m.cmdline !== "string") throw bad(`modules[${i}].cmdline`, `modules[${i}].cmdline must be a string`);
  });
  if (opts.memoryRanges !== undefined && !Array.isArray(opts.memoryRanges)) throw bad("memoryRanges", "memoryRanges must be an array of { base, size, type? }");
  const x86Tables = opts.x86Tables ?? true;
  if (typeof x86Tables !== "boolean") throw bad("x86Tables", `x86Tables must be true or false, got ${JSON.stringify(x86Tables)}`);

  // ── read and check everything before placing anything ──
  const kfile = await vm.open(opts.kernel);
  let img: Multiboot2Image;
  let shdrs: { bytes: Uint8Array; is64: boolean } | null = null;
  try {
    const head = await readBytes(kfile, 0, Math.min(SNIFF_BYTES, kfile.size));
    img = await readMultiboot2(kfile, head);
    if (img.elf && img.elf.header.shnum > 0 && img.elf.header.shoff > 0n) shdrs = await readSectionHeaders(kfile, img);
  } finally {
    await kfile.close();
  }
  const h = img.header;
  const image = opts.kernel;
  checkRelocatableFits(img, image);
  if (h.framebuffer?.required && !opts.framebuffer) {
    throw new GuestImageError("UNSUPPORTED", `the kernel's framebuffer header tag (type 5, ${h.framebuffer.width}x${h.framebuffer.height}x${h.framebuffer.depth}) is not optional, but no framebuffer was given (pass framebuffer)`, { image, field: "framebuffer" });
  }
  if (h.console_required && !opts.framebuffer) {
    throw new GuestImageError("UNSUPPORTED", `the kernel's console flags tag (type 4, console_flags ${hex(h.console_flags ?? 0)}) requires a console described in the information structure, but no framebuffer was given (pass framebuffer)`, { image, field: "console_flags" });
  }
  const given: Record<number, unknown> = { 8: opts.framebuffer, 13: opts.smbios, 14: opts.acpiRsdpV1, 15: opts.acpiRsdpV2 };
  const missingInfo = [...h.required_info, ...h.optional_info].filter((t) => t in given && given[t] === undefined);

  return vm.transaction(async (tvm) => {
    const placements: Multiboot2Boot["placements"] = [];
    // Kernel: a relocatable one goes to free RAM the tag allows unless `at` says where.
    let at = opts.at;
    const r = h.relocatable;
    if (r && at === undefined) {
      at = tvm.findFree(Math.max(img.size, 1), { align: r.align, min: r.min_addr, max: r.max_addr, from: r.preference === "highest" ? "top" : "bottom" });
    }
    const kernel = await tvm.loadKernel(opts.kernel, { at });
    if (kernel.format !== "multiboot2") {
      throw new GuestImageError("BAD_MAGIC", `is ${kernel.format}, not a Multiboot2 kernel`, { image });
    }
    placements.push({ role: "kernel", name: kernel.name, paddr: kernel.paddr, size: kernel.size });
    const loadBase = kernel.paddr;

    // Auto placements keep out of the PC legacy area the memory map marks reserved: above 1 MiB
    // when there is RAM there.
    const legacy = h.architecture === MB2_ARCH_I386 && opts.pcLegacyArea !== false;
    const autoMin = legacy && tvm.ram.regions.some((g) => g.base + g.size > PC_LEGACY.end) ? PC_LEGACY.end : 0;
    const mods: Multiboot2Boot["modules"] = [];
    for (const [i, m] of modules.entries()) {
      const cmdline = m.cmdline ?? "";
      const placed = await tvm.loadModule(m.name, m.at !== undefined ? { at: m.at, align: PAGE } : { align: PAGE, auto: { align: PAGE, min: autoMin, max: FOUR_GIB } });
      mods.push({ ...placed, cmdline });
      placements.push({ role: "module", name: placed.name, paddr: placed.paddr, size: placed.size });
    }

    let elfSections: Multiboot2ElfSections | undefined;
    if (shdrs) elfSections = await loadSections(tvm, image, img, shdrs, placements, autoMin);

    const memoryRanges: Multiboot2MemoryRange[] = [];
    if (legacy) {
      const covered = tvm.ram.regions.some((g) => g.base < PC_LEGACY.end && g.base + g.size > PC_LEGACY.base);
      if (covered) memoryRanges.push({ base: PC_LEGACY.base, size: PC_LEGACY.end - PC_LEGACY.base, type: MB2_MEMORY_RESERVED });
    }
    // The VM's own reserved ranges (createVm reserved) are in the map too, with their types.
    memoryRanges.push(...tvm.reserved.map((r) => ({ base: r.base, size: r.size, type: r.type })), ...(opts.memoryRanges ?? []));
    const infoOpts: Multiboot2InfoOptions = {
      ram: tvm.ram.regions.map((g) => ({ base: g.base, size: g.size })),
      memoryRanges,
      cmdline: opts.cmdline,
      bootLoaderName: opts.bootLoaderName ?? "guest-image",
      modules: mods.map((m) => ({ paddr: m.paddr, size: m.size, cmdline: m.cmdline })),
      pageAlignModules: h.module_align,
      elfSections,
      loadBaseAddr: r ? loadBase : undefined,
      framebuffer: opts.framebuffer,
      acpiRsdpV1: opts.acpiRsdpV1,
      acpiRsdpV2: opts.acpiRsdpV2,
      smbios: opts.smbios,
    };
    let gdt: { base: number; limit: number } | null = null;
    if (h.architecture === MB2_ARCH_I386 && x86Tables) {
      const t = await placeX86Tables(tvm, { long: false, map: [], avoid: [] });
      gdt = { base: t.gdt.paddr, limit: t.gdtLimit };
      placements.push({ role: "gdt", name: t.gdt.name, paddr: t.gdt.paddr, size: t.gdt.size });
    }
    const info = buildMultiboot2Info(infoOpts);
    if (opts.infoAt !== undefined && (typeof opts.infoAt !== "number" || opts.infoAt % 8 !== 0 || opts.infoAt + info.size > FOUR_GIB)) {
      throw bad("infoAt", `infoAt ${String(opts.infoAt)} must be 8-byte aligned with the structure (${hex(info.size)} bytes) below 4 GiB`);
    }
    const placedInfo = await tvm.place("multiboot2-info", info.bytes, opts.infoAt !== undefined ? { at: opts.infoAt, format: "multiboot2-info" } : { auto: { align: 8, min: autoMin, max: FOUR_GIB }, format: "multiboot2-info" });
    placements.push({ role: "info", name: placedInfo.name, paddr: placedInfo.paddr, size: placedInfo.size });

    let cpu: Multiboot2CpuState;
    if (h.architecture === MB2_ARCH_I386) {
      const x = protectedModeState("x86", kernel.entry, 0, gdt);
      x.regs.eax = BigInt(MULTIBOOT2_BOOTLOADER_MAGIC);
      x.regs.ebx = BigInt(placedInfo.paddr);
      cpu = x;
    } else {
      cpu = { arch: "mips32", mode: "mips32", pc: kernel.entry, regs: { a0: BigInt(MULTIBOOT2_BOOTLOADER_MAGIC), a1: BigInt(placedInfo.paddr) } };
    }
    return {
      kernel, modules: mods, info: { paddr: placedInfo.paddr, size: info.size, tags: info.tags },
      loadBase, missingInfo, cpu, placements,
    };
  });
}

/** The section header table, bounds-checked against the file. */
async function readSectionHeaders(file: ImageFile, img: Multiboot2Image): Promise<{ bytes: Uint8Array; is64: boolean }> {
  const eh = img.elf!.header;
  const is64 = eh.class === 64;
  const want = is64 ? 64 : 40;
  if (eh.shentsize < want) {
    throw new GuestImageError("BAD_HEADER", `e_shentsize ${eh.shentsize} is smaller than an ELF${eh.class} section header (${want} bytes)`, { image: file.name, field: "e_shentsize" });
  }
  const len = BigInt(eh.shnum) * BigInt(eh.shentsize);
  if (eh.shoff + len > BigInt(file.size)) {
    throw new GuestImageError("TRUNCATED", `the section header table [${hex(eh.shoff)}, ${hex(eh.shoff + len)}) runs past the end of the file (${hex(file.size)} bytes)`, { image: file.name, field: "e_shoff" });
  }
  return { bytes: await readBytes(file, Number(eh.shoff), Number(len)), is64 };
}

/**
 * Spec 3.6.7 "All sections are loaded, and the physical address fields of the elf section header
 * then refer to where the sections are in memory": sections with sh_addr 0 that have file bytes
 * (symbol, string tables) are placed in free RAM below 4 GiB and their sh_addr set there, as GRUB
 * does; sections the program headers load keep their sh_addr as linked (a relocated image's
 * kernel knows its offset from the load base tag).
 */
async function loadSections(
  vm: Vm, image: string, img: Multiboot2Image, sh: { bytes: Uint8Array; is64: boolean }, placements: Multiboot2Boot["placements"], autoMin: number,
): Promise<Multiboot2ElfSections> {
  const eh = img.elf!.header;
  const headers = sh.bytes.slice();
  const d = new DataView(headers.buffer);
  const ent = eh.shentsize;
  const rd = (o: number) => (sh.is64 ? d.getBigUint64(o, true) : BigInt(d.getUint32(o, true)));
  const wr = (o: number, v: number) => (sh.is64 ? d.setBigUint64(o, BigInt(v), true) : d.setUint32(o, v, true));
  const [F, A, O, S, AL] = sh.is64 ? [8, 16, 24, 32, 48] : [8, 12, 16, 20, 32];
  const kfile = await vm.open(image);
  try {
    for (let i = 1; i < eh.shnum; i++) {
      const b = i * ent;
      const type = d.getUint32(b + 4, true);
      const flags = rd(b + F);
      const addr = rd(b + A);
      const off = rd(b + O);
      const size = rd(b + S);
      if (addr !== 0n || (flags & BigInt(SHF_ALLOC)) !== 0n || type === SHT_NOBITS || size === 0n) continue;
      if (off + size > BigInt(kfile.size)) {
        throw new GuestImageError("TRUNCATED", `section ${i} [${hex(off)}, ${hex(off + size)}) runs past the end of the file (${hex(kfile.size)} bytes)`, { image, field: "sh_offset" });
      }
      const align = Number(rd(b + AL));
      const bytes = await readBytes(kfile, Number(off), Number(size));
      const placed = await vm.place(`${image} section ${i}`, bytes, { auto: { align: align > 8 && (align & (align - 1)) === 0 && align <= PAGE ? align : 8, min: autoMin, max: FOUR_GIB }, format: "elf-section" });
      wr(b + A, placed.paddr);
      placements.push({ role: "elf-section", name: placed.name, paddr: placed.paddr, size: placed.size });
    }
  } finally {
    await kfile.close();
  }
  return { num: eh.shnum, entsize: ent, shndx: eh.shstrndx, headers };
}
