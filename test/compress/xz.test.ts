// The .xz decoder (src/compress/xz.ts) against xz-utils: every output is compared byte for byte
// with `xz -dc` of the same file, for Debian's real kernels (the amd64 bzImage payload exactly as
// the kernel build compressed it, the arm64 Image recompressed with each preset, check and filter),
// and the stream structure used for the edge cases comes from `xz --robot --list -vv`.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { xz } from "../../src/compress/xz.js";
import { arm64Image, bzImagePayload, concat, decodeFails, decodeSame, fuzzCodec, throughput, tool } from "./lzma-tools.js";

const unxz = (f: Uint8Array) => tool("xz", ["-dc", "--single-stream"], f);
const unxzAll = (f: Uint8Array) => tool("xz", ["-dc"], f);

/** Block and index offsets of a single-stream .xz file, from `xz --robot --list -vv` (xz-utils' doc: "Robot mode"). */
function layout(f: Uint8Array): { blocks: Array<{ start: number; headerSize: number; compressedSize: number }>; indexStart: number; uncompressed: number } {
  const dir = mkdtempSync(join(tmpdir(), "xz-list-"));
  const file = join(dir, "f.xz");
  writeFileSync(file, f);
  const text = execFileSync("xz", ["--robot", "--list", "-vv", file], { encoding: "utf8" });
  rmSync(dir, { recursive: true });
  const blocks: Array<{ start: number; headerSize: number; compressedSize: number; totalSize: number }> = [];
  for (const line of text.split("\n")) {
    // block, stream, block in stream, block in file, compressed offset, uncompressed offset, total size,
    // uncompressed size, ratio, check, check value, header size, size flags, compressed size, …
    const c = line.split("\t");
    if (c[0] === "block") blocks.push({ start: Number(c[4]), totalSize: Number(c[6]), headerSize: Number(c[11]), compressedSize: Number(c[13]) });
  }
  const last = blocks[blocks.length - 1]!;
  // totals: streams, blocks, compressed size, uncompressed size, …
  const totals = text.split("\n").find((l) => l.startsWith("totals\t"))!.split("\t");
  return { blocks, indexStart: last.start + last.totalSize, uncompressed: Number(totals[4]) };
}

