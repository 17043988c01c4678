// guest-image Wasm core.
//
// Allocation-free functions over raw offsets in the one imported linear memory (`env.memory`).
// Nothing here allocates, uses strings or asserts, so the module has no data segment and no
// import besides the memory: every byte of linear memory can be guest RAM (test/core.test.ts
// checks both). The TypeScript wrapper (src/core/) validates every argument before calling in;
// these loops trust their inputs.

// ---------------------------------------------------------------------------------------------
// Bulk memory: compiled to the bulk-memory instructions, which run at memcpy/memset speed.

export function copy(dst: usize, src: usize, len: usize): void {
  memory.copy(dst, src, len);
}

export function fill(dst: usize, value: u8, len: usize): void {
  memory.fill(dst, value, len);
}

// ---------------------------------------------------------------------------------------------
// CRC-32 as used by zlib, gzip and U-Boot (reflected polynomial 0xEDB88320, initial value and
// final xor 0xFFFFFFFF), slicing-by-8. The 8 KiB table lives at a caller-given scratch offset.

const CRC32_POLY: u32 = 0xedb88320;

export function crc32Init(table: usize): void {
  for (let i: u32 = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? CRC32_POLY ^ (c >>> 1) : c >>> 1;
    store<u32>(table + (<usize>i << 2), c);
  }
  for (let i: u32 = 0; i < 256; i++) {
    let c = load<u32>(table + (<usize>i << 2));
    for (let t: usize = 1; t < 8; t++) {
      c = load<u32>(table + ((<usize>(c & 0xff)) << 2)) ^ (c >>> 8);
      store<u32>(table + (t << 10) + (<usize>i << 2), c);
    }
  }
}

/** Continues a CRC-32 (zlib's `crc32(prev, buf, len)` semantics: pass 0 to start). */
export function crc32(table: usize, ptr: usize, len: usize, prev: u32): u32 {
  let c = ~prev;
  let p = ptr;
  const end = ptr + len;
  while (p + 8 <= end) {
    const lo = load<u32>(p) ^ c;
    const hi = load<u32>(p, 4);
    c =
      load<u32>(table + (7 << 10) + ((<usize>(lo & 0xff)) << 2)) ^
      load<u32>(table + (6 << 10) + ((<usize>((lo >>> 8) & 0xff)) << 2)) ^
      load<u32>(table + (5 << 10) + ((<usize>((lo >>> 16) & 0xff)) << 2)) ^
      load<u32>(table + (4 << 10) + ((<usize>(lo >>> 24)) << 2)) ^
      load<u32>(table + (3 << 10) + ((<usize>(hi & 0xff)) << 2)) ^
      load<u32>(table + (2 << 10) + ((<usize>((hi >>> 8) & 0xff)) << 2)) ^
      load<u32>(table + (1 << 10) + ((<usize>((hi >>> 16) & 0xff)) << 2)) ^
      load<u32>(table + ((<usize>(hi >>> 24)) << 2));
    p += 8;
  }
  while (p < end) {
    c = load<u32>(table + ((<usize>((c ^ <u32>load<u8>(p)) & 0xff)) << 2)) ^ (c >>> 8);
    p++;
  }
  return ~c;
}

// ---------------------------------------------------------------------------------------------
// Relocation.
//
// A relocation site is given as a link-time address V; its offset inside the loaded image is
// V - vbase (wrapping). A site of `width` bytes may only be patched when it lies wholly inside
// one of the image's segments: `segs` holds `nsegs` pairs of u64 image-relative offsets
// [lo, hi). The check functions run over the whole table before anything is written and
// return the index of the first bad entry, or -1.

// The segment that held the previous site: tables are sorted, so it nearly always holds the next.
let lastSeg: u32 = 0;

@inline function inSegments(off: u64, width: u64, segs: usize, nsegs: u32): bool {
  if (lastSeg < nsegs) {
    const s = segs + (<usize>lastSeg << 4);
    const lo = load<u64>(s);
    const hi = load<u64>(s, 8);
    if (off >= lo && off < hi && hi - off >= width) return true;
  }
  return inSegmentsSlow(off, width, segs, nsegs);
}

