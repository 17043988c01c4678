// Multiboot 2 kernels (The Multiboot2 Specification version 2.0, "3.1 OS image format").
//
// The image carries a Multiboot2 header in its first 32768 bytes, 64-bit (8-byte) aligned:
// magic 0xE85250D6, architecture (0: i386 protected mode, 4: 32-bit MIPS), header_length,
// checksum (the four u32s sum to 0 mod 2^32), then header tags, each 8-byte aligned
// {u16 type, u16 flags, u32 size, …}, ended by a tag of type 0 and size 8. Bit 0 of a tag's flags
// ("optional") lets a loader ignore a tag it does not support; a loader that cannot honour a
// tag without it must refuse the image.
//
// Where the image goes: with an address tag (type 2, a.out-style), the file's bytes by its
// header_addr/load_addr/load_end_addr/bss_end_addr; without one the image must be an ELF (ELF32
// i386 or ELF64 x86-64 for architecture 0, as GRUB's multiboot2 loader takes, ELF32 MIPS for 4)
// and goes by its program headers at p_paddr. A relocatable header tag (type 10) lets the loader
// move the whole image (min_addr, max_addr, align, preference): we choose the base, copy the image
// there unchanged (no relocations are applied: the kernel learns its base from the info
// structure's load base address tag, 21) and report it.
//
// Header checks mirror Multiboot 1's (src/formats/multiboot.ts: CVE-2017-14167 and
// GHSA-f49v-45qp-cv53 shapes) on exact JS integers, and every tag's size is checked against the
// header before a field is read.
//
// The boot state the caller establishes (spec 3.3 "I386 machine state"): EAX = 0x36d76289,
// EBX = physical address of the Multiboot2 information structure (src/boot/multiboot2-info.ts),
// CS/DS/ES/FS/GS/SS flat 32-bit segments (base 0, limit 0xFFFFFFFF), CR0.PE set, CR0.PG clear,
// EFLAGS.VM and IF clear, A20 enabled. MIPS (3.2): R4 (a0) = magic, R5 (a1) = the structure.
import { GuestImageError, type ErrorCode } from "../errors.js";
import { hex, toSafe } from "../num.js";
import type { LoadPlan } from "../plan.js";
import type { ImageFile } from "../sources/source.js";
import { elfFormat, isElf, planElf, readElf, type ElfImage } from "./elf.js";
import type { FormatContext, ImageFormat } from "./format.js";

/** Spec 3.1.2: the header's magic. */
export const MULTIBOOT2_HEADER_MAGIC = 0xe85250d6;
/** Spec 3.3 (and 3.2): the value in EAX (MIPS: R4) when the kernel is entered. */
export const MULTIBOOT2_BOOTLOADER_MAGIC = 0x36d76289;
/** Spec 3.1: "must be contained completely within the first 32768 bytes of the OS image". */
export const MULTIBOOT2_SEARCH = 32768;
/** Spec 3.1: "and must be 64-bit aligned". */
const HEADER_ALIGN = 8;
/** Spec 3.1.3 / 3.6.2: tags start at 8-byte aligned offsets. */
export const MB2_TAG_ALIGN = 8;

/** Spec 3.1.2 "architecture". */
export const MB2_ARCH_I386 = 0;
export const MB2_ARCH_MIPS32 = 4;

/** Spec 3.1.3: bit 0 of a header tag's flags. */
export const MB2_TAG_OPTIONAL = 1;

/** Header tag types (spec 3.1.4-3.1.13; GRUB include/multiboot2.h MULTIBOOT_HEADER_TAG_*). */
export const MB2_HEADER_TAG = {
  END: 0,
  INFORMATION_REQUEST: 1,
  ADDRESS: 2,
  ENTRY_ADDRESS: 3,
  CONSOLE_FLAGS: 4,
  FRAMEBUFFER: 5,
  MODULE_ALIGN: 6,
  EFI_BS: 7,
  ENTRY_ADDRESS_EFI32: 8,
  ENTRY_ADDRESS_EFI64: 9,
  RELOCATABLE: 10,
} as const;

/** Information structure tag types (spec 3.6; GRUB include/multiboot2.h MULTIBOOT_TAG_TYPE_*). */
export const MB2_INFO_TAG = {
  END: 0,
  CMDLINE: 1,
  BOOT_LOADER_NAME: 2,
  MODULE: 3,
  BASIC_MEMINFO: 4,
  BOOTDEV: 5,
  MMAP: 6,
  VBE: 7,
  FRAMEBUFFER: 8,
  ELF_SECTIONS: 9,
  APM: 10,
  EFI32: 11,
  EFI64: 12,
  SMBIOS: 13,
  ACPI_OLD: 14,
  ACPI_NEW: 15,
  NETWORK: 16,
  EFI_MMAP: 17,
  EFI_BS: 18,
  EFI32_IH: 19,
  EFI64_IH: 20,
  LOAD_BASE_ADDR: 21,
} as const;