describe("xz: Debian kernels, ours == xz -dc", () => {
  it("the amd64 bzImage payload as the kernel build wrote it (x86 BCJ + LZMA2, CRC32, 32 MiB dictionary, 4-byte size after)", { timeout: 300_000 }, () => {
    const payload = bzImagePayload();
    const ref = unxz(payload);
    const r = decodeSame(xz, payload, ref, ref.length + 4096);
    // The stream ends where the kernel's size_append starts; that size is the output's.
    expect(r.consumed).toBe(payload.length - 4);
    expect(Buffer.from(payload.subarray(payload.length - 4)).readUInt32LE()).toBe(ref.length);
  });

  it("the arm64 Image at preset -6 with an exactly sized room, and declaredSize from the index", { timeout: 300_000 }, () => {
    const img = arm64Image();
    const f = tool("xz", ["-6", "-T1", "-c"], img);
    const ref = unxz(f);
    expect(ref.length).toBe(img.length);
    const r = decodeSame(xz, f, ref);
    expect(r.consumed).toBe(f.length);
    expect(xz.declaredSize!(f)).toBe(layout(f).uncompressed);
  });

  const slice = () => arm64Image().subarray(0, 3 << 20);
  const variants: Array<[string, string[]]> = [
    ["preset -0", ["-0"]],
    ["preset -9e", ["-9e"]],
    ["--check=crc32", ["--check=crc32"]],
    ["--check=crc64", ["--check=crc64"]],
    ["--check=sha256", ["--check=sha256"]],
    ["--check=none", ["--check=none"]],
    ["--arm64 --lzma2 (the kernel's own filter for this Image)", ["--arm64", "--lzma2"]],
    ["--x86 --lzma2", ["--x86", "--lzma2"]],
    ["--x86=start=0x1000 --lzma2", ["--x86=start=4096", "--lzma2"]],
    ["--arm --lzma2", ["--arm", "--lzma2"]],
    ["--armthumb --lzma2", ["--armthumb", "--lzma2"]],
    ["--powerpc --lzma2", ["--powerpc", "--lzma2"]],
    ["--sparc --lzma2", ["--sparc", "--lzma2"]],
    ["--ia64 --lzma2", ["--ia64", "--lzma2"]],
    ["--delta=dist=4 --lzma2", ["--delta=dist=4", "--lzma2"]],
    ["--delta=dist=256 --arm64 --lzma2 (three filters)", ["--delta=dist=256", "--arm64", "--lzma2"]],
    ["--lzma2=lc=0,lp=4,pb=4", ["--lzma2=preset=6,lc=0,lp=4,pb=4"]],
    ["--lzma2=lc=4,lp=0,pb=0,dict=4KiB (smallest dictionary)", ["--lzma2=preset=6,lc=4,lp=0,pb=0,dict=4KiB"]],
    ["--block-size=200000 (16 blocks)", ["--block-size=200000"]],
    ["-T2 --block-size=1MiB (sizes in block headers)", ["-T2", "--block-size=1MiB"]],
  ];
  for (const [name, args] of variants) {
    it(`3 MiB of the arm64 Image, ${name}`, () => {
      const f = tool("xz", ["-c", ...args], slice());
      const r = decodeSame(xz, f, unxz(f));
      expect(r.consumed).toBe(f.length);
    });
  }

  it("several streams with stream padding between and after, as xz -dc reads them", () => {
    const a = tool("xz", ["-c", "--check=crc64"], arm64Image().subarray(0, 1 << 20));
    const b = tool("xz", ["-c", "--x86", "--lzma2"], arm64Image().subarray(1 << 20, 3 << 20));
    const e = tool("xz", ["-c"], new Uint8Array(0));
    const f = concat(a, new Uint8Array(8), e, b, new Uint8Array(4));
    const r = decodeSame(xz, f, unxzAll(f));
    expect(r.consumed).toBe(f.length);
    expect(xz.declaredSize!(f)).toBe(3 << 20);
  });
});

