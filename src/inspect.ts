// What a file is, from its headers alone (nothing is loaded): the `inspect` command and API.
import { GuestImageError } from "./errors.js";
import { detect, sniff } from "./formats/detect.js";
import type { ImageFile } from "./sources/source.js";

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
  format: string;
  description: string;
  size: number;
  machine: string | null;
  class: "ELF32" | "ELF64" | null;
  endian: "little" | "big" | null;
  entry: bigint | null;
  /** ELF: every program header, in file order. */
  segments?: InspectSegment[];
  /** Format-specific header fields. */
  [field: string]: unknown;
}

export async function inspectFile(file: ImageFile): Promise<Inspection> {
  if (!file || typeof file !== "object" || typeof file.read !== "function" || !Number.isSafeInteger(file.size)) {
    throw new GuestImageError("BAD_ARGUMENT", "inspectFile needs an ImageFile ({ name, size, read, close })", { field: "file" });
  }
  if (file.size === 0) throw new GuestImageError("TRUNCATED", "file is empty", { image: file.name });
  const { format, head } = await sniff(file);
  const base: Inspection = {
    name: file.name, format: format.name, description: format.description, size: file.size,
    machine: null, class: null, endian: null, entry: null,
  };
  if (!format.inspect) return base;
  const info: Record<string, unknown> = await format.inspect(file, head);
  // A container's decompressed first bytes: say what the payload is.
  const payloadHead = info.payloadHead;
  if (payloadHead instanceof Uint8Array) {
    delete info.payloadHead;
    const inner = detect(payloadHead, typeof info.decompressed_size === "number" ? info.decompressed_size : payloadHead.length);
    info.contents = inner.name;
    info.contentsDescription = inner.description;
  }
  return { ...base, ...info };
}
