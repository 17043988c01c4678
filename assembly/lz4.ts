// LZ4 block decoding (doc/lz4_Block_format.md) for src/compress/lz4.ts, which parses the frames
// (standard and legacy) and feeds each block's compressed bytes through the core's input area in
// pieces. The same rules as the rest of the core (assembly/index.ts): no allocation, no data, only
// the imported memory.
//
// lz4Decode decodes the sequences of one piece [ip, iend) of a block; `rest` is how many bytes of
// the block follow the piece (0: the piece ends the block). Output goes to [op, oend) in guest
// RAM, matches reaching back no further than `low` (the frame's first output byte for linked
// blocks, the block's for independent ones). A sequence is executed only when all of it (token,
// literal length bytes, literals, offset, match length bytes) lies in the piece; when it does not
// and the block goes on past the piece, the loop returns LZ4_MORE with lz4In() at that sequence's
// token and the caller refills the area from there. Everything the stream decides is checked here
// against those ranges, in the order the TypeScript loop (src/compress/lz4.ts lz4Block) checks it,
// and a failure returns its code with the input position (linear memory) in lz4ErrAt(), the
// length or offset in lz4ErrArg() and the output position in lz4Out(); the caller maps it to the
// same CodecError the TypeScript loop throws.
//
// Copies are exact: no byte is written past a sequence's end (the room [op, oend) is guest RAM
// that a frame without a block size may not fill, and it must stay as it was). Wide copies use an
// overlapping last word instead of an overshoot.

/** The block ended with its last (literals-only) sequence exactly at iend, with rest == 0. */
const LZ4_DONE: i32 = 0;
/** The next sequence does not lie wholly in the piece (lz4In(): its token). */
const LZ4_MORE: i32 = 1;
/** The block ends where a token should be (errAt: there). */
const LZ4_NO_TOKEN: i32 = 2;
/** The literal length bytes run past the block's end (errAt: where the next one was needed). */
const LZ4_LITLEN_PAST_END: i32 = 3;
/** The literals run past the block's end (errAt: the first literal; errArg: their count). */
const LZ4_LITS_PAST_END: i32 = 4;
/** The literals pass oend (errAt: the first literal; errArg: their count). */
const LZ4_LITS_TOO_LARGE: i32 = 5;
/** The block ends inside a match offset (errAt: the offset's first byte). */
const LZ4_OFFSET_PAST_END: i32 = 6;
/** Offset 0 or before `low` (errAt: the offset; errArg: its value). */
const LZ4_BAD_OFFSET: i32 = 7;
/** The match length bytes run past the block's end (errAt: where the next one was needed). */
const LZ4_MATCHLEN_PAST_END: i32 = 8;
/** The match passes oend (errAt: the offset; errArg: the match length). */
const LZ4_MATCH_TOO_LARGE: i32 = 9;

let inAt: usize = 0;
let outPos: usize = 0;
let errAt: usize = 0;
let errArg: usize = 0;

/** Where the last lz4Decode stopped in its input (LZ4_MORE: the token of the next sequence). */
export function lz4In(): usize {
  return inAt;
}

/** The output position after the last lz4Decode (on failure: where the failing sequence wrote). */
export function lz4Out(): usize {
  return outPos;
}

/** Input position (linear memory) of the last lz4Decode failure. */
export function lz4ErrAt(): usize {
  return errAt;
}

/** The count or offset the last lz4Decode failure concerns. */
export function lz4ErrArg(): usize {
  return errArg;
}

/** Copies n bytes forward in words of 16, 8 or 4 bytes, the last word overlapping; src + W <= dst or no overlap. */
@inline function copy16(dst: usize, src: usize, n: usize): void {
  // n >= 16
  let i: usize = 0;
  while (i + 16 < n) {
    v128.store(dst + i, v128.load(src + i));
    i += 16;
  }
  v128.store(dst + n - 16, v128.load(src + n - 16));
}

@inline function copy8(dst: usize, src: usize, n: usize): void {
  // n >= 8
  let i: usize = 0;
  while (i + 8 < n) {
    store<u64>(dst + i, load<u64>(src + i));
    i += 8;
  }
  store<u64>(dst + n - 8, load<u64>(src + n - 8));
}

@inline function copy4(dst: usize, src: usize, n: usize): void {
  // n >= 4
  let i: usize = 0;
  while (i + 4 < n) {
    store<u32>(dst + i, load<u32>(src + i));
    i += 4;
  }
  store<u32>(dst + n - 4, load<u32>(src + n - 4));
}

/** Literals: from the input area to guest RAM (never overlapping). */
@inline function copyLiterals(dst: usize, src: usize, n: usize): void {
  if (n >= 16) {
    if (n > 128) memory.copy(dst, src, n);
    else copy16(dst, src, n);
  } else if (n >= 8) {
    copy8(dst, src, n);
  } else if (n >= 4) {
    copy4(dst, src, n);
  } else {
    for (let i: usize = 0; i < n; i++) store<u8>(dst + i, load<u8>(src + i));
  }
}

/** A match of n >= 4 bytes from off bytes back (the copy repeats the last off bytes when off < n). */
@inline function copyMatch(dst: usize, off: usize, n: usize): void {
  const src = dst - off;
  if (off >= 16) {
    if (n >= 16) {
      if (off >= n && n > 128) memory.copy(dst, src, n);
      else copy16(dst, src, n);
    } else if (n >= 8) copy8(dst, src, n);
    else copy4(dst, src, n);
  } else if (off >= 8) {
    if (n >= 8) copy8(dst, src, n);
    else copy4(dst, src, n);
  } else if (off >= 4) {
    copy4(dst, src, n);
  } else if (off == 1) {
    memory.fill(dst, load<u8>(src), n);
  } else {
    for (let i: usize = 0; i < n; i++) store<u8>(dst + i, load<u8>(src + i));
  }
}

