// The x86 setup_data chain (a configurator; Linux Documentation/arch/x86/boot.rst, field
// "setup_data", protocol 2.09+): "The 64-bit physical pointer to NULL terminated single linked
// list of struct setup_data. This is used to define a more extensible boot parameters passing
// mechanism."
//   struct setup_data { __u64 next; __u32 type; __u32 len; __u8 data[]; }
// arch/x86/include/uapi/asm/bootparam.h types used here:
//   SETUP_E820_EXT 1   e820 entries beyond the zero page's 128 (struct boot_e820_entry, packed)
//   SETUP_DTB      2   a flattened device tree
//   SETUP_RNG_SEED 9   random bytes for the kernel's RNG; the kernel credits them and then zeroes
//                      the data and len (arch/x86/kernel/setup.c parse_setup_data: "Zero seed for
//                      forward secrecy")
// and any other type the caller supplies. kernel_info.setup_type_max (protocol 2.15,
// src/formats/kernel-info.ts) is "the maximal allowed type for setup_data and setup_indirect
// structs": a type above it (ignoring the SETUP_INDIRECT bit, 1 << 31, which must itself be in
// setup_type_max to be used) is refused. Kernels before 2.15 state no limit; boot.rst's types
// up to SETUP_RNG_SEED and any caller type are then passed as they are.
//
// The whole chain is one blob, each node 8-byte aligned (the u64 next), placed through
// vm.place; its address goes into the zero page's setup_data field (0x250).
import { GuestImageError } from "../errors.js";
import { checkAddress, hex } from "../num.js";
import type { E820Entry } from "./x86-e820.js";

export const SETUP_NONE = 0;
export const SETUP_E820_EXT = 1;
export const SETUP_DTB = 2;
export const SETUP_RNG_SEED = 9;
export const SETUP_INDIRECT = 0x8000_0000;
/** boot.rst: setup_data is a setup-header field from protocol 2.09, at 0x250. */
export const SETUP_DATA_PROTOCOL = 0x209;
export const SETUP_DATA_FIELD = 0x250;
/** sizeof(struct setup_data) before data[]. */
export const SETUP_DATA_HEADER = 16;
/** struct boot_e820_entry { u64 addr; u64 size; u32 type; } packed. */
const E820_ENTRY_SIZE = 20;
/** setup.c memzero/early_memremap of each node: keep a node within what a u32 len can say. */
const MAX_LEN = 0xffff_ffff;

export interface SetupDataEntry {
  /** setup_data type (u32). */
  type: number;
  data: Uint8Array;
}

const bad = (field: string, msg: string) => new GuestImageError("BAD_ARGUMENT", msg, { field });

/** The data of a SETUP_E820_EXT node: the entries packed as struct boot_e820_entry. */
export function e820ExtData(entries: readonly E820Entry[]): Uint8Array {
  const out = new Uint8Array(entries.length * E820_ENTRY_SIZE);
  const dv = new DataView(out.buffer);
  entries.forEach((e, i) => {
    dv.setBigUint64(i * E820_ENTRY_SIZE, BigInt(e.addr), true);
    dv.setBigUint64(i * E820_ENTRY_SIZE + 8, BigInt(e.size), true);
    dv.setUint32(i * E820_ENTRY_SIZE + 16, e.type, true);
  });
  return out;
}

/**
 * Checks entry types and sizes against the kernel: protocol ≥ 2.09 for any chain, and each type
 * ≤ setup_type_max when the kernel states one. Throws GuestImageError naming the entry.
 */
export function checkSetupData(entries: readonly SetupDataEntry[], kernel: { protocol_version: number; setup_type_max: number | null; image?: string }): void {
  if (!Array.isArray(entries)) throw bad("setupData.entries", "setupData entries must be an array of { type, data }");
  if (entries.length && kernel.protocol_version < SETUP_DATA_PROTOCOL) {
    throw new GuestImageError("UNSUPPORTED", `setup_data needs boot protocol 2.09; the kernel speaks ${kernel.protocol_version >> 8}.${(kernel.protocol_version & 0xff).toString().padStart(2, "0")}`, { image: kernel.image, field: "setup_data" });
  }
  entries.forEach((e, i) => {
    const where = `setupData.entries[${i}]`;
    if (!e || typeof e !== "object") throw bad(where, `${where} must be { type, data }`);
    if (!Number.isInteger(e.type) || e.type < 0 || e.type > 0xffff_ffff) throw bad(`${where}.type`, `${where}.type must be a u32, got ${String(e.type)}`);
    if (!(e.data instanceof Uint8Array)) throw bad(`${where}.data`, `${where}.data must be a Uint8Array`);
    if (e.data.length > MAX_LEN) throw new GuestImageError("TOO_LARGE", `${where}.data is ${hex(e.data.length)} bytes; setup_data.len is a u32`, { field: `${where}.data` });
    if (e.type === SETUP_NONE) throw bad(`${where}.type`, `${where}.type 0 is SETUP_NONE, which the kernel skips: leave the entry out`);
    const max = kernel.setup_type_max;
    if (max !== null) {
      const indirect = (e.type & SETUP_INDIRECT) !== 0;
      const base = e.type & ~SETUP_INDIRECT & 0xffff_ffff;
      const maxBase = (max & ~SETUP_INDIRECT) >>> 0;
      if (base > maxBase || (indirect && (max & SETUP_INDIRECT) === 0)) {
        throw new GuestImageError("UNSUPPORTED", `${where}.type ${hex(e.type)} is not a setup_data type this kernel knows: kernel_info.setup_type_max is ${hex(max)} (boot.rst, protocol 2.15)`, { image: kernel.image, field: "setup_type_max" });
      }
    }
  });
}

/** Bytes of the chain for these entries. */
export function setupDataSize(entries: readonly SetupDataEntry[]): number {
  let n = 0;
  for (const e of entries) n = Math.ceil(n / 8) * 8 + SETUP_DATA_HEADER + e.data.length;
  return n;
}

/**
 * The chain as one blob for address `paddr` (8-aligned): node i's `next` is node i+1's address,
 * the last one's 0. Returns the blob and each node's address.
 */
export function buildSetupData(entries: readonly SetupDataEntry[], paddr: number): { bytes: Uint8Array; nodes: Array<{ type: number; paddr: number; len: number }> } {
  checkAddress(paddr, "setup_data address");
  if (paddr % 8 !== 0) throw bad("paddr", `setup_data must be 8-byte aligned (its next field is a u64), got ${hex(paddr)}`);
  const bytes = new Uint8Array(setupDataSize(entries));
  const dv = new DataView(bytes.buffer);
  const offsets: number[] = [];
  let o = 0;
  for (const e of entries) {
    o = Math.ceil(o / 8) * 8;
    offsets.push(o);
    o += SETUP_DATA_HEADER + e.data.length;
  }
  entries.forEach((e, i) => {
    const at = offsets[i];
    dv.setBigUint64(at, i + 1 < entries.length ? BigInt(paddr + offsets[i + 1]) : 0n, true);
    dv.setUint32(at + 8, e.type >>> 0, true);
    dv.setUint32(at + 12, e.data.length, true);
    bytes.set(e.data, at + SETUP_DATA_HEADER);
  });
  return { bytes, nodes: entries.map((e, i) => ({ type: e.type >>> 0, paddr: paddr + offsets[i], len: e.data.length })) };
}
