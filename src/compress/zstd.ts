// Zstandard (RFC 8878): frames with or without Frame_Content_Size, single-segment frames, several
// frames one after another and skippable frames between them (as `zstd -dc` reads them), the
// content checksum (low 32 bits of XXH64). Frames that need a dictionary are refused
// ("unsupported"). Bytes after the last frame that start no frame end the stream (`consumed`
// says where).
//
// Section numbers below are RFC 8878's. The output goes straight into `out` (guest RAM) and
// matches read it back there: the window is the frame's output itself. Only the literals of one
// block (at most 128 KiB) are decoded into a buffer of their own, as every zstd decoder does.
//
// Two sets of loops, same results and errors. Given the VM's Wasm core (DecodeOptions.core) and
// an `out` in its memory, the hot loops run in the core (assembly/zstd.ts): each compressed block
// is copied into the core's zstd scratch area, the literals are decoded there, the tables are
// built there, and the sequences are executed straight into `out` — everything the stream can
// make go wrong is checked inside those loops and comes back as an error code mapped here to the
// message the TypeScript loops give. Frame, block and table headers are parsed here either way.
// Without the core (host buffers, head peeks, measure(), the fuzz lane) the TypeScript loops run.
import type { Core } from "../core/core.js";
import { ZSTD_LAYOUT } from "../core/core.js";
import { CodecError, type Codec, type DecodeOptions, type DecodeResult } from "./codec.js";
import { xxh64 } from "./xxhash.js";

const MAGIC = 0xfd2fb528;
const SKIPPABLE_MASK = 0xfffffff0;
const SKIPPABLE = 0x184d2a50;
/** §3.1.1.2: Block_Maximum_Size is at most 128 KiB. */
const BLOCK_MAX = 128 << 10;

const hex = (n: number) => "0x" + n.toString(16);
const rd32 = (b: Uint8Array, i: number) => (b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24)) >>> 0;

/** Thrown inside the decoder when a peek (stopAfter) has all the output it asked for. */
class Enough {}

// ── §4.1 FSE tables ──

/** A decoding table: per state its symbol, the bits to read and the base of the next state. */
interface Fse {
  log: number;
  sym: Uint8Array;
  nb: Uint8Array;
  base: Uint16Array;
  /** Changes whenever the table is rebuilt (so the core's copy is rebuilt only then). */
  ver: number;
}

let fseVersion = 0;
const newFse = (maxLog: number): Fse => ({ log: 0, sym: new Uint8Array(1 << maxLog), nb: new Uint8Array(1 << maxLog), base: new Uint16Array(1 << maxLog), ver: 0 });

const highbit = (x: number) => 31 - Math.clz32(x);

/** §4.1.1: builds `t` from normalized counts (-1 = "less than one"). */
function buildFse(t: Fse, counts: ArrayLike<number>, nsym: number, log: number): void {
  const size = 1 << log;
  const next = new Uint16Array(nsym);
  let high = size - 1;
  t.log = log;
  t.ver = ++fseVersion;
  for (let s = 0; s < nsym; s++) {
    if (counts[s] === -1) {
      t.sym[high--] = s;
      next[s] = 1;
    } else next[s] = counts[s];
  }
  const step = (size >>> 1) + (size >>> 3) + 3;
  const mask = size - 1;
  let pos = 0;
  for (let s = 0; s < nsym; s++) {
    for (let i = 0; i < counts[s]; i++) {
      t.sym[pos] = s;
      do pos = (pos + step) & mask;
      while (pos > high);
    }
  }
  if (pos !== 0) throw new CodecError("corrupt", 0, "zstd: an FSE distribution does not fill its table");
  for (let u = 0; u < size; u++) {
    const s = t.sym[u];
    const n = next[s]++;
    const nb = log - highbit(n);
    t.nb[u] = nb;
    t.base[u] = (n << nb) - size;
  }
}

/** Table with one symbol (RLE mode): every state decodes `s` and reads nothing. */
function rleFse(t: Fse, s: number): void {
  t.log = 0;
  t.ver = ++fseVersion;
  t.sym[0] = s;
  t.nb[0] = 0;
  t.base[0] = 0;
}

/**
 * §4.1.1: reads an FSE table description at input[p]; returns the bytes it takes. `what` names
 * the table for messages.
 */
function readFseDescription(
  input: Uint8Array, p: number, end: number, t: Fse, maxSym: number, maxLog: number, what: string,
  build: (t: Fse, counts: Int16Array, nsym: number, log: number) => void = buildFse,
): number {
  const counts = new Int16Array(maxSym + 1);
  let bit = 0; // forward bit position from p
  const bits = (n: number): number => {
    const i = p + (bit >>> 3);
    const w = input[i] | (input[i + 1] << 8) | (input[i + 2] << 16) | (input[i + 3] << 24);
    return (w >>> (bit & 7)) & ((1 << n) - 1);
  };
  if (end - p < 1) throw new CodecError("corrupt", p, `zstd: ${what} table description at offset ${hex(p)} runs past its block`);
  const log = (input[p] & 15) + 5;
  bit = 4;
  if (log > maxLog) throw new CodecError("corrupt", p, `zstd: ${what} table at offset ${hex(p)} has Accuracy_Log ${log}, more than ${maxLog}`);
  let remaining = (1 << log) + 1;
  let threshold = 1 << log;
  let nbBits = log + 1;
  let s = 0;
  while (remaining > 1 && s <= maxSym) {
    const max = 2 * threshold - 1 - remaining;
    let v = bits(nbBits);
    if ((v & (threshold - 1)) < max) {
      v &= threshold - 1;
      bit += nbBits - 1;
    } else {
      v &= 2 * threshold - 1;
      if (v >= threshold) v -= max;
      bit += nbBits;
    }
    const c = v - 1;
    remaining -= c < 0 ? -c : c;
    counts[s++] = c;
    if (c === 0) {
      // repeat flags: 2 bits each, 3 = "three more zeros and another flag"
      for (;;) {
        const r = bits(2);
        bit += 2;
        for (let k = 0; k < r; k++) {
          if (s > maxSym) throw new CodecError("corrupt", p, `zstd: ${what} table at offset ${hex(p)} has counts past symbol ${maxSym}`);
          counts[s++] = 0;
        }
        if (r !== 3) break;
      }
    }
    while (remaining < threshold) {
      nbBits--;
      threshold >>>= 1;
    }
    if (p + (bit >>> 3) > end) throw new CodecError("corrupt", p, `zstd: ${what} table description at offset ${hex(p)} runs past its block`);
  }
  if (remaining !== 1) throw new CodecError("corrupt", p, `zstd: ${what} table at offset ${hex(p)}: the probabilities do not add up to 2^${log}`);
  const used = (bit + 7) >>> 3;
  if (p + used > end) throw new CodecError("corrupt", p, `zstd: ${what} table description at offset ${hex(p)} runs past its block`);
  try {
    build(t, counts, s, log);
  } catch (e) {
    if (e instanceof CodecError) throw new CodecError("corrupt", p, `zstd: ${what} table at offset ${hex(p)}: its distribution does not fill the table`);
    throw e;
  }
  return used;
}

