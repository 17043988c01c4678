// The x86 Linux "zero page" (struct boot_params, 4 KiB) for the 32/64-bit boot protocol.
//
// Linux Documentation/arch/x86/boot.rst ("boot.rst"), "32-bit Boot Protocol": "The memory for
// struct boot_params should be allocated and initialized to all zero. Then the setup header
// from offset 0x01f1 of kernel image on should be loaded into struct boot_params and examined.
// The end of setup header can be calculated as follow: 0x0202 + byte value at offset 0x0201".
// Then the loader fills in the header fields it owns (boot.rst, "Details of Header Fields",
// those of type write/modify) and the boot_params fields of Documentation/arch/x86/zero-page.rst
// ("zero-page.rst"). The page is plain bytes: place it with vm.place() (same checks as a file),
// and hand its address to the kernel in %esi / %rsi.
//
// What is written, beyond the copied header:
//   type_of_loader (0x210)          the caller's id (default 0xFF, "undefined"; QEMU uses 0xB0)
//   loadflags (0x211) |= CAN_USE_HEAP and heap_end_ptr (0x224) = heapEnd − 0x200, if heapEnd given
//   code32_start (0x214)            B, where the kernel was loaded (boot.rst: "a bootloader …
//                                   [that] loads a relocatable kernel at a nonstandard address
//                                   will have to modify this field"); left as in the file when
//                                   B ≥ 4 GiB (only the 64-bit entry, which does not read it, can start it)
//   ramdisk_image/size (0x218/0x21C) + ext_ramdisk_image/size (boot_params 0x0C0/0x0C4): high halves
//   cmd_line_ptr (0x228)            + ext_cmd_line_ptr (boot_params 0x0C8): high half
//   e820_entries (0x1E8), e820_table (0x2D0), alt_mem_k (0x1E0): a PC-shaped map of the RAM
//                                   regions, the legacy hole and the caller's reserved ranges,
//                                   never fewer than 2 entries (x86-e820.ts says why).
// The sentinel (0x1EF) stays 0, so the kernel's sanitize_boot_params() trusts every field.
import { GuestImageError } from "../errors.js";
import {
  CAN_USE_HEAP, protocolString, SETUP_HEADER_MAX_END, SETUP_HEADER_OFFSET, setupHeaderField, XLF_CAN_BE_LOADED_ABOVE_4G,
  type BzImageKernelArch,
} from "../formats/bzimage.js";
import { checkAddress, hex } from "../num.js";
import type { RamRegion } from "../ram/guest-ram.js";
import { checkReserved, type ReservedRange } from "../vm.js";
import { buildE820, E820_MAX_ENTRIES as MAX_ENTRIES, E820_TYPE_RAM as TYPE_RAM, type E820Map } from "./x86-e820.js";

/** sizeof(struct boot_params). */
export const ZERO_PAGE_SIZE = 4096;
// zero-page.rst offsets.
export const EXT_RAMDISK_IMAGE = 0x0c0;
export const EXT_RAMDISK_SIZE = 0x0c4;
export const EXT_CMD_LINE_PTR = 0x0c8;
export const ALT_MEM_K = 0x1e0;
export const E820_ENTRIES = 0x1e8;
export const E820_TABLE = 0x2d0;
/** struct boot_e820_entry { u64 addr; u64 size; u32 type; } (packed). */
export const E820_ENTRY_SIZE = 20;
/** zero-page.rst: e820_table is 0xA00 bytes, i.e. E820_MAX_ENTRIES_ZEROPAGE = 128 entries. */
export const E820_MAX_ENTRIES = MAX_ENTRIES;
/** E820_TYPE_RAM (arch/x86/include/asm/e820/types.h). */
export const E820_TYPE_RAM = TYPE_RAM;
/** boot.rst, cmdline_size: "With protocol version 2.05 and earlier, the maximum size was 255." */
const CMDLINE_MAX_BEFORE_2_06 = 255;
/** boot.rst, initrd_addr_max: "For boot protocols 2.02 or earlier … the maximum address is 0x37FFFFFF." */
const INITRD_ADDR_MAX_BEFORE_2_03 = 0x37ffffff;
const FOUR_GIB = 2 ** 32;

