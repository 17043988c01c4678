// The inflate abstraction and the streaming gzip member file (src/compress/), run against both
// inflaters: node:zlib (what the Node entry registers) and the Compression Streams API (the
// default for browsers). Members are built field by field from RFC 1952 (test/helpers/gzip.ts)
// with node:zlib's deflateRawSync and crc32 as the independent reference.
import zlib from "node:zlib";
import { describe, expect, it } from "vitest";
import { openGunzip, readGzipMember, type GunzipOptions, type GzipPayload } from "../src/compress/gunzip.js";
import { decompressionStreamInflater, getInflater, setInflater, type Inflater } from "../src/compress/inflate.js";
import { nodeInflater } from "../src/compress/inflate-node.js";
import { GuestImageError } from "../src/errors.js";
import { bytesFile, type ImageFile } from "../src/sources/source.js";
import { codeLike, eqBytes, gzipMember } from "./helpers/gzip.js";
import { INFLATERS, withInflater } from "./helpers/vm.js";

const crc32 = (d: Uint8Array, p: number) => zlib.crc32(d, p);

/** A file that counts its reads, to see restarts. */
function counted(bytes: Uint8Array): ImageFile & { reads: number; bytesRead: number } {
  const f = bytesFile("payload.gz", bytes);
  const c = {
    name: f.name, size: f.size, reads: 0, bytesRead: 0,
    async read(dst: Uint8Array, pos: number) {
      c.reads++;
      c.bytesRead += dst.length;
      await f.read(dst, pos);
    },
    close: () => f.close(),
  };
  return c;
}

function open(inflater: Inflater, bytes: Uint8Array, o: Partial<GunzipOptions> = {}): Promise<GzipPayload> {
  return openGunzip({
    file: bytesFile("payload.gz", bytes), start: 0, end: bytes.length, name: "payload.gz", what: "gzip data",
    inflater, crc32, cap: 2 ** 32, capWhat: "allowed", headBytes: 8192, ...o,
  });
}

async function rejects(p: Promise<unknown>, code: string, field: string): Promise<GuestImageError> {
  const e = await p.then(() => undefined, (x: unknown) => x);
  expect(e).toBeInstanceOf(GuestImageError);
  const err = e as GuestImageError;
  expect(err.code).toBe(code);
  expect(err.field).toBe(field);
  expect(err.message).toContain(field);
  return err;
}

describe("inflater registry", () => {
  it("the Node entry registers node:zlib; setInflater swaps and returns the previous one", async () => {
    await import("../src/node.js");
    expect(getInflater()).toBe(nodeInflater);
    const prev = setInflater(decompressionStreamInflater);
    expect(prev).toBe(nodeInflater);
    expect(getInflater()).toBe(decompressionStreamInflater);
    setInflater(prev);
  });

  it("refuses something that is not an inflater", () => {
    expect(() => setInflater({} as Inflater)).toThrow(GuestImageError);
  });
});

describe("gzip header (RFC 1952 §2.3.1)", () => {
  const payload = codeLike(5000);

  it("reads MTIME, XFL, OS, FEXTRA, FNAME, FCOMMENT, FHCRC and the trailer", async () => {
    const b = gzipMember(payload, { mtime: 0x5f5e0ff, xfl: 2, os: 3, extra: Uint8Array.of(0x41, 0x70, 2, 0, 1, 2), fname: "Image", fcomment: "a comment", fhcrc: true });
    const m = await readGzipMember({ file: bytesFile("x", b), start: 0, end: b.length, name: "x", what: "gzip data" }, crc32);
    const headerLen = 10 + 2 + 6 + "Image\0".length + "a comment\0".length + 2;
    expect(m).toMatchObject({
      flg: 0x02 | 0x04 | 0x08 | 0x10, mtime: 0x5f5e0ff, xfl: 2, os: 3, fname: "Image", fcomment: "a comment",
      deflateStart: headerLen, deflateEnd: b.length - 8, crc32: zlib.crc32(payload), isize: payload.length,
    });
  });

  const cases: Array<[string, Uint8Array, string, string]> = [
    ["ID1 ID2 not 1f 8b", (() => { const b = gzipMember(payload); b[1] = 0x8c; return b; })(), "BAD_MAGIC", "ID1"],
    ["CM other than 8", gzipMember(payload, { cm: 7 }), "BAD_HEADER", "CM"],
    ["a reserved FLG bit (0x20)", gzipMember(payload, { extraFlags: 0x20 }), "BAD_HEADER", "FLG"],
    ["a reserved FLG bit (0x80)", gzipMember(payload, { extraFlags: 0x80 }), "BAD_HEADER", "FLG"],
    ["FHCRC that does not match", gzipMember(payload, { fhcrc: true, hcrc: 0x1234 }), "BAD_CHECKSUM", "FHCRC"],
    ["shorter than 18 bytes", gzipMember(new Uint8Array(0)).subarray(0, 17), "TRUNCATED", "ID1"],
    ["XLEN past the end", (() => { const b = gzipMember(payload, { extra: new Uint8Array(4) }).slice(0, 40); new DataView(b.buffer).setUint16(10, 0xffff, true); return b; })(), "TRUNCATED", "XLEN"],
    ["FNAME with no terminating NUL", Uint8Array.of(0x1f, 0x8b, 8, 0x08, 0, 0, 0, 0, 0, 3, ...new Array(30).fill(0x41)), "TRUNCATED", "FNAME"],
  ];
  it.each(cases)("refuses %s", async (_what, bytes, code, field) => {
    await rejects(readGzipMember({ file: bytesFile("x", bytes), start: 0, end: bytes.length, name: "x", what: "gzip data" }, crc32), code, field);
  });

  it("FTEXT (0x01) is allowed: it is only a hint", async () => {
    const b = gzipMember(payload, { extraFlags: 0x01 });
    expect((await readGzipMember({ file: bytesFile("x", b), start: 0, end: b.length, name: "x", what: "gzip data" }, crc32)).flg).toBe(1);
  });
});

