// One gzip member (RFC 1952) decompressed on demand and presented as an ImageFile, so a format
// can detect and plan the payload like any file and execute() can read it straight into guest
// RAM.
//
// Member layout (RFC 1952 §2.3.1): ID1 0x1f, ID2 0x8b, CM (8 = deflate), FLG, MTIME (u32 LE),
// XFL, OS; then, as FLG says, FEXTRA (XLEN u16 LE + XLEN bytes), FNAME and FCOMMENT (zero-
// terminated), FHCRC (u16 LE: low 16 bits of the CRC-32 of the header bytes before it); then the
// deflate data (RFC 1951); then CRC32 (u32 LE, of the uncompressed data) and ISIZE (u32 LE, its
// size mod 2^32).
//
// The file's `size` is ISIZE, known before planning, but never trusted for memory: output is
// produced in inflater-sized chunks and copied once, straight into the reader's buffer (guest
// RAM). Reads are positional over a sequential stream with a cursor: a read at or after the
// cursor pulls output forward; a read before it restarts the stream. The first `headBytes` bytes
// are kept, so header reads during planning do not force restarts. The moment the output passes
// ISIZE the read fails with TOO_LARGE (a decompression bomb costs one chunk of memory, not its
// size); if it ends short, TRUNCATED. Once the reads have covered everything the plan needs (see
// `needUpTo`), the rest is drained and the member is verified: its deflate data ends exactly at
// the trailer, CRC32 matches (BAD_CHECKSUM) and, for a uImage, the CRC-32 of the compressed bytes
// too. A failing read inside execute() rolls the whole load back.
//
// Several members and bytes after the last one: when the trailer at the end of the data cannot be
// one member's (ISIZE 0 from padding, or more than the deflate data can hold), the members are
// found by inflating once (node:zlib reports where each deflate stream ends), and each is then
// read as a GunzipFile of its own behind a GunzipChain; bytes after the last member are ignored,
// as `gzip -d` ignores them. Members behind a trailer that passes (see plausibleTrailer) are
// found only when the output passes that ISIZE or ends before it, and refused there.
import { GuestImageError, type ErrorCode } from "../errors.js";
import { hex } from "../num.js";
import { checkRead, readBytes, type ImageFile } from "../sources/source.js";
import { InflateError, type Inflater, type InflateStream } from "./inflate.js";

export type Crc32 = (data: Uint8Array, prev: number) => number;

// RFC 1952 §2.3.1 FLG bits.
const FHCRC = 0x02;
const FEXTRA = 0x04;
const FNAME = 0x08;
const FCOMMENT = 0x10;
const FRESERVED = 0xe0;
const HEADER_MIN = 10;
const TRAILER = 8;

/** How many compressed bytes are read and handed to the inflater at a time. */
const INPUT_CHUNK = 256 * 1024;

export const isGzip = (h: Uint8Array) => h.length >= 2 && h[0] === 0x1f && h[1] === 0x8b;

/** A gzip member's header and trailer, with absolute offsets in its file. */
export interface GzipMember {
  /** [start, end) of the member in the file. */
  start: number;
  end: number;
  /** Where the deflate data starts and ends (the trailer follows it). */
  deflateStart: number;
  deflateEnd: number;
  flg: number;
  mtime: number;
  xfl: number;
  os: number;
  fname?: string;
  fcomment?: string;
  /** Trailer: CRC-32 of the uncompressed data, and its size mod 2^32. */
  crc32: number;
  isize: number;
}

/** Where a member lies and what errors should name. */
export interface MemberRange {
  file: ImageFile;
  start: number;
  end: number;
  /** The image name errors carry. */
  name: string;
  /** What the member is, for messages: "gzip data", "EFI zboot payload", "uImage data". */
  what: string;
}

const latin1 = (b: Uint8Array) => Array.from(b, (c) => String.fromCharCode(c)).join("");

/**
 * Parses and checks a member's header (RFC 1952 §2.3.1) and reads its trailer. With `crc32`,
 * an FHCRC header checksum is verified too.
 */
