// bzip2 streams as `bzip2 -dc` reads them: one or more concatenated streams, each
//
//   "BZh" + level ('1'–'9': blocks of at most level × 100 000 bytes before the final RLE)
//   blocks: 48-bit magic 0x314159265359 (π), block CRC (32), randomised (1), origPtr (24),
//           symbol map (16 + 16 × 16 bits), Huffman groups (3), selectors (15 + MTF unary),
//           code lengths (delta coded), Huffman-coded MTF/RLE2 symbols, 50 per selector
//   end: 48-bit magic 0x177245385090 (√π), combined CRC (32), padding to a byte
//
// bit-packed most significant bit first. (No formal spec exists: this follows the format as
// bzip2 1.0.8's decompress.c reads it, and Joe Tsai's "bzip2 format" notes.) A block is undone
// in three steps — Huffman + MTF + RLE2 into symbols, the inverse Burrows–Wheeler transform, then
// the initial run-length coding (4 equal bytes + a count) — the last one writing straight into
// `out` (guest RAM) while the block CRC is computed. Only the BWT vector (4 bytes a symbol, at most
// 3.6 MB) is allocated per call.
import { CodecError, type Codec, type CodecFailure, type DecodeOptions, type DecodeResult } from "./codec.js";

const BLOCK_MAGIC_HI = 0x314159;
const BLOCK_MAGIC_LO = 0x265359;
const END_MAGIC_HI = 0x177245;
const END_MAGIC_LO = 0x385090;
const MAX_GROUPS = 6;
const MIN_GROUPS = 2;
const GROUP_SIZE = 50;
/** bzip2 1.0.8 (CVE-2019-12900): at most 18002 selectors are kept; more are read and ignored. */
const MAX_SELECTORS = 18002;
const MAX_CODE_LEN = 20;
const MAX_ALPHA = 258;
/** Codes up to this long decode with one table lookup. */
const FAST_BITS = 10;

/** bzip2's CRC-32: polynomial 0x04C11DB7, most significant bit first (not zlib's reflected one). */
const CRC = (() => {
  const t = new Int32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 24;
    for (let k = 0; k < 8; k++) c = c & 0x80000000 ? (c << 1) ^ 0x04c11db7 : c << 1;
    t[i] = c;
  }
  return t;
})();

const hex = (n: number) => `0x${(n >>> 0).toString(16)}`;

function fail(kind: CodecFailure, offset: number, msg: string): never {
  throw new CodecError(kind, offset, `bzip2: ${msg}`);
}

const isStreamStart = (b: Uint8Array, at: number) =>
  b.length - at >= 4 && b[at] === 0x42 && b[at + 1] === 0x5a && b[at + 2] === 0x68 && b[at + 3]! >= 0x31 && b[at + 3]! <= 0x39;

/** MSB-first bit reader. Reads past the end yield zero bits; `overrun()` tells afterwards. */
class Bits {
  pos = 0;
  buf = 0;
  count = 0;
  constructor(readonly input: Uint8Array, start: number) {
    this.pos = start;
  }
  /** Up to 24 bits. */
  read(n: number): number {
    while (this.count < n) {
      this.buf = (this.buf << 8) | (this.input[this.pos++] ?? 0);
      this.count += 8;
    }
    this.count -= n;
    return (this.buf >>> this.count) & ((1 << n) - 1);
  }
  /** Byte offset of the next unread bit (for messages and `consumed`). */
  offset(): number {
    return this.pos - (this.count >>> 3);
  }
  overrun(): boolean {
    return this.pos * 8 - this.count > this.input.length * 8;
  }
  /** Drops the bits up to the next byte boundary. */
  align(): void {
    this.count -= this.count & 7;
  }
}

/** One Huffman group's decoding tables (canonical code: by length, then by symbol). */
interface Table {
  /** Indexed by the next FAST_BITS bits: (symbol << 5) | length, or 0 for a longer code. */
  fast: Int32Array;
  /** For lengths above FAST_BITS: first code, code count and index into `sorted`, per length. */
  first: Int32Array;
  count: Int32Array;
  index: Int32Array;
  sorted: Int32Array;
  maxLen: number;
}

