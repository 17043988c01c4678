// ELF notes (System V gABI, "Note Section"), and the one a PVH loader looks for:
// XEN_ELFNOTE_PHYS32_ENTRY (type 18, owner "Xen"; xen/include/public/elfnote.h: "Physical entry
// point into the kernel. 32bit entry point into the kernel. When requested to launch the guest
// kernel in a HVM container, Xen will use this entry point to launch the guest in 32bit
// protected mode with paging disabled.").
//
// A note is { n_namesz u32, n_descsz u32, n_type u32 } in the file's byte order, then the name
// (n_namesz bytes including its NUL), padded, then the descriptor (n_descsz bytes), padded. The
// padding is the note's alignment, counted from the start of the (aligned) note: the descriptor
// at align_up(12 + n_namesz), the next note at align_up(end of descriptor). 4 bytes in the gABI's
// original text; 8 bytes for notes in an 8-aligned segment or section (the gABI's later wording, what binutils ≥ 2.31 emits for
// .note.gnu.property on x86-64, and what glibc/readelf honour by p_align/sh_addralign).
//
// Where loaders went wrong (what this file is written against):
//   - only the first PT_NOTE was read, while a kernel linked by a newer binutils has two (an
//     8-aligned one for .note.gnu.property before the 4-aligned .notes one) — cloud-hypervisor
//     #3222 ("KernelMissingPvhHeader" with Arch's toolchain), kata-containers #3145;
//   - notes were walked with 4-byte padding inside an 8-aligned segment, or with 8-byte padding
//     inside a 4-aligned one, so every note after the first was read at the wrong offset;
//   - a segment holding several notes was read as one.
// So: every PT_NOTE is walked (SHT_NOTE sections only when there is no PT_NOTE at all, e.g. a
// stripped-down image whose program headers omit it), each with its own alignment, every note in
// it. A note whose sizes run past its segment is an error naming the segment, the offset and the
// field; a PVH note whose descriptor is not 4 or 8 bytes, or whose address does not fit in 32
// bits, is refused.
import { GuestImageError } from "../errors.js";
import { hex } from "../num.js";
import { readBytes, type ImageFile } from "../sources/source.js";
import type { ElfImage } from "./elf.js";

const PT_NOTE = 4;
const SHT_NOTE = 7;
/** xen/include/public/elfnote.h. */
export const XEN_ELFNOTE_PHYS32_ENTRY = 18;
/** A note region larger than this is refused (a kernel's notes are a few hundred bytes). */
const MAX_NOTES_BYTES = 16 * 1024 * 1024;

export interface ElfNote {
  /** The owner name without its terminating NUL(s). */
  owner: string;
  type: number;
  desc: Uint8Array;
  /** File offset of the note header. */
  offset: number;
  /** "program header N" or "section N". */
  where: string;
}

interface Region {
  offset: bigint;
  size: bigint;
  align: bigint;
  where: string;
}

/** Every note of the image: all PT_NOTE segments, or, when there are none, all SHT_NOTE sections. */
export async function readElfNotes(file: ImageFile, elf: ElfImage): Promise<ElfNote[]> {
  let regions: Region[] = elf.segments.filter((s) => s.type === PT_NOTE).map((s) => ({ offset: s.offset, size: s.filesz, align: s.align, where: `program header ${s.index} (NOTE)` }));
  if (regions.length === 0) regions = await noteSections(file, elf);
  const out: ElfNote[] = [];
  for (const r of regions) out.push(...(await walk(file, elf, r)));
  return out;
}

async function noteSections(file: ImageFile, elf: ElfImage): Promise<Region[]> {
  const h = elf.header;
  const err = (field: string, msg: string) => new GuestImageError("BAD_HEADER", msg, { image: file.name, field });
  if (h.shoff === 0n || h.shnum === 0) return [];
  const is64 = h.class === 64;
  const entsize = is64 ? 64 : 40;
  if (h.shentsize !== entsize) throw err("e_shentsize", `e_shentsize ${h.shentsize} is not ${entsize}, the ELF${h.class} section header size`);
  const end = h.shoff + BigInt(h.shnum) * BigInt(entsize);
  if (end > BigInt(file.size)) {
    throw new GuestImageError("TRUNCATED", `e_shoff ${hex(h.shoff)} + e_shnum ${h.shnum} × ${entsize} = ${hex(end)} runs past the end of the file (${hex(file.size)} bytes)`, { image: file.name, field: "e_shoff" });
  }
  const b = await readBytes(file, Number(h.shoff), h.shnum * entsize);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const le = !h.bigEndian;
  const regions: Region[] = [];
  for (let i = 0; i < h.shnum; i++) {
    const o = i * entsize;
    const type = dv.getUint32(o + 4, le);
    if (type !== SHT_NOTE) continue;
    const offset = is64 ? dv.getBigUint64(o + 24, le) : BigInt(dv.getUint32(o + 16, le));
    const size = is64 ? dv.getBigUint64(o + 32, le) : BigInt(dv.getUint32(o + 20, le));
    const align = is64 ? dv.getBigUint64(o + 48, le) : BigInt(dv.getUint32(o + 32, le));
    regions.push({ offset, size, align, where: `section ${i} (SHT_NOTE)` });
  }
  return regions;
}

