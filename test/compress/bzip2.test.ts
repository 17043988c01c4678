// The bzip2 decoder (src/compress/bzip2.ts) against `bzip2 -dc`: Debian's arm64 kernel as the
// kernel's `cmd_bzip2` writes it (bzip2 -9, then a 4-byte size), every block size, concatenated
// streams, inputs that stress each stage (long runs for RUNA/RUNB and the final RLE, random bytes
// for MTF, one symbol), and the failures (truncation, corrupt blocks and CRCs, room).
import { describe, expect, it } from "vitest";
import { bzip2 } from "../../src/compress/bzip2.js";
import { arm64Image, concat, decodeFails, decodeSame, fuzzCodec, throughput, tool } from "./lzma-tools.js";

const bunzip2 = (f: Uint8Array) => tool("bzip2", ["-dc"], f);
const random = (n: number) => tool("head", ["-c", String(n), "/dev/urandom"], new Uint8Array(0));

describe("bzip2: Debian kernels, ours == bzip2 -dc", () => {
  it("the arm64 Image as the kernel's cmd_bzip2 writes it (bzip2 -9, then size_append)", { timeout: 300_000 }, () => {
    const img = arm64Image();
    const stream = tool("bzip2", ["-9", "-c"], img);
    const size = new Uint8Array(4);
    new DataView(size.buffer).setUint32(0, img.length, true);
    const f = concat(stream, size);
    const ref = bunzip2(stream);
    expect(ref.length).toBe(img.length);
    const r = decodeSame(bzip2, f, ref, ref.length + 100);
    expect(r.consumed).toBe(stream.length);
    expect(bzip2.sniff(f)).toBe(true);
  });

  for (const level of [1, 2, 5, 9]) {
    it(`2 MiB of the arm64 Image at -${level}`, () => {
      const f = tool("bzip2", [`-${level}`, "-c"], arm64Image().subarray(4 << 20, 6 << 20));
      expect(decodeSame(bzip2, f, bunzip2(f)).consumed).toBe(f.length);
    });
  }

  it("concatenated streams with different block sizes, as bzip2 -dc reads them", () => {
    const a = tool("bzip2", ["-1", "-c"], arm64Image().subarray(0, 300000));
    const b = tool("bzip2", ["-9", "-c"], new Uint8Array(0));
    const c = tool("bzip2", ["-3", "-c"], arm64Image().subarray(300000, 900000));
    const f = concat(a, b, c);
    expect(decodeSame(bzip2, f, bunzip2(f)).consumed).toBe(f.length);
  });
});