export async function readGzipMember(r: MemberRange, crc32?: Crc32): Promise<GzipMember> {
  const image = r.name;
  const fail = (code: ErrorCode, field: string, msg: string): never => {
    throw new GuestImageError(code, `${r.what}: ${msg}`, { image, field });
  };
  const len = r.end - r.start;
  if (len < HEADER_MIN + TRAILER) fail("TRUNCATED", "ID1", `${len} bytes, shorter than the smallest gzip member (${HEADER_MIN + TRAILER}: ID1..OS, CRC32, ISIZE)`);
  // The header is usually 10–40 bytes; a long FNAME/FCOMMENT/FEXTRA makes us read further.
  let buf = await readBytes(r.file, r.start, Math.min(len, 4096));
  // The header must end before the 8-byte trailer.
  const need = async (n: number, field: string) => {
    if (n > len - TRAILER) fail("TRUNCATED", field, `the header runs past ${field} into the ${TRAILER}-byte trailer at offset ${hex(r.start + len - TRAILER)}`);
    while (n > buf.length) buf = await readBytes(r.file, r.start, Math.min(len - TRAILER, buf.length * 4));
  };
  if (buf[0] !== 0x1f || buf[1] !== 0x8b) fail("BAD_MAGIC", "ID1", `ID1 ID2 are ${hex(buf[0])} ${hex(buf[1])}, not 0x1f 0x8b`);
  if (buf[2] !== 8) fail("BAD_HEADER", "CM", `CM is ${buf[2]}: only 8 (deflate) is defined`);
  const flg = buf[3];
  if (flg & FRESERVED) fail("BAD_HEADER", "FLG", `FLG ${hex(flg)} has reserved bits (0xe0) set`);
  const dv = () => new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const m: Partial<GzipMember> = { flg, mtime: dv().getUint32(4, true), xfl: buf[8], os: buf[9] };
  let p = HEADER_MIN;
  if (flg & FEXTRA) {
    await need(p + 2, "XLEN");
    p += 2 + dv().getUint16(p, true);
    await need(p, "XLEN");
  }
  const zstring = async (field: string): Promise<string> => {
    const from = p;
    for (;;) {
      await need(p + 1, field);
      if (buf[p++] === 0) return latin1(buf.subarray(from, p - 1));
    }
  };
  if (flg & FNAME) m.fname = await zstring("FNAME");
  if (flg & FCOMMENT) m.fcomment = await zstring("FCOMMENT");
  if (flg & FHCRC) {
    await need(p + 2, "FHCRC");
    const stored = dv().getUint16(p, true);
    if (crc32) {
      const actual = crc32(buf.subarray(0, p), 0) & 0xffff;
      if (actual !== stored) fail("BAD_CHECKSUM", "FHCRC", `header CRC16 is ${hex(actual)}, FHCRC says ${hex(stored)}`);
    }
    p += 2;
  }
  const t = await readBytes(r.file, r.end - TRAILER, TRAILER);
  const tv = new DataView(t.buffer, t.byteOffset, TRAILER);
  return {
    ...(m as GzipMember),
    start: r.start,
    end: r.end,
    deflateStart: r.start + p,
    deflateEnd: r.end - TRAILER,
    crc32: tv.getUint32(0, true),
    isize: tv.getUint32(4, true),
  };
}

/** A CRC-32 the decompressed member must also satisfy over its compressed bytes (uImage ih_dcrc). */
export interface InputCrc {
  crc32: number;
  field: string;
  what: string;
}

export interface GunzipOptions extends MemberRange {
  inflater: Inflater;
  /** CRC-32 for the trailer check: the inflater's native one when it has it. */
  crc32: Crc32;
  /** Largest decompressed size accepted, and where that limit comes from (for the message). */
  cap: number;
  capWhat: string;
  /** How many leading bytes to keep (the detection head). */
  headBytes: number;
  inputCrc?: InputCrc;
}

/** A decompressed gzip file: one member (GunzipFile) or several (GunzipChain). */
export interface GzipPayload extends ImageFile {
  /** The first min(headBytes, size) bytes of the output. */
  readonly head: Uint8Array;
  /** See GunzipFile.needUpTo. */
  needUpTo(end: number): Promise<void>;
  /** How many members the data has (1 for the usual single member). */
  readonly members: number;
}

/**
 * Whether the 8 bytes at the end of the data can be the trailer of one member spanning it all:
 * ISIZE is not 0 (what zero padding after the member reads as) and not more than the deflate data
 * could hold (deflate cannot expand more than 1032:1). Otherwise more data follows the first
 * member and the members are found by inflating (scanMembers). An ISIZE smaller than the data
 * keeps the fast path: it is how a decompression bomb lies, and the output passing it stops the
 * load at once (TOO_LARGE) — so concatenated members without padding after them are refused. An
 * ISIZE past the room is refused as TOO_LARGE without inflating anything.
 */
