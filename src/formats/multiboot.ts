// Multiboot 1 kernels (GNU Multiboot Specification version 0.6.96, "3.1 OS image format").
//
// The image carries a Multiboot header somewhere in its first 8192 bytes, 32-bit aligned:
// magic 0x1BADB002, flags, checksum (magic + flags + checksum ≡ 0 mod 2^32). With flags bit 16
// the header's address fields say where the image goes ("a.out kludge"); without it the image
// must be an ELF and is loaded from its program headers. Either way the kernel is not
// relocatable: it goes where its headers say, and a different requested address is refused.
// The boot state the caller establishes (spec 3.2 "Machine state"): 32-bit protected mode,
// paging off, EAX = 0x2BADB002, EBX = physical address of the Multiboot information structure
// (see src/boot/multiboot-info.ts for a builder), EIP = the entry this plan reports.
//
// Header checks follow crosvm kernel_loader/src/multiboot.rs and the QEMU fixes for
// CVE-2017-14167 (integer overflow in hw/i386/multiboot.c header arithmetic) and
// GHSA-f49v-45qp-cv53 (load_end_addr > bss_end_addr); all arithmetic is done on exact JS
// integers and compared with the 32-bit address space explicitly, so nothing wraps.
import { GuestImageError, type ErrorCode } from "../errors.js";
import { hex, toSafe } from "../num.js";
import type { LoadPlan } from "../plan.js";
import type { ImageFile } from "../sources/source.js";
import { elfFormat, isElf, planElf, readElf, type ElfImage } from "./elf.js";
import type { FormatContext, ImageFormat } from "./format.js";

/** Spec 3.1.2 "The magic fields of Multiboot header": the header's magic. */
export const MULTIBOOT_HEADER_MAGIC = 0x1badb002;
/** Spec 3.2 "Machine state": the value in EAX when the kernel is entered. */
export const MULTIBOOT_BOOTLOADER_MAGIC = 0x2badb002;
/** Spec 3.1.1: the header lies completely within the first 8192 bytes of the image. */
export const MULTIBOOT_SEARCH = 8192;
/** Spec 3.1.1: the header is 32-bit aligned. */
const HEADER_ALIGN = 4;

// Spec 3.1.2, flags. Bits 0-15 are requirements: a boot loader that does not understand one
// "must fail". Bits 16-31 are optional features it may ignore.
export const MB_PAGE_ALIGN = 1 << 0; // boot modules aligned on 4 KiB page boundaries
export const MB_MEMORY_INFO = 1 << 1; // mem_* (and mmap_*, if available) must be provided
export const MB_VIDEO_MODE = 1 << 2; // video mode table information must be provided
export const MB_AOUT_KLUDGE = 1 << 16; // the address fields at offsets 12-28 are valid
const KNOWN_REQUIRED = MB_PAGE_ALIGN | MB_MEMORY_INFO | MB_VIDEO_MODE;

/** Spec 3.1.1 "OS image format", header layout: byte offsets from the magic. */
const OFF = {
  magic: 0, flags: 4, checksum: 8,
  header_addr: 12, load_addr: 16, load_end_addr: 20, bss_end_addr: 24, entry_addr: 28, // bit 16
  mode_type: 32, width: 36, height: 40, depth: 44, // bit 2
} as const;

const FOUR_GIB = 2 ** 32;
const EM_386 = 3; // gABI e_machine: Intel 80386
const EM_X86_64 = 62; // gABI e_machine: AMD x86-64

/** x86 Linux boot protocol "HdrS" at 0x202 (Documentation/arch/x86/boot.rst, setup header). */
const HDRS_OFFSET = 0x202;
const HDRS_MAGIC = 0x53726448;

/** A header whose magic and checksum are right (its other fields are not checked yet). */
export interface MultibootHeaderLocation {
  /** File offset of the magic. */
  offset: number;
  flags: number;
  checksum: number;
}

const u32 = (b: Uint8Array, o: number) => new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(o, true);

/** True for an x86 Linux bzImage/zImage with a boot protocol ≥ 2.00 setup header. */
function isLinuxBootProtocol(head: Uint8Array): boolean {
  return head.length >= HDRS_OFFSET + 4 && u32(head, HDRS_OFFSET) === HDRS_MAGIC;
}

/**
 * The first 4-byte-aligned offset in the first 8192 bytes holding the magic with a valid
 * checksum (spec 3.1.1-3.1.2), or undefined. A magic with a wrong checksum is not a header.
 */