// §3.1.1.3.2.2 default distributions and the code tables of §3.1.1.3.2.1.1
const LL_DEFAULT = [4, 3, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 3, 2, 1, 1, 1, 1, 1, -1, -1, -1, -1];
const ML_DEFAULT = [
  1, 4, 3, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
  1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1, -1, -1,
];
const OF_DEFAULT = [1, 1, 1, 1, 1, 1, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1];
const LL_BASE = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 18, 20, 22, 24, 28, 32, 40, 48, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536];
const LL_BITS = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 3, 3, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16];
const ML_BASE = [
  3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34,
  35, 37, 39, 41, 43, 47, 51, 59, 67, 83, 99, 131, 259, 515, 1027, 2051, 4099, 8195, 16387, 32771, 65539,
];
const ML_BITS = [
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  1, 1, 1, 1, 2, 2, 3, 3, 4, 4, 5, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
];

let predefined: { ll: Fse; ml: Fse; of: Fse } | undefined;
function predefinedTables(): { ll: Fse; ml: Fse; of: Fse } {
  if (!predefined) {
    const ll = newFse(6);
    const ml = newFse(6);
    const of = newFse(5);
    buildFse(ll, LL_DEFAULT, LL_DEFAULT.length, 6);
    buildFse(ml, ML_DEFAULT, ML_DEFAULT.length, 6);
    buildFse(of, OF_DEFAULT, OF_DEFAULT.length, 5);
    predefined = { ll, ml, of };
  }
  return predefined;
}

// ── backward bit stream (§4.1: read from the end, the last byte's highest set bit is padding) ──

let bs: Uint8Array = new Uint8Array(0);
let bsStart = 0;
/** Bits left, counted from bit 0 of input[bsStart]; negative once more were read than exist. */
let bpos = 0;

/** Whether bitsInit(input, start, end) would accept the stream. */
const streamOk = (input: Uint8Array, start: number, end: number) => end > start && input[end - 1] !== 0;

/** Starts reading input[start, end) backward. */
function bitsInit(input: Uint8Array, start: number, end: number, what: string): void {
  if (end <= start) throw new CodecError("corrupt", start, `zstd: ${what} at offset ${hex(start)} is empty`);
  const last = input[end - 1];
  if (last === 0) throw new CodecError("corrupt", end - 1, `zstd: ${what} at offset ${hex(start)} ends in a zero byte (no end-of-stream bit)`);
  bs = input;
  bsStart = start;
  bpos = (end - start) * 8 - 8 + highbit(last);
}

/** The next n (<= 25) bits, without consuming them; bits before the stream's start read as zeros. */
function peek(n: number): number {
  const start = bpos - n;
  if (start >= 0) {
    const i = bsStart + (start >>> 3);
    const w = bs[i] | (bs[i + 1] << 8) | (bs[i + 2] << 16) | (bs[i + 3] << 24);
    return (w >> (start & 7)) & ((1 << n) - 1);
  }
  if (bpos <= 0) return 0;
  const i = bsStart;
  const w = (bs[i] | (bs[i + 1] << 8) | (bs[i + 2] << 16) | (bs[i + 3] << 24)) & ((1 << bpos) - 1);
  return w << -start;
}

/**
 * Bits [start, start + n) of the stream at src[base] (n <= 25), bits before the stream's start
 * reading as zeros. Pure, so the hot loops keep their position in a local and this inlines.
 */
function bitsAt(src: Uint8Array, base: number, start: number, n: number): number {
  if (start >= 0) {
    const i = base + (start >>> 3);
    return ((src[i] | (src[i + 1] << 8) | (src[i + 2] << 16) | (src[i + 3] << 24)) >> (start & 7)) & ((1 << n) - 1);
  }
  const have = start + n;
  if (have <= 0) return 0;
  return ((src[base] | (src[base + 1] << 8) | (src[base + 2] << 16) | (src[base + 3] << 24)) & ((1 << have) - 1)) << -start;
}

function readBits(n: number): number {
  if (n <= 25) {
    const v = peek(n);
    bpos -= n;
    return v;
  }
  const hi = readBits(n - 16);
  return hi * 65536 + readBits(16);
}

// ── §4.2 Huffman ──

interface Huffman {
  maxBits: number;
  sym: Uint8Array;
  nb: Uint8Array;
}

/**
 * §4.2.1: reads a Huffman_Tree_Description at input[p] into `h` (or, with `w`, into the core's
 * table); returns the bytes it takes.
 */
