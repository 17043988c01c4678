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

const pad4 = (n: number) => (n + 3) & ~3;

/** Lists the entries of a newc archive, checking every header and range against its length. */
export function parseCpio(archive: Uint8Array, archiveName = "cpio archive"): CpioEntry[] {
  if (!(archive instanceof Uint8Array)) throw new GuestImageError("BAD_ARGUMENT", "the cpio archive must be a Uint8Array", { image: archiveName, field: "archive" });
  const bad = (code: "BAD_MAGIC" | "BAD_HEADER" | "TRUNCATED", msg: string, field?: string) =>
    new GuestImageError(code, msg, { image: archiveName, field });
  const field = (at: number, i: number, name: string): number => {
    const s = at + 6 + i * 8;
    let v = 0;
    for (let k = s; k < s + 8; k++) {
      const c = archive[k];
      const d = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x41 && c <= 0x46 ? c - 0x37 : c >= 0x61 && c <= 0x66 ? c - 0x57 : -1;
      if (d < 0) throw bad("BAD_HEADER", `entry at ${hex(at)}: ${name} is not 8 hex digits`, name);
      v = v * 16 + d;
    }
    return v;
  };
  const entries: CpioEntry[] = [];
  let at = 0;
  for (;;) {
    if (at + HEADER > archive.length) throw bad("TRUNCATED", `entry header at ${hex(at)} runs past the end (${hex(archive.length)} bytes) before TRAILER!!!`);
    const magic = String.fromCharCode(...archive.subarray(at, at + 6));
    if (magic !== "070701" && magic !== "070702") {
      throw bad("BAD_MAGIC", `entry at ${hex(at)}: magic "${magic.replace(/[^\x20-\x7e]/g, "?")}" is not newc "070701"/"070702"`, "c_magic");
    }
    const mode = field(at, 1, "c_mode");
    const size = field(at, 6, "c_filesize");
    const namesize = field(at, 11, "c_namesize");
    if (namesize === 0) throw bad("BAD_HEADER", `entry at ${hex(at)}: c_namesize is 0`, "c_namesize");
    const nameEnd = at + HEADER + namesize;
    if (nameEnd > archive.length) throw bad("TRUNCATED", `entry at ${hex(at)}: name (c_namesize ${hex(namesize)}) runs past the end`, "c_namesize");
    if (archive[nameEnd - 1] !== 0) throw bad("BAD_HEADER", `entry at ${hex(at)}: name is not NUL-terminated`, "c_namesize");
    const name = new TextDecoder().decode(archive.subarray(at + HEADER, nameEnd - 1));
    const offset = pad4(nameEnd);
    if (name === "TRAILER!!!") break;
    if (offset + size > archive.length) {
      throw bad("TRUNCATED", `"${name}": data (c_filesize ${hex(size)}) at ${hex(offset)} runs past the end (${hex(archive.length)} bytes)`, "c_filesize");
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