export interface BootParamsOptions {
  /** The arch record of a bzImage load (`LoadedKernel.arch` / `kernel_image_arch`). */
  kernel: BzImageKernelArch;
  /** Where the command line was placed; `length` excludes the terminating NUL (boot.rst, cmdline_size). */
  cmdline?: { paddr: number; length: number };
  /** Where the initrd was placed (a `LoadedImage` fits: paddr, size). */
  ramdisk?: { paddr: number; size: number };
  /** The guest's RAM regions (`vm.ram.regions`), listed in the e820 map as RAM. */
  ram: readonly RamRegion[];
  /** Ranges listed in the e820 map with their type (default 2, reserved), over RAM where they overlap it. */
  reserved?: readonly ReservedRange[];
  /** type_of_loader: 0xFF ("undefined") unless you have an id (boot.rst table; QEMU is 0xB0). */
  typeOfLoader?: number;
  /**
   * End of the real-mode setup's stack/heap as an offset from the start of the real-mode code
   * (boot.rst, heap_end_ptr: the field gets this minus 0x200); only for a real-mode start.
   */
  heapEnd?: number;
  /**
   * The e820 map already built (x86-e820.ts buildE820): its first 128 entries go in the zero page
   * (the rest belong in a SETUP_E820_EXT setup_data node). Omitted: built from `ram` and `reserved`.
   */
  e820?: E820Map;
}

const bad = (field: string, msg: string) => new GuestImageError("BAD_ARGUMENT", msg, { field });

