// The x86 boot CPU state, complete enough for a VMM to load it with KVM_SET_REGS / KVM_SET_SREGS
// (or an emulator's equivalent) without decoding anything: every general register the boot
// protocol defines (zeros included), rip/rflags, the control registers and EFER, GDTR/IDTR, and
// each segment register with its hidden part (base, limit, access rights).
//
// Linux Documentation/arch/x86/boot.rst:
//   "32-bit Boot Protocol": protected mode, paging off; a GDT with __BOOT_CS (0x10, execute/read)
//     and __BOOT_DS (0x18, read/write), flat 4 GiB; CS = __BOOT_CS, DS = ES = SS = __BOOT_DS;
//     interrupts disabled; %esi = struct boot_params; %ebp = %edi = %ebx = 0.
//   "64-bit Boot Protocol": 64-bit mode with paging on; the kernel's init_size range from its
//     load address, the zero page and the command line identity-mapped; the same GDT selectors
//     (__BOOT_CS 64-bit code); interrupts disabled; %rsi = struct boot_params.
//   Real mode ("Running the kernel"): CS = setup segment + 0x20, IP 0, DS = ES = SS = setup
//     segment, SP at the end of the heap, interrupts disabled.

/** One segment register, as KVM's struct kvm_segment (access-right bits spelled out). */
export interface X86Segment {
  selector: number;
  /** Segment base (the hidden part): linear address. */
  base: bigint;
  /** Byte-granular limit (KVM's kvm_segment.limit: 0xffffffff for a flat 4 GiB segment). */
  limit: number;
  /**
   * The access rights in VMX/KVM "AR" layout: type | S << 4 | DPL << 5 | P << 7 | AVL << 12 |
   * L << 13 | D/B << 14 | G << 15 | unusable << 16 (Intel SDM vol. 3, "Guest Segment Registers").
   */
  access: number;
  /** Descriptor type (4 bits): 0xb execute/read code, accessed; 0x3 read/write data, accessed; 0xb busy TSS when S = 0. */
  type: number;
  /** S: code/data (true) or system (false). */
  s: boolean;
  dpl: number;
  present: boolean;
  avl: boolean;
  /** L: 64-bit code segment. */
  l: boolean;
  /** D/B: 32-bit default operand size / stack. */
  db: boolean;
  /** G: the descriptor's limit counts 4 KiB pages (the byte limit above is already scaled). */
  g: boolean;
  /** Null / unused (LDTR, and the null selector). */
  unusable: boolean;
}

export interface X86Segments {
  cs: X86Segment;
  ds: X86Segment;
  es: X86Segment;
  fs: X86Segment;
  gs: X86Segment;
  ss: X86Segment;
  /** Task register: not used by the boot path; a busy 32-bit TSS at 0, limit 0xffff (the x86 reset value, which KVM accepts). */
  tr: X86Segment;
  ldtr: X86Segment;
}

export interface X86CpuState {
  arch: "x86_64" | "x86";
  /** "real" (real mode, a BIOS ran first), "protected" (flat 32-bit, paging off), "long" (64-bit, identity-mapped). */
  mode: "real" | "protected" | "long";
  /** Linear (= guest physical) address of the first instruction: CS base + rip. */
  pc: bigint;
  /**
   * The general registers the protocol defines, zeros included (long: rax…r15; protected and
   * real: eax…edi), plus the segment selectors (cs, ds, es, fs, gs, ss) and, in real mode, ip/sp.
   */
  regs: Record<string, bigint>;
  /** rip/eip: the offset in CS (pc − CS base). */
  rip: bigint;
  /** Interrupts off (IF = 0), bit 1 set as the architecture requires: 0x2. */
  rflags: bigint;
  cr0: bigint;
  /** Page-table root; null in long mode when the tables are left to the VMM (x86Tables: false). */
  cr3: bigint | null;
  cr4: bigint;
  efer: bigint;
  /**
   * Where the GDT with __BOOT_CS/__BOOT_DS is (placed by the library, role "gdt"); null when
   * the VMM provides it (x86Tables: false) or in real mode (not used).
   */
  gdtr: { base: bigint; limit: number } | null;
  /** No IDT: interrupts stay off until the kernel loads its own (base 0, limit 0). */
  idtr: { base: bigint; limit: number };
  segments: X86Segments;
  /** Whether the GDT and page tables are in guest RAM (placed by bootLinux) or the VMM's to provide. */
  tables: "placed" | "vmm" | "none";
}

const seg = (selector: number, base: bigint, limit: number, f: { type: number; s?: boolean; l?: boolean; db?: boolean; g?: boolean; unusable?: boolean }): X86Segment => {
  const s = f.s ?? true;
  const present = !f.unusable;
  const l = f.l ?? false;
  const db = f.db ?? false;
  const g = f.g ?? false;
  const unusable = f.unusable ?? false;
  const access = f.type | (s ? 1 << 4 : 0) | (present ? 1 << 7 : 0) | (l ? 1 << 13 : 0) | (db ? 1 << 14 : 0) | (g ? 1 << 15 : 0) | (unusable ? 1 << 16 : 0);
  return { selector, base, limit, access, type: f.type, s, dpl: 0, present, avl: false, l, db, g, unusable };
};

