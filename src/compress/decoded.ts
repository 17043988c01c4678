// A compressed payload (a raw `.zst`/`.lz4`/`.lzo`/`.xz`… kernel, an EFI zboot payload, uImage
// data) presented as the ImageFile of its decompressed bytes, decoded by one Codec.
//
// The size must be known before planning (formats place and check by it): the size the stream
// declares (Codec.declaredSize: zstd Frame_Content_Size, xz index, lzma header…), else the size
// the container states (the 4 bytes Linux's size_append writes after an EFI zboot payload), else
// the size a measuring pass finds (Codec.measure: lzop block headers, or a decode through a
// window-sized scratch buffer). It is checked against the room at the target before anything is
// written. The first HEAD_BYTES bytes are decoded for detection (stopAfter).
//
// Then the whole output is written once, where it goes: execute() hands decodeInto() the guest
// RAM range of a plan that copies the file whole to one place (an arm64/RISC-V Image, a zImage,
// a raw kernel, uImage data), and the decoder's window is that RAM. A plan that reads the file
// in pieces (an ELF's segments) is served from one host buffer the output is decoded into the
// first time a read needs bytes past the head — the one case with a second copy.
//
// Failures are GuestImageErrors naming the payload, the codec and the file offset; execute()'s
// rollback restores the range a failed decode wrote into.
import type { Core } from "../core/core.js";
import { GuestImageError, type ErrorCode } from "../errors.js";
import { hex } from "../num.js";
import { checkRead, readBytes, type ImageFile } from "../sources/source.js";
import { CodecError, type Codec, type CodecFailure } from "./codec.js";

const CODE: Record<CodecFailure, ErrorCode> = {
  truncated: "TRUNCATED",
  corrupt: "BAD_HEADER",
  checksum: "BAD_CHECKSUM",
  "too-large": "TOO_LARGE",
  unsupported: "UNSUPPORTED",
};

export interface DecodedOptions {
  file: ImageFile;
  /** [start, end) of the compressed stream in `file`. */
  start: number;
  end: number;
  /** The image name errors carry. */
  name: string;
  /** What the payload is, for messages: "zstd data", "EFI zboot payload", "uImage data". */
  what: string;
  codec: Codec;
  /** Largest decompressed size accepted, and where that limit comes from (for the message). */
  cap: number;
  capWhat: string;
  /** How many leading bytes to decode for detection. */
  headBytes: number;
  /** The decompressed size the container states (size_append), if the stream declares none. */
  statedSize?: { size: number; field: string };
  /** A CRC-32 the compressed bytes must have (uImage ih_dcrc), checked before anything is decoded. */
  inputCrc?: { crc32: number; field: string; what: string; fn: (data: Uint8Array) => number };
}

/**
 * How the size was found, for `inspect` and the arch record. "staged": the codec can neither
 * declare nor measure it (bzip2, lzma without a size in its header), so the stream was decoded
 * once into a host buffer (bounded by the room) that the load then copies from.
 */
export type SizeSource = "declared" | "stated" | "measured" | "staged";

/** Maps a decoder's failure to the library's error, with the file offset it happened at. */
export function codecError(e: unknown, o: { name: string; what: string; start: number; codec: Codec }): unknown {
  if (!(e instanceof CodecError)) return e;
  return new GuestImageError(CODE[e.kind], `${o.what}: ${e.message} (file offset ${hex(o.start + e.offset)})`, {
    image: o.name,
    field: o.codec.name,
  });
}

/**
 * Decodes the whole stream into a host buffer, growing it (and decoding again) until the output
 * fits, up to `cap`: for codecs that can neither declare nor measure their output size.
 */
function stage(input: Uint8Array, codec: Codec, cap: number, tooLarge: (n: number) => never): Uint8Array {
  let n = Math.min(cap, Math.max(1 << 16, input.length * 4));
  for (;;) {
    const out = new Uint8Array(n);
    try {
      const r = codec.decode(input, out);
      return out.subarray(0, r.written);
    } catch (e) {
      if (!(e instanceof CodecError) || e.kind !== "too-large") throw e;
      if (n >= cap) tooLarge(n);
      n = Math.min(cap, n * 2);
    }
  }
}