const INFO_TAG_NAMES: Record<number, string> = {
  1: "boot command line", 2: "boot loader name", 3: "modules", 4: "basic memory information", 5: "BIOS boot device",
  6: "memory map", 7: "VBE info", 8: "framebuffer info", 9: "ELF sections", 10: "APM table", 11: "EFI 32-bit system table pointer",
  12: "EFI 64-bit system table pointer", 13: "SMBIOS tables", 14: "ACPI old RSDP", 15: "ACPI new RSDP", 16: "networking information",
  17: "EFI memory map", 18: "EFI boot services not terminated", 19: "EFI 32-bit image handle pointer", 20: "EFI 64-bit image handle pointer",
  21: "image load base physical address",
};
export const infoTagName = (t: number) => INFO_TAG_NAMES[t] ?? `unknown tag type ${t}`;

/**
 * Information tags this loader can put in the structure: always (1, 2, 3, 4, 6), when the kernel
 * is an ELF (9) or relocatable (21), or when the caller supplies the data (8 framebuffer,
 * 13 SMBIOS, 14/15 ACPI RSDP). The rest describe firmware or hardware a VMM loader does not have
 * (BIOS boot device, VBE, APM, EFI, DHCP), so a kernel that requires one is refused.
 */
export const MB2_PROVIDABLE_INFO: ReadonlySet<number> = new Set([1, 2, 3, 4, 6, 8, 9, 13, 14, 15, 21]);
/** Of those, the ones that exist only when the boot's caller passes the data. */
export const MB2_CALLER_INFO: ReadonlySet<number> = new Set([8, 13, 14, 15]);

/** Spec 3.1.13 relocatable "preference". */
export type Mb2Preference = "none" | "lowest" | "highest";
const PREFERENCES: readonly Mb2Preference[] = ["none", "lowest", "highest"];

const FOUR_GIB = 2 ** 32;
const EM_386 = 3; // gABI e_machine
const EM_MIPS = 8;
const EM_X86_64 = 62;

/** x86 Linux boot protocol "HdrS" at 0x202 (Documentation/arch/x86/boot.rst, setup header). */
const HDRS_OFFSET = 0x202;
const HDRS_MAGIC = 0x53726448;

const dv = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
const u32 = (b: Uint8Array, o: number) => dv(b).getUint32(o, true);
const u16 = (b: Uint8Array, o: number) => dv(b).getUint16(o, true);
const align8 = (n: number) => Math.ceil(n / MB2_TAG_ALIGN) * MB2_TAG_ALIGN;

/** A header whose magic and checksum are right (nothing else checked yet). */
export interface Multiboot2HeaderLocation {
  /** File offset of the magic. */
  offset: number;
  architecture: number;
  header_length: number;
  checksum: number;
}

/**
 * The first 8-byte-aligned offset in the first 32768 bytes holding the magic with a valid
 * checksum (spec 3.1.1-3.1.2), or undefined. A magic with a wrong checksum is not a header.
 */
export function findMultiboot2Header(head: Uint8Array): Multiboot2HeaderLocation | undefined {
  const end = Math.min(head.length, MULTIBOOT2_SEARCH);
  for (let o = 0; o + 16 <= end; o += HEADER_ALIGN) {
    if (u32(head, o) !== MULTIBOOT2_HEADER_MAGIC) continue;
    const architecture = u32(head, o + 4);
    const header_length = u32(head, o + 8);
    const checksum = u32(head, o + 12);
    if (((MULTIBOOT2_HEADER_MAGIC + architecture + header_length + checksum) % FOUR_GIB) === 0) {
      return { offset: o, architecture, header_length, checksum };
    }
  }
  return undefined;
}

/** One header tag as found (file offset of its type field). */
export interface Multiboot2Tag {
  type: number;
  flags: number;
  size: number;
  offset: number;
  optional: boolean;
}

/** Address tag (spec 3.1.5), resolved into what is copied and zeroed. */
export interface Multiboot2AddressLoad {
  header_addr: number;
  load_addr: number;
  load_end_addr: number;
  bss_end_addr: number;
  /** File offset of the first loaded byte. */
  load_offset: number;
  /** Guest address of the first loaded byte (load_addr, or header_addr − header offset for load_addr −1). */
  load_start: number;
  load_size: number;
  /** load_start + load_size, ≤ 4 GiB. */
  load_end: number;
  bss_size: number;
}

