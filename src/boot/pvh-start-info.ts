// The PVH boot ABI's start info (a configurator, like x86-boot-params.ts): what a VMM hands a
// kernel it enters at its XEN_ELFNOTE_PHYS32_ENTRY (src/formats/elf-notes.ts).
//
// Xen docs/misc/pvh.rst and xen/include/public/arch-x86/hvm/start_info.h, version 1:
//   struct hvm_start_info {            offset
//     uint32_t magic;                  0x00  0x336ec578 ("xEn3" with the 0x80 bit of 'n' cleared)
//     uint32_t version;                0x04  1 (memmap fields present)
//     uint32_t flags;                  0x08  SIF_xxx, 0 here
//     uint32_t nr_modules;             0x0C
//     uint64_t modlist_paddr;          0x10  → hvm_modlist_entry[nr_modules]
//     uint64_t cmdline_paddr;          0x18  NUL-terminated ASCII
//     uint64_t rsdp_paddr;             0x20  ACPI RSDP, 0 when none
//     uint64_t memmap_paddr;           0x28  → hvm_memmap_table_entry[memmap_entries]
//     uint32_t memmap_entries;         0x30
//     uint32_t reserved;               0x34  "Must be zero."
//   };                                 0x38 bytes
//   struct hvm_modlist_entry { uint64_t paddr, size, cmdline_paddr, reserved; }      32 bytes
//   struct hvm_memmap_table_entry { uint64_t addr, size; uint32_t type, reserved; }  24 bytes,
//     type as e820 ("The type definitions are the same as the E820 types").
// Everything lives in one blob (start info, then the modules list, then the memory map, each
// 8-aligned) placed below 4 GiB, since EBX carries its 32-bit address; "all the addresses
// present in this structure … are physical".
//
// Machine state (pvh.rst, "x86/HVM and x86/PVH"): 32-bit protected mode, paging off; cs a
// 32-bit read/execute segment and ds/es 32-bit read/write data segments, base 0, limit
// 0xFFFFFFFF (selectors unspecified: we use __BOOT_CS/__BOOT_DS and the GDT x86-tables.ts
// places); tr a 32-bit active TSS with base 0, limit 0x67; EFLAGS.VM, IF, TF clear; CR0.PE set,
// CR0.PG clear; CR4 all clear; EBX = start info; "All other processor registers and flag bits
// are unspecified" (zero here).
//
// Linux reads it in arch/x86/platform/pvh/enlighten.c (init_pvh_bootparams): the memory map
// becomes its e820 table (version ≥ 1 and memmap_entries ≠ 0, or it asks the Xen hypervisor,
// which outside Xen is a crash), modlist[0] becomes the initrd, cmdline_paddr the command line.
import { GuestImageError } from "../errors.js";
import { checkAddress, hex } from "../num.js";
import type { RamRegion } from "../ram/guest-ram.js";
import type { ReservedRange } from "../vm.js";
import { protectedModeState, type X86CpuState } from "./cpu-x86.js";
import { buildE820, type E820Entry } from "./x86-e820.js";

export const HVM_START_MAGIC = 0x336ec578;
export const HVM_START_INFO_SIZE = 0x38;
export const HVM_MODLIST_ENTRY_SIZE = 32;
export const HVM_MEMMAP_ENTRY_SIZE = 24;
/** Linux copies at most E820_MAX_ENTRIES_ZEROPAGE (128) map entries into boot_params. */
export const PVH_MEMMAP_MAX = 128;
const FOUR_GIB = 2 ** 32;

export interface PvhModule {
  paddr: number;
  size: number;
  /** Where the module's command line is (0: none). */
  cmdlinePaddr?: number;
}

export interface StartInfoOptions {
  /** Where the blob will be placed (the addresses inside it are computed from this). */
  paddr: number;
  /** Address of the NUL-terminated command line (0: none). */
  cmdlinePaddr: number;
  modules?: readonly PvhModule[];
  /** RAM regions and reserved ranges: the memory map, as the e820 map of the zero page (x86-e820.ts). */
  ram: readonly RamRegion[];
  reserved?: readonly Required<ReservedRange>[];
  /** ACPI RSDP physical address (0 / omitted: none; Linux then scans for it itself). */
  rsdp?: number;
}

export interface StartInfo {
  bytes: Uint8Array;
  /** Offsets inside `bytes` of the modules list and the memory map. */
  modlistOffset: number;
  memmapOffset: number;
  memmap: E820Entry[];
}

const bad = (field: string, msg: string) => new GuestImageError("BAD_ARGUMENT", msg, { field });
const up8 = (n: number) => Math.ceil(n / 8) * 8;

