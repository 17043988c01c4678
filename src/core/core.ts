// Loads the Wasm core (bytes embedded, so no fs or fetch is needed) and wraps its exports in
// typed functions. Raw exports wrap their i32 arguments (ToInt32), so every caller passes
// offsets that were checked against the memory first; returns ≥ 2^31 are fixed with `>>> 0`.
import { GuestImageError } from "../errors.js";
import { CORE_SHARED_WASM_BASE64, CORE_WASM_BASE64 } from "./wasm-bytes.js";

interface CoreExports {
  copy(dst: number, src: number, len: number): void;
  fill(dst: number, value: number, len: number): void;
  crc32Init(table: number): void;
  crc32(table: number, ptr: number, len: number, prev: number): number;
  isZero(ptr: number, len: number): number;
  elfRelocCheck(
    table: number, count: number, entsize: number, is64: number, be: number,
    relativeType: number, strict: number, vbase: bigint, segs: number, nsegs: number,
  ): number;
  relocCount(): number;
  rela64le(
    mode: number, table: number, count: number, entsize: number, relativeType: number, strict: number,
    vbase: bigint, segs: number, nsegs: number, image: number, delta: bigint,
  ): number;
  relrCheck(table: number, count: number, is64: number, be: number, vbase: bigint, segs: number, nsegs: number, cont: number): number;
  relrApply(table: number, count: number, is64: number, be: number, vbase: bigint, image: number, delta: bigint, cont: number): number;
  elfRelocApply(
    table: number, count: number, entsize: number, is64: number, be: number, rela: number,
    relativeType: number, vbase: bigint, image: number, delta: bigint,
  ): number;
  x86RelocCheck(table: number, count: number, vbase32: number, width: number, segs: number, nsegs: number): number;
  x86RelocApply(table: number, count: number, vbase32: number, image: number, kind: number, delta: bigint): void;
  lzo1xDecode(ip: number, iend: number, op: number, low: number, oend: number): number;
  lzoErrAt(): number;
  lzoErrArg(): number;
  lzoOut(): number;
  adler32(ptr: number, len: number, prev: number): number;
  lz4Decode(ip: number, iend: number, rest: number, op: number, low: number, oend: number): number;
  lz4In(): number;
  lz4Out(): number;
  lz4ErrAt(): number;
  lz4ErrArg(): number;
  lz4Xxh32(ptr: number, len: number, seed: number): number;
  zstdInfo(i: number): number;
  zstdOut(): number;
  zstdHufTable(weights: number, n: number, maxBits: number, table: number, ranks: number): void;
  zstdHuf1(start: number, end: number, table: number, maxBits: number, dst: number, n: number): number;
  zstdHuf4(start: number, s1: number, s2: number, s3: number, end: number, table: number, maxBits: number, dst: number, n: number): number;
  zstdSeq(
    bs: number, bsEnd: number, nseq: number, llT: number, llLog: number, ofT: number, ofLog: number, mlT: number, mlLog: number,
    lit: number, nlit: number, dp: number, low: number, dend: number, wend: number, rep: number,
  ): number;
  zstdXxh64Low(ptr: number, len: number): number;
  zstdFseBuild(table: number, counts: number, nsym: number, log: number, vals: number, isOf: number, tmp: number): number;
}