export interface Multiboot2Relocatable {
  min_addr: number;
  max_addr: number;
  align: number;
  preference: Mb2Preference;
}

/** A validated Multiboot2 header. */
export interface Multiboot2Header {
  offset: number;
  architecture: number;
  header_length: number;
  checksum: number;
  tags: Multiboot2Tag[];
  /** Information tags requested without the optional flag: each must be provided if available. */
  required_info: number[];
  /** Information tags requested with the optional flag. */
  optional_info: number[];
  address: Multiboot2AddressLoad | null;
  entry_addr: number | null;
  /** Console flags tag (4) when present and not optional-and-ignored: bit 0 console required, bit 1 EGA text supported. */
  console_flags: number | null;
  console_required: boolean;
  /** Framebuffer tag (5): the preferred mode, and whether the tag is required. */
  framebuffer: { width: number; height: number; depth: number; required: boolean } | null;
  /** Module alignment tag (6): modules must be page aligned. */
  module_align: boolean;
  /** EFI boot services tag (7): the image can also start with boot services running (we never have them). */
  efi_boot_services: boolean;
  relocatable: Multiboot2Relocatable | null;
  /** Optional tags this loader skipped (EFI entries, unknown types), by type. */
  ignored_tags: number[];
}

/** Parses and validates the header (no ELF reading). Throws GuestImageError on the first bad field. */
export function parseMultiboot2Header(head: Uint8Array, size: number, image: string): Multiboot2Header {
  const loc = findMultiboot2Header(head);
  if (!loc) {
    throw new GuestImageError("BAD_MAGIC", `no Multiboot2 header (magic ${hex(MULTIBOOT2_HEADER_MAGIC)} with a valid checksum, 8-byte aligned) in the first ${MULTIBOOT2_SEARCH} bytes`, { image, field: "magic" });
  }
  const { offset, architecture, header_length, checksum } = loc;
  const fail = (code: ErrorCode, field: string, msg: string): never => {
    throw new GuestImageError(code, `Multiboot2 header at file offset ${hex(offset)}: ${msg}${msg.includes(field) ? "" : ` (field ${field})`}`, { image, field });
  };
  if (architecture !== MB2_ARCH_I386 && architecture !== MB2_ARCH_MIPS32) {
    fail("UNSUPPORTED", "architecture", `architecture ${architecture} is neither 0 (i386 protected mode) nor 4 (32-bit MIPS), the two the specification defines`);
  }
  // The fixed part (16 bytes) and at least the end tag (8 bytes).
  if (header_length < 24) fail("BAD_HEADER", "header_length", `header_length ${hex(header_length)} is shorter than the 16-byte fixed part plus the 8-byte end tag`);
  const end = offset + header_length; // exact: both < 2^33
  if (end > MULTIBOOT2_SEARCH) fail("BAD_HEADER", "header_length", `header_length ${hex(header_length)} runs past the first ${MULTIBOOT2_SEARCH} bytes of the image, where the whole header must lie`);
  if (end > size || end > head.length) fail("TRUNCATED", "header_length", `header_length ${hex(header_length)} runs past the end of the file (${hex(size)} bytes)`);

  const tags: Multiboot2Tag[] = [];
  let p = offset + 16;
  let ended = false;
  while (p + 8 <= end) {
    const type = u16(head, p);
    const flags = u16(head, p + 2);
    const tsize = u32(head, p + 4);
    const at = `tag at file offset ${hex(p)} (type ${type})`;
    if (tsize < 8) fail("BAD_HEADER", "tag.size", `${at}: size ${tsize} is smaller than the 8-byte tag header`);
    if (p + tsize > end) fail("BAD_HEADER", "tag.size", `${at}: size ${hex(tsize)} runs past the header's end (header_length ${hex(header_length)})`);
    if (type === MB2_HEADER_TAG.END) {
      if (tsize !== 8) fail("BAD_HEADER", "tag.size", `${at}: the end tag's size is ${tsize}, the specification says 8`);
      ended = true;
      break;
    }
    tags.push({ type, flags, size: tsize, offset: p, optional: (flags & MB2_TAG_OPTIONAL) !== 0 });
    p += align8(tsize);
  }
  if (!ended) fail("BAD_HEADER", "header_length", `no end tag (type 0, size 8) within header_length ${hex(header_length)}`);

  const h: Multiboot2Header = {
    offset, architecture, header_length, checksum, tags,
    required_info: [], optional_info: [], address: null, entry_addr: null, console_flags: null, console_required: false,
    framebuffer: null, module_align: false, efi_boot_services: false, relocatable: null, ignored_tags: [],
  };
  const seen = new Set<number>();
  const need = (t: Multiboot2Tag, min: number, what: string) => {
    if (t.size < min) fail("BAD_HEADER", "tag.size", `${what} tag (type ${t.type}) at file offset ${hex(t.offset)} has size ${t.size}, needs at least ${min}`);
  };
  const once = (t: Multiboot2Tag, what: string) => {
    if (seen.has(t.type)) fail("BAD_HEADER", "tag.type", `${what} tag (type ${t.type}) appears twice (second at file offset ${hex(t.offset)})`);
    seen.add(t.type);
  };
  const f32 = (t: Multiboot2Tag, i: number) => u32(head, t.offset + 8 + 4 * i);
  let address: Multiboot2Tag | undefined;
  for (const t of tags) {
    switch (t.type) {
      case MB2_HEADER_TAG.INFORMATION_REQUEST: {
        // Spec 3.1.4: "If the bootloader does not understand the meaning of the requested tag it
        // must fail with an error" (unless the request is optional).
        if ((t.size - 8) % 4 !== 0) fail("BAD_HEADER", "tag.size", `information request tag at file offset ${hex(t.offset)}: size ${t.size} is not 8 plus a whole number of u32 tag types`);
        for (let i = 0; i < (t.size - 8) / 4; i++) {
          const req = f32(t, i);
          if (t.optional) {
            if (!h.optional_info.includes(req)) h.optional_info.push(req);
            continue;
          }
          if (!MB2_PROVIDABLE_INFO.has(req)) {
            fail("UNSUPPORTED", "mbi_tag_types", `the kernel requires information tag ${req} (${infoTagName(req)}), which this loader cannot provide (it provides ${[...MB2_PROVIDABLE_INFO].join(", ")}); mark the request optional (flags bit 0) to boot without it`);
          }
          if (!h.required_info.includes(req)) h.required_info.push(req);
        }
        break;
      }
      case MB2_HEADER_TAG.ADDRESS:
        once(t, "address");
        need(t, 24, "address");
        address = t;
        break;
      case MB2_HEADER_TAG.ENTRY_ADDRESS:
        once(t, "entry address");
        need(t, 12, "entry address");
        h.entry_addr = f32(t, 0);
        break;
      case MB2_HEADER_TAG.CONSOLE_FLAGS:
        once(t, "console flags");
        need(t, 12, "console flags");
        h.console_flags = f32(t, 0);
        // Bit 0: "at least one of supported consoles must be present and information about it must
        // be available in mbi". An optional tag may be ignored, and is.
        h.console_required = !t.optional && (h.console_flags & 1) !== 0;
        break;
      case MB2_HEADER_TAG.FRAMEBUFFER:
        once(t, "framebuffer");
        need(t, 20, "framebuffer");
        h.framebuffer = { width: f32(t, 0), height: f32(t, 1), depth: f32(t, 2), required: !t.optional };
        break;
      case MB2_HEADER_TAG.MODULE_ALIGN:
        h.module_align = true;
        break;
      case MB2_HEADER_TAG.EFI_BS:
        // "payload supports starting without terminating boot services": a capability, not a
        // demand; a loader without UEFI starts it with none (GRUB's BIOS build does the same).
        h.efi_boot_services = true;
        break;
      case MB2_HEADER_TAG.ENTRY_ADDRESS_EFI32:
      case MB2_HEADER_TAG.ENTRY_ADDRESS_EFI64:
        need(t, 12, "EFI entry address");
        if (!t.optional) {
          fail("UNSUPPORTED", "tag.type", `the kernel requires the EFI ${t.type === 8 ? "i386" : "amd64"} entry address tag (type ${t.type}), which needs UEFI boot services; this loader starts the image without UEFI firmware (mark the tag optional to use the plain entry)`);
        }
        h.ignored_tags.push(t.type);
        break;
      case MB2_HEADER_TAG.RELOCATABLE: {
        once(t, "relocatable");
        need(t, 24, "relocatable");
        const min_addr = f32(t, 0), max_addr = f32(t, 1), align = f32(t, 2), pref = f32(t, 3);
        if (pref > 2) fail("BAD_HEADER", "preference", `relocatable tag: preference ${pref} is not 0 (none), 1 (lowest) or 2 (highest)`);
        if (align !== 0 && (align & (align - 1)) !== 0) fail("BAD_HEADER", "align", `relocatable tag: align ${hex(align)} is not a power of two`);
        if (min_addr > max_addr) fail("BAD_HEADER", "min_addr", `relocatable tag: min_addr ${hex(min_addr)} is above max_addr ${hex(max_addr)}`);
        h.relocatable = { min_addr, max_addr, align: Math.max(align, 1), preference: PREFERENCES[pref] };
        break;
      }
      default:
        if (!t.optional) {
          fail("UNSUPPORTED", "tag.type", `header tag type ${t.type} at file offset ${hex(t.offset)} is unknown to this loader and not marked optional`);
        }
        h.ignored_tags.push(t.type);
    }
  }

  if (address) {
    // Spec 3.1.5, every address a physical u32.
    const header_addr = f32(address, 0);
    const load_addr = f32(address, 1);
    const load_end_addr = f32(address, 2);
    const bss_end_addr = f32(address, 3);
    let load_offset: number;
    let load_start: number;
    if (load_addr === 0xffffffff) {
      // "Special value -1 means that the file must be loaded from its beginning": the header's
      // own offset then says where the file starts in memory.
      if (header_addr < offset) fail("BAD_HEADER", "header_addr", `load_addr -1 loads the file from its start, but header_addr ${hex(header_addr)} is below the header's file offset ${hex(offset)}: the file would start below address 0`);
      load_offset = 0;
      load_start = header_addr - offset;
    } else {
      // "load_addr must be less than or equal to header_addr" (CVE-2017-14167 when unchecked).
      if (header_addr < load_addr) fail("BAD_HEADER", "header_addr", `header_addr ${hex(header_addr)} is below load_addr ${hex(load_addr)}`);
      load_offset = offset - (header_addr - load_addr);
      if (load_offset < 0) fail("BAD_HEADER", "load_addr", `load_addr ${hex(load_addr)} is ${hex(header_addr - load_addr)} bytes before header_addr ${hex(header_addr)}, but the header is only ${hex(offset)} bytes into the file: loading would start before the file`);
      load_start = load_addr;
    }
    let load_size: number;
    if (load_end_addr === 0) load_size = size - load_offset; // "the whole OS image file"
    else {
      if (load_end_addr < load_start) fail("BAD_HEADER", "load_end_addr", `load_end_addr ${hex(load_end_addr)} is below the load start ${hex(load_start)}`);
      load_size = load_end_addr - load_start;
      if (load_offset + load_size > size) fail("TRUNCATED", "load_end_addr", `load_end_addr ${hex(load_end_addr)}: the ${hex(load_size)} bytes to load from file offset ${hex(load_offset)} run past the end of the file (${hex(size)} bytes)`);
    }
    const load_end = load_start + load_size;
    if (load_end > FOUR_GIB) fail("BAD_HEADER", "load_addr", `the load [${hex(load_start)}, ${hex(load_end)}) runs past the 32-bit address space`);
    let bss_size = 0;
    if (bss_end_addr !== 0) {
      // The BSS follows the loaded bytes (GHSA-f49v-45qp-cv53 was load_end_addr > bss_end_addr).
      if (bss_end_addr < load_end) fail("BAD_HEADER", "bss_end_addr", `bss_end_addr ${hex(bss_end_addr)} is below the end of the loaded bytes ${hex(load_end)}`);
      bss_size = bss_end_addr - load_end;
    }
    if (load_size + bss_size === 0) fail("BAD_HEADER", "load_end_addr", "the address tag loads nothing (no bytes from the file and no BSS)");
    // GRUB: "load address tag without entry address tag" — with the address tag there is no ELF
    // entry to fall back on; the entry must be a loaded byte.
    const entry_addr = h.entry_addr;
    if (entry_addr === null) return fail("BAD_HEADER", "entry_addr", "an address tag needs an entry address tag (type 3): there is no other entry point");
    if (entry_addr < load_start || entry_addr >= load_end) {
      fail("BAD_HEADER", "entry_addr", `entry_addr ${hex(entry_addr)} is outside the loaded bytes [${hex(load_start)}, ${hex(load_end)})`);
    }
    h.address = { header_addr, load_addr, load_end_addr, bss_end_addr, load_offset, load_start, load_size, load_end, bss_size };
  }
  return h;
}

