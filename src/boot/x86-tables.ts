// The descriptor and page tables the x86 32-bit and 64-bit Linux boot protocols need before the
// first instruction (a configurator, as Firecracker's and crosvm's x86_64 `configure_segments_and_sregs`
// / `setup_page_tables`): the VMM then only loads registers.
//
// Linux Documentation/arch/x86/boot.rst:
//   32-bit: "a GDT must be loaded with the descriptors for selectors __BOOT_CS(0x10) and
//     __BOOT_DS(0x18); both descriptors must be 4G flat segment; __BOOT_CS must have execute/read
//     permission, and __BOOT_DS must have read/write permission".
//   64-bit: the same selectors (64-bit code for __BOOT_CS), paging enabled, and "the range with
//     setup_header.init_size from start address of loaded kernel and zero page and command line
//     buffer get ident mapping".
//
// GDT: 4 descriptors (null, unused 0x08, __BOOT_CS 0x10, __BOOT_DS 0x18), 32 bytes, placed at the
// lowest free address (8-byte aligned, below 4 GiB). With RAM at 0 that is address 0: after an
// x86 reset GDTR is base 0, limit 0xffff (Intel SDM vol. 3, "Processor State After Reset"), so a
// VMM that cannot load GDTR (QEMU's gdbstub has no GDTR register) gets the right descriptors
// simply by setting the selectors. gdtr in the CPU state says where it went either way.
//
// Page tables (64-bit): 4-level, 2 MiB pages (PS in the page directory; no 1 GiB pages, which
// older CPU models lack), identity-mapping 0–4 GiB and every 1 GiB slot that what boot.rst names
// touches (sparse above 4 GiB): one PML4, one PDPT per 512 GiB used, one page directory per GiB
// slot; 6 pages for 4 GiB.
// Placed lowest-first above 0x1000, below 4 GiB (so CR3 is also reachable from 32-bit code).
import { GuestImageError } from "../errors.js";
import { hex } from "../num.js";
import type { LoadedImage, Vm } from "../vm.js";
import { BOOT_CS, BOOT_DS } from "./cpu-x86.js";

const PAGE = 0x1000;
const GiB = 2 ** 30;
const FOUR_GIB = 2 ** 32;
/** 4-level paging reaches 2^48 bytes. */
const MAX_MAPPED = 2 ** 48;

/** Intel SDM vol. 3 §3.4.5 segment descriptors: limit 0xfffff × 4 KiB (G), base 0, present, DPL 0. */
const DESC_CODE64 = 0x00af_9b00_0000_ffffn; // type 0xb execute/read accessed, S, P, L, G
const DESC_CODE32 = 0x00cf_9b00_0000_ffffn; // type 0xb, S, P, D, G
const DESC_DATA = 0x00cf_9300_0000_ffffn; // type 0x3 read/write accessed, S, P, B, G

export const GDT_SIZE = 4 * 8;
/** Page-table entry bits (Intel SDM vol. 3 §4.5): present, writable, page size (2 MiB in a PDE). */
const PTE_P = 1n;
const PTE_RW = 2n;
const PTE_PS = 0x80n;

/** The GDT: null, null (0x08), __BOOT_CS (0x10), __BOOT_DS (0x18). */
export function buildGdt(long: boolean): Uint8Array {
  const gdt = new Uint8Array(GDT_SIZE);
  const dv = new DataView(gdt.buffer);
  dv.setBigUint64(BOOT_CS, long ? DESC_CODE64 : DESC_CODE32, true);
  dv.setBigUint64(BOOT_DS, DESC_DATA, true);
  return gdt;
}

/**
 * The 1 GiB slots to map: [0, 4 GiB) always, plus every slot a range in `map` touches (the map is
 * sparse above 4 GiB, so a kernel placed high costs one page directory per GiB it uses).
 */
export function gibSlots(map: ReadonlyArray<{ base: number; size: number }>): number[] {
  const slots = new Set<number>([0, 1, 2, 3]);
  for (const r of map) {
    if (r.size <= 0) continue;
    const end = r.base + r.size;
    if (!(Number.isSafeInteger(r.base) && Number.isSafeInteger(end) && end <= MAX_MAPPED)) {
      throw new GuestImageError("UNSUPPORTED", `identity map of [${hex(r.base)}, +${hex(r.size)}): 4-level paging reaches ${hex(MAX_MAPPED)}`, { field: "page tables" });
    }
    for (let g = Math.floor(r.base / GiB); g * GiB < end; g++) slots.add(g);
  }
  return [...slots].sort((a, b) => a - b);
}