function plausibleTrailer(m: GzipMember): boolean {
  const deflated = m.deflateEnd - m.deflateStart;
  return m.isize !== 0 && m.isize <= deflated * 1032 + 1024;
}

/**
 * Opens gzip data for decompression: header checked, size checked against the cap, head
 * decoded. Several members, and bytes after the last one, are read as `gzip -d` reads them (the
 * output is the members' outputs one after another; bytes after a member that do not start
 * another are ignored) — found by inflating once to the end when the trailer at the end of the
 * data cannot be the whole story (see plausibleTrailer), which needs an inflater that says where
 * a deflate stream ends (node:zlib; DecompressionStream cannot).
 */
export async function openGunzip(o: GunzipOptions): Promise<GzipPayload> {
  const member = await readGzipMember(o, o.crc32);
  if (o.inflater.reportsConsumed && member.isize <= o.cap && !plausibleTrailer(member)) {
    const members = await scanMembers(o, member);
    if (members.length > 1 || members[0].end !== o.end) return openChain(o, members);
  }
  const image = o.name;
  if (member.isize === 0) {
    throw new GuestImageError("BAD_HEADER", `${o.what}: ISIZE is 0 (no data, or a multiple of 4 GiB)`, { image, field: "ISIZE" });
  }
  if (member.isize > o.cap) {
    throw new GuestImageError(
      "TOO_LARGE",
      `${o.what} decompresses to ${hex(member.isize)} bytes (ISIZE), more than the ${hex(o.cap)} bytes ${o.capWhat}`,
      { image, field: "ISIZE" },
    );
  }
  const f = new GunzipFile(o, member);
  await f.init();
  return f;
}

/**
 * Finds the members by inflating from the first one on: each member's deflate data ends where
 * the inflater stops, its trailer follows (CRC32 and ISIZE checked), and another member follows
 * only if the next bytes are ID1 ID2. Returns the members with their exact ranges.
 */
async function scanMembers(o: GunzipOptions, first: GzipMember): Promise<GzipMember[]> {
  const image = o.name;
  const err = (code: ErrorCode, field: string, msg: string) => new GuestImageError(code, `${o.what}: ${msg}`, { image, field });
  const members: GzipMember[] = [];
  let total = 0;
  let at = o.start;
  let m: GzipMember = first;
  for (;;) {
    const s = o.inflater.inflateRaw(deflateInput(o.file, { ...m, deflateEnd: o.end }));
    let produced = 0;
    let crc = 0;
    try {
      for (let c = await s.next().catch((e) => { throw inflateFailure(e, o, produced); }); c; c = await s.next().catch((e) => { throw inflateFailure(e, o, produced); })) {
        produced += c.length;
        if (total + produced > o.cap) throw err("TOO_LARGE", "ISIZE", `decompresses to more than the ${hex(o.cap)} bytes ${o.capWhat} (stopped at ${hex(total + produced)})`);
        crc = o.crc32(c, crc);
      }
      const used = s.consumed();
      if (used === undefined) {
        throw err(
          "UNSUPPORTED",
          "ISIZE",
          `the trailer at the end of the data (ISIZE ${hex(first.isize)}) does not describe it, so more data follows the first member; finding where it ends needs an inflater that reports it (node:zlib), not ${o.inflater.name}`,
        );
      }
      const deflateEnd = m.deflateStart + used;
      if (deflateEnd + TRAILER > o.end) throw err("TRUNCATED", "CRC32", `the member at offset ${hex(at)} ends without its ${TRAILER}-byte trailer`);
      const t = await readBytes(o.file, deflateEnd, TRAILER);
      const tv = new DataView(t.buffer, t.byteOffset, TRAILER);
      const member: GzipMember = { ...m, end: deflateEnd + TRAILER, deflateEnd, crc32: tv.getUint32(0, true), isize: tv.getUint32(4, true) };
      if (crc !== member.crc32) throw err("BAD_CHECKSUM", "CRC32", `member at offset ${hex(at)}: CRC-32 of its data is ${hex(crc)}, its trailer's CRC32 says ${hex(member.crc32)}`);
      if (produced % 2 ** 32 !== member.isize) throw err("BAD_HEADER", "ISIZE", `member at offset ${hex(at)} decompresses to ${hex(produced)} bytes, its ISIZE says ${hex(member.isize)}`);
      members.push(member);
      total += produced;
    } finally {
      s.close();
    }
    at = members[members.length - 1].end;
    const next = at + 2 <= o.end ? await readBytes(o.file, at, 2) : new Uint8Array(0);
    if (!isGzip(next)) break; // whatever follows is ignored, as gzip -d does ("trailing garbage ignored")
    m = await readGzipMember({ ...o, start: at }, o.crc32);
  }
  if (o.inputCrc) {
    let crc = 0;
    for (let pos = o.start; pos < o.end; pos += INPUT_CHUNK) crc = o.crc32(await readBytes(o.file, pos, Math.min(INPUT_CHUNK, o.end - pos)), crc);
    const ic = o.inputCrc;
    if (crc !== ic.crc32 >>> 0) throw err("BAD_CHECKSUM", ic.field, `${ic.what}: CRC-32 is ${hex(crc)}, ${ic.field} says ${hex(ic.crc32 >>> 0)}`);
  }
  return members;
}