function readHuffman(input: Uint8Array, p: number, end: number, h: Huffman, w: Wasm | undefined): number {
  if (p >= end) throw new CodecError("corrupt", p, `zstd: Huffman tree description at offset ${hex(p)} runs past its block`);
  const header = input[p];
  const weights = new Uint8Array(256);
  let n: number;
  let used: number;
  if (header >= 128) {
    n = header - 127;
    used = 1 + ((n + 1) >>> 1);
    if (p + used > end) throw new CodecError("corrupt", p, `zstd: Huffman weights at offset ${hex(p)} run past their block`);
    for (let i = 0; i < n; i++) {
      const b = input[p + 1 + (i >>> 1)];
      weights[i] = i & 1 ? b & 15 : b >>> 4;
    }
  } else {
    used = 1 + header;
    if (p + used > end) throw new CodecError("corrupt", p, `zstd: Huffman weights at offset ${hex(p)} run past their block`);
    const t = newFse(6);
    const d = readFseDescription(input, p + 1, p + used, t, 255, 6, "Huffman weights");
    bitsInit(input, p + 1 + d, p + used, "Huffman weights stream");
    let s1 = readBits(t.log);
    let s2 = readBits(t.log);
    n = 0;
    for (;;) {
      if (n > 253) throw new CodecError("corrupt", p, `zstd: Huffman weights at offset ${hex(p)} describe more than 255 symbols`);
      weights[n++] = t.sym[s1];
      s1 = t.base[s1] + readBits(t.nb[s1]);
      if (bpos < 0) {
        weights[n++] = t.sym[s2];
        break;
      }
      weights[n++] = t.sym[s2];
      s2 = t.base[s2] + readBits(t.nb[s2]);
      if (bpos < 0) {
        weights[n++] = t.sym[s1];
        break;
      }
    }
  }
  // The last symbol's weight is implied: it completes the sum to a power of two.
  let sum = 0;
  for (let i = 0; i < n; i++) {
    if (weights[i] > 11) throw new CodecError("corrupt", p, `zstd: Huffman weight ${weights[i]} at offset ${hex(p)} is more than 11`);
    if (weights[i]) sum += 1 << (weights[i] - 1);
  }
  if (sum === 0) throw new CodecError("corrupt", p, `zstd: Huffman weights at offset ${hex(p)} are all zero`);
  const maxBits = highbit(sum) + 1;
  const left = (1 << maxBits) - sum;
  if (maxBits > 11 || (left & (left - 1)) !== 0) throw new CodecError("corrupt", p, `zstd: Huffman weights at offset ${hex(p)} do not form a prefix code`);
  weights[n++] = highbit(left) + 1;
  h.maxBits = maxBits;
  if (w) {
    w.mem.set(weights.subarray(0, n), w.z + ZSTD_LAYOUT.weights);
    w.core.zstdHufTable(n, maxBits);
    return used;
  }
  // Canonical codes (§4.2.1.4): by weight, then by symbol.
  const rankCount = new Uint32Array(13);
  for (let i = 0; i < n; i++) rankCount[weights[i]]++;
  const rankStart = new Uint32Array(13);
  let next = 0;
  for (let w = 1; w <= maxBits; w++) {
    rankStart[w] = next;
    next += rankCount[w] << (w - 1);
  }
  h.maxBits = maxBits;
  for (let s = 0; s < n; s++) {
    const w = weights[s];
    if (!w) continue;
    const len = (1 << w) >>> 1;
    const at = rankStart[w];
    h.sym.fill(s, at, at + len);
    h.nb.fill(maxBits + 1 - w, at, at + len);
    rankStart[w] += len;
  }
  return used;
}

/** Decodes one Huffman stream input[start, end) into lit[o, o + n) (with `w`: the core's literals). */
function huffStream(input: Uint8Array, start: number, end: number, h: Huffman, lit: Uint8Array, o: number, n: number, w: Wasm | undefined): void {
  bitsInit(input, start, end, "Huffman literals stream");
  if (w) {
    bpos = w.core.zstdHuf1(w.at(start), w.at(end), h.maxBits, w.z + ZSTD_LAYOUT.lit + o, n);
    if (bpos !== 0) throw new CodecError("corrupt", start, `zstd: Huffman literals stream at offset ${hex(start)} ${bpos < 0 ? "is too short" : "has bits left over"} for its ${n} literals`);
    return;
  }
  const mb = h.maxBits;
  const sym = h.sym;
  const nb = h.nb;
  const e = o + n;
  let pos = bpos;
  for (let i = o; i < e; i++) {
    const v = bitsAt(input, start, pos - mb, mb);
    lit[i] = sym[v];
    pos -= nb[v];
  }
  bpos = pos;
  if (bpos !== 0) throw new CodecError("corrupt", start, `zstd: Huffman literals stream at offset ${hex(start)} ${bpos < 0 ? "is too short" : "has bits left over"} for its ${n} literals`);
}

// ── frames ──

/** What persists from block to block within a frame (§3.1.1.3.2.1.1, "Repeat" modes). */
interface FrameState {
  rep: [number, number, number];
  huf: Huffman;
  hufValid: boolean;
  ll: Fse;
  ml: Fse;
  of: Fse;
  /** Which table each of ll/ml/of currently is: the frame's own, the predefined one, or none yet. */
  llT: Fse | null;
  mlT: Fse | null;
  ofT: Fse | null;
}

interface Sink {
  out: Uint8Array;
  end: number;
  partial: boolean;
  /** Set when the core's loops run. */
  w?: Wasm;
}

/** The core's loops for one decode() call: `out` is memory[base, base + out.length). */
class Wasm {
  readonly core: Core;
  readonly mem: Uint8Array;
  /** Little-endian access to the core's memory (the core reads its words little-endian on any host). */
  readonly dv: DataView;
  readonly base: number;
  /** The zstd scratch area (linear offset, 16-byte aligned). */
  readonly z: number;
  /** Input offset of the block whose bytes are in the area now. */
  blk = 0;
  /** The output position up to which the frame being decoded may be written (wide copies stop there). */
  wend = 0;
  /** The table each of LL, OF, ML was last packed from (and its version). */
  private readonly packed: Array<Fse | null> = [null, null, null];
  private readonly packedVer = [0, 0, 0];

  constructor(core: Core, out: Uint8Array) {
    this.core = core;
    this.mem = new Uint8Array(core.memory.buffer);
    this.dv = new DataView(core.memory.buffer);
    this.base = out.byteOffset;
    this.z = core.zstdArea;
    // the value tables zstdFseBuild reads for Literals_Length and Match_Length codes
    const dv = this.dv;
    const ll = this.z + ZSTD_LAYOUT.llVals;
    LL_BASE.forEach((v, i) => (dv.setUint32(ll + 8 * i, v, true), dv.setUint32(ll + 8 * i + 4, LL_BITS[i], true)));
    const ml = this.z + ZSTD_LAYOUT.mlVals;
    ML_BASE.forEach((v, i) => (dv.setUint32(ml + 8 * i, v, true), dv.setUint32(ml + 8 * i + 4, ML_BITS[i], true)));
  }

  /**
   * Builds a frame's own sequence table (which = 0 LL, 1 OF, 2 ML) in the core, straight into its
   * slot: `t` gets only its log and a new version (its arrays stay unused: a table the core built
   * is only ever used again through "Repeat" mode, while it is still the slot's table). Throws
   * like buildFse when the distribution does not fill the table.
   */
  build(which: 0 | 1 | 2, t: Fse, counts: Int16Array, nsym: number, log: number): void {
    for (let i = 0; i < nsym; i++) this.dv.setInt16(this.z + ZSTD_LAYOUT.counts + 2 * i, counts[i], true);
    t.log = log;
    t.ver = ++fseVersion;
    // the slot no longer holds what it held, whatever happens next
    this.packed[which] = null;
    if (!this.core.zstdFseBuild(which, nsym, log)) throw new CodecError("corrupt", 0, "zstd: an FSE distribution does not fill its table");
    this.packed[which] = t;
    this.packedVer[which] = t.ver;
  }

  /** Copies the block input[p, end) into the area; at() then maps its input offsets. */
  load(input: Uint8Array, p: number, end: number): void {
    this.mem.set(input.subarray(p, end), this.z + ZSTD_LAYOUT.in + ZSTD_LAYOUT.inSlack);
    this.blk = p;
  }

