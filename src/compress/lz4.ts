// LZ4: the frame format (lz4 CLI default; https://github.com/lz4/lz4/blob/dev/doc/lz4_Frame_format.md)
// and the legacy frame (`lz4 -l`, what the Linux build's `lz4` command writes), both carrying LZ4
// blocks (doc/lz4_Block_format.md). Several frames may follow one another (and skippable frames
// between them), as `lz4 -dc` reads them; bytes after the last frame that start no frame end the
// stream (`consumed` says where), as lz4 does with a warning.
//
// Frame:  magic 04 22 4d 18 | FLG | BD | [content size u64] | [dict ID u32] | HC |
//         blocks (u32 size, bit 31 = stored; 0 = end mark; [u32 XXH32 of the block]) | [u32 XXH32 of the content]
// Legacy: magic 02 21 4c 18 | blocks (u32 compressed size; each decodes alone to at most 8 MiB)
//         until the input ends, a size no legacy block can have (the next frame's magic), or
//         only 4 bytes are left (Linux's size_append).
// Skippable: magic 5? 2a 4d 18 | u32 size | size bytes.
//
// Output goes straight into `out` (guest RAM) and matches read it back there: linked blocks reach
// up to 64 KiB back into the earlier blocks of their frame.
//
// Two decoders of the same blocks with the same results and failures: with a Core whose memory
// holds `out` (a load into a VM), each block's compressed bytes are fed through the core's input
// area and assembly/lz4.ts decodes them straight into guest RAM (coreBlock); otherwise (a host
// buffer, a partial decode for detection, measure()) the TypeScript loop lz4Block runs. Frame
// parsing and the header and block XXH32s are TypeScript on both paths; the content XXH32 runs in
// the core on its path (SIMD, over the frame's output in guest RAM: 4 ms for the arm64 Image's
// 32 MB: 5 ms against 12.6 ms in TypeScript).
import { CodecError, type Codec, type DecodeOptions, type DecodeResult } from "./codec.js";
import { xxh32 } from "./xxhash.js";
import { LZ4_INPUT_BYTES, type Core } from "../core/core.js";

const MAGIC = 0x184d2204;
const LEGACY_MAGIC = 0x184c2102;
const SKIPPABLE_MASK = 0xfffffff0;
const SKIPPABLE = 0x184d2a50;
/** lz4io.c LEGACY_BLOCKSIZE and LZ4_COMPRESSBOUND(LEGACY_BLOCKSIZE) = n + n/255 + 16. */
const LEGACY_BLOCK = 8 << 20;
const LEGACY_BOUND = LEGACY_BLOCK + Math.floor(LEGACY_BLOCK / 255) + 16;
/** BD block maximum size ids 4..7 (frame format §"Block Maximum Size"). */
const BLOCK_MAX = [0, 0, 0, 0, 64 << 10, 256 << 10, 1 << 20, 4 << 20];

const rd32 = (b: Uint8Array, i: number) => (b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24)) >>> 0;
const hex = (n: number) => "0x" + n.toString(16);

/** Thrown inside the decoder when a peek (stopAfter) has all the output it asked for. */
class Enough {
  constructor(readonly consumed: number) {}
}

/** Where output goes: `out[0, end)`; `partial` stops (Enough) instead of failing at `end`. */
interface Sink {
  out: Uint8Array;
  end: number;
  partial: boolean;
  /** The Wasm core that decodes the blocks (never with `partial`). */
  core?: Core;
}

// Why a block fails: the same codes as the core's loop (assembly/lz4.ts), so both paths throw
// the same CodecError through blockError().
const NO_TOKEN = 2;
const LITLEN_PAST_END = 3;
const LITS_PAST_END = 4;
const LITS_TOO_LARGE = 5;
const OFFSET_PAST_END = 6;
const BAD_OFFSET = 7;
const MATCHLEN_PAST_END = 8;
const MATCH_TOO_LARGE = 9;

/**
 * The CodecError for failure `code` in the block starting at input offset `start`, found at input
 * offset `at` (`arg`: the count, length or offset it concerns) with `dp` the output offset of the
 * failing sequence's literals (too-large on literals) or match (the rest).
 */