function inflateFailure(e: unknown, o: GunzipOptions, produced: number): unknown {
  if (!(e instanceof InflateError)) return e;
  if (e.kind === "truncated") return new GuestImageError("TRUNCATED", `${o.what}: the deflate data is cut short (${e.message})`, { image: o.name, field: "deflate" });
  return new GuestImageError("BAD_HEADER", `${o.what}: corrupt deflate data (${hex(produced)} bytes decompressed before it): ${e.message}`, { image: o.name, field: "deflate" });
}

/** Opens each member as its own GunzipFile (exact ranges, so each is a clean single member) behind one file. */
async function openChain(o: GunzipOptions, members: GzipMember[]): Promise<GunzipChain> {
  const files: GunzipFile[] = [];
  try {
    for (const m of members) {
      if (m.isize === 0) continue; // an empty member adds nothing
      const f = new GunzipFile({ ...o, start: m.start, end: m.end, inputCrc: undefined }, m);
      files.push(f);
      await f.init();
    }
    const chain = new GunzipChain(o.name, files, members.length);
    await chain.initHead(Math.min(o.headBytes, chain.size));
    return chain;
  } catch (e) {
    for (const f of files) await f.close();
    throw e;
  }
}

/** Several members read as one file: the members' outputs one after another. */
export class GunzipChain implements GzipPayload {
  readonly name: string;
  readonly size: number;
  readonly members: number;
  head: Uint8Array = new Uint8Array(0);
  private readonly files: GunzipFile[];
  /** Output offset where each file starts. */
  private readonly starts: number[];

  constructor(name: string, files: GunzipFile[], members: number) {
    this.name = name;
    this.files = files;
    this.members = members;
    let at = 0;
    this.starts = files.map((f) => {
      const s = at;
      at += f.size;
      return s;
    });
    this.size = at;
  }

  /** @internal */
  async initHead(n: number): Promise<void> {
    const head = new Uint8Array(n);
    await this.read(head, 0);
    this.head = head;
  }

  async needUpTo(end: number): Promise<void> {
    for (let i = 0; i < this.files.length; i++) {
      await this.files[i].needUpTo(Math.min(this.files[i].size, Math.max(0, end - this.starts[i])));
    }
  }

  async read(dst: Uint8Array, position: number): Promise<void> {
    checkRead(this, dst, position);
    let o = 0;
    for (let i = 0; i < this.files.length && o < dst.length; i++) {
      const s = this.starts[i];
      const f = this.files[i];
      const pos = position + o;
      if (pos >= s + f.size) continue;
      const n = Math.min(dst.length - o, s + f.size - pos);
      await f.read(dst.subarray(o, o + n), pos - s);
      o += n;
    }
  }

  async close(): Promise<void> {
    for (const f of this.files) await f.close();
  }
}

export class GunzipFile implements GzipPayload {
  readonly members = 1;
  readonly name: string;
  /** The decompressed size the member claims (ISIZE), checked as the data arrives. */
  readonly size: number;
  readonly member: GzipMember;
  /** The first min(headBytes, size) bytes of the output. */
  head: Uint8Array = new Uint8Array(0);
  private readonly o: GunzipOptions;
  private stream: InflateStream | null = null;
  /** Output bytes received from the current stream, and the unread rest of the last chunk. */
  private produced = 0;
  private pending: Uint8Array = new Uint8Array(0);
  private crc = 0;
  /** CRC-32 of the compressed bytes read for the current stream (one object per stream). */
  private inputSum = { crc: 0 };
  /** Reads beyond this position trigger the final drain and checks; see needUpTo(). */
  private verifyAt: number;
  private verified = false;
  /** Reads run one at a time, in call order. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(o: GunzipOptions, member: GzipMember) {
    this.o = o;
    this.name = o.name;
    this.member = member;
    this.size = member.isize;
    this.verifyAt = member.isize;
  }

  /** Position of the next output byte of the current stream. */
  private get cursor(): number {
    return this.produced - this.pending.length;
  }

