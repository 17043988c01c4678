// A small PE/COFF reader: the headers and the section table, enough to find named sections of an
// EFI application (a Unified Kernel Image) in the file. Nothing here maps or relocates an image.
//
// Layout (Microsoft "PE Format", pe-format.md; UEFI images use it as is; all little-endian):
//   MS-DOS header: "MZ" at 0, e_lfanew (u32) at 0x3c = offset of the PE signature "PE\0\0".
//   COFF file header (20 bytes, after the signature): Machine u16, NumberOfSections u16,
//     TimeDateStamp u32, PointerToSymbolTable u32, NumberOfSymbols u32, SizeOfOptionalHeader u16,
//     Characteristics u16.
//   Optional header: Magic u16 (0x10b PE32, 0x20b PE32+), … AddressOfEntryPoint at +16,
//     ImageBase (+28 u32 for PE32, +24 u64 for PE32+), SectionAlignment +32, FileAlignment +36,
//     SizeOfImage +56, SizeOfHeaders +60.
//   Section table right after the optional header, 40 bytes per section: Name[8] (NUL-padded, or
//     "/<decimal>" = offset into the COFF string table for longer names), VirtualSize,
//     VirtualAddress, SizeOfRawData, PointerToRawData, PointerToRelocations,
//     PointerToLinenumbers (u32 each), NumberOfRelocations, NumberOfLinenumbers (u16),
//     Characteristics (u32).
// Every offset + size is checked against the file (and so against overflow: all values are u32
// and sums stay far below 2^53).
import { GuestImageError } from "../errors.js";
import { hex } from "../num.js";
import { readBytes, type ImageFile } from "../sources/source.js";

export const PE_DOS_MAGIC = 0x5a4d; // "MZ"
export const PE_SIGNATURE = 0x00004550; // "PE\0\0"
const COFF_HEADER_SIZE = 20;
export const PE_SECTION_HEADER_SIZE = 40;
/** pe-format.md: "the Windows loader limits the number of sections to 96". */
export const PE_MAX_SECTIONS = 96;
const OPT_MAGIC_PE32 = 0x10b;
const OPT_MAGIC_PE32_PLUS = 0x20b;

/** pe-format.md "Machine Types" (the ones EFI images use). */
const MACHINES: Record<number, string> = {
  0x14c: "i386", 0x8664: "x86_64", 0x1c0: "arm", 0x1c2: "thumb", 0x1c4: "armv7", 0xaa64: "aarch64",
  0x5032: "riscv32", 0x5064: "riscv64", 0x5128: "riscv128", 0x6232: "loongarch32", 0x6264: "loongarch64", 0xebc: "ebc",
};

export interface PeSection {
  /** The section's name (a long name resolved through the string table when possible). */
  name: string;
  /** Index in the section table (0-based). */
  index: number;
  virtual_size: number;
  virtual_address: number;
  size_of_raw_data: number;
  pointer_to_raw_data: number;
  characteristics: number;
}

export interface PeHeaders {
  pe_offset: number;
  machine: number;
  machine_name: string;
  number_of_sections: number;
  characteristics: number;
  magic: "PE32" | "PE32+";
  entry_point: number;
  image_base: bigint;
  section_alignment: number;
  file_alignment: number;
  size_of_image: number;
  size_of_headers: number;
  sections: PeSection[];
}

