// Synthetic files shared by the image test server (Node) and the tests (Node and Chromium), so
// both sides build the same bytes without shipping them. Pure TypeScript: no Node built-ins.
import { writeElf } from "../../helpers/elf-writer.js";

export const MiB = 1024 * 1024;

/** A deterministic byte pattern that differs at every offset a test might confuse with another. */
export function pattern(size: number, seed = 0): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = (Math.imul(i + seed, 0x9e3779b1) >>> 24) ^ (i >>> 16);
  return out;
}

/** Bigger than two of execute()'s 8 MiB chunks, and not a multiple of anything. */
export const BIG = 20 * MiB + 5;

/**
 * An AArch64 ELF whose segments lie out of order in the file, far apart: loading it reads at
 * 2 MiB, then back at 0x20000, then at 3 MiB, so a URL source has to seek (Range, or re-fetch).
 */
export function scatteredElf(): Uint8Array {
  return writeElf({
    class: 64,
    machine: 183, // EM_AARCH64
    entry: 0x4008_0000n,
    segments: [
      { vaddr: 0x4008_0000n, paddr: 0x4008_0000n, data: pattern(300 * 1024, 1), offset: 0x20_0000n, memsz: 0x5_0000n },
      { vaddr: 0x4010_0000n, paddr: 0x4010_0000n, data: pattern(40 * 1024, 2), offset: 0x2_0000n },
      { vaddr: 0x4020_0000n, paddr: 0x4020_0000n, data: pattern(1536 * 1024, 3), offset: 0x30_0000n, memsz: 0x20_0000n },
    ],
  });
}

/** Files the test server makes up (besides examples/images): name → bytes. */
export const SYNTHETIC: Record<string, () => Uint8Array> = {
  big: () => pattern(BIG),
  "elf-scattered": scatteredElf,
};
