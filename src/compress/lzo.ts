// LZO: the lzop file format (what `lzop` and the Linux build's `lzo` command write; lzop 1.04
// src/lzop.c, and Linux lib/decompress_unlzo.c which reads the same header) around LZO1X blocks
// (the LZO1X decompressor as Linux lib/lzo/lzo1x_decompress_safe.c describes it).
//
// File:   magic 89 4c 5a 4f 00 0d 0a 1a 0a | version u16 | lib_version u16 | [version_needed u16]
//         | method u8 | [level u8] | flags u32 | [filter u32] | mode u32 | mtime_low u32
//         | [mtime_high u32] | name_len u8 | name | header checksum u32 | [extra field]
//         (all big-endian; [..] present for version >= 0x0940 or when a flag says so)
// Blocks: dst_len u32 (0 ends the file) | src_len u32 | [Adler-32/CRC-32 of the decompressed
//         block] | [Adler-32/CRC-32 of the compressed block, only when src_len < dst_len] | data
//         (stored when src_len == dst_len, else LZO1X).
//
// LZO1X is a byte-oriented LZ77: every match reads earlier output, which here is `out` (guest
// RAM) itself; blocks are independent (a match never reaches into an earlier block).
//
// Two decoders of the same blocks with the same results and failures: with a Core whose memory
// holds `out` (a load into a VM), each block's compressed bytes are copied into the core's LZO
// input area and assembly/lzo.ts decodes them straight into guest RAM and checks the Adler-32s
// (measured on Debian's arm64 Image, lzop defaults: ~4x the TypeScript loop, ~2x `lzop -dc`);
// otherwise (a host buffer, a partial decode for detection) the TypeScript loop below runs.
import { LZO_INPUT_BYTES, type Core } from "../core/core.js";
import { CodecError, type Codec, type DecodeOptions, type DecodeResult } from "./codec.js";

const MAGIC = [0x89, 0x4c, 0x5a, 0x4f, 0x00, 0x0d, 0x0a, 0x1a, 0x0a];
// lzop.c flag bits
const F_ADLER32_D = 0x1;
const F_ADLER32_C = 0x2;
const F_H_EXTRA_FIELD = 0x40;
const F_CRC32_D = 0x100;
const F_CRC32_C = 0x200;
const F_MULTIPART = 0x400;
const F_H_FILTER = 0x800;
const F_H_CRC32 = 0x1000;
/** lzop.c methods M_LZO1X_1, M_LZO1X_1_15, M_LZO1X_999: all LZO1X streams. */
const LZO1X_METHODS = new Set([1, 2, 3]);
/**
 * The largest block decoded: lzop 1.04 writes blocks of BLOCK_SIZE (256 KiB) and refuses to
 * decode a larger one ("block size too small -- recompile lzop"), as Linux's decompress_unlzo.c
 * does (LZO_BLOCK_SIZE, "dest len longer than block size"), although the format's own limit
 * (lzop.c MAX_BLOCK_SIZE) is 64 MiB. A block's compressed bytes (fewer than its dst_len) thus
 * always fit the core's LZO input area.
 */
const MAX_BLOCK = 256 * 1024;
/** LZO1X M2_MAX_OFFSET and the M4 offset base. */
const M2_MAX_OFFSET = 0x800;

const hex = (n: number) => "0x" + n.toString(16);
const be32 = (b: Uint8Array, i: number) => ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;
const be16 = (b: Uint8Array, i: number) => (b[i] << 8) | b[i + 1];

/** Adler-32 (RFC 1950 §8.2) continuing from `a`. */
export function adler32(data: Uint8Array, a = 1): number {
  let s1 = a & 0xffff;
  let s2 = a >>> 16;
  let i = 0;
  const n = data.length;
  while (i < n) {
    // 5552: the most bytes before s2 can pass 2^32 (zlib NMAX)
    const e = Math.min(n, i + 5552);
    for (; i < e; i++) {
      s1 += data[i];
      s2 += s1;
    }
    s1 %= 65521;
    s2 %= 65521;
  }
  return ((s2 << 16) | s1) >>> 0;
}