  at(inputOffset: number): number {
    return this.z + ZSTD_LAYOUT.in + ZSTD_LAYOUT.inSlack + (inputOffset - this.blk);
  }

  /**
   * Writes the core's form of a sequence table (which = 0 LL, 1 OF, 2 ML; 8 bytes per state: next
   * state base, its bits, the value's extra bits, the value base) unless it is already there.
   */
  pack(which: 0 | 1 | 2, t: Fse): void {
    if (this.packed[which] === t && this.packedVer[which] === t.ver) return;
    this.packed[which] = t;
    this.packedVer[which] = t.ver;
    const at = this.z + (which === 0 ? ZSTD_LAYOUT.ll : which === 1 ? ZSTD_LAYOUT.of : ZSTD_LAYOUT.ml);
    const dv = this.dv;
    const [vb, xb] = which === 0 ? [LL_BASE, LL_BITS] : [ML_BASE, ML_BITS];
    for (let u = 0, n = 1 << t.log; u < n; u++) {
      const sym = t.sym[u];
      const extra = which === 1 ? sym : xb[sym];
      dv.setUint32(at + 8 * u, t.base[u] | (t.nb[u] << 16) | (extra << 24), true);
      dv.setUint32(at + 8 * u + 4, which === 1 ? 2 ** sym : vb[sym], true);
    }
  }
}

function tooLarge(s: Sink, at: number, dp: number, n: number): never {
  if (s.partial) throw new Enough();
  throw new CodecError("too-large", at, `zstd: output passes the ${hex(s.end)} bytes of room (the block at input offset ${hex(at)} writes ${n} bytes at output offset ${hex(dp)})`);
}

const literals = new Uint8Array(BLOCK_MAX + 32);

interface FrameHeader {
  start: number;
  blocks: number;
  windowSize: number;
  size: number | undefined;
  /** Frame_Content_Size as written (hex, exact: a 64-bit value past 2^53 stays what it is). */
  sizeText: string;
  checksum: boolean;
}

/**
 * The length of the input being decoded: the TypeScript loops read a padded copy (see padded()),
 * so `input.length` there is 8 more than the stream's; every end-of-input check uses this.
 */
let inLen = 0;

function need(input: Uint8Array, ip: number, n: number, what: string): void {
  if (inLen - ip < n) throw new CodecError("truncated", inLen, `zstd: the input ends inside the ${what} at offset ${hex(ip)}`);
}

/** §3.1.1.1: the frame header at `ip` (its magic). */
function frameHeader(input: Uint8Array, ip: number): FrameHeader {
  need(input, ip, 5, "frame header");
  const fhd = input[ip + 4];
  const fcsFlag = fhd >>> 6;
  const single = (fhd & 0x20) !== 0;
  if (fhd & 0x08) throw new CodecError("corrupt", ip + 4, `zstd: Frame_Header_Descriptor ${hex(fhd)} at offset ${hex(ip + 4)} has the reserved bit set`);
  const didLen = [0, 1, 2, 4][fhd & 3];
  const fcsLen = fcsFlag === 0 ? (single ? 1 : 0) : 1 << fcsFlag;
  let p = ip + 5;
  need(input, p, (single ? 0 : 1) + didLen + fcsLen, "frame header");
  let windowSize = 0;
  if (!single) {
    const wd = input[p++];
    const log = 10 + (wd >>> 3);
    const base = 2 ** log;
    windowSize = base + (base / 8) * (wd & 7);
  }
  let dict = 0;
  for (let i = 0; i < didLen; i++) dict += input[p + i] * 2 ** (8 * i);
  if (dict !== 0) throw new CodecError("unsupported", p, `zstd: frame at offset ${hex(ip)} needs dictionary ${hex(dict)}; dictionaries are not supported`);
  p += didLen;
  let size: number | undefined;
  let sizeText = "none";
  if (fcsLen) {
    sizeText = fcsLen === 8 ? `0x${((BigInt(rd32(input, p + 4)) << 32n) | BigInt(rd32(input, p))).toString(16)}` : "";
    if (fcsLen === 8 && rd32(input, p + 4) >= 0x200000) size = Infinity;
    else if (fcsLen === 8) size = rd32(input, p + 4) * 4294967296 + rd32(input, p);
    else if (fcsLen === 4) size = rd32(input, p);
    else if (fcsLen === 2) size = (input[p] | (input[p + 1] << 8)) + 256;
    else size = input[p];
    if (fcsLen !== 8) sizeText = hex(size);
    p += fcsLen;
  }
  if (single) windowSize = size!;
  return { start: ip, blocks: p, windowSize, size, sizeText, checksum: (fhd & 0x04) !== 0 };
}

function newFrameState(): FrameState {
  return {
    rep: [1, 4, 8],
    huf: { maxBits: 0, sym: new Uint8Array(1 << 11), nb: new Uint8Array(1 << 11) },
    hufValid: false,
    ll: newFse(9),
    ml: newFse(9),
    of: newFse(8),
    llT: null,
    mlT: null,
    ofT: null,
  };
}

