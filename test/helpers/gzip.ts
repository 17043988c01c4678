// gzip members written field by field from RFC 1952 §2.3.1, with node:zlib as the independent
// reference for the deflate data (deflateRawSync) and the CRC-32 (crc32). Every field can be
// overridden so tests can break exactly one thing.
import zlib from "node:zlib";

export interface GzipSpec {
  /** Replaces the compressed data (default: zlib.deflateRawSync(payload)). */
  deflate?: Uint8Array;
  cm?: number;
  /** Extra FLG bits to set (FTEXT 0x01, reserved 0x20/0x40/0x80…). */
  extraFlags?: number;
  mtime?: number;
  xfl?: number;
  os?: number;
  /** FEXTRA subfield bytes (XLEN = length). */
  extra?: Uint8Array;
  fname?: string;
  fcomment?: string;
  /** Add FHCRC; `hcrc` overrides its value. */
  fhcrc?: boolean;
  hcrc?: number;
  /** Trailer overrides. */
  crc32?: number;
  isize?: number;
}

const FHCRC = 0x02, FEXTRA = 0x04, FNAME = 0x08, FCOMMENT = 0x10;

const latin1 = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));

export function gzipMember(payload: Uint8Array, s: GzipSpec = {}): Uint8Array {
  const flg = (s.extra ? FEXTRA : 0) | (s.fname !== undefined ? FNAME : 0) | (s.fcomment !== undefined ? FCOMMENT : 0) | (s.fhcrc ? FHCRC : 0) | (s.extraFlags ?? 0);
  const parts: number[] = [0x1f, 0x8b, s.cm ?? 8, flg]; // ID1 ID2 CM FLG
  const mtime = s.mtime ?? 0;
  parts.push(mtime & 0xff, (mtime >>> 8) & 0xff, (mtime >>> 16) & 0xff, mtime >>> 24); // MTIME LE
  parts.push(s.xfl ?? 0, s.os ?? 3); // XFL, OS (3 = Unix)
  if (s.extra) parts.push(s.extra.length & 0xff, s.extra.length >>> 8, ...s.extra); // XLEN LE, data
  if (s.fname !== undefined) parts.push(...latin1(s.fname), 0);
  if (s.fcomment !== undefined) parts.push(...latin1(s.fcomment), 0);
  if (s.fhcrc) {
    const h = s.hcrc ?? zlib.crc32(Uint8Array.from(parts)) & 0xffff; // low 16 bits of the header's CRC-32
    parts.push(h & 0xff, h >>> 8);
  }
  const header = Uint8Array.from(parts);
  const deflate = s.deflate ?? new Uint8Array(zlib.deflateRawSync(payload));
  const out = new Uint8Array(header.length + deflate.length + 8);
  out.set(header, 0);
  out.set(deflate, header.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(out.length - 8, s.crc32 ?? zlib.crc32(payload), true); // CRC32 LE
  dv.setUint32(out.length - 4, s.isize ?? payload.length % 2 ** 32, true); // ISIZE LE
  return out;
}

/** Bytes that compress somewhat, like code: a pattern with slow drift and some noise. */
export function codeLike(n: number, seed = 1): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = i % 16 < 12 ? (i * 7 + (i >> 11)) & 0xff : x & 0xff;
  }
  return b;
}

export const eqBytes = (a: Uint8Array, b: Uint8Array) =>
  Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
