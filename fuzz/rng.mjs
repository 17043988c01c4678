// A small deterministic PRNG (sfc32, from PractRand's "small fast chaotic" family), so every fuzz
// run and every CI slice is reproducible from its seed.

/** @param {number} seed */
export function makeRng(seed) {
  let a = 0x9e3779b9 ^ seed, b = 0x243f6a88 ^ (seed * 31), c = 0xb7e15162 ^ (seed >>> 3), d = 1;
  const next = () => {
    a >>>= 0; b >>>= 0; c >>>= 0; d >>>= 0;
    const t = (a + b + d) >>> 0;
    d = (d + 1) >>> 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) >>> 0;
    c = ((c << 21) | (c >>> 11)) >>> 0;
    c = (c + t) >>> 0;
    return t >>> 0;
  };
  for (let i = 0; i < 16; i++) next();
  const rng = {
    /** uniform u32 */
    u32: next,
    /** uniform integer in [0, n) */
    int: (n) => (n <= 0 ? 0 : n <= 0x100000000 ? Math.floor((next() / 0x100000000) * n) : Math.floor(((next() * 0x100000000 + next()) / 2 ** 64) * n)),
    /** true with probability p */
    chance: (p) => next() / 0x100000000 < p,
    /** @template T @param {readonly T[]} xs @returns {T} */
    pick: (xs) => xs[rng.int(xs.length)],
    /** a random u64 as bigint */
    u64: () => (BigInt(next()) << 32n) | BigInt(next()),
    /** small counts, most often 1 */
    count: (max) => Math.min(max, 1 + Math.floor(Math.log2(1 / (1 - next() / 0x100000000 + 1e-12)))),
    bytes: (n) => {
      const b = new Uint8Array(n);
      for (let i = 0; i < n; i++) b[i] = next() & 0xff;
      return b;
    },
  };
  return rng;
}