/** What a Multiboot 2 kernel reports in `kernel_image_arch`. */
export interface Multiboot2KernelArch {
  format: "multiboot2";
  /** Physical address to jump to, after relocation. */
  entry: bigint;
  /** EAX (MIPS: a0) at entry; EBX (a1) holds the information structure's address. */
  magic_eax: number;
  architecture: "i386" | "mips32";
  header_offset: number;
  header_length: number;
  /** How the image was loaded: by the address tag or by its ELF program headers. */
  loaded_by: "address-tag" | "elf";
  /** The image's own (link) base: load start of the address tag, or the lowest p_paddr. */
  link_base: number;
  /** Where it went; differs from link_base only for a relocatable image that was moved. */
  load_base: number;
  /** Bytes the image occupies (loaded bytes + BSS). */
  size: number;
  relocatable: Multiboot2Relocatable | null;
  required_info: number[];
  optional_info: number[];
  console_flags: number | null;
  console_required: boolean;
  framebuffer: { width: number; height: number; depth: number; required: boolean } | null;
  module_align: boolean;
  efi_boot_services: boolean;
  ignored_tags: number[];
  address: Multiboot2AddressLoad | null;
  entry_addr: number | null;
  elf: { class: "ELF32" | "ELF64"; machine: string; e_entry: bigint; shoff: bigint; shnum: number; shentsize: number; shstrndx: number } | null;
}

