// Images over HTTP(S): `fromUrl(base)` opens `new URL(name, base)` with fetch and streams the
// response body straight into the caller's buffer (guest RAM), chunk by chunk as it arrives.
//
// One copy per byte, from the chunk fetch hands us into guest RAM. That copy cannot be avoided:
// a BYOB reader would have to transfer (detach) the destination's ArrayBuffer, and the buffer of
// a WebAssembly.Memory cannot be detached.
//
// How reads are served:
// - open() sends one GET. Its Content-Length is the file size, known before any plan is made, so
//   an image bigger than its place in RAM is refused by check() before a byte is written. Its body
//   is the "cursor" stream: a read at (or a little ahead of) the cursor continues it.
// - The first HEAD_CACHE bytes are kept as they stream past, so header reads near the start of
//   the file (ELF program headers, a DTB header) never need another request.
// - A read elsewhere uses an HTTP Range request when the server supports them (206 with a
//   Content-Range that matches), a small one bounded to the read, a large one open-ended so the
//   reads that follow continue it. A server without Range support (or one that answers 200) is
//   re-fetched from the start and skipped forward: slower, bounded memory, same bytes.
// - No usable Content-Length (chunked, or Content-Encoding: the length is of the encoded body):
//   the body is read into a buffer of at most `maxBuffer` bytes (else TOO_LARGE).
// - A body that ends before its Content-Length is TRUNCATED, a failing one (network error, abort)
//   is IO; execute() then restores guest RAM and the ledger.
import { GuestImageError } from "../errors.js";
import { hex } from "../num.js";
import { bytesFile, checkRead, type ImageFile, type Source } from "./source.js";

export interface UrlSourceOptions {
  /** The fetch to use (default: globalThis.fetch). */
  fetch?: typeof globalThis.fetch;
  /** Extra request options for every request (headers, credentials, cache…). */
  init?: RequestInit;
  /** Aborts every request and read of this source; a load in progress fails with IO and is rolled back. */
  signal?: AbortSignal;
  /** Largest response read into memory when the server gives no usable Content-Length (default 64 MiB). */
  maxBuffer?: number;
}

/** Bytes at the start of a file kept in memory as they stream past (headers live there). */
export const HEAD_CACHE = 64 * 1024;
/** A read not at the cursor and at most this long gets a Range request of its own length. */
const SMALL_READ = 64 * 1024;
/** How far ahead of the cursor a read may start and still continue the current body. */
const SKIP_LIMIT = 1024 * 1024;
const DEFAULT_MAX_BUFFER = 64 * 1024 * 1024;

type RangeSupport = "yes" | "no" | "unknown";

/** A response body being read, with the file offset of its next byte. */
interface Body {
  reader: ReadableStreamDefaultReader<Uint8Array>;
  /** File offset of the next byte the body will give. */
  pos: number;
  /** File offset where this body ends (its Content-Range end + 1, or the file size). */
  end: number;
  /** What is left of the last chunk read. */
  pending: Uint8Array | null;
}

/**
 * A source of files under a base URL: `open(name)` fetches `new URL(name, base)`. End a
 * directory base with "/" ("https://host/images/"); a relative base resolves against the page.
 */
export function fromUrl(base: string | URL, opts: UrlSourceOptions = {}): Source {
  let baseUrl: URL;
  try {
    const page = (globalThis as { location?: { href?: string } }).location?.href;
    baseUrl = new URL(base, page);
  } catch (e) {
    throw new GuestImageError("BAD_ARGUMENT", `fromUrl: "${String(base)}" is not a URL (a relative one needs a page to resolve against)`, { field: "base", cause: e });
  }
  const doFetch = opts.fetch ?? globalThis.fetch;
  if (typeof doFetch !== "function") throw new GuestImageError("UNSUPPORTED", "fromUrl: this platform has no fetch", { field: "fetch" });
  const maxBuffer = opts.maxBuffer ?? DEFAULT_MAX_BUFFER;
  return {
    async open(name) {
      let url: URL;
      try {
        url = new URL(name, baseUrl);
      } catch (e) {
        throw new GuestImageError("BAD_ARGUMENT", `cannot make a URL of "${name}" relative to ${baseUrl.href}`, { image: name, field: "name", cause: e });
      }
      return openUrl(name, url.href, doFetch, opts.init ?? {}, opts.signal, maxBuffer);
    },
  };
}