/** Size of the blob for `modules` modules and a memory map of `entries` entries. */
export function startInfoSize(modules: number, entries: number): number {
  return up8(HVM_START_INFO_SIZE) + modules * HVM_MODLIST_ENTRY_SIZE + entries * HVM_MEMMAP_ENTRY_SIZE;
}

/** The memory map the start info will carry (so its size is known before it is placed). */
export function pvhMemmap(ram: readonly RamRegion[], reserved: readonly Required<ReservedRange>[] = []): E820Entry[] {
  const map = buildE820(ram, reserved).entries;
  if (map.length > PVH_MEMMAP_MAX) {
    throw new GuestImageError("TOO_LARGE", `the PVH memory map needs ${map.length} entries; Linux takes at most ${PVH_MEMMAP_MAX} (E820_MAX_ENTRIES_ZEROPAGE)`, { field: "memmap_entries" });
  }
  return map;
}

/** Builds hvm_start_info version 1 with its module list and memory map. Never writes guest RAM. */
export function buildStartInfo(o: StartInfoOptions): StartInfo {
  if (!o || typeof o !== "object") throw bad("options", "buildStartInfo needs an options object");
  const paddr = checkAddress(o.paddr, "paddr");
  const cmdline = checkAddress(o.cmdlinePaddr, "cmdlinePaddr");
  const rsdp = o.rsdp === undefined ? 0 : checkAddress(o.rsdp, "rsdp");
  const modules = o.modules ?? [];
  if (!Array.isArray(modules)) throw bad("modules", "modules must be an array of { paddr, size }");
  modules.forEach((m, i) => {
    checkAddress(m?.paddr, `modules[${i}].paddr`);
    checkAddress(m?.size, `modules[${i}].size`);
    if (m.cmdlinePaddr !== undefined) checkAddress(m.cmdlinePaddr, `modules[${i}].cmdlinePaddr`);
  });
  const memmap = pvhMemmap(o.ram, o.reserved);
  const modlistOffset = up8(HVM_START_INFO_SIZE);
  const memmapOffset = modlistOffset + modules.length * HVM_MODLIST_ENTRY_SIZE;
  const size = startInfoSize(modules.length, memmap.length);
  if (paddr + size > FOUR_GIB) {
    throw new GuestImageError("BAD_ADDRESS", `the PVH start info [${hex(paddr)}, ${hex(paddr + size)}) must lie below 4 GiB: EBX holds its 32-bit address`, { field: "paddr" });
  }
  const bytes = new Uint8Array(size);
  const dv = new DataView(bytes.buffer);
  dv.setUint32(0x00, HVM_START_MAGIC, true);
  dv.setUint32(0x04, 1, true);
  dv.setUint32(0x08, 0, true);
  dv.setUint32(0x0c, modules.length, true);
  dv.setBigUint64(0x10, modules.length ? BigInt(paddr + modlistOffset) : 0n, true);
  dv.setBigUint64(0x18, BigInt(cmdline), true);
  dv.setBigUint64(0x20, BigInt(rsdp), true);
  dv.setBigUint64(0x28, BigInt(paddr + memmapOffset), true);
  dv.setUint32(0x30, memmap.length, true);
  modules.forEach((m, i) => {
    const e = modlistOffset + i * HVM_MODLIST_ENTRY_SIZE;
    dv.setBigUint64(e, BigInt(m.paddr), true);
    dv.setBigUint64(e + 8, BigInt(m.size), true);
    dv.setBigUint64(e + 16, BigInt(m.cmdlinePaddr ?? 0), true);
  });
  memmap.forEach((m, i) => {
    const e = memmapOffset + i * HVM_MEMMAP_ENTRY_SIZE;
    dv.setBigUint64(e, BigInt(m.addr), true);
    dv.setBigUint64(e + 8, BigInt(m.size), true);
    dv.setUint32(e + 16, m.type, true);
  });
  return { bytes, modlistOffset, memmapOffset, memmap };
}

/**
 * The PVH entry state: 32-bit flat protected mode, paging off, EBX = start info, every other
 * general register zero, TR limit 0x67. `gdt` null: the VMM provides the segments.
 */
export function pvhState(arch: "x86_64" | "x86", entry: number, startInfo: number, gdt: { base: number; limit: number } | null): X86CpuState {
  const s = protectedModeState(arch, BigInt(entry), 0, gdt);
  s.regs.esi = 0n;
  s.regs.ebx = BigInt(startInfo);
  s.segments = { ...s.segments, tr: { ...s.segments.tr, limit: 0x67 } };
  return s;
}