function inSegmentsSlow(off: u64, width: u64, segs: usize, nsegs: u32): bool {
  for (let i: u32 = 0; i < nsegs; i++) {
    const s = segs + (<usize>i << 4);
    const lo = load<u64>(s);
    const hi = load<u64>(s, 8);
    if (off >= lo && off < hi && hi - off >= width) {
      lastSeg = i;
      return true;
    }
  }
  return false;
}

@inline function rd32(p: usize, be: bool): u32 {
  const v = load<u32>(p);
  return be ? bswap<u32>(v) : v;
}

@inline function rd64(p: usize, be: bool): u64 {
  const v = load<u64>(p);
  return be ? bswap<u64>(v) : v;
}

@inline function rdWord(p: usize, is64: bool, be: bool): u64 {
  return is64 ? rd64(p, be) : <u64>rd32(p, be);
}

@inline function relType(info: u64, is64: bool): u32 {
  // ELF64_R_TYPE = info & 0xffffffff; ELF32_R_TYPE = info & 0xff (System V ABI).
  return is64 ? <u32>info : <u32>(info & 0xff);
}

// RELATIVE entries seen by the last check (elfRelocCheck, relrCheck): the sites the apply will patch.
let lastCount: u32 = 0;

/** The number of sites the last elfRelocCheck or relrCheck found to patch. */
export function relocCount(): u32 {
  return lastCount;
}

/**
 * ELF dynamic relocations (SHT_REL/SHT_RELA entries). Every RELATIVE entry must patch a site
 * inside a segment; with `strict`, every entry must also be `relativeType` or R_*_NONE (0) —
 * without it (an image at its link address) other types are the dynamic linker's and are left
 * alone. Returns the index of the first bad entry or -1; relocCount() then gives the RELATIVE
 * entries.
 */
export function elfRelocCheck(
  table: usize, count: u32, entsize: u32, is64: bool, be: bool,
  relativeType: u32, strict: bool, vbase: u64, segs: usize, nsegs: u32,
): i32 {
  if (is64 && !be) return rela64leCheck(table, count, entsize, relativeType, strict, vbase, segs, nsegs);
  const word: usize = is64 ? 8 : 4;
  const width: u64 = is64 ? 8 : 4;
  let n: u32 = 0;
  for (let i: u32 = 0; i < count; i++) {
    const e = table + <usize>i * <usize>entsize;
    const t = relType(rdWord(e + word, is64, be), is64);
    if (t != relativeType) {
      if (strict && t != 0) return <i32>i;
      continue;
    }
    const v = rdWord(e, is64, be);
    let off = v - vbase;
    if (!is64) off &= 0xffffffff;
    if (!inSegments(off, width, segs, nsegs)) return <i32>i;
    n++;
  }
  lastCount = n;
  return -1;
}

/**
 * Applies the RELATIVE entries checked by elfRelocCheck: the pointer-sized site becomes
 * (RELA: r_addend, REL: its current contents) + delta, in the image's byte order.
 * Returns the number of sites patched.
 */
export function elfRelocApply(
  table: usize, count: u32, entsize: u32, is64: bool, be: bool, rela: bool,
  relativeType: u32, vbase: u64, image: usize, delta: u64,
): u32 {
  if (is64 && !be && rela) return rela64leApply(table, count, entsize, relativeType, vbase, image, delta);
  const word: usize = is64 ? 8 : 4;
  let n: u32 = 0;
  for (let i: u32 = 0; i < count; i++) {
    const e = table + <usize>i * <usize>entsize;
    if (relType(rdWord(e + word, is64, be), is64) != relativeType) continue;
    const v = rdWord(e, is64, be);
    let off = v - vbase;
    if (!is64) off &= 0xffffffff;
    const site = image + <usize>off;
    if (is64) {
      const base = rela ? rd64(e + 16, be) : rd64(site, be);
      const val = base + delta;
      store<u64>(site, be ? bswap<u64>(val) : val);
    } else {
      const base = rela ? rd32(e + 8, be) : rd32(site, be);
      const val = base + <u32>delta;
      store<u32>(site, be ? bswap<u32>(val) : val);
    }
    n++;
  }
  return n;
}

// The ELF64 little-endian loops are also exported as one small function of their own (`apply`
// selects the pass): the wrapper calls it directly, so V8 optimises just these two loops, once,
// while the check pass runs, and the apply pass after it already runs the optimised code.