describe("bzip2: edge cases", () => {
  const cases: Array<[string, () => Uint8Array]> = [
    ["empty", () => new Uint8Array(0)],
    ["one byte", () => new Uint8Array([0x42])],
    ["4 equal bytes (a run with a zero count)", () => new Uint8Array([9, 9, 9, 9])],
    ["3 MB of zeros (long runs: RUNA/RUNB and the final RLE)", () => new Uint8Array(3_000_000)],
    ["runs of every length 1–300 of varying bytes", () => {
      const parts: number[] = [];
      for (let n = 1; n <= 300; n++) for (let k = 0; k < n; k++) parts.push(n & 0xff);
      return new Uint8Array(parts);
    }],
    ["1 MB of random bytes (all 256 symbols, deep MTF)", () => random(1_000_000)],
    ["a 900 000-byte block exactly (-9)", () => arm64Image().subarray(0, 900_000)],
  ];
  for (const [name, make] of cases) {
    it(name, () => {
      const data = make();
      const f = tool("bzip2", ["-9", "-c"], data);
      const ref = bunzip2(f);
      expect(ref.length).toBe(data.length);
      expect(decodeSame(bzip2, f, ref).consumed).toBe(f.length);
    });
  }

  it("one byte short of room is too-large", () => {
    const data = arm64Image().subarray(0, 500_000);
    const f = tool("bzip2", ["-c"], data);
    decodeFails(bzip2, f, data.length - 1, "too-large");
    decodeFails(bzip2, tool("bzip2", ["-c"], new Uint8Array(100_000)), 99_999, "too-large");
  });

  it("truncated at ~150 points across the five blocks of a -1 stream → truncated", () => {
    const data = arm64Image().subarray(0, 450_000);
    const f = tool("bzip2", ["-1", "-c"], data);
    const cuts = [0, 1, 3, 4, 5, 9, 10, 14, 100, f.length - 10, f.length - 6, f.length - 4, f.length - 1];
    for (let c = 1000; c < f.length; c += 3001) cuts.push(c);
    for (const cut of cuts) {
      expect(() => bunzip2(f.subarray(0, cut)), `bzip2 -dc accepts a cut at ${cut}`).toThrow();
      decodeFails(bzip2, f.subarray(0, cut), data.length, "truncated");
    }
  });

  it("corrupt data: flipped bits anywhere → corrupt or checksum (never silent)", () => {
    const data = arm64Image().subarray(0, 450_000);
    const f = tool("bzip2", ["-1", "-c"], data);
    for (let at = 4; at < f.length; at += 4999) {
      const bad = f.slice();
      bad[at] ^= 0x04;
      expect(() => bunzip2(bad), `bzip2 -dc accepts a flip at ${at}`).toThrow();
      decodeFails(bzip2, bad, data.length * 2, ["corrupt", "checksum", "truncated"]);
    }
  });

  it("the block CRC and the combined CRC are both checked", () => {
    const f = tool("bzip2", ["-c"], arm64Image().subarray(0, 100_000));
    // Block CRC: the 32 bits after the 48-bit block magic at byte 4 (bytes 10–13).
    const badBlock = f.slice();
    badBlock[12] ^= 1;
    expect(decodeFails(bzip2, badBlock, 200_000, "checksum").message).toMatch(/block at 4: CRC/);
    // Combined CRC: the 32 bits before the final padding (< 8 bits), so the second-to-last byte
    // holds only CRC bits.
    const badEnd = f.slice();
    badEnd[badEnd.length - 2] ^= 0x10;
    expect(decodeFails(bzip2, badEnd, 200_000, "checksum").message).toMatch(/combined CRC/);
  });

  it("not bzip2: wrong signature is corrupt, sniff refuses it", () => {
    decodeFails(bzip2, new TextEncoder().encode("BZh0 hello"), 100, "corrupt");
    decodeFails(bzip2, new Uint8Array([0x42, 0x5a]), 100, "truncated");
    expect(bzip2.sniff(new TextEncoder().encode("BZh9 not really"))).toBe(false);
    expect(bzip2.sniff(tool("bzip2", ["-c"], new Uint8Array(1)))).toBe(true);
    expect(bzip2.sniff(tool("bzip2", ["-c"], new Uint8Array(0)))).toBe(true);
  });

  it("a stopAfter peek writes the first bytes", () => {
    const img = arm64Image().subarray(0, 2 << 20);
    const f = tool("bzip2", ["-c"], img);
    const out = new Uint8Array(img.length);
    const r = bzip2.decode(f, out, { stopAfter: 4096 });
    expect(r.written).toBeGreaterThanOrEqual(4096);
    expect(r.written).toBeLessThan(img.length);
    expect(Buffer.compare(out.subarray(0, 4096), img.subarray(0, 4096))).toBe(0);
  });
});

describe("bzip2: throughput", () => {
  it("decodes 8 MiB of the arm64 Image (bzip2 -9) at ≥ 0.33× `bzip2 -dc`", { timeout: 300_000 }, () => {
    const img = arm64Image().subarray(0, 8 << 20);
    const f = tool("bzip2", ["-9", "-c"], img);
    const t = throughput(bzip2, f, img.length, "bzip2");
    console.log(`bzip2: ours ${t.ours.toFixed(1)} MB/s, bzip2 -dc ${t.native.toFixed(1)} MB/s, ratio ${t.ratio.toFixed(2)}`);
    expect(t.ratio).toBeGreaterThanOrEqual(0.33);
  });
});

describe("bzip2: mutated streams", () => {
  it("3000 mutants of a real kernel slice: a CodecError or success, never another exception, never past the room", { timeout: 300_000 }, () => {
    const data = arm64Image().subarray(0x10000, 0x10000 + 60_000);
    const f = tool("bzip2", ["-1", "-c"], data);
    const failed = fuzzCodec(bzip2, f, data.length + 100, 3000);
    expect(failed).toBeGreaterThan(1000);
  });
});
