// LZO1X block decoding and Adler-32 for lzop files (src/compress/lzo.ts parses the lzop container
// and calls these per block). The same rules as the rest of the core (assembly/index.ts): no
// allocation, no data, only the imported memory.
//
// lzo1xDecode decodes one LZO1X block, the decoder Linux lib/lzo/lzo1x_decompress_safe.c
// describes: compressed bytes at [ip, iend) (the TypeScript side copies them into the core's
// scratch), output at [op, oend) in guest RAM, matches reaching back no further than `low` (the
// block's first output byte: lzop blocks are independent). The TypeScript side checks that both
// ranges lie in the memory; everything that depends on the stream is checked here, in the loop,
// against those ranges: every input byte read below `iend`, every output byte written below
// `oend`, every match source at or above `low`. A failure returns a non-zero code with the input
// offset and value it concerns in lzoErrAt()/lzoErrArg() (the TS maps them to the same
// CodecError as its own decoder).
//
// Copies go 16 bytes at a time (one v128) where both ranges have room for the overshoot: the
// bytes written past a copy's end, still below `oend`, are overwritten by the following output
// (a successful block fills [low, oend) exactly; a failed one is rolled back by the caller).

/** Block decoded: its end marker was reached exactly at `iend`. */
const LZO_OK: i32 = 0;
/** The input ends inside an instruction (errAt: the input offset that was needed). */
const LZO_INPUT_OVERRUN: i32 = 1;
/** A literal run goes past `oend` (errAt: first literal byte; errArg: the run's length). */
const LZO_LITERALS_PAST_END: i32 = 2;
/** A match reaches before `low` (errAt: the instruction; errArg: the distance). */
const LZO_MATCH_BEFORE_START: i32 = 3;
/** A match goes past `oend` (errAt: the instruction; errArg: its length). */
const LZO_MATCH_PAST_END: i32 = 4;
/** A length extension longer than 2^31 (errAt: where it stopped). */
const LZO_LENGTH_TOO_LONG: i32 = 5;
/** The end marker has a length other than 3 (errAt: the instruction; errArg: the length). */
const LZO_BAD_END_MARKER: i32 = 6;
/** Bytes follow the end marker inside the block (errAt: the first; errArg: how many). */
const LZO_TRAILING_BYTES: i32 = 7;

/** LZO1X M2_MAX_OFFSET: M1 matches after a literal run of 4 or more start past it. */
const M2_MAX_OFFSET: usize = 0x800;

let errAt: usize = 0;
let errArg: usize = 0;
let outAt: usize = 0;

/** Input offset (linear memory) of the last lzo1xDecode failure. */
export function lzoErrAt(): usize {
  return errAt;
}

/** The length or distance the last lzo1xDecode failure concerns (see the codes). */
export function lzoErrArg(): usize {
  return errArg;
}

/** The output position (linear memory) where the last lzo1xDecode stopped. */
export function lzoOut(): usize {
  return outAt;
}

/** Copies `n` bytes from `src` to `dst` that do not overlap within 16 bytes. */
@inline function copyNear(dst: usize, src: usize, n: usize, roomDst: usize, roomSrc: usize): void {
  if (n <= 16 && roomDst >= 16 && roomSrc >= 16) {
    v128.store(dst, v128.load(src));
  } else if (n <= 64 && roomDst >= n + 15 && roomSrc >= n + 15) {
    let i: usize = 0;
    do {
      v128.store(dst + i, v128.load(src + i));
      i += 16;
    } while (i < n);
  } else {
    memory.copy(dst, src, n);
  }
}

