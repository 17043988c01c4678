// Mutators: generic byte-level ones (bit flips, byte and word sets, truncation, extension,
// deletion, insertion, duplication, splices with other seeds) and structure-aware ones that set a
// known header field to a value near an edge: 0, 1, the field's maximum, 2^31/2^32/2^53/2^63/2^64
// neighbourhoods, the file size ±1, RAM bases, the old value ± small or wrapped. After stacking
// mutations, the seed's checksum is recomputed most of the time so the mutant gets past it.
import { fixGzip, fixMultiboot, fixMultiboot2, fixUImage } from "./builders.mjs";

/** Largest mutant, so a run stays fast (the timing invariant is per MiB anyway). */
export const MAX_LEN = 1 << 20;

const RAM_ADDRS = [0x8000n, 0x80000n, 0x100000n, 0x200000n, 0x40000000n, 0x40080000n, 0x40200000n, 0x80000000n, 0x80200000n, 0xffe00000n, 0xfffff000n, 0x100000000n, BigInt(2 ** 53 - 0x200000)];

/** An interesting value for a field of `size` bytes whose current value is `old`, in a file of `len` bytes. */
export function interesting(rng, size, old, len) {
  const bits = BigInt(size * 8);
  const max = (1n << bits) - 1n;
  const L = BigInt(len);
  const c = [0n, 1n, 2n, 4n, max, max - 1n, max >> 1n, (max >> 1n) + 1n, old + 1n, old - 1n, old + 8n, old - 8n, old * 2n, old << 8n, old >> 8n,
    old ^ (1n << BigInt(rng.int(size * 8))), L, L + 1n, L - 1n, L - 64n, L + 0x1000n, 0x40n, 0x1000n, 0xfffn, BigInt(rng.int(0x10000))];
  if (size >= 2) c.push(0x7fffn, 0x8000n, 0xffffn);
  if (size >= 4) c.push(0x7fffffffn, 0x80000000n, 0xfffffffcn, 0xfffff000n, 0x100000000n - old, ...RAM_ADDRS.filter((a) => a <= max), 0x3ffffn, 0x1000000n);
  if (size >= 8) {
    c.push(0x100000000n, 0xffffffffn, 2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 63n, 2n ** 64n - 0x1000n, 2n ** 64n - old, old + 2n ** 32n, old << 32n, 0xffffffff00000000n, BigInt(Number.MAX_SAFE_INTEGER) - old);
  }
  const v = rng.chance(0.1) ? (size >= 8 ? rng.u64() : BigInt(rng.u32())) : rng.pick(c);
  return ((v % (max + 1n)) + (max + 1n)) % (max + 1n);
}

function readField(b, f) {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (f.hex) return BigInt(parseInt(String.fromCharCode(...b.subarray(f.off, f.off + 8)), 16) || 0);
  return f.size === 1 ? BigInt(b[f.off]) : f.size === 2 ? BigInt(dv.getUint16(f.off, f.le)) : f.size === 4 ? BigInt(dv.getUint32(f.off, f.le)) : dv.getBigUint64(f.off, f.le);
}

function writeField(b, f, v) {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (f.hex) {
    const s = (Number(v & 0xffffffffn) >>> 0).toString(16).padStart(8, "0");
    for (let i = 0; i < 8; i++) b[f.off + i] = s.charCodeAt(i);
  } else if (f.size === 1) b[f.off] = Number(v & 0xffn);
  else if (f.size === 2) dv.setUint16(f.off, Number(v & 0xffffn), f.le);
  else if (f.size === 4) dv.setUint32(f.off, Number(v & 0xffffffffn), f.le);
  else dv.setBigUint64(f.off, v & 0xffffffffffffffffn, f.le);
}

const cat = (a, b) => {
  const o = new Uint8Array(a.length + b.length);
  o.set(a);
  o.set(b, a.length);
  return o;
};