export interface Multiboot2Result {
  format: "multiboot2";
  entry: bigint;
  arch: Multiboot2KernelArch;
}

/** Where the image is (link base and size) before any move, with an ELF read when there is one. */
export interface Multiboot2Image {
  header: Multiboot2Header;
  elf: ElfImage | null;
  link_base: number;
  size: number;
}

/** Reads the header and, without an address tag, the ELF; checks the container. */
export async function readMultiboot2(file: ImageFile, head: Uint8Array): Promise<Multiboot2Image> {
  const image = file.name;
  const h = parseMultiboot2Header(head, file.size, image);
  if (h.address) return { header: h, elf: null, link_base: h.address.load_start, size: h.address.load_size + h.address.bss_size };
  if (!isElf(head)) {
    throw new GuestImageError("BAD_HEADER", `Multiboot2 header at file offset ${hex(h.offset)}: no address tag (type 2) among its tags and not an ELF image, so there is no way to know where to load it`, { image, field: "tags" });
  }
  const elf = await readElf(file);
  const eh = elf.header;
  const ok = h.architecture === MB2_ARCH_I386
    ? !eh.bigEndian && ((eh.class === 32 && eh.machine === EM_386) || (eh.class === 64 && eh.machine === EM_X86_64))
    : eh.class === 32 && eh.machine === EM_MIPS;
  if (!ok) {
    const want = h.architecture === MB2_ARCH_I386 ? "a little-endian ELF32 i386 (e_machine 3) or ELF64 x86-64 (e_machine 62) image" : "an ELF32 MIPS (e_machine 8) image";
    throw new GuestImageError("UNSUPPORTED", `a Multiboot2 kernel for architecture ${h.architecture} without an address tag must be ${want}; this one is ELF${eh.class} e_machine ${eh.machine}${eh.bigEndian ? " big-endian" : ""}`, { image, field: "e_machine" });
  }
  if (elf.loads.length === 0) throw new GuestImageError("BAD_HEADER", "the ELF has no PT_LOAD segment to load", { image, field: "e_phnum" });
  let lo = elf.loads[0].paddr;
  let hi = 0n;
  for (const s of elf.loads) {
    if (s.paddr < lo) lo = s.paddr;
    if (s.paddr + s.memsz > hi) hi = s.paddr + s.memsz;
    // Spec 3.5 and the i386 state: paging is off and every tag's address is 32-bit, so nothing may
    // load above 4 GiB − 1 (GRUB refuses the same for ELF64 segments).
    if (s.paddr + s.memsz > BigInt(FOUR_GIB)) {
      throw new GuestImageError("BAD_HEADER", `program header ${s.index} (LOAD) [${hex(s.paddr)}, ${hex(s.paddr + s.memsz)}) crosses 4 GiB (p_paddr + p_memsz); a Multiboot2 image must load below 4 GiB`, { image, field: "p_paddr" });
    }
  }
  return { header: h, elf, link_base: Number(lo), size: Number(hi - lo) };
}

