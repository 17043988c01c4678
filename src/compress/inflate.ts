// The platform's DEFLATE decompressor behind one small interface, so the library core never
// imports node:zlib (the default entry runs in browsers). The default implementation is the
// Compression Streams API (`DecompressionStream`, global in browsers and Node ≥ 20); the Node
// entry (src/node.ts) registers node:zlib instead (src/compress/inflate-node.ts), which is faster
// and reports how much input the stream used.
//
// The interface is raw DEFLATE (RFC 1951), not gzip: the gzip member around it (header, trailer,
// CRC-32, ISIZE) is parsed and checked by our own code (src/compress/gunzip.ts), so every platform
// accepts and refuses exactly the same files. ("gzip" streams differ: Node's decompressor reads
// concatenated members and skips trailing zeros, Chromium's rejects both.)
import { GuestImageError } from "../errors.js";

/** Why an inflater gave up. */
export type InflateFailure =
  /** The input ended before the deflate stream did. */
  | "truncated"
  /** The deflate stream is invalid (bad block type, code lengths, distance…). */
  | "corrupt"
  /** The deflate stream ended before the input did. */
  | "trailing";

/** Thrown by an InflateStream when the compressed data is bad (not for input read errors). */
export class InflateError extends Error {
  readonly kind: InflateFailure;
  constructor(kind: InflateFailure, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "InflateError";
    this.kind = kind;
  }
}

/** One running decompression: output is pulled a chunk at a time, so memory stays bounded. */
export interface InflateStream {
  /**
   * The next chunk of output (a fresh buffer, at most about the inflater's chunk size), or null
   * once the deflate stream has ended. Throws InflateError for bad data; an error thrown by the
   * input iterable comes out unchanged.
   */
  next(): Promise<Uint8Array | null>;
  /** After next() returned null: how many input bytes the deflate stream used, if the platform can tell. */
  consumed(): number | undefined;
  /** Abandons the stream and frees what it holds; safe to call at any time, more than once. */
  close(): void;
}

export interface Inflater {
  /** For messages and benchmarks: "node:zlib", "DecompressionStream". */
  readonly name: string;
  /** True when its streams' consumed() says where the deflate data ended (needed to read several gzip members). */
  readonly reportsConsumed?: boolean;
  /** Starts decompressing the raw DEFLATE data that `input` yields. */
  inflateRaw(input: AsyncIterable<Uint8Array>): InflateStream;
  /** CRC-32 (zlib/IEEE) continuing from `prev`, if the platform has a native one. */
  crc32?(data: Uint8Array, prev: number): number;
}

/** Maps a platform's decompression error to what went wrong (engines word these differently). */
export function classifyInflateError(e: unknown): InflateError {
  const msg = e instanceof Error ? e.message : String(e);
  const code = (e as { code?: unknown })?.code;
  // Node (zlib): Z_BUF_ERROR "unexpected end of file"; Chromium: "Compressed input was truncated."
  if (code === "Z_BUF_ERROR" || /truncat|unexpected end/i.test(msg)) return new InflateError("truncated", msg, { cause: e });
  // Chromium: "Junk found after end of compressed data."
  if (/junk|trailing|after (the )?end/i.test(msg)) return new InflateError("trailing", msg, { cause: e });
  return new InflateError("corrupt", msg, { cause: e });
}

/** A ReadableStream pulling from an async iterable (ReadableStream.from is not everywhere yet). */
function toReadable(input: AsyncIterable<Uint8Array>): ReadableStream<Uint8Array> {
  const it = input[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const r = await it.next();
        if (r.done) controller.close();
        else controller.enqueue(r.value);
      },
      async cancel() {
        await it.return?.();
      },
    },
    { highWaterMark: 0 },
  );
}

/**
 * The Compression Streams API's "deflate-raw" decompressor. It cannot say how much input it
 * used, so data after the end of the deflate stream is caught by the gzip trailer check instead
 * (Chromium also rejects it itself; Node's implementation ignores it).
 */
export const decompressionStreamInflater: Inflater = {
  name: "DecompressionStream",
  inflateRaw(input) {
    if (typeof DecompressionStream !== "function") {
      throw new GuestImageError("UNSUPPORTED", "this platform has no DecompressionStream; register an inflater with setInflater()");
    }
    const ds = new DecompressionStream("deflate-raw") as unknown as ReadableWritablePair<Uint8Array, Uint8Array>;
    const reader = toReadable(input).pipeThrough(ds).getReader();
    let closed = false;
    return {
      async next() {
        try {
          const r = await reader.read();
          return r.done ? null : r.value;
        } catch (e) {
          if (e instanceof GuestImageError) throw e;
          throw classifyInflateError(e);
        }
      },
      consumed: () => undefined,
      close() {
        if (closed) return;
        closed = true;
        reader.cancel().catch(() => {});
      },
    };
  },
};

let current: Inflater = decompressionStreamInflater;

/** The inflater the library uses (DecompressionStream unless one was registered). */
export function getInflater(): Inflater {
  return current;
}

/** Registers the inflater the library uses (the Node entry registers node:zlib); returns the previous one. */
export function setInflater(inflater: Inflater): Inflater {
  if (!inflater || typeof inflater.inflateRaw !== "function") {
    throw new GuestImageError("BAD_ARGUMENT", "setInflater needs an object with inflateRaw()", { field: "inflater" });
  }
  const prev = current;
  current = inflater;
  return prev;
}