/** §3.1.1.3.1: the literals section at input[p, end); literals land in `literals`. Returns [count, bytes used]. */
function readLiterals(input: Uint8Array, p: number, end: number, st: FrameState, w: Wasm | undefined): [number, number] {
  const b0 = input[p];
  const type = b0 & 3;
  const sf = (b0 >>> 2) & 3;
  let regen: number;
  let comp = 0;
  let hdr: number;
  let streams = 1;
  if (type < 2) {
    if ((sf & 1) === 0) {
      hdr = 1;
      regen = b0 >>> 3;
    } else if (sf === 1) {
      hdr = 2;
      regen = (b0 >>> 4) + (input[p + 1] << 4);
    } else {
      hdr = 3;
      regen = (b0 >>> 4) + (input[p + 1] << 4) + (input[p + 2] << 12);
    }
  } else {
    hdr = sf < 2 ? 3 : sf === 2 ? 4 : 5;
    streams = sf === 0 ? 1 : 4;
    if (p + hdr > end) throw new CodecError("corrupt", p, `zstd: literals header at offset ${hex(p)} runs past its block`);
    const v = input[p] + input[p + 1] * 256 + input[p + 2] * 65536 + (hdr > 3 ? input[p + 3] * 16777216 : 0) + (hdr > 4 ? input[p + 4] * 4294967296 : 0);
    const bits = hdr === 3 ? 10 : hdr === 4 ? 14 : 18;
    const rest = Math.floor(v / 16);
    regen = rest % 2 ** bits;
    comp = Math.floor(rest / 2 ** bits) % 2 ** bits;
  }
  if (p + hdr > end) throw new CodecError("corrupt", p, `zstd: literals header at offset ${hex(p)} runs past its block`);
  if (regen > BLOCK_MAX) throw new CodecError("corrupt", p, `zstd: literals section at offset ${hex(p)} regenerates ${regen} bytes, more than 128 KiB`);
  p += hdr;
  if (type === 0) {
    if (p + regen > end) throw new CodecError("corrupt", p, `zstd: raw literals at offset ${hex(p)} run past their block`);
    if (w) w.mem.set(input.subarray(p, p + regen), w.z + ZSTD_LAYOUT.lit);
    else literals.set(input.subarray(p, p + regen));
    return [regen, hdr + regen];
  }
  if (type === 1) {
    if (p + 1 > end) throw new CodecError("corrupt", p, `zstd: RLE literals at offset ${hex(p)} run past their block`);
    if (w) w.mem.fill(input[p], w.z + ZSTD_LAYOUT.lit, w.z + ZSTD_LAYOUT.lit + regen);
    else literals.fill(input[p], 0, regen);
    return [regen, hdr + 1];
  }
  if (p + comp > end) throw new CodecError("corrupt", p, `zstd: compressed literals at offset ${hex(p)} (${comp} bytes) run past their block`);
  let q = p;
  if (type === 2) {
    q += readHuffman(input, q, p + comp, st.huf, w);
    st.hufValid = true;
  } else if (!st.hufValid) {
    throw new CodecError("corrupt", p - hdr, `zstd: treeless literals at offset ${hex(p - hdr)} with no earlier Huffman table in the frame`);
  }
  const cend = p + comp;
  if (streams === 1) {
    huffStream(input, q, cend, st.huf, literals, 0, regen, w);
  } else {
    if (cend - q < 6) throw new CodecError("corrupt", q, `zstd: literals jump table at offset ${hex(q)} runs past its block`);
    const s1 = input[q] | (input[q + 1] << 8);
    const s2 = input[q + 2] | (input[q + 3] << 8);
    const s3 = input[q + 4] | (input[q + 5] << 8);
    q += 6;
    if (q + s1 + s2 + s3 > cend) throw new CodecError("corrupt", q - 6, `zstd: literals jump table at offset ${hex(q - 6)} names streams past the section`);
    const each = (regen + 3) >>> 2;
    if (each * 3 > regen) throw new CodecError("corrupt", p - hdr, `zstd: ${regen} literals are too few for 4 streams`);
    if (w && streamOk(input, q, q + s1) && streamOk(input, q + s1, q + s1 + s2) && streamOk(input, q + s1 + s2, q + s1 + s2 + s3) && streamOk(input, q + s1 + s2 + s3, cend)) {
      // All four streams start well, so the first error is the first stream that decodes badly.
      const r = w.core.zstdHuf4(w.at(q), s1, s2, s3, w.at(cend), st.huf.maxBits, w.z + ZSTD_LAYOUT.lit, regen);
      if (r !== 0) {
        const at = [q, q + s1, q + s1 + s2, q + s1 + s2 + s3][r - 1];
        const left = w.core.zstdInfo(0) | 0;
        throw new CodecError("corrupt", at, `zstd: Huffman literals stream at offset ${hex(at)} ${left < 0 ? "is too short" : "has bits left over"} for its ${r === 4 ? regen - 3 * each : each} literals`);
      }
      return [regen, hdr + comp];
    }
    huffStream(input, q, q + s1, st.huf, literals, 0, each, w);
    huffStream(input, q + s1, q + s1 + s2, st.huf, literals, each, each, w);
    huffStream(input, q + s1 + s2, q + s1 + s2 + s3, st.huf, literals, 2 * each, each, w);
    huffStream(input, q + s1 + s2 + s3, cend, st.huf, literals, 3 * each, regen - 3 * each, w);
  }
  return [regen, hdr + comp];
}

/** Picks one sequence table by its Symbol_Compression_Mode (§3.1.1.3.2.1). Returns [table, bytes used]. */
function seqTable(
  input: Uint8Array, p: number, end: number, mode: number, own: Fse, prev: Fse | null, def: Fse, maxSym: number, maxLog: number, what: string,
  w: Wasm | undefined, which: 0 | 1 | 2,
): [Fse, number] {
  if (mode === 0) return [def, 0];
  if (mode === 1) {
    if (p >= end) throw new CodecError("corrupt", p, `zstd: ${what} RLE symbol at offset ${hex(p)} runs past its block`);
    if (input[p] > maxSym) throw new CodecError("corrupt", p, `zstd: ${what} RLE symbol ${input[p]} at offset ${hex(p)} is more than ${maxSym}`);
    rleFse(own, input[p]);
    return [own, 1];
  }
  if (mode === 2) return [own, readFseDescription(input, p, end, own, maxSym, maxLog, what, w ? (t, counts, nsym, log) => w.build(which, t, counts, nsym, log) : buildFse)];
  if (!prev) throw new CodecError("corrupt", p, `zstd: ${what} table at offset ${hex(p)} repeats a table the frame has not had`);
  return [prev, 0];
}

/**
 * §3.1.1.3: decodes one compressed block input[p, end) to out[dp, …); matches reach back to
 * `low`. Returns the new output position.
 */
