// Format detection: one ordered table, first match wins. The order is the one the anchors
// converge on (reference/anchors.md): ELF, then the container and kernel formats, then raw.
import { isElf } from "./elf.js";
import { isFdt } from "./fdt.js";

export type FormatName = "elf" | "fdt" | "gzip" | "raw";

interface Detector {
  format: FormatName;
  /** Bytes of the file's start the test needs. */
  needs: number;
  test(head: Uint8Array): boolean;
}

const DETECTORS: Detector[] = [
  { format: "elf", needs: 4, test: isElf },
  // Not loadable as kernels, but recognised so the error can say what the file is.
  { format: "fdt", needs: 4, test: isFdt },
  { format: "gzip", needs: 2, test: (h) => h[0] === 0x1f && h[1] === 0x8b }, // RFC 1952 ID1 ID2
];

/** How many bytes of a file's start detect() looks at. */
export const DETECT_BYTES = Math.max(...DETECTORS.map((d) => d.needs));

export function detect(head: Uint8Array): FormatName {
  for (const d of DETECTORS) if (head.length >= d.needs && d.test(head)) return d.format;
  return "raw";
}