const u16 = (b: Uint8Array, o: number) => b[o] | (b[o + 1] << 8);
const u32 = (b: Uint8Array, o: number) => (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;

/**
 * Where the section table lies, from the first bytes alone, or null when `head` is not (or not
 * enough of) a PE. Used by detection, which must not throw.
 */
export function peSectionTable(head: Uint8Array): { at: number; count: number; optAt: number; optSize: number; peAt: number } | null {
  if (head.length < 0x40 || u16(head, 0) !== PE_DOS_MAGIC) return null;
  const peAt = u32(head, 0x3c);
  if (peAt > head.length - 4 - COFF_HEADER_SIZE || u32(head, peAt) !== PE_SIGNATURE) return null;
  const count = u16(head, peAt + 6);
  const optSize = u16(head, peAt + 20);
  const optAt = peAt + 4 + COFF_HEADER_SIZE;
  return { at: optAt + optSize, count, optAt, optSize, peAt };
}

/**
 * Names of the section headers that lie inside `head` (of NumberOfSections, however large: a
 * header that names a .linux there is a UKI to be refused, not a raw file); null when not a PE.
 */
export function peSectionNamesInHead(head: Uint8Array): string[] | null {
  const t = peSectionTable(head);
  if (!t) return null;
  const names: string[] = [];
  for (let i = 0; i < t.count && t.at + (i + 1) * PE_SECTION_HEADER_SIZE <= head.length; i++) names.push(shortName(head, t.at + i * PE_SECTION_HEADER_SIZE));
  return names;
}

function shortName(b: Uint8Array, o: number): string {
  let s = "";
  for (let i = 0; i < 8 && b[o + i] !== 0; i++) s += String.fromCharCode(b[o + i]);
  return s;
}

/** Reads and checks the PE headers and the section table of `file`. */
export async function readPe(file: ImageFile): Promise<PeHeaders> {
  const image = file.name;
  const err = (code: "BAD_MAGIC" | "TRUNCATED" | "BAD_HEADER" | "TOO_LARGE", field: string, msg: string) => new GuestImageError(code, msg, { image, field });
  if (file.size < 0x40) throw err("TRUNCATED", "e_lfanew", `file is ${file.size} bytes, shorter than the 64-byte MS-DOS header of a PE image`);
  const dos = await readBytes(file, 0, 0x40);
  if (u16(dos, 0) !== PE_DOS_MAGIC) throw err("BAD_MAGIC", "e_magic", `no "MZ" at offset 0 (found ${hex(u16(dos, 0))}): not a PE/COFF image`);
  const peAt = u32(dos, 0x3c);
  if (peAt < 0x40) {
    // pe-format.md puts the signature after the MS-DOS stub; a smaller e_lfanew overlaps the header.
    throw err("BAD_HEADER", "e_lfanew", `e_lfanew ${hex(peAt)} points inside the 64-byte MS-DOS header`);
  }
  if (peAt + 4 + COFF_HEADER_SIZE > file.size) {
    throw err("TRUNCATED", "e_lfanew", `e_lfanew ${hex(peAt)}: the PE signature and COFF header (24 bytes) run past the end of the file (${hex(file.size)} bytes)`);
  }
  const coff = await readBytes(file, peAt, 4 + COFF_HEADER_SIZE);
  const sig = u32(coff, 0);
  if (sig !== PE_SIGNATURE) throw err("BAD_MAGIC", "Signature", `no "PE\\0\\0" signature at e_lfanew ${hex(peAt)} (found ${hex(sig)})`);
  const machine = u16(coff, 4);
  const count = u16(coff, 6);
  const symtab = u32(coff, 12);
  const nsyms = u32(coff, 16);
  const optSize = u16(coff, 20);
  const characteristics = u16(coff, 22);
  if (count > PE_MAX_SECTIONS) throw err("TOO_LARGE", "NumberOfSections", `NumberOfSections is ${count}; PE images have at most ${PE_MAX_SECTIONS}`);
  const optAt = peAt + 4 + COFF_HEADER_SIZE;
  if (optSize < 64) throw err("BAD_HEADER", "SizeOfOptionalHeader", `SizeOfOptionalHeader is ${hex(optSize)}: an image's optional header has at least 64 bytes (up to SizeOfHeaders)`);
  const tableAt = optAt + optSize;
  const tableEnd = tableAt + count * PE_SECTION_HEADER_SIZE;
  if (tableEnd > file.size) {
    throw err("TRUNCATED", "NumberOfSections", `the section table [${hex(tableAt)}, ${hex(tableEnd)}) (${count} sections after SizeOfOptionalHeader ${hex(optSize)}) runs past the end of the file (${hex(file.size)} bytes)`);
  }
  const opt = await readBytes(file, optAt, optSize);
  const magic = u16(opt, 0);
  if (magic !== OPT_MAGIC_PE32 && magic !== OPT_MAGIC_PE32_PLUS) {
    throw err("BAD_MAGIC", "Magic", `optional header Magic is ${hex(magic)}, neither PE32 (0x10b) nor PE32+ (0x20b)`);
  }
  const plus = magic === OPT_MAGIC_PE32_PLUS;
  const imageBase = plus ? BigInt(u32(opt, 24)) | (BigInt(u32(opt, 28)) << 32n) : BigInt(u32(opt, 28));
  const sectionAlignment = u32(opt, 32);
  const fileAlignment = u32(opt, 36);
  const sizeOfImage = u32(opt, 56);
  const sizeOfHeaders = u32(opt, 60);
  const table = await readBytes(file, tableAt, count * PE_SECTION_HEADER_SIZE);
  // Long names: "/<decimal offset>" into the COFF string table after the symbol table (objcopy
  // writes them for names over 8 bytes). Resolved when the table is inside the file.
  let strtab: { at: number; size: number } | null = null;
  if (symtab !== 0) {
    const at = symtab + nsyms * 18;
    if (Number.isSafeInteger(at) && at + 4 <= file.size) {
      const size = u32(await readBytes(file, at, 4), 0);
      if (size >= 4 && at + size <= file.size) strtab = { at, size };
    }
  }
  const sections: PeSection[] = [];
  for (let i = 0; i < count; i++) {
    const o = i * PE_SECTION_HEADER_SIZE;
    let name = shortName(table, o);
    if (/^\/\d+$/.test(name) && strtab) {
      const off = Number(name.slice(1));
      if (off >= 4 && off < strtab.size) {
        const s = await readBytes(file, strtab.at + off, Math.min(256, strtab.size - off));
        const nul = s.indexOf(0);
        name = String.fromCharCode(...s.subarray(0, nul < 0 ? s.length : nul));
      }
    }
    const sec: PeSection = {
      name, index: i,
      virtual_size: u32(table, o + 8), virtual_address: u32(table, o + 12),
      size_of_raw_data: u32(table, o + 16), pointer_to_raw_data: u32(table, o + 20),
      characteristics: u32(table, o + 36),
    };
    if (sec.size_of_raw_data !== 0 && sec.pointer_to_raw_data + sec.size_of_raw_data > file.size) {
      throw err(
        "TRUNCATED",
        `sections[${i}].SizeOfRawData`,
        `section "${name}": raw data [sections[${i}].PointerToRawData ${hex(sec.pointer_to_raw_data)}, +sections[${i}].SizeOfRawData ${hex(sec.size_of_raw_data)}) runs past the end of the file (${hex(file.size)} bytes)`,
      );
    }
    sections.push(sec);
  }
  return {
    pe_offset: peAt, machine, machine_name: MACHINES[machine] ?? `unknown (${hex(machine)})`, number_of_sections: count, characteristics,
    magic: plus ? "PE32+" : "PE32", entry_point: u32(opt, 16), image_base: imageBase,
    section_alignment: sectionAlignment, file_alignment: fileAlignment, size_of_image: sizeOfImage, size_of_headers: sizeOfHeaders,
    sections,
  };
}
