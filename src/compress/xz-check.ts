// The integrity checks an `.xz` stream can carry (xz-file-format-1.1.0.txt §3.4, §5.1): CRC-32
// (also guarding every header and the index), CRC-64 and SHA-256. Plain table-driven code over
// Uint8Arrays so a check runs over guest RAM in place, in Node and browsers alike, synchronously
// (WebCrypto's digest is asynchronous and cannot sit inside a synchronous decoder).

/** CRC-32 as in zlib/xz (reflected, polynomial 0xEDB88320), slicing by 4. */
const CRC32 = (() => {
  const t = new Int32Array(256 * 4);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    let c = t[n]!;
    for (let k = 1; k < 4; k++) {
      c = t[c & 0xff]! ^ (c >>> 8);
      t[k * 256 + n] = c;
    }
  }
  return t;
})();

/** CRC-32 of data[start, end), continuing from `prev` (0 to start). */
export function crc32(data: Uint8Array, start = 0, end = data.length, prev = 0): number {
  const t = CRC32;
  let c = ~prev;
  let i = start;
  for (; i + 4 <= end; i += 4) {
    c ^= data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24);
    c = t[768 + (c & 0xff)]! ^ t[512 + ((c >>> 8) & 0xff)]! ^ t[256 + ((c >>> 16) & 0xff)]! ^ t[c >>> 24]!;
  }
  for (; i < end; i++) c = t[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/** CRC-64/XZ (ECMA-182 polynomial, reflected: 0xC96C5795D7870F42), as two 32-bit halves. */
const CRC64_LO = new Int32Array(256);
const CRC64_HI = new Int32Array(256);
{
  const polyLo = 0xd7870f42 | 0;
  const polyHi = 0xc96c5795 | 0;
  for (let n = 0; n < 256; n++) {
    let lo = n, hi = 0;
    for (let k = 0; k < 8; k++) {
      const bit = lo & 1;
      lo = (lo >>> 1) | (hi << 31);
      hi = hi >>> 1;
      if (bit) {
        lo ^= polyLo;
        hi ^= polyHi;
      }
    }
    CRC64_LO[n] = lo;
    CRC64_HI[n] = hi;
  }
}

/** CRC-64 of data[start, end), as 8 bytes little-endian (the order the stream stores it). */
export function crc64(data: Uint8Array, start = 0, end = data.length): Uint8Array {
  const tl = CRC64_LO, th = CRC64_HI;
  let lo = -1, hi = -1;
  for (let i = start; i < end; i++) {
    const x = (lo ^ data[i]!) & 0xff;
    lo = ((lo >>> 8) | (hi << 24)) ^ tl[x]!;
    hi = (hi >>> 8) ^ th[x]!;
  }
  lo = ~lo;
  hi = ~hi;
  return new Uint8Array([lo, lo >>> 8, lo >>> 16, lo >>> 24, hi, hi >>> 8, hi >>> 16, hi >>> 24]);
}

/** SHA-256 round constants (FIPS 180-4 §4.2.2: fractional parts of the cube roots of the first 64 primes). */
const K256 = (() => {
  const k = new Int32Array(64);
  let n = 0;
  for (let p = 2; n < 64; p++) {
    let prime = true;
    for (let d = 2; d * d <= p; d++) if (p % d === 0) { prime = false; break; }
    if (!prime) continue;
    k[n++] = Math.floor((Math.cbrt(p) % 1) * 2 ** 32) | 0;
  }
  return k;
})();

/** SHA-256 (FIPS 180-4) of data[start, end). */
export function sha256(data: Uint8Array, start = 0, end = data.length): Uint8Array {
  // Initial hash (§5.3.3): fractional parts of the square roots of the first 8 primes.
  const h = new Int32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
  const w = new Int32Array(64);
  const k = K256;
  const len = end - start;
  const block = (src: Uint8Array, o: number) => {
    for (let t = 0; t < 16; t++, o += 4) w[t] = (src[o]! << 24) | (src[o + 1]! << 16) | (src[o + 2]! << 8) | src[o + 3]!;
    for (let t = 16; t < 64; t++) {
      const a = w[t - 15]!, b = w[t - 2]!;
      const s0 = ((a >>> 7) | (a << 25)) ^ ((a >>> 18) | (a << 14)) ^ (a >>> 3);
      const s1 = ((b >>> 17) | (b << 15)) ^ ((b >>> 19) | (b << 13)) ^ (b >>> 10);
      w[t] = (w[t - 16]! + s0 + w[t - 7]! + s1) | 0;
    }
    let a = h[0]!, b = h[1]!, c = h[2]!, d = h[3]!, e = h[4]!, f = h[5]!, g = h[6]!, hh = h[7]!;
    for (let t = 0; t < 64; t++) {
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const ch = (e & f) ^ (~e & g);
      const t1 = (hh + S1 + ch + k[t]! + w[t]!) | 0;
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const maj = (a & b) ^ (a & c) ^ (b & c);
      const t2 = (S0 + maj) | 0;
      hh = g; g = f; f = e; e = (d + t1) | 0; d = c; c = b; b = a; a = (t1 + t2) | 0;
    }
    h[0] = (h[0]! + a) | 0; h[1] = (h[1]! + b) | 0; h[2] = (h[2]! + c) | 0; h[3] = (h[3]! + d) | 0;
    h[4] = (h[4]! + e) | 0; h[5] = (h[5]! + f) | 0; h[6] = (h[6]! + g) | 0; h[7] = (h[7]! + hh) | 0;
  };
  let o = start;
  for (; o + 64 <= end; o += 64) block(data, o);
  // Padding (§5.1.1): 0x80, zeros, the bit length as a 64-bit big-endian number.
  const tail = new Uint8Array(128);
  const rest = end - o;
  tail.set(data.subarray(o, end));
  tail[rest] = 0x80;
  const tl = rest + 9 <= 64 ? 64 : 128;
  const bits = len * 8;
  const hiBits = Math.floor(bits / 2 ** 32);
  for (let i = 0; i < 4; i++) {
    tail[tl - 8 + i] = hiBits >>> (24 - 8 * i);
    tail[tl - 4 + i] = (bits >>> 0) >>> (24 - 8 * i);
  }
  block(tail, 0);
  if (tl === 128) block(tail, 64);
  const outb = new Uint8Array(32);
  for (let i = 0; i < 8; i++) {
    outb[4 * i] = h[i]! >>> 24;
    outb[4 * i + 1] = h[i]! >>> 16;
    outb[4 * i + 2] = h[i]! >>> 8;
    outb[4 * i + 3] = h[i]!;
  }
  return outb;
}