let crcTable: Int32Array | undefined;
/** CRC-32 (zlib/IEEE, what lzop's lzo_crc32 computes) continuing from `crc`. */
export function crc32(data: Uint8Array, crc = 0): number {
  if (!crcTable) {
    crcTable = new Int32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c;
    }
  }
  const t = crcTable;
  let c = ~crc;
  for (let i = 0; i < data.length; i++) c = t[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

interface Header {
  flags: number;
  /** Offset of the first block. */
  blocks: number;
  method: number;
}

function need(input: Uint8Array, ip: number, n: number, what: string): void {
  if (input.length - ip < n) throw new CodecError("truncated", input.length, `lzo: the input ends inside the ${what} at offset ${hex(ip)}`);
}

/** Parses and checks the lzop file header. */
function header(input: Uint8Array): Header {
  need(input, 0, MAGIC.length, "lzop magic");
  for (let i = 0; i < MAGIC.length; i++) {
    if (input[i] !== MAGIC[i]) throw new CodecError("corrupt", i, `lzo: no lzop magic (89 4c 5a 4f 00 0d 0a 1a 0a) at offset 0 (byte ${i} is ${hex(input[i])})`);
  }
  let p = MAGIC.length;
  need(input, p, 4, "header");
  const version = be16(input, p);
  p += 4; // version, lib_version
  const newer = version >= 0x0940;
  if (version < 0x0900) throw new CodecError("unsupported", MAGIC.length, `lzo: lzop file version ${hex(version)} is older than 0x0900`);
  if (newer) {
    need(input, p, 2, "header");
    const needed = be16(input, p);
    // lzop.c: versions up to its own (0x1040) can be read.
    if (needed > 0x1040) throw new CodecError("unsupported", p, `lzo: the file needs lzop version ${hex(needed)} to extract`);
    p += 2;
  }
  need(input, p, newer ? 2 : 1, "header");
  const method = input[p];
  p += newer ? 2 : 1;
  if (!LZO1X_METHODS.has(method)) throw new CodecError("unsupported", p - (newer ? 2 : 1), `lzo: method ${method} is not LZO1X (1, 2 or 3)`);
  need(input, p, 4, "header");
  const flags = be32(input, p);
  p += 4;
  if (flags & F_H_FILTER) throw new CodecError("unsupported", p - 4, `lzo: flags ${hex(flags)} name a filter (F_H_FILTER), which lzop no longer writes`);
  if (flags & F_MULTIPART) throw new CodecError("unsupported", p - 4, `lzo: flags ${hex(flags)} mark a multipart archive (F_MULTIPART)`);
  p += 4 + 4 + (newer ? 4 : 0); // mode, mtime_low, mtime_high
  need(input, p, 1, "header");
  p += 1 + input[p]; // name
  need(input, p, 4, "header checksum");
  const stored = be32(input, p);
  const hdr = input.subarray(MAGIC.length, p);
  const sum = flags & F_H_CRC32 ? crc32(hdr) : adler32(hdr);
  if (sum !== stored) {
    throw new CodecError("checksum", p, `lzo: header checksum at offset ${hex(p)} is ${hex(stored)}, the header's ${flags & F_H_CRC32 ? "CRC-32" : "Adler-32"} is ${hex(sum)}`);
  }
  p += 4;
  if (flags & F_H_EXTRA_FIELD) {
    need(input, p, 4, "extra field");
    const n = be32(input, p);
    need(input, p + 4, n + 4, "extra field");
    const got = flags & F_H_CRC32 ? crc32(input.subarray(p, p + 4 + n)) : adler32(input.subarray(p, p + 4 + n));
    const want = be32(input, p + 4 + n);
    if (got !== want) throw new CodecError("checksum", p + 4 + n, `lzo: extra field checksum at offset ${hex(p + 4 + n)} is ${hex(want)}, the field's is ${hex(got)}`);
    p += 4 + n + 4;
  }
  return { flags, blocks: p, method };
}

interface Block {
  at: number;
  dst: number;
  src: number;
  data: number;
  sumD?: number;
  crcD?: number;
  sumC?: number;
  crcC?: number;
}

/** The block whose header is at `ip`, or null at the end marker. */
function block(input: Uint8Array, ip: number, flags: number): Block | null {
  need(input, ip, 4, "block header");
  const dst = be32(input, ip);
  if (dst === 0) return null;
  need(input, ip, 8, "block header");
  const src = be32(input, ip + 4);
  if (dst > MAX_BLOCK) throw new CodecError("unsupported", ip, `lzo: block at offset ${hex(ip)} decodes to ${hex(dst)} bytes, more than the ${hex(MAX_BLOCK)} (256 KiB) lzop and Linux's unlzo decode`);
  if (src > dst) throw new CodecError("corrupt", ip + 4, `lzo: block at offset ${hex(ip)} has ${hex(src)} compressed bytes for ${hex(dst)} decompressed`);
  let p = ip + 8;
  const b: Block = { at: ip, dst, src, data: 0 };
  const word = () => {
    need(input, p, 4, "block checksum");
    p += 4;
    return be32(input, p - 4);
  };
  if (flags & F_ADLER32_D) b.sumD = word();
  if (flags & F_CRC32_D) b.crcD = word();
  if (src < dst) {
    if (flags & F_ADLER32_C) b.sumC = word();
    if (flags & F_CRC32_C) b.crcC = word();
  }
  need(input, p, src, "block data");
  b.data = p;
  return b;
}

class Enough {}

// Why an LZO1X block failed: the codes assembly/lzo.ts returns, shared by both decoders so their
// errors are the same.
const LZO_INPUT_OVERRUN = 1;
const LZO_LITERALS_PAST_END = 2;
const LZO_MATCH_BEFORE_START = 3;
const LZO_MATCH_PAST_END = 4;
const LZO_LENGTH_TOO_LONG = 5;
const LZO_BAD_END_MARKER = 6;
const LZO_TRAILING_BYTES = 7;

/**
 * The CodecError for an LZO1X failure `code` in the block whose data is input[start, iend), found
 * at input offset `at` with output offset `outInBlock` in the block; `arg` is the length or
 * distance the code concerns.
 */
function lzo1xError(code: number, start: number, iend: number, at: number, arg: number, outInBlock: number): CodecError {
  if (code === LZO_INPUT_OVERRUN) {
    return new CodecError("corrupt", at, `lzo: the LZO1X data at offset ${hex(start)} runs past the end of its block (${hex(iend - start)} bytes)`);
  }
  const what =
    code === LZO_LITERALS_PAST_END ? `${arg} literals decode past the block's dst_len`
    : code === LZO_MATCH_BEFORE_START ? `match distance ${arg} reaches before the start of the block`
    : code === LZO_MATCH_PAST_END ? `a ${arg}-byte match decodes past the block's dst_len`
    : code === LZO_LENGTH_TOO_LONG ? "a length extension longer than 2^31"
    : code === LZO_BAD_END_MARKER ? `end marker with length ${arg} (must be 3)`
    : code === LZO_TRAILING_BYTES ? `${arg} bytes follow the end marker inside the block`
    : `failure code ${code}`;
  return new CodecError("corrupt", at, `lzo: ${what} (LZO1X block data at offset ${hex(start)}, input offset ${hex(at)}, output offset ${hex(outInBlock)} in the block)`);
}

/**
 * LZO1X-decodes src[ip, iend) to out[op, oend), exactly `dst` bytes; matches may reach back to
 * `op` (blocks are independent). Returns the output position. The TypeScript decoder, for
 * output outside a core's memory and for partial decodes; the core's loop (assembly/lzo.ts) does
 * the same, with the same failures.
 */
export function lzo1x(src: Uint8Array, ip: number, iend: number, out: Uint8Array, op: number, oend: number, partial: boolean): number {
  const low = op;
  const start = ip;
  const fail = (code: number, at: number, arg = 0): never => {
    throw lzo1xError(code, start, iend, at, arg, op - low);
  };
  const litCopy = (t: number): void => {
    if (t > iend - ip) fail(LZO_INPUT_OVERRUN, ip);
    if (t > oend - op) {
      if (partial) {
        out.set(src.subarray(ip, ip + (oend - op)), op);
        throw new Enough();
      }
      fail(LZO_LITERALS_PAST_END, ip, t);
    }
    if (t < 16) for (let i = 0; i < t; i++) out[op + i] = src[ip + i];
    else out.set(src.subarray(ip, ip + t), op);
    ip += t;
    op += t;
  };
  const matchCopy = (m: number, t: number, at: number): void => {
    if (m < low) fail(LZO_MATCH_BEFORE_START, at, op - m);
    if (t > oend - op) {
      if (partial) {
        while (op < oend) out[op++] = out[m++];
        throw new Enough();
      }
      fail(LZO_MATCH_PAST_END, at, t);
    }
    if (op - m >= t && t > 32) {
      out.copyWithin(op, m, m + t);
      op += t;
    } else {
      const e = op + t;
      while (op < e) out[op++] = out[m++];
    }
  };
  /** Length extension: zero bytes add 255 each, then a non-zero byte. */
  const ext = (base: number): number => {
    let n = 0;
    while (ip < iend && src[ip] === 0) {
      ip++;
      n += 255;
      if (n > 0x7fffffff) fail(LZO_LENGTH_TOO_LONG, ip);
    }
    if (ip >= iend) fail(LZO_INPUT_OVERRUN, ip);
    return n + base + src[ip++];
  };
  let state = 0;
  let t: number;
  let next: number;
  if (ip >= iend) fail(LZO_INPUT_OVERRUN, ip);
  if (src[ip] > 17) {
    t = src[ip++] - 17;
    litCopy(t);
    state = t < 4 ? t : 4;
  }
  for (;;) {
    if (ip >= iend) fail(LZO_INPUT_OVERRUN, ip);
    const at = ip;
    t = src[ip++];
    let m: number;
    if (t < 16) {
      if (state === 0) {
        // literal run
        if (t === 0) t = ext(15);
        litCopy(t + 3);
        state = 4;
        continue;
      }
      if (ip >= iend) fail(LZO_INPUT_OVERRUN, ip);
      next = t & 3;
      if (state !== 4) {
        // M1: 2 bytes at distance 1 + (t >> 2) + (b << 2)
        m = op - 1 - (t >> 2) - (src[ip++] << 2);
        matchCopy(m, 2, at);
      } else {
        // 3 bytes at distance 1 + M2_MAX_OFFSET + (t >> 2) + (b << 2)
        m = op - 1 - M2_MAX_OFFSET - (t >> 2) - (src[ip++] << 2);
        matchCopy(m, 3, at);
      }
    } else if (t >= 64) {
      // M2: length 3..8, distance up to 2 KiB
      if (ip >= iend) fail(LZO_INPUT_OVERRUN, ip);
      next = t & 3;
      m = op - 1 - ((t >> 2) & 7) - (src[ip++] << 3);
      matchCopy(m, (t >> 5) + 1, at);
    } else if (t >= 32) {
      // M3: distance up to 16 KiB
      t = (t & 31) + 2;
      if (t === 2) t = ext(31 + 2);
      if (iend - ip < 2) fail(LZO_INPUT_OVERRUN, ip);
      const d = src[ip] | (src[ip + 1] << 8);
      ip += 2;
      next = d & 3;
      m = op - 1 - (d >> 2);
      matchCopy(m, t, at);
    } else {
      // M4: distance 16..48 KiB, or the end marker (distance 0x4000 exactly: 11 00 00)
      t = (t & 7) + 2;
      const far = (src[at] & 8) << 11;
      if (t === 2) t = ext(7 + 2);
      if (iend - ip < 2) fail(LZO_INPUT_OVERRUN, ip);
      const d = src[ip] | (src[ip + 1] << 8);
      ip += 2;
      next = d & 3;
      if (far === 0 && d >> 2 === 0) {
        if (t !== 3) fail(LZO_BAD_END_MARKER, at, t);
        if (ip !== iend) fail(LZO_TRAILING_BYTES, ip, iend - ip);
        return op;
      }
      m = op - far - (d >> 2) - 0x4000;
      matchCopy(m, t, at);
    }
    // 0..3 literals follow a match
    if (next) litCopy(next);
    state = next;
  }
}

/**
 * The core's LZO1X loop, when `out` lies in the core's memory away from its LZO input area:
 * the compressed block is copied into that area (input, never output) and decoded straight into
 * guest RAM. Undefined: use the TypeScript decoder. The output must also end 64 bytes short of
 * 4 GiB: the loop's room checks (`oend - op >= len + 15`) are 32-bit and an address past 2^32
 * would wrap.
 */
function wasmPath(out: Uint8Array, core: Core | undefined): Core | undefined {
  if (!core || out.buffer !== core.memory.buffer) return undefined;
  const lo = out.byteOffset;
  const hi = lo + out.length;
  if (hi > 2 ** 32 - 64) return undefined;
  return hi <= core.lzoInput || lo >= core.lzoInput + LZO_INPUT_BYTES ? core : undefined;
}

function decodeAll(input: Uint8Array, out: Uint8Array, end: number, partial: boolean, core: Core | undefined): DecodeResult {
  const h = header(input);
  const wasm = partial ? undefined : wasmPath(out, core);
  const base = out.byteOffset;
  let ip = h.blocks;
  let op = 0;
  for (let b = block(input, ip, h.flags); b; b = block(input, ip, h.flags)) {
    const blockEnd = op + b.dst;
    if (b.dst > end - op && !partial) {
      throw new CodecError("too-large", b.at, `lzo: block at offset ${hex(b.at)} decodes to ${hex(b.dst)} bytes at output offset ${hex(op)}, past the ${hex(end)} bytes of room`);
    }
    const comp = input.subarray(b.data, b.data + b.src);
    // In the core: the compressed bytes in its input area (blocks lzop writes always fit).
    const inCore = wasm && b.src < b.dst && b.src <= LZO_INPUT_BYTES ? wasm : undefined;
    if (inCore) inCore.bytes().set(comp, inCore.lzoInput);
    if (b.sumC !== undefined) {
      const got = inCore ? inCore.adler32(inCore.lzoInput, b.src) : adler32(comp);
      if (got !== b.sumC) throw new CodecError("checksum", b.at, `lzo: block at offset ${hex(b.at)}: Adler-32 of the compressed data is ${hex(got)}, the header says ${hex(b.sumC)}`);
    }
    if (b.crcC !== undefined) {
      const got = inCore ? inCore.crc32(inCore.lzoInput, b.src) : crc32(comp);
      if (got !== b.crcC) throw new CodecError("checksum", b.at, `lzo: block at offset ${hex(b.at)}: CRC-32 of the compressed data is ${hex(got)}, the header says ${hex(b.crcC)}`);
    }
    const oend = Math.min(blockEnd, end);
    if (b.src === b.dst) {
      if (partial && oend < blockEnd) {
        out.set(comp.subarray(0, oend - op), op);
        throw new Enough();
      }
      out.set(comp, op);
    } else if (inCore) {
      const r = inCore.lzo1x(inCore.lzoInput, inCore.lzoInput + b.src, base + op, base + op, base + oend);
      if (r.code !== 0) throw lzo1xError(r.code, b.data, b.data + b.src, b.data + (r.at - inCore.lzoInput), r.arg, r.out - (base + op));
      if (r.out !== base + blockEnd) {
        throw new CodecError("corrupt", b.at, `lzo: block at offset ${hex(b.at)} decodes to ${hex(r.out - base - op)} bytes, its header says dst_len ${hex(b.dst)}`);
      }
    } else {
      const got = lzo1x(input, b.data, b.data + b.src, out, op, oend, partial);
      if (got !== blockEnd) {
        throw new CodecError("corrupt", b.at, `lzo: block at offset ${hex(b.at)} decodes to ${hex(got - op)} bytes, its header says dst_len ${hex(b.dst)}`);
      }
    }
    if (partial && blockEnd >= end) throw new Enough();
    if (b.sumD !== undefined) {
      const got = wasm ? wasm.adler32(base + op, b.dst) : adler32(out.subarray(op, blockEnd));
      if (got !== b.sumD) throw new CodecError("checksum", b.at, `lzo: block at offset ${hex(b.at)}: Adler-32 of the decompressed data is ${hex(got)}, the header says ${hex(b.sumD)}`);
    }
    if (b.crcD !== undefined) {
      const got = wasm ? wasm.crc32(base + op, b.dst) : crc32(out.subarray(op, blockEnd));
      if (got !== b.crcD) throw new CodecError("checksum", b.at, `lzo: block at offset ${hex(b.at)}: CRC-32 of the decompressed data is ${hex(got)}, the header says ${hex(b.crcD)}`);
    }
    op = blockEnd;
    ip = b.data + b.src;
  }
  return { written: op, consumed: ip + 4 };
}

export const lzoCodec: Codec = {
  name: "lzo",
  sniff(input) {
    return input.length >= MAGIC.length && MAGIC.every((c, i) => input[i] === c);
  },
  decode(input: Uint8Array, out: Uint8Array, options?: DecodeOptions): DecodeResult {
    const stop = options?.stopAfter;
    const partial = stop !== undefined && stop <= out.length;
    const end = partial ? stop : out.length;
    try {
      return decodeAll(input, out, end, partial, options?.core);
    } catch (e) {
      if (e instanceof Enough) return { written: end, consumed: NaN };
      throw e;
    }
  },
  /** lzop blocks say their decoded size: the total is the sum of the headers' dst_len (nothing decoded). */
  measure(input: Uint8Array, limit: number): DecodeResult {
    const h = header(input);
    let ip = h.blocks;
    let total = 0;
    for (let b = block(input, ip, h.flags); b; b = block(input, ip, h.flags)) {
      total += b.dst;
      if (total > limit) throw new CodecError("too-large", b.at, `lzo: the blocks up to offset ${hex(b.at)} decode to ${hex(total)} bytes, past the ${hex(limit)} bytes of room`);
      ip = b.data + b.src;
    }
    return { written: total, consumed: ip + 4 };
  },
};