/** Bytes of identity page tables for these 1 GiB slots: PML4, one PDPT per 512 GiB used, one PD per slot. */
export function pageTablesSize(slots: readonly number[]): number {
  return (1 + new Set(slots.map((g) => Math.floor(g / 512))).size + slots.length) * PAGE;
}

/** Identity page tables (2 MiB pages) for the 1 GiB `slots`, to be placed at `base` (page-aligned). */
export function buildPageTables(base: number, slots: readonly number[]): Uint8Array {
  if (!Number.isSafeInteger(base) || base % PAGE !== 0) throw new GuestImageError("BAD_ARGUMENT", `page tables must start on a 4 KiB boundary, got ${String(base)}`, { field: "page tables" });
  const pdptIndex = [...new Set(slots.map((g) => Math.floor(g / 512)))].sort((a, b) => a - b);
  const out = new Uint8Array(pageTablesSize(slots));
  const dv = new DataView(out.buffer);
  const pdptPage = (i: number) => 1 + pdptIndex.indexOf(i);
  pdptIndex.forEach((i, n) => dv.setBigUint64(i * 8, BigInt(base + (1 + n) * PAGE) | PTE_P | PTE_RW, true));
  slots.forEach((g, n) => {
    const pdPage = 1 + pdptIndex.length + n;
    dv.setBigUint64(pdptPage(Math.floor(g / 512)) * PAGE + (g % 512) * 8, BigInt(base + pdPage * PAGE) | PTE_P | PTE_RW, true);
    for (let j = 0; j < 512; j++) dv.setBigUint64(pdPage * PAGE + j * 8, (BigInt(g) * BigInt(GiB) + BigInt(j) * 0x20_0000n) | PTE_P | PTE_RW | PTE_PS, true);
  });
  return out;
}

export interface PlacedTables {
  gdt: LoadedImage;
  /** Limit for GDTR (size − 1). */
  gdtLimit: number;
  pageTables?: LoadedImage;
}

/**
 * Places the GDT and, for the 64-bit entry, page tables identity-mapping 0–4 GiB and the ranges
 * in `map`, below 4 GiB and clear of `avoid`. OUT_OF_RAM, naming the constraint, when there is no
 * free RAM below 4 GiB for them.
 */
export async function placeX86Tables(vm: Vm, opts: { long: boolean; map: ReadonlyArray<{ base: number; size: number }>; avoid: ReadonlyArray<{ base: number; size: number }> }): Promise<PlacedTables> {
  const where = (what: string, size: number, min: number, align: number, also?: { base: number; size: number }) => {
    try {
      return vm.findFree(size, { from: "bottom", min, max: FOUR_GIB, align, avoid: also ? [...opts.avoid, also] : opts.avoid });
    } catch (e) {
      if (e instanceof GuestImageError && e.code === "OUT_OF_RAM") {
        throw new GuestImageError("OUT_OF_RAM", `no free RAM below 4 GiB for the x86 ${what} (${hex(size)} bytes; boot.rst's 32-bit GDTR/CR3 must reach it; pass x86Tables: false to provide it yourself): ${e.message}`, { image: what, field: "x86Tables", cause: e });
      }
      throw e;
    }
  };
  // Everything that can fail is decided before the first byte is placed.
  const slots = opts.long ? gibSlots(opts.map) : [];
  const gdtAt = where("gdt", GDT_SIZE, 0, 8);
  const size = pageTablesSize(slots);
  // The page tables' range, found with the GDT's bytes counted as taken.
  const at = opts.long ? where("page tables", size, PAGE, PAGE, { base: gdtAt, size: GDT_SIZE }) : 0;
  const gdt = await vm.place("gdt", buildGdt(opts.long), { at: gdtAt, format: "x86-gdt" });
  if (!opts.long) return { gdt, gdtLimit: GDT_SIZE - 1 };
  const pageTables = await vm.place("page tables", buildPageTables(at, slots), { at, format: "x86-page-tables" });
  return { gdt, gdtLimit: GDT_SIZE - 1, pageTables };
}