function blockError(code: number, start: number, at: number, arg: number, s: Sink, dp: number, low: number): Error {
  switch (code) {
    case NO_TOKEN:
      return new CodecError("corrupt", at, `lz4: block at input offset ${hex(start)} ends where a sequence token should be`);
    case LITLEN_PAST_END:
      return new CodecError("corrupt", at, `lz4: literal length runs past the end of the block at input offset ${hex(start)}`);
    case LITS_PAST_END:
      return new CodecError("corrupt", at, `lz4: ${arg} literals run past the end of the block at input offset ${hex(start)}`);
    case OFFSET_PAST_END:
      return new CodecError("corrupt", at, `lz4: match offset runs past the end of the block at input offset ${hex(start)}`);
    case BAD_OFFSET:
      return new CodecError("corrupt", at, `lz4: match offset ${arg} at input offset ${hex(at)} reaches before the start of the ${low === dp ? "block" : "window"} (${dp - low} bytes of output behind it)`);
    case MATCHLEN_PAST_END:
      return new CodecError("corrupt", at, `lz4: match length runs past the end of the block at input offset ${hex(start)}`);
    case LITS_TOO_LARGE:
    case MATCH_TOO_LARGE:
      if (s.partial) return new Enough(NaN) as unknown as Error;
      return new CodecError("too-large", at, `lz4: output passes the ${hex(s.end)} bytes of room (a sequence at input offset ${hex(at)} writes ${arg} bytes at output offset ${hex(dp)})`);
    default:
      return new CodecError("corrupt", at, `lz4: failure code ${code} in the block at input offset ${hex(start)}`);
  }
}

/** Where the last lz4Block call with `once` stopped in its input. */
let onceSp = 0;

/**
 * Decodes one LZ4 block src[sp, send) to out[dp, …); matches may reach back to `low`. Returns the
 * new output position. Offsets in messages are input offsets. With `once`, returns after one
 * sequence (onceSp: where the next starts; send when it was the last).
 */
export function lz4Block(src: Uint8Array, sp: number, send: number, s: Sink, dp: number, low: number, once = false): number {
  const out = s.out;
  const dend = s.end;
  const start = sp;
  for (;;) {
    if (sp >= send) throw blockError(NO_TOKEN, start, sp, 0, s, dp, low);
    const token = src[sp++];
    let lit = token >>> 4;
    if (lit === 15) {
      let b: number;
      do {
        if (sp >= send) throw blockError(LITLEN_PAST_END, start, sp, 0, s, dp, low);
        b = src[sp++];
        lit += b;
      } while (b === 255);
    }
    if (lit > send - sp) throw blockError(LITS_PAST_END, start, sp, lit, s, dp, low);
    if (lit > dend - dp) {
      if (s.partial) out.set(src.subarray(sp, sp + (dend - dp)), dp);
      throw blockError(LITS_TOO_LARGE, start, sp, lit, s, dp, low);
    }
    if (lit < 16) for (let i = 0; i < lit; i++) out[dp + i] = src[sp + i];
    else out.set(src.subarray(sp, sp + lit), dp);
    sp += lit;
    dp += lit;
    if (sp === send) {
      onceSp = sp;
      return dp; // the last sequence has literals only
    }
    if (send - sp < 2) throw blockError(OFFSET_PAST_END, start, sp, 0, s, dp, low);
    const off = src[sp] | (src[sp + 1] << 8);
    const at = sp;
    sp += 2;
    if (off === 0 || off > dp - low) throw blockError(BAD_OFFSET, start, at, off, s, dp, low);
    let len = token & 15;
    if (len === 15) {
      let b: number;
      do {
        if (sp >= send) throw blockError(MATCHLEN_PAST_END, start, sp, 0, s, dp, low);
        b = src[sp++];
        len += b;
      } while (b === 255);
    }
    len += 4;
    let m = dp - off;
    if (len > dend - dp) {
      if (s.partial) for (let i = dp; i < dend; i++) out[i] = out[m++];
      throw blockError(MATCH_TOO_LARGE, start, at, len, s, dp, low);
    }
    if (off >= len && len > 32) {
      out.copyWithin(dp, m, m + len);
      dp += len;
    } else {
      const e = dp + len;
      while (dp < e) out[dp++] = out[m++];
    }
    if (once) {
      onceSp = sp;
      return dp;
    }
  }
}

