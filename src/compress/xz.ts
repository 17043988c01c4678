// The `.xz` container (The .xz File Format 1.1.0, xz-utils doc/xz-file-format.txt) around LZMA2,
// as `xz -dc` reads it: one or more streams, each
//
//   Stream Header (12): magic FD 37 7A 58 5A 00, flags (00, check ID), CRC32 of the flags
//   Blocks: header ((size byte + 1) * 4 bytes: flags, optional compressed/uncompressed sizes,
//           1–4 filter flags, zero padding, CRC32), compressed data, zero padding to 4,
//           check (0/4/8/32 bytes for none/CRC32/CRC64/SHA-256) of the uncompressed data
//   Index: 00, record count, (unpadded size, uncompressed size) per block, padding, CRC32
//   Stream Footer (12): CRC32, backward size ((index size / 4) - 1, u32 LE), flags, "YZ"
//
// with stream padding (zero bytes, a multiple of four) between and after streams. Everything the
// format cross-checks is checked: header CRCs, reserved bits, sizes a block header declares, the
// index against the blocks actually decoded, the footer against the header and the index.
//
// LZMA2 (§5.3.1 and xz-embedded's xz_dec_lzma2.c) is a sequence of chunks: uncompressed chunks
// copied as they are, and LZMA chunks (≤ 2 MiB out, ≤ 64 KiB in) with state / property /
// dictionary resets; the LZMA core is src/compress/lzma-core.ts. Output goes straight into `out`
// and is the LZMA2 dictionary itself; a block's filters (BCJ, delta) then run over the block's
// output in place (src/compress/xz-filters.ts).
import { CodecError, type Codec, type DecodeOptions, type DecodeResult } from "./codec.js";
import { decodePropsByte, LzmaDecoder, LzmaStop } from "./lzma-core.js";
import { crc32, crc64, sha256 } from "./xz-check.js";
import {
  arm64Decode, armDecode, armThumbDecode, deltaDecode, FILTER_ARM, FILTER_ARM64, FILTER_ARMTHUMB, FILTER_DELTA, FILTER_IA64,
  FILTER_LZMA2, FILTER_NAMES, FILTER_POWERPC, FILTER_SPARC, FILTER_X86, ia64Decode, powerpcDecode, sparcDecode, x86Decode,
} from "./xz-filters.js";

const MAGIC = [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00];
const FOOTER_MAGIC = [0x59, 0x5a]; // "YZ"
const HEADER_SIZE = 12;
const FOOTER_SIZE = 12;

const CHECK_NONE = 0;
const CHECK_CRC32 = 1;
const CHECK_CRC64 = 4;
const CHECK_SHA256 = 10;
/** Check sizes by check ID (§2.1.1.2: IDs 0x01–0x0F reserve 4, 4, 4, 8, 8, 8, 16, … bytes). */
const CHECK_SIZE = [0, 4, 4, 4, 8, 8, 8, 16, 16, 16, 32, 32, 32, 64, 64, 64];
const CHECK_NAME: Record<number, string> = { [CHECK_NONE]: "none", [CHECK_CRC32]: "CRC32", [CHECK_CRC64]: "CRC64", [CHECK_SHA256]: "SHA-256" };

/** LZMA2 chunk limits (xz_dec_lzma2.c). */
const LZMA2_DICT_MAX_BITS = 40;

const hex = (n: number) => `0x${n.toString(16)}`;

function fail(kind: "truncated" | "corrupt" | "checksum" | "too-large" | "unsupported", offset: number, msg: string): never {
  throw new CodecError(kind, offset, `xz: ${msg}`);
}

const le32 = (b: Uint8Array, i: number) => (b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24)) >>> 0;

function hasMagic(b: Uint8Array, at: number): boolean {
  if (b.length - at < MAGIC.length) return false;
  for (let i = 0; i < MAGIC.length; i++) if (b[at + i] !== MAGIC[i]) return false;
  return true;
}

