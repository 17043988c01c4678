// gzip (RFC 1952). As a kernel (Image.gz, vmlinux.gz): decompressed with the platform's inflater
// straight into guest RAM and detected again, so an arm64 Image.gz loads exactly like the arm64
// Image inside it (QEMU hw/arm/boot.c load_aarch64_image does the same, with a fixed 256 MiB cap
// where we use the RAM available at the target). As a module (initrd.gz): placed verbatim — the
// kernel decompresses its initramfs itself.
//
// The decompressed size is the member's ISIZE, checked against the RAM available at the target
// before anything is decompressed and enforced while decompressing (src/compress/gunzip.ts).
import { openGunzip, readGzipMember, inflatePrefix, isGzip, type GzipPayload, type InputCrc, type MemberRange } from "../compress/gunzip.js";
import { getInflater } from "../compress/inflate.js";
import { GuestImageError } from "../errors.js";
import { hex } from "../num.js";
import type { LoadPlan } from "../plan.js";
import type { GuestRam } from "../ram/guest-ram.js";
import type { ImageFile } from "../sources/source.js";
import { HEAD_BYTES, type FormatContext, type ImageFormat, type KernelResult } from "./format.js";

/** wasm32 guest RAM never exceeds 4 GiB, and ISIZE cannot say more; the cap never does either. */
const MAX_DECOMPRESSED = 2 ** 32;

/** RFC 1952 §2.3.1: ID1 0x1f, ID2 0x8b, CM 8 (deflate) — the only method defined. */
export const isGzipDeflate = (h: Uint8Array) => isGzip(h) && h.length >= 3 && h[2] === 8;

/** Guest RAM as runs of contiguous regions, in address order. */
function ramRuns(ram: GuestRam): Array<{ base: number; end: number }> {
  const runs: Array<{ base: number; end: number }> = [];
  for (const r of [...ram.regions].sort((a, b) => a.base - b.base)) {
    const last = runs[runs.length - 1];
    if (last && last.end === r.base) last.end = r.base + r.size;
    else runs.push({ base: r.base, end: r.base + r.size });
  }
  return runs;
}

/** Where a payload decompressed toward a target may go, and the most it can occupy there. */
export type Target = { exact: number } | { atOrAbove: number | undefined };

/**
 * The most a payload decompressed toward `target` can occupy: contiguous RAM from an exact
 * address (OUT_OF_RAM if it is in no region, as the load itself would be), or, when the
 * payload's own format picks the address (at or above a base, or anywhere), the largest
 * contiguous run of RAM that could hold it. Never more than 4 GiB.
 */
export function spaceFor(ram: GuestRam, target: Target, image: string): { cap: number; capWhat: string } {
  const runs = ramRuns(ram);
  if ("exact" in target) {
    const at = target.exact;
    ram.map(at, 1, "load address", image);
    const run = runs.find((r) => at >= r.base && at < r.end)!;
    return { cap: Math.min(MAX_DECOMPRESSED, run.end - at), capWhat: `of guest RAM from ${hex(at)} to ${hex(run.end)}` };
  }
  const lo = target.atOrAbove ?? 0;
  const room = runs.filter((r) => r.end > lo).map((r) => r.end - Math.max(r.base, lo));
  if (room.length === 0) ram.map(lo, 1, "load address", image);
  return {
    cap: Math.min(MAX_DECOMPRESSED, Math.max(...room)),
    capWhat: target.atOrAbove === undefined ? "in the largest contiguous run of guest RAM" : `in the largest contiguous run of guest RAM at or above ${hex(lo)}`,
  };
}

/** Opens the gzip member at [start, end) of ctx.file for decompression toward `target`. */
export function openPayload(
  ctx: FormatContext,
  range: Omit<MemberRange, "file" | "name">,
  target: Target,
  inputCrc?: InputCrc,
): Promise<GzipPayload> {
  const inflater = getInflater();
  const crc32 = inflater.crc32 ? inflater.crc32.bind(inflater) : (d: Uint8Array, p: number) => ctx.core.crc32Bytes(d, p);
  return openGunzip({
    ...range, file: ctx.file, name: ctx.file.name, inflater, crc32, headBytes: HEAD_BYTES, inputCrc,
    ...spaceFor(ctx.ram, target, ctx.file.name),
  });
}

/** The highest file offset a plan reads (its reads end there; copies of bytes read while planning read nothing). */
export function readEnd(plan: LoadPlan): number {
  return plan.copies.reduce((m, c) => (c.bytes ? m : Math.max(m, c.src + c.len)), 0);
}

/**
 * Detects and plans a decompressed payload as a kernel; its plan reads from `gz`. The arch
 * record says how it was packed. A payload that is itself gzip is refused (no bootloader or
 * VMM unpacks twice).
 */
export async function planDecompressedKernel(
  ctx: FormatContext,
  gz: GzipPayload,
  packing: Record<string, string>,
): Promise<LoadPlan<KernelResult>> {
  try {
    if (isGzip(gz.head)) {
      throw new GuestImageError(
        "UNSUPPORTED",
        "the decompressed payload starts with the gzip magic (ID1 ID2 1f 8b) again: decompress it once and load the result",
        { image: ctx.file.name, field: "ID1" },
      );
    }
    const plan = await ctx.planKernel(gz, { head: gz.head });
    await gz.needUpTo(readEnd(plan));
    const r = plan.result;
    return { ...plan, result: { ...r, arch: { ...r.arch, ...packing } } };
  } catch (e) {
    await gz.close();
    throw e;
  }
}

/**
 * For `inspect`: a member's header fields and what its payload is, detected from the first
 * decompressed bytes (nothing further is decompressed or verified).
 */
export async function inspectMember(file: ImageFile, start: number, end: number, what: string): Promise<Record<string, unknown>> {
  const m = await readGzipMember({ file, start, end, name: file.name, what });
  const info: Record<string, unknown> = {
    gzip: {
      flg: m.flg, mtime: m.mtime, xfl: m.xfl, os: m.os,
      ...(m.fname !== undefined ? { fname: m.fname } : {}),
      ...(m.fcomment !== undefined ? { fcomment: m.fcomment } : {}),
      crc32: m.crc32, isize: m.isize,
    },
  };
  const head = await inflatePrefix(m, file, getInflater(), Math.min(HEAD_BYTES, m.isize)).catch(() => undefined);
  if (head) {
    // detect.ts imports this module: look it up when called, not when loaded.
    const { detect } = await import("./detect.js");
    const inner = detect(head, m.isize);
    info.contents = inner.name;
    info.contentsDescription = inner.description;
  }
  return info;
}

export const gzipFormat: ImageFormat = {
  name: "gzip",
  description: "gzip-compressed data",
  test: isGzipDeflate,
  async planKernel(ctx) {
    const gz = await openPayload(ctx, { start: 0, end: ctx.file.size, what: "gzip data" }, { atOrAbove: ctx.at });
    return planDecompressedKernel(ctx, gz, { compression: "gzip" });
  },
  // No planModule: a module is placed verbatim, and an initrd.gz must stay compressed.
  inspect: (file) => inspectMember(file, 0, file.size, "gzip data"),
};