/**
 * The same block decoded by the core's loop (assembly/lz4.ts), for a sink in the core's memory
 * (see corePath): the compressed bytes go through the core's input area in pieces of at most
 * LZ4_INPUT_BYTES; the loop decodes the sequences that lie wholly in a piece straight into guest
 * RAM and says where the first that does not starts, and the next piece starts there. A sequence
 * longer than a whole piece (a literal run past 256 KiB, which only a legacy frame's
 * incompressible data has) is decoded by the TypeScript loop, once, and the core goes on after it.
 */
function coreBlock(core: Core, src: Uint8Array, sp: number, send: number, s: Sink, dp: number, low: number): number {
  const start = sp;
  const area = core.lzoInput;
  const base = s.out.byteOffset;
  for (;;) {
    const n = Math.min(send - sp, LZ4_INPUT_BYTES);
    core.bytes().set(src.subarray(sp, sp + n), area);
    const r = core.lz4(area, area + n, send - sp - n, base + dp, base + low, base + s.end);
    if (r.code === 0) return r.out - base;
    if (r.code !== 1) throw blockError(r.code, start, sp + (r.at - area), r.arg, s, r.out - base, low);
    dp = r.out - base;
    if (r.in !== area) {
      sp += r.in - area;
      continue;
    }
    // no whole sequence in a full piece
    dp = lz4Block(src, sp, send, s, dp, low, true);
    if (onceSp === send) return dp;
    sp = onceSp;
  }
}

/**
 * The core that decodes into `out`, if any: `out` in its memory, clear of its input area, and
 * ending 64 bytes short of 4 GiB (the loop's room arithmetic is 32-bit).
 */
function corePath(out: Uint8Array, core: Core | undefined): Core | undefined {
  if (!core || out.buffer !== core.memory.buffer) return undefined;
  const lo = out.byteOffset;
  const hi = lo + out.length;
  if (hi > 2 ** 32 - 64) return undefined;
  return hi <= core.lzoInput || lo >= core.lzoInput + LZ4_INPUT_BYTES ? core : undefined;
}

/** One compressed block, by the core when the sink has one, else by the TypeScript loop. */
function block(src: Uint8Array, sp: number, send: number, s: Sink, dp: number, low: number): number {
  return s.core ? coreBlock(s.core, src, sp, send, s, dp, low) : lz4Block(src, sp, send, s, dp, low);
}

function need(input: Uint8Array, ip: number, n: number, what: string): void {
  if (input.length - ip < n) throw new CodecError("truncated", input.length, `lz4: the input ends inside the ${what} at offset ${hex(ip)}`);
}

interface FrameHeader {
  start: number;
  /** Offset of the first block. */
  blocks: number;
  indep: boolean;
  blockSum: boolean;
  contentSum: boolean;
  bmax: number;
  /** Content size, when the frame declares it (Infinity if past 2^53). */
  size: number | undefined;
}

/** Parses and checks a standard frame's header (magic at `ip`): FLG, BD, content size, dict ID, HC. */
function frameHeader(input: Uint8Array, ip: number): FrameHeader {
  const frameStart = ip;
  need(input, ip, 7, "frame header");
  const flg = input[ip + 4];
  const bd = input[ip + 5];
  if (flg >>> 6 !== 1) throw new CodecError("unsupported", ip + 4, `lz4: frame at offset ${hex(frameStart)} has version ${flg >>> 6} in FLG (only 1 is defined)`);
  if (flg & 0x02) throw new CodecError("corrupt", ip + 4, `lz4: FLG ${hex(flg)} at offset ${hex(ip + 4)} has the reserved bit 1 set`);
  if (bd & 0x8f) throw new CodecError("corrupt", ip + 5, `lz4: BD ${hex(bd)} at offset ${hex(ip + 5)} has reserved bits set`);
  const hasSize = (flg & 0x08) !== 0;
  const hasDict = (flg & 0x01) !== 0;
  const bmax = BLOCK_MAX[(bd >>> 4) & 7];
  if (!bmax) throw new CodecError("corrupt", ip + 5, `lz4: BD ${hex(bd)} at offset ${hex(ip + 5)} names block maximum size id ${(bd >>> 4) & 7} (only 4..7 are defined)`);
  const descLen = 2 + (hasSize ? 8 : 0) + (hasDict ? 4 : 0);
  need(input, ip, 4 + descLen + 1, "frame header");
  let size: number | undefined;
  if (hasSize) {
    const hi = rd32(input, ip + 10);
    size = hi >= 0x200000 ? Infinity : hi * 4294967296 + rd32(input, ip + 6);
  }
  if (hasDict) throw new CodecError("unsupported", ip + 6 + (hasSize ? 8 : 0), `lz4: frame at offset ${hex(frameStart)} needs a dictionary (dictID ${hex(rd32(input, ip + 6 + (hasSize ? 8 : 0)))})`);
  const hc = input[ip + 4 + descLen];
  const want = (xxh32(input.subarray(ip + 4, ip + 4 + descLen)) >>> 8) & 0xff;
  if (hc !== want) throw new CodecError("checksum", ip + 4 + descLen, `lz4: header checksum HC at offset ${hex(ip + 4 + descLen)} is ${hex(hc)}, the descriptor's is ${hex(want)}`);
  return {
    start: frameStart,
    blocks: ip + 4 + descLen + 1,
    indep: (flg & 0x20) !== 0,
    blockSum: (flg & 0x10) !== 0,
    contentSum: (flg & 0x04) !== 0,
    bmax,
    size,
  };
}

