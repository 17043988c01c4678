// The x86 e820 memory map written into the zero page (a configurator, like x86-boot-params.ts).
//
// What Linux does with it (arch/x86/kernel/e820.c): e820__memory_setup_default() calls
// append_e820_table(boot_params.e820_table, boot_params.e820_entries), which refuses a map of
// fewer than 2 entries ("Only one memory region (or negative)? Ignore it") and then falls back
// to two RAM ranges, [0, LOWMEMSIZE) and [1 MiB, 1 MiB + alt_mem_k KiB) (or ext_mem_k, whichever
// is larger). A one-entry map with alt_mem_k = 0 leaves the kernel with 636 KiB and it panics
// before its console starts (shared/reference/realboot.md). So the map here is PC-shaped:
//   - RAM below 0x9FC00 usable (type 1);
//   - the legacy area 0x9FC00–0x100000 (EBDA, VGA window, option ROMs, BIOS) reserved (type 2),
//     only where guest RAM covers it — a RAM region there would otherwise be handed out;
//   - the rest of RAM usable; holes between regions are simply absent from the map;
//   - caller-given reserved ranges with their type (default 2), wherever they lie (in RAM they
//     take precedence over it; outside RAM they describe device or firmware ranges);
//   - never fewer than 2 entries: a map that would be one range is written as two adjacent
//     halves of it, which Linux's e820__update_table() merges back into one;
//   - alt_mem_k (boot_params 0x1E0): the KiB of usable RAM contiguous from 1 MiB, what the BIOS
//     E801 call reports (arch/x86/boot/memory.c detect_memory_e801), so even the fallback path
//     sees the RAM.
// zero-page.rst: e820_entries (0x1E8, u8), e820_table (0x2D0, 128 × struct boot_e820_entry
// { u64 addr; u64 size; u32 type; } packed), alt_mem_k (0x1E0, u32).
import { GuestImageError } from "../errors.js";
import { checkAddress, hex, MAX_SAFE } from "../num.js";
import type { RamRegion } from "../ram/guest-ram.js";
import type { ReservedRange } from "../vm.js";

/** E820_TYPE_RAM and E820_TYPE_RESERVED (arch/x86/include/asm/e820/types.h). */
export const E820_TYPE_RAM = 1;
export const E820_TYPE_RESERVED = 2;
/** zero-page.rst: e820_table is 0xA00 bytes of 20-byte entries (E820_MAX_ENTRIES_ZEROPAGE = 128). */
export const E820_MAX_ENTRIES = 0xa00 / 20;
/**
 * Start of the PC's legacy reserved area: the top 1 KiB of the 640 KiB of conventional memory is
 * the BIOS's extended data area (QEMU/SeaBIOS report 0x9FC00–0xA0000 reserved), then the VGA
 * window at 0xA0000 and ROMs up to 1 MiB.
 */
export const LEGACY_HOLE_START = 0x9fc00;
export const LEGACY_HOLE_END = 0x100000;

export interface E820Entry {
  addr: number;
  size: number;
  type: number;
}

export interface E820Map {
  entries: E820Entry[];
  /** KiB of usable RAM contiguous from 1 MiB (boot_params.alt_mem_k), capped at 2^32 − 1. */
  altMemK: number;
}

/**
 * The e820 map for `ram` with `reserved` ranges (already checked by the VM's checkReserved). Throws
 * BAD_ARGUMENT for reserved ranges of different types that overlap, TOO_LARGE past 128 entries.
 */
export function buildE820(ram: readonly RamRegion[], reserved: readonly Required<ReservedRange>[] = [], limit: number = E820_MAX_ENTRIES): E820Map {
  const regions = ram.map((r, i) => {
    const base = checkAddress(r?.base, `ram[${i}].base`);
    const size = checkAddress(r?.size, `ram[${i}].size`);
    if (base > MAX_SAFE - size) throw new GuestImageError("BAD_ARGUMENT", `ram[${i}] [${hex(base)}, +${hex(size)}) ends past 2^53-1`, { field: `ram[${i}].size` });
    return { base, size };
  }).filter((r) => r.size > 0);
  for (let i = 0; i < reserved.length; i++) {
    for (let j = i + 1; j < reserved.length; j++) {
      const a = reserved[i];
      const b = reserved[j];
      if (a.type !== b.type && a.base < b.base + b.size && b.base < a.base + a.size) {
        throw new GuestImageError(
          "BAD_ARGUMENT",
          `reserved[${i}] [${hex(a.base)}, ${hex(a.base + a.size)}) type ${a.type} overlaps reserved[${j}] [${hex(b.base)}, ${hex(b.base + b.size)}) type ${b.type}: one range cannot have two e820 types`,
          { field: `reserved[${j}]` },
        );
      }
    }
  }
  // Layers, lowest priority first: RAM, the legacy hole (inside RAM only), the caller's ranges.
  const inRam = (x: number) => regions.some((r) => x >= r.base && x < r.base + r.size);
  const cuts = new Set<number>([LEGACY_HOLE_START, LEGACY_HOLE_END]);
  for (const r of regions) cuts.add(r.base).add(r.base + r.size);
  for (const r of reserved) cuts.add(r.base).add(r.base + r.size);
  const points = [...cuts].sort((a, b) => a - b);
  const entries: E820Entry[] = [];
  for (let i = 0; i + 1 < points.length; i++) {
    const lo = points[i];
    const hi = points[i + 1];
    // Every range boundary is a cut point, so the type is constant over [lo, hi): look at lo.
    const res = reserved.find((r) => lo >= r.base && lo < r.base + r.size);
    let type = 0;
    if (res) type = res.type;
    else if (inRam(lo)) type = lo >= LEGACY_HOLE_START && lo < LEGACY_HOLE_END ? E820_TYPE_RESERVED : E820_TYPE_RAM;
    if (type === 0) continue;
    const last = entries[entries.length - 1];
    if (last && last.type === type && last.addr + last.size === lo) last.size += hi - lo;
    else entries.push({ addr: lo, size: hi - lo, type });
  }
  if (entries.length === 1) {
    // append_e820_table ignores a one-entry map: write the range as two adjacent halves.
    const e = entries[0];
    if (e.size < 2) throw new GuestImageError("BAD_ARGUMENT", `the only e820 range [${hex(e.addr)}, +${hex(e.size)}) is one byte: Linux needs a map of at least 2 entries`, { field: "ram" });
    const half = e.size >= 0x2000 ? Math.floor(e.size / 0x2000) * 0x1000 : Math.floor(e.size / 2);
    entries.splice(0, 1, { addr: e.addr, size: half, type: e.type }, { addr: e.addr + half, size: e.size - half, type: e.type });
  }
  // `limit` above 128: the caller puts the rest in a SETUP_E820_EXT setup_data node (setup-data.ts).
  if (entries.length > limit) {
    throw new GuestImageError("TOO_LARGE", `the e820 map needs ${entries.length} entries (RAM regions, the legacy hole and reserved ranges); the zero page's e820_table holds ${E820_MAX_ENTRIES}${limit > E820_MAX_ENTRIES ? "" : " (kernels with boot protocol 2.09+ take the rest through setup_data SETUP_E820_EXT)"}`, { field: "e820_table" });
  }
  // alt_mem_k: usable RAM contiguous from 1 MiB.
  let end = LEGACY_HOLE_END;
  for (const e of entries) {
    if (e.type === E820_TYPE_RAM && e.addr <= end && e.addr + e.size > end) end = e.addr + e.size;
  }
  const altMemK = Math.min(Math.floor((end - LEGACY_HOLE_END) / 1024), 0xffffffff);
  return { entries, altMemK };
}