/** One mutation of `b` (may return a new array). */
function once(rng, b, fields, pool) {
  const n = b.length;
  const off = () => rng.int(Math.max(1, n));
  const r = rng.int(100);
  if (r < 30 && fields.length) {
    // A header field set to an edge value.
    const f = rng.pick(fields);
    if (f.off + (f.hex ? 8 : f.size) <= n) writeField(b, f, interesting(rng, f.hex ? 4 : f.size, readField(b, f), n));
    return b;
  }
  if (r < 44 && n) {
    for (let k = rng.count(4); k > 0; k--) b[off()] ^= 1 << rng.int(8);
    return b;
  }
  if (r < 52 && n) {
    b[off()] = rng.pick([0, 1, 0x7f, 0x80, 0xff, 0x20, 0x0a, rng.u32() & 0xff]);
    return b;
  }
  if (r < 60 && n >= 8) {
    const size = rng.pick([2, 4, 8]);
    const o = rng.chance(0.5) ? rng.int(n - size + 1) & ~(size - 1) : rng.int(n - size + 1);
    const f = { off: o, size, le: rng.chance(0.7) };
    writeField(b, f, interesting(rng, size, readField(b, f), n));
    return b;
  }
  if (r < 68) {
    // Truncate: anywhere, or just before/after a field.
    if (fields.length && rng.chance(0.5)) {
      const f = rng.pick(fields);
      return b.slice(0, Math.max(0, Math.min(n, f.off + rng.int(f.size + 2) - 1)));
    }
    return b.slice(0, rng.int(n + 1));
  }
  if (r < 72) {
    const k = rng.pick([1, 3, 8, 64, 512, 4096, 65536]);
    const tail = rng.chance(0.5) ? new Uint8Array(k) : rng.bytes(Math.min(k, 4096));
    return cat(b, tail);
  }
  if (r < 77 && n > 1) {
    const a = rng.int(n);
    const len = Math.min(n - a, rng.pick([1, 4, 16, 64, 512, rng.int(n)]));
    return cat(b.subarray(0, a), b.subarray(a + len));
  }
  if (r < 82) {
    const a = rng.int(n + 1);
    const ins = rng.chance(0.5) ? rng.bytes(rng.pick([1, 4, 16, 100])) : b.slice(rng.int(n + 1), rng.int(n + 1));
    return cat(cat(b.subarray(0, a), ins), b.subarray(a));
  }
  if (r < 87 && n > 8) {
    // Copy a chunk over another place.
    const s = rng.int(n), d = rng.int(n);
    const len = Math.min(n - s, n - d, rng.pick([4, 8, 64, 256]));
    b.copyWithin(d, s, s + len);
    return b;
  }
  const other = rng.pick(pool).bytes;
  if (r < 94) {
    // Splice: our head and another seed's tail.
    const a = rng.int(n + 1);
    const t = rng.int(other.length + 1);
    return cat(b.subarray(0, a), other.subarray(t));
  }
  // Overwrite with the other seed's bytes at the same offset.
  const a = rng.int(Math.max(1, Math.min(n, other.length)));
  const len = Math.min(n - a, other.length - a, rng.pick([4, 16, 64, 1024]));
  if (len > 0) b.set(other.subarray(a, a + len), a);
  return b;
}

/** A mutant of `seed`, `rng`-determined. */
export function mutate(rng, seed, pool) {
  let b = seed.bytes.slice();
  for (let k = rng.count(6); k > 0; k--) {
    b = once(rng, b, seed.fields, pool);
    if (b.length > MAX_LEN) b = b.slice(0, MAX_LEN);
  }
  if (seed.fixup && rng.chance(0.75)) fixup(seed.fixup, b);
  return b;
}

export function fixup(kind, b) {
  try {
    if (kind === "multiboot") fixMultiboot(b);
    else if (kind === "multiboot2") fixMultiboot2(b);
    else if (kind === "uimage") fixUImage(b, true);
    else if (kind === "gzip") fixGzip(b);
  } catch {
    // a fixup is best effort
  }
}
