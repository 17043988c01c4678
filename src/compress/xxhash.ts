// xxHash (XXH32 and XXH64), the checksums of the LZ4 frame format (header, block and content
// checksums) and of zstd frames (the low 32 bits of XXH64, RFC 8878 §3.1.1). Algorithm as
// specified in https://github.com/Cyan4973/xxHash/blob/dev/doc/xxhash_spec.md.
//
// XXH64 needs 64-bit multiplies; BigInt is far too slow for a whole kernel, so a 64-bit value is
// kept as two unsigned 32-bit halves and multiplied through 16-bit pieces (exact in doubles).

const P32_1 = 2654435761;
const P32_2 = 2246822519;
const P32_3 = 3266489917;
const P32_4 = 668265263;
const P32_5 = 374761393;

const rotl32 = (x: number, r: number) => (x << r) | (x >>> (32 - r));
const u32 = (b: Uint8Array, i: number) => (b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24)) >>> 0;

/** XXH32 of `data` with `seed`. */
export function xxh32(data: Uint8Array, seed = 0): number {
  const len = data.length;
  let i = 0;
  let h: number;
  if (len >= 16) {
    let v1 = (seed + P32_1 + P32_2) | 0;
    let v2 = (seed + P32_2) | 0;
    let v3 = seed | 0;
    let v4 = (seed - P32_1) | 0;
    const limit = len - 16;
    while (i <= limit) {
      v1 = Math.imul(rotl32((v1 + Math.imul(u32(data, i), P32_2)) | 0, 13), P32_1);
      v2 = Math.imul(rotl32((v2 + Math.imul(u32(data, i + 4), P32_2)) | 0, 13), P32_1);
      v3 = Math.imul(rotl32((v3 + Math.imul(u32(data, i + 8), P32_2)) | 0, 13), P32_1);
      v4 = Math.imul(rotl32((v4 + Math.imul(u32(data, i + 12), P32_2)) | 0, 13), P32_1);
      i += 16;
    }
    h = (rotl32(v1, 1) + rotl32(v2, 7) + rotl32(v3, 12) + rotl32(v4, 18)) | 0;
  } else {
    h = (seed + P32_5) | 0;
  }
  h = (h + len) | 0;
  for (; i + 4 <= len; i += 4) h = Math.imul(rotl32((h + Math.imul(u32(data, i), P32_3)) | 0, 17), P32_4);
  for (; i < len; i++) h = Math.imul(rotl32((h + Math.imul(data[i], P32_5)) | 0, 11), P32_1);
  h ^= h >>> 15;
  h = Math.imul(h, P32_2);
  h ^= h >>> 13;
  h = Math.imul(h, P32_3);
  h ^= h >>> 16;
  return h >>> 0;
}

// ── XXH64 on (hi, lo) pairs of unsigned 32-bit numbers ──

/** A 64-bit constant as its halves and the 16-bit pieces of its low half. */
interface K64 {
  hi: number;
  lo: number;
  l0: number;
  l1: number;
}
const k64 = (hi: number, lo: number): K64 => ({ hi, lo, l0: lo & 0xffff, l1: lo >>> 16 });
const P64_1 = k64(0x9e3779b1, 0x85ebca87);
const P64_2 = k64(0xc2b2ae3d, 0x27d4eb4f);
const P64_3 = k64(0x165667b1, 0x9e3779f9);
const P64_4 = k64(0x85ebca77, 0xc2b2ae63);
const P64_5 = k64(0x27d4eb2f, 0x165667c5);

// Results of the 64-bit helpers (no allocation in the hot loop).
let rh = 0;
let rl = 0;

/** (ah, al) * k mod 2^64 into (rh, rl). */
function mul(ah: number, al: number, k: K64): void {
  const a0 = al & 0xffff;
  const a1 = al >>> 16;
  const mid = a0 * k.l1 + a1 * k.l0;
  const low = a0 * k.l0 + (mid % 65536) * 65536;
  const lo = low >>> 0;
  const carry = (low - lo) / 4294967296;
  const high = a1 * k.l1 + Math.floor(mid / 65536) + carry;
  rh = (high + Math.imul(ah, k.lo) + Math.imul(al, k.hi)) >>> 0;
  rl = lo;
}

/** (ah, al) + (bh, bl) mod 2^64 into (rh, rl). */
function add(ah: number, al: number, bh: number, bl: number): void {
  const lo = al + bl;
  rl = lo >>> 0;
  rh = (ah + bh + (lo > 0xffffffff ? 1 : 0)) >>> 0;
}