/** Builds the 4 KiB zero page for a kernel loaded as a bzImage. Throws GuestImageError; never writes guest RAM. */
export function buildBootParams(opts: BootParamsOptions): Uint8Array {
  if (!opts || typeof opts !== "object") throw bad("options", "buildBootParams needs an options object");
  const k = opts.kernel;
  if (!k || k.format !== "bzimage" || !(k.setup_bytes instanceof Uint8Array) || !k.setup_header) {
    throw bad("kernel", `kernel must be the arch record of a bzImage load (format "bzimage"), got ${k && typeof k === "object" ? `format ${JSON.stringify(k.format)}` : String(k)}`);
  }
  const h = k.setup_header;
  const version = k.protocol_version;
  const proto = protocolString(version);
  if (!Number.isInteger(k.header_end) || k.header_end <= SETUP_HEADER_OFFSET || k.header_end > SETUP_HEADER_MAX_END || k.header_end > k.setup_bytes.length) {
    throw bad("kernel", `kernel.header_end ${String(k.header_end)} is not inside the setup bytes and the setup header's limit ${hex(SETUP_HEADER_MAX_END)}`);
  }
  const page = new Uint8Array(ZERO_PAGE_SIZE);
  const dv = new DataView(page.buffer);
  // boot.rst, "32-bit Boot Protocol": the setup header from 0x1F1 up to 0x202 + byte@0x201.
  page.set(k.setup_bytes.subarray(SETUP_HEADER_OFFSET, k.header_end), SETUP_HEADER_OFFSET);
  const at = (name: Parameters<typeof setupHeaderField>[0]) => setupHeaderField(name).offset;
  const xlf = k.xloadflags;
  const above4g = (xlf & XLF_CAN_BE_LOADED_ABOVE_4G) !== 0;

  // type_of_loader: "write (obligatory)"; a byte.
  const tol = opts.typeOfLoader ?? 0xff;
  if (!Number.isInteger(tol) || tol < 0 || tol > 0xff) throw bad("typeOfLoader", `typeOfLoader must be a byte (0..0xff), got ${String(tol)}`);
  page[at("type_of_loader")] = tol;

  // code32_start: the address the kernel was loaded at (32-bit field).
  if (k.code32_start < FOUR_GIB) dv.setUint32(at("code32_start"), k.code32_start, true);

  if (opts.heapEnd !== undefined) {
    const he = opts.heapEnd;
    if (version < 0x201) {
      throw new GuestImageError("UNSUPPORTED", `heap_end_ptr needs boot protocol 2.01, the kernel speaks ${proto}`, { field: "heap_end_ptr" });
    }
    // The heap lies after the real-mode code and inside its 64 KiB segment.
    if (!Number.isInteger(he) || he <= k.setup_size || he > 0x10000) {
      throw bad("heapEnd", `heapEnd ${String(he)} must be past the ${hex(k.setup_size)}-byte real-mode code and at most 0x10000 (the end of its segment)`);
    }
    page[at("loadflags")] |= CAN_USE_HEAP;
    dv.setUint16(at("heap_end_ptr"), he - 0x200, true);
  }

  if (opts.cmdline !== undefined) {
    const { paddr, length } = opts.cmdline ?? ({} as { paddr: number; length: number });
    checkAddress(paddr, "cmdline.paddr");
    checkAddress(length, "cmdline.length");
    if (version < 0x202) {
      throw new GuestImageError("UNSUPPORTED", `cmd_line_ptr needs boot protocol 2.02 (older kernels take the command line inside the real-mode segment), the kernel speaks ${proto}`, { field: "cmd_line_ptr" });
    }
    const max = h.cmdline_size ?? CMDLINE_MAX_BEFORE_2_06;
    if (length > max) {
      throw new GuestImageError("TOO_LARGE", `command line of ${length} bytes is longer than cmdline_size ${max}${h.cmdline_size === null ? ` (the limit before protocol 2.06; this kernel speaks ${proto})` : ""} (the NUL not counted)`, { field: "cmdline_size" });
    }
    // The pointer is 32-bit, with its high half in ext_cmd_line_ptr only for kernels that can take it.
    if (paddr + length + 1 > FOUR_GIB && !above4g) {
      throw new GuestImageError("BAD_ADDRESS", `command line [${hex(paddr)}, ${hex(paddr + length + 1)}) is not below 4 GiB, where the 32-bit cmd_line_ptr reaches, and xloadflags ${hex(xlf)} lacks XLF_CAN_BE_LOADED_ABOVE_4G (for ext_cmd_line_ptr)`, { field: "cmd_line_ptr" });
    }
    dv.setUint32(at("cmd_line_ptr"), paddr % FOUR_GIB, true);
    dv.setUint32(EXT_CMD_LINE_PTR, Math.floor(paddr / FOUR_GIB), true);
  }

  if (opts.ramdisk !== undefined) {
    const { paddr, size } = opts.ramdisk ?? ({} as { paddr: number; size: number });
    checkAddress(paddr, "ramdisk.paddr");
    checkAddress(size, "ramdisk.size");
    if (size === 0) throw bad("ramdisk.size", "ramdisk.size is 0: leave the ramdisk out instead (boot.rst: ramdisk_image/size stay zero without one)");
    // boot.rst, initrd_addr_max: "the address of the highest safe byte".
    const last = paddr + size - 1;
    if (!above4g) {
      const max = h.initrd_addr_max ?? INITRD_ADDR_MAX_BEFORE_2_03;
      if (last > max) {
        throw new GuestImageError(
          "BAD_ADDRESS",
          `ramdisk [${hex(paddr)}, ${hex(paddr + size)}) ends above initrd_addr_max ${hex(max)}${h.initrd_addr_max === null ? ` (the limit before protocol 2.03; this kernel speaks ${proto})` : ""}, the highest byte the kernel can reach, and xloadflags ${hex(xlf)} lacks XLF_CAN_BE_LOADED_ABOVE_4G`,
          { field: "initrd_addr_max" },
        );
      }
    }
    dv.setUint32(at("ramdisk_image"), paddr % FOUR_GIB, true);
    dv.setUint32(at("ramdisk_size"), size % FOUR_GIB, true);
    dv.setUint32(EXT_RAMDISK_IMAGE, Math.floor(paddr / FOUR_GIB), true);
    dv.setUint32(EXT_RAMDISK_SIZE, Math.floor(size / FOUR_GIB), true);
  }

  // e820 (and alt_mem_k for a kernel that falls back to it).
  if (!Array.isArray(opts.ram)) throw bad("ram", "ram must be the list of RAM regions ({base, size}) for the e820 map");
  const map = opts.e820 ?? buildE820(opts.ram, checkReserved(opts.reserved, "reserved"));
  map.entries.slice(0, E820_MAX_ENTRIES).forEach((e, i) => {
    const o = E820_TABLE + i * E820_ENTRY_SIZE;
    dv.setBigUint64(o, BigInt(e.addr), true);
    dv.setBigUint64(o + 8, BigInt(e.size), true);
    dv.setUint32(o + 16, e.type, true);
  });
  page[E820_ENTRIES] = Math.min(map.entries.length, E820_MAX_ENTRIES);
  dv.setUint32(ALT_MEM_K, map.altMemK, true);
  return page;
}
