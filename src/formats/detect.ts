// Format detection: one ordered table, first match wins. The order is the one the anchors
// converge on (reference/anchors.md, "Take-aways" 9): Multiboot 2 scan → Multiboot scan (x86) →
// ELF → bzImage "HdrS" → uImage → arm64/RISC-V magic at 0x38 (RISC-V v0.1 headers: "RISCV" at
// 0x30) → zImage magic at 0x24 → gzip → raw. Formats that are not kernels (device trees, cpio
// archives) sit in the table too, so a refusal can say what the file is.
//
// A kernel with both a Multiboot 2 and a Multiboot 1 header (Xen, for one) is booted as
// Multiboot 2: it is the newer protocol, the header the kernel's authors added last, and it carries
// more (memory map types, ELF64 containers, relocation). GRUB leaves the choice to its config
// (`multiboot2` or `multiboot`); here the format module can be called directly for the other one.
import { readBytes, type ImageFile } from "../sources/source.js";
import { arm64ImageFormat, riscvImageFormat } from "./arm64-image.js";
import { bzImageFormat } from "./bzimage.js";
import { elfFormat } from "./elf.js";
import { cpioFormat } from "./cpio.js";
import { fdtFormat } from "./fdt.js";
import { SNIFF_BYTES, type ImageFormat } from "./format.js";
import { multibootFormat } from "./multiboot.js";
import { multiboot2Format } from "./multiboot2.js";
import { gzipFormat } from "./gzip.js";
import { rawFormat } from "./raw.js";
import { uImageFormat } from "./uimage.js";
import { zbootFormat } from "./zboot.js";
import { zImageFormat } from "./zimage.js";

export const FORMATS: readonly ImageFormat[] = [
  // ── sniffing order: keep it as documented above ──
  multiboot2Format,
  multibootFormat,
  elfFormat,
  bzImageFormat,
  uImageFormat,
  zbootFormat,
  arm64ImageFormat,
  riscvImageFormat,
  zImageFormat,
  fdtFormat,
  cpioFormat,
  gzipFormat,
  // ── end ──
];

/** The first matching format, or raw. */
export function detect(head: Uint8Array, size: number): ImageFormat {
  return FORMATS.find((f) => f.test(head, size)) ?? rawFormat;
}

/** Reads a file's head and detects its format. */
export async function sniff(file: ImageFile): Promise<{ format: ImageFormat; head: Uint8Array }> {
  const head = await readBytes(file, 0, Math.min(SNIFF_BYTES, file.size));
  return { format: detect(head, file.size), head };
}
