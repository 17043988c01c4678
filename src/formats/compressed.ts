// Raw compressed kernels: `Image.zst`, `Image.lz4`, `Image.lzo`, `vmlinux.xz`, `Image.bz2`,
// `Image.lzma`… — a compressed stream with no container around it, recognised by its codec's
// magic (src/compress/registry.ts), decompressed straight into guest RAM and detected again, so
// an `Image.zst` loads exactly like the arm64 Image inside it (as `Image.gz` does through
// gzip.ts). As a module it is placed verbatim: an initrd stays compressed for the kernel to
// unpack.
//
// Bytes after the end of the stream are ignored, as the reference tools do when decompressing
// (Linux's size_append puts the decompressed size there; `zstd -d`/`lz4 -d` stop at bytes that
// start no frame). The decompressed size is the stream's own (declaredSize) or found by a
// measuring pass, and checked against the RAM at the target before anything is written.
import type { Codec } from "../compress/codec.js";
import { openDecoded, type DecodedFile } from "../compress/decoded.js";
import { isGzip } from "../compress/gunzip.js";
import { CODECS, sniffCodec } from "../compress/registry.js";
import { GuestImageError } from "../errors.js";
import type { LoadPlan } from "../plan.js";
import { readBytes, type ImageFile } from "../sources/source.js";
import { HEAD_BYTES, type FormatContext, type ImageFormat, type KernelResult } from "./format.js";
import { spaceFor, type Target } from "./gzip.js";

/** wasm32 guest RAM never exceeds 4 GiB. */
const MAX_DECOMPRESSED = 2 ** 32;

/** Opens the `codec` stream at [start, end) of ctx.file for decompression toward `target`. */
export function openCodecPayload(
  ctx: FormatContext,
  codec: Codec,
  range: { start: number; end: number; what: string },
  target: Target,
  extra: { statedSize?: { size: number; field: string }; inputCrc?: { crc32: number; field: string; what: string } } = {},
): Promise<DecodedFile> {
  return openDecoded({
    ...range,
    file: ctx.file,
    name: ctx.file.name,
    codec,
    headBytes: HEAD_BYTES,
    statedSize: extra.statedSize,
    inputCrc: extra.inputCrc && { ...extra.inputCrc, fn: (d: Uint8Array) => ctx.core.crc32Bytes(d) },
    ...spaceFor(ctx.ram, target, ctx.file.name),
  });
}

/** What compressed data starts with `head`, if anything: "gzip", "zstd", … */
export function compressionOf(head: Uint8Array): string | undefined {
  return isGzip(head) ? "gzip" : sniffCodec(head)?.name;
}

/**
 * Detects and plans a decompressed payload as a kernel; the arch record says how it was packed
 * (compression, sizes). A payload that is itself compressed is refused (no bootloader or VMM
 * unpacks twice).
 */
export async function planDecodedKernel(ctx: FormatContext, f: DecodedFile, packing: Record<string, string | number>): Promise<LoadPlan<KernelResult>> {
  try {
    const inner = compressionOf(f.head);
    if (inner) {
      throw new GuestImageError(
        "UNSUPPORTED",
        `the decompressed ${f.codecName} payload is ${inner} data again: decompress it once and load the result`,
        { image: ctx.file.name, field: f.codecName },
      );
    }
    const plan = await ctx.planKernel(f, { head: f.head });
    const r = plan.result;
    const sizes: Record<string, string | number> = { compression: f.codecName, compressed_size: f.compressedSize, decompressed_size: f.size };
    return { ...plan, result: { ...r, arch: { ...r.arch, ...sizes, ...packing } } };
  } catch (e) {
    await f.close();
    throw e;
  }
}

/** For `inspect`: the compression, its sizes, and the payload's first bytes for detection. */
export async function inspectCodecPayload(file: ImageFile, codec: Codec, start: number, end: number, what: string, statedSize?: { size: number; field: string }): Promise<Record<string, unknown>> {
  try {
    const f = await openDecoded({
      file, start, end, name: file.name, what, codec, headBytes: HEAD_BYTES, statedSize,
      cap: MAX_DECOMPRESSED, capWhat: "a 32-bit guest can address",
    });
    await f.close();
    return { compression: codec.name, compressed_size: end - start, decompressed_size: f.size, size_from: f.sizeSource, payloadHead: f.head };
  } catch (e) {
    return { compression: codec.name, compressed_size: end - start, error: (e as Error).message };
  }
}

/** The raw compressed kernel format of one codec. */
function compressedFormat(codec: Codec): ImageFormat {
  return {
    name: codec.name,
    description: `${codec.name}-compressed data`,
    test: (head) => codec.sniff(head),
    async planKernel(ctx) {
      const f = await openCodecPayload(ctx, codec, { start: 0, end: ctx.file.size, what: `${codec.name} data` }, { atOrAbove: ctx.at });
      return planDecodedKernel(ctx, f, {});
    },
    // No planModule: a module is placed verbatim, and an initrd stays compressed.
    inspect: (file) => inspectCodecPayload(file, codec, 0, file.size, `${codec.name} data`),
  };
}

/** One format per registered codec, in sniffing order. */
export const COMPRESSED_FORMATS: readonly ImageFormat[] = CODECS.map(compressedFormat);

/** Reads the 4-byte little-endian size Linux's size_append writes after a payload, if it is inside the file. */
export async function sizeAppendAt(file: ImageFile, at: number, field: string): Promise<{ size: number; field: string } | undefined> {
  if (at + 4 > file.size) return undefined;
  const b = await readBytes(file, at, 4);
  return { size: new DataView(b.buffer, b.byteOffset, 4).getUint32(0, true), field };
}