/** Reads the compressed stream, finds and checks its size, decodes the head. */
export async function openDecoded(o: DecodedOptions): Promise<DecodedFile> {
  const { name, what, codec } = o;
  const fail = (code: ErrorCode, field: string, msg: string): never => {
    throw new GuestImageError(code, `${what}: ${msg}`, { image: name, field });
  };
  const input = await readBytes(o.file, o.start, o.end - o.start);
  if (o.inputCrc) {
    const crc = o.inputCrc.fn(input) >>> 0;
    if (crc !== o.inputCrc.crc32 >>> 0) {
      fail("BAD_CHECKSUM", o.inputCrc.field, `${o.inputCrc.what}: CRC-32 is ${hex(crc)}, ${o.inputCrc.field} says ${hex(o.inputCrc.crc32 >>> 0)}`);
    }
  }
  const wrap = (e: unknown) => codecError(e, { name, what, start: o.start, codec });
  let size: number | undefined;
  let source: SizeSource = "declared";
  try {
    size = codec.declaredSize?.(input);
    if (size === undefined && o.statedSize) {
      size = o.statedSize.size;
      source = "stated";
    }
    if (size !== undefined && size > o.cap) {
      fail("TOO_LARGE", source === "stated" ? o.statedSize!.field : codec.name, `${codec.name} data decompresses to ${hex(size)} bytes (${source === "stated" ? o.statedSize!.field : "as the stream declares"}), more than the ${hex(o.cap)} bytes ${o.capWhat}`);
    }
    if (size === undefined && !codec.measure) {
      const whole = stage(input, codec, o.cap, (n) => fail("TOO_LARGE", codec.name, `${codec.name} data decompresses to more than the ${hex(o.cap)} bytes ${o.capWhat} (stopped at ${hex(n)})`));
      const f = new DecodedFile(o, input, whole.length, "staged");
      f.holdWhole(whole);
      return f;
    }
    if (size === undefined) {
      source = "measured";
      try {
        size = codec.measure!(input, o.cap).written;
      } catch (e) {
        if (e instanceof CodecError && e.kind === "too-large") {
          fail("TOO_LARGE", codec.name, `${codec.name} data decompresses to more than the ${hex(o.cap)} bytes ${o.capWhat} (${e.message})`);
        }
        throw e;
      }
    }
  } catch (e) {
    throw wrap(e);
  }
  const f = new DecodedFile(o, input, size!, source);
  const n = Math.min(o.headBytes, size!);
  const head = new Uint8Array(n);
  try {
    const r = codec.decode(input, head, { stopAfter: n });
    if (r.written < n) fail("TRUNCATED", codec.name, `${codec.name} data decodes to ${hex(r.written)} bytes, but ${source === "declared" ? "the stream declares" : source === "stated" ? `${o.statedSize!.field} says` : "it measured"} ${hex(size!)}`);
  } catch (e) {
    throw wrap(e);
  }
  f.head = head;
  return f;
}

export class DecodedFile implements ImageFile {
  readonly name: string;
  readonly size: number;
  /** Where the size came from. */
  readonly sizeSource: SizeSource;
  /** The codec's name ("zstd", "lz4", …). */
  readonly codecName: string;
  /** Compressed bytes, and how many of them the stream used (after a full decode). */
  readonly compressedSize: number;
  consumed: number | undefined;
  /** The first min(headBytes, size) bytes of the output. */
  head: Uint8Array = new Uint8Array(0);
  private readonly o: DecodedOptions;
  private input: Uint8Array | null;
  /** The whole output in a host buffer, once a piecewise read needed it. */
  private whole: Uint8Array | null = null;

  constructor(o: DecodedOptions, input: Uint8Array, size: number, source: SizeSource) {
    this.o = o;
    this.name = o.name;
    this.input = input;
    this.size = size;
    this.sizeSource = source;
    this.codecName = o.codec.name;
    this.compressedSize = input.length;
  }

  /**
   * Decodes the whole stream into `dst` (exactly `size` bytes: guest RAM at the destination, the
   * decoder's window). Throws GuestImageError; `dst` may then hold partial output (the caller
   * restores it). `core`: the VM's Wasm core, whose memory holds `dst` (the codec may run its
   * loops there).
   */
  async decodeInto(dst: Uint8Array, core?: Core): Promise<void> {
    if (dst.length !== this.size) {
      throw new GuestImageError("BAD_ARGUMENT", `decodeInto needs exactly ${hex(this.size)} bytes, got ${hex(dst.length)}`, { image: this.name });
    }
    if (this.whole) {
      dst.set(this.whole);
      return;
    }
    this.decode(dst, core);
  }

  read(dst: Uint8Array, position: number): Promise<void> {
    checkRead(this, dst, position);
    if (position + dst.length <= this.head.length) {
      dst.set(this.head.subarray(position, position + dst.length));
      return Promise.resolve();
    }
    if (position === 0 && dst.length === this.size) return this.decodeInto(dst);
    if (!this.whole) {
      const whole = new Uint8Array(this.size);
      this.decode(whole);
      this.whole = whole;
    }
    dst.set(this.whole.subarray(position, position + dst.length));
    return Promise.resolve();
  }

  /** @internal The whole output, already decoded (staged): head and reads come from it. */
  holdWhole(whole: Uint8Array): void {
    this.whole = whole;
    this.head = whole.subarray(0, Math.min(this.o.headBytes, whole.length));
  }

  async close(): Promise<void> {
    this.input = null;
    this.whole = null;
  }

  private decode(out: Uint8Array, core?: Core): void {
    const o = this.o;
    if (!this.input) throw new GuestImageError("IO", `${o.what}: read after close`, { image: this.name });
    let written: number;
    try {
      const r = o.codec.decode(this.input, out, core ? { core } : undefined);
      written = r.written;
      this.consumed = r.consumed;
    } catch (e) {
      throw codecError(e, { name: this.name, what: o.what, start: o.start, codec: o.codec });
    }
    if (written !== this.size) {
      const said = this.sizeSource === "declared" ? "the stream declares" : this.sizeSource === "stated" ? `${o.statedSize!.field} says` : "it measured";
      throw new GuestImageError("TRUNCATED", `${o.what}: ${o.codec.name} data decodes to ${hex(written)} bytes, but ${said} ${hex(this.size)}`, {
        image: this.name,
        field: this.sizeSource === "stated" ? o.statedSize!.field : o.codec.name,
      });
    }
  }
}

/** True for a file whose bytes are decoded on demand and can be written whole with decodeInto(). */
export function isDecodedFile(f: ImageFile): f is DecodedFile {
  return f instanceof DecodedFile;
}