describe("xz: edge cases", () => {
  it("empty and one-byte inputs", () => {
    for (const data of [new Uint8Array(0), new Uint8Array([0x5a])]) {
      const f = tool("xz", ["-c"], data);
      expect(decodeSame(xz, f, unxz(f)).consumed).toBe(f.length);
    }
  });

  it("an uncompressible input (LZMA2 uncompressed chunks)", () => {
    const rnd = tool("head", ["-c", "300000", "/dev/urandom"], new Uint8Array(0));
    const f = tool("xz", ["-c"], rnd);
    decodeSame(xz, f, unxz(f));
  });

  it("stops at the room: one byte short is too-large, the block's declared size is checked first", () => {
    const data = arm64Image().subarray(0, 1 << 20);
    const f = tool("xz", ["-c"], data);
    decodeFails(xz, f, data.length - 1, "too-large");
    decodeSame(xz, f, data, data.length);
    const sized = tool("xz", ["-c", "-T2", "--block-size=256KiB"], data);
    const e = decodeFails(xz, sized, data.length - 1, "too-large");
    expect(e.message).toMatch(/declares/);
  });

  it("truncated at every block boundary, inside every header, check, index and footer → truncated", () => {
    const data = arm64Image().subarray(0, 1 << 20);
    const f = tool("xz", ["-c", "--check=sha256", "--block-size=300000"], data);
    const { blocks, indexStart } = layout(f);
    expect(blocks.length).toBe(4);
    const cuts = new Set<number>([0, 1, 6, 11, 12, indexStart, indexStart + 1, f.length - 12, f.length - 1]);
    for (const b of blocks) {
      for (const d of [0, 1, b.headerSize - 1, b.headerSize, b.headerSize + 1, b.headerSize + 5000]) cuts.add(b.start + d);
      const dataEnd = b.start + b.headerSize + b.compressedSize;
      for (const d of [-1, 0, 1, 20, 31]) cuts.add(dataEnd + d); // the end of the LZMA2 data, padding, check
    }
    for (const cut of [...cuts].sort((x, y) => x - y)) {
      if (cut >= f.length) continue;
      const e = decodeFails(xz, f.subarray(0, cut), data.length, "truncated");
      expect(e.offset, `cut ${cut}`).toBeLessThanOrEqual(cut);
    }
  });

  it("corrupt bytes in headers, data, check, index and footer → corrupt or checksum, never silent", () => {
    const data = arm64Image().subarray(0, 1 << 20);
    const f = tool("xz", ["-c", "--check=crc64", "--block-size=300000"], data);
    const { blocks, indexStart } = layout(f);
    const spots = [0, 5, 6, 7, 8, indexStart, indexStart + 1, indexStart + 2, f.length - 12, f.length - 8, f.length - 4, f.length - 1];
    for (const b of blocks) spots.push(b.start, b.start + 1, b.start + 3, b.start + b.headerSize + 100, b.start + b.headerSize + b.compressedSize + 1);
    const sizeBytes = new Set([...blocks.map((b) => b.start), indexStart]);
    for (const at of spots) {
      const bad = f.slice();
      bad[at] ^= 0x41;
      // The reference agrees the file is bad.
      expect(() => unxzAll(bad), `xz -dc accepts a flip at ${at}`).toThrow();
      // A block header size byte (or the index indicator turned into one) can point past the end
      // of the input: truncated too (xz -dc then says "Unexpected end of input").
      decodeFails(xz, bad, data.length, sizeBytes.has(at) ? ["corrupt", "checksum", "truncated"] : ["corrupt", "checksum", "unsupported"]);
    }
  });

  it("not an xz stream: wrong magic is corrupt, a short input truncated", () => {
    decodeFails(xz, new Uint8Array([0xfd, 0x37, 0x7a]), 100, "truncated");
    decodeFails(xz, new TextEncoder().encode("hello, world"), 100, "corrupt");
    expect(xz.sniff(new TextEncoder().encode("hello, world"))).toBe(false);
    expect(xz.sniff(tool("xz", ["-c"], new Uint8Array(1)))).toBe(true);
  });

  it("a stopAfter peek writes the first bytes without decoding the rest", () => {
    const img = arm64Image().subarray(0, 2 << 20);
    const f = tool("xz", ["-c", "--arm64", "--lzma2"], img);
    const out = new Uint8Array(img.length);
    const r = xz.decode(f, out, { stopAfter: 4096 });
    expect(r.written).toBeGreaterThanOrEqual(4096);
    expect(r.written).toBeLessThan(img.length);
    expect(Buffer.compare(out.subarray(0, 4096), img.subarray(0, 4096))).toBe(0);
  });
});

describe("xz: throughput", () => {
  it("decodes the amd64 bzImage payload at ≥ 0.33× `xz -dc`", { timeout: 300_000 }, () => {
    const payload = bzImagePayload();
    const size = Buffer.from(payload.subarray(payload.length - 4)).readUInt32LE();
    const t = throughput(xz, payload.subarray(0, payload.length - 4), size, "xz");
    console.log(`xz: ours ${t.ours.toFixed(1)} MB/s, xz -dc ${t.native.toFixed(1)} MB/s, ratio ${t.ratio.toFixed(2)}`);
    expect(t.ratio).toBeGreaterThanOrEqual(0.33);
  });
});

describe("xz: mutated streams", () => {
  it("3000 mutants of a real kernel slice: a CodecError or success, never another exception, never past the room", { timeout: 300_000 }, () => {
    const data = arm64Image().subarray(0x10000, 0x10000 + 60_000);
    const f = tool("xz", ["-c", "--check=crc32", "--x86", "--lzma2", "--block-size=20000"], data);
    const failed = fuzzCodec(xz, f, data.length + 100, 3000);
    expect(failed).toBeGreaterThan(1000);
  });
});