  /** @internal decodes the head (and verifies everything if the payload is no longer than it). */
  async init(): Promise<void> {
    const head = new Uint8Array(Math.min(this.o.headBytes, this.size));
    await this.fill(head, 0);
    this.head = head;
    if (this.cursor >= this.verifyAt) await this.finish();
  }

  /**
   * Declares that the plan reads nothing at or past `end` (the highest copy end): when a read
   * reaches it, the rest of the stream is drained and the member verified. Verifies now if the
   * reads done so far already got there.
   */
  async needUpTo(end: number): Promise<void> {
    this.verifyAt = Math.min(this.size, Math.max(0, end));
    if (!this.verified && (this.verifyAt === 0 || this.cursor >= this.verifyAt)) await this.serial(() => this.finish());
  }

  read(dst: Uint8Array, position: number): Promise<void> {
    return this.serial(async () => {
      checkRead(this, dst, position);
      let o = 0;
      if (position < this.head.length) {
        o = Math.min(dst.length, this.head.length - position);
        dst.set(this.head.subarray(position, position + o));
      }
      if (o < dst.length) await this.fill(dst.subarray(o), position + o);
      if (!this.verified && this.cursor >= this.verifyAt) await this.finish();
    });
  }

  async close(): Promise<void> {
    this.drop();
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => {});
    return run;
  }

  private drop(): void {
    this.stream?.close();
    this.stream = null;
    this.pending = new Uint8Array(0);
    this.produced = 0;
  }

  /** Fills `dst` with output from `position`, restarting the stream if it is already past it. */
  private async fill(dst: Uint8Array, position: number): Promise<void> {
    try {
      if (!this.stream || position < this.cursor) this.start();
      while (this.cursor < position) {
        if (!this.pending.length) await this.pull(true);
        const k = Math.min(this.pending.length, position - this.cursor);
        this.pending = this.pending.subarray(k);
      }
      let o = 0;
      while (o < dst.length) {
        if (!this.pending.length) await this.pull(true);
        const k = Math.min(this.pending.length, dst.length - o);
        dst.set(this.pending.subarray(0, k), o);
        this.pending = this.pending.subarray(k);
        o += k;
      }
    } catch (e) {
      this.drop();
      throw e;
    }
  }

  private start(): void {
    this.drop();
    this.verified = false;
    this.crc = 0;
    this.inputSum = { crc: 0 };
    this.stream = this.o.inflater.inflateRaw(deflateInput(this.o.file, this.member, this.o.inputCrc ? { sum: this.inputSum, crc32: this.o.crc32 } : undefined));
  }

  /** Pulls the next output chunk into `pending`; at the end of the stream, checks how it ended. */
  private async pull(needMore: boolean): Promise<boolean> {
    let chunk: Uint8Array | null;
    try {
      chunk = await this.stream!.next();
    } catch (e) {
      throw this.inflateError(e);
    }
    if (chunk === null) {
      await this.checkEnd();
      if (needMore) {
        throw this.err("TRUNCATED", "ISIZE", `the deflate data ends after ${hex(this.produced)} bytes, but ISIZE says ${hex(this.size)}`);
      }
      return false;
    }
    this.produced += chunk.length;
    if (this.produced > this.size) {
      throw this.err("TOO_LARGE", "ISIZE", `decompresses to more than the ${hex(this.size)} bytes ISIZE says (stopped at ${hex(this.produced)})`);
    }
    this.crc = this.o.crc32(chunk, this.crc);
    this.pending = chunk;
    return true;
  }

  /** The deflate stream ended: it must have used all the deflate data (one member, no trailing bytes). */
  private async checkEnd(): Promise<void> {
    const used = this.stream!.consumed();
    const m = this.member;
    if (used === undefined || m.deflateStart + used === m.deflateEnd) return;
    const after = m.deflateStart + used + TRAILER;
    const next = after + 2 <= m.end ? await readBytes(this.o.file, after, 2) : new Uint8Array(0);
    if (isGzip(next)) {
      throw this.err(
        "UNSUPPORTED",
        "ID1",
        `a second gzip member starts at offset ${hex(after)}: concatenated members are not supported (QEMU and U-Boot read only the first); recompress as one member`,
      );
    }
    throw this.err(
      "BAD_HEADER",
      "ISIZE",
      `the deflate data ends at offset ${hex(m.deflateStart + used)}, ${hex(m.deflateEnd - m.deflateStart - used)} bytes before the trailer at the end of the data`,
    );
  }

  /** Reads the stream to its end and checks the trailer (and the input CRC). */
  private async finish(): Promise<void> {
    try {
      if (!this.stream) this.start();
      this.pending = new Uint8Array(0);
      while (await this.pull(false)) this.pending = new Uint8Array(0);
      if (this.produced !== this.size) {
        throw this.err("TRUNCATED", "ISIZE", `the deflate data ends after ${hex(this.produced)} bytes, but ISIZE says ${hex(this.size)}`);
      }
      if (this.crc !== this.member.crc32) {
        // An inflater that cannot tell where the deflate data ended also lands here when a second
        // member or other bytes follow the first one.
        const hint = this.stream?.consumed() === undefined ? " (or more data follows the first gzip member)" : "";
        throw this.err("BAD_CHECKSUM", "CRC32", `CRC-32 of the decompressed data is ${hex(this.crc)}, the trailer's CRC32 says ${hex(this.member.crc32)}${hint}`);
      }
      const ic = this.o.inputCrc;
      if (ic && this.inputSum.crc !== ic.crc32 >>> 0) {
        throw this.err("BAD_CHECKSUM", ic.field, `${ic.what}: CRC-32 is ${hex(this.inputSum.crc)}, ${ic.field} says ${hex(ic.crc32 >>> 0)}`);
      }
      this.stream = null;
      this.verified = true;
    } catch (e) {
      this.drop();
      throw e;
    }
  }

  private err(code: ErrorCode, field: string, msg: string): GuestImageError {
    return new GuestImageError(code, `${this.o.what}: ${msg}`, { image: this.name, field });
  }

  private inflateError(e: unknown): unknown {
    if (!(e instanceof InflateError)) return e;
    if (e.kind === "truncated") return this.err("TRUNCATED", "deflate", `the deflate data is cut short (${e.message})`);
    if (e.kind === "trailing") {
      return this.err("BAD_HEADER", "ISIZE", `data follows the end of the deflate stream before the trailer (a second member or trailing bytes): ${e.message}`);
    }
    return this.err("BAD_HEADER", "deflate", `corrupt deflate data (${hex(this.produced)} bytes decompressed before it): ${e.message}`);
  }
}