/**
 * The load base: the image's own address, or for a relocatable image the requested `at` (checked
 * against min_addr/max_addr/align) or, with no request, the lowest (preference none or lowest)
 * or highest (preference highest) base in RAM the tag allows. The VM's ledger is not known here:
 * src/boot/multiboot2.ts asks vm.findFree for a free base and passes it as `at`.
 */
export function chooseMultiboot2Base(img: Multiboot2Image, ctx: Pick<FormatContext, "at" | "align" | "ram" | "file">): number {
  const image = ctx.file.name;
  const r = img.header.relocatable;
  const own = img.link_base;
  if (!r) {
    if (ctx.at !== undefined && ctx.at !== own) {
      throw new GuestImageError("BAD_ADDRESS", `a Multiboot2 kernel without a relocatable tag loads at its own address ${hex(own)}, not at the requested ${hex(ctx.at)}`, { image, field: "at" });
    }
    if (ctx.at === undefined && ctx.align > 1 && own % ctx.align !== 0) {
      throw new GuestImageError("BAD_ADDRESS", `a Multiboot2 kernel without a relocatable tag loads at ${hex(own)}, which does not meet the requested alignment ${hex(ctx.align)}`, { image, field: "alignment" });
    }
    return own;
  }
  const align = Math.max(r.align, ctx.align > 1 ? ctx.align : 1);
  checkRelocatableFits(img, image);
  const fits = (b: number) => b >= r.min_addr && b + img.size <= r.max_addr && b % align === 0;
  if (ctx.at !== undefined) {
    if (!fits(ctx.at)) {
      throw new GuestImageError("BAD_ADDRESS", `requested base ${hex(ctx.at)} breaks the relocatable tag: the image [${hex(ctx.at)}, ${hex(ctx.at + img.size)}) must lie within [${hex(r.min_addr)}, ${hex(r.max_addr)}] at a multiple of ${hex(align)}`, { image, field: "at" });
    }
    return ctx.at;
  }
  const up = (v: number) => Math.ceil(v / align) * align;
  const down = (v: number) => Math.floor(v / align) * align;
  const spans = [...ctx.ram.regions].sort((a, b) => a.base - b.base).map((g) => [g.base, g.base + g.size] as [number, number]);
  const merged: Array<[number, number]> = [];
  for (const s of spans) {
    const last = merged[merged.length - 1];
    if (last && last[1] === s[0]) last[1] = s[1];
    else merged.push([...s]);
  }
  const candidates: number[] = [];
  for (const [b, e] of merged) {
    const lo = up(Math.max(b, r.min_addr));
    const hi = down(Math.min(e, r.max_addr) - img.size);
    if (lo <= hi && lo + img.size <= Math.min(e, r.max_addr)) candidates.push(r.preference === "highest" ? hi : lo);
  }
  if (candidates.length === 0) {
    throw new GuestImageError("OUT_OF_RAM", `relocatable tag: no RAM for the image (${hex(img.size)} bytes, align ${hex(align)}) within [${hex(r.min_addr)}, ${hex(r.max_addr)}]`, { image, field: "min_addr" });
  }
  return r.preference === "highest" ? Math.max(...candidates) : Math.min(...candidates);
}