function compressedBlock(input: Uint8Array, p: number, end: number, s: Sink, dp: number, low: number, st: FrameState): number {
  const blockStart = p;
  const w = s.w;
  w?.load(input, p, end);
  const [nlit, litBytes] = readLiterals(input, p, end, st, w);
  p += litBytes;
  if (p >= end) throw new CodecError("corrupt", p, `zstd: block at offset ${hex(blockStart)} has no sequences section`);
  let nseq = input[p++];
  if (nseq >= 128) {
    if (nseq === 255) {
      if (end - p < 2) throw new CodecError("corrupt", p, `zstd: Number_of_Sequences at offset ${hex(p - 1)} runs past its block`);
      nseq = input[p] + (input[p + 1] << 8) + 0x7f00;
      p += 2;
    } else {
      if (end - p < 1) throw new CodecError("corrupt", p, `zstd: Number_of_Sequences at offset ${hex(p - 1)} runs past its block`);
      nseq = ((nseq - 128) << 8) + input[p++];
    }
  }
  const out = s.out;
  let lp = 0;
  if (nseq > 0) {
    if (p >= end) throw new CodecError("corrupt", p, `zstd: Symbol_Compression_Modes at offset ${hex(p)} runs past its block`);
    const modes = input[p++];
    if (modes & 3) throw new CodecError("corrupt", p - 1, `zstd: Symbol_Compression_Modes ${hex(modes)} at offset ${hex(p - 1)} has reserved bits set`);
    const pd = predefinedTables();
    let used: number;
    [st.llT, used] = seqTable(input, p, end, modes >>> 6, st.ll, st.llT, pd.ll, 35, 9, "Literals_Length", w, 0);
    p += used;
    [st.ofT, used] = seqTable(input, p, end, (modes >>> 4) & 3, st.of, st.ofT, pd.of, 31, 8, "Offset", w, 1);
    p += used;
    [st.mlT, used] = seqTable(input, p, end, (modes >>> 2) & 3, st.ml, st.mlT, pd.ml, 52, 9, "Match_Length", w, 2);
    p += used;
    const ll = st.llT!;
    const of = st.ofT!;
    const ml = st.mlT!;
    bitsInit(input, p, end, "sequences bitstream");
    if (w) return sequencesWasm(w, p, end, blockStart, nseq, ll, of, ml, nlit, s, dp, low, st);
    let pos = bpos;
    const base = p;
    pos -= ll.log;
    let llS = bitsAt(input, base, pos, ll.log);
    pos -= of.log;
    let ofS = bitsAt(input, base, pos, of.log);
    pos -= ml.log;
    let mlS = bitsAt(input, base, pos, ml.log);
    const rep = st.rep;
    const dend = s.end;
    const llSym = ll.sym, llNb = ll.nb, llBase = ll.base;
    const mlSym = ml.sym, mlNb = ml.nb, mlBase = ml.base;
    const ofSym = of.sym, ofNb = of.nb, ofBase = of.base;
    for (let i = 0; i < nseq; i++) {
      const ofCode = ofSym[ofS];
      const mlCode = mlSym[mlS];
      const llCode = llSym[llS];
      if (ofCode > 31) throw new CodecError("corrupt", p, `zstd: offset code ${ofCode} in the block at offset ${hex(blockStart)} is more than 31`);
      let ofValue: number;
      if (ofCode <= 25) {
        pos -= ofCode;
        ofValue = ((1 << ofCode) >>> 0) + bitsAt(input, base, pos, ofCode);
      } else {
        pos -= ofCode - 16;
        const hi = bitsAt(input, base, pos, ofCode - 16);
        pos -= 16;
        ofValue = 2 ** ofCode + hi * 65536 + bitsAt(input, base, pos, 16);
      }
      let nbits = ML_BITS[mlCode];
      pos -= nbits;
      const mlen = ML_BASE[mlCode] + bitsAt(input, base, pos, nbits);
      nbits = LL_BITS[llCode];
      pos -= nbits;
      const llen = LL_BASE[llCode] + bitsAt(input, base, pos, nbits);
      let off: number;
      if (ofValue > 3) {
        off = ofValue - 3;
        rep[2] = rep[1];
        rep[1] = rep[0];
        rep[0] = off;
      } else {
        const idx = ofValue - 1 + (llen === 0 ? 1 : 0);
        if (idx === 0) off = rep[0];
        else if (idx === 3) {
          off = rep[0] - 1;
          rep[2] = rep[1];
          rep[1] = rep[0];
          rep[0] = off;
        } else {
          off = rep[idx];
          if (idx === 2) rep[2] = rep[1];
          rep[1] = rep[0];
          rep[0] = off;
        }
      }
      if (i + 1 < nseq) {
        nbits = llNb[llS];
        pos -= nbits;
        llS = llBase[llS] + bitsAt(input, base, pos, nbits);
        nbits = mlNb[mlS];
        pos -= nbits;
        mlS = mlBase[mlS] + bitsAt(input, base, pos, nbits);
        nbits = ofNb[ofS];
        pos -= nbits;
        ofS = ofBase[ofS] + bitsAt(input, base, pos, nbits);
      }
      if (pos < 0) throw new CodecError("corrupt", p, `zstd: sequences bitstream of the block at offset ${hex(blockStart)} is too short for its ${nseq} sequences`);
      // literals, then the match
      if (llen > nlit - lp) throw new CodecError("corrupt", p, `zstd: sequence ${i} of the block at offset ${hex(blockStart)} takes ${llen} literals, only ${nlit - lp} are left`);
      if (llen > dend - dp) {
        if (s.partial) out.set(literals.subarray(lp, lp + (dend - dp)), dp);
        tooLarge(s, blockStart, dp, llen);
      }
      if (llen < 16) for (let k = 0; k < llen; k++) out[dp + k] = literals[lp + k];
      else out.set(literals.subarray(lp, lp + llen), dp);
      dp += llen;
      lp += llen;
      if (off === 0 || off > dp - low) {
        throw new CodecError("corrupt", p, `zstd: sequence ${i} of the block at offset ${hex(blockStart)} has match offset ${off}, reaching before the start of the frame's output (${dp - low} bytes)`);
      }
      let m = dp - off;
      if (mlen > dend - dp) {
        if (s.partial) while (dp < dend) out[dp++] = out[m++];
        tooLarge(s, blockStart, dp, mlen);
      }
      if (off >= mlen && mlen > 32) {
        out.copyWithin(dp, m, m + mlen);
        dp += mlen;
      } else {
        const e = dp + mlen;
        while (dp < e) out[dp++] = out[m++];
      }
    }
    bpos = pos;
    if (bpos !== 0) throw new CodecError("corrupt", p, `zstd: sequences bitstream of the block at offset ${hex(blockStart)} has ${bpos} bits left over`);
  } else if (p !== end) {
    throw new CodecError("corrupt", p, `zstd: block at offset ${hex(blockStart)} has ${end - p} bytes after its empty sequences section`);
  }
  const rest = nlit - lp;
  if (rest > s.end - dp) {
    if (s.partial) out.set(literals.subarray(lp, lp + (s.end - dp)), dp);
    tooLarge(s, blockStart, dp, rest);
  }
  if (w) w.core.copy(w.base + dp, w.z + ZSTD_LAYOUT.lit + lp, rest);
  else out.set(literals.subarray(lp, nlit), dp);
  return dp + rest;
}

/**
 * The sequences of a block (their bitstream input[p, end), checked by bitsInit) decoded and
 * executed by the core; the literals are in its area already. Same checks, in the same order,
 * and the same errors as the TypeScript loop in compressedBlock.
 */