async function walk(file: ImageFile, elf: ElfImage, r: Region): Promise<ElfNote[]> {
  const image = file.name;
  if (r.size === 0n) return [];
  if (r.size > BigInt(MAX_NOTES_BYTES)) throw new GuestImageError("TOO_LARGE", `${r.where}: ${hex(r.size)} bytes of notes (more than ${hex(MAX_NOTES_BYTES)})`, { image, field: "p_filesz" });
  if (r.offset + r.size > BigInt(file.size)) {
    throw new GuestImageError("TRUNCATED", `${r.where}: offset ${hex(r.offset)} + size ${hex(r.size)} = ${hex(r.offset + r.size)} runs past the end of the file (${hex(file.size)} bytes)`, { image, field: "p_offset" });
  }
  const base = Number(r.offset);
  const bytes = await readBytes(file, base, Number(r.size));
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const le = !elf.header.bigEndian;
  // gABI: 8-byte padding in an 8-aligned region, 4 otherwise (0, 1, 2 and 4 all mean 4).
  const pad = r.align === 8n ? 8 : 4;
  const up = (n: number) => Math.ceil(n / pad) * pad;
  const notes: ElfNote[] = [];
  let pos = 0;
  // Fewer than 12 bytes left is trailing padding, not a note.
  while (pos + 12 <= bytes.length) {
    const namesz = dv.getUint32(pos, le);
    const descsz = dv.getUint32(pos + 4, le);
    const type = dv.getUint32(pos + 8, le);
    const at = `${r.where}, note at file offset ${hex(base + pos)}`;
    const nameAt = pos + 12;
    // The descriptor starts at the next `pad` boundary after the name (readelf/binutils
    // ELF_NOTE_DESC_OFFSET: align_up(12 + n_namesz, align)); with 8-byte notes the 12-byte header
    // and a 4-byte "GNU\0" end exactly on one.
    const descAt = up(nameAt + namesz);
    if (descAt > bytes.length) {
      throw new GuestImageError("BAD_HEADER", `${at}: n_namesz ${hex(namesz)} runs past the end of its ${hex(bytes.length)}-byte region`, { image, field: "n_namesz" });
    }
    if (descAt + descsz > bytes.length) {
      throw new GuestImageError("BAD_HEADER", `${at}: n_descsz ${hex(descsz)} runs past the end of its ${hex(bytes.length)}-byte region`, { image, field: "n_descsz" });
    }
    let nameEnd = nameAt + namesz;
    while (nameEnd > nameAt && bytes[nameEnd - 1] === 0) nameEnd--;
    const owner = String.fromCharCode(...bytes.subarray(nameAt, nameEnd));
    notes.push({ owner, type, desc: bytes.slice(descAt, descAt + descsz), offset: base + pos, where: r.where });
    // The last note's descriptor padding may be cut off by the region's end.
    pos = Math.min(descAt + up(descsz), bytes.length);
  }
  return notes;
}

export interface PvhEntry {
  /** Physical address of the 32-bit PVH entry point. */
  entry: number;
  note: ElfNote;
}

/**
 * XEN_ELFNOTE_PHYS32_ENTRY, or null when the image has none. Linux emits it as a pointer-sized
 * value (8 bytes on x86-64, 4 on i386: `_ASM_PTR`), other kernels as `.long`: both are read.
 */
export async function findPvhEntry(file: ImageFile, elf: ElfImage): Promise<PvhEntry | null> {
  const notes = await readElfNotes(file, elf);
  const pvh = notes.filter((n) => n.owner === "Xen" && n.type === XEN_ELFNOTE_PHYS32_ENTRY);
  if (pvh.length === 0) return null;
  const le = !elf.header.bigEndian;
  const value = (n: ElfNote): number => {
    const dv = new DataView(n.desc.buffer, n.desc.byteOffset, n.desc.byteLength);
    if (n.desc.length !== 4 && n.desc.length !== 8) {
      throw new GuestImageError("BAD_HEADER", `${n.where}, note at file offset ${hex(n.offset)}: XEN_ELFNOTE_PHYS32_ENTRY's n_descsz is ${n.desc.length}, not 4 or 8`, { image: file.name, field: "n_descsz" });
    }
    const v = n.desc.length === 4 ? BigInt(dv.getUint32(0, le)) : dv.getBigUint64(0, le);
    if (v > 0xffffffffn) {
      throw new GuestImageError("BAD_HEADER", `${n.where}, note at file offset ${hex(n.offset)}: XEN_ELFNOTE_PHYS32_ENTRY ${hex(v)} is not a 32-bit physical address`, { image: file.name, field: "desc" });
    }
    return Number(v);
  };
  const entry = value(pvh[0]);
  for (const n of pvh.slice(1)) {
    const v = value(n);
    if (v !== entry) {
      throw new GuestImageError("BAD_HEADER", `two XEN_ELFNOTE_PHYS32_ENTRY notes disagree: ${hex(entry)} (file offset ${hex(pvh[0].offset)}) and ${hex(v)} (file offset ${hex(n.offset)})`, { image: file.name, field: "desc" });
    }
  }
  return { entry, note: pvh[0] };
}
