// A minimal ELF writer for tests, written from the gABI layout (ELF header, program headers),
// independent of the library's parser. Only what tests need: EXEC/DYN images with PT_LOADs and
// optional PT_DYNAMIC, either class and byte order.

export interface SegmentSpec {
  type?: number; // default PT_LOAD (1)
  flags?: number;
  vaddr: bigint;
  paddr: bigint;
  data: Uint8Array; // file bytes (filesz = data.length unless filesz is given)
  filesz?: bigint;
  memsz?: bigint; // default filesz
  align?: bigint;
  /** File offset; default: placed after the previous segment, 16-aligned. */
  offset?: bigint;
}

export interface ElfSpec {
  class: 32 | 64;
  bigEndian?: boolean;
  type?: number; // 2 EXEC (default), 3 DYN
  machine: number;
  entry: bigint;
  segments: SegmentSpec[];
  /** Bytes appended after everything (e.g. x86 relocs data). */
  trailer?: Uint8Array;
}

export function writeElf(spec: ElfSpec): Uint8Array {
  const is64 = spec.class === 64;
  const le = !spec.bigEndian;
  const ehsize = is64 ? 64 : 52;
  const phentsize = is64 ? 56 : 32;
  const phoff = ehsize;
  let off = BigInt(phoff + phentsize * spec.segments.length);
  const offsets = spec.segments.map((s) => {
    if (s.offset !== undefined) return s.offset;
    off = (off + 15n) & ~15n;
    const o = off;
    off += BigInt(s.data.length);
    return o;
  });
  const dataEnd = spec.segments.reduce((m, s, i) => {
    const e = Number(offsets[i]) + s.data.length;
    return e > m ? e : m;
  }, phoff + phentsize * spec.segments.length);
  const trailer = spec.trailer ?? new Uint8Array(0);
  const out = new Uint8Array(dataEnd + trailer.length);
  const dv = new DataView(out.buffer);
  const w = (o: number, v: bigint) => (is64 ? dv.setBigUint64(o, v, le) : dv.setUint32(o, Number(v), le));
  out.set([0x7f, 0x45, 0x4c, 0x46, is64 ? 2 : 1, le ? 1 : 2, 1], 0);
  dv.setUint16(16, spec.type ?? 2, le);
  dv.setUint16(18, spec.machine, le);
  dv.setUint32(20, 1, le);
  const ws = is64 ? 8 : 4;
  w(24, spec.entry);
  w(24 + ws, BigInt(phoff));
  w(24 + 2 * ws, 0n); // no section headers
  dv.setUint32(24 + 3 * ws, 0, le);
  dv.setUint16(28 + 3 * ws, ehsize, le);
  dv.setUint16(30 + 3 * ws, phentsize, le);
  dv.setUint16(32 + 3 * ws, spec.segments.length, le);
  dv.setUint16(34 + 3 * ws, is64 ? 64 : 40, le);
  dv.setUint16(36 + 3 * ws, 0, le);
  dv.setUint16(38 + 3 * ws, 0, le);
  spec.segments.forEach((s, i) => {
    const o = phoff + i * phentsize;
    const filesz = s.filesz ?? BigInt(s.data.length);
    const memsz = s.memsz ?? filesz;
    const type = s.type ?? 1;
    const flags = s.flags ?? 6;
    const align = s.align ?? 0x1000n;
    if (is64) {
      dv.setUint32(o, type, le);
      dv.setUint32(o + 4, flags, le);
      dv.setBigUint64(o + 8, offsets[i], le);
      dv.setBigUint64(o + 16, s.vaddr, le);
      dv.setBigUint64(o + 24, s.paddr, le);
      dv.setBigUint64(o + 32, filesz, le);
      dv.setBigUint64(o + 40, memsz, le);
      dv.setBigUint64(o + 48, align, le);
    } else {
      dv.setUint32(o, type, le);
      dv.setUint32(o + 4, Number(offsets[i]), le);
      dv.setUint32(o + 8, Number(s.vaddr), le);
      dv.setUint32(o + 12, Number(s.paddr), le);
      dv.setUint32(o + 16, Number(filesz), le);
      dv.setUint32(o + 20, Number(memsz), le);
      dv.setUint32(o + 24, flags, le);
      dv.setUint32(o + 28, Number(align), le);
    }
    out.set(s.data, Number(offsets[i]));
  });
  out.set(trailer, dataEnd);
  return out;
}

/** Little-endian u32 words as bytes. */
export function u32le(words: number[]): Uint8Array {
  const out = new Uint8Array(words.length * 4);
  const dv = new DataView(out.buffer);
  words.forEach((v, i) => dv.setUint32(i * 4, v >>> 0, true));
  return out;
}
