// Small helpers shared by the Node harness and the Chromium page.

export const now = () => performance.now();

export function summary(samples) {
  const s = [...samples].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  return { median, min: s[0], max: s[s.length - 1], n: s.length };
}

/** FNV-1a (32-bit) over little-endian u32 words of u8[off, off + len); bench/c/reloc.c computes the same. */
export function hash32(u8, off, len) {
  const n = len >>> 2;
  const w = off % 4 === 0 ? new Uint32Array(u8.buffer, u8.byteOffset + off, n) : new Uint32Array(u8.slice(off, off + n * 4).buffer);
  let h = 2166136261;
  for (let i = 0; i < n; i++) h = Math.imul(h ^ w[i], 16777619);
  return h >>> 0;
}

/** Runs `fn` once untimed, then `runs` times; returns ms samples. `before` runs untimed each time. */
export async function sample(runs, fn, before) {
  if (before) await before();
  await fn();
  const out = [];
  for (let i = 0; i < runs; i++) {
    if (before) await before();
    const t0 = now();
    await fn();
    out.push(now() - t0);
  }
  return out;
}