function decodeBase64(b64: string): Uint8Array<ArrayBuffer> {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

const modulePromises: [Promise<WebAssembly.Module>?, Promise<WebAssembly.Module>?] = [];

/**
 * The compiled core module (compiled once per process/page). There are two builds of the same
 * code: one imports a plain memory, the other (`shared`) a shared one, because a memory import
 * links only to a memory of the same shared state.
 */
export function coreModule(shared = false): Promise<WebAssembly.Module> {
  return (modulePromises[+shared] ??= WebAssembly.compile(coreWasmBytes(shared)));
}

/** The raw bytes of the core module, for tests that inspect its sections. */
export function coreWasmBytes(shared = false): Uint8Array<ArrayBuffer> {
  return decodeBase64(shared ? CORE_SHARED_WASM_BASE64 : CORE_WASM_BASE64);
}

/**
 * Whether a memory is shared (its buffer is a SharedArrayBuffer). Tested by tag, because a page
 * that is not cross-origin isolated has no global SharedArrayBuffer constructor to compare with.
 */
export function isSharedMemory(memory: WebAssembly.Memory): boolean {
  return Object.prototype.toString.call(memory.buffer) === "[object SharedArrayBuffer]";
}

/**
 * A platform CRC-32 (zlib/IEEE) faster than the core's slicing-by-8 — Node's zlib.crc32 runs at
 * ~3x (carry-less multiply) — registered by the Node entry. Below PLATFORM_CRC_MIN bytes the
 * call overhead wins and the core is used.
 */
let platformCrc32: ((data: Uint8Array, prev: number) => number) | undefined;
const PLATFORM_CRC_MIN = 4096;
export function setPlatformCrc32(f: ((data: Uint8Array, prev: number) => number) | undefined): void {
  platformCrc32 = f;
}

/** Scratch layout inside the VM's scratch area (see Core). */
export const CRC_TABLE_BYTES = 8 * 1024;
export const SEG_TABLE_BYTES = 4 * 1024; // 256 segments × 16 bytes
export const BATCH_BYTES = 64 * 1024;

/**
 * The zstd decoder's area (assembly/zstd.ts): one compressed block with 32 bytes before it and
 * 16 after it for the bit readers' 8-byte loads, the block's literals (readable 16 bytes past
 * their end for wide copies), the Huffman table (2^11 u16), the sequence tables (LL and ML 2^9,
 * OF 2^8 entries of 8 bytes), Huffman weights, rank counts and the three repeat offsets. Each
 * part is 16-byte aligned inside the area; the area starts at the first 16-byte boundary at or
 * after the end of the batch area (hence the 16 bytes of slack).
 */
const ZSTD_BLOCK = 128 * 1024;
export const ZSTD_LAYOUT = {
  in: 0,
  lit: ZSTD_BLOCK + 64,
  huf: 2 * (ZSTD_BLOCK + 64),
  ll: 2 * (ZSTD_BLOCK + 64) + 4096,
  ml: 2 * (ZSTD_BLOCK + 64) + 8192,
  of: 2 * (ZSTD_BLOCK + 64) + 12288,
  weights: 2 * (ZSTD_BLOCK + 64) + 14336,
  ranks: 2 * (ZSTD_BLOCK + 64) + 14336 + 256,
  rep: 2 * (ZSTD_BLOCK + 64) + 14336 + 320,
  /** FSE table building: counts (53 i16), its temporary (640 bytes), the LL and ML value tables (8 bytes per symbol). */
  counts: 2 * (ZSTD_BLOCK + 64) + 14336 + 336,
  fseTmp: 2 * (ZSTD_BLOCK + 64) + 14336 + 336 + 112,
  llVals: 2 * (ZSTD_BLOCK + 64) + 14336 + 336 + 112 + 640,
  mlVals: 2 * (ZSTD_BLOCK + 64) + 14336 + 336 + 112 + 640 + 36 * 8,
  /** Bytes of slack before a block's copy at `in` (the sequence reader may look up to 14 back). */
  inSlack: 32,
  bytes: 2 * (ZSTD_BLOCK + 64) + 14336 + 336 + 112 + 640 + 36 * 8 + 53 * 8 + 8 + 16,
} as const;
export const ZSTD_SCRATCH_BYTES = ZSTD_LAYOUT.bytes;

export const SCRATCH_BYTES = CRC_TABLE_BYTES + SEG_TABLE_BYTES + BATCH_BYTES + ZSTD_SCRATCH_BYTES;

/**
 * The last LZO_INPUT_BYTES of the scratch area, inside the zstd area: one lzop block's compressed
 * bytes, copied in for the core's LZO1X loop (src/compress/lzo.ts accepts blocks of at most
 * 256 KiB, as lzop and Linux's unlzo do, and a compressed block is shorter than its output). Each
 * area is used only inside one synchronous decode, so they share the bytes.
 */
export const LZO_INPUT_BYTES = 256 * 1024;
/** src/compress/lz4.ts feeds LZ4 blocks through the same area, a piece of at most this size at a time. */
export const LZ4_INPUT_BYTES = LZO_INPUT_BYTES;
if (ZSTD_SCRATCH_BYTES < LZO_INPUT_BYTES + 16) throw new Error("core.ts: the LZO input area must fit in the zstd area");
export const MAX_RELOC_SEGMENTS = SEG_TABLE_BYTES / 16;

/**
 * One instance of the core bound to one WebAssembly.Memory, plus a small scratch area in that
 * memory (CRC table, segment table, relocation batch) that is never guest RAM.
 */
export class Core {
  readonly memory: WebAssembly.Memory;
  private readonly x: CoreExports;
  private readonly crcTable: number;
  readonly segTable: number;
  readonly batch: number;
  /** Where lzo1x() expects its input (LZO_INPUT_BYTES). */
  readonly lzoInput: number;
  /** Linear offset of the zstd area (16-byte aligned; parts at ZSTD_LAYOUT offsets from it). */
  readonly zstdArea: number;

  private constructor(memory: WebAssembly.Memory, x: CoreExports, scratch: number) {
    this.memory = memory;
    this.x = x;
    this.crcTable = scratch;
    this.segTable = scratch + CRC_TABLE_BYTES;
    this.batch = this.segTable + SEG_TABLE_BYTES;
    this.lzoInput = scratch + SCRATCH_BYTES - LZO_INPUT_BYTES;
    this.zstdArea = Math.ceil((this.batch + BATCH_BYTES) / 16) * 16;
    x.crc32Init(this.crcTable);
  }

  static async create(memory: WebAssembly.Memory, scratch: number): Promise<Core> {
    let instance: WebAssembly.Instance;
    try {
      instance = await WebAssembly.instantiate(await coreModule(isSharedMemory(memory)), { env: { memory } });
    } catch (e) {
      throw new GuestImageError("BAD_ARGUMENT", `the loader's Wasm core cannot use this memory: ${(e as Error).message}`, { field: "memory", cause: e });
    }
    return new Core(memory, instance.exports as unknown as CoreExports, scratch);
  }

  /** A fresh view of all of linear memory (views detach when the memory grows). */
  bytes(): Uint8Array {
    return new Uint8Array(this.memory.buffer);
  }

  copy(dst: number, src: number, len: number): void {
    if (len > 0) this.x.copy(dst, src, len);
  }

  fill(dst: number, value: number, len: number): void {
    if (len > 0) this.x.fill(dst, value, len);
  }

  isZero(ptr: number, len: number): boolean {
    return this.x.isZero(ptr, len) !== 0;
  }

  /** CRC-32 (zlib/IEEE) of linear memory [ptr, ptr + len), continuing from `prev`. */
  crc32(ptr: number, len: number, prev = 0): number {
    if (platformCrc32 && len >= PLATFORM_CRC_MIN) return platformCrc32(new Uint8Array(this.memory.buffer, ptr, len), prev) >>> 0;
    return this.x.crc32(this.crcTable, ptr, len, prev) >>> 0;
  }

  /** CRC-32 of bytes outside linear memory: by the platform's CRC, or fed through the batch area. */
  crc32Bytes(data: Uint8Array, prev = 0): number {
    if (platformCrc32 && data.length >= PLATFORM_CRC_MIN) return platformCrc32(data, prev) >>> 0;
    let crc = prev;
    for (let off = 0; off < data.length; off += BATCH_BYTES) {
      const part = data.subarray(off, Math.min(data.length, off + BATCH_BYTES));
      this.bytes().set(part, this.batch);
      crc = this.crc32(this.batch, part.length, crc);
    }
    return crc;
  }

  /** Writes image-relative [lo, hi) segment ranges into the segment table. */
  setSegments(segs: ReadonlyArray<readonly [bigint, bigint]>): number {
    const dv = new DataView(this.memory.buffer, this.segTable, SEG_TABLE_BYTES);
    segs.forEach(([lo, hi], i) => {
      dv.setBigUint64(i * 16, lo, true);
      dv.setBigUint64(i * 16 + 8, hi, true);
    });
    return segs.length;
  }

  /**
   * Streams `table` (entries of `entsize` bytes) through the batch area, calling `fn` with the
   * batch offset, the entry count in the batch and the index of its first entry. Stops early
   * when `fn` returns a number ≥ 0 and returns that (as a whole-table index).
   */
  forEachBatch(table: Uint8Array, entsize: number, fn: (ptr: number, count: number, first: number) => number): number {
    const perBatch = Math.floor(BATCH_BYTES / entsize);
    const total = Math.floor(table.length / entsize);
    for (let first = 0; first < total; first += perBatch) {
      const count = Math.min(perBatch, total - first);
      this.bytes().set(table.subarray(first * entsize, (first + count) * entsize), this.batch);
      const r = fn(this.batch, count, first);
      if (r >= 0) return first + r;
    }
    return -1;
  }

  /**
   * Checks `count` REL/RELA entries at `ptr` against the segment table: the index of the first
   * bad one, or -1 (then relocCount() is the number of RELATIVE entries). Not `strict`: types
   * other than RELATIVE and NONE are passed over instead of refused.
   */
  elfRelocCheck(
    ptr: number, count: number, entsize: number, is64: boolean, be: boolean,
    relativeType: number, vbase: bigint, nsegs: number, strict = true,
  ): number {
    // ELF64 little-endian (most tables): one small export for both passes, so V8 optimises just
    // those loops, once (see assembly/index.ts).
    if (is64 && !be) return this.x.rela64le(0, ptr, count, entsize, relativeType, +strict, BigInt.asIntN(64, vbase), this.segTable, nsegs, 0, 0n);
    return this.x.elfRelocCheck(ptr, count, entsize, +is64, +be, relativeType, +strict, BigInt.asIntN(64, vbase), this.segTable, nsegs);
  }

  /**
   * ELF64 little-endian RELA only: checks and applies `count` entries at `ptr` in one pass over the
   * table (block by block: a block is applied right after it checks out). Returns the index of the
   * first bad entry (the blocks before it are applied: the caller undoes them) or -1 (relocCount()
   * is then the number of sites patched). The segment table must exclude the table itself.
   */
  rela64leCheckApply(ptr: number, count: number, entsize: number, relativeType: number, vbase: bigint, nsegs: number, image: number, delta: bigint, strict = true): number {
    return this.x.rela64le(2, ptr, count, entsize, relativeType, +strict, BigInt.asIntN(64, vbase), this.segTable, nsegs, image, BigInt.asIntN(64, delta));
  }

  /** Sites found by the last successful elfRelocCheck or relrCheck. */
  relocCount(): number {
    return this.x.relocCount() >>> 0;
  }

  /**
   * Checks a DT_RELR table of `count` words at `ptr`: index of the first bad word, or -1. With
   * `cont`, the words continue those of the previous call (a table passed in batches).
   */
  relrCheck(ptr: number, count: number, is64: boolean, be: boolean, vbase: bigint, nsegs: number, cont = false): number {
    return this.x.relrCheck(ptr, count, +is64, +be, BigInt.asIntN(64, vbase), this.segTable, nsegs, +cont);
  }

  /** Applies a DT_RELR table checked by relrCheck (every site += delta); returns the sites patched. */
  relrApply(ptr: number, count: number, is64: boolean, be: boolean, vbase: bigint, image: number, delta: bigint, cont = false): number {
    return this.x.relrApply(ptr, count, +is64, +be, BigInt.asIntN(64, vbase), image, BigInt.asIntN(64, delta), +cont) >>> 0;
  }

  elfRelocApply(
    ptr: number, count: number, entsize: number, is64: boolean, be: boolean, rela: boolean,
    relativeType: number, vbase: bigint, image: number, delta: bigint,
  ): number {
    if (is64 && !be && rela) return this.x.rela64le(1, ptr, count, entsize, relativeType, 1, BigInt.asIntN(64, vbase), 0, 0, image, BigInt.asIntN(64, delta)) >>> 0;
    return this.x.elfRelocApply(
      ptr, count, entsize, +is64, +be, +rela, relativeType,
      BigInt.asIntN(64, vbase), image, BigInt.asIntN(64, delta),
    ) >>> 0;
  }

  x86RelocCheck(ptr: number, count: number, vbase32: number, width: number, nsegs: number): number {
    return this.x.x86RelocCheck(ptr, count, vbase32 | 0, width, this.segTable, nsegs);
  }

  x86RelocApply(ptr: number, count: number, vbase32: number, image: number, kind: 0 | 1 | 2, delta: bigint): void {
    this.x.x86RelocApply(ptr, count, vbase32 | 0, image, kind, BigInt.asIntN(64, delta));
  }

  /**
   * Decodes one LZO1X block from linear memory [ip, iend) to [op, oend), matches reaching back no
   * further than `low` (assembly/lzo.ts). Both ranges must lie in the memory (the caller checks);
   * the loop checks everything the stream decides. Returns 0, or a failure code with its input
   * offset and value; `out` is where the output stopped.
   */
  lzo1x(ip: number, iend: number, op: number, low: number, oend: number): { code: number; out: number; at: number; arg: number } {
    const code = this.x.lzo1xDecode(ip, iend, op, low, oend);
    return { code, out: this.x.lzoOut() >>> 0, at: this.x.lzoErrAt() >>> 0, arg: this.x.lzoErrArg() >>> 0 };
  }

  /**
   * Decodes the sequences of one piece [ip, iend) of an LZ4 block (`rest` bytes of the block follow
   * it) to [op, oend), matches reaching back no further than `low` (assembly/lz4.ts). Both ranges
   * must lie in the memory (the caller checks). Returns 0 (block done), 1 (the next sequence, at
   * `in`, does not lie wholly in the piece) or a failure code with its input position and value;
   * `out` is where the output stopped.
   */
  lz4(ip: number, iend: number, rest: number, op: number, low: number, oend: number): { code: number; in: number; out: number; at: number; arg: number } {
    const code = this.x.lz4Decode(ip, iend, rest, op, low, oend);
    return { code, in: this.x.lz4In() >>> 0, out: this.x.lz4Out() >>> 0, at: this.x.lz4ErrAt() >>> 0, arg: this.x.lz4ErrArg() >>> 0 };
  }

  /** XXH32 (seed 0) of linear memory [ptr, ptr + len): an LZ4 frame's content checksum. */
  xxh32(ptr: number, len: number): number {
    return this.x.lz4Xxh32(ptr, len, 0) >>> 0;
  }

  /** Adler-32 (RFC 1950) of linear memory [ptr, ptr + len), continuing from `prev` (1 to start). */
  adler32(ptr: number, len: number, prev = 1): number {
    return this.x.adler32(ptr, len, prev) >>> 0;
  }

  // ── zstd (assembly/zstd.ts). The caller (src/compress/zstd.ts) has checked every argument
  // against the zstd area and the output range; see there. ──

  /** Builds the Huffman decoding table at the zstd area's `huf` from `n` weights at `weights`. */
  zstdHufTable(n: number, maxBits: number): void {
    const z = this.zstdArea;
    this.x.zstdHufTable(z + ZSTD_LAYOUT.weights, n, maxBits, z + ZSTD_LAYOUT.huf, z + ZSTD_LAYOUT.ranks);
  }

  /** Decodes one Huffman literals stream [start, end) into n bytes at dst; returns the bits left (0 = exact). */
  zstdHuf1(start: number, end: number, maxBits: number, dst: number, n: number): number {
    return this.x.zstdHuf1(start, end, this.zstdArea + ZSTD_LAYOUT.huf, maxBits, dst, n);
  }

  /**
   * Decodes the four Huffman streams from start (sizes s1, s2, s3, the last up to end) into n
   * bytes at dst: 0, or 1 + the index of the first stream whose bits do not come out exactly
   * (its bits left: zstdInfo(0), as a signed number).
   */
  zstdHuf4(start: number, s1: number, s2: number, s3: number, end: number, maxBits: number, dst: number, n: number): number {
    return this.x.zstdHuf4(start, s1, s2, s3, end, this.zstdArea + ZSTD_LAYOUT.huf, maxBits, dst, n);
  }

  /** Decodes and executes nseq sequences (tables and literals in the zstd area); 0 or an error code (zstdInfo). */
  zstdSeq(bs: number, bsEnd: number, nseq: number, llLog: number, ofLog: number, mlLog: number, nlit: number, dp: number, low: number, dend: number, wend: number): number {
    const z = this.zstdArea;
    return this.x.zstdSeq(
      bs, bsEnd, nseq, z + ZSTD_LAYOUT.ll, llLog, z + ZSTD_LAYOUT.of, ofLog, z + ZSTD_LAYOUT.ml, mlLog,
      z + ZSTD_LAYOUT.lit, nlit, dp, low, dend, wend, z + ZSTD_LAYOUT.rep,
    );
  }

  /**
   * Builds sequence table `which` (0 LL, 1 OF, 2 ML) from the nsym counts at the area's `counts`
   * (their sum checked to be 1 << log); the LL and ML value tables must be at llVals/mlVals.
   * Returns false when the distribution does not fill the table.
   */
  zstdFseBuild(which: 0 | 1 | 2, nsym: number, log: number): boolean {
    const z = this.zstdArea;
    const table = z + (which === 0 ? ZSTD_LAYOUT.ll : which === 1 ? ZSTD_LAYOUT.of : ZSTD_LAYOUT.ml);
    const vals = z + (which === 2 ? ZSTD_LAYOUT.mlVals : ZSTD_LAYOUT.llVals);
    return this.x.zstdFseBuild(table, z + ZSTD_LAYOUT.counts, nsym, log, vals, +(which === 1), z + ZSTD_LAYOUT.fseTmp) === 0;
  }

  /** Detail i (0..2) of the last zstdSeq error. */
  zstdInfo(i: number): number {
    return this.x.zstdInfo(i) >>> 0;
  }

  /** The output position (linear) after the last successful zstdSeq. */
  zstdOut(): number {
    return this.x.zstdOut() >>> 0;
  }

  /** The low 32 bits of XXH64 (seed 0) of linear memory [ptr, ptr + len). */
  xxh64Low(ptr: number, len: number): number {
    return this.x.zstdXxh64Low(ptr, len) >>> 0;
  }
}