function buildTable(lengths: Uint8Array, alphaSize: number, offset: number): Table {
  const count = new Int32Array(MAX_CODE_LEN + 2);
  let maxLen = 0;
  for (let s = 0; s < alphaSize; s++) {
    count[lengths[s]!]++;
    if (lengths[s]! > maxLen) maxLen = lengths[s]!;
  }
  const first = new Int32Array(MAX_CODE_LEN + 2);
  const index = new Int32Array(MAX_CODE_LEN + 2);
  let code = 0;
  let idx = 0;
  for (let len = 1; len <= MAX_CODE_LEN; len++) {
    first[len] = code;
    index[len] = idx;
    code += count[len]!;
    idx += count[len]!;
    if (code > 1 << len) fail("corrupt", offset, `Huffman code lengths are oversubscribed at length ${len}`);
    code <<= 1;
  }
  const sorted = new Int32Array(alphaSize);
  const next = index.slice();
  for (let s = 0; s < alphaSize; s++) sorted[next[lengths[s]!]++] = s;
  const fast = new Int32Array(1 << FAST_BITS);
  for (let len = 1; len <= FAST_BITS; len++) {
    for (let k = 0; k < count[len]!; k++) {
      const sym = sorted[index[len]! + k]!;
      const c = first[len]! + k;
      const lo = c << (FAST_BITS - len);
      const hi = lo + (1 << (FAST_BITS - len));
      for (let e = lo; e < hi; e++) fast[e] = (sym << 5) | len;
    }
  }
  return { fast, first, count, index, sorted, maxLen };
}

function crcOfBytes(b: Uint8Array, start: number, end: number, crc: number): number {
  for (let i = start; i < end; i++) crc = (crc << 8) ^ CRC[((crc >>> 24) ^ b[i]!) & 0xff]!;
  return crc;
}