/** Reads block `ip`'s size word: null at the end mark, else where its data lies (block checksum checked). */
function blockAt(input: Uint8Array, ip: number, h: FrameHeader): { stored: boolean; data: number; n: number; next: number } | null {
  need(input, ip, 4, "block size");
  const word = rd32(input, ip);
  if (word === 0) return null;
  const n = word & 0x7fffffff;
  if (n > h.bmax) throw new CodecError("corrupt", ip, `lz4: block size ${hex(n)} at offset ${hex(ip)} is more than the frame's block maximum ${hex(h.bmax)}`);
  const data = ip + 4;
  need(input, data, n + (h.blockSum ? 4 : 0), "block");
  if (h.blockSum) {
    const sum = rd32(input, data + n);
    const got = xxh32(input.subarray(data, data + n));
    if (sum !== got) throw new CodecError("checksum", data + n, `lz4: block checksum at offset ${hex(data + n)} is ${hex(sum)}, the block's XXH32 is ${hex(got)}`);
  }
  return { stored: (word & 0x80000000) !== 0, data, n, next: data + n + (h.blockSum ? 4 : 0) };
}

/** Decodes one standard frame starting at `ip` (its magic). */
function frame(input: Uint8Array, ip: number, s: Sink, dp: number): { ip: number; dp: number } {
  const h = frameHeader(input, ip);
  const { size, indep } = h;
  if (size !== undefined && size > s.end - dp && !s.partial) {
    throw new CodecError("too-large", ip + 6, `lz4: frame at offset ${hex(h.start)} declares ${size} bytes of content, more than the ${hex(s.end - dp)} bytes of room left`);
  }
  ip = h.blocks;
  const outStart = dp;
  for (let b = blockAt(input, ip, h); b; b = blockAt(input, ip, h)) {
    const n = b.n;
    if (b.stored) {
      if (n > s.end - dp) {
        if (s.partial) s.out.set(input.subarray(b.data, b.data + (s.end - dp)), dp);
        throw blockError(LITS_TOO_LARGE, b.data, b.data, n, s, dp, dp);
      }
      s.out.set(input.subarray(b.data, b.data + n), dp);
      dp += n;
    } else {
      dp = block(input, b.data, b.data + n, s, dp, indep ? dp : outStart);
    }
    ip = b.next;
  }
  ip += 4;
  if (h.contentSum) {
    need(input, ip, 4, "content checksum");
    const sum = rd32(input, ip);
    const got = s.core ? s.core.xxh32(s.out.byteOffset + outStart, dp - outStart) : xxh32(s.out.subarray(outStart, dp));
    if (sum !== got) throw new CodecError("checksum", ip, `lz4: content checksum at offset ${hex(ip)} is ${hex(sum)}, the decoded frame's XXH32 is ${hex(got)}`);
    ip += 4;
  }
  if (size !== undefined && size !== dp - outStart) {
    throw new CodecError("corrupt", h.start + 6, `lz4: frame at offset ${hex(h.start)} declares ${size} bytes of content but decodes to ${dp - outStart}`);
  }
  return { ip, dp };
}