describe.each(INFLATERS)("gzip member as a file, with the $name inflater", (inflater) => {
  withInflater(inflater);

  const payload = codeLike(3 * 1024 * 1024 + 123, 7);
  const member = gzipMember(payload, { fname: "Image" });

  it("size is ISIZE, the head is decoded, and positional reads return the payload", async () => {
    const f = await open(inflater, member);
    expect(f.size).toBe(payload.length);
    expect(eqBytes(f.head, payload.subarray(0, 8192))).toBe(true);
    const all = new Uint8Array(payload.length);
    await f.read(all, 0);
    expect(eqBytes(all, payload)).toBe(true);
  });

  it("reads forward from the cursor without restarting, and backward by restarting", async () => {
    const file = counted(member);
    const f = await open(inflater, member, { file });
    const afterOpen = file.bytesRead;
    const a = new Uint8Array(100_000);
    await f.read(a, 8192);
    await f.read(a.subarray(0, 50_000), 8192 + 100_000);
    const forward = file.bytesRead - afterOpen;
    expect(forward).toBeLessThan(member.length); // no second pass over the input
    const b = new Uint8Array(1000);
    await f.read(b, 20_000); // before the cursor: restart
    expect(eqBytes(b, payload.subarray(20_000, 21_000))).toBe(true);
    expect(file.bytesRead - afterOpen).toBeGreaterThan(forward);
    await f.read(b, 100); // inside the head: served from the cache
    expect(eqBytes(b, payload.subarray(100, 1100))).toBe(true);
  });

  it("a payload shorter than the head is verified when opened", async () => {
    const small = codeLike(3000);
    const f = await open(inflater, gzipMember(small));
    expect(eqBytes(f.head, small)).toBe(true);
    await rejects(open(inflater, gzipMember(small, { crc32: 1 })), "BAD_CHECKSUM", "CRC32");
  });

  it("a wrong CRC32 is found when the last byte is read", async () => {
    const f = await open(inflater, gzipMember(payload, { crc32: zlib.crc32(payload) ^ 1 }));
    const all = new Uint8Array(payload.length);
    await rejects(f.read(all, 0), "BAD_CHECKSUM", "CRC32");
  });

  it("needUpTo(n): a read reaching n drains and verifies the rest", async () => {
    const f = await open(inflater, gzipMember(payload, { crc32: 5 }));
    await f.needUpTo(100_000);
    await rejects(f.read(new Uint8Array(100_000 - 8192), 8192), "BAD_CHECKSUM", "CRC32");
    const g = await open(inflater, member);
    await g.needUpTo(100_000);
    await g.read(new Uint8Array(100_000 - 8192), 8192); // verified: fine
  });

  it("needUpTo(0) or a read end inside the head verifies at once", async () => {
    const f = await open(inflater, gzipMember(payload, { crc32: 5 }));
    await rejects(f.needUpTo(0), "BAD_CHECKSUM", "CRC32");
    const g = await open(inflater, gzipMember(payload, { crc32: 5 }));
    await rejects(g.needUpTo(4096), "BAD_CHECKSUM", "CRC32");
  });

  it("ISIZE larger than the data: TRUNCATED when the data runs out", async () => {
    const f = await open(inflater, gzipMember(payload, { isize: payload.length + 1 }));
    expect(f.size).toBe(payload.length + 1);
    await rejects(f.read(new Uint8Array(f.size), 0), "TRUNCATED", "ISIZE");
  });

  it("ISIZE smaller than the data: TOO_LARGE as soon as the output passes it", async () => {
    const f = await open(inflater, gzipMember(payload, { isize: payload.length - 1 }));
    await rejects(f.read(new Uint8Array(f.size), 0), "TOO_LARGE", "ISIZE");
  });

  it("ISIZE above the cap: TOO_LARGE before anything is decompressed", async () => {
    const file = counted(member);
    const e = await rejects(open(inflater, member, { file, cap: payload.length - 1, capWhat: "of guest RAM from 0x1000" }), "TOO_LARGE", "ISIZE");
    expect(e.message).toContain("of guest RAM from 0x1000");
    expect(file.bytesRead).toBeLessThan(10_000); // header and trailer only
  });

  it("ISIZE 0 is refused", async () => {
    await rejects(open(inflater, gzipMember(new Uint8Array(0))), "BAD_HEADER", "ISIZE");
  });

  it("corrupt deflate data: BAD_HEADER naming the deflate data", async () => {
    const bad = gzipMember(payload, { deflate: Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff) }); // BTYPE 11: reserved
    const e = await rejects(open(inflater, bad), "BAD_HEADER", "deflate");
    expect(e.message).toMatch(/corrupt deflate data/);
  });

  it("deflate data cut short: TRUNCATED", async () => {
    const d = new Uint8Array(zlib.deflateRawSync(payload));
    const f = open(inflater, gzipMember(payload, { deflate: d.subarray(0, d.length >> 1) }));
    const e = await f.then(async (g) => g.read(new Uint8Array(g.size), 0)).then(() => undefined, (x: unknown) => x);
    expect((e as GuestImageError).code).toBe("TRUNCATED");
  });

  it("concatenated members: refused (ISIZE at the end would describe only the last)", async () => {
    const two = new Uint8Array([...gzipMember(payload.subarray(0, 100_000)), ...gzipMember(payload.subarray(100_000, 200_000))]);
    const e = await open(inflater, two).then(async (g) => g.read(new Uint8Array(g.size), 0)).then(() => undefined, (x: unknown) => x);
    expect(e).toBeInstanceOf(GuestImageError);
    // node:zlib says where its deflate data ended, so the second member is named; the
    // DecompressionStream API cannot, and the trailer check (the last member's CRC32 against
    // the first member's data) refuses it instead.
    if (inflater === nodeInflater) expect((e as GuestImageError).code).toBe("UNSUPPORTED");
    else expect((e as GuestImageError).code).toBe("BAD_CHECKSUM");
  });

  it("output chunks stay small (a bomb costs a chunk of memory, not its size)", async () => {
    const zeros = new Uint8Array(zlib.deflateRawSync(new Uint8Array(64 * 1024 * 1024)));
    async function* input() {
      yield zeros;
    }
    const s = inflater.inflateRaw(input());
    let max = 0;
    let total = 0;
    for (let c = await s.next(); c; c = await s.next()) {
      max = Math.max(max, c.length);
      total += c.length;
      if (total > 8 * 1024 * 1024) break;
    }
    s.close();
    expect(max).toBeLessThanOrEqual(1024 * 1024);
  });

  it("an error reading the compressed input comes out unchanged", async () => {
    const broken: ImageFile = {
      name: "payload.gz", size: member.length,
      async read(dst, pos) {
        if (pos > 100_000 && pos < member.length - 8) throw new GuestImageError("IO", "disk on fire", { image: "payload.gz" });
        dst.set(member.subarray(pos, pos + dst.length));
      },
      async close() {},
    };
    // node:zlib may read ahead far enough to hit it while decoding the head; either way it surfaces.
    const e = await open(inflater, member, { file: broken })
      .then((g) => g.read(new Uint8Array(g.size - 8192), 8192))
      .then(() => undefined, (x: unknown) => x);
    expect((e as GuestImageError).code).toBe("IO");
    expect((e as GuestImageError).message).toContain("disk on fire");
  });
});

describe("inflaters agree", () => {
  it("node:zlib and DecompressionStream produce the same bytes as zlib.inflateRawSync", async () => {
    const payload = codeLike(2_000_000, 3);
    const d = new Uint8Array(zlib.deflateRawSync(payload, { level: 9 }));
    for (const inf of INFLATERS) {
      async function* input() {
        for (let i = 0; i < d.length; i += 70_000) yield d.subarray(i, i + 70_000);
      }
      const s = inf.inflateRaw(input());
      const parts: Uint8Array[] = [];
      for (let c = await s.next(); c; c = await s.next()) parts.push(c.slice());
      expect(eqBytes(Buffer.concat(parts), new Uint8Array(zlib.inflateRawSync(d)))).toBe(true);
      if (inf.name === "node:zlib") expect(s.consumed()).toBe(d.length);
    }
  });
});