/**
 * mode 0: rela64leCheck (returns the bad index or -1); mode 1: rela64leApply (returns the count);
 * mode 2: both, fused per block of CHECK_BLOCK entries: a block is checked, then applied while it
 * is still in cache, so the table is read from memory once. Returns the bad index or -1 (with
 * relocCount() the sites patched); a bad entry stops it with the blocks before it applied, which
 * the caller undoes. Only for `segs` that exclude the table itself (no site may land in an entry
 * not yet checked).
 */
export function rela64le(
  mode: u32, table: usize, count: u32, entsize: u32, relativeType: u32, strict: bool,
  vbase: u64, segs: usize, nsegs: u32, image: usize, delta: u64,
): i32 {
  if (mode == 1) return <i32>rela64leApply(table, count, entsize, relativeType, vbase, image, delta);
  if (mode == 0) return rela64leCheck(table, count, entsize, relativeType, strict, vbase, segs, nsegs);
  let n: u32 = 0;
  for (let first: u32 = 0; first < count; first += CHECK_BLOCK) {
    const k = count - first < CHECK_BLOCK ? count - first : CHECK_BLOCK;
    const start = table + <usize>first * <usize>entsize;
    const bad = rela64leCheck(start, k, entsize, relativeType, strict, vbase, segs, nsegs);
    if (bad >= 0) {
      lastCount = n;
      return <i32>first + bad;
    }
    n += rela64leApply(start, k, entsize, relativeType, vbase, image, delta);
  }
  lastCount = n;
  return -1;
}

/** Entries per block of rela64leCheck's branch-free pass (24 KiB of RELA entries). */
const CHECK_BLOCK: u32 = 1024;

/**
 * elfRelocCheck for ELF64 little-endian, in blocks. A branch-free pass over a block assumes every
 * site in it lies in the segment that held the last site seen (tables are sorted, so a block
 * rarely leaves it), counting the RELATIVE entries on the way; only a block where that fails is
 * checked again entry by entry, which moves on to the next segment or finds the bad index.
 */
function rela64leCheck(table: usize, count: u32, entsize: u32, relativeType: u32, strict: bool, vbase: u64, segs: usize, nsegs: u32): i32 {
  const other: u32 = strict ? 1 : 0; // whether a type other than RELATIVE and NONE is bad
  let n: u32 = 0;
  for (let first: u32 = 0; first < count; first += CHECK_BLOCK) {
    const k = count - first < CHECK_BLOCK ? count - first : CHECK_BLOCK;
    const start = table + <usize>first * <usize>entsize;
    const end = start + <usize>k * <usize>entsize;
    if (nsegs > 0) {
      const seg = lastSeg < nsegs ? lastSeg : 0;
      const lo = load<u64>(segs + (<usize>seg << 4));
      const hi = load<u64>(segs + (<usize>seg << 4), 8);
      if (hi - lo >= 8) {
        const span = hi - lo - 8; // off - lo <= span  ⇔  [off, off + 8) lies in [lo, hi)
        const base = vbase + lo;
        let bad: u32 = 0;
        let c: u32 = 0;
        let e = start;
        // Two entries a step: independent loads, one loop branch.
        const step2 = <usize>entsize << 1;
        for (; e + step2 <= end; e += step2) {
          const t0 = <u32>load<u64>(e, 8);
          const t1 = <u32>load<u64>(e + entsize, 8);
          const r0 = <u32>(t0 == relativeType);
          const r1 = <u32>(t1 == relativeType);
          bad |= (r0 & <u32>(load<u64>(e) - base > span)) | (other & (r0 ^ 1) & <u32>(t0 != 0));
          bad |= (r1 & <u32>(load<u64>(e + entsize) - base > span)) | (other & (r1 ^ 1) & <u32>(t1 != 0));
          c += r0 + r1;
        }
        for (; e < end; e += entsize) {
          const t = <u32>load<u64>(e, 8);
          const r = <u32>(t == relativeType);
          bad |= (r & <u32>(load<u64>(e) - base > span)) | (other & (r ^ 1) & <u32>(t != 0));
          c += r;
        }
        if (bad == 0) {
          n += c;
          continue;
        }
      }
    }
    let e = start;
    for (let i: u32 = 0; i < k; i++, e += entsize) {
      const t = <u32>load<u64>(e, 8);
      if (t != relativeType) {
        if (strict && t != 0) return <i32>(first + i);
        continue;
      }
      if (!inSegments(load<u64>(e) - vbase, 8, segs, nsegs)) return <i32>(first + i);
      n++;
    }
  }
  lastCount = n;
  return -1;
}

