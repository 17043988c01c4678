// CPIO newc offsets past 2 GiB and 4 GiB, without 4 GiB of memory: a sparse archive whose headers
// are real bytes at the offsets the format puts them and whose file data is never materialised
// (a read of it fails the test). Expected offsets are computed here with BigInt from the format
// text (Linux Documentation/driver-api/early-userspace/buffer-format.rst): a 110-byte header, the
// name (c_namesize bytes with its NUL) padded so header + name is a multiple of 4, then
// c_filesize bytes of data padded to a multiple of 4, then the next header.
import { describe, expect, it } from "vitest";
import { pad4, parseCpio, parseCpioBytes, type CpioBytes } from "../src/sources/cpio.js";
import { GuestImageError } from "../src/errors.js";

const align4 = (n: bigint) => (n + 3n) / 4n * 4n;

function header(name: string, filesize: number, mode = 0o100644): Uint8Array {
  const hex8 = (v: number) => v.toString(16).padStart(8, "0");
  // c_magic, then c_ino, c_mode, c_uid, c_gid, c_nlink, c_mtime, c_filesize, c_devmajor,
  // c_devminor, c_rdevmajor, c_rdevminor, c_namesize, c_check (13 × 8 hex digits).
  const fields = [1, mode, 0, 0, 1, 0, filesize, 0, 0, 0, 0, name.length + 1, 0];
  return new TextEncoder().encode("070701" + fields.map(hex8).join("") + name + "\0");
}

/** A sparse archive: headers at their offsets, data holes that must never be read. */
function sparse(files: Array<{ name: string; size: number }>): { archive: CpioBytes; expected: Array<{ name: string; offset: bigint; size: number }>; reads: Array<[number, number]> } {
  const chunks: Array<{ at: number; bytes: Uint8Array }> = [];
  const expected: Array<{ name: string; offset: bigint; size: number }> = [];
  let at = 0n;
  for (const f of [...files, { name: "TRAILER!!!", size: 0 }]) {
    const h = header(f.name, f.size);
    chunks.push({ at: Number(at), bytes: h });
    const data = align4(at + 110n + BigInt(f.name.length + 1));
    if (f.name !== "TRAILER!!!") expected.push({ name: f.name, offset: data, size: f.size });
    at = align4(data + BigInt(f.size));
  }
  const reads: Array<[number, number]> = [];
  const archive: CpioBytes = {
    length: Number(at),
    bytes(offset, len) {
      reads.push([offset, len]);
      const c = chunks.find((x) => offset >= x.at && offset + len <= x.at + x.bytes.length);
      if (!c) throw new Error(`read of [${offset.toString(16)}, +${len.toString(16)}) outside every header: the parser touched file data`);
      return c.bytes.subarray(offset - c.at, offset - c.at + len);
    },
  };
  return { archive, expected, reads };
}

describe("CPIO newc offsets are exact past 2 GiB and 4 GiB", () => {
  it("pad4 rounds up exactly around 2^31, 2^32 and large safe integers", () => {
    for (const n of [0, 1, 2, 3, 4, 2 ** 31 - 1, 2 ** 31, 2 ** 31 + 1, 2 ** 32 - 3, 2 ** 32 - 1, 2 ** 32 + 1, 2 ** 40 + 6, 2 ** 53 - 8 - 3]) {
      expect(BigInt(pad4(n))).toBe(align4(BigInt(n)));
    }
  });

  it("entries whose data starts past 2 GiB, past 4 GiB and past 6 GiB are listed at the offsets the format gives", () => {
    const { archive, expected, reads } = sparse([
      { name: "big1", size: 0x8000_0001 }, // ends past 2 GiB, at an odd offset
      { name: "past-2g", size: 0x7fff_fffe },
      { name: "huge", size: 0xffff_ffff }, // the largest c_filesize
      { name: "boot/past-6g.img", size: 0x1234 },
    ]);
    const entries = parseCpioBytes(archive, "big.cpio");
    expect(entries.map((e) => ({ name: e.name, offset: BigInt(e.offset), size: e.size }))).toEqual(expected);
    expect(entries[1].offset).toBeGreaterThan(2 ** 31);
    expect(entries[2].offset).toBeGreaterThan(2 ** 32);
    expect(entries[3].offset).toBeGreaterThan(6 * 2 ** 30);
    expect(archive.length).toBeGreaterThan(2 ** 32 + 2 ** 31);
    // Headers and names only: 2 reads per entry, trailer included.
    expect(reads.length).toBe(2 * 5);
  });

  it("a c_filesize running past the end of a > 4 GiB archive → TRUNCATED naming the entry", () => {
    const { archive } = sparse([{ name: "a", size: 0xffff_ffff }, { name: "b", size: 0x10 }]);
    const cut: CpioBytes = { length: archive.length - 0x100, bytes: (o, l) => archive.bytes(o, l) };
    let e: unknown;
    try {
      parseCpioBytes(cut, "cut.cpio");
    } catch (x) {
      e = x;
    }
    expect(e).toBeInstanceOf(GuestImageError);
    expect((e as GuestImageError).code).toBe("TRUNCATED");
  });

  it("parseCpio (one buffer) still agrees with the same layout on a small archive", () => {
    const parts = [header("x", 5), new Uint8Array([1, 2, 3, 4, 5, 0, 0, 0]), header("TRAILER!!!", 0)];
    const buf = new Uint8Array(parts.reduce((n, p) => n + p.length, 0) + 3);
    let o = 0;
    // header(x) is 110 + 2 = 112 bytes (a multiple of 4): data at 112, 5 bytes padded to 8.
    for (const p of parts) {
      buf.set(p, o);
      o += p.length;
    }
    expect(parseCpio(buf)).toEqual([{ name: "x", mode: 0o100644, offset: 112, size: 5 }]);
  });
});