/** Reads a variable-length integer (§1.2: 7 bits a byte, up to 9 bytes, minimal) within [pos, end). */
function vli(b: Uint8Array, pos: number, end: number, what: string): [value: number, next: number] {
  let v = 0;
  for (let i = 0; i < 9; i++) {
    if (pos + i >= end) fail(end >= b.length ? "truncated" : "corrupt", pos + i, `${what} runs past ${end >= b.length ? "the end of the input" : "its field"}`);
    const byte = b[pos + i]!;
    v += (byte & 0x7f) * 2 ** (7 * i);
    if ((byte & 0x80) === 0) {
      if (i > 0 && byte === 0) fail("corrupt", pos + i, `${what} is not minimally encoded`);
      if (v > Number.MAX_SAFE_INTEGER) fail("unsupported", pos, `${what} ${v} is beyond 2^53`);
      return [v, pos + i + 1];
    }
  }
  fail("corrupt", pos, `${what} is longer than 9 bytes`);
}

interface Filter {
  id: number;
  props: Uint8Array;
  /** For LZMA2: dictionary size; for delta: distance; for BCJ: start offset. */
  arg: number;
}

interface BlockHeader {
  size: number;
  compressedSize: number | undefined;
  uncompressedSize: number | undefined;
  filters: Filter[];
}

function parseBlockHeader(b: Uint8Array, pos: number): BlockHeader {
  const size = (b[pos]! + 1) * 4;
  if (pos + size > b.length) fail("truncated", b.length, `block header at ${pos} is ${size} bytes, input ends at ${b.length}`);
  const end = pos + size - 4;
  const stored = le32(b, end);
  const actual = crc32(b, pos, end);
  if (stored !== actual) fail("checksum", end, `block header at ${pos}: CRC32 is ${hex(actual)}, stored ${hex(stored)}`);
  const flags = b[pos + 1]!;
  if (flags & 0x3c) fail("unsupported", pos + 1, `block header at ${pos}: reserved flag bits set (${hex(flags)})`);
  let p = pos + 2;
  let compressedSize: number | undefined;
  let uncompressedSize: number | undefined;
  if (flags & 0x40) {
    [compressedSize, p] = vli(b, p, end, "block compressed size");
    if (compressedSize === 0) fail("corrupt", pos, `block header at ${pos}: compressed size 0`);
  }
  if (flags & 0x80) [uncompressedSize, p] = vli(b, p, end, "block uncompressed size");
  const n = (flags & 3) + 1;
  const filters: Filter[] = [];
  for (let k = 0; k < n; k++) {
    let id: number, propsSize: number;
    [id, p] = vli(b, p, end, "filter ID");
    [propsSize, p] = vli(b, p, end, "filter properties size");
    if (p + propsSize > end) fail("corrupt", p, `block header at ${pos}: filter ${hex(id)}'s ${propsSize} property bytes run past the header`);
    const props = b.subarray(p, p + propsSize);
    p += propsSize;
    const last = k === n - 1;
    const name = FILTER_NAMES[id];
    if (name === undefined) fail("unsupported", p, `block header at ${pos}: filter ID ${hex(id)} is not one this decoder implements`);
    if (last !== (id === FILTER_LZMA2)) {
      fail(id === FILTER_LZMA2 ? "corrupt" : "unsupported", p, `block header at ${pos}: ${name} is filter ${k + 1} of ${n}; LZMA2 must be last and only last`);
    }
    let arg = 0;
    if (id === FILTER_LZMA2) {
      if (propsSize !== 1) fail("corrupt", p, `LZMA2 properties are ${propsSize} bytes, not 1`);
      const bits = props[0]!;
      if (bits > LZMA2_DICT_MAX_BITS) fail("corrupt", p - 1, `LZMA2 dictionary size byte ${bits} is above 40`);
      arg = bits === 40 ? 0xffffffff : (2 | (bits & 1)) * 2 ** ((bits >>> 1) + 11);
    } else if (id === FILTER_DELTA) {
      if (propsSize !== 1) fail("corrupt", p, `Delta properties are ${propsSize} bytes, not 1`);
      arg = props[0]! + 1;
    } else {
      if (propsSize === 4) arg = le32(props, 0);
      else if (propsSize !== 0) fail("corrupt", p, `${name} properties are ${propsSize} bytes, not 0 or 4`);
      if (id === 0x0b) fail("unsupported", p, `${name} filter is not implemented (xz-utils 5.4 cannot write it)`);
    }
    filters.push({ id, props, arg });
  }
  for (; p < end; p++) if (b[p] !== 0) fail("unsupported", p, `block header at ${pos}: header padding byte ${hex(b[p]!)} is not 0`);
  return { size, compressedSize, uncompressedSize, filters };
}