/**
 * A member's deflate data, read a chunk at a time. With `whole`, the header and trailer are read
 * too and every byte is summed into `whole.sum` (a stream that was dropped may still finish a
 * read: it only touches its own sum object).
 */
async function* deflateInput(file: ImageFile, m: GzipMember, whole?: { sum: { crc: number }; crc32: Crc32 }): AsyncGenerator<Uint8Array> {
  const from = whole ? m.start : m.deflateStart;
  const to = whole ? m.end : m.deflateEnd;
  for (let pos = from; pos < to; pos += INPUT_CHUNK) {
    const n = Math.min(INPUT_CHUNK, to - pos);
    const chunk = await readBytes(file, pos, n);
    if (whole) whole.sum.crc = whole.crc32(chunk, whole.sum.crc);
    const lo = Math.max(pos, m.deflateStart);
    const hi = Math.min(pos + n, m.deflateEnd);
    if (hi > lo) yield chunk.subarray(lo - pos, hi - pos);
  }
}

/** Decompresses the first `n` bytes of a member (or fewer if it is shorter), unchecked: for `inspect`. */
export async function inflatePrefix(member: GzipMember, file: ImageFile, inflater: Inflater, n: number): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  let o = 0;
  const s = inflater.inflateRaw(deflateInput(file, member));
  try {
    while (o < n) {
      const c = await s.next();
      if (!c) break;
      const k = Math.min(c.length, n - o);
      out.set(c.subarray(0, k), o);
      o += k;
    }
  } finally {
    s.close();
  }
  return out.subarray(0, o);
}