/** Ends an lz4Decode call: where input and output stopped, and the code. */
@inline function stop(code: i32, ip: usize, op: usize): i32 {
  inAt = ip;
  outPos = op;
  return code;
}

/** Ends an lz4Decode call with a failure at input position `at` concerning `arg`. */
@inline function fail(code: i32, at: usize, arg: usize, ip: usize, op: usize): i32 {
  errAt = at;
  errArg = arg;
  inAt = ip;
  outPos = op;
  return code;
}

export function lz4Decode(ip: usize, iend: usize, rest: usize, op: usize, low: usize, oend: usize): i32 {
  // ip: the token of the next sequence (LZ4_MORE returns it in lz4In)
  while (true) {
    if (ip >= iend) {
      if (rest != 0) return stop(LZ4_MORE, ip, op);
      return fail(LZ4_NO_TOKEN, ip, 0, ip, op);
    }
    const token = <usize>load<u8>(ip);
    let sp = ip + 1;
    let lit = token >> 4;
    if (lit == 15) {
      let b: usize = 255;
      while (b == 255) {
        if (sp >= iend) {
          if (rest != 0) return stop(LZ4_MORE, ip, op);
          return fail(LZ4_LITLEN_PAST_END, sp, 0, ip, op);
        }
        b = <usize>load<u8>(sp);
        sp++;
        lit += b;
      }
    }
    const avail = iend - sp;
    if (lit > avail) {
      if (lit - avail <= rest) return stop(LZ4_MORE, ip, op);
      return fail(LZ4_LITS_PAST_END, sp, lit, ip, op);
    }
    if (lit > oend - op) return fail(LZ4_LITS_TOO_LARGE, sp, lit, ip, op);
    let q = sp + lit;
    if (q == iend) {
      if (rest != 0) return stop(LZ4_MORE, ip, op);
      // the last sequence has literals only
      copyLiterals(op, sp, lit);
      return stop(LZ4_DONE, q, op + lit);
    }
    const mop = op + lit;
    if (iend - q < 2) {
      if (rest != 0) return stop(LZ4_MORE, ip, op);
      return fail(LZ4_OFFSET_PAST_END, q, 0, ip, mop);
    }
    const at = q;
    const off = <usize>load<u16>(q);
    q += 2;
    if (off == 0 || off > mop - low) return fail(LZ4_BAD_OFFSET, at, off, ip, mop);
    let len = token & 15;
    if (len == 15) {
      let b: usize = 255;
      while (b == 255) {
        if (q >= iend) {
          if (rest != 0) return stop(LZ4_MORE, ip, op);
          return fail(LZ4_MATCHLEN_PAST_END, q, 0, ip, mop);
        }
        b = <usize>load<u8>(q);
        q++;
        len += b;
      }
    }
    len += 4;
    if (len > oend - mop) return fail(LZ4_MATCH_TOO_LARGE, at, len, ip, mop);
    copyLiterals(op, sp, lit);
    copyMatch(mop, off, len);
    op = mop + len;
    ip = q;
  }
  return stop(LZ4_DONE, ip, op);
}

// ---------------------------------------------------------------------------------------------
// XXH32 (xxhash_spec.md), the LZ4 frame's content checksum, over the decoded frame in guest RAM.
// The four accumulators are the lanes of one v128 (each 16-byte stripe is four u32 lanes read
// little-endian, as the spec reads them).

const X1: u32 = 2654435761;
const X2: u32 = 2246822519;
const X3: u32 = 3266489917;
const X4: u32 = 668265263;
const X5: u32 = 374761393;

export function lz4Xxh32(ptr: usize, len: usize, seed: u32): u32 {
  let p = ptr;
  const end = ptr + len;
  let h: u32;
  if (len >= 16) {
    let v = i32x4(<i32>(seed + X1 + X2), <i32>(seed + X2), <i32>seed, <i32>(seed - X1));
    const p1 = i32x4.splat(<i32>X1);
    const p2 = i32x4.splat(<i32>X2);
    const limit = end - 16;
    while (p <= limit) {
      const a = i32x4.add(v, i32x4.mul(v128.load(p), p2));
      v = i32x4.mul(v128.or(i32x4.shl(a, 13), i32x4.shr_u(a, 19)), p1);
      p += 16;
    }
    const v1 = <u32>i32x4.extract_lane(v, 0);
    const v2 = <u32>i32x4.extract_lane(v, 1);
    const v3 = <u32>i32x4.extract_lane(v, 2);
    const v4 = <u32>i32x4.extract_lane(v, 3);
    h = rotl<u32>(v1, 1) + rotl<u32>(v2, 7) + rotl<u32>(v3, 12) + rotl<u32>(v4, 18);
  } else {
    h = seed + X5;
  }
  h += <u32>len;
  while (end - p >= 4) {
    h = rotl<u32>(h + load<u32>(p) * X3, 17) * X4;
    p += 4;
  }
  while (p < end) {
    h = rotl<u32>(h + <u32>load<u8>(p) * X5, 11) * X1;
    p++;
  }
  h ^= h >> 15;
  h *= X2;
  h ^= h >> 13;
  h *= X3;
  h ^= h >> 16;
  return h;
}
