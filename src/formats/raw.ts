// Raw binaries: the file verbatim at the load address. The fallback format: anything not
// recognised as something else is loaded this way (a kernel's entry is its first byte).
import { GuestImageError } from "../errors.js";
import type { LoadPlan } from "../plan.js";
import type { ImageFile } from "../sources/source.js";
import type { ImageFormat } from "./format.js";

export interface RawKernelArch {
  format: "raw";
  entry: bigint;
}

export interface RawResult {
  format: "raw";
  entry: bigint;
  arch: RawKernelArch;
}

/** The whole file verbatim at `base`. */
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

function needAddress(file: ImageFile, what: string): never {
  throw new GuestImageError("BAD_ARGUMENT", `${what} has no load address of its own: pass one (at / load_address)`, { image: file.name, field: "at" });
}

/** The fallback: not in the detection table, matched when nothing else is. */
export const rawFormat: ImageFormat = {
  name: "raw",
  description: "a raw binary",
  test: () => true,
  async planKernel(ctx) {
    if (ctx.relocs !== undefined) {
      throw new GuestImageError("BAD_ARGUMENT", "relocs data applies to ELF kernels only", { image: ctx.file.name, field: "relocs" });
    }
    return planRaw(ctx.file, ctx.at ?? needAddress(ctx.file, "a raw image"));
  },
  async planModule(ctx) {
    const plan = planRaw(ctx.file, ctx.at ?? needAddress(ctx.file, "a module"));
    return { ...plan, result: { format: "raw" } };
  },
};