export function findMultibootHeader(head: Uint8Array): MultibootHeaderLocation | undefined {
  const end = Math.min(head.length, MULTIBOOT_SEARCH);
  for (let o = 0; o + 12 <= end; o += HEADER_ALIGN) {
    if (u32(head, o) !== MULTIBOOT_HEADER_MAGIC) continue;
    const flags = u32(head, o + OFF.flags);
    const checksum = u32(head, o + OFF.checksum);
    if (((MULTIBOOT_HEADER_MAGIC + flags + checksum) >>> 0) === 0) return { offset: o, flags, checksum };
  }
  return undefined;
}

/** The a.out-kludge load: where the file's bytes go and what is zeroed after them. */
export interface MultibootAoutLoad {
  header_addr: number;
  load_addr: number;
  load_end_addr: number;
  bss_end_addr: number;
  entry_addr: number;
  /** File offset of the first loaded byte: header offset − (header_addr − load_addr). */
  load_offset: number;
  /** Bytes copied from the file (load_end_addr − load_addr, or to the end of the file). */
  load_size: number;
  /** End of the loaded bytes in guest memory (load_addr + load_size), ≤ 4 GiB. */
  load_end: number;
  /** Bytes zeroed after load_end (bss_end_addr − load_end, or 0). */
  bss_size: number;
}

export interface MultibootVideoMode {
  /** 0: linear graphics mode, 1: EGA-standard text mode (spec 3.1.4). */
  mode_type: number;
  width: number;
  height: number;
  depth: number;
}

/** A validated Multiboot header. */
export interface MultibootHeader {
  offset: number;
  flags: number;
  checksum: number;
  requirements: { page_align_modules: boolean; memory_info: boolean; video_mode: boolean };
  /** Bits 16-31 set other than 16: optional features this loader ignores (spec 3.1.2). */
  ignored_flags: number;
  /** Present when flags bit 16 is set. */
  aout: MultibootAoutLoad | null;
  /** Present when flags bit 2 is set. */
  video: MultibootVideoMode | null;
}

/**
 * Validates the header found in `head` (the file's first bytes, up to 8192) of a file of
 * `size` bytes. Throws GuestImageError on the first field that breaks the spec.
 */