async function openUrl(
  name: string, url: string, doFetch: typeof globalThis.fetch, init: RequestInit, signal: AbortSignal | undefined, maxBuffer: number,
): Promise<ImageFile> {
  const request = async (range?: string): Promise<Response> => {
    const headers = new Headers(init.headers);
    if (range) headers.set("Range", range);
    try {
      return await doFetch(url, { ...init, headers, signal: signal ?? init.signal });
    } catch (e) {
      throw ioError(name, `GET ${url}${range ? ` (Range: ${range})` : ""} failed: ${describe(e)} (a network error, or a cross-origin server that does not allow the request)`, e);
    }
  };
  const res = await request();
  if (res.status === 404 || res.status === 410) {
    await discard(res);
    throw new GuestImageError("NOT_FOUND", `no file at ${url} (HTTP ${res.status})`, { image: name, field: "name" });
  }
  if (!res.ok || res.status === 206 || !res.body) {
    await discard(res);
    throw ioError(name, `GET ${url}: ${res.type === "opaque" ? "opaque response (no-cors)" : `HTTP ${res.status} ${res.statusText}`.trim()}`);
  }
  const size = contentLength(res);
  if (size === undefined) {
    // Chunked or content-coded: the size is known only at the end, and a plan needs it first.
    return bytesFile(name, await readAll(name, url, res.body, maxBuffer));
  }
  const accept = res.headers.get("accept-ranges")?.trim().toLowerCase();
  return new UrlFile(name, url, size, res, accept === "bytes" ? "yes" : accept === "none" ? "no" : "unknown", request, signal ?? init.signal ?? undefined);
}

class UrlFile implements ImageFile {
  readonly name: string;
  readonly size: number;
  private readonly url: string;
  private readonly etag: string | null;
  private readonly request: (range?: string) => Promise<Response>;
  private readonly signal: AbortSignal | undefined;
  private ranges: RangeSupport;
  /** The body reads continue: the response of open(), or a later one that replaced it. */
  private cursor: Body | null;
  private readonly head: Uint8Array;
  private headLen = 0;
  /** Reads run one at a time: they share the cursor. */
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(
    name: string, url: string, size: number, first: Response, ranges: RangeSupport,
    request: (range?: string) => Promise<Response>, signal: AbortSignal | undefined,
  ) {
    this.name = name;
    this.signal = signal;
    this.url = url;
    this.size = size;
    this.etag = first.headers.get("etag");
    this.ranges = ranges;
    this.request = request;
    this.cursor = { reader: first.body!.getReader(), pos: 0, end: size, pending: null };
    this.head = new Uint8Array(Math.min(HEAD_CACHE, size));
  }

  read(dst: Uint8Array, position: number): Promise<void> {
    const run = this.queue.then(() => this.readNow(dst, position));
    this.queue = run.catch(() => {});
    return run;
  }

  async close(): Promise<void> {
    this.closed = true;
    const c = this.cursor;
    this.cursor = null;
    if (c) await cancel(c);
  }