/**
 * Spec 3.1.13: no byte below min_addr; "Highest possible physical address at which loaded image
 * should end": the image ends at or below max_addr. An image larger than that range is a bad header.
 */
export function checkRelocatableFits(img: Multiboot2Image, image: string): void {
  const r = img.header.relocatable;
  if (r && img.size > r.max_addr - r.min_addr) {
    throw new GuestImageError("BAD_HEADER", `relocatable tag: the image (${hex(img.size)} bytes) does not fit between min_addr ${hex(r.min_addr)} and max_addr ${hex(r.max_addr)}`, { image, field: "max_addr" });
  }
}

/** Plans the image at `base` (its own address, or a relocatable image's chosen one). */
export async function planMultiboot2(ctx: FormatContext, img: Multiboot2Image, base: number): Promise<LoadPlan<Multiboot2Result>> {
  const image = ctx.file.name;
  const h = img.header;
  if (ctx.relocs !== undefined) {
    throw new GuestImageError("BAD_ARGUMENT", "relocs data applies to relocatable ELF kernels; a Multiboot2 kernel is moved whole or not at all", { image, field: "relocs" });
  }
  const delta = base - img.link_base;
  let entry: number;
  let plan: LoadPlan<unknown>;
  let elfInfo: Multiboot2KernelArch["elf"] = null;
  if (h.address) {
    const a = h.address;
    entry = h.entry_addr!;
    plan = {
      name: image, file: ctx.file, paddr: base, size: img.size,
      copies: a.load_size > 0 ? [{ dst: base, src: a.load_offset, len: a.load_size }] : [],
      zeros: a.bss_size > 0 ? [{ dst: base + a.load_size, len: a.bss_size }] : [],
      relocs: [], patchable: [], result: null,
    };
  } else {
    const elf = img.elf!;
    const eh = elf.header;
    if (h.entry_addr !== null) {
      // GRUB: the entry address tag, when present, overrides e_entry. It is physical.
      entry = h.entry_addr;
      if (!elf.loads.some((s) => BigInt(entry) >= s.paddr && BigInt(entry) < s.paddr + s.memsz)) {
        throw new GuestImageError("BAD_HEADER", `entry_addr ${hex(entry)} is inside no PT_LOAD segment's physical range`, { image, field: "entry_addr" });
      }
    } else {
      // As GRUB (multiboot_elfxx.c): e_entry translated from the virtual to the physical address of
      // the segment holding it, since the kernel starts with paging off.
      const seg = elf.loads.find((s) => eh.entry >= s.vaddr && eh.entry < s.vaddr + s.memsz);
      if (!seg) throw new GuestImageError("BAD_HEADER", `e_entry ${hex(eh.entry)} is inside no PT_LOAD segment's virtual range`, { image, field: "e_entry" });
      entry = toSafe(eh.entry - seg.vaddr + seg.paddr, "entry (physical)", { image });
    }
    // The ELF planned where it was linked (no relocations: delta 0), then moved whole.
    const own = await planElf(ctx.file, elf);
    plan = {
      ...own,
      paddr: own.paddr + delta,
      copies: own.copies.map((c) => ({ ...c, dst: c.dst + delta })),
      zeros: own.zeros.map((z) => ({ ...z, dst: z.dst + delta })),
      relocs: [],
    };
    elfInfo = { class: eh.class === 64 ? "ELF64" : "ELF32", machine: own.result.arch.machine, e_entry: eh.entry, shoff: eh.shoff, shnum: eh.shnum, shentsize: eh.shentsize, shstrndx: eh.shstrndx };
  }
  const relocatedEntry = entry + delta;
  if (relocatedEntry < 0 || relocatedEntry >= FOUR_GIB) {
    throw new GuestImageError("BAD_ADDRESS", `entry ${hex(relocatedEntry)} is not a 32-bit address`, { image, field: "entry" });
  }
  const arch: Multiboot2KernelArch = {
    format: "multiboot2",
    entry: BigInt(relocatedEntry),
    magic_eax: MULTIBOOT2_BOOTLOADER_MAGIC,
    architecture: h.architecture === MB2_ARCH_I386 ? "i386" : "mips32",
    header_offset: h.offset,
    header_length: h.header_length,
    loaded_by: h.address ? "address-tag" : "elf",
    link_base: img.link_base,
    load_base: base,
    size: img.size,
    relocatable: h.relocatable,
    required_info: h.required_info,
    optional_info: h.optional_info,
    console_flags: h.console_flags,
    console_required: h.console_required,
    framebuffer: h.framebuffer,
    module_align: h.module_align,
    efi_boot_services: h.efi_boot_services,
    ignored_tags: h.ignored_tags,
    address: h.address,
    entry_addr: h.entry_addr,
    elf: elfInfo,
  };
  return { ...plan, result: { format: "multiboot2", entry: arch.entry, arch } };
}