export function parseMultibootHeader(head: Uint8Array, size: number, image: string): MultibootHeader {
  const loc = findMultibootHeader(head);
  if (!loc) {
    throw new GuestImageError("BAD_MAGIC", `no Multiboot header (magic ${hex(MULTIBOOT_HEADER_MAGIC)} with a valid checksum, 4-byte aligned) in the first ${MULTIBOOT_SEARCH} bytes`, { image, field: "magic" });
  }
  const { offset, flags, checksum } = loc;
  const fail = (code: ErrorCode, field: string, msg: string): never => {
    throw new GuestImageError(code, `Multiboot header at file offset ${hex(offset)}: ${msg}`, { image, field });
  };

  // Spec 3.1.2: bits 0-15 are requirements; a boot loader that sees one set that it does not
  // understand (or cannot meet) must tell the user and fail to load the image.
  const unknown = flags & 0xffff & ~KNOWN_REQUIRED;
  if (unknown !== 0) {
    const bit = 31 - Math.clz32(unknown & -unknown);
    fail("UNSUPPORTED", "flags", `flags ${hex(flags)}: unknown required flag bit ${bit} (bits 0-15 are requirements; this loader knows bits 0, 1 and 2)`);
  }

  // The fields a header uses sit at fixed offsets (spec 3.1.1): 12 bytes, 32 with the address
  // fields, 48 with the graphics fields. All of them lie within the first 8192 bytes.
  const need = flags & MB_VIDEO_MODE ? 48 : flags & MB_AOUT_KLUDGE ? 32 : 12;
  if (offset + need > MULTIBOOT_SEARCH) {
    fail("BAD_HEADER", "flags", `flags ${hex(flags)} need a ${need}-byte header, which runs past the first ${MULTIBOOT_SEARCH} bytes of the image`);
  }
  if (offset + need > size || offset + need > head.length) {
    fail("TRUNCATED", "flags", `flags ${hex(flags)} need a ${need}-byte header, which runs past the end of the file (${hex(size)} bytes)`);
  }
  const field = (name: keyof typeof OFF) => u32(head, offset + OFF[name]);

  let aout: MultibootAoutLoad | null = null;
  if (flags & MB_AOUT_KLUDGE) {
    // Spec 3.1.3 "The address fields of Multiboot header"; every address is a physical u32.
    const header_addr = field("header_addr");
    const load_addr = field("load_addr");
    const load_end_addr = field("load_end_addr");
    const bss_end_addr = field("bss_end_addr");
    const entry_addr = field("entry_addr");
    // "load_addr must be less than or equal to header_addr." (Unchecked, header_addr − load_addr
    // wraps in u32: CVE-2017-14167.)
    if (header_addr < load_addr) {
      fail("BAD_HEADER", "header_addr", `header_addr ${hex(header_addr)} is below load_addr ${hex(load_addr)}`);
    }
    // "The offset in the OS image file at which to start loading is defined by the offset at
    // which the header was found, minus (header_addr - load_addr)."
    const load_offset = offset - (header_addr - load_addr);
    if (load_offset < 0) {
      fail("BAD_HEADER", "load_addr", `load_addr ${hex(load_addr)} is ${hex(header_addr - load_addr)} bytes before header_addr ${hex(header_addr)}, but the header is only ${hex(offset)} bytes into the file: loading would start before the file`);
    }
    // "If this field is zero, the boot loader assumes that the text and data segments occupy the
    // whole OS image file."
    let load_size: number;
    if (load_end_addr === 0) {
      load_size = size - load_offset;
    } else {
      if (load_end_addr < load_addr) {
        fail("BAD_HEADER", "load_end_addr", `load_end_addr ${hex(load_end_addr)} is below load_addr ${hex(load_addr)}`);
      }
      load_size = load_end_addr - load_addr;
      if (load_offset + load_size > size) {
        fail("TRUNCATED", "load_end_addr", `load_end_addr ${hex(load_end_addr)}: the ${hex(load_size)} bytes to load from file offset ${hex(load_offset)} run past the end of the file (${hex(size)} bytes)`);
      }
    }
    const load_end = load_addr + load_size; // exact: both < 2^33
    if (load_end > FOUR_GIB) {
      fail("BAD_HEADER", "load_addr", `load_addr ${hex(load_addr)} + ${hex(load_size)} bytes to load (load_end_addr 0: to the end of the file) ends at ${hex(load_end)}, past the 32-bit address space`);
    }
    // "bss_end_addr ... If this field is zero, the boot loader assumes that no bss segment is
    // present." The BSS follows the loaded bytes, so it cannot end before them
    // (GHSA-f49v-45qp-cv53: load_end_addr > bss_end_addr overflowed QEMU's buffer).
    let bss_size = 0;
    if (bss_end_addr !== 0) {
      if (bss_end_addr < load_end) {
        fail("BAD_HEADER", "bss_end_addr", `bss_end_addr ${hex(bss_end_addr)} is below the end of the loaded bytes ${hex(load_end)} (load_end_addr ${hex(load_end_addr)})`);
      }
      bss_size = bss_end_addr - load_end;
    }
    // crosvm: the entry must be a loaded byte, [load_addr, load_end) — not in the BSS, which is
    // zero-filled, and not outside the image.
    if (entry_addr < load_addr || entry_addr >= load_end) {
      fail("BAD_HEADER", "entry_addr", `entry_addr ${hex(entry_addr)} is outside the loaded bytes [${hex(load_addr)}, ${hex(load_end)})`);
    }
    aout = { header_addr, load_addr, load_end_addr, bss_end_addr, entry_addr, load_offset, load_size, load_end, bss_size };
  }

  // Spec 3.1.4 "The graphics fields of Multiboot header" (valid when bit 2 is set).
  const video = flags & MB_VIDEO_MODE
    ? { mode_type: field("mode_type"), width: field("width"), height: field("height"), depth: field("depth") }
    : null;
  return {
    offset, flags, checksum,
    requirements: { page_align_modules: (flags & MB_PAGE_ALIGN) !== 0, memory_info: (flags & MB_MEMORY_INFO) !== 0, video_mode: (flags & MB_VIDEO_MODE) !== 0 },
    ignored_flags: (flags & ~0xffff & ~MB_AOUT_KLUDGE) >>> 0,
    aout,
    video,
  };
}

/** The delegated ELF's facts, when the kernel is loaded through its program headers. */
export interface MultibootElfInfo {
  class: "ELF32" | "ELF64";
  machine: string;
  type: string;
  e_entry: bigint;
  segments: Array<{ index: number; offset: bigint; vaddr: bigint; paddr: bigint; filesz: bigint; memsz: bigint; flags: number; load_paddr: bigint }>;
}