  private async readNow(dst: Uint8Array, position: number): Promise<void> {
    checkRead(this, dst, position);
    if (this.closed) throw ioError(this.name, "read after close");
    let off = 0;
    if (position < this.headLen) {
      off = Math.min(dst.length, this.headLen - position);
      dst.set(this.head.subarray(position, position + off));
    }
    while (off < dst.length) {
      const pos = position + off;
      const want = dst.length - off;
      const c = this.cursor;
      if (c && pos >= c.pos && pos < c.end && (pos - c.pos <= SKIP_LIMIT || this.ranges === "no")) {
        off += await this.pipe(c, dst.subarray(off), pos);
        continue;
      }
      const wasUnknown = this.ranges === "unknown";
      if (this.ranges !== "no") {
        // Ask for just this read when it is small (a table, a header), else open-ended.
        const small = want <= SMALL_READ;
        const body = await this.openRange(pos, small ? pos + want : this.size, wasUnknown);
        if (body && small) {
          try {
            off += await this.pipe(body, dst.subarray(off), pos);
          } finally {
            await cancel(body);
          }
          continue;
        }
        // A large read makes the range the cursor. No body: no ranges after all (now known);
        // go round again, continuing the cursor if it is behind `pos` (it may be the whole-file
        // body the Range request was answered with).
        if (body) await this.replaceCursor(body);
        continue;
      }
      // No Range support: start over from byte 0; pipe() skips forward.
      await this.replaceCursor(await this.openFull());
    }
  }

  /** Skips `c` forward to `pos`, then fills `dst` (or as much as `c` holds). Returns bytes written. */
  private async pipe(c: Body, dst: Uint8Array, pos: number): Promise<number> {
    while (c.pos < pos) {
      const chunk = await this.next(c);
      const n = Math.min(chunk.length, pos - c.pos);
      this.consumed(c, chunk, n);
    }
    let off = 0;
    while (off < dst.length && c.pos < c.end) {
      const chunk = await this.next(c);
      const n = Math.min(chunk.length, dst.length - off, c.end - c.pos);
      dst.set(chunk.subarray(0, n), off);
      off += n;
      this.consumed(c, chunk, n);
    }
    return off;
  }

  /** The next non-empty chunk of `c`; TRUNCATED if it ends before `c.end`, IO if it fails. */
  private async next(c: Body): Promise<Uint8Array> {
    if (c.pending) return c.pending;
    for (;;) {
      let r: ReadableStreamReadResult<Uint8Array>;
      try {
        r = await c.reader.read();
      } catch (e) {
        throw ioError(this.name, `reading ${this.url} failed at offset ${hex(c.pos)} of ${hex(this.size)}: ${describe(e)}`, e);
      }
      if (r.done) {
        throw new GuestImageError(
          "TRUNCATED",
          `the response from ${this.url} ended at offset ${hex(c.pos)}, ${hex(c.end - c.pos)} bytes before the end its headers announced (${hex(c.end)})`,
          { image: this.name },
        );
      }
      if (r.value.length) return r.value;
    }
  }

  /** Records that the first `n` bytes of `chunk` (at c.pos) were used; keeps head bytes. */
  private consumed(c: Body, chunk: Uint8Array, n: number): void {
    if (c.pos <= this.headLen && this.headLen < this.head.length && c.pos + n > this.headLen) {
      const k = Math.min(this.head.length, c.pos + n) - this.headLen;
      this.head.set(chunk.subarray(this.headLen - c.pos, this.headLen - c.pos + k), this.headLen);
      this.headLen += k;
    }
    c.pos += n;
    c.pending = n < chunk.length ? chunk.subarray(n) : null;
  }

  private async replaceCursor(body: Body): Promise<void> {
    const old = this.cursor;
    this.cursor = body;
    if (old) await cancel(old);
  }

  /**
   * A Range request for [start, end). Returns the body, or null when the server does not do
   * ranges (it answered 200; that body becomes the cursor, from byte 0).
   */
  private async openRange(start: number, end: number, probing: boolean): Promise<Body | null> {
    const range = `bytes=${start}-${end - 1}`;
    let res: Response;
    try {
      res = await this.request(range);
    } catch (e) {
      // A cross-origin server may refuse the Range header (its CORS preflight fails): until a
      // Range request has worked, fall back to plain GETs; the next failure is final.
      if (!probing || this.signal?.aborted) throw e;
      this.ranges = "no";
      return null;
    }
    if (res.status === 200) {
      this.ranges = "no";
      await this.replaceCursor(this.fullBody(res));
      return null;
    }
    if (res.status !== 206 || !res.body) {
      await discard(res);
      throw ioError(this.name, `GET ${this.url} (Range: ${range}): HTTP ${res.status} ${res.statusText}`.trim());
    }
    const cr = /^bytes\s+(\d+)-(\d+)\/(\d+|\*)$/i.exec(res.headers.get("content-range")?.trim() ?? "");
    const crStart = cr ? Number(cr[1]) : NaN;
    const crEnd = cr ? Number(cr[2]) + 1 : NaN;
    if (!cr || crStart !== start || !(crEnd > start) || crEnd > this.size || (cr[3] !== "*" && Number(cr[3]) !== this.size)) {
      await discard(res);
      throw ioError(this.name, `GET ${this.url} (Range: ${range}): Content-Range "${res.headers.get("content-range") ?? ""}" does not match the request (file size ${hex(this.size)})`);
    }
    this.checkSame(res);
    this.ranges = "yes";
    return { reader: res.body.getReader(), pos: start, end: crEnd, pending: null };
  }