export function lzo1xDecode(ip: usize, iend: usize, op: usize, low: usize, oend: usize): i32 {
  let state: usize = 0;
  let t: usize = 0;
  let next: usize = 0;
  let at: usize = 0;
  let len: usize = 0;
  let dist: usize = 0;
  let code: i32 = LZO_OK;

  if (ip >= iend) {
    errAt = ip;
    outAt = op;
    return LZO_INPUT_OVERRUN;
  }
  if (<usize>load<u8>(ip) > 17) {
    // A first instruction above 17: a literal run of t - 17 bytes, no match before it.
    t = <usize>load<u8>(ip) - 17;
    ip++;
    if (t > iend - ip) {
      errAt = ip;
      outAt = op;
      return LZO_INPUT_OVERRUN;
    }
    if (t > oend - op) {
      errAt = ip;
      errArg = t;
      outAt = op;
      return LZO_LITERALS_PAST_END;
    }
    copyNear(op, ip, t, oend - op, iend - ip);
    ip += t;
    op += t;
    state = t < 4 ? t : 4;
  }
  for (;;) {
    if (ip >= iend) {
      code = LZO_INPUT_OVERRUN;
      errAt = ip;
      break;
    }
    at = ip;
    t = <usize>load<u8>(ip);
    ip++;
    if (t < 16) {
      if (state == 0) {
        // A literal run of t + 3 bytes (t == 0: extended by zero bytes of 255 and a last byte).
        if (t == 0) {
          let n: usize = 0;
          while (ip < iend && load<u8>(ip) == 0) {
            ip++;
            n += 255;
            if (n > 0x7fffffff) break;
          }
          if (n > 0x7fffffff) {
            code = LZO_LENGTH_TOO_LONG;
            errAt = ip;
            break;
          }
          if (ip >= iend) {
            code = LZO_INPUT_OVERRUN;
            errAt = ip;
            break;
          }
          t = n + 15 + <usize>load<u8>(ip);
          ip++;
        }
        t += 3;
        if (t > iend - ip) {
          code = LZO_INPUT_OVERRUN;
          errAt = ip;
          break;
        }
        if (t > oend - op) {
          code = LZO_LITERALS_PAST_END;
          errAt = ip;
          errArg = t;
          break;
        }
        copyNear(op, ip, t, oend - op, iend - ip);
        ip += t;
        op += t;
        state = 4;
        continue;
      }
      if (ip >= iend) {
        code = LZO_INPUT_OVERRUN;
        errAt = ip;
        break;
      }
      next = t & 3;
      if (state != 4) {
        // M1 after a short literal run: 2 bytes at distance 1 + (t >> 2) + (b << 2)
        dist = 1 + (t >> 2) + (<usize>load<u8>(ip) << 2);
        len = 2;
      } else {
        // after a literal run of 4 or more: 3 bytes at distance 1 + M2_MAX_OFFSET + (t >> 2) + (b << 2)
        dist = 1 + M2_MAX_OFFSET + (t >> 2) + (<usize>load<u8>(ip) << 2);
        len = 3;
      }
      ip++;
    } else if (t >= 64) {
      // M2: 3..8 bytes at distance 1..2048
      if (ip >= iend) {
        code = LZO_INPUT_OVERRUN;
        errAt = ip;
        break;
      }
      next = t & 3;
      dist = 1 + ((t >> 2) & 7) + (<usize>load<u8>(ip) << 3);
      len = (t >> 5) + 1;
      ip++;
    } else {
      // M3 (t 32..63, distance up to 16 KiB) or M4 (t 16..31, 16..48 KiB, or the end marker)
      const m3 = t >= 32;
      len = m3 ? (t & 31) + 2 : (t & 7) + 2;
      if (len == 2) {
        let n: usize = 0;
        while (ip < iend && load<u8>(ip) == 0) {
          ip++;
          n += 255;
          if (n > 0x7fffffff) break;
        }
        if (n > 0x7fffffff) {
          code = LZO_LENGTH_TOO_LONG;
          errAt = ip;
          break;
        }
        if (ip >= iend) {
          code = LZO_INPUT_OVERRUN;
          errAt = ip;
          break;
        }
        len = n + (m3 ? 31 + 2 : 7 + 2) + <usize>load<u8>(ip);
        ip++;
      }
      if (iend - ip < 2) {
        code = LZO_INPUT_OVERRUN;
        errAt = ip;
        break;
      }
      const d = <usize>load<u16>(ip); // little-endian, as LZO stores it
      ip += 2;
      next = d & 3;
      if (m3) {
        dist = 1 + (d >> 2);
      } else {
        const far = (t & 8) << 11;
        if (far == 0 && d >> 2 == 0) {
          // the end marker: 11 00 00
          if (len != 3) {
            code = LZO_BAD_END_MARKER;
            errAt = at;
            errArg = len;
            break;
          }
          if (ip != iend) {
            code = LZO_TRAILING_BYTES;
            errAt = ip;
            errArg = iend - ip;
            break;
          }
          break;
        }
        dist = far + (d >> 2) + 0x4000;
      }
    }
    // the match: len bytes from dist back
    if (dist > op - low) {
      code = LZO_MATCH_BEFORE_START;
      errAt = at;
      errArg = dist;
      break;
    }
    if (len > oend - op) {
      code = LZO_MATCH_PAST_END;
      errAt = at;
      errArg = len;
      break;
    }
    const m = op - dist;
    if (dist >= 16 && oend - op >= len + 15) {
      let i: usize = 0;
      do {
        v128.store(op + i, v128.load(m + i));
        i += 16;
      } while (i < len);
    } else if (dist >= 8 && oend - op >= len + 7) {
      let i: usize = 0;
      do {
        store<u64>(op + i, load<u64>(m + i));
        i += 8;
      } while (i < len);
    } else if (dist == 1) {
      memory.fill(op, load<u8>(m), len);
    } else {
      for (let i: usize = 0; i < len; i++) store<u8>(op + i, load<u8>(m + i));
    }
    op += len;
    // 0..3 literals follow a match
    if (next != 0) {
      if (next > iend - ip) {
        code = LZO_INPUT_OVERRUN;
        errAt = ip;
        break;
      }
      if (next > oend - op) {
        code = LZO_LITERALS_PAST_END;
        errAt = ip;
        errArg = next;
        break;
      }
      if (oend - op >= 4 && iend - ip >= 4) {
        store<u32>(op, load<u32>(ip));
      } else {
        for (let i: usize = 0; i < next; i++) store<u8>(op + i, load<u8>(ip + i));
      }
      ip += next;
      op += next;
    }
    state = next;
  }
  outAt = op;
  return code;
}

