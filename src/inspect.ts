// What a file is, from its headers alone (nothing is loaded): the `inspect` command and API.
import { GuestImageError } from "./errors.js";
import { detect, DETECT_BYTES, type FormatName } from "./formats/detect.js";
import { elfTypeName, machineName, readElf } from "./formats/elf.js";
import { checkFdtHeader, type FdtHeader } from "./formats/fdt.js";
import { readBytes, type ImageFile } from "./sources/source.js";

export interface InspectSegment {
  type: string;
  offset: bigint;
  vaddr: bigint;
  paddr: bigint;
  filesz: bigint;
  memsz: bigint;
  flags: string;
  align: bigint;
}

export interface Inspection {
  name: string;
  format: FormatName;
  size: number;
  machine: string | null;
  class: "ELF32" | "ELF64" | null;
  endian: "little" | "big" | null;
  entry: bigint | null;
  /** ELF: every program header, in file order. */
  segments?: InspectSegment[];
  elfType?: string;
  fdt?: FdtHeader;
}

const flagText = (f: number) => `${f & 4 ? "R" : " "}${f & 2 ? "W" : " "}${f & 1 ? "E" : " "}`;

export async function inspectFile(file: ImageFile): Promise<Inspection> {
  if (file.size === 0) throw new GuestImageError("TRUNCATED", "file is empty", { image: file.name });
  const format = detect(await readBytes(file, 0, Math.min(DETECT_BYTES, file.size)));
  const base: Inspection = { name: file.name, format, size: file.size, machine: null, class: null, endian: null, entry: null };
  if (format === "elf") {
    const elf = await readElf(file);
    const h = elf.header;
    return {
      ...base,
      machine: machineName(h.machine),
      class: h.class === 64 ? "ELF64" : "ELF32",
      endian: h.bigEndian ? "big" : "little",
      entry: h.entry,
      elfType: elfTypeName(h.type),
      segments: elf.segments.map((s) => ({
        type: s.typeName, offset: s.offset, vaddr: s.vaddr, paddr: s.paddr, filesz: s.filesz, memsz: s.memsz, flags: flagText(s.flags), align: s.align,
      })),
    };
  }
  if (format === "fdt") return { ...base, fdt: await checkFdtHeader(file) };
  return base;
}
