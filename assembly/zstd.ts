// Zstandard (RFC 8878) hot loops: Huffman literal streams (§4.2.2), sequence decoding and
// execution (§3.1.1.3.2, §3.1.1.4, §3.1.1.5) and XXH64 (the frame's Content_Checksum).
//
// The TypeScript decoder (src/compress/zstd.ts) parses frames, blocks, literal headers and table
// descriptions, checks them, builds the tables into the core's scratch area and then calls these
// loops with offsets it validated. Everything that depends on the bitstream contents is checked
// here, inside the loops: every output write stays inside [dp, dend) (or [dp, wend) for the
// 16-byte wide copies, wend <= dend), every match source inside [low, dp), every literal read
// inside the block's literals. A violation returns an error code (ZE_*), with the details in the
// info words read by zstdInfo(), and the TS side turns it into the same CodecError its own path
// throws. Like the rest of the core: no allocation, no data segment, no import but the memory.
//
// Bit streams are read backward (§4.1): `pos` counts the bits left, from bit 0 of the stream's
// first byte. The TS side copies each compressed block into scratch with 32 bytes before it and 16
// after it, so the 8-byte loads below (at most 8 bytes past a position inside the block, and for
// the sequences at most 14 bytes before the stream once `pos` has gone negative, which is an
// error caught at the end of that sequence) stay inside the copy.

/** Error codes returned by zstdSeq (0 = done). */
const ZE_SHORT: i32 = 1; // the bitstream ran out: info0 = sequence index
const ZE_LITS: i32 = 2; // literal length past the literals left: info0 = index, info1 = length, info2 = left
const ZE_ROOM: i32 = 3; // output would pass dend: info0 = output position (linear), info1 = length
const ZE_OFFSET: i32 = 4; // match before `low` or offset 0: info0 = index, info1 = offset, info2 = dp - low
const ZE_LEFTOVER: i32 = 5; // bits left after the last sequence: info0 = bits left

let info0: u32 = 0;
let info1: u32 = 0;
let info2: u32 = 0;
/** Output position (linear) after the last zstdSeq call. */
let seqOut: usize = 0;

/** The details of the last zstdSeq error (0, 1, 2). */
export function zstdInfo(i: u32): u32 {
  return i == 0 ? info0 : i == 1 ? info1 : info2;
}

/** Where the last successful zstdSeq left the output (a linear offset). */
export function zstdOut(): usize {
  return seqOut;
}

// ---------------------------------------------------------------------------------------------
// §4.2.1: Huffman decoding table from weights. `weights` holds n bytes (every weight <= 11, the
// last one implied already filled in, the code complete: checked by the caller); the table gets
// 1 << maxBits u16 entries, symbol | bits << 8, indexed by the next maxBits bits of the stream.
// `ranks` is 16 u32s of scratch.

export function zstdHufTable(weights: usize, n: u32, maxBits: u32, table: usize, ranks: usize): void {
  for (let w: u32 = 0; w < 16; w++) store<u32>(ranks + (<usize>w << 2), 0);
  for (let s: u32 = 0; s < n; s++) {
    const w = <usize>load<u8>(weights + s);
    store<u32>(ranks + (w << 2), load<u32>(ranks + (w << 2)) + 1);
  }
  // canonical order (§4.2.1.4): by weight, then by symbol
  let next: u32 = 0;
  for (let w: u32 = 1; w <= maxBits; w++) {
    const count = load<u32>(ranks + (<usize>w << 2));
    store<u32>(ranks + (<usize>w << 2), next);
    next += count << (w - 1);
  }
  for (let s: u32 = 0; s < n; s++) {
    const w = <u32>load<u8>(weights + s);
    if (w == 0) continue;
    const len = <u32>1 << (w - 1);
    const at = load<u32>(ranks + (<usize>w << 2));
    const e = <u16>(s | ((maxBits + 1 - w) << 8));
    let p = table + (<usize>at << 1);
    const end = p + (<usize>len << 1);
    while (p < end) {
      store<u16>(p, e);
      p += 2;
    }
    store<u32>(ranks + (<usize>w << 2), at + len);
  }
}

// ---------------------------------------------------------------------------------------------
// §4.1.1: a sequence decoding table (the 8-byte entries zstdSeq reads) from normalized counts:
// nsym i16 counts at `counts` (-1 = "less than one"; their sum is 1 << log and nsym <= 53, log
// <= 9: checked by the caller), values from `vals` (per symbol: u32 value base, u32 extra bits)
// or, with `isOf`, 1 << symbol and symbol. `tmp` is 512 + 128 bytes of scratch. Returns 0, or 1
// when the spread does not come back to position 0 (a distribution that does not fill the table).

