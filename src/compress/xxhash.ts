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

/** (ah, al) * k mod 2^64 into (rh, rl). The high half of al * k.lo comes from 16-bit pieces. */
function mul(ah: number, al: number, k: K64): void {
  const a0 = al & 0xffff;
  const a1 = al >>> 16;
  const t = a1 * k.l0 + ((a0 * k.l0) >>> 16);
  const w1 = (t & 0xffff) + a0 * k.l1;
  const hi = a1 * k.l1 + (t >>> 16) + (w1 >>> 16);
  rl = Math.imul(al, k.lo) >>> 0;
  rh = (hi + Math.imul(ah, k.lo) + Math.imul(al, k.hi)) >>> 0;
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

const P2_HI = P64_2.hi, P2_LO = P64_2.lo, P2_L0 = P64_2.l0, P2_L1 = P64_2.l1;
const P1_HI = P64_1.hi, P1_LO = P64_1.lo, P1_L0 = P64_1.l0, P1_L1 = P64_1.l1;

/**
 * The 32-byte stripes: lanes v[2k] (high) and v[2k + 1] (low) take round() of each 8-byte word.
 * One function with everything inlined, as this loop is the whole cost of a checksum.
 */
function stripes(data: Uint8Array, v: Uint32Array): number {
  const limit = data.length - 32;
  let i = 0;
  while (i <= limit) {
    for (let k = 0; k < 8; k += 2) {
      const p = i + k * 4;
      const il = (data[p] | (data[p + 1] << 8) | (data[p + 2] << 16) | (data[p + 3] << 24)) >>> 0;
      const ih = (data[p + 4] | (data[p + 5] << 8) | (data[p + 6] << 16) | (data[p + 7] << 24)) >>> 0;
      // x = input * P2
      let a0 = il & 0xffff;
      let a1 = il >>> 16;
      let t = a1 * P2_L0 + ((a0 * P2_L0) >>> 16);
      let w1 = (t & 0xffff) + a0 * P2_L1;
      let xh = (a1 * P2_L1 + (t >>> 16) + (w1 >>> 16) + Math.imul(ih, P2_LO) + Math.imul(il, P2_HI)) >>> 0;
      const xl = Math.imul(il, P2_LO) >>> 0;
      // acc += x
      const sl = v[k + 1] + xl;
      const accl = sl >>> 0;
      const acch = (v[k] + xh + (sl > 0xffffffff ? 1 : 0)) >>> 0;
      // rotl 31
      const rhh = ((acch << 31) | (accl >>> 1)) >>> 0;
      const rll = ((accl << 31) | (acch >>> 1)) >>> 0;
      // * P1
      a0 = rll & 0xffff;
      a1 = rll >>> 16;
      t = a1 * P1_L0 + ((a0 * P1_L0) >>> 16);
      w1 = (t & 0xffff) + a0 * P1_L1;
      xh = (a1 * P1_L1 + (t >>> 16) + (w1 >>> 16) + Math.imul(rhh, P1_LO) + Math.imul(rll, P1_HI)) >>> 0;
      v[k] = xh;
      v[k + 1] = Math.imul(rll, P1_LO);
    }
    i += 32;
  }
  return i;
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
    const v = new Uint32Array([v1h, v1l, v2h, v2l, v3h, v3l, v4h, v4l]);
    i = stripes(data, v);
    v1h = v[0]; v1l = v[1]; v2h = v[2]; v2l = v[3]; v3h = v[4]; v3l = v[5]; v4h = v[6]; v4l = v[7];
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
