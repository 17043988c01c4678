// Raw binaries: the file verbatim at the load address. The fallback format: anything not
// recognised as something else is loaded this way (a kernel's entry is its first byte).
import type { LoadPlan } from "../plan.js";
import type { ImageFile } from "../sources/source.js";

export interface RawKernelArch {
  format: "raw";
  entry: bigint;
}

export interface RawResult {
  format: "raw";
  entry: bigint;
  arch: RawKernelArch;
}

export function planRaw(file: ImageFile, base: number): LoadPlan<RawResult> {
  return {
    name: file.name,
    file,
    paddr: base,
    size: file.size,
    copies: file.size ? [{ dst: base, src: 0, len: file.size }] : [],
    zeros: [],
    relocs: [],
    patchable: [],
    result: { format: "raw", entry: BigInt(base), arch: { format: "raw", entry: BigInt(base) } },
  };
}