function isLinuxBootProtocol(head: Uint8Array): boolean {
  return head.length >= HDRS_OFFSET + 4 && u32(head, HDRS_OFFSET) === HDRS_MAGIC;
}

export const multiboot2Format: ImageFormat = {
  name: "multiboot2",
  description: "a Multiboot2 kernel",
  // As for Multiboot 1: a Linux bzImage is never taken for a Multiboot kernel.
  test: (head) => !isLinuxBootProtocol(head) && findMultiboot2Header(head) !== undefined,
  async planKernel(ctx) {
    const img = await readMultiboot2(ctx.file, ctx.head);
    return planMultiboot2(ctx, img, chooseMultiboot2Base(img, ctx));
  },
  async inspect(file: ImageFile, head: Uint8Array) {
    const h = parseMultiboot2Header(head, file.size, file.name);
    const multiboot2 = {
      header_offset: h.offset, architecture: h.architecture, header_length: h.header_length, checksum: h.checksum,
      tags: h.tags.map((t) => ({ type: t.type, flags: t.flags, size: t.size, offset: t.offset })),
      required_info: h.required_info, optional_info: h.optional_info, entry_addr: h.entry_addr,
      header_addr: h.address?.header_addr ?? null, load_addr: h.address?.load_addr ?? null, load_end_addr: h.address?.load_end_addr ?? null,
      bss_end_addr: h.address?.bss_end_addr ?? null, load_offset: h.address?.load_offset ?? null, load_size: h.address?.load_size ?? null,
      bss_size: h.address?.bss_size ?? null, console_flags: h.console_flags, framebuffer: h.framebuffer, module_align: h.module_align,
      efi_boot_services: h.efi_boot_services, relocatable: h.relocatable, ignored_tags: h.ignored_tags,
    };
    if (h.address) return { machine: h.architecture === MB2_ARCH_I386 ? "i386" : "mips", entry: BigInt(h.entry_addr!), multiboot2 };
    const elf = isElf(head) && elfFormat.inspect ? await elfFormat.inspect(file, head) : {};
    return { ...elf, multiboot2 };
  },
};
