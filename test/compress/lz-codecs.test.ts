// The lz4, lzo and zstd decoders (src/compress/{lz4,lzo,zstd}.ts) against the reference tools:
// every stream is made by Debian's `lz4`, `lzop` or `zstd` (or built from the format spec where
// the tool cannot make it), and what we decode must equal `<tool> -dc` byte for byte. Inputs: a
// real Debian arm64 kernel (fixture arm64/Image) and edge cases (empty, one byte, several frames,
// skippable frames, small and large blocks, linked and independent blocks, the largest window
// the tests can afford). Bad streams must fail with the right CodecError kind.
import { spawnSync } from "node:child_process";
import { beforeAll, describe, expect, it } from "vitest";
import { CodecError, type Codec } from "../../src/compress/codec.js";
import { lz4Codec } from "../../src/compress/lz4.js";
import { lzoCodec } from "../../src/compress/lzo.js";
import { zstdCodec } from "../../src/compress/zstd.js";
import { xxh32, xxh64 } from "../../src/compress/xxhash.js";
import { codeLike, eqBytes } from "../helpers/gzip.js";
import { readFixture } from "../qemu/fixtures.js";

/** Runs a reference tool on `input`, returning its stdout (fails the test if the tool does). */
function tool(cmd: string, args: string[], input: Uint8Array): Uint8Array {
  const r = spawnSync(cmd, args, { input, maxBuffer: 1 << 30 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} exited ${r.status}: ${r.stderr.toString()}`);
  return new Uint8Array(r.stdout.buffer, r.stdout.byteOffset, r.stdout.length);
}

const cat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
};

/** Decodes with our codec into a buffer of exactly the reference size (+slack), checks measure() and a head peek. */
function ours(codec: Codec, input: Uint8Array, want: Uint8Array): Uint8Array {
  const out = new Uint8Array(want.length);
  const r = codec.decode(input, out);
  expect(r.written).toBe(want.length);
  if (codec.measure) expect(codec.measure(input, 2 ** 32).written).toBe(want.length);
  const declared = codec.declaredSize?.(input);
  if (declared !== undefined) expect(declared).toBe(want.length);
  const n = Math.min(8192, want.length);
  const head = new Uint8Array(n);
  expect(codec.decode(input, head, { stopAfter: n }).written).toBe(n);
  expect(eqBytes(head, want.subarray(0, n))).toBe(true);
  return out.subarray(0, r.written);
}

function same(codec: Codec, stream: Uint8Array, reference: Uint8Array): void {
  const got = ours(codec, stream, reference);
  expect(got.length).toBe(reference.length);
  expect(eqBytes(got, reference)).toBe(true);
}

function fails(codec: Codec, input: Uint8Array, kind: CodecError["kind"], outSize = 1 << 26): CodecError {
  let err: unknown;
  try {
    codec.decode(input, new Uint8Array(outSize));
  } catch (e) {
    err = e;
  }
  expect(err, "the decoder must fail").toBeInstanceOf(CodecError);
  expect((err as CodecError).kind, (err as CodecError).message).toBe(kind);
  return err as CodecError;
}

let kernel: Uint8Array;
beforeAll(() => {
  kernel = readFixture("arm64/Image");
});

const SMALL: Array<[string, () => Uint8Array]> = [
  ["empty", () => new Uint8Array(0)],
  ["one byte", () => Uint8Array.of(0x5a)],
  ["text-like 100 KiB", () => codeLike(100_000, 3)],
  ["incompressible 300 KiB", () => {
    const b = new Uint8Array(300_000);
    let x = 0x12345678;
    for (let i = 0; i < b.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      b[i] = x & 0xff;
    }
    return b;
  }],
  ["one byte repeated 1 MiB", () => new Uint8Array(1 << 20).fill(7)],
];

describe("xxHash against the checksums the tools write", () => {
  it("XXH32 is the lz4 content checksum and XXH64's low half the zstd one, for lengths around the stripe sizes", () => {
    for (const n of [0, 1, 3, 4, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 100, 1000, 4096]) {
      const d = codeLike(n, n + 1);
      const l = tool("lz4", ["-c", "-q"], d);
      const z = tool("zstd", ["-c", "-q", "--check"], d);
      const dv = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.length);
      expect(xxh32(d)).toBe(dv(l).getUint32(l.length - 4, true));
      expect(Number(xxh64(d) & 0xffffffffn)).toBe(dv(z).getUint32(z.length - 4, true));
    }
  });
});

describe("lz4 == lz4 -dc", () => {
  const variants: Array<[string, string[]]> = [
    ["frame (defaults: 4 MiB linked blocks, content checksum)", []],
    ["legacy frame (lz4 -l, as Linux builds Image.lz4)", ["-l"]],
    ["64 KiB independent blocks with block checksums and content size", ["-B4", "-BX", "--content-size"]],
    ["64 KiB linked blocks, -9", ["-B4", "-BD", "-9"]],
    ["no content checksum, 256 KiB blocks", ["-B5", "--no-frame-crc"]],
  ];
  it.each(variants)("real kernel: %s", (_name, args) => {
    const z = tool("lz4", ["-c", "-q", ...args], kernel);
    const want = tool("lz4", ["-dc"], z);
    expect(eqBytes(want, kernel)).toBe(true);
    same(lz4Codec, z, want);
  });
  it.each(SMALL)("%s (frame and legacy)", (_name, make) => {
    const d = make();
    for (const args of [[], ["-l"], ["-BD", "-B4", "--content-size"]]) {
      const z = tool("lz4", ["-c", "-q", ...args], d);
      same(lz4Codec, z, tool("lz4", ["-dc"], z));
    }
  });
  it("several frames, a skippable frame between them, and a legacy frame after them", () => {
    const a = tool("lz4", ["-c", "-q"], codeLike(70_000, 1));
    const b = tool("lz4", ["-c", "-q", "-BD", "-B4"], codeLike(200_000, 2));
    const skip = cat(Uint8Array.of(0x53, 0x2a, 0x4d, 0x18, 5, 0, 0, 0), Uint8Array.of(1, 2, 3, 4, 5));
    const c = tool("lz4", ["-c", "-q", "-l"], codeLike(50_000, 3));
    const stream = cat(a, skip, b, c);
    same(lz4Codec, stream, tool("lz4", ["-dc"], stream));
  });
  it("a corrupt block, a bad content checksum, a bad block checksum, a truncated stream and too little room are refused", () => {
    const d = codeLike(200_000, 9);
    const z = tool("lz4", ["-c", "-q", "-BX"], d);
    const bad = z.slice();
    bad[bad.length - 2] ^= 0xff; // content checksum
    fails(lz4Codec, bad, "checksum");
    const badBlock = z.slice();
    badBlock[40] ^= 0x55; // inside the first block: its block checksum catches it
    fails(lz4Codec, badBlock, "checksum");
    fails(lz4Codec, z.subarray(0, z.length - 9), "truncated");
    fails(lz4Codec, z, "too-large", 1000);
    const noSums = tool("lz4", ["-c", "-q", "--no-frame-crc", "-l"], d);
    const broken = noSums.slice();
    // legacy block: size word at 4, data at 8; a token claiming far more literals than the block has
    broken[8] = 0xff;
    broken[9] = 0xff;
    broken[10] = 0xff;
    fails(lz4Codec, broken, "corrupt");
  });
  it("a frame that needs a dictionary is unsupported", () => {
    // FLG: version 01, block independence, DictID flag; BD 0x70; dictID; HC
    const desc = Uint8Array.of(0x61, 0x70, 1, 2, 3, 4);
    const hc = (xxh32(desc) >>> 8) & 0xff;
    fails(lz4Codec, cat(Uint8Array.of(0x04, 0x22, 0x4d, 0x18), desc, Uint8Array.of(hc, 0, 0, 0, 0)), "unsupported");
  });
});

describe("lzo (lzop) == lzop -dc", () => {
  it.each([[["-1"]], [["-9"]], [["-3", "--crc32"]], [["--no-checksum"]]])("real kernel: lzop %s", (args) => {
    const z = tool("lzop", ["-c", ...args], kernel);
    const want = tool("lzop", ["-dc"], z);
    expect(eqBytes(want, kernel)).toBe(true);
    same(lzoCodec, z, want);
  });
  it.each(SMALL)("%s", (_name, make) => {
    const d = make();
    for (const args of [["-1"], ["-9", "--crc32"]]) {
      const z = tool("lzop", ["-c", ...args], d);
      same(lzoCodec, z, tool("lzop", ["-dc"], z));
    }
  });
  it("corrupt data, a bad checksum, a truncated file and too little room are refused", () => {
    const d = codeLike(600_000, 4);
    const z = tool("lzop", ["-c", "-1"], d);
    const bad = z.slice();
    bad[bad.length - 1000] ^= 0x10;
    const e = (() => {
      try {
        lzoCodec.decode(bad, new Uint8Array(1 << 21));
      } catch (x) {
        return x;
      }
    })();
    expect(e).toBeInstanceOf(CodecError);
    expect(["corrupt", "checksum"]).toContain((e as CodecError).kind);
    const hdr = z.slice();
    hdr[20] ^= 1; // inside the header: the header checksum
    fails(lzoCodec, hdr, "checksum");
    fails(lzoCodec, z.subarray(0, z.length - 100), "truncated");
    fails(lzoCodec, z, "too-large", 1000);
  });
});

describe("zstd == zstd -dc", () => {
  const variants: Array<[string, string[], boolean]> = [
    ["level 3 with content size and checksum", ["-3"], false],
    ["level 12 (a slower strategy; -19 takes minutes on the CI machine)", ["-12"], false],
    ["level 1, no checksum", ["-1", "--no-check"], false],
    ["from a pipe: no Frame_Content_Size", ["-3"], true],
    ["--long=27: a 128 MiB window, no content size", ["-3", "--long=27"], true],
  ];
  it.each(variants)("real kernel: %s", { timeout: 240_000 }, (_name, args, pipe) => {
    const z = pipe
      ? tool("sh", ["-c", `zstd -q -c ${args.join(" ")}`], kernel) // stdin: the size is unknown to zstd
      : tool("zstd", ["-q", "-c", ...args, "--content-size"], kernel);
    const want = tool("zstd", ["-dc", "--long=31"], z);
    expect(eqBytes(want, kernel)).toBe(true);
    same(zstdCodec, z, want);
  });
  it.each(SMALL)("%s", (_name, make) => {
    const d = make();
    for (const args of [["-1"], ["-19", "--no-check"]]) {
      const z = tool("zstd", ["-q", "-c", ...args], d);
      same(zstdCodec, z, tool("zstd", ["-dc"], z));
    }
  });
  it("several frames with a skippable frame between them", () => {
    const a = tool("zstd", ["-q", "-c", "-5"], codeLike(300_000, 5));
    const b = tool("sh", ["-c", "zstd -q -c -1"], codeLike(100_000, 6));
    const skip = cat(Uint8Array.of(0x5e, 0x2a, 0x4d, 0x18, 3, 0, 0, 0), Uint8Array.of(9, 9, 9));
    const stream = cat(a, skip, b, a);
    same(zstdCodec, stream, tool("zstd", ["-dc"], stream));
  });
  it("a corrupt block, a bad checksum, a truncated frame and too little room are refused", () => {
    const d = codeLike(400_000, 7);
    const z = tool("zstd", ["-q", "-c", "-9"], d);
    const bad = z.slice();
    bad[bad.length - 2] ^= 0xff;
    fails(zstdCodec, bad, "checksum");
    fails(zstdCodec, z.subarray(0, z.length - 50), "truncated");
    fails(zstdCodec, z, "too-large", 1000);
    const mid = z.slice();
    for (let i = 100; i < 120; i++) mid[i] ^= 0xa5;
    const e = (() => {
      try {
        zstdCodec.decode(mid, new Uint8Array(1 << 20));
      } catch (x) {
        return x;
      }
    })();
    expect(e).toBeInstanceOf(CodecError);
    expect(["corrupt", "checksum", "truncated"]).toContain((e as CodecError).kind);
  });
  it("a frame that needs a dictionary is unsupported", () => {
    // Frame_Header_Descriptor: Single_Segment, Dictionary_ID_Flag 1; Dictionary_ID 7; FCS 1 byte
    fails(zstdCodec, Uint8Array.of(0x28, 0xb5, 0x2f, 0xfd, 0x21, 7, 1, 1, 0, 0, 0x41), "unsupported");
  });
});