/** elfRelocApply for ELF64 little-endian RELA (exported: see rela64leCheck). */
function rela64leApply(table: usize, count: u32, entsize: u32, relativeType: u32, vbase: u64, image: usize, delta: u64): u32 {
  let n: u32 = 0;
  let e = table;
  for (let i: u32 = 0; i < count; i++, e += entsize) {
    if (<u32>load<u64>(e, 8) != relativeType) continue;
    store<u64>(image + <usize>(load<u64>(e) - vbase), load<u64>(e, 16) + delta);
    n++;
  }
  return n;
}

// ---------------------------------------------------------------------------------------------
// DT_RELR packed relative relocations (System V gABI, "Relocation", SHT_RELR). The table is a
// sequence of words. An even word is an address: the word-sized site there is relocated and the
// next site is one word further. An odd word is a bitmap: bit i (1 ≤ i < word bits) set means the
// site (i − 1) words after the current one is relocated; then the current site moves on by
// (word bits − 1) words. Each site holds its addend (like REL): *site += delta.

// Where the next site is after the words seen so far, so a table can be passed in parts (`cont`).
let relrWhere: u64 = 0;
let relrStarted = false;

/**
 * Checks a RELR table of `count` words: a bitmap before the first address, or any site not lying
 * wholly inside a segment, makes the entry bad. Returns its index or -1; relocCount() then gives
 * the number of sites. With `cont`, the words continue the ones passed in the last call.
 */
export function relrCheck(table: usize, count: u32, is64: bool, be: bool, vbase: u64, segs: usize, nsegs: u32, cont: bool): i32 {
  const word: u64 = is64 ? 8 : 4;
  const bits: u32 = is64 ? 63 : 31;
  let where: u64 = cont ? relrWhere : 0;
  let started = cont ? relrStarted : false;
  let n: u32 = 0;
  for (let i: u32 = 0; i < count; i++) {
    const v = rdWord(table + <usize>i * <usize>word, is64, be);
    if ((v & 1) == 0) {
      let off = v - vbase;
      if (!is64) off &= 0xffffffff;
      if (!inSegments(off, word, segs, nsegs)) return <i32>i;
      where = v + word;
      started = true;
      n++;
    } else {
      if (!started) return <i32>i;
      let m = v >> 1;
      let s = where;
      while (m != 0) {
        const k = <u64>ctz<u64>(m);
        s += k * word;
        let off = s - vbase;
        if (!is64) off &= 0xffffffff;
        if (!inSegments(off, word, segs, nsegs)) return <i32>i;
        n++;
        s += word;
        m = k == 63 ? 0 : m >> (k + 1);
      }
      where += <u64>bits * word;
    }
  }
  relrWhere = where;
  relrStarted = started;
  lastCount = n;
  return -1;
}

@inline function relrPatch(site: usize, is64: bool, be: bool, delta: u64): void {
  if (is64) {
    const v = rd64(site, be) + delta;
    store<u64>(site, be ? bswap<u64>(v) : v);
  } else {
    const v = rd32(site, be) + <u32>delta;
    store<u32>(site, be ? bswap<u32>(v) : v);
  }
}

/** Applies a RELR table checked by relrCheck: every site += delta. Returns the sites patched. */
export function relrApply(table: usize, count: u32, is64: bool, be: bool, vbase: u64, image: usize, delta: u64, cont: bool): u32 {
  const word: u64 = is64 ? 8 : 4;
  const bits: u32 = is64 ? 63 : 31;
  const mask: u64 = is64 ? 0xffffffffffffffff : 0xffffffff;
  let where: u64 = cont ? relrWhere : 0;
  let n: u32 = 0;
  for (let i: u32 = 0; i < count; i++) {
    const v = rdWord(table + <usize>i * <usize>word, is64, be);
    if ((v & 1) == 0) {
      relrPatch(image + <usize>((v - vbase) & mask), is64, be, delta);
      where = v + word;
      n++;
    } else {
      let m = v >> 1;
      let s = where;
      while (m != 0) {
        const k = <u64>ctz<u64>(m);
        s += k * word;
        relrPatch(image + <usize>((s - vbase) & mask), is64, be, delta);
        n++;
        s += word;
        m = k == 63 ? 0 : m >> (k + 1);
      }
      where += <u64>bits * word;
    }
  }
  relrWhere = where;
  return n;
}