/** rotl64((h, l), r) for 0 < r < 32 into (rh, rl). */
function rotlSmall(h: number, l: number, r: number): void {
  rh = ((h << r) | (l >>> (32 - r))) >>> 0;
  rl = ((l << r) | (h >>> (32 - r))) >>> 0;
}

/** XXH64 round: acc = rotl(acc + input * P2, 31) * P1, into (rh, rl). */
function round(acch: number, accl: number, ih: number, il: number): void {
  mul(ih, il, P64_2);
  add(acch, accl, rh, rl);
  rotlSmall(rh, rl, 31);
  mul(rh, rl, P64_1);
}

/** XXH64 of `data` with seed 0, as a bigint. */
export function xxh64(data: Uint8Array): bigint {
  const len = data.length;
  let i = 0;
  let hh: number;
  let hl: number;
  if (len >= 32) {
    // v1 = P1 + P2, v2 = P2, v3 = 0, v4 = -P1 (seed 0)
    add(P64_1.hi, P64_1.lo, P64_2.hi, P64_2.lo);
    let v1h = rh, v1l = rl;
    let v2h = P64_2.hi, v2l = P64_2.lo;
    let v3h = 0, v3l = 0;
    add(~P64_1.hi >>> 0, ~P64_1.lo >>> 0, 0, 1);
    let v4h = rh, v4l = rl;
    const limit = len - 32;
    while (i <= limit) {
      round(v1h, v1l, u32(data, i + 4), u32(data, i));
      v1h = rh; v1l = rl;
      round(v2h, v2l, u32(data, i + 12), u32(data, i + 8));
      v2h = rh; v2l = rl;
      round(v3h, v3l, u32(data, i + 20), u32(data, i + 16));
      v3h = rh; v3l = rl;
      round(v4h, v4l, u32(data, i + 28), u32(data, i + 24));
      v4h = rh; v4l = rl;
      i += 32;
    }
    rotlSmall(v1h, v1l, 1);
    let ah = rh, al = rl;
    rotlSmall(v2h, v2l, 7);
    add(ah, al, rh, rl);
    ah = rh; al = rl;
    rotlSmall(v3h, v3l, 12);
    add(ah, al, rh, rl);
    ah = rh; al = rl;
    rotlSmall(v4h, v4l, 18);
    add(ah, al, rh, rl);
    hh = rh; hl = rl;
    for (const [vh, vl] of [[v1h, v1l], [v2h, v2l], [v3h, v3l], [v4h, v4l]]) {
      round(0, 0, vh, vl);
      hh = (hh ^ rh) >>> 0;
      hl = (hl ^ rl) >>> 0;
      mul(hh, hl, P64_1);
      add(rh, rl, P64_4.hi, P64_4.lo);
      hh = rh; hl = rl;
    }
  } else {
    hh = P64_5.hi;
    hl = P64_5.lo;
  }
  // h += len (len < 2^53)
  add(hh, hl, Math.floor(len / 4294967296), len >>> 0);
  hh = rh; hl = rl;
  for (; i + 8 <= len; i += 8) {
    round(0, 0, u32(data, i + 4), u32(data, i));
    hh = (hh ^ rh) >>> 0;
    hl = (hl ^ rl) >>> 0;
    rotlSmall(hh, hl, 27);
    mul(rh, rl, P64_1);
    add(rh, rl, P64_4.hi, P64_4.lo);
    hh = rh; hl = rl;
  }
  if (i + 4 <= len) {
    mul(0, u32(data, i), P64_1);
    hh = (hh ^ rh) >>> 0;
    hl = (hl ^ rl) >>> 0;
    rotlSmall(hh, hl, 23);
    mul(rh, rl, P64_2);
    add(rh, rl, P64_3.hi, P64_3.lo);
    hh = rh; hl = rl;
    i += 4;
  }
  for (; i < len; i++) {
    mul(0, data[i], P64_5);
    hh = (hh ^ rh) >>> 0;
    hl = (hl ^ rl) >>> 0;
    rotlSmall(hh, hl, 11);
    mul(rh, rl, P64_1);
    hh = rh; hl = rl;
  }
  // avalanche
  hl = (hl ^ (hh >>> 1)) >>> 0; // h ^= h >> 33
  mul(hh, hl, P64_2);
  hh = rh; hl = rl;
  hl = (hl ^ ((hh << 3) | (hl >>> 29))) >>> 0; // h ^= h >> 29
  hh = (hh ^ (hh >>> 29)) >>> 0;
  mul(hh, hl, P64_3);
  hh = rh; hl = rl;
  hl = (hl ^ hh) >>> 0; // h ^= h >> 32
  return (BigInt(hh) << 32n) | BigInt(hl);
}