export const bzip2: Codec = {
  name: "bzip2",

  sniff(input: Uint8Array): boolean {
    // "BZh[1-9]" then a block magic or the end-of-stream magic.
    if (!isStreamStart(input, 0) || input.length < 10) return false;
    const m = (input[4]! << 16) | (input[5]! << 8) | input[6]!;
    return m === BLOCK_MAGIC_HI || m === END_MAGIC_HI;
  },

  decode(input: Uint8Array, out: Uint8Array, options?: DecodeOptions): DecodeResult {
    const stopAfter = options?.stopAfter ?? Infinity;
    let outPos = 0;
    let streamStart = 0;
    if (!isStreamStart(input, 0)) fail(input.length < 4 ? "truncated" : "corrupt", 0, `no "BZh1"–"BZh9" signature at 0`);
    let tt = new Int32Array(0);
    const lengths = new Uint8Array(MAX_ALPHA);
    const selectors = new Uint8Array(MAX_SELECTORS);
    const mtf = new Uint8Array(256);
    const seqToUnseq = new Uint8Array(256);
    const unzftab = new Int32Array(256);
    const cftab = new Int32Array(257);
    /** Bits the hot loop has used (it keeps the bit reader in locals). */
    let hotBits = 0;
    for (;;) {
      const maxBlock = (input[streamStart + 3]! - 0x30) * 100000;
      if (tt.length < maxBlock) tt = new Int32Array(maxBlock);
      const bits = new Bits(input, streamStart + 4);
      let combined = 0;
      for (;;) try {
        const blockAt = bits.offset();
        const m1 = bits.read(24);
        const m2 = bits.read(24);
        if (bits.overrun()) fail("truncated", input.length, `input ends at ${input.length} inside a block or end-of-stream header at ${blockAt}`);
        if (m1 === END_MAGIC_HI && m2 === END_MAGIC_LO) {
          const stored = ((bits.read(16) << 16) | bits.read(16)) >>> 0;
          if (bits.overrun()) fail("truncated", input.length, `input ends inside the combined CRC after ${blockAt}`);
          if (stored !== combined >>> 0) fail("checksum", blockAt, `combined CRC is ${hex(combined)}, stream says ${hex(stored)}`);
          bits.align();
          break;
        }
        if (m1 !== BLOCK_MAGIC_HI || m2 !== BLOCK_MAGIC_LO) {
          fail("corrupt", blockAt, `block magic at ${blockAt} is ${hex(m1 * 2 ** 24 + m2)}, expected 0x314159265359 or 0x177245385090`);
        }
        const blockCrc = ((bits.read(16) << 16) | bits.read(16)) >>> 0;
        if (bits.read(1)) fail("unsupported", blockAt, `block at ${blockAt} is "randomised" (written by bzip2 before 0.9.5)`);
        const origPtr = bits.read(24);

        // Symbol map: which byte values occur, as 16 groups of 16.
        const used16 = bits.read(16);
        let nInUse = 0;
        for (let i = 0; i < 16; i++) {
          if (!(used16 & (0x8000 >>> i))) continue;
          const u = bits.read(16);
          for (let j = 0; j < 16; j++) if (u & (0x8000 >>> j)) seqToUnseq[nInUse++] = i * 16 + j;
        }
        if (nInUse === 0) fail("corrupt", blockAt, `block at ${blockAt} uses no byte values`);
        const alphaSize = nInUse + 2;

        const nGroups = bits.read(3);
        if (nGroups < MIN_GROUPS || nGroups > MAX_GROUPS) fail("corrupt", bits.offset(), `block at ${blockAt}: ${nGroups} Huffman groups (2–6 allowed)`);
        const nSelectorsRead = bits.read(15);
        if (nSelectorsRead < 1) fail("corrupt", bits.offset(), `block at ${blockAt}: no selectors`);
        const groupMtf = [0, 1, 2, 3, 4, 5];
        for (let i = 0; i < nSelectorsRead; i++) {
          let j = 0;
          while (bits.read(1)) {
            j++;
            if (j >= nGroups) fail("corrupt", bits.offset(), `block at ${blockAt}: selector ${i} is ≥ ${nGroups} groups`);
          }
          if (i < MAX_SELECTORS) {
            const v = groupMtf[j]!;
            for (let k = j; k > 0; k--) groupMtf[k] = groupMtf[k - 1]!;
            groupMtf[0] = v;
            selectors[i] = v;
          }
        }
        const nSelectors = Math.min(nSelectorsRead, MAX_SELECTORS);

        const tables: Table[] = [];
        for (let g = 0; g < nGroups; g++) {
          let len = bits.read(5);
          for (let s = 0; s < alphaSize; s++) {
            for (;;) {
              if (len < 1 || len > MAX_CODE_LEN) fail("corrupt", bits.offset(), `block at ${blockAt}: code length ${len} (1–20 allowed) in group ${g}`);
              if (!bits.read(1)) break;
              len += bits.read(1) ? -1 : 1;
            }
            lengths[s] = len;
          }
          tables.push(buildTable(lengths, alphaSize, bits.offset()));
        }
        if (bits.overrun()) fail("truncated", input.length, `input ends at ${input.length} inside the header of the block at ${blockAt}`);

        // Huffman → MTF/RLE2 → symbols in tt[] (low byte), counting each byte value.
        for (let i = 0; i < 256; i++) mtf[i] = i;
        unzftab.fill(0);
        const eob = nInUse + 1;
        let nblock = 0;
        let groupLeft = 0;
        let selIdx = 0;
        let t: Table = tables[0]!;
        let runLen = 0;
        let runBit = 1;
        // Inline bit reader state for the hot loop.
        let buf = bits.buf, count = bits.count, pos = bits.pos;
        for (;;) {
          if (groupLeft === 0) {
            if (selIdx >= nSelectors) fail("corrupt", pos, `block at ${blockAt}: symbols run past the ${nSelectors} selectors`);
            if (pos > input.length + 4) fail("truncated", input.length, `input ends at ${input.length} inside the block at ${blockAt}`);
            t = tables[selectors[selIdx++]!]!;
            groupLeft = GROUP_SIZE;
          }
          groupLeft--;
          // Peek MAX_CODE_LEN bits (buf keeps at most 31 valid bits).
          while (count < MAX_CODE_LEN) {
            buf = (buf << 8) | (input[pos++] ?? 0);
            count += 8;
          }
          const peek = (buf >>> (count - MAX_CODE_LEN)) & 0xfffff;
          const e = t.fast[peek >>> (MAX_CODE_LEN - FAST_BITS)]!;
          let sym: number;
          if (e !== 0) {
            count -= e & 31;
            sym = e >>> 5;
          } else {
            let len = FAST_BITS + 1;
            for (;; len++) {
              if (len > t.maxLen) fail("corrupt", pos, `block at ${blockAt}: no Huffman code matches the bits at byte ${pos - (count >>> 3)}`);
              const c = (peek >>> (MAX_CODE_LEN - len)) - t.first[len]!;
              if (c >= 0 && c < t.count[len]!) {
                sym = t.sorted[t.index[len]! + c]!;
                break;
              }
            }
            count -= len;
          }
          hotBits = pos * 8 - count;
          if (sym <= 1) {
            // RUNA/RUNB: a bijective base-2 run length of the front MTF symbol.
            runLen += (sym + 1) * runBit;
            runBit <<= 1;
            if (runBit > 1 << 21) fail("corrupt", pos, `block at ${blockAt}: run length too long`);
            continue;
          }
          if (runLen > 0) {
            if (nblock + runLen > maxBlock) fail("corrupt", pos, `block at ${blockAt} is longer than ${maxBlock} bytes`);
            const uc = seqToUnseq[mtf[0]!]!;
            unzftab[uc] += runLen;
            tt.fill(uc, nblock, nblock + runLen);
            nblock += runLen;
            runLen = 0;
            runBit = 1;
          }
          if (sym === eob) break;
          if (sym > eob) fail("corrupt", pos, `block at ${blockAt}: symbol ${sym} beyond the alphabet`);
          if (nblock >= maxBlock) fail("corrupt", pos, `block at ${blockAt} is longer than ${maxBlock} bytes`);
          const n = sym - 1;
          const v = mtf[n]!;
          for (let k = n; k > 0; k--) mtf[k] = mtf[k - 1]!;
          mtf[0] = v;
          const uc = seqToUnseq[v]!;
          unzftab[uc]++;
          tt[nblock++] = uc;
        }
        bits.buf = buf;
        bits.count = count;
        bits.pos = pos;
        if (bits.overrun()) fail("truncated", input.length, `input ends at ${input.length} inside the block at ${blockAt}`);
        if (origPtr >= nblock) fail("corrupt", blockAt, `block at ${blockAt}: origPtr ${origPtr} is not below its ${nblock} bytes`);

        // Inverse BWT: tt[i] gets, above its own byte, the index of the next byte.
        cftab[0] = 0;
        for (let i = 0; i < 256; i++) cftab[i + 1] = cftab[i]! + unzftab[i]!;
        for (let i = 0; i < nblock; i++) {
          const uc = tt[i]! & 0xff;
          tt[cftab[uc]!++] |= i << 8;
        }

        // Undo the initial RLE (4 equal bytes, then a count of 0–255 more) straight into out.
        let tPos = tt[origPtr]! >>> 8;
        let crc = -1;
        let last = -1;
        let run = 0;
        let o = outPos;
        const room = out.length;
        for (let k = 0; k < nblock; k++) {
          const x = tt[tPos]!;
          const b = x & 0xff;
          tPos = x >>> 8;
          if (run === 4) {
            if (o + b > room) fail("too-large", blockAt, `output passes the room (${room} bytes) in the block at ${blockAt}`);
            for (let r = 0; r < b; r++) {
              out[o++] = last;
              crc = (crc << 8) ^ CRC[((crc >>> 24) ^ last) & 0xff]!;
            }
            run = 0;
            continue;
          }
          if (b === last) run++;
          else {
            run = 1;
            last = b;
          }
          if (o >= room) fail("too-large", blockAt, `output passes the room (${room} bytes) in the block at ${blockAt}`);
          out[o++] = b;
          crc = (crc << 8) ^ CRC[((crc >>> 24) ^ b) & 0xff]!;
          if (o >= stopAfter) return { written: o, consumed: bits.offset() };
        }
        outPos = o;
        if (outPos >= stopAfter) return { written: outPos, consumed: bits.offset() };
        crc = ~crc >>> 0;
        if (crc !== blockCrc) fail("checksum", blockAt, `block at ${blockAt}: CRC is ${hex(crc)}, stored ${hex(blockCrc)}`);
        combined = (((combined << 1) | (combined >>> 31)) ^ crc) >>> 0;
      } catch (e) {
        // Reads past the input yield zero bits; whatever they were taken for, the input was short.
        if (e instanceof CodecError && e.kind === "corrupt" && (bits.overrun() || hotBits > input.length * 8)) {
          fail("truncated", input.length, `input ends at ${input.length} inside a block (${e.message})`);
        }
        throw e;
      }
      // Another stream may follow (as `bzip2 -dc` decodes concatenations); anything else is not ours.
      streamStart = bits.offset();
      if (!isStreamStart(input, streamStart)) return { written: outPos, consumed: streamStart };
    }
  },
};

/** bzip2's CRC of data[start, end) (for tests and containers that need it). */
export function bzip2Crc(data: Uint8Array, start = 0, end = data.length): number {
  return ~crcOfBytes(data, start, end, -1) >>> 0;
}