export function zstdFseBuild(table: usize, counts: usize, nsym: u32, log: u32, vals: usize, isOf: bool, tmp: usize): i32 {
  const size: u32 = 1 << log;
  const mask = size - 1;
  const symAt = tmp; // u8 per state
  const next = tmp + 512; // u16 per symbol
  let high = size - 1;
  for (let s: u32 = 0; s < nsym; s++) {
    const c = <i32>load<i16>(counts + (<usize>s << 1));
    if (c == -1) {
      store<u8>(symAt + high, <u8>s);
      high--;
      store<u16>(next + (<usize>s << 1), 1);
    } else {
      store<u16>(next + (<usize>s << 1), <u16>c);
    }
  }
  const step = (size >> 1) + (size >> 3) + 3;
  let pos: u32 = 0;
  for (let s: u32 = 0; s < nsym; s++) {
    const c = <i32>load<i16>(counts + (<usize>s << 1));
    for (let i = 0; i < c; i++) {
      store<u8>(symAt + pos, <u8>s);
      do pos = (pos + step) & mask;
      while (pos > high);
    }
  }
  if (pos != 0) return 1;
  for (let u: u32 = 0; u < size; u++) {
    const s = <u32>load<u8>(symAt + u);
    const n = <u32>load<u16>(next + (<usize>s << 1));
    store<u16>(next + (<usize>s << 1), <u16>(n + 1));
    const nb = log - (31 - clz(n));
    const base = (n << nb) - size;
    const extra = isOf ? s : load<u32>(vals + (<usize>s << 3), 4);
    const value = isOf ? <u32>1 << s : load<u32>(vals + (<usize>s << 3));
    store<u32>(table + (<usize>u << 3), base | (nb << 16) | (extra << 24));
    store<u32>(table + (<usize>u << 3), value, 4);
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------
// §4.2.2: one Huffman-coded literals stream [start, end) (its last byte non-zero: checked by the
// caller) decoded into n bytes at dst. Returns the bits left over: 0 for a stream that decodes
// exactly, negative when it was too short (bits before its start read as zeros, as the spec's
// reference decoder does), positive when bits are left.

@inline function streamBits(start: usize, end: usize): i32 {
  return (<i32>(end - start) << 3) - 8 + (31 - <i32>clz(<u32>load<u8>(end - 1)));
}

export function zstdHuf1(start: usize, end: usize, table: usize, maxBits: u32, dst: usize, n: u32): i32 {
  return hufFrom(start, streamBits(start, end), table, maxBits, dst, dst + n);
}

/** Continues a stream at bit position pos, writing [o, e). */
function hufFrom(start: usize, pos: i32, table: usize, maxBits: u32, o: usize, e: usize): i32 {
  const shift = <u64>(64 - maxBits);
  // Four symbols (at most 44 bits) per 8-byte load while 57 bits remain.
  while (o + 4 <= e && pos >= 57) {
    const q = pos - 57;
    let c = load<u64>(start + <usize>(q >> 3)) << <u64>(7 - (q & 7));
    let t = <u32>load<u16>(table + (<usize>(c >> shift) << 1));
    store<u8>(o, t);
    c <<= <u64>(t >> 8);
    pos -= <i32>(t >> 8);
    t = <u32>load<u16>(table + (<usize>(c >> shift) << 1));
    store<u8>(o, t, 1);
    c <<= <u64>(t >> 8);
    pos -= <i32>(t >> 8);
    t = <u32>load<u16>(table + (<usize>(c >> shift) << 1));
    store<u8>(o, t, 2);
    c <<= <u64>(t >> 8);
    pos -= <i32>(t >> 8);
    t = <u32>load<u16>(table + (<usize>(c >> shift) << 1));
    store<u8>(o, t, 3);
    pos -= <i32>(t >> 8);
    o += 4;
  }
  const mask: u32 = (<u32>1 << maxBits) - 1;
  while (o < e) {
    const s = pos - <i32>maxBits;
    let v: u32 = 0;
    if (s >= 0) v = (load<u32>(start + <usize>(s >> 3)) >>> <u32>(s & 7)) & mask;
    else if (pos > 0) v = (load<u32>(start) & ((<u32>1 << <u32>pos) - 1)) << <u32>(-s);
    const t = <u32>load<u16>(table + (<usize>v << 1));
    store<u8>(o, t);
    pos -= <i32>(t >> 8);
    o++;
  }
  return pos;
}

// The four streams of §3.1.1.3.1.6 interleaved (independent dependency chains, so the CPU
// overlaps them), each [start_k, end_k) non-empty with a non-zero last byte (checked by the
// caller), writing `each` literals for the first three and the rest of n for the fourth into
// consecutive ranges from dst. Returns 0 when every stream decodes exactly, else 1 + the index of
// the first one that does not, its bits left in zstdInfo(0).
// The stream starts are passed as start1 (= the table end) and the three sizes.

@inline function hufStep(c: u64, shift: u64, table: usize, o: usize): u32 {
  const t = <u32>load<u16>(table + (<usize>(c >> shift) << 1));
  store<u8>(o, t);
  return t >> 8;
}

export function zstdHuf4(start: usize, s1: u32, s2: u32, s3: u32, end: usize, table: usize, maxBits: u32, dst: usize, n: u32): i32 {
  const each = (n + 3) >> 2;
  const a0 = start;
  const a1 = a0 + s1;
  const a2 = a1 + s2;
  const a3 = a2 + s3;
  let p0 = streamBits(a0, a1);
  let p1 = streamBits(a1, a2);
  let p2 = streamBits(a2, a3);
  let p3 = streamBits(a3, end);
  let o0 = dst;
  let o1 = dst + each;
  let o2 = dst + 2 * each;
  let o3 = dst + 3 * each;
  const e3 = dst + n;
  const shift = <u64>(64 - maxBits);
  // the fourth stream is the shortest; all advance together
  while (o3 + 4 <= e3 && p0 >= 57 && p1 >= 57 && p2 >= 57 && p3 >= 57) {
    let q = p0 - 57;
    let c0 = load<u64>(a0 + <usize>(q >> 3)) << <u64>(7 - (q & 7));
    q = p1 - 57;
    let c1 = load<u64>(a1 + <usize>(q >> 3)) << <u64>(7 - (q & 7));
    q = p2 - 57;
    let c2 = load<u64>(a2 + <usize>(q >> 3)) << <u64>(7 - (q & 7));
    q = p3 - 57;
    let c3 = load<u64>(a3 + <usize>(q >> 3)) << <u64>(7 - (q & 7));
    for (let k: usize = 0; k < 4; k++) {
      let b = hufStep(c0, shift, table, o0 + k);
      c0 <<= <u64>b;
      p0 -= <i32>b;
      b = hufStep(c1, shift, table, o1 + k);
      c1 <<= <u64>b;
      p1 -= <i32>b;
      b = hufStep(c2, shift, table, o2 + k);
      c2 <<= <u64>b;
      p2 -= <i32>b;
      b = hufStep(c3, shift, table, o3 + k);
      c3 <<= <u64>b;
      p3 -= <i32>b;
    }
    o0 += 4;
    o1 += 4;
    o2 += 4;
    o3 += 4;
  }
  p0 = hufFrom(a0, p0, table, maxBits, o0, dst + each);
  if (p0 != 0) {
    info0 = <u32>p0;
    return 1;
  }
  p1 = hufFrom(a1, p1, table, maxBits, o1, dst + 2 * each);
  if (p1 != 0) {
    info0 = <u32>p1;
    return 2;
  }
  p2 = hufFrom(a2, p2, table, maxBits, o2, dst + 3 * each);
  if (p2 != 0) {
    info0 = <u32>p2;
    return 3;
  }
  p3 = hufFrom(a3, p3, table, maxBits, o3, e3);
  if (p3 != 0) {
    info0 = <u32>p3;
    return 4;
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------
// §3.1.1.3.2 / §3.1.1.4 / §3.1.1.5: nseq sequences from the bitstream [bs, bsEnd) (non-empty,
// last byte non-zero: checked by the caller), executed into the output at dp.
//
// Tables: 8 bytes per state, built by the caller from the FSE tables — u16 base of the next
// state, u8 bits of the next state, u8 extra bits of the value, u32 value base (for offsets
// 1 << code). Literals: nlit bytes at lit (readable 16 bytes past them). rep: three u32 repeat
// offsets, read and written back. Matches reach back to low (the frame's first output byte);
// output stops at dend; 16-byte wide copies may write up to wend (<= dend).

@inline function bitsAt(base: usize, pos: i32, n: u32): u32 {
  return <u32>((load<u64>(base + <usize>(pos >> 3)) >> <u64>(pos & 7)) & ((<u64>1 << <u64>n) - 1));
}

export function zstdSeq(
  bs: usize, bsEnd: usize, nseq: u32,
  llT: usize, llLog: u32, ofT: usize, ofLog: u32, mlT: usize, mlLog: u32,
  lit: usize, nlit: u32, dp: usize, low: usize, dend: usize, wend: usize, rep: usize,
): i32 {
  const last = <u32>load<u8>(bsEnd - 1);
  let pos: i32 = (<i32>(bsEnd - bs) << 3) - 8 + (31 - <i32>clz(last));
  pos -= <i32>llLog;
  let llS = bitsAt(bs, pos, llLog);
  pos -= <i32>ofLog;
  let ofS = bitsAt(bs, pos, ofLog);
  pos -= <i32>mlLog;
  let mlS = bitsAt(bs, pos, mlLog);
  let r0 = load<u32>(rep);
  let r1 = load<u32>(rep, 4);
  let r2 = load<u32>(rep, 8);
  let lp = lit;
  const litEnd = lit + nlit;
  for (let i: u32 = 0; i < nseq; i++) {
    const ofE = load<u64>(ofT + (<usize>ofS << 3));
    const mlE = load<u64>(mlT + (<usize>mlS << 3));
    const llE = load<u64>(llT + (<usize>llS << 3));
    // The value bits (offset, match length, literal length: at most 63) from one or two 8-byte
    // loads, top-aligned in c: stream bit pos - 1 at bit 63. Near the stream's start the low
    // bits come from before it; they are only used when pos goes negative, an error below.
    const ofB = <u32>(ofE >> 24) & 0xff;
    const mlB = <u32>(mlE >> 24) & 0xff;
    const llB = <u32>(llE >> 24) & 0xff;
    let q = pos - 57;
    let c = load<u64>(bs + <usize>(q >> 3)) << <u64>(7 - (q & 7));
    const ofValue = <u32>(ofE >> 32) + <u32>((c >> <u64>(63 - ofB)) >> 1);
    c <<= <u64>ofB;
    const mlen = <u32>(mlE >> 32) + <u32>((c >> <u64>(63 - mlB)) >> 1);
    c <<= <u64>mlB;
    pos -= <i32>(ofB + mlB);
    if (ofB + mlB + llB > 57) {
      q = pos - 57;
      c = load<u64>(bs + <usize>(q >> 3)) << <u64>(7 - (q & 7));
    }
    const llen = <u32>(llE >> 32) + <u32>((c >> <u64>(63 - llB)) >> 1);
    pos -= <i32>llB;
    let off: u32;
    if (ofValue > 3) {
      off = ofValue - 3;
      r2 = r1;
      r1 = r0;
      r0 = off;
    } else {
      const idx = ofValue - 1 + <u32>(llen == 0);
      if (idx == 0) off = r0;
      else if (idx == 3) {
        off = r0 - 1;
        r2 = r1;
        r1 = r0;
        r0 = off;
      } else {
        off = idx == 1 ? r1 : r2;
        if (idx == 2) r2 = r1;
        r1 = r0;
        r0 = off;
      }
    }
    if (i + 1 < nseq) {
      // the three state updates: at most 26 bits, one load
      q = pos - 57;
      c = load<u64>(bs + <usize>(q >> 3)) << <u64>(7 - (q & 7));
      let n = <u32>(llE >> 16) & 0xff;
      llS = (<u32>llE & 0xffff) + <u32>((c >> <u64>(63 - n)) >> 1);
      c <<= <u64>n;
      pos -= <i32>n;
      n = <u32>(mlE >> 16) & 0xff;
      mlS = (<u32>mlE & 0xffff) + <u32>((c >> <u64>(63 - n)) >> 1);
      c <<= <u64>n;
      pos -= <i32>n;
      n = <u32>(ofE >> 16) & 0xff;
      ofS = (<u32>ofE & 0xffff) + <u32>((c >> <u64>(63 - n)) >> 1);
      pos -= <i32>n;
    }
    if (pos < 0) {
      info0 = i;
      return ZE_SHORT;
    }
    // literals, then the match
    if (<usize>llen > litEnd - lp) {
      info0 = i;
      info1 = llen;
      info2 = <u32>(litEnd - lp);
      return ZE_LITS;
    }
    if (<usize>llen > dend - dp) {
      info0 = <u32>dp;
      info1 = llen;
      return ZE_ROOM;
    }
    if (dp + llen + 16 <= wend) {
      // wide copy: the literals buffer is readable 16 bytes past its end
      let s = lp;
      let d = dp;
      const de = dp + llen;
      do {
        v128.store(d, v128.load(s));
        s += 16;
        d += 16;
      } while (d < de);
    } else {
      memory.copy(dp, lp, llen);
    }
    dp += llen;
    lp += llen;
    if (off == 0 || <usize>off > dp - low) {
      info0 = i;
      info1 = off;
      info2 = <u32>(dp - low);
      return ZE_OFFSET;
    }
    if (<usize>mlen > dend - dp) {
      info0 = <u32>dp;
      info1 = mlen;
      return ZE_ROOM;
    }
    let m = dp - off;
    const de = dp + mlen;
    if (de + 16 <= wend) {
      if (off >= 16) {
        // each 16-byte piece reads only bytes written before it
        let d = dp;
        do {
          v128.store(d, v128.load(m));
          m += 16;
          d += 16;
        } while (d < de);
      } else if (off == 1) {
        memory.fill(dp, load<u8>(m), mlen);
      } else {
        // The match repeats the `off` bytes before dp, so any whole number of periods back is
        // the same byte: after the first `lag` bytes (a multiple of off, at least 8) copy
        // 8 bytes at a time from lag back. Every read is of a byte already written.
        let lag = off;
        while (lag < 8) lag += off;
        let d = dp;
        const first = dp + lag;
        while (d < first) {
          store<u8>(d, load<u8>(m));
          m++;
          d++;
        }
        m = d - lag;
        while (d < de) {
          store<u64>(d, load<u64>(m));
          m += 8;
          d += 8;
        }
      }
    } else {
      let d = dp;
      while (d < de) {
        store<u8>(d, load<u8>(m));
        m++;
        d++;
      }
    }
    dp = de;
  }
  store<u32>(rep, r0);
  store<u32>(rep, r1, 4);
  store<u32>(rep, r2, 8);
  if (pos != 0) {
    info0 = <u32>pos;
    return ZE_LEFTOVER;
  }
  // the literals after the last sequence
  const rest = litEnd - lp;
  if (rest > dend - dp) {
    info0 = <u32>dp;
    info1 = <u32>rest;
    return ZE_ROOM;
  }
  memory.copy(dp, lp, rest);
  seqOut = dp + rest;
  return 0;
}

// ---------------------------------------------------------------------------------------------
// XXH64 (xxHash spec, https://github.com/Cyan4973/xxHash/blob/dev/doc/xxhash_spec.md) of
// [ptr, ptr + len), seed 0. zstd's Content_Checksum is its low 32 bits, which is what this
// returns (so JS gets a number, not a BigInt).

const X1: u64 = 0x9e3779b185ebca87;
const X2: u64 = 0xc2b2ae3d27d4eb4f;
const X3: u64 = 0x165667b19e3779f9;
const X4: u64 = 0x85ebca77c2b2ae63;
const X5: u64 = 0x27d4eb2f165667c5;

@inline function round64(acc: u64, lane: u64): u64 {
  return rotl<u64>(acc + lane * X2, 31) * X1;
}

@inline function merge64(acc: u64, v: u64): u64 {
  return (acc ^ round64(0, v)) * X1 + X4;
}

export function zstdXxh64Low(ptr: usize, len: usize): u32 {
  let p = ptr;
  const end = ptr + len;
  let h: u64;
  if (len >= 32) {
    let v1: u64 = X1 + X2;
    let v2: u64 = X2;
    let v3: u64 = 0;
    let v4: u64 = 0 - X1;
    const limit = end - 32;
    while (p <= limit) {
      v1 = round64(v1, load<u64>(p));
      v2 = round64(v2, load<u64>(p, 8));
      v3 = round64(v3, load<u64>(p, 16));
      v4 = round64(v4, load<u64>(p, 24));
      p += 32;
    }
    h = rotl<u64>(v1, 1) + rotl<u64>(v2, 7) + rotl<u64>(v3, 12) + rotl<u64>(v4, 18);
    h = merge64(h, v1);
    h = merge64(h, v2);
    h = merge64(h, v3);
    h = merge64(h, v4);
  } else {
    h = X5;
  }
  h += <u64>len;
  while (p + 8 <= end) {
    h = rotl<u64>(h ^ round64(0, load<u64>(p)), 27) * X1 + X4;
    p += 8;
  }
  if (p + 4 <= end) {
    h = rotl<u64>(h ^ (<u64>load<u32>(p) * X1), 23) * X2 + X3;
    p += 4;
  }
  while (p < end) {
    h = rotl<u64>(h ^ (<u64>load<u8>(p) * X5), 11) * X1;
    p++;
  }
  h ^= h >> 33;
  h *= X2;
  h ^= h >> 29;
  h *= X3;
  h ^= h >> 32;
  return <u32>h;
}
