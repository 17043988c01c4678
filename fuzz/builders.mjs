// Image builders for the fuzzer and the property tests, written field by field from each format's
// specification, independent of the library's parsers. Every builder returns the bytes and the
// list of header fields it wrote ({ name, off, size, le }), so mutators can aim at real fields.
//
// Specs: GNU Multiboot 0.6.96 §3.1; System V gABI "ELF Header"/"Program Header"/"Dynamic Section";
// Linux Documentation/arch/x86/boot.rst; U-Boot include/image.h; Linux
// drivers/firmware/efi/libstub/zboot-header.S; Documentation/arch/arm64/booting.rst;
// Documentation/arch/riscv/boot-image-header.rst; arch/arm/boot/compressed/head.S (zImage words);
// Devicetree Specification v0.4 ch. 5; RFC 1952 (gzip); Linux buffer-format.rst (cpio newc).
import zlib from "node:zlib";

/** @typedef {{ name: string, off: number, size: 1 | 2 | 4 | 8, le: boolean }} Field */

/** A growable byte buffer that records the fields written into it. */
export class Writer {
  /** @param {number} size */
  constructor(size) {
    this.bytes = new Uint8Array(size);
    this.dv = new DataView(this.bytes.buffer);
    /** @type {Field[]} */
    this.fields = [];
  }
  /** @param {string} name @param {number} off @param {1|2|4|8} size @param {number|bigint} v @param {boolean} [le] */
  set(name, off, size, v, le = true) {
    if (off + size > this.bytes.length) return this; // a field that does not fit is left out
    if (size === 1) this.dv.setUint8(off, Number(BigInt(v) & 0xffn));
    else if (size === 2) this.dv.setUint16(off, Number(BigInt(v) & 0xffffn), le);
    else if (size === 4) this.dv.setUint32(off, Number(BigInt(v) & 0xffffffffn), le);
    else this.dv.setBigUint64(off, BigInt(v) & 0xffffffffffffffffn, le);
    if (name) this.fields.push({ name, off, size, le });
    return this;
  }
  /** @param {number} off @param {Uint8Array | number[]} b */
  put(off, b) {
    this.bytes.set(b, off);
    return this;
  }
  done() {
    return { bytes: this.bytes, fields: this.fields };
  }
}

/** Deterministic non-zero filler that looks a little like code. */
export function filler(n, seed = 1) {
  const b = new Uint8Array(n);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    b[i] = i % 8 < 5 ? ((i * 7 + seed) & 0xff) | 1 : x & 0xff;
  }
  return b;
}

export const ascii = (s) => Uint8Array.from(s, (c) => c.charCodeAt(0) & 0xff);
export const crc32 = (b, prev = 0) => zlib.crc32(b, prev) >>> 0;

export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Multiboot 1 (GNU Multiboot 0.6.96, 3.1.1 "OS image format", 3.1.2-3.1.4 header fields)

export const MB_MAGIC = 0x1badb002;

/**
 * An a.out-kludge Multiboot kernel (flags bit 16): the header at `hoff`, the whole file loaded
 * at load_addr (header_addr = load_addr + hoff), BSS after it, entry inside.
 */
export function multibootAout(o = {}) {
  const len = o.len ?? 0x2000;
  const hoff = o.hoff ?? 0x40;
  const flags = o.flags ?? (1 << 16) | 0x3;
  const load = o.load_addr ?? 0x100000;
  const w = new Writer(len);
  w.put(0, filler(len, 3));
  w.set("magic", hoff, 4, MB_MAGIC);
  w.set("flags", hoff + 4, 4, flags);
  w.set("checksum", hoff + 8, 4, (-(MB_MAGIC + flags)) >>> 0);
  w.set("header_addr", hoff + 12, 4, o.header_addr ?? load + hoff);
  w.set("load_addr", hoff + 16, 4, load);
  w.set("load_end_addr", hoff + 20, 4, o.load_end_addr ?? load + len);
  w.set("bss_end_addr", hoff + 24, 4, o.bss_end_addr ?? load + len + 0x3000);
  w.set("entry_addr", hoff + 28, 4, o.entry_addr ?? load + 0x100);
  w.set("mode_type", hoff + 32, 4, o.mode_type ?? 0);
  w.set("width", hoff + 36, 4, o.width ?? 1024);
  w.set("height", hoff + 40, 4, o.height ?? 768);
  w.set("depth", hoff + 44, 4, o.depth ?? 32);
  return w.done();
}

