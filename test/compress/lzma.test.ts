// The .lzma ("alone") decoder (src/compress/lzma.ts) against xz-utils' `lzma -dc`: Debian's arm64
// kernel compressed as the kernel's `cmd_lzma` does (lzma -9, then a 4-byte size), other presets
// and lc/lp/pb, a header with a known size, and the failures (truncation, bad header, room).
import { describe, expect, it } from "vitest";
import { lzma } from "../../src/compress/lzma.js";
import { arm64Image, concat, decodeFails, decodeSame, fuzzCodec, throughput, tool } from "./lzma-tools.js";

const unlzma = (f: Uint8Array) => tool("lzma", ["-dc"], f);

/** The same stream with the header's uncompressed size filled in (lzma-file-format: bytes 5–12, u64 LE). */
function withKnownSize(f: Uint8Array, size: number): Uint8Array {
  const g = f.slice();
  new DataView(g.buffer).setUint32(5, size, true);
  new DataView(g.buffer).setUint32(9, 0, true);
  return g;
}

describe("lzma: Debian kernels, ours == lzma -dc", () => {
  // -3 rather than the kernel's -9: same format and end marker, compressed in a fraction of the
  // time on a busy CI machine (-9 spends a minute on 33 MB); the decoder does not care.
  it("the arm64 Image as the kernel's cmd_lzma writes it (lzma, then size_append)", { timeout: 300_000 }, () => {
    const img = arm64Image();
    const stream = tool("lzma", ["-3", "-c"], img);
    const size = new Uint8Array(4);
    new DataView(size.buffer).setUint32(0, img.length, true);
    const f = concat(stream, size);
    const ref = unlzma(stream);
    expect(ref.length).toBe(img.length);
    const r = decodeSame(lzma, f, ref, ref.length + 100);
    expect(r.consumed).toBe(stream.length);
    expect(lzma.declaredSize!(f)).toBeUndefined(); // xz-utils writes "unknown" (all ones)
    expect(lzma.sniff(f)).toBe(true);
  });

  const slice = () => arm64Image().subarray(0, 3 << 20);
  const variants: Array<[string, string[]]> = [
    ["-0", ["-0"]],
    ["-6e", ["-6e"]],
    ["lc=0,lp=4,pb=4", ["--lzma1=preset=6,lc=0,lp=4,pb=4"]],
    ["lc=4,lp=0,pb=0", ["--lzma1=preset=6,lc=4,lp=0,pb=0"]],
    ["lc=1,lp=2,pb=3, 64 KiB dictionary", ["--lzma1=preset=6,lc=1,lp=2,pb=3,dict=64KiB"]],
    ["mode=fast, nice=273 (longest matches)", ["--lzma1=preset=6,mode=fast,nice=273"]],
  ];
  for (const [name, args] of variants) {
    it(`3 MiB of the arm64 Image, ${name}`, () => {
      const f = tool("xz", ["--format=lzma", "-c", ...args], slice());
      const r = decodeSame(lzma, f, unlzma(f));
      expect(r.consumed).toBe(f.length);
    });
  }

  it("a header with the size known (lzma -dc stops there; the end marker after it is left over)", () => {
    const data = arm64Image().subarray(0, 1 << 20);
    const f = withKnownSize(tool("lzma", ["-c"], data), data.length);
    const ref = unlzma(f);
    expect(lzma.declaredSize!(f)).toBe(ref.length);
    const r = decodeSame(lzma, f, ref, ref.length + 1000);
    expect(r.consumed).toBeLessThanOrEqual(f.length);
    decodeFails(lzma, f, data.length - 1, "too-large"); // refused before decoding
  });
});

describe("lzma: edge cases", () => {
  it("empty and one-byte inputs, and output exactly filling the room", () => {
    for (const data of [new Uint8Array(0), new Uint8Array([7]), arm64Image().subarray(0, 65536)]) {
      const f = tool("lzma", ["-c"], data);
      const ref = unlzma(f);
      expect(decodeSame(lzma, f, ref).consumed).toBe(f.length);
    }
  });

  it("one byte short of room is too-large (unknown size)", () => {
    const data = arm64Image().subarray(0, 1 << 20);
    const f = tool("lzma", ["-c"], data);
    decodeFails(lzma, f, data.length - 1, "too-large");
    decodeFails(lzma, f, 1000, "too-large");
  });

  it("truncated anywhere → truncated", () => {
    const data = arm64Image().subarray(0, 1 << 19);
    const f = tool("lzma", ["-c"], data);
    const cuts = [0, 1, 5, 12, 13, 14, 17, 18, 100, f.length >> 1, f.length - 6, f.length - 2, f.length - 1];
    for (let c = 1000; c < f.length; c += 7919) cuts.push(c);
    for (const cut of cuts) {
      expect(() => unlzma(f.subarray(0, cut)), `lzma -dc accepts a cut at ${cut}`).toThrow();
      decodeFails(lzma, f.subarray(0, cut), data.length, "truncated");
    }
  });

  it("bad headers: properties out of range, lc + lp > 4, range coder's first byte not 0", () => {
    const f = tool("lzma", ["-c"], arm64Image().subarray(0, 4096));
    for (const [at, v] of [[0, 225], [0, 0x5d + 2], [13, 1]] as const) {
      // 0x5d is lc=3 lp=0 pb=2; +2 makes lc 5, so lc + lp = 5.
      const bad = f.slice();
      bad[at] = v;
      expect(() => unlzma(bad), `lzma -dc accepts byte ${at} = ${v}`).toThrow();
      decodeFails(lzma, bad, 8192, "corrupt");
      expect(lzma.sniff(bad)).toBe(false);
    }
  });

  it("a corrupt stream with the size known fails instead of writing past it", () => {
    const data = arm64Image().subarray(0, 1 << 20);
    const f = withKnownSize(tool("lzma", ["-c"], data), data.length);
    let failures = 0;
    for (let at = 2000; at < f.length; at += 50021) {
      const bad = f.slice();
      bad[at] ^= 0x10;
      const out = new Uint8Array(data.length + 64);
      try {
        lzma.decode(bad, out);
      } catch (e) {
        failures++;
        expect((e as Error).name).toBe("CodecError");
      }
      expect(out.subarray(data.length).every((b) => b === 0), `flip at ${at} wrote past the declared size`).toBe(true);
    }
    expect(failures).toBeGreaterThan(0);
  });
});

describe("lzma: throughput", () => {
  it("decodes 8 MiB of the arm64 Image (lzma -6) at ≥ 0.33× `lzma -dc`", { timeout: 300_000 }, () => {
    const img = arm64Image().subarray(0, 8 << 20);
    const f = tool("lzma", ["-6", "-c"], img);
    const t = throughput(lzma, f, img.length, "lzma");
    console.log(`lzma: ours ${t.ours.toFixed(1)} MB/s, lzma -dc ${t.native.toFixed(1)} MB/s, ratio ${t.ratio.toFixed(2)}`);
    expect(t.ratio).toBeGreaterThanOrEqual(0.33);
  });
});

describe("lzma: mutated streams", () => {
  it("3000 mutants of a real kernel slice: a CodecError or success, never another exception, never past the room", { timeout: 300_000 }, () => {
    const data = arm64Image().subarray(0x10000, 0x10000 + 60_000);
    const f = tool("lzma", ["-c"], data);
    const failed = fuzzCodec(lzma, f, data.length + 100, 3000);
    expect(failed).toBeGreaterThan(1000);
  });
});
