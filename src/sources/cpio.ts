// A CPIO "newc" archive as a source: what the seL4 CAmkES file server serves (its archive is
// linked into the FileServer component). Format: Linux Documentation/driver-api/early-userspace/
// buffer-format.rst — a 110-byte ASCII header ("070701", or "070702" with a checksum, then 13
// eight-digit hex fields), the NUL-terminated name padded so header+name is a multiple of 4, the
// data padded to 4; the entry "TRAILER!!!" ends the archive.
import { GuestImageError } from "../errors.js";
import { hex } from "../num.js";
import { bytesFile, lookupNames, notFound, type Source } from "./source.js";

const HEADER = 110;
const S_IFMT = 0o170000;
const S_IFREG = 0o100000;

export interface CpioEntry {
  name: string;
  mode: number;
  /** Offset of the data in the archive. */
  offset: number;
  size: number;
}

/**
 * Rounds up to a multiple of 4 exactly for any safe integer: archive offsets pass 2 GiB and 4 GiB
 * (c_filesize alone may be 4 GiB − 1), where 32-bit `&` would turn them negative or wrap them.
 */
export const pad4 = (n: number) => n + ((4 - (n % 4)) % 4);

/**
 * Random access to an archive's bytes for the parser: only headers and names are read, so an
 * archive need not be in one buffer (and its data is never touched while listing).
 */
export interface CpioBytes {
  readonly length: number;
  /** The `len` bytes at `offset`; the parser has checked that they lie inside `length`. */
  bytes(offset: number, len: number): Uint8Array;
}

/** Lists the entries of a newc archive, checking every header and range against its length. */
export function parseCpio(archive: Uint8Array, archiveName = "cpio archive"): CpioEntry[] {
  if (!(archive instanceof Uint8Array)) throw new GuestImageError("BAD_ARGUMENT", "the cpio archive must be a Uint8Array", { image: archiveName, field: "archive" });
  return parseCpioBytes({ length: archive.length, bytes: (o, l) => archive.subarray(o, o + l) }, archiveName);
}

/** parseCpio over any random-access bytes; all offset arithmetic is exact up to 2^53. */
export function parseCpioBytes(archive: CpioBytes, archiveName = "cpio archive"): CpioEntry[] {
  const bad = (code: "BAD_MAGIC" | "BAD_HEADER" | "TRUNCATED", msg: string, field?: string) =>
    new GuestImageError(code, msg, { image: archiveName, field });
  const len = archive.length;
  if (!Number.isSafeInteger(len) || len < 0) throw new GuestImageError("BAD_ARGUMENT", `archive length ${String(len)} is not a safe integer`, { image: archiveName, field: "archive" });
  const field = (h: Uint8Array, at: number, i: number, name: string): number => {
    const s = 6 + i * 8;
    let v = 0;
    for (let k = s; k < s + 8; k++) {
      const c = h[k];
      const d = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x41 && c <= 0x46 ? c - 0x37 : c >= 0x61 && c <= 0x66 ? c - 0x57 : -1;
      if (d < 0) throw bad("BAD_HEADER", `entry at ${hex(at)}: ${name} is not 8 hex digits`, name);
      v = v * 16 + d;
    }
    return v;
  };
  const entries: CpioEntry[] = [];
  let at = 0;
  for (;;) {
    if (at + HEADER > len) throw bad("TRUNCATED", `entry header at ${hex(at)} runs past the end (${hex(len)} bytes) before TRAILER!!!`);
    const h = archive.bytes(at, HEADER);
    const magic = String.fromCharCode(...h.subarray(0, 6));
    if (magic !== "070701" && magic !== "070702") {
      throw bad("BAD_MAGIC", `entry at ${hex(at)}: magic "${magic.replace(/[^\x20-\x7e]/g, "?")}" is not newc "070701"/"070702"`, "c_magic");
    }
    const mode = field(h, at, 1, "c_mode");
    const size = field(h, at, 6, "c_filesize");
    const namesize = field(h, at, 11, "c_namesize");
    if (namesize === 0) throw bad("BAD_HEADER", `entry at ${hex(at)}: c_namesize is 0`, "c_namesize");
    const nameEnd = at + HEADER + namesize;
    if (nameEnd > len) throw bad("TRUNCATED", `entry at ${hex(at)}: name (c_namesize ${hex(namesize)}) runs past the end`, "c_namesize");
    const nameBytes = archive.bytes(at + HEADER, namesize);
    if (nameBytes[namesize - 1] !== 0) throw bad("BAD_HEADER", `entry at ${hex(at)}: name is not NUL-terminated`, "c_namesize");
    const name = new TextDecoder().decode(nameBytes.subarray(0, namesize - 1));
    const offset = pad4(nameEnd);
    if (name === "TRAILER!!!") break;
    if (offset + size > len) {
      throw bad("TRUNCATED", `"${name}": data (c_filesize ${hex(size)}) at ${hex(offset)} runs past the end (${hex(len)} bytes)`, "c_filesize");
    }
    entries.push({ name, mode, offset, size });
    at = pad4(offset + size);
  }
  return entries;
}

/**
 * A source over a newc archive held in memory. Lookup follows the seL4 file server: the first
 * regular file with exactly that name, then the name without a leading "./".
 */
export function fromCpio(archive: Uint8Array, archiveName = "cpio archive"): Source {
  const entries = parseCpio(archive, archiveName);
  return {
    async open(name) {
      for (const n of lookupNames(name)) {
        const e = entries.find((x) => x.name === n && (x.mode & S_IFMT) === S_IFREG);
        if (e) return bytesFile(name, archive.subarray(e.offset, e.offset + e.size));
      }
      throw notFound(name, archiveName);
    },
  };
}