function sequencesWasm(
  w: Wasm, p: number, end: number, blockStart: number, nseq: number, ll: Fse, of: Fse, ml: Fse,
  nlit: number, s: Sink, dp: number, low: number, st: FrameState,
): number {
  w.pack(0, ll);
  w.pack(1, of);
  w.pack(2, ml);
  const rep = w.z + ZSTD_LAYOUT.rep;
  w.dv.setUint32(rep, st.rep[0], true);
  w.dv.setUint32(rep + 4, st.rep[1], true);
  w.dv.setUint32(rep + 8, st.rep[2], true);
  const core = w.core;
  const r = core.zstdSeq(w.at(p), w.at(end), nseq, ll.log, of.log, ml.log, nlit, w.base + dp, w.base + low, w.base + s.end, w.base + Math.min(w.wend, s.end));
  switch (r) {
    case 0:
      st.rep[0] = w.dv.getUint32(rep, true);
      st.rep[1] = w.dv.getUint32(rep + 4, true);
      st.rep[2] = w.dv.getUint32(rep + 8, true);
      return core.zstdOut() - w.base;
    case 1:
      throw new CodecError("corrupt", p, `zstd: sequences bitstream of the block at offset ${hex(blockStart)} is too short for its ${nseq} sequences`);
    case 2:
      throw new CodecError("corrupt", p, `zstd: sequence ${core.zstdInfo(0)} of the block at offset ${hex(blockStart)} takes ${core.zstdInfo(1)} literals, only ${core.zstdInfo(2)} are left`);
    case 3:
      return tooLarge(s, blockStart, core.zstdInfo(0) - w.base, core.zstdInfo(1));
    case 4:
      throw new CodecError("corrupt", p, `zstd: sequence ${core.zstdInfo(0)} of the block at offset ${hex(blockStart)} has match offset ${core.zstdInfo(1)}, reaching before the start of the frame's output (${core.zstdInfo(2)} bytes)`);
    default:
      throw new CodecError("corrupt", p, `zstd: sequences bitstream of the block at offset ${hex(blockStart)} has ${core.zstdInfo(0) | 0} bits left over`);
  }
}

interface BlockHeader {
  last: boolean;
  type: number;
  size: number;
  data: number;
}

/** §3.1.1.2: the block header at `ip`. */
function blockHeader(input: Uint8Array, ip: number, h: FrameHeader): BlockHeader {
  need(input, ip, 3, "block header");
  const v = input[ip] | (input[ip + 1] << 8) | (input[ip + 2] << 16);
  const type = (v >>> 1) & 3;
  const size = v >>> 3;
  if (type === 3) throw new CodecError("corrupt", ip, `zstd: block at offset ${hex(ip)} has the reserved Block_Type 3`);
  const max = Math.min(BLOCK_MAX, h.windowSize || BLOCK_MAX);
  if (size > max) throw new CodecError("corrupt", ip, `zstd: block at offset ${hex(ip)} is ${size} bytes, more than Block_Maximum_Size ${max}`);
  need(input, ip + 3, type === 1 ? 1 : size, "block");
  return { last: (v & 1) !== 0, type, size, data: ip + 3 };
}

/** Decodes the frame at `ip` into the sink from `dp`. */
function frame(input: Uint8Array, ip: number, s: Sink, dp: number): { ip: number; dp: number } {
  const h = frameHeader(input, ip);
  if (h.size !== undefined && h.size > s.end - dp && !s.partial) {
    throw new CodecError("too-large", ip + 5, `zstd: frame at offset ${hex(ip)} declares Frame_Content_Size ${h.sizeText}, more than the ${hex(s.end - dp)} bytes of room left`);
  }
  const st = newFrameState();
  const start = dp;
  if (s.w) s.w.wend = h.size !== undefined ? Math.min(s.end, dp + h.size) : s.end;
  ip = h.blocks;
  for (;;) {
    const b = blockHeader(input, ip, h);
    if (b.type === 0) {
      if (b.size > s.end - dp) {
        if (s.partial) s.out.set(input.subarray(b.data, b.data + (s.end - dp)), dp);
        tooLarge(s, ip, dp, b.size);
      }
      s.out.set(input.subarray(b.data, b.data + b.size), dp);
      dp += b.size;
      ip = b.data + b.size;
    } else if (b.type === 1) {
      if (b.size > BLOCK_MAX) throw new CodecError("corrupt", ip, `zstd: RLE block at offset ${hex(ip)} repeats ${b.size} bytes, more than 128 KiB`);
      if (b.size > s.end - dp) {
        if (s.partial) s.out.fill(input[b.data], dp, s.end);
        tooLarge(s, ip, dp, b.size);
      }
      s.out.fill(input[b.data], dp, dp + b.size);
      dp += b.size;
      ip = b.data + 1;
    } else {
      const before = dp;
      dp = compressedBlock(input, b.data, b.data + b.size, s, dp, start, st);
      if (dp - before > BLOCK_MAX) throw new CodecError("corrupt", ip, `zstd: block at offset ${hex(ip)} decodes to ${dp - before} bytes, more than 128 KiB`);
      ip = b.data + b.size;
    }
    if (b.last) break;
  }
  if (h.size !== undefined && h.size !== dp - start) {
    throw new CodecError("corrupt", h.start + 5, `zstd: frame at offset ${hex(h.start)} declares Frame_Content_Size ${h.sizeText} but decodes to ${dp - start} bytes`);
  }
  if (h.checksum) {
    need(input, ip, 4, "content checksum");
    const want = rd32(input, ip);
    const got = s.w ? s.w.core.xxh64Low(s.w.base + start, dp - start) : Number(xxh64(s.out.subarray(start, dp)) & 0xffffffffn);
    if (want !== got) throw new CodecError("checksum", ip, `zstd: Content_Checksum at offset ${hex(ip)} is ${hex(want)}, the low 32 bits of the frame's XXH64 are ${hex(got)}`);
    ip += 4;
  }
  return { ip, dp };
}

function decodeAll(input: Uint8Array, s: Sink): DecodeResult {
  let ip = 0;
  let dp = 0;
  let frames = 0;
  for (;;) {
    if (inLen - ip < 4) {
      if (frames) return { written: dp, consumed: ip };
      throw new CodecError("truncated", inLen, `zstd: ${inLen - ip} bytes, too short for a frame magic`);
    }
    const magic = rd32(input, ip);
    if (magic === MAGIC) {
      const r = frame(input, ip, s, dp);
      ip = r.ip;
      dp = r.dp;
    } else if ((magic & SKIPPABLE_MASK) >>> 0 === SKIPPABLE) {
      need(input, ip, 8, "skippable frame header");
      const n = rd32(input, ip + 4);
      need(input, ip + 8, n, "skippable frame");
      ip += 8 + n;
    } else if (frames) {
      return { written: dp, consumed: ip };
    } else {
      throw new CodecError("corrupt", ip, `zstd: magic ${hex(magic)} at offset ${hex(ip)} is no zstd frame (28 b5 2f fd) or skippable frame`);
    }
    frames++;
  }
}

/**
 * The output size without keeping all of it: frames that declare Frame_Content_Size are walked
 * block header by block header; the others are decoded into a scratch buffer that keeps the
 * frame's window behind the block being decoded. Checksums are left to decode().
 */