/** Decodes a legacy frame starting at its magic. Ends at the end of input or before a word that cannot be a block size. */
function legacy(input: Uint8Array, ip: number, s: Sink, dp: number): { ip: number; dp: number } {
  ip += 4;
  // Ends before 4 bytes that are not a block: the next frame's magic (a size no legacy block
  // can have), or the last 4 bytes of the input, where Linux's size_append puts the
  // uncompressed size after `lz4 -l` output (scripts/Makefile.lib cmd_lz4).
  while (input.length - ip > 4) {
    const n = rd32(input, ip);
    if (n > LEGACY_BOUND) break;
    ip += 4;
    need(input, ip, n, "legacy block");
    const room: Sink = s.end - dp > LEGACY_BLOCK ? { ...s, end: dp + LEGACY_BLOCK } : s;
    const before = dp;
    try {
      dp = block(input, ip, ip + n, room, dp, dp);
    } catch (e) {
      if (room !== s && e instanceof CodecError && e.kind === "too-large") {
        throw new CodecError("corrupt", ip, `lz4: legacy block at offset ${hex(ip - 4)} decodes to more than ${hex(LEGACY_BLOCK)} bytes (output offset ${hex(before)})`);
      }
      throw e;
    }
    ip += n;
  }
  return { ip, dp };
}

/** All frames from the start of `input` into the sink; returns bytes written and input used. */
function decodeAll(input: Uint8Array, s: Sink): DecodeResult {
  let ip = 0;
  let dp = 0;
  let frames = 0;
  for (;;) {
    if (input.length - ip < 4) {
      if (frames) return { written: dp, consumed: ip };
      throw new CodecError("truncated", input.length, `lz4: ${input.length - ip} bytes, too short for a frame magic`);
    }
    const magic = rd32(input, ip);
    let r: { ip: number; dp: number };
    if (magic === MAGIC) r = frame(input, ip, s, dp);
    else if (magic === LEGACY_MAGIC) r = legacy(input, ip, s, dp);
    else if ((magic & SKIPPABLE_MASK) >>> 0 === SKIPPABLE) {
      need(input, ip, 8, "skippable frame header");
      const n = rd32(input, ip + 4);
      need(input, ip + 8, n, "skippable frame");
      r = { ip: ip + 8 + n, dp };
    } else if (frames) {
      return { written: dp, consumed: ip };
    } else {
      throw new CodecError("corrupt", ip, `lz4: magic ${hex(magic)} at offset ${hex(ip)} is no LZ4 frame (04 22 4d 18), legacy frame (02 21 4c 18) or skippable frame`);
    }
    frames++;
    ip = r.ip;
    dp = r.dp;
  }
}

function run(input: Uint8Array, s: Sink): DecodeResult {
  try {
    return decodeAll(input, s);
  } catch (e) {
    if (e instanceof Enough) return { written: s.end, consumed: NaN };
    throw e;
  }
}

export const lz4Codec: Codec = {
  name: "lz4",
  sniff(input) {
    if (input.length < 4) return false;
    const m = rd32(input, 0);
    return m === MAGIC || m === LEGACY_MAGIC;
  },
  declaredSize(input) {
    // Only a single standard frame with its content size says the whole output size up front.
    if (input.length < 15 || rd32(input, 0) !== MAGIC || !(input[4] & 0x08)) return undefined;
    const hi = rd32(input, 10);
    return hi >= 0x200000 ? undefined : hi * 4294967296 + rd32(input, 6);
  },
  decode(input: Uint8Array, out: Uint8Array, options?: DecodeOptions): DecodeResult {
    const stop = options?.stopAfter;
    const partial = stop !== undefined && stop <= out.length;
    return run(input, { out, end: partial ? stop : out.length, partial, core: partial ? undefined : corePath(out, options?.core) });
  },
  measure(input: Uint8Array, limit: number): DecodeResult {
    return measure(input, limit);
  },
};

/**
 * Scans one LZ4 block src[sp, send) without writing anything: the output position after it, from
 * `dp`, with every check lz4Block makes (a match offset is checked against the output position
 * alone, so the output itself is not needed) and the same failures, `s.end` the room.
 */
