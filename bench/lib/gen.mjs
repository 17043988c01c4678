// Bench inputs, generated at bench time, deterministic (fixed seeds), in plain JS with no Node
// built-ins so the Chromium page builds the very same bytes. Independent of src/: the ELF, x86
// relocs, arm64 Image and uImage layouts are written here from their specs.

export const MiB = 1024 * 1024;

/** Fills `u8` with xorshift32 words (incompressible, like encrypted or already compressed data). */
export function fillRandom(u8, seed = 0x9e3779b9) {
  const words = new Uint32Array(u8.buffer, u8.byteOffset, u8.byteLength >>> 2);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    words[i] = x;
  }
  for (let i = words.length * 4; i < u8.length; i++) u8[i] = i * 131;
  return u8;
}

/**
 * Fills `u8` with code-like data that gzip -9 squeezes to about a third, as it does a Linux
 * Image (32% here): runs of words repeated from the last few KiB (what LZ77 finds in real code),
 * words from a small dictionary, zeros and noise.
 */
export function fillCode(u8, seed = 12345) {
  const words = new Uint32Array(u8.buffer, u8.byteOffset, u8.byteLength >>> 2);
  let x = seed >>> 0 || 1;
  const next = () => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return x;
  };
  const dict = new Uint32Array(1024);
  for (let i = 0; i < dict.length; i++) dict[i] = next();
  for (let i = 0; i < words.length; ) {
    const r = next();
    if (i >= 2048 && (r & 63) < 6) {
      // A repeated run (6 times in 64): 4-35 words from up to 8 KiB back.
      const len = Math.min(words.length - i, 4 + ((r >>> 3) & 31));
      const from = i - 1 - (next() % 2048);
      for (let k = 0; k < len; k++) words[i + k] = words[from + k];
      i += len;
    } else {
      const k = (r >>> 8) & 7;
      words[i++] = k < 1 ? 0 : k < 5 ? dict[(r >>> 12) & 1023] : next();
    }
  }
  for (let i = words.length * 4; i < u8.length; i++) u8[i] = 0;
  return u8;
}

// ---------------------------------------------------------------------------------------------
// ELF64 little-endian writer (System V gABI: ELF header 64 bytes, program headers 56 bytes).

const PT_LOAD = 1, PT_DYNAMIC = 2;
const DT_NULL = 0n, DT_RELA = 7n, DT_RELASZ = 8n, DT_RELAENT = 9n;
export const R_X86_64_RELATIVE = 8;
const EM_X86_64 = 62;

function writeHeaders(out, { type, machine, entry, phdrs }) {
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  out.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0);
  dv.setUint16(16, type, true);
  dv.setUint16(18, machine, true);
  dv.setUint32(20, 1, true);
  dv.setBigUint64(24, entry, true);
  dv.setBigUint64(32, 64n, true); // e_phoff
  dv.setBigUint64(40, 0n, true); // e_shoff: no section headers
  dv.setUint16(52, 64, true);
  dv.setUint16(54, 56, true);
  dv.setUint16(56, phdrs.length, true);
  dv.setUint16(58, 64, true);
  phdrs.forEach((p, i) => {
    const o = 64 + i * 56;
    dv.setUint32(o, p.type, true);
    dv.setUint32(o + 4, p.flags ?? 6, true);
    dv.setBigUint64(o + 8, BigInt(p.offset), true);
    dv.setBigUint64(o + 16, BigInt(p.vaddr), true);
    dv.setBigUint64(o + 24, BigInt(p.paddr), true);
    dv.setBigUint64(o + 32, BigInt(p.filesz), true);
    dv.setBigUint64(o + 40, BigInt(p.memsz), true);
    dv.setBigUint64(o + 48, BigInt(p.align ?? 0x1000), true);
  });
}

const alignUp = (v, a) => Math.ceil(v / a) * a;

/**
 * Case 3: an ELF64 EXEC with `nseg` PT_LOADs of `filesz` file bytes each, each followed by
 * `bss` bytes of BSS, linked back to back from `paddr`. Returns the file and the load plan in
 * file terms (copies/zeros relative to the image start) for the C baseline.
 */