/**
 * Decodes LZMA2 chunks from input[pos…] into out[outPos…limit); returns where the input and
 * output ended (after the end-of-data chunk, or at `stopAt` output bytes for a peek).
 */
function decodeLzma2(input: Uint8Array, pos: number, inEnd: number, out: Uint8Array, outPos: number, limit: number, stopAt: number, dec: LzmaDecoder): [inPos: number, outPos: number, complete: boolean] {
  let needDictReset = true;
  let needProps = true;
  let dictStart = outPos;
  for (;;) {
    if (outPos >= stopAt) return [pos, outPos, false];
    if (pos >= inEnd) fail(inEnd >= input.length ? "truncated" : "corrupt", pos, `LZMA2 data ends at ${pos} without its end marker`);
    const control = input[pos]!;
    if (control === 0x00) return [pos + 1, outPos, true];
    if (control >= 0xe0 || control === 0x01) {
      needProps = true;
      needDictReset = false;
      dictStart = outPos;
    } else if (needDictReset) {
      fail("corrupt", pos, `LZMA2 chunk control ${hex(control)} at ${pos}: the first chunk must reset the dictionary`);
    }
    if (control >= 0x80) {
      if (pos + 5 > inEnd) fail("truncated", inEnd, `LZMA2 chunk header at ${pos} runs past the input`);
      const unc = ((control & 0x1f) << 16) + (input[pos + 1]! << 8) + input[pos + 2]! + 1;
      const comp = (input[pos + 3]! << 8) + input[pos + 4]! + 1;
      pos += 5;
      if (control >= 0xc0) {
        if (pos >= inEnd) fail("truncated", inEnd, `LZMA2 chunk properties at ${pos} run past the input`);
        const props = decodePropsByte(input[pos]!);
        if (!props || props.lc + props.lp > 4) fail("corrupt", pos, `LZMA2 properties byte ${hex(input[pos]!)} is invalid (lc + lp > 4 or out of range)`);
        dec.setProps(props);
        needProps = false;
        pos++;
      } else if (needProps) {
        fail("corrupt", pos - 5, `LZMA2 chunk at ${pos - 5} needs new properties (control ${hex(control)})`);
      } else if (control >= 0xa0) {
        dec.resetState();
      }
      const chunkEnd = pos + comp;
      if (chunkEnd > inEnd) fail("truncated", inEnd, `LZMA2 chunk at ${pos} is ${comp} bytes, input ends at ${inEnd}`);
      if (outPos + unc > limit && stopAt > limit) overLimit(pos, outPos, unc, limit, out.length);
      if (comp < 5) fail("corrupt", pos, `LZMA2 chunk at ${pos} has ${comp} compressed bytes, fewer than the range coder's 5`);
      if (!dec.initRangeCoder(input, pos)) fail("corrupt", pos, `LZMA2 chunk at ${pos}: range coder's first byte is ${hex(input[pos]!)}, not 0`);
      const chunkLimit = Math.min(outPos + unc, limit, stopAt);
      // The chunk's input as its own view: reading past it yields undefined, so a chunk whose
      // symbols need more bytes than it declares is caught (Truncated) instead of eating the next.
      const chunk = input.subarray(0, chunkEnd);
      const stop = dec.decode(chunk, chunkEnd, out, outPos, chunkLimit, dictStart);
      const got = dec.outPos;
      if (stop === LzmaStop.BadDistance) fail("corrupt", dec.inPos, `LZMA2 match distance ${dec.rep0 + 1} reaches before the dictionary start (output ${got})`);
      if (stop === LzmaStop.Truncated) fail("corrupt", chunkEnd, `LZMA2 chunk at ${pos} needs more than its ${comp} compressed bytes`);
      if (stop === LzmaStop.EndMarker) fail("corrupt", dec.inPos, `LZMA2 chunk at ${pos} contains an end marker`);
      if (got >= stopAt && got < outPos + unc) return [dec.inPos, got, false];
      if (stop === LzmaStop.Overrun) fail("corrupt", dec.inPos, `LZMA2 match runs past the end of its chunk (output ${got})`);
      if (dec.inPos !== chunkEnd || !dec.rcFinished()) fail("corrupt", dec.inPos, `LZMA2 chunk at ${pos} does not end cleanly (${chunkEnd - dec.inPos} bytes left, code ${hex(dec.code >>> 0)})`);
      outPos = got;
      pos = chunkEnd;
    } else {
      if (control > 0x02) fail("corrupt", pos, `LZMA2 chunk control ${hex(control)} at ${pos} is invalid`);
      if (pos + 3 > inEnd) fail("truncated", inEnd, `LZMA2 chunk header at ${pos} runs past the input`);
      const n = (input[pos + 1]! << 8) + input[pos + 2]! + 1;
      pos += 3;
      if (pos + n > inEnd) fail("truncated", inEnd, `LZMA2 uncompressed chunk at ${pos} is ${n} bytes, input ends at ${inEnd}`);
      let m = n;
      if (outPos + m > stopAt) m = stopAt - outPos;
      if (outPos + m > limit) overLimit(pos, outPos, m, limit, out.length);
      out.set(input.subarray(pos, pos + m), outPos);
      outPos += m;
      if (m < n) return [pos + m, outPos, false];
      pos += n;
    }
  }
}