/**
 * Linux x86 `relocs` data (arch/x86/tools/relocs): `count` little-endian u32 link-time virtual
 * addresses (truncated to 32 bits), each naming a site of `width` (4 or 8) bytes.
 */
export function x86RelocCheck(
  table: usize, count: u32, vbase32: u32, width: u32, segs: usize, nsegs: u32,
): i32 {
  // Branch-free pass assuming the last segment seen (see rela64leCheck), then the exact one.
  if (nsegs > 0) {
    const seg = lastSeg < nsegs ? lastSeg : 0;
    const lo = load<u64>(segs + (<usize>seg << 4));
    const hi = load<u64>(segs + (<usize>seg << 4), 8);
    if (hi - lo >= <u64>width) {
      const span = hi - lo - <u64>width;
      let bad: u32 = 0;
      const end = table + (<usize>count << 2);
      for (let p = table; p < end; p += 4) bad |= <u32>(<u64>(load<u32>(p) - vbase32) - lo > span);
      if (bad == 0) return -1;
    }
  }
  for (let i: u32 = 0; i < count; i++) {
    const off: u64 = <u64>(load<u32>(table + (<usize>i << 2)) - vbase32);
    if (!inSegments(off, <u64>width, segs, nsegs)) return <i32>i;
  }
  return -1;
}

/**
 * Applies one group of x86 relocs the way arch/x86/boot/compressed/misc.c does:
 * kind 0: *(u32*)site += delta; kind 1 (inverse 32-bit): *(i32*)site -= delta;
 * kind 2: *(u64*)site += delta.
 */
export function x86RelocApply(
  table: usize, count: u32, vbase32: u32, image: usize, kind: u32, delta: u64,
): void {
  // One loop per kind (the constant folds away after inlining).
  if (kind == 0) x86Loop(table, count, vbase32, image, 0, delta);
  else if (kind == 1) x86Loop(table, count, vbase32, image, 1, delta);
  else x86Loop(table, count, vbase32, image, 2, delta);
}

@inline function x86Patch(site: usize, kind: u32, d32: u32, delta: u64): void {
  if (kind == 0) store<u32>(site, load<u32>(site) + d32);
  else if (kind == 1) store<u32>(site, load<u32>(site) - d32);
  else store<u64>(site, load<u64>(site) + delta);
}

@inline function x86Loop(table: usize, count: u32, vbase32: u32, image: usize, kind: u32, delta: u64): void {
  const d32 = <u32>delta;
  const end = table + (<usize>count << 2);
  let p = table;
  // Four sites a step, patched in table order: their cache misses overlap (1.3-1.5x on the bench).
  for (; p + 16 <= end; p += 16) {
    const s0 = image + <usize>(load<u32>(p) - vbase32);
    const s1 = image + <usize>(load<u32>(p, 4) - vbase32);
    const s2 = image + <usize>(load<u32>(p, 8) - vbase32);
    const s3 = image + <usize>(load<u32>(p, 12) - vbase32);
    x86Patch(s0, kind, d32, delta);
    x86Patch(s1, kind, d32, delta);
    x86Patch(s2, kind, d32, delta);
    x86Patch(s3, kind, d32, delta);
  }
  for (; p < end; p += 4) x86Patch(image + <usize>(load<u32>(p) - vbase32), kind, d32, delta);
}

// ---------------------------------------------------------------------------------------------
// Zero test, used to decide whether a range about to be overwritten must be saved for rollback
// (fresh guest RAM is all zero and can simply be zeroed again).

/** Returns 1 if [ptr, ptr + len) holds only zero bytes. */
export function isZero(ptr: usize, len: usize): bool {
  let p = ptr;
  const end = ptr + len;
  while (p < end && (p & 15) != 0) {
    if (load<u8>(p) != 0) return false;
    p++;
  }
  while (p + 64 <= end) {
    const a = v128.or(v128.load(p), v128.load(p, 16));
    const b = v128.or(v128.load(p, 32), v128.load(p, 48));
    if (v128.any_true(v128.or(a, b))) return false;
    p += 64;
  }
  while (p < end) {
    if (load<u8>(p) != 0) return false;
    p++;
  }
  return true;
}
export * from "./lzo";
export * from "./zstd";
export * from "./lz4";