export function segmentsElf({ nseg = 4, filesz, bss, paddr = 0x100000, seed = 3 }) {
  const dataOff = 0x1000;
  const size = dataOff + nseg * filesz;
  const out = new Uint8Array(size);
  fillRandom(out.subarray(dataOff), seed);
  const phdrs = [];
  const copies = [];
  const zeros = [];
  for (let i = 0; i < nseg; i++) {
    const rel = i * (filesz + bss);
    phdrs.push({ type: PT_LOAD, flags: i === 0 ? 5 : 6, offset: dataOff + i * filesz, vaddr: paddr + rel, paddr: paddr + rel, filesz, memsz: filesz + bss });
    copies.push({ dst: rel, src: dataOff + i * filesz, len: filesz });
    if (bss) zeros.push({ dst: rel + filesz, len: bss });
  }
  writeHeaders(out, { type: 2, machine: EM_X86_64, entry: BigInt(paddr), phdrs });
  return { bytes: out, paddr, imageSize: nseg * (filesz + bss), copies, zeros };
}

/**
 * Case 4: a position-independent ELF64 (ET_DYN, x86-64) linked at 0 with `count`
 * R_X86_64_RELATIVE entries in a DT_RELA table. Segment 0 (R) holds the headers, the dynamic
 * array and the table; segment 1 (RW, `dataSize` bytes) holds the sites: 8-byte aligned,
 * ascending (as linkers emit them with -z combreloc), at random gaps.
 */
export function pieElf({ count, dataSize, seed = 4 }) {
  const dynOff = 0x1000;
  const dynSize = 4 * 16;
  const tableOff = 0x2000;
  const seg0Size = alignUp(tableOff + count * 24, 0x1000);
  const dataVaddr = alignUp(seg0Size, 0x200000);
  const dataOff = seg0Size;
  if (count * 8 > dataSize) throw new Error(`${count} sites do not fit in ${dataSize} bytes`);
  const out = new Uint8Array(dataOff + dataSize);
  fillRandom(out.subarray(dataOff), seed);
  const dv = new DataView(out.buffer);
  // The sites: `count` distinct 8-byte slots out of dataSize/8, ascending, gaps uniform random.
  const slots = dataSize / 8;
  let x = seed * 2654435761 >>> 0 || 1;
  const rnd = () => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x; };
  const t32 = new Uint32Array(out.buffer, tableOff, count * 6);
  let slot = 0;
  const spare = slots - count;
  let left = spare;
  for (let i = 0; i < count; i++) {
    // Spread the spare slots: average gap spare/count, drawn uniformly in [0, 2·avg].
    const avg = left / (count - i);
    const gap = Math.min(left, Math.floor((rnd() / 2 ** 32) * 2 * avg + 0.5));
    left -= gap;
    slot += gap;
    const site = dataVaddr + slot * 8;
    slot++;
    const addend = (rnd() % seg0Size) >>> 0; // a pointer into the image, as link-time data holds
    t32[i * 6] = site; t32[i * 6 + 1] = 0;
    t32[i * 6 + 2] = R_X86_64_RELATIVE; t32[i * 6 + 3] = 0;
    t32[i * 6 + 4] = addend; t32[i * 6 + 5] = 0;
    dv.setBigUint64(dataOff + (site - dataVaddr), BigInt(addend), true); // ld writes the addend there too
  }
  const dyn = [[DT_RELA, BigInt(tableOff)], [DT_RELASZ, BigInt(count * 24)], [DT_RELAENT, 24n], [DT_NULL, 0n]];
  dyn.forEach(([tag, val], i) => {
    dv.setBigUint64(dynOff + i * 16, tag, true);
    dv.setBigUint64(dynOff + i * 16 + 8, val, true);
  });
  const phdrs = [
    { type: PT_LOAD, flags: 4, offset: 0, vaddr: 0, paddr: 0, filesz: seg0Size, memsz: seg0Size, align: 0x200000 },
    { type: PT_LOAD, flags: 6, offset: dataOff, vaddr: dataVaddr, paddr: dataVaddr, filesz: dataSize, memsz: dataSize, align: 0x200000 },
    { type: PT_DYNAMIC, flags: 6, offset: dynOff, vaddr: dynOff, paddr: dynOff, filesz: dynSize, memsz: dynSize, align: 8 },
  ];
  writeHeaders(out, { type: 3, machine: EM_X86_64, entry: 0n, phdrs });
  return {
    bytes: out, tableOff, count, vbase: 0, imageSize: dataVaddr + dataSize,
    segs: [[0, seg0Size], [dataVaddr, dataVaddr + dataSize]],
    loads: [{ dst: 0, src: 0, len: seg0Size }, { dst: dataVaddr, src: dataOff, len: dataSize }],
  };
}