/** boot.rst: __BOOT_CS and __BOOT_DS. */
export const BOOT_CS = 0x10;
export const BOOT_DS = 0x18;
/** Code and data descriptor types with the accessed bit set (what the CPU sets on load anyway). */
const CODE = 0xb;
const DATA = 0x3;
/** x86 reset values (Intel SDM vol. 3, "Processor State After Reset"): TR busy TSS, LDTR unusable. */
const TR = seg(0, 0n, 0xffff, { type: 0xb, s: false });
const LDTR = seg(0, 0n, 0, { type: 0x2, s: false, unusable: true });

/** CR0.PE, CR0.ET (hard-wired on every CPU since the 486), CR0.PG; CR4.PAE; EFER.LME/LMA. */
export const CR0_PE = 0x1n;
export const CR0_ET = 0x10n;
export const CR0_PG = 0x8000_0000n;
export const CR4_PAE = 0x20n;
export const EFER_LME = 0x100n;
export const EFER_LMA = 0x400n;
const RFLAGS_FIXED = 0x2n;

const GPR64 = ["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"];
const GPR32 = ["eax", "ebx", "ecx", "edx", "esi", "edi", "ebp", "esp"];

/** Flat 4 GiB segments with __BOOT_CS/__BOOT_DS: 64-bit code (L) for the long entry, 32-bit (D) for the protected one. */
export function flatSegments(long: boolean): X86Segments {
  const cs = seg(BOOT_CS, 0n, 0xffffffff, long ? { type: CODE, l: true, g: true } : { type: CODE, db: true, g: true });
  const ds = seg(BOOT_DS, 0n, 0xffffffff, { type: DATA, db: true, g: true });
  return { cs, ds, es: ds, fs: ds, gs: ds, ss: ds, tr: TR, ldtr: LDTR };
}

/** boot.rst 64-bit protocol: rsi = zero page, everything else zero; PE|PG, PAE, LME|LMA. */
export function longModeState(arch: "x86_64" | "x86", entry: bigint, zeroPage: number, tables: { gdt: number; gdtLimit: number; cr3: number } | null): X86CpuState {
  const regs: Record<string, bigint> = Object.fromEntries(GPR64.map((r) => [r, 0n]));
  regs.rsi = BigInt(zeroPage);
  const segments = flatSegments(true);
  Object.assign(regs, selectors(segments));
  return {
    arch, mode: "long", pc: entry, regs, rip: entry, rflags: RFLAGS_FIXED,
    cr0: CR0_PE | CR0_ET | CR0_PG, cr3: tables ? BigInt(tables.cr3) : null, cr4: CR4_PAE, efer: EFER_LME | EFER_LMA,
    gdtr: tables ? { base: BigInt(tables.gdt), limit: tables.gdtLimit } : null, idtr: { base: 0n, limit: 0 }, segments,
    tables: tables ? "placed" : "vmm",
  };
}

/** boot.rst 32-bit protocol: esi = zero page, ebp = edi = ebx = 0 (and the rest zero); PE, paging off. */
export function protectedModeState(arch: "x86_64" | "x86", entry: bigint, zeroPage: number, gdt: { base: number; limit: number } | null): X86CpuState {
  const regs: Record<string, bigint> = Object.fromEntries(GPR32.map((r) => [r, 0n]));
  regs.esi = BigInt(zeroPage);
  const segments = flatSegments(false);
  Object.assign(regs, selectors(segments));
  return {
    arch, mode: "protected", pc: entry, regs, rip: entry, rflags: RFLAGS_FIXED,
    cr0: CR0_PE | CR0_ET, cr3: 0n, cr4: 0n, efer: 0n,
    gdtr: gdt ? { base: BigInt(gdt.base), limit: gdt.limit } : null, idtr: { base: 0n, limit: 0 }, segments,
    tables: gdt ? "placed" : "vmm",
  };
}

/**
 * Real mode as QEMU's linuxboot option ROM leaves it (pc-bios/optionrom/linuxboot_dma.c): DS = ES
 * = FS = GS = SS = setup segment, SP = `sp`, CS:IP = setup segment + 0x20 : 0, interrupts off;
 * every other general register zero. A BIOS must have run (the setup code calls it).
 */
export function realModeState(arch: "x86_64" | "x86", setupAddr: number, sp: number): X86CpuState {
  const s = setupAddr >> 4;
  const data = seg(s, BigInt(s << 4), 0xffff, { type: DATA });
  const cs = seg(s + 0x20, BigInt((s + 0x20) << 4), 0xffff, { type: CODE });
  const segments: X86Segments = { cs, ds: data, es: data, fs: data, gs: data, ss: data, tr: TR, ldtr: LDTR };
  const regs: Record<string, bigint> = Object.fromEntries(GPR32.map((r) => [r, 0n]));
  regs.esp = BigInt(sp);
  Object.assign(regs, selectors(segments), { ip: 0n, sp: BigInt(sp) });
  return {
    arch, mode: "real", pc: cs.base, regs, rip: 0n, rflags: RFLAGS_FIXED,
    cr0: CR0_ET, cr3: 0n, cr4: 0n, efer: 0n, gdtr: null, idtr: { base: 0n, limit: 0x3ff }, segments, tables: "none",
  };
}

function selectors(s: X86Segments): Record<string, bigint> {
  return { cs: BigInt(s.cs.selector), ds: BigInt(s.ds.selector), es: BigInt(s.es.selector), fs: BigInt(s.fs.selector), gs: BigInt(s.gs.selector), ss: BigInt(s.ss.selector) };
}