// ---------------------------------------------------------------------------------------------
// Adler-32 (RFC 1950 §8.2), what lzop's F_ADLER32_D/F_ADLER32_C flags check, 16 bytes a step.
// For a run of n 16-byte chunks starting from (a, b): a grows by every byte; b grows by a
// before each byte, i.e. by 16·n·a + Σ_chunks (16·(bytes of the chunks before it) + Σ (16 − i)·byte_i).

/** zlib NMAX rounded down to whole chunks: the most bytes before b can pass 2^32. */
const ADLER_BLOCK: usize = 5552 & ~15;
const ADLER_MOD: u32 = 65521;

export function adler32(ptr: usize, len: usize, prev: u32): u32 {
  let a: u32 = prev & 0xffff;
  let b: u32 = prev >>> 16;
  let p = ptr;
  const end = ptr + len;
  // weights 16..1 for the bytes of a chunk, as two i16x8 halves
  const wLo = i16x8(16, 15, 14, 13, 12, 11, 10, 9);
  const wHi = i16x8(8, 7, 6, 5, 4, 3, 2, 1);
  while (end - p >= 16) {
    const n = min<usize>(end - p, ADLER_BLOCK) & ~(<usize>15);
    const stop = p + n;
    let vSum = i32x4.splat(0); // Σ bytes, per lane
    let vPrev = i32x4.splat(0); // Σ over chunks of vSum before the chunk
    let vWeighted = i32x4.splat(0); // Σ (16 − i)·byte_i
    while (p < stop) {
      const c = v128.load(p);
      vPrev = i32x4.add(vPrev, vSum);
      const lo = i16x8.extend_low_i8x16_u(c);
      const hi = i16x8.extend_high_i8x16_u(c);
      vSum = i32x4.add(vSum, i32x4.extadd_pairwise_i16x8_u(i16x8.add(lo, hi)));
      vWeighted = i32x4.add(vWeighted, i32x4.add(i32x4.dot_i16x8_s(lo, wLo), i32x4.dot_i16x8_s(hi, wHi)));
      p += 16;
    }
    const sum = <u64>i32x4.extract_lane(vSum, 0) + <u64>i32x4.extract_lane(vSum, 1) + <u64>i32x4.extract_lane(vSum, 2) + <u64>i32x4.extract_lane(vSum, 3);
    const prevSum = <u64>i32x4.extract_lane(vPrev, 0) + <u64>i32x4.extract_lane(vPrev, 1) + <u64>i32x4.extract_lane(vPrev, 2) + <u64>i32x4.extract_lane(vPrev, 3);
    const weighted = <u64>i32x4.extract_lane(vWeighted, 0) + <u64>i32x4.extract_lane(vWeighted, 1) + <u64>i32x4.extract_lane(vWeighted, 2) + <u64>i32x4.extract_lane(vWeighted, 3);
    const nb = <u64>b + <u64>a * <u64>n + 16 * prevSum + weighted;
    a = <u32>((<u64>a + sum) % ADLER_MOD);
    b = <u32>(nb % ADLER_MOD);
  }
  while (p < end) {
    a += <u32>load<u8>(p);
    b += a;
    p++;
  }
  a %= ADLER_MOD;
  b %= ADLER_MOD;
  return (b << 16) | a;
}