/** A chunk of `n` bytes at output `outPos` passes `limit`: the room (too large) or the block's declared size. */
function overLimit(pos: number, outPos: number, n: number, limit: number, room: number): never {
  if (limit === room) fail("too-large", pos, `output passes the room (${room} bytes): LZMA2 chunk at ${pos} of ${n} bytes at output ${outPos}`);
  fail("corrupt", pos, `LZMA2 chunk at ${pos} of ${n} bytes at output ${outPos} passes the block's declared uncompressed size`);
}

/** Runs a block's non-LZMA2 filters, last to first, over out[start, end). */
function unfilter(filters: Filter[], out: Uint8Array, start: number, end: number): void {
  for (let k = filters.length - 2; k >= 0; k--) {
    const f = filters[k]!;
    switch (f.id) {
      case FILTER_DELTA: deltaDecode(out, start, end, f.arg); break;
      case FILTER_X86: x86Decode(out, start, end, f.arg); break;
      case FILTER_POWERPC: powerpcDecode(out, start, end, f.arg); break;
      case FILTER_IA64: ia64Decode(out, start, end, f.arg); break;
      case FILTER_ARM: armDecode(out, start, end, f.arg); break;
      case FILTER_ARMTHUMB: armThumbDecode(out, start, end, f.arg); break;
      case FILTER_SPARC: sparcDecode(out, start, end, f.arg); break;
      case FILTER_ARM64: arm64Decode(out, start, end, f.arg); break;
    }
  }
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

const toHex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

/** The check of out[start, end) as the stream stores it. */
function computeCheck(id: number, out: Uint8Array, start: number, end: number): Uint8Array {
  switch (id) {
    case CHECK_CRC32: {
      const c = crc32(out, start, end);
      return new Uint8Array([c, c >>> 8, c >>> 16, c >>> 24]);
    }
    case CHECK_CRC64: return crc64(out, start, end);
    case CHECK_SHA256: return sha256(out, start, end);
    default: return new Uint8Array(0);
  }
}

/** Parses a stream header at `pos`, returning the check ID. */
function streamHeader(input: Uint8Array, pos: number): number {
  if (input.length - pos < HEADER_SIZE) fail("truncated", input.length, `stream header at ${pos} needs ${HEADER_SIZE} bytes, input ends at ${input.length}`);
  if (!hasMagic(input, pos)) fail("corrupt", pos, `no stream header magic at ${pos}`);
  const stored = le32(input, pos + 8);
  const actual = crc32(input, pos + 6, pos + 8);
  if (stored !== actual) fail("checksum", pos + 8, `stream header at ${pos}: CRC32 is ${hex(actual)}, stored ${hex(stored)}`);
  if (input[pos + 6] !== 0 || (input[pos + 7]! & 0xf0) !== 0) fail("unsupported", pos + 6, `stream flags ${hex(input[pos + 6]!)} ${hex(input[pos + 7]!)} have reserved bits set`);
  const check = input[pos + 7]!;
  if (CHECK_NAME[check] === undefined) fail("unsupported", pos + 7, `check type ${check} is not one this decoder can verify (none, CRC32, CRC64, SHA-256)`);
  return check;
}

/**
 * Walks the streams backwards from the end (footer → index → header) adding up the index's
 * uncompressed sizes; undefined when the input does not end exactly with xz streams (e.g. the
 * kernel's appended 4-byte size) or anything does not parse.
 */
function sizeFromIndexes(input: Uint8Array): number | undefined {
  let end = input.length;
  let total = 0;
  while (end > 0) {
    while (end >= 4 && le32(input, end - 4) === 0) end -= 4;
    if (end === 0) break;
    const f = end - FOOTER_SIZE;
    if (f < HEADER_SIZE || input[end - 2] !== FOOTER_MAGIC[0] || input[end - 1] !== FOOTER_MAGIC[1]) return undefined;
    if (le32(input, f) !== crc32(input, f + 4, f + 10)) return undefined;
    const indexSize = (le32(input, f + 4) + 1) * 4;
    const idx = f - indexSize;
    if (idx < HEADER_SIZE || input[idx] !== 0) return undefined;
    try {
      let [count, p] = vli(input, idx + 1, f, "index record count");
      let blocksSize = 0;
      for (; count > 0; count--) {
        let unpadded: number, unc: number;
        [unpadded, p] = vli(input, p, f, "index unpadded size");
        [unc, p] = vli(input, p, f, "index uncompressed size");
        blocksSize += Math.ceil(unpadded / 4) * 4;
        total += unc;
      }
      const start = idx - blocksSize - HEADER_SIZE;
      if (start < 0 || !hasMagic(input, start)) return undefined;
      end = start;
    } catch {
      return undefined;
    }
  }
  return Number.isSafeInteger(total) ? total : undefined;
}

export const xz: Codec = {
  name: "xz",

  sniff(input: Uint8Array): boolean {
    return hasMagic(input, 0);
  },

  declaredSize(input: Uint8Array): number | undefined {
    return hasMagic(input, 0) ? sizeFromIndexes(input) : undefined;
  },

  decode(input: Uint8Array, out: Uint8Array, options?: DecodeOptions): DecodeResult {
    const stopAfter = options?.stopAfter;
    // Filters see up to 16 bytes past a position (IA-64 bundles), so a peek decodes that much more.
    const stopAt = stopAfter === undefined ? Infinity : Math.min(stopAfter + 16, out.length);
    const dec = new LzmaDecoder();
    let pos = 0;
    let outPos = 0;
    if (!hasMagic(input, 0)) fail(input.length < MAGIC.length ? "truncated" : "corrupt", 0, "no stream header magic (FD 37 7A 58 5A 00) at 0");
    for (;;) {
      const streamStart = pos;
      const check = streamHeader(input, pos);
      const checkSize = CHECK_SIZE[check]!;
      pos += HEADER_SIZE;
      const records: Array<[unpadded: number, uncompressed: number]> = [];

      // Blocks, until the index indicator (a 00 where a block header size would be).
      for (;;) {
        if (pos >= input.length) fail("truncated", pos, `input ends at ${pos}, where a block header or the index should start`);
        if (input[pos] === 0) break;
        const h = parseBlockHeader(input, pos);
        const dataStart = pos + h.size;
        const blockOut = outPos;
        if (h.uncompressedSize !== undefined && outPos + h.uncompressedSize > out.length && stopAt > out.length) {
          fail("too-large", pos, `block at ${pos} declares ${h.uncompressedSize} bytes; with ${outPos} already written that passes the room (${out.length} bytes)`);
        }
        const dataEnd = h.compressedSize !== undefined ? dataStart + h.compressedSize : input.length;
        if (dataEnd > input.length) fail("truncated", input.length, `block at ${pos} declares ${h.compressedSize} compressed bytes, input ends at ${input.length}`);
        const limit = h.uncompressedSize !== undefined ? outPos + h.uncompressedSize : out.length;
        const [inEnd, outEnd, complete] = decodeLzma2(input, dataStart, dataEnd, out, outPos, limit, stopAt, dec);
        unfilter(h.filters, out, blockOut, outEnd);
        if (!complete) return { written: Math.min(outEnd, stopAfter ?? outEnd), consumed: inEnd };
        outPos = outEnd;
        const compressed = inEnd - dataStart;
        if (h.compressedSize !== undefined && compressed !== h.compressedSize) {
          fail("corrupt", inEnd, `block at ${pos}: LZMA2 data is ${compressed} bytes, header says ${h.compressedSize}`);
        }
        if (h.uncompressedSize !== undefined && outPos - blockOut !== h.uncompressedSize) {
          fail("corrupt", inEnd, `block at ${pos}: ${outPos - blockOut} bytes of output, header says ${h.uncompressedSize}`);
        }
        let p = inEnd;
        for (; (p - dataStart) % 4 !== 0; p++) {
          if (p >= input.length) fail("truncated", p, `block padding at ${p} runs past the input`);
          if (input[p] !== 0) fail("corrupt", p, `block padding byte ${hex(input[p]!)} at ${p} is not 0`);
        }
        if (p + checkSize > input.length) fail("truncated", input.length, `block check at ${p} (${checkSize} bytes) runs past the input`);
        const want = input.subarray(p, p + checkSize);
        const got = computeCheck(check, out, blockOut, outPos);
        if (!equalBytes(want, got)) {
          fail("checksum", p, `block at ${pos}: ${CHECK_NAME[check]} of its ${outPos - blockOut} bytes is ${toHex(got)}, stored ${toHex(want)}`);
        }
        records.push([h.size + compressed + checkSize, outPos - blockOut]);
        pos = p + checkSize;
      }

      // Index: must list exactly the blocks decoded.
      const indexStart = pos;
      let count: number;
      let p: number;
      [count, p] = vli(input, pos + 1, input.length, "index record count");
      if (count !== records.length) fail("corrupt", pos + 1, `index at ${pos} lists ${count} blocks, the stream has ${records.length}`);
      for (let k = 0; k < count; k++) {
        let unpadded: number, unc: number;
        [unpadded, p] = vli(input, p, input.length, "index unpadded size");
        [unc, p] = vli(input, p, input.length, "index uncompressed size");
        const [ru, rc] = records[k]!;
        if (unpadded !== ru || unc !== rc) {
          fail("corrupt", p, `index record ${k} says ${unpadded}/${unc} (unpadded/uncompressed), block ${k} is ${ru}/${rc}`);
        }
      }
      for (; (p - indexStart) % 4 !== 0; p++) {
        if (p >= input.length) fail("truncated", p, `index padding at ${p} runs past the input`);
        if (input[p] !== 0) fail("corrupt", p, `index padding byte ${hex(input[p]!)} at ${p} is not 0`);
      }
      if (p + 4 > input.length) fail("truncated", input.length, `index CRC32 at ${p} runs past the input`);
      const idxCrc = crc32(input, indexStart, p);
      if (le32(input, p) !== idxCrc) fail("checksum", p, `index at ${indexStart}: CRC32 is ${hex(idxCrc)}, stored ${hex(le32(input, p))}`);
      p += 4;
      const indexSize = p - indexStart;

      // Footer.
      if (p + FOOTER_SIZE > input.length) fail("truncated", input.length, `stream footer at ${p} runs past the input`);
      const fcrc = crc32(input, p + 4, p + 10);
      if (le32(input, p) !== fcrc) fail("checksum", p, `stream footer at ${p}: CRC32 is ${hex(fcrc)}, stored ${hex(le32(input, p))}`);
      const backward = (le32(input, p + 4) + 1) * 4;
      if (backward !== indexSize) fail("corrupt", p + 4, `stream footer at ${p}: backward size ${backward}, index is ${indexSize} bytes`);
      if (input[p + 8] !== input[streamStart + 6] || input[p + 9] !== input[streamStart + 7]) {
        fail("corrupt", p + 8, `stream footer at ${p}: flags differ from the stream header's`);
      }
      if (input[p + 10] !== FOOTER_MAGIC[0] || input[p + 11] !== FOOTER_MAGIC[1]) fail("corrupt", p + 10, `stream footer at ${p}: no "YZ" magic`);
      pos = p + FOOTER_SIZE;

      // Stream padding (zeros in fours), then another stream or the end of what is ours.
      while (pos + 4 <= input.length && le32(input, pos) === 0) pos += 4;
      if (!hasMagic(input, pos)) break;
    }
    return { written: outPos, consumed: pos };
  },
};
