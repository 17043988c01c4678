// The pure-JS relocation baseline: the same relocation lists the Wasm core applies, in the same
// two passes (check every entry against the segments, then patch), written as fast as we know how
// in JS on V8: Uint32Array views (no BigInt, no DataView on the aligned path), 64-bit adds as two
// 32-bit halves with a carry, unaligned sites through a DataView.

function inSegments(off, width, segs) {
  for (let i = 0; i < segs.length; i++) {
    const s = segs[i];
    if (off >= s[0] && off < s[1] && s[1] - off >= width) return true;
  }
  return false;
}

function u32view(bytes) {
  if (bytes.byteOffset % 4 === 0) return new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >>> 2);
  return new Uint32Array(bytes.slice().buffer);
}

// x86 relocs hold kernel addresses (0x81xxxxxx): read as Uint32 they exceed the small-integer
// range and V8 computes with doubles. Read as Int32 and subtract the (signed) base instead: the
// difference is the small image offset, plain int32 arithmetic.
function i32view(bytes) {
  if (bytes.byteOffset % 4 === 0) return new Int32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >>> 2);
  return new Int32Array(bytes.slice().buffer);
}

/**
 * ELF64 little-endian RELA, R_X86_64_RELATIVE (8) or NONE (0). `mem` is linear memory as a
 * Uint8Array, `image` the linear offset of the image, `vbase`/`delta` numbers (< 2^32 here; the
 * high halves are handled anyway). Returns -1 or the index of the first bad entry.
 */
export function relaJs(mem, image, table, vbase, delta, segs) {
  const t = u32view(table);
  const count = t.length / 6;
  const vlo = vbase >>> 0, vhi = Math.floor(vbase / 2 ** 32) >>> 0;
  for (let i = 0; i < count; i++) {
    const e = i * 6;
    const type = t[e + 2];
    if (type === 0) continue;
    if (type !== 8) return i;
    const lo = t[e], hi = t[e + 1];
    const rlo = (lo - vlo) >>> 0;
    const rhi = (hi - vhi - (lo < vlo ? 1 : 0)) >>> 0;
    if (rhi !== 0 || !inSegments(rlo, 8, segs)) return i;
  }
  const m32 = new Uint32Array(mem.buffer, 0, mem.buffer.byteLength >>> 2);
  const dv = new DataView(mem.buffer);
  const dlo = delta >>> 0, dhi = Math.floor(delta / 2 ** 32) >>> 0;
  for (let i = 0; i < count; i++) {
    const e = i * 6;
    if (t[e + 2] !== 8) continue;
    const p = image + ((t[e] - vlo) >>> 0);
    const alo = t[e + 4];
    const lo = (alo + dlo) >>> 0;
    const hi = (t[e + 5] + dhi + (lo < alo ? 1 : 0)) >>> 0;
    if ((p & 3) === 0) {
      m32[p >>> 2] = lo;
      m32[(p >>> 2) + 1] = hi;
    } else {
      dv.setUint32(p, lo, true);
      dv.setUint32(p + 4, hi, true);
    }
  }
  return -1;
}

/**
 * Linux x86 relocs groups ({op, entries: Uint8Array of LE u32 link addresses}), applied as
 * arch/x86/boot/compressed/misc.c does: op 0 u32 += delta, 1 i32 -= delta, 2 u64 += delta.
 */
export function x86Js(mem, image, groups, vbase32, delta, segs) {
  const vb = vbase32 | 0;
  for (const g of groups) {
    const w = i32view(g.entries);
    const width = g.op === 2 ? 8 : 4;
    for (let i = 0; i < w.length; i++) if (!inSegments(((w[i] - vb) | 0) >>> 0, width, segs)) return i;
  }
  const m32 = new Int32Array(mem.buffer, 0, mem.buffer.byteLength >>> 2);
  const dv = new DataView(mem.buffer);
  const dlo = delta | 0, dhi = Math.floor(delta / 2 ** 32) | 0;
  for (const g of groups) {
    const w = i32view(g.entries);
    const n = w.length;
    if (g.op === 0 || g.op === 1) {
      const d = g.op === 0 ? dlo : -dlo | 0;
      for (let i = 0; i < n; i++) {
        const p = image + ((w[i] - vb) | 0);
        if ((p & 3) === 0) m32[p >> 2] = (m32[p >> 2] + d) | 0;
        else dv.setInt32(p, (dv.getInt32(p, true) + d) | 0, true);
      }
    } else {
      for (let i = 0; i < n; i++) {
        const p = image + ((w[i] - vb) | 0);
        if ((p & 3) === 0) {
          const q = p >> 2;
          const olo = m32[q] >>> 0;
          const lo = (olo + (dlo >>> 0)) >>> 0;
          m32[q] = lo | 0;
          m32[q + 1] = (m32[q + 1] + dhi + (lo < olo ? 1 : 0)) | 0;
        } else {
          const olo = dv.getUint32(p, true);
          const lo = (olo + (dlo >>> 0)) >>> 0;
          dv.setUint32(p, lo, true);
          dv.setInt32(p + 4, (dv.getInt32(p + 4, true) + dhi + (lo < olo ? 1 : 0)) | 0, true);
        }
      }
    }
  }
  return -1;
}