  /** A plain GET from byte 0 (servers without Range support). */
  private async openFull(): Promise<Body> {
    const res = await this.request();
    if (res.status !== 200 || !res.body) {
      await discard(res);
      throw ioError(this.name, `GET ${this.url}: HTTP ${res.status} ${res.statusText}`.trim());
    }
    return this.fullBody(res);
  }

  private fullBody(res: Response): Body {
    const len = contentLength(res);
    if (len !== this.size) {
      void discard(res);
      throw ioError(this.name, `${this.url} changed during the load: it was ${hex(this.size)} bytes, now ${len === undefined ? "of unknown length" : hex(len)}`);
    }
    this.checkSame(res);
    return { reader: res.body!.getReader(), pos: 0, end: this.size, pending: null };
  }

  /** Every response must be of the same version of the file (ETag, when the server gives one). */
  private checkSame(res: Response): void {
    const etag = res.headers.get("etag");
    if (this.etag && etag && etag !== this.etag) {
      void discard(res);
      throw ioError(this.name, `${this.url} changed during the load (ETag ${this.etag} became ${etag})`);
    }
  }
}

/** The decoded body length, when the headers give it. */
function contentLength(res: Response): number | undefined {
  const enc = res.headers.get("content-encoding")?.trim().toLowerCase();
  if (enc && enc !== "identity") return undefined; // Content-Length counts the encoded bytes
  const v = res.headers.get("content-length")?.trim();
  if (!v || !/^\d+$/.test(v)) return undefined;
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : undefined;
}

async function readAll(name: string, url: string, body: ReadableStream<Uint8Array>, max: number): Promise<Uint8Array> {
  const reader = body.getReader();
  const parts: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    let r: ReadableStreamReadResult<Uint8Array>;
    try {
      r = await reader.read();
    } catch (e) {
      throw ioError(name, `reading ${url} failed after ${hex(total)} bytes: ${describe(e)}`, e);
    }
    if (r.done) break;
    total += r.value.length;
    if (total > max) {
      await reader.cancel().catch(() => {});
      throw new GuestImageError(
        "TOO_LARGE",
        `${url} has no usable Content-Length, so it is read into memory first, and it is larger than maxBuffer (${hex(max)} bytes)`,
        { image: name, field: "maxBuffer" },
      );
    }
    parts.push(r.value);
  }
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

async function cancel(b: Body): Promise<void> {
  try {
    await b.reader.cancel();
  } catch {
    // already failed or closed: nothing to release
  }
}

async function discard(res: Response): Promise<void> {
  try {
    await res.body?.cancel();
  } catch {
    // nothing to release
  }
}

function describe(e: unknown): string {
  if (e instanceof Error) {
    const cause = (e as { cause?: unknown }).cause;
    const why = cause instanceof Error && cause.message && cause.message !== e.message ? ` (${cause.message})` : "";
    return `${e.name === "Error" || e.name === "TypeError" ? "" : `${e.name}: `}${e.message}${why}`;
  }
  return String(e);
}

function ioError(name: string, message: string, cause?: unknown): GuestImageError {
  return new GuestImageError("IO", message, { image: name, cause });
}