function measure(input: Uint8Array, limit: number): DecodeResult;
function measure(input: Uint8Array, limit: number, declaredOnly: true): DecodeResult | undefined;
function measure(input: Uint8Array, limit: number, declaredOnly = false): DecodeResult | undefined {
  let ip = 0;
  let total = 0;
  let frames = 0;
  for (;;) {
    if (inLen - ip < 4) {
      if (frames) return { written: total, consumed: ip };
      throw new CodecError("truncated", inLen, `zstd: ${inLen - ip} bytes, too short for a frame magic`);
    }
    const magic = rd32(input, ip);
    if (magic === MAGIC) {
      const h = frameHeader(input, ip);
      if (h.size !== undefined) {
        if (h.size > limit - total) throw new CodecError("too-large", ip + 5, `zstd: frame at offset ${hex(ip)} declares Frame_Content_Size ${h.sizeText}, past the ${hex(limit)} bytes of room`);
        let p = h.blocks;
        for (;;) {
          const b = blockHeader(input, p, h);
          p = b.data + (b.type === 1 ? 1 : b.size);
          if (b.last) break;
        }
        if (h.checksum) need(input, p, 4, "content checksum");
        ip = p + (h.checksum ? 4 : 0);
        total += h.size;
      } else {
        if (declaredOnly) return undefined;
        const r = measureFrame(input, h, limit - total);
        ip = r.ip;
        total += r.n;
      }
    } else if ((magic & SKIPPABLE_MASK) >>> 0 === SKIPPABLE) {
      need(input, ip, 8, "skippable frame header");
      const n = rd32(input, ip + 4);
      need(input, ip + 8, n, "skippable frame");
      ip += 8 + n;
    } else if (frames) {
      return { written: total, consumed: ip };
    } else {
      throw new CodecError("corrupt", ip, `zstd: magic ${hex(magic)} at offset ${hex(ip)} is no zstd frame (28 b5 2f fd) or skippable frame`);
    }
    frames++;
  }
}

/**
 * One frame without a content size, decoded through a scratch buffer that keeps the last
 * Window_Size bytes behind the block being decoded. The buffer starts small and grows with the
 * output up to the window (plus room to slide less often), so a small frame with a large
 * declared window costs little.
 */
function measureFrame(input: Uint8Array, h: FrameHeader, limit: number): { ip: number; n: number } {
  const window = Math.min(h.windowSize, limit);
  const span = Math.max(window >>> 2, 1 << 20);
  const full = window + span + BLOCK_MAX;
  let scratch = new Uint8Array(Math.min(full, 4 << 20));
  const st = newFrameState();
  let n = 0;
  let dp = 0; // output position in scratch
  let ip = h.blocks;
  for (;;) {
    if (dp + BLOCK_MAX > scratch.length) {
      if (scratch.length < full) {
        const bigger = new Uint8Array(Math.min(full, scratch.length * 2));
        bigger.set(scratch.subarray(0, dp));
        scratch = bigger;
      } else {
        // keep the last `window` bytes at the start
        scratch.copyWithin(0, dp - window, dp);
        dp = window;
      }
    }
    const b = blockHeader(input, ip, h);
    const room = Math.min(BLOCK_MAX, limit - n);
    const s: Sink = { out: scratch, end: dp + room, partial: false };
    let after: number;
    if (b.type === 0 || b.type === 1) {
      if (b.size > room) tooLarge({ ...s, end: limit }, ip, n, b.size);
      if (b.type === 0) scratch.set(input.subarray(b.data, b.data + b.size), dp);
      else scratch.fill(input[b.data], dp, dp + b.size);
      after = dp + b.size;
      ip = b.data + (b.type === 1 ? 1 : b.size);
    } else {
      try {
        after = compressedBlock(input, b.data, b.data + b.size, s, dp, Math.max(0, dp - Math.min(window, n)), st);
      } catch (e) {
        if (e instanceof CodecError && e.kind === "too-large") {
          if (room === BLOCK_MAX) throw new CodecError("corrupt", ip, `zstd: block at offset ${hex(ip)} decodes to more than 128 KiB`);
          throw new CodecError("too-large", ip, `zstd: output passes the ${hex(limit)} bytes of room (block at input offset ${hex(ip)})`);
        }
        throw e;
      }
      ip = b.data + b.size;
    }
    n += after - dp;
    dp = after;
    if (b.last) break;
  }
  if (h.checksum) {
    need(input, ip, 4, "content checksum");
    ip += 4;
  }
  return { ip, n };
}

/**
 * The input with 8 zero bytes after it: the bit readers load 4 bytes at a time and may look up
 * to 3 bytes past a stream's last byte (those bits are masked off); reading past the end of a
 * typed array would be correct too (undefined reads as 0) but makes V8 deoptimize the hot loops.
 */
function padded(input: Uint8Array): Uint8Array {
  const p = new Uint8Array(input.length + 8);
  p.set(input);
  return p;
}

/**
 * Whether `out` is a view of the core's memory that keeps clear of its zstd area (and of the
 * last bytes of a 4 GiB memory, so that no address the core computes past the output wraps).
 */
function inCore(core: Core, out: Uint8Array): boolean {
  if (out.buffer !== core.memory.buffer) return false;
  const lo = out.byteOffset;
  const hi = lo + out.length;
  if (hi > 2 ** 32 - 64) return false;
  const z = core.zstdArea;
  return hi <= z || lo >= z + ZSTD_LAYOUT.bytes;
}

export const zstdCodec: Codec = {
  name: "zstd",
  sniff(input) {
    return input.length >= 4 && rd32(input, 0) === MAGIC;
  },
  declaredSize(input) {
    // The sum of Frame_Content_Size over the frames, when every frame declares one (walked by
    // block headers, nothing decoded).
    try {
      inLen = input.length;
      const r = measure(input, Number.MAX_SAFE_INTEGER, true);
      return r?.written;
    } catch {
      return undefined;
    }
  },
  decode(input: Uint8Array, out: Uint8Array, options?: DecodeOptions): DecodeResult {
    const stop = options?.stopAfter;
    const partial = stop !== undefined && stop <= out.length;
    const s: Sink = { out, end: partial ? stop : out.length, partial };
    const core = options?.core;
    if (core && !partial && inCore(core, out)) s.w = new Wasm(core, out);
    inLen = input.length;
    try {
      // The core's loops read the block's copy in its area, which has the padding; the header
      // parsers here read at most 3 bytes past a stream (as undefined: zero bits), rarely.
      return decodeAll(s.w ? input : padded(input), s);
    } catch (e) {
      if (e instanceof Enough) return { written: s.end, consumed: NaN };
      throw e;
    }
  },
  measure(input, limit) {
    inLen = input.length;
    return measure(padded(input), limit);
  },
};