function lz4Scan(src: Uint8Array, sp: number, send: number, s: Sink, dp: number, low: number): number {
  const dend = s.end;
  const start = sp;
  for (;;) {
    if (sp >= send) throw blockError(NO_TOKEN, start, sp, 0, s, dp, low);
    const token = src[sp++];
    let lit = token >>> 4;
    if (lit === 15) {
      let b: number;
      do {
        if (sp >= send) throw blockError(LITLEN_PAST_END, start, sp, 0, s, dp, low);
        b = src[sp++];
        lit += b;
      } while (b === 255);
    }
    if (lit > send - sp) throw blockError(LITS_PAST_END, start, sp, lit, s, dp, low);
    if (lit > dend - dp) throw blockError(LITS_TOO_LARGE, start, sp, lit, s, dp, low);
    sp += lit;
    dp += lit;
    if (sp === send) return dp;
    if (send - sp < 2) throw blockError(OFFSET_PAST_END, start, sp, 0, s, dp, low);
    const off = src[sp] | (src[sp + 1] << 8);
    const at = sp;
    sp += 2;
    if (off === 0 || off > dp - low) throw blockError(BAD_OFFSET, start, at, off, s, dp, low);
    let len = token & 15;
    if (len === 15) {
      let b: number;
      do {
        if (sp >= send) throw blockError(MATCHLEN_PAST_END, start, sp, 0, s, dp, low);
        b = src[sp++];
        len += b;
      } while (b === 255);
    }
    len += 4;
    if (len > dend - dp) throw blockError(MATCH_TOO_LARGE, start, at, len, s, dp, low);
    dp += len;
  }
}

/**
 * The output size without keeping the output (for streams that declare none): each block is
 * scanned (lz4Scan) with the output positions a decode would have, so every failure is the one
 * decode() would throw there, except the content checksums (decode() checks them, later) and the
 * output offsets in too-large messages. Stops with too-large past `limit`.
 */
function measure(input: Uint8Array, limit: number): DecodeResult {
  const empty = new Uint8Array(0);
  let total = 0;
  let ip = 0;
  let frames = 0;
  /** Scans one block whose matches may reach back to output position `low`. */
  const block = (sp: number, n: number, stored: boolean, low: number): void => {
    const room = Math.min(LEGACY_BLOCK, limit - total);
    if (stored) {
      if (n > room) throw new CodecError("too-large", sp, `lz4: output passes the ${hex(limit)} bytes of room`);
      total += n;
      return;
    }
    try {
      total = lz4Scan(input, sp, sp + n, { out: empty, end: total + room, partial: false }, total, low);
    } catch (e) {
      if (e instanceof CodecError && e.kind === "too-large" && room === LEGACY_BLOCK && limit - total > LEGACY_BLOCK) {
        throw new CodecError("corrupt", sp, `lz4: block at offset ${hex(sp)} decodes to more than ${hex(LEGACY_BLOCK)} bytes`);
      }
      throw e;
    }
  };
  for (;;) {
    if (input.length - ip < 4) {
      if (frames) return { written: total, consumed: ip };
      throw new CodecError("truncated", input.length, `lz4: ${input.length - ip} bytes, too short for a frame magic`);
    }
    const magic = rd32(input, ip);
    if (magic === MAGIC) {
      const h = frameHeader(input, ip);
      const frameOut = total;
      ip = h.blocks;
      for (let b = blockAt(input, ip, h); b; b = blockAt(input, ip, h)) {
        block(b.data, b.n, b.stored, h.indep ? total : frameOut);
        ip = b.next;
      }
      ip += 4;
      if (h.contentSum) {
        need(input, ip, 4, "content checksum");
        ip += 4;
      }
      if (h.size !== undefined && h.size !== total - frameOut) {
        throw new CodecError("corrupt", h.start + 6, `lz4: frame at offset ${hex(h.start)} declares ${h.size} bytes of content but decodes to ${total - frameOut}`);
      }
    } else if (magic === LEGACY_MAGIC) {
      ip += 4;
      while (input.length - ip > 4) {
        const n = rd32(input, ip);
        if (n > LEGACY_BOUND) break;
        ip += 4;
        need(input, ip, n, "legacy block");
        block(ip, n, false, total);
        ip += n;
      }
    } else if ((magic & SKIPPABLE_MASK) >>> 0 === SKIPPABLE) {
      need(input, ip, 8, "skippable frame header");
      const n = rd32(input, ip + 4);
      need(input, ip + 8, n, "skippable frame");
      ip += 8 + n;
    } else if (frames) {
      return { written: total, consumed: ip };
    } else {
      throw new CodecError("corrupt", ip, `lz4: magic ${hex(magic)} at offset ${hex(ip)} is no LZ4 frame (04 22 4d 18), legacy frame (02 21 4c 18) or skippable frame`);
    }
    frames++;
  }
}