/**
 * Case 4b: an x86-64 kernel ELF (EXEC, linked at 0xffffffff81000000 / paddr 16 MiB, one RWX
 * PT_LOAD of `imageSize` bytes) and its Linux `relocs` data (arch/x86/tools/relocs format:
 * 0, 64-bit sites…, 0, inverse 32-bit sites…, 0, 32-bit sites…; read backwards by the loader)
 * with `count` entries: 50% 64-bit, 10% inverse 32-bit, 40% 32-bit, each group ascending.
 */
export function x86Kernel({ count, imageSize, seed = 5 }) {
  const VBASE = 0xffffffff81000000n;
  const PBASE = 0x1000000;
  const dataOff = 0x1000;
  const kernel = new Uint8Array(dataOff + imageSize);
  fillRandom(kernel.subarray(dataOff), seed);
  writeHeaders(kernel, {
    type: 2, machine: EM_X86_64, entry: VBASE,
    phdrs: [{ type: PT_LOAD, flags: 7, offset: dataOff, vaddr: VBASE, paddr: PBASE, filesz: imageSize, memsz: imageSize, align: 0x200000 }],
  });
  const vbase32 = Number(VBASE & 0xffffffffn);
  let x = seed * 2654435761 >>> 0 || 1;
  const rnd = () => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x; };
  const g = [[], [], []]; // op 0 (32-bit), 1 (inverse 32-bit), 2 (64-bit)
  const slots = imageSize / 8;
  let slot = 0;
  let left = slots - count;
  for (let i = 0; i < count; i++) {
    const avg = left / (count - i);
    const gap = Math.min(left, Math.floor((rnd() / 2 ** 32) * 2 * avg + 0.5));
    left -= gap;
    slot += gap;
    const r = rnd() % 10;
    const op = r < 4 ? 0 : r < 5 ? 1 : 2;
    g[op].push((vbase32 + slot * 8) >>> 0);
    slot++;
  }
  const words = [0, ...g[2], 0, ...g[1], 0, ...g[0]];
  const relocs = new Uint8Array(words.length * 4);
  const rv = new DataView(relocs.buffer);
  words.forEach((w, i) => rv.setUint32(i * 4, w, true));
  return {
    kernel, relocs, vbase32, pbase: PBASE, imageSize, counts: g.map((a) => a.length),
    segs: [[0, imageSize]], loads: [{ dst: 0, src: dataOff, len: imageSize }],
  };
}

// ---------------------------------------------------------------------------------------------
// arm64 Image (Linux Documentation/arch/arm64/booting.rst): 64-byte header, magic "ARM\x64" at
// 0x38, text_offset at 0x08, image_size at 0x10, flags at 0x18 (bit 0 = 0: little-endian,
// bits 1-2 = 1: 4K pages).
export function arm64Image({ size, bss = 0, seed = 6 }) {
  const out = new Uint8Array(size);
  fillCode(out, seed);
  const dv = new DataView(out.buffer);
  out.fill(0, 0, 64);
  dv.setUint32(0, 0x14000010, true); // code0: b +0x40 (a branch past the header)
  dv.setBigUint64(8, 0n, true); // text_offset
  dv.setBigUint64(16, BigInt(size + bss), true); // image_size
  dv.setBigUint64(24, 2n, true); // flags: LE, 4K pages
  dv.setUint32(0x38, 0x644d5241, true);
  return out;
}

// uImage legacy header (U-Boot include/image.h, struct legacy_img_hdr): 64 bytes big-endian.
export const IH_MAGIC = 0x27051956;
export function uImage({ payload, load, ep, crc32, name = "bench kernel" }) {
  const out = new Uint8Array(64 + payload.length);
  out.set(payload, 64);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, IH_MAGIC);
  dv.setUint32(8, 1700000000); // ih_time
  dv.setUint32(12, payload.length); // ih_size
  dv.setUint32(16, load); // ih_load
  dv.setUint32(20, ep); // ih_ep
  dv.setUint32(24, crc32(payload)); // ih_dcrc
  out[28] = 5; // ih_os: IH_OS_LINUX
  out[29] = 22; // ih_arch: IH_ARCH_ARM64
  out[30] = 2; // ih_type: IH_TYPE_KERNEL
  out[31] = 0; // ih_comp: IH_COMP_NONE
  for (let i = 0; i < Math.min(31, name.length); i++) out[32 + i] = name.charCodeAt(i);
  dv.setUint32(4, crc32(out.subarray(0, 64))); // ih_hcrc over the header with ih_hcrc = 0
  return out;
}