/** What a Multiboot kernel reports in `kernel_image_arch`. */
export interface MultibootKernelArch {
  format: "multiboot";
  /** Physical address to jump to (entry_addr, or e_entry translated to physical). */
  entry: bigint;
  /** EAX at entry (spec 3.2); EBX holds the Multiboot information structure's address. */
  magic_eax: number;
  flags: number;
  header_offset: number;
  header_addr: number | null;
  load_addr: number | null;
  load_end_addr: number | null;
  bss_end_addr: number | null;
  entry_addr: number | null;
  mode_type: number | null;
  width: number | null;
  height: number | null;
  depth: number | null;
  requirements: { page_align_modules: boolean; memory_info: boolean; video_mode: boolean };
  ignored_flags: number;
  /** How the image was loaded: by the header's address fields, or by its ELF program headers. */
  loaded_by: "address-fields" | "elf";
  elf: MultibootElfInfo | null;
}

export interface MultibootResult {
  format: "multiboot";
  entry: bigint;
  arch: MultibootKernelArch;
}

function archOf(h: MultibootHeader, entry: bigint, elf: MultibootElfInfo | null): MultibootKernelArch {
  const a = h.aout;
  return {
    format: "multiboot",
    entry,
    magic_eax: MULTIBOOT_BOOTLOADER_MAGIC,
    flags: h.flags,
    header_offset: h.offset,
    header_addr: a?.header_addr ?? null,
    load_addr: a?.load_addr ?? null,
    load_end_addr: a?.load_end_addr ?? null,
    bss_end_addr: a?.bss_end_addr ?? null,
    entry_addr: a?.entry_addr ?? null,
    mode_type: h.video?.mode_type ?? null,
    width: h.video?.width ?? null,
    height: h.video?.height ?? null,
    depth: h.video?.depth ?? null,
    requirements: h.requirements,
    ignored_flags: h.ignored_flags,
    loaded_by: a ? "address-fields" : "elf",
    elf,
  };
}

/** Multiboot kernels are not relocatable: a requested address must be the image's own. */
function checkPlacement(ctx: FormatContext, own: number, what: string): void {
  const image = ctx.file.name;
  if (ctx.relocs !== undefined) {
    throw new GuestImageError("BAD_ARGUMENT", "relocs data applies to relocatable ELF kernels; a Multiboot kernel is loaded at its own address", { image, field: "relocs" });
  }
  if (ctx.at !== undefined && ctx.at !== own) {
    throw new GuestImageError("BAD_ADDRESS", `a Multiboot kernel is not relocatable: it loads at ${what} ${hex(own)}, not at the requested ${hex(ctx.at)}`, { image, field: "at" });
  }
  if (ctx.at === undefined && ctx.align > 1 && own % ctx.align !== 0) {
    throw new GuestImageError("BAD_ADDRESS", `a Multiboot kernel is not relocatable: its ${what} ${hex(own)} does not meet the requested alignment ${hex(ctx.align)}`, { image, field: "alignment" });
  }
}

function planAout(ctx: FormatContext, h: MultibootHeader, a: MultibootAoutLoad): LoadPlan<MultibootResult> {
  checkPlacement(ctx, a.load_addr, "load_addr");
  const entry = BigInt(a.entry_addr);
  return {
    name: ctx.file.name,
    file: ctx.file,
    paddr: a.load_addr,
    size: a.load_size + a.bss_size,
    // Spec 3.1.3: copy [load_offset, +load_size) of the file to load_addr, zero up to bss_end_addr.
    copies: a.load_size > 0 ? [{ dst: a.load_addr, src: a.load_offset, len: a.load_size }] : [],
    zeros: a.bss_size > 0 ? [{ dst: a.load_end, len: a.bss_size }] : [],
    relocs: [],
    patchable: [],
    result: { format: "multiboot", entry, arch: archOf(h, entry, null) },
  };
}

/**
 * Spec 3.1.3 ("If bit 16 ... is clear, the boot loader uses the ELF header"): the PT_LOAD
 * segments at p_paddr, BSS zeroed. Like GRUB (grub-core/loader/multiboot_elfxx.c) the entry is
 * e_entry translated from the virtual to the physical address of the segment holding it, since
 * the kernel starts with paging off.
 */