/** Recomputes a Multiboot header checksum (magic + flags + checksum ≡ 0 mod 2^32) wherever a magic sits. */
export function fixMultiboot(b) {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let o = 0; o + 12 <= Math.min(b.length, 8192); o += 4) {
    if (dv.getUint32(o, true) === MB_MAGIC) {
      dv.setUint32(o + 8, (-(MB_MAGIC + dv.getUint32(o + 4, true))) >>> 0, true);
      return;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Multiboot 2 (The Multiboot2 Specification 2.0, 3.1.1-3.1.13)

export const MB2_MAGIC = 0xe85250d6;

/**
 * A Multiboot2 header at `hoff` of a `len`-byte image, its tags as the spec lays them out (u16
 * type, u16 flags, u32 size, body; 8-byte aligned; end tag {0, 0, 8}). `tags` is a list of
 * { type, flags?, u32: [...] }; each tag's fields are recorded as "<type>.<i>" so mutators aim at
 * them. With `elfData`, returns the header bytes alone (for an ELF segment).
 */
export function multiboot2(o = {}) {
  const hoff = o.hoff ?? 0x40;
  const tags = [...(o.tags ?? []), { type: 0, u32: [] }];
  let tlen = 0;
  for (const t of tags) tlen = ((tlen + 7) & ~7) + 8 + 4 * (t.u32 ?? []).length;
  const hlen = 16 + tlen;
  const len = o.len ?? Math.max(0x2000, hoff + hlen);
  const w = new Writer(len);
  w.put(0, filler(len, 5));
  w.set("magic", hoff, 4, MB2_MAGIC);
  w.set("architecture", hoff + 4, 4, o.architecture ?? 0);
  w.set("header_length", hoff + 8, 4, o.header_length ?? hlen);
  w.set("checksum", hoff + 12, 4, (-(MB2_MAGIC + (o.architecture ?? 0) + (o.header_length ?? hlen))) >>> 0);
  let p = hoff + 16;
  for (const t of tags) {
    const aligned = hoff + (((p - hoff) + 7) & ~7);
    w.put(p, new Uint8Array(aligned - p)); // padding between tags
    p = aligned;
    const body = t.u32 ?? [];
    w.set(`tag${t.type}.type`, p, 2, t.type);
    w.set(`tag${t.type}.flags`, p + 2, 2, t.flags ?? 0);
    w.set(`tag${t.type}.size`, p + 4, 4, 8 + 4 * body.length);
    body.forEach((v, i) => w.set(`tag${t.type}.${i}`, p + 8 + 4 * i, 4, v));
    p += 8 + 4 * body.length;
  }
  return w.done();
}

/** An address-tag Multiboot2 kernel: the whole file at load_addr, BSS after it, entry inside. */
export function multiboot2Aout(o = {}) {
  const len = o.len ?? 0x2000;
  const hoff = o.hoff ?? 0x40;
  const load = o.load_addr ?? 0x100000;
  const tags = [
    { type: 2, u32: [o.header_addr ?? load + hoff, load, o.load_end_addr ?? load + len, o.bss_end_addr ?? load + len + 0x3000] },
    { type: 3, u32: [o.entry_addr ?? load + 0x100] },
    ...(o.extra ?? []),
  ];
  return multiboot2({ ...o, hoff, len, tags });
}

/** Recomputes a Multiboot2 header checksum wherever an 8-aligned magic sits in the first 32 KiB. */
export function fixMultiboot2(b) {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  for (let o = 0; o + 16 <= Math.min(b.length, 32768); o += 8) {
    if (dv.getUint32(o, true) === MB2_MAGIC) {
      dv.setUint32(o + 12, (-(MB2_MAGIC + dv.getUint32(o + 4, true) + dv.getUint32(o + 8, true))) >>> 0, true);
      return;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// ELF (System V gABI)

export const EM = { i386: 3, arm: 40, x86_64: 62, aarch64: 183, riscv: 243, mips: 8 };
const RELATIVE = { 62: 8, 3: 8, 183: 1027, 40: 23, 243: 3 };

/**
 * @typedef {{ type?: number, flags?: number, vaddr: bigint, paddr: bigint, data: Uint8Array,
 *   filesz?: bigint, memsz?: bigint, align?: bigint, offset?: bigint }} SegSpec
 * @typedef {{ class?: 32|64, be?: boolean, type?: number, machine?: number, entry?: bigint,
 *   segments: SegSpec[], relocs?: number, x86relocs?: number[], trailer?: Uint8Array }} ElfSpec
 */

/**
 * An ELF image. With `relocs: n`, segment 0 gets n RELATIVE relocations (RELA for ELF64, REL for
 * ELF32) in a table inside its file bytes and a PT_DYNAMIC pointing at the dynamic array; with
 * `x86relocs`, Linux x86 relocs data (three groups read backwards from the end) is appended.
 * @param {ElfSpec} s
 */
export function elf(s) {
  const is64 = (s.class ?? 64) === 64;
  const le = !s.be;
  const ehsize = is64 ? 64 : 52;
  const phentsize = is64 ? 56 : 32;
  const segs = s.segments.map((x) => ({ ...x, data: x.data }));
  const machine = s.machine ?? (is64 ? EM.x86_64 : EM.i386);
  let dynIndex = -1;
  if (s.relocs) {
    // Segment 0 carries: its own data, then the relocation table, then the dynamic array.
    const s0 = segs[0];
    const entsize = is64 ? 24 : 8;
    const n = s.relocs;
    const base = s0.data.length;
    const tableOff = (base + 15) & ~15;
    const dynOff = tableOff + n * entsize;
    const dynEnt = is64 ? 16 : 8;
    const dynLen = 4 * dynEnt;
    const data = new Uint8Array(dynOff + dynLen);
    data.set(s0.data, 0);
    const dv = new DataView(data.buffer);
    const word = (o, v) => (is64 ? dv.setBigUint64(o, BigInt(v), le) : dv.setUint32(o, Number(BigInt(v) & 0xffffffffn), le));
    const rel = RELATIVE[machine] ?? 8;
    for (let i = 0; i < n; i++) {
      const site = s0.vaddr + BigInt((i * 8) % Math.max(8, base - 8));
      const o = tableOff + i * entsize;
      word(o, site);
      if (is64) {
        dv.setBigUint64(o + 8, BigInt(rel), le); // r_info: sym 0, type in the low 32 bits
        dv.setBigUint64(o + 16, s0.vaddr + 0x40n, le); // r_addend
      } else {
        dv.setUint32(o + 4, rel, le); // r_info: sym 0, type in the low 8 bits
      }
    }
    const tags = is64 ? [[7n, s0.vaddr + BigInt(tableOff)], [8n, BigInt(n * entsize)], [9n, 24n], [0n, 0n]]
      : [[17n, s0.vaddr + BigInt(tableOff)], [18n, BigInt(n * entsize)], [19n, 8n], [0n, 0n]];
    tags.forEach(([t, v], i) => {
      word(dynOff + i * dynEnt, t);
      word(dynOff + i * dynEnt + dynEnt / 2, v);
    });
    segs[0] = { ...s0, data, memsz: s0.memsz !== undefined && s0.memsz > BigInt(data.length) ? s0.memsz : undefined };
    segs.push({ type: 2, flags: 6, vaddr: s0.vaddr + BigInt(dynOff), paddr: s0.paddr + BigInt(dynOff), data: new Uint8Array(0), filesz: BigInt(dynLen), memsz: BigInt(dynLen), align: 8n, dynOf: { seg: 0, off: dynOff } });
    dynIndex = segs.length - 1;
  }
  const phoff = ehsize;
  let off = phoff + phentsize * segs.length;
  const offsets = segs.map((x) => {
    if (x.dynOf) return -1;
    if (x.offset !== undefined) return Number(x.offset);
    off = (off + 15) & ~15;
    const o = off;
    off += x.data.length;
    return o;
  });
  if (dynIndex >= 0) offsets[dynIndex] = offsets[segs[dynIndex].dynOf.seg] + segs[dynIndex].dynOf.off;
  const dataEnd = Math.max(off, ...segs.map((x, i) => (x.dynOf ? 0 : offsets[i] + x.data.length)));
  let trailer = s.trailer ?? new Uint8Array(0);
  if (s.x86relocs) {
    // arch/x86/tools/relocs output, read backwards from the end by handle_relocations(): forward it
    // is [0][64-bit sites][0][inverse 32-bit sites][0][32-bit sites] (an ELF32 kernel: [0][32-bit sites]).
    const words = [...(is64 ? [0, 0, 0] : [0]), ...s.x86relocs];
    const t = new Uint8Array(words.length * 4);
    words.forEach((v, i) => new DataView(t.buffer).setUint32(i * 4, v >>> 0, true));
    trailer = concat(trailer, t);
  }
  const w = new Writer(dataEnd + trailer.length);
  w.put(0, [0x7f, 0x45, 0x4c, 0x46]);
  w.set("EI_CLASS", 4, 1, is64 ? 2 : 1);
  w.set("EI_DATA", 5, 1, le ? 1 : 2);
  w.set("EI_VERSION", 6, 1, 1);
  w.set("e_type", 16, 2, s.type ?? 2, le);
  w.set("e_machine", 18, 2, machine, le);
  w.set("e_version", 20, 4, 1, le);
  const ws = is64 ? 8 : 4;
  w.set("e_entry", 24, ws, s.entry ?? segs[0].vaddr, le);
  w.set("e_phoff", 24 + ws, ws, phoff, le);
  w.set("e_shoff", 24 + 2 * ws, ws, 0, le);
  w.set("e_flags", 24 + 3 * ws, 4, 0, le);
  w.set("e_ehsize", 28 + 3 * ws, 2, ehsize, le);
  w.set("e_phentsize", 30 + 3 * ws, 2, phentsize, le);
  w.set("e_phnum", 32 + 3 * ws, 2, segs.length, le);
  w.set("e_shentsize", 34 + 3 * ws, 2, is64 ? 64 : 40, le);
  w.set("e_shnum", 36 + 3 * ws, 2, 0, le);
  w.set("e_shstrndx", 38 + 3 * ws, 2, 0, le);
  segs.forEach((x, i) => {
    const p = phoff + i * phentsize;
    const filesz = x.filesz ?? BigInt(x.data.length);
    const memsz = x.memsz ?? filesz;
    const f = (n) => `p${i}.${n}`;
    if (is64) {
      w.set(f("p_type"), p, 4, x.type ?? 1, le);
      w.set(f("p_flags"), p + 4, 4, x.flags ?? 5, le);
      w.set(f("p_offset"), p + 8, 8, offsets[i], le);
      w.set(f("p_vaddr"), p + 16, 8, x.vaddr, le);
      w.set(f("p_paddr"), p + 24, 8, x.paddr, le);
      w.set(f("p_filesz"), p + 32, 8, filesz, le);
      w.set(f("p_memsz"), p + 40, 8, memsz, le);
      w.set(f("p_align"), p + 48, 8, x.align ?? 0x1000n, le);
    } else {
      w.set(f("p_type"), p, 4, x.type ?? 1, le);
      w.set(f("p_offset"), p + 4, 4, offsets[i], le);
      w.set(f("p_vaddr"), p + 8, 4, x.vaddr, le);
      w.set(f("p_paddr"), p + 12, 4, x.paddr, le);
      w.set(f("p_filesz"), p + 16, 4, filesz, le);
      w.set(f("p_memsz"), p + 20, 4, memsz, le);
      w.set(f("p_flags"), p + 24, 4, x.flags ?? 5, le);
      w.set(f("p_align"), p + 28, 4, x.align ?? 0x1000n, le);
    }
    if (!x.dynOf) w.put(offsets[i], x.data);
  });
  w.put(dataEnd, trailer);
  return w.done();
}

/** A Multiboot kernel without address fields: an ELF32 i386 image whose first segment holds the header. */
export function multibootElf(o = {}) {
  const flags = o.flags ?? 0x3;
  const head = new Uint8Array(0x200);
  const dv = new DataView(head.buffer);
  dv.setUint32(0, MB_MAGIC, true);
  dv.setUint32(4, flags, true);
  dv.setUint32(8, (-(MB_MAGIC + flags)) >>> 0, true);
  head.set(filler(0x1f0, 5), 0x10);
  const vbase = o.vaddr ?? 0xc0100000n;
  const pbase = o.paddr ?? 0x100000n;
  const r = elf({
    class: 32, machine: EM.i386, entry: o.entry ?? vbase + 0x20n,
    segments: [
      { vaddr: vbase, paddr: pbase, data: head, memsz: 0x400n },
      { vaddr: vbase + 0x1000n, paddr: pbase + 0x1000n, data: filler(0x300, 6), memsz: 0x2000n, flags: 6 },
    ],
  });
  // The header's own fields, at the first segment's file offset.
  const segOff = 52 + 2 * 32;
  const hoff = (segOff + 15) & ~15;
  r.fields.push({ name: "mb.flags", off: hoff + 4, size: 4, le: true }, { name: "mb.checksum", off: hoff + 8, size: 4, le: true });
  return r;
}

// ---------------------------------------------------------------------------------------------
// x86 bzImage (Documentation/arch/x86/boot.rst, "The Real-Mode Kernel Header")

export function bzImage(o = {}) {
  const setupSects = o.setup_sects ?? 4;
  const setupSize = ((setupSects === 0 ? 4 : setupSects) + 1) * 512;
  const kernelLen = o.kernelLen ?? 0x4000;
  const version = o.version ?? 0x020f;
  const w = new Writer(setupSize + kernelLen);
  w.put(setupSize, filler(kernelLen, 9));
  w.set("setup_sects", 0x1f1, 1, setupSects);
  w.set("root_flags", 0x1f2, 2, 1);
  w.set("syssize", 0x1f4, 4, o.syssize ?? Math.floor(kernelLen / 16));
  w.set("vid_mode", 0x1fa, 2, 0xffff);
  w.set("boot_flag", 0x1fe, 2, 0xaa55);
  w.set("jump", 0x200, 1, 0xeb);
  w.set("jump_offset", 0x201, 1, o.jump ?? 0x6a);
  w.put(0x202, ascii("HdrS"));
  w.fields.push({ name: "header", off: 0x202, size: 4, le: true });
  w.set("version", 0x206, 2, version);
  w.set("kernel_version", 0x20e, 2, o.kernel_version ?? 0x200);
  w.put(0x400, ascii("6.1.0-fuzz (fuzz@guest-image) #1 SMP\0"));
  w.set("loadflags", 0x211, 1, o.loadflags ?? 0x81);
  w.set("code32_start", 0x214, 4, o.code32_start ?? 0x100000);
  w.set("heap_end_ptr", 0x224, 2, 0xde00);
  w.set("initrd_addr_max", 0x22c, 4, 0x7fffffff);
  w.set("kernel_alignment", 0x230, 4, o.kernel_alignment ?? 0x200000);
  w.set("relocatable_kernel", 0x234, 1, o.relocatable_kernel ?? 1);
  w.set("min_alignment", 0x235, 1, 0x15);
  w.set("xloadflags", 0x236, 2, o.xloadflags ?? 0x3);
  w.set("cmdline_size", 0x238, 4, 0x7ff);
  w.set("payload_offset", 0x248, 4, o.payload_offset ?? 0x100);
  w.set("payload_length", 0x24c, 4, o.payload_length ?? 0x200);
  w.set("setup_data", 0x250, 8, 0n);
  w.set("pref_address", 0x258, 8, o.pref_address ?? 0x200000n);
  w.set("init_size", 0x260, 4, o.init_size ?? 0x100000);
  w.set("handover_offset", 0x264, 4, 0x190);
  if (o.kernelInfo && version >= 0x20f) {
    // boot.rst "The kernel_info": "LToP", size, size_total, setup_type_max; near the end of the protected-mode part.
    const rel = kernelLen - 0x40;
    w.set("kernel_info_offset", 0x268, 4, rel);
    w.put(setupSize + rel, ascii("LToP"));
    w.set("kernel_info.size", setupSize + rel + 4, 4, 0x10);
    w.set("kernel_info.size_total", setupSize + rel + 8, 4, 0x10);
    w.set("kernel_info.setup_type_max", setupSize + rel + 12, 4, o.kernelInfo.setup_type_max ?? 0x80000009);
  } else w.set("kernel_info_offset", 0x268, 4, 0);
  return w.done();
}

/** First index of `needle` in `hay`, or -1. */
export function indexOf(hay, needle) {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

/**
 * ELF notes (gABI "Note Section") as one block padded to `align` (4 or 8): { namesz, descsz,
 * type, name + NUL, desc }. Fields are named note<i>.n_namesz/n_descsz/n_type/desc, offsets
 * relative to the block (add the block's file offset).
 * @param {Array<{ name: string, type: number, desc: Uint8Array }>} notes
 */
export function elfNotes(notes, { align = 4, be = false } = {}) {
  const up = (n) => Math.ceil(n / align) * align;
  // Each note starts aligned; its descriptor at align_up(12 + namesz), the next note at align_up(descriptor end).
  const size = notes.reduce((n, x) => n + up(12 + x.name.length + 1) + up(x.desc.length), 0);
  const w = new Writer(size);
  let o = 0;
  notes.forEach((x, i) => {
    w.set(`note${i}.n_namesz`, o, 4, x.name.length + 1, !be);
    w.set(`note${i}.n_descsz`, o + 4, 4, x.desc.length, !be);
    w.set(`note${i}.n_type`, o + 8, 4, x.type, !be);
    w.put(o + 12, ascii(x.name));
    const d = o + up(12 + x.name.length + 1);
    w.put(d, x.desc);
    if (x.desc.length === 4 || x.desc.length === 8) w.fields.push({ name: `note${i}.desc`, off: d, size: x.desc.length, le: !be });
    o = d + up(x.desc.length);
  });
  return w.done();
}

// ---------------------------------------------------------------------------------------------
// U-Boot legacy uImage (include/image.h; big-endian 64-byte header)

export const UIMAGE_MAGIC = 0x27051956;
export const IH = { KERNEL: 2, RAMDISK: 3, FLATDT: 8, KERNEL_NOLOAD: 14, COMP_NONE: 0, COMP_GZIP: 1, OS_LINUX: 5, ARCH_ARM: 2, ARCH_ARM64: 22, ARCH_RISCV: 26 };

export function uImage(data, o = {}) {
  const w = new Writer(64 + data.length);
  w.put(64, data);
  w.set("ih_magic", 0, 4, UIMAGE_MAGIC, false);
  w.set("ih_hcrc", 4, 4, 0, false);
  w.set("ih_time", 8, 4, o.time ?? 0x5f000000, false);
  w.set("ih_size", 12, 4, o.size ?? data.length, false);
  w.set("ih_load", 16, 4, o.load ?? 0x40080000, false);
  w.set("ih_ep", 20, 4, o.ep ?? o.load ?? 0x40080000, false);
  w.set("ih_dcrc", 24, 4, o.dcrc ?? crc32(data), false);
  w.set("ih_os", 28, 1, o.os ?? IH.OS_LINUX);
  w.set("ih_arch", 29, 1, o.arch ?? IH.ARCH_ARM64);
  w.set("ih_type", 30, 1, o.type ?? IH.KERNEL);
  w.set("ih_comp", 31, 1, o.comp ?? IH.COMP_NONE);
  w.put(32, ascii((o.name ?? "fuzz kernel").slice(0, 31)));
  const b = w.bytes;
  if (o.hcrc === undefined) fixUImage(b, false);
  else w.set("", 4, 4, o.hcrc, false);
  return w.done();
}

/** Recomputes ih_dcrc (over min(ih_size, what the file has)) if asked, then ih_hcrc. */
export function fixUImage(b, data = true) {
  if (b.length < 64) return;
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (data) {
    const size = Math.min(dv.getUint32(12, false), b.length - 64);
    dv.setUint32(24, crc32(b.subarray(64, 64 + size)), false);
  }
  const h = b.slice(0, 64);
  h.fill(0, 4, 8);
  dv.setUint32(4, crc32(h), false);
}

// ---------------------------------------------------------------------------------------------
// gzip (RFC 1952)

export function gzip(payload, o = {}) {
  const deflate = o.deflate ?? zlib.deflateRawSync(payload, { level: o.level ?? 6 });
  const name = o.fname === undefined ? null : ascii(o.fname + "\0");
  const flg = (name ? 0x08 : 0) | (o.fhcrc ? 0x02 : 0);
  const hlen = 10 + (name?.length ?? 0) + (o.fhcrc ? 2 : 0);
  const w = new Writer(hlen + deflate.length + 8);
  w.put(0, [0x1f, 0x8b]);
  w.set("CM", 2, 1, 8);
  w.set("FLG", 3, 1, flg);
  w.set("MTIME", 4, 4, 0);
  w.set("XFL", 8, 1, 2);
  w.set("OS", 9, 1, 3);
  if (name) w.put(10, name);
  if (o.fhcrc) w.set("FHCRC", hlen - 2, 2, crc32(w.bytes.subarray(0, hlen - 2)) & 0xffff);
  w.put(hlen, deflate);
  const end = hlen + deflate.length;
  w.set("CRC32", end, 4, o.crc32 ?? crc32(payload));
  w.set("ISIZE", end + 4, 4, o.isize ?? payload.length % 2 ** 32);
  return w.done();
}

/**
 * Rewrites a gzip member's trailer (CRC32, ISIZE) to match what its deflate data inflates to,
 * when it inflates at all within `cap` bytes; lets mutated deflate data reach the loader's
 * later checks instead of stopping at the checksum.
 */
export function fixGzip(b, start = 0, end = b.length, cap = 8 << 20) {
  if (end - start < 18 || b[start] !== 0x1f || b[start + 1] !== 0x8b) return;
  let p = start + 10;
  const flg = b[start + 3];
  if (flg & 0x04) p += 2 + (b[p] | (b[p + 1] << 8));
  if (flg & 0x08) while (p < end && b[p++] !== 0);
  if (flg & 0x10) while (p < end && b[p++] !== 0);
  if (flg & 0x02) p += 2;
  if (p >= end - 8) return;
  let out;
  try {
    out = zlib.inflateRawSync(b.subarray(p, end - 8), { maxOutputLength: cap });
  } catch {
    return;
  }
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  dv.setUint32(end - 8, crc32(out), true);
  dv.setUint32(end - 4, out.length >>> 0, true);
}

// ---------------------------------------------------------------------------------------------
// EFI zboot (drivers/firmware/efi/libstub/zboot-header.S)

export function zboot(payload, o = {}) {
  const poff = o.payload_offset ?? 0x100;
  const w = new Writer(poff + payload.length + (o.tail ?? 0x40));
  w.put(0, ascii("MZ"));
  w.put(4, ascii("zimg"));
  w.set("payload_offset", 8, 4, poff);
  w.set("payload_size", 12, 4, o.payload_size ?? payload.length);
  w.put(0x18, ascii((o.compression_type ?? "gzip") + "\0"));
  w.fields.push({ name: "compression_type", off: 0x18, size: 4, le: true });
  w.set("linux_magic", 0x38, 4, 0x818223cd);
  w.set("pe_header_offset", 0x3c, 4, 0x40);
  w.put(poff, payload);
  return w.done();
}

// ---------------------------------------------------------------------------------------------
// arm64 / RISC-V Image (booting.rst; boot-image-header.rst)

export function arm64Image(o = {}) {
  const len = o.len ?? 0x3000;
  const w = new Writer(len);
  w.put(0, filler(len, 11));
  w.set("code0", 0, 4, o.code0 ?? 0x5a4d); // "MZ": EFI stub
  w.set("code1", 4, 4, 0x14000000);
  w.set("text_offset", 8, 8, o.text_offset ?? 0n);
  w.set("image_size", 16, 8, o.image_size ?? BigInt(len + 0x2000));
  w.set("flags", 24, 8, o.flags ?? 0xan);
  w.set("res2", 32, 8, 0n);
  w.set("res3", 40, 8, 0n);
  w.set("res4", 48, 8, 0n);
  w.set("magic", 0x38, 4, 0x644d5241);
  w.set("res5", 0x3c, 4, 0x40);
  return w.done();
}

export function riscvImage(o = {}) {
  const len = o.len ?? 0x3000;
  const w = new Writer(len);
  w.put(0, filler(len, 13));
  w.set("code0", 0, 4, 0x0480006f);
  w.set("code1", 4, 4, 0);
  w.set("text_offset", 8, 8, o.text_offset ?? 0x200000n);
  w.set("image_size", 16, 8, o.image_size ?? BigInt(len + 0x1000));
  w.set("flags", 24, 8, o.flags ?? 0n);
  w.set("version", 32, 4, 0x2);
  w.set("res1", 36, 4, 0);
  w.set("res2", 40, 8, 0n);
  w.put(0x30, ascii("RISCV\0\0\0"));
  w.set("magic2", 0x38, 4, 0x05435352);
  w.set("res3", 0x3c, 4, 0);
  return w.done();
}

// ---------------------------------------------------------------------------------------------
// ARM zImage (arch/arm/boot/compressed/head.S)

export function zImage(o = {}) {
  const len = o.len ?? 0x2000;
  const start = o.start ?? 0;
  const tail = o.appendDtb ?? new Uint8Array(0);
  const w = new Writer(len + tail.length);
  w.put(0, filler(len, 17));
  w.set("magic", 0x24, 4, 0x016f2818);
  w.set("start", 0x28, 4, start);
  w.set("end", 0x2c, 4, o.end ?? start + len);
  w.set("endian_flag", 0x30, 4, o.endian_flag ?? 0x04030201);
  w.put(len, tail);
  return w.done();
}

// ---------------------------------------------------------------------------------------------
// Flattened device tree (Devicetree Specification v0.4, ch. 5)

/**
 * @typedef {{ name: string, props?: Array<[string, Uint8Array]>, children?: Node[] }} Node
 */
export const be32 = (...v) => {
  const b = new Uint8Array(v.length * 4);
  v.forEach((x, i) => new DataView(b.buffer).setUint32(i * 4, Number(BigInt(x) & 0xffffffffn), false));
  return b;
};
export const str = (s) => ascii(s + "\0");

/** A DTB for `root`, version 17, with `rsv` reservation entries. */
export function fdt(root, o = {}) {
  const strings = [];
  const nameOff = (n) => {
    let off = 0;
    for (const s of strings) {
      if (s === n) return off;
      off += s.length + 1;
    }
    strings.push(n);
    return off;
  };
  const struct = [];
  const pad4 = (b) => concat(b, new Uint8Array((4 - (b.length % 4)) % 4));
  const walk = (node) => {
    struct.push(be32(1), pad4(str(node.name)));
    for (const [k, v] of node.props ?? []) struct.push(be32(3, v.length, nameOff(k)), pad4(v));
    for (const c of node.children ?? []) walk(c);
    struct.push(be32(2));
  };
  walk(root);
  struct.push(be32(9));
  const structBytes = concat(...struct);
  const stringBytes = concat(...strings.map(str));
  const rsv = concat(...(o.rsv ?? []).map(([a, s]) => { const b = new Uint8Array(16); const dv = new DataView(b.buffer); dv.setBigUint64(0, a); dv.setBigUint64(8, s); return b; }), new Uint8Array(16));
  const offRsv = 40;
  const offStruct = offRsv + rsv.length;
  const offStrings = offStruct + structBytes.length;
  const total = offStrings + stringBytes.length + (o.slack ?? 0);
  const w = new Writer(total);
  w.set("magic", 0, 4, 0xd00dfeed, false);
  w.set("totalsize", 4, 4, o.totalsize ?? total, false);
  w.set("off_dt_struct", 8, 4, offStruct, false);
  w.set("off_dt_strings", 12, 4, offStrings, false);
  w.set("off_mem_rsvmap", 16, 4, offRsv, false);
  w.set("version", 20, 4, o.version ?? 17, false);
  w.set("last_comp_version", 24, 4, 16, false);
  w.set("boot_cpuid_phys", 28, 4, 0, false);
  w.set("size_dt_strings", 32, 4, stringBytes.length, false);
  w.set("size_dt_struct", 36, 4, structBytes.length, false);
  w.put(offRsv, rsv).put(offStruct, structBytes).put(offStrings, stringBytes);
  // The first property's len/nameoff and the first node token, for aimed mutations.
  w.fields.push({ name: "token0", off: offStruct, size: 4, le: false });
  if (structBytes.length > 16) w.fields.push({ name: "prop.len", off: offStruct + 12, size: 4, le: false }, { name: "prop.nameoff", off: offStruct + 16, size: 4, le: false });
  return w.done();
}

/** A small but complete machine tree (cells, memory, chosen, a cpu). */
export function sampleTree(memBase = 0x40000000n, memSize = 0x400000n) {
  const reg = new Uint8Array(16);
  const dv = new DataView(reg.buffer);
  dv.setBigUint64(0, memBase);
  dv.setBigUint64(8, memSize);
  return {
    name: "",
    props: [["#address-cells", be32(2)], ["#size-cells", be32(2)], ["compatible", str("linux,dummy-virt")], ["model", str("fuzz")]],
    children: [
      { name: "chosen", props: [["bootargs", str("console=ttyAMA0 root=/dev/ram")], ["stdout-path", str("/pl011@9000000")]] },
      { name: "memory@40000000", props: [["device_type", str("memory")], ["reg", reg]] },
      { name: "cpus", props: [["#address-cells", be32(1)], ["#size-cells", be32(0)]], children: [{ name: "cpu@0", props: [["device_type", str("cpu")], ["reg", be32(0)], ["compatible", str("arm,cortex-a57")]] }] },
    ],
  };
}

// ---------------------------------------------------------------------------------------------
// cpio newc (Linux Documentation/driver-api/early-userspace/buffer-format.rst)

/** @param {Array<{ name: string, data?: Uint8Array, mode?: number }>} entries */
export function cpio(entries, o = {}) {
  const parts = [];
  /** @type {Field[]} */
  const fields = [];
  let at = 0;
  const hex8 = (v) => (v >>> 0).toString(16).padStart(8, "0");
  const pad = (n) => new Uint8Array((4 - (n % 4)) % 4);
  for (const e of [...entries, { name: "TRAILER!!!", data: new Uint8Array(0), mode: 0 }]) {
    const data = e.data ?? new Uint8Array(0);
    const name = ascii(e.name + "\0");
    const h = "070701" + [1, e.mode ?? 0o100644, 0, 0, 1, 0, data.length, 0, 0, 0, 0, name.length, 0].map(hex8).join("");
    const head = concat(ascii(h), name);
    fields.push({ name: `${e.name}.c_filesize`, off: at + 6 + 6 * 8, size: 8, le: true, hex: true }, { name: `${e.name}.c_namesize`, off: at + 6 + 11 * 8, size: 8, le: true, hex: true });
    parts.push(head, pad(head.length), data, pad(data.length));
    at += head.length + pad(head.length).length + data.length + pad(data.length).length;
  }
  if (o.tail) parts.push(o.tail);
  return { bytes: concat(...parts), fields };
}

// ---------------------------------------------------------------------------------------------
// Unified Kernel Image (UAPI.5 UKI; PE/COFF per Microsoft pe-format.md): a minimal PE32+ EFI
// application whose sections are the UKI's (.linux, .cmdline, .initrd, …; ".profile" starts a
// profile). Every header field the reader uses is registered for the structure-aware mutator.

export function uki(sections, o = {}) {
  const FILE_ALIGN = 0x200;
  const SECT_ALIGN = 0x1000;
  const optSize = 0xf0; // PE32+ standard + Windows fields (112) + 16 data directories
  const tableAt = 0x40 + 4 + 20 + optSize;
  const headers = Math.ceil((tableAt + sections.length * 40) / FILE_ALIGN) * FILE_ALIGN;
  const up = (v, a) => Math.ceil(v / a) * a;
  let off = headers;
  let rva = up(headers, SECT_ALIGN);
  const placed = sections.map((s) => {
    const p = { ...s, off, rva, raw: up(s.data.length, FILE_ALIGN) };
    off += p.raw;
    rva += up(Math.max(s.data.length, 1), SECT_ALIGN);
    return p;
  });
  const w = new Writer(off);
  w.put(0, ascii("MZ"));
  w.set("e_lfanew", 0x3c, 4, 0x40);
  w.put(0x40, ascii("PE\0\0"));
  w.set("Machine", 0x44, 2, o.machine ?? 0x8664);
  w.set("NumberOfSections", 0x46, 2, sections.length);
  w.set("SizeOfOptionalHeader", 0x54, 2, optSize);
  w.set("Characteristics", 0x56, 2, 0x206);
  const opt = 0x58;
  w.set("Magic", opt, 2, 0x20b);
  w.set("AddressOfEntryPoint", opt + 16, 4, placed[0]?.rva ?? 0);
  w.set("ImageBase", opt + 24, 8, 0n);
  w.set("SectionAlignment", opt + 32, 4, SECT_ALIGN);
  w.set("FileAlignment", opt + 36, 4, FILE_ALIGN);
  w.set("SizeOfImage", opt + 56, 4, rva);
  w.set("SizeOfHeaders", opt + 60, 4, headers);
  w.set("Subsystem", opt + 68, 2, 10); // EFI application
  w.set("NumberOfRvaAndSizes", opt + 108, 4, 16);
  placed.forEach((p, i) => {
    const h = tableAt + i * 40;
    w.put(h, ascii(p.name.slice(0, 8)));
    w.set(`${p.name}[${i}].VirtualSize`, h + 8, 4, p.virtualSize ?? p.data.length);
    w.set(`${p.name}[${i}].VirtualAddress`, h + 12, 4, p.rva);
    w.set(`${p.name}[${i}].SizeOfRawData`, h + 16, 4, p.raw);
    w.set(`${p.name}[${i}].PointerToRawData`, h + 20, 4, p.off);
    w.set(`${p.name}[${i}].Characteristics`, h + 36, 4, 0x40000040); // initialized data, readable
    w.put(p.off, p.data);
  });
  return w.done();
}
