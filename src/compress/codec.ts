// The one interface every kernel decompressor (src/compress/<codec>.ts) implements, so containers
// (gzip, EFI zboot, uImage IH_COMP, raw `.xz`/`.zst`/… kernels) can pick a codec without knowing
// how it works, and no codec knows about a container (conventions.md, "Decoders").
//
// A decoder writes its output straight where it goes: `out` is a view of guest RAM at the
// destination, as long as the room there. The LZ window is `out` itself (earlier output is read
// back from guest RAM), so there is no staging buffer of the whole output and no second copy.
// Output that would pass `out.length` stops the decoder with kind "too-large" (a decompression
// bomb costs nothing beyond the room it was given). On any failure the caller restores the range
// (plan.ts's rollback), so a decoder may leave partial output behind when it throws.

import type { Core } from "../core/core.js";

/** Why a decoder gave up. */
export type CodecFailure =
  /** The input ended before the compressed stream did. */
  | "truncated"
  /** The stream is invalid (bad block, bad code, distance before the start of output, …). */
  | "corrupt"
  /** A checksum in the stream (CRC-32, CRC-64, XXH64, SHA-256, Adler-32…) does not match. */
  | "checksum"
  /** The output would be longer than `out`. */
  | "too-large"
  /** A valid stream using a feature this decoder does not implement (named in the message). */
  | "unsupported";

/** Thrown by decoders for bad or unsupported data; containers map it to a GuestImageError. */
export class CodecError extends Error {
  readonly kind: CodecFailure;
  /** Byte offset in the compressed input where the problem was found. */
  readonly offset: number;
  constructor(kind: CodecFailure, offset: number, message: string) {
    super(message);
    this.name = "CodecError";
    this.kind = kind;
    this.offset = offset;
  }
}

export interface DecodeResult {
  /** Bytes of output written to out[0, written). */
  written: number;
  /** Bytes of input the stream used (input[consumed..] is whatever follows it). */
  consumed: number;
}

export interface DecodeOptions {
  /**
   * The Wasm core whose memory `out` lies in (the VM's). A decoder with loops in the core (zstd)
   * runs them when given it and `out` is a view of that memory (outside the core's scratch area);
   * otherwise, or without it, it runs its TypeScript loops. Results and errors are the same.
   */
  core?: Core;
  /**
   * Stop once this many bytes of output exist (for header peeks during planning); the result's
   * `consumed` is then not meaningful (NaN) and no checksum is checked. Output past it need not
   * fit in `out`: with stopAfter <= out.length a longer stream is not "too-large". A stream that
   * ends sooner returns its whole output. Default: decode the whole stream.
   */
  stopAfter?: number;
}

/**
 * A decompressor: decodes the stream at the start of `input` into `out` (guest RAM), checking the
 * stream's own checksums, and returns how much it wrote and read. Synchronous and allocation-light:
 * tables may be allocated per call, the output never is.
 */
export interface Codec {
  /** "gzip", "bzip2", "lzma", "xz", "lzo", "lz4", "zstd". */
  readonly name: string;
  /** True when `input` starts with this codec's magic (the container-less form). */
  sniff(input: Uint8Array): boolean;
  /**
   * The uncompressed size the stream declares before decoding, when its format has one
   * (lzma-alone header, zstd frame content size, xz index, gzip ISIZE…); undefined otherwise.
   * Used to refuse, before writing, an output that cannot fit.
   */
  declaredSize?(input: Uint8Array): number | undefined;
  decode(input: Uint8Array, out: Uint8Array, options?: DecodeOptions): DecodeResult;
  /**
   * For a stream that declares no size (lz4 frames without a content size, zstd frames without
   * Frame_Content_Size, …): decodes it without keeping the output — only the window the next
   * block may reach back into, in a scratch buffer — and returns the size it decodes to and the
   * input it uses. A "too-large" failure past `limit`. May skip checksums of the content (decode()
   * checks them). Absent: the caller must find the size another way.
   */
  measure?(input: Uint8Array, limit: number): DecodeResult;
}