async function planMultibootElf(ctx: FormatContext, h: MultibootHeader): Promise<LoadPlan<MultibootResult>> {
  const image = ctx.file.name;
  if (!isElf(ctx.head)) {
    throw new GuestImageError("BAD_HEADER", `Multiboot header at file offset ${hex(h.offset)}: flags ${hex(h.flags)} bit 16 clear and not an ELF image, so there is no way to know where to load it`, { image, field: "flags" });
  }
  const elf: ElfImage = await readElf(ctx.file);
  const eh = elf.header;
  // Multiboot 0.6.96's machine state is i386 protected mode. QEMU (hw/i386/multiboot.c) refuses
  // 64-bit ELFs ("Cannot load x86-64 image, give a 32bit one"), but GRUB's multiboot loader
  // (grub-core/loader/multiboot_elfxx.c, built for ELF32 and ELF64) takes an ELF64 x86-64 image
  // whose segments all lie below 4 GiB, entering its 32-bit code the same way: so do we.
  const elf32 = eh.class === 32 && eh.machine === EM_386;
  const elf64 = eh.class === 64 && eh.machine === EM_X86_64;
  if (eh.bigEndian || !(elf32 || elf64)) {
    throw new GuestImageError("UNSUPPORTED", `a Multiboot ELF kernel must be little-endian ELF32 i386 (e_machine 3) or ELF64 x86-64 (e_machine 62), this one is ELF${eh.class} e_machine ${eh.machine}${eh.bigEndian ? ", big-endian" : ""}`, { image, field: "e_machine" });
  }
  if (elf.loads.length === 0) {
    throw new GuestImageError("BAD_HEADER", "the ELF has no PT_LOAD segment to load", { image, field: "e_phnum" });
  }
  let link = elf.loads[0].paddr;
  for (const s of elf.loads) {
    if (s.paddr < link) link = s.paddr;
    // The kernel runs in 32-bit protected mode with paging off: every byte must be below 4 GiB.
    if (s.paddr + s.memsz > BigInt(FOUR_GIB)) {
      throw new GuestImageError("BAD_HEADER", `program header ${s.index} (LOAD) [${hex(s.paddr)}, ${hex(s.paddr + s.memsz)}) crosses 4 GiB`, { image, field: "p_memsz" });
    }
  }
  const seg = elf.loads.find((s) => eh.entry >= s.vaddr && eh.entry < s.vaddr + s.memsz);
  if (!seg) {
    throw new GuestImageError("BAD_HEADER", `e_entry ${hex(eh.entry)} is inside no PT_LOAD segment's virtual range`, { image, field: "e_entry" });
  }
  const entry = eh.entry - seg.vaddr + seg.paddr;
  if (entry >= BigInt(FOUR_GIB)) {
    throw new GuestImageError("BAD_HEADER", `e_entry ${hex(eh.entry)} is at physical ${hex(entry)}, above 4 GiB: a Multiboot kernel starts in 32-bit mode`, { image, field: "e_entry" });
  }
  checkPlacement(ctx, toSafe(link, "link address (lowest p_paddr)", { image }), "lowest p_paddr");
  const plan = await planElf(ctx.file, elf);
  const ea = plan.result.arch;
  const info: MultibootElfInfo = {
    class: ea.class, machine: ea.machine, type: ea.type, e_entry: eh.entry,
    segments: ea.segments.map(({ index, offset, vaddr, paddr, filesz, memsz, flags, load_paddr }) => ({ index, offset, vaddr, paddr, filesz, memsz, flags, load_paddr })),
  };
  return { ...plan, result: { format: "multiboot", entry, arch: archOf(h, entry, info) } };
}

export const multibootFormat: ImageFormat = {
  name: "multiboot",
  description: "a Multiboot kernel",
  // A Linux bzImage is never taken for a Multiboot kernel, whatever its payload holds: QEMU's
  // x86 -kernel checks "HdrS" before it scans for a Multiboot header (hw/i386/x86-common.c).
  test: (head) => !isLinuxBootProtocol(head) && findMultibootHeader(head) !== undefined,
  async planKernel(ctx) {
    const h = parseMultibootHeader(ctx.head, ctx.file.size, ctx.file.name);
    return h.aout ? planAout(ctx, h, h.aout) : planMultibootElf(ctx, h);
  },
  async inspect(file: ImageFile, head: Uint8Array) {
    const h = parseMultibootHeader(head, file.size, file.name);
    const a = h.aout;
    const multiboot = {
      header_offset: h.offset, flags: h.flags, checksum: h.checksum, requirements: h.requirements, ignored_flags: h.ignored_flags,
      header_addr: a?.header_addr ?? null, load_addr: a?.load_addr ?? null, load_end_addr: a?.load_end_addr ?? null,
      bss_end_addr: a?.bss_end_addr ?? null, entry_addr: a?.entry_addr ?? null,
      load_offset: a?.load_offset ?? null, load_size: a?.load_size ?? null, bss_size: a?.bss_size ?? null,
      mode_type: h.video?.mode_type ?? null, width: h.video?.width ?? null, height: h.video?.height ?? null, depth: h.video?.depth ?? null,
    };
    if (a) return { machine: "i386", entry: BigInt(a.entry_addr), multiboot };
    // Without the address fields the ELF headers say everything else.
    const elf = isElf(head) && elfFormat.inspect ? await elfFormat.inspect(file, head) : {};
    return { ...elf, multiboot };
  },
};
