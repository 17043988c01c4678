// lzop files on the path a real load takes: vm.loadKernel of an `.lzo` file decodes every LZO1X
// block in the Wasm core (assembly/lzo.ts), straight into guest RAM. What lands there must equal
// `lzop -dc` byte for byte (real Debian arm64 kernel, edge cases, and LZO1X streams built by hand
// from the instruction encoding, which lzop itself decodes as the reference); bad streams fail with
// typed errors and leave RAM and the ledger as they were; the core's loop and the TypeScript
// decoder (for outputs outside a core's memory) give the same bytes and the same errors.
// Checksums are checked against zlib's (Adler-32 from a stored zlib stream's trailer, RFC 1950).
import { spawnSync } from "node:child_process";
import { crc32 as zlibCrc32, deflateSync } from "node:zlib";
import { beforeAll, describe, expect, it, vi } from "vitest";
import { CodecError } from "../../src/compress/codec.js";
import { lzoCodec } from "../../src/compress/lzo.js";
import { createVm, fromMap, GuestImageError, type Vm } from "../../src/node.js";
import { codeLike, eqBytes } from "../helpers/gzip.js";
import { readFixture } from "../qemu/fixtures.js";

const MiB = 2 ** 20;
const BASE = 0x4000_0000;

/** Runs a reference tool on `input`: its status, stdout and stderr. */
function run(cmd: string, args: string[], input: Uint8Array): { status: number | null; out: Uint8Array; err: string } {
  const r = spawnSync(cmd, args, { input, maxBuffer: 1 << 30 });
  if (r.error) throw r.error;
  return { status: r.status, out: new Uint8Array(r.stdout.buffer, r.stdout.byteOffset, r.stdout.length), err: r.stderr.toString() };
}

/** Runs a reference tool that must succeed. */
function tool(cmd: string, args: string[], input: Uint8Array): Uint8Array {
  const r = run(cmd, args, input);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} exited ${r.status}: ${r.err}`);
  return r.out;
}

/** Adler-32 by zlib: the trailer of a zlib stream of `d` (RFC 1950 §2.2). */
function adlerRef(d: Uint8Array): number {
  const z = deflateSync(d, { level: 0 });
  return z.readUInt32BE(z.length - 4);
}

const be32 = (n: number) => Uint8Array.of(n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
const rd32 = (b: Uint8Array, i: number) => ((b[i]! << 24) | (b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!) >>> 0;
const cat = (...parts: ArrayLike<number>[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
};

/**
 * Where the first block starts in a file lzop wrote from stdin (version ≥ 0x0940, no filter, no
 * extra field; lzop.c's header layout: magic 9, version 2, lib_version 2, version_needed 2,
 * method 1, level 1, flags 4, mode 4, mtime 8, name_len 1 + name, checksum 4).
 */
function headerEnd(file: Uint8Array): number {
  const p = 9 + 2 + 2 + 2 + 1 + 1 + 4 + 4 + 8;
  return p + 1 + file[p]! + 4;
}
const FLAGS_AT = 9 + 2 + 2 + 2 + 1 + 1;

/** lzop's header of a no-checksum file, to wrap hand-made blocks in. */
let bareHeader: Uint8Array;

interface RawBlock {
  dst: number;
  data: Uint8Array;
}

const bits = (n: number) => n.toString(2).split("1").length - 1;

/** The blocks of a file lzop wrote (lzop.c: a checksum word per flag, those of the compressed bytes only when src_len < dst_len). */
function blocksOf(file: Uint8Array): RawBlock[] {
  const flags = rd32(file, FLAGS_AT);
  const out: RawBlock[] = [];
  for (let p = headerEnd(file); ; ) {
    const dst = rd32(file, p);
    if (dst === 0) return out;
    const src = rd32(file, p + 4);
    const words = bits(flags & 0x101) + (src < dst ? bits(flags & 0x202) : 0);
    out.push({ dst, data: file.subarray(p + 8 + 4 * words, p + 8 + 4 * words + src) });
    p += 8 + 4 * words + src;
  }
}

/** How many of a file's blocks are LZO1X-compressed (the others are stored and copied). */
const compressedBlocks = (file: Uint8Array) => blocksOf(file).filter((b) => b.data.length < b.dst).length;

/**
 * An lzop file of `blocks` with header flags `flags` (lzop.c: 1 Adler-32 of the data, 2 of the
 * compressed data, 0x100/0x200 the CRC-32s), its checksums computed by zlib.
 */
function lzopFile(blocks: RawBlock[], flags = 0, decoded?: Uint8Array[]): Uint8Array {
  const h = bareHeader.slice();
  h.set(be32(flags), FLAGS_AT);
  h.set(be32(adlerRef(h.subarray(9, h.length - 4))), h.length - 4);
  const parts: Uint8Array[] = [h];
  blocks.forEach((b, i) => {
    parts.push(be32(b.dst), be32(b.data.length));
    const d = decoded?.[i];
    if (flags & 0x1) parts.push(be32(adlerRef(d!)));
    if (flags & 0x100) parts.push(be32(zlibCrc32(d!) >>> 0));
    if (b.data.length < b.dst) {
      if (flags & 0x2) parts.push(be32(adlerRef(b.data)));
      if (flags & 0x200) parts.push(be32(zlibCrc32(b.data) >>> 0));
    }
    parts.push(b.data);
  });
  parts.push(be32(0));
  return cat(...parts);
}

// LZO1X instructions from their encoding (Linux Documentation/staging/lzo.rst).
const lzo = {
  /** A literal run of n ≥ 4 bytes where the state is 0 (file start, or after a match with no trailing literals). */
  literals(bytes: Uint8Array): number[] {
    const t = bytes.length - 3;
    const head = t <= 15 ? [t] : [0, ...zeros255(t - 15)];
    return [...head, ...bytes];
  },
  /** M3: len ≥ 3 bytes at distance 1..16384, then `next` (0..3) literals. */
  m3(len: number, dist: number, next = 0): number[] {
    const head = len - 2 <= 31 ? [32 | (len - 2)] : [32, ...zeros255(len - 33)];
    const d = ((dist - 1) << 2) | next;
    return [...head, d & 0xff, d >> 8];
  },
  /** M4: len ≥ 3 bytes at distance 16385..49151, then `next` literals. */
  m4(len: number, dist: number, next = 0): number[] {
    const far = dist - 0x4000 >= 0x4000 ? 8 : 0;
    const rest = dist - 0x4000 - (far << 11);
    const head = len - 2 <= 7 ? [16 | far | (len - 2)] : [16 | far, ...zeros255(len - 9)];
    const d = (rest << 2) | next;
    return [...head, d & 0xff, d >> 8];
  },
  /** M2: 3..8 bytes at distance 1..2048, then `next` literals. */
  m2(len: number, dist: number, next = 0): number[] {
    return [((len - 1) << 5) | (((dist - 1) & 7) << 2) | next, (dist - 1) >> 3];
  },
  /** After a literal run of 4 or more: 3 bytes at distance 2049..3072, then `next` literals. */
  m1long(dist: number, next = 0): number[] {
    return [(((dist - 2049) & 3) << 2) | next, (dist - 2049) >> 2];
  },
  /** M1 after 1..3 trailing literals: 2 bytes at distance 1..1024, then `next` literals. */
  m1(dist: number, next = 0): number[] {
    return [(((dist - 1) & 3) << 2) | next, (dist - 1) >> 2];
  },
  end: [0x11, 0, 0],
};
/** A length extension: zero bytes worth 255 each, then the remainder (1..255). */
function zeros255(n: number): number[] {
  const out: number[] = [];
  while (n > 255) {
    out.push(0);
    n -= 255;
  }
  out.push(n);
  return out;
}

/** RAM filled with a pattern, so that "unchanged" says something. */
const PATTERN = (i: number) => (i * 31 + 7) & 0xff;

async function vmWith(files: Record<string, Uint8Array>, size: number): Promise<Vm> {
  const vm = await createVm({ ram: [{ base: BASE, size }], files: fromMap(files) });
  const fill = new Uint8Array(size).map((_, i) => PATTERN(i));
  vm.ram.write(BASE, fill);
  return vm;
}

/** Loads `name` as a kernel at `at` through vm.loadKernel, counting the core's LZO1X block calls. */
async function loadCounting(vm: Vm, name: string, at?: number) {
  const spy = vi.spyOn(vm.core, "lzo1x");
  try {
    const k = await vm.loadKernel(name, at === undefined ? {} : { at });
    return { k, calls: spy.mock.calls.length };
  } finally {
    spy.mockRestore();
  }
}

/** Every byte of RAM outside [lo, hi) (guest physical) still holds the pattern. */
function patternOutside(vm: Vm, size: number, lo: number, hi: number): boolean {
  const all = vm.ram.read(BASE, size);
  for (let i = 0; i < size; i++) {
    const p = BASE + i;
    if ((p < lo || p >= hi) && all[i] !== PATTERN(i)) return false;
  }
  return true;
}

/** Decodes with the core into guest RAM and with the TypeScript loop into a host buffer: the CodecErrors (or outputs) of both. */
async function bothPaths(file: Uint8Array, room: number) {
  const vm = await createVm({ ram: [{ base: BASE, size: Math.max(room, 4096) + 4096 }] });
  const spy = vi.spyOn(vm.core, "lzo1x");
  const catchIt = (f: () => unknown) => {
    try {
      return { value: f() };
    } catch (e) {
      return { error: e };
    }
  };
  const view = vm.ram.view(BASE + 1, room);
  const wasm = catchIt(() => lzoCodec.decode(file, view, { core: vm.core }));
  const calls = spy.mock.calls.length;
  spy.mockRestore();
  const host = new Uint8Array(room);
  const ts = catchIt(() => lzoCodec.decode(file, host));
  return { wasm, ts, calls, wasmOut: view.slice(), tsOut: host };
}

let kernel: Uint8Array;
beforeAll(() => {
  kernel = readFixture("arm64/Image");
  bareHeader = (() => {
    const f = tool("lzop", ["-c", "--no-checksum"], new Uint8Array(1000));
    return f.slice(0, headerEnd(f));
  })();
});

describe("lzop kernels loaded into guest RAM by the core's LZO1X loop == lzop -dc", { timeout: 120_000 }, () => {
  it.each([[["-1"]], [["-3", "--crc32"]], [["--no-checksum"]]])("Debian's arm64 Image, lzop %s", async (args) => {
    const z = tool("lzop", ["-c", ...args], kernel);
    const want = tool("lzop", ["-dc"], z);
    expect(eqBytes(want, kernel)).toBe(true);
    const size = want.length + 8 * MiB;
    const vm = await vmWith({ "Image.lzo": z }, size);
    const { k, calls } = await loadCounting(vm, "Image.lzo", BASE + 2 * MiB);
    expect(k.format).toBe("arm64-image");
    expect(k.paddr).toBe(BASE + 2 * MiB);
    // every block lzop compressed went through the core (a block lzop stored is copied)
    expect(calls).toBe(compressedBlocks(z));
    expect(calls).toBeGreaterThan(100);
    expect(eqBytes(vm.ram.read(k.paddr, want.length), want)).toBe(true);
    expect(patternOutside(vm, size, k.paddr, k.paddr + k.size)).toBe(true);
    // the TypeScript loop into a host buffer: the same bytes
    const host = new Uint8Array(want.length);
    expect(lzoCodec.decode(z, host).written).toBe(want.length);
    expect(eqBytes(host, want)).toBe(true);
  });
});

const EDGE: Array<[string, () => Uint8Array]> = [
  ["one byte", () => Uint8Array.of(0x5a)],
  ["1 MiB of zeros (distance-1 runs, long length extensions)", () => new Uint8Array(MiB)],
  ...[2, 3, 5, 7, 9, 13, 16, 17].map((period): [string, () => Uint8Array] => [
    `period ${period} repeated over 300 KiB (overlapping matches)`,
    () => new Uint8Array(300 * 1024).map((_, i) => (i % period) * 37 + 1),
  ]),
  ["incompressible 700 KiB (stored blocks)", () => {
    const b = new Uint8Array(700 * 1024);
    let x = 0x9e3779b9;
    for (let i = 0; i < b.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      b[i] = x & 0xff;
    }
    return b;
  }],
  ["a 40 KiB random chunk repeated (matches 16..48 KiB back)", () => {
    const chunk = new Uint8Array(40 * 1024);
    let x = 12345;
    for (let i = 0; i < chunk.length; i++) chunk[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
    return cat(chunk, chunk, codeLike(3000, 9), chunk, chunk, chunk);
  }],
  ["code-like 1 MiB (many blocks)", () => codeLike(MiB, 5)],
  ["exactly one block (256 KiB)", () => codeLike(256 * 1024, 6)],
  ["one block and one byte", () => codeLike(256 * 1024 + 1, 7)],
];

describe("edge cases, loaded into guest RAM at an odd address, == lzop -dc", { timeout: 60_000 }, () => {
  it.each(EDGE)("%s", async (_name, make) => {
    const d = make();
    for (const args of [["-1"], ["-9", "--crc32"]]) {
      const z = tool("lzop", ["-c", ...args], d);
      const want = tool("lzop", ["-dc"], z);
      const size = want.length + 64 * 1024;
      const at = BASE + size - want.length - 3; // ends 3 bytes before the end of RAM
      const vm = await vmWith({ "x.lzo": z }, size);
      const { k, calls } = await loadCounting(vm, "x.lzo", at);
      expect(k.size).toBe(want.length);
      expect(calls).toBe(compressedBlocks(z));
      expect(eqBytes(vm.ram.read(at, want.length), want)).toBe(true);
      expect(patternOutside(vm, size, at, at + want.length)).toBe(true);
    }
  });

  it("an output over the core's own LZO input area, or outside its memory, takes the TypeScript loop: the same bytes", async () => {
    const d = codeLike(200 * 1024, 8); // one block, so the view fits before the end of the memory
    const z = tool("lzop", ["-c"], d);
    const vm = await createVm({ ram: [{ base: BASE, size: MiB }] });
    const spy = vi.spyOn(vm.core, "lzo1x");
    const over = new Uint8Array(vm.core.memory.buffer, vm.core.lzoInput - 1000, d.length);
    expect(over.byteOffset + over.length).toBeLessThanOrEqual(vm.core.memory.buffer.byteLength);
    expect(lzoCodec.decode(z, over, { core: vm.core }).written).toBe(d.length);
    expect(eqBytes(over, d)).toBe(true);
    const host = new Uint8Array(d.length);
    expect(lzoCodec.decode(z, host, { core: vm.core }).written).toBe(d.length);
    expect(eqBytes(host, d)).toBe(true);
    expect(spy.mock.calls.length).toBe(0);
    spy.mockRestore();
  });

  it("an empty file decodes to nothing on both paths", async () => {
    const z = tool("lzop", ["-c"], new Uint8Array(0));
    expect(tool("lzop", ["-dc"], z).length).toBe(0);
    const r = await bothPaths(z, 0);
    expect(r.wasm).toEqual({ value: { written: 0, consumed: z.length } });
    expect(r.ts).toEqual(r.wasm);
  });

  it("LZO1X streams built by hand (every instruction kind, long lengths, short and longest distances) decode as lzop decodes them", async () => {
    let x = 777;
    const rnd = (n: number) => new Uint8Array(n).map(() => (x = (x * 1103515245 + 12345) >>> 0) >>> 24);
    // [instruction bytes, bytes it outputs]
    const parts: Array<[number[], number]> = [
      [lzo.literals(rnd(50_000)), 50_000],
      [[...lzo.m4(5, 18_000, 1), 0x41], 5 + 1], // M4 (bit 3 clear), one literal after it
      [[...lzo.m1(2, 2), 0x42, 0x43], 2 + 2], // M1 after 1..3 literals, two more
      [[...lzo.m1(700, 3), 0x44, 0x45, 0x46], 2 + 3],
      [lzo.m2(8, 2048, 0), 8], // the longest M2
      [lzo.m3(1000, 2, 0), 1000], // a 2-byte pattern 1000 long
      [lzo.literals(rnd(5)), 5],
      [lzo.m1long(2049), 3], // after a run of 4+ literals: 3 bytes at 2049..3072 back
      [[...lzo.m3(34, 7, 3), 1, 2, 3], 34 + 3], // 34: the first M3 length that needs an extension
      [lzo.m1(1000, 0), 2], // M1 after 3 literals
      [lzo.literals(rnd(300)), 300],
      [lzo.m4(700, 40_000, 0), 700], // M4 with bit 3 set, long
      [lzo.literals(rnd(4)), 4],
      [lzo.m3(5000, 16_384, 0), 5000], // the longest M3 distance
      [lzo.literals(rnd(4)), 4],
      [lzo.m4(3, 49_151, 0), 3], // the longest M4 distance
      [lzo.literals(rnd(18)), 18],
      [lzo.m3(260, 3, 0), 260],
      [[...lzo.m2(3, 1, 2), 9, 9], 3 + 2],
      [lzo.end, 0],
    ];
    const block = Uint8Array.from(parts.flatMap(([b]) => b));
    const dst = parts.reduce((n, [, o]) => n + o, 0);
    const want = tool("lzop", ["-dc"], lzopFile([{ dst, data: block }]));
    expect(want.length).toBe(dst);
    // with both Adler-32s (lzop checks them), loaded through the core
    const checked = lzopFile([{ dst, data: block }], 0x1 | 0x2, [want]);
    expect(eqBytes(tool("lzop", ["-dc"], checked), want)).toBe(true);
    const vm = await vmWith({ "h.lzo": checked }, dst + 4096);
    const { calls } = await loadCounting(vm, "h.lzo", BASE + 7);
    expect(calls).toBe(1);
    expect(eqBytes(vm.ram.read(BASE + 7, dst), want)).toBe(true);
    expect(patternOutside(vm, dst + 4096, BASE + 7, BASE + 7 + dst)).toBe(true);
  });
});

describe("bad streams: typed errors, RAM and ledger unchanged, the same error on both paths", { timeout: 60_000 }, () => {
  const abcd = [0x61, 0x62, 0x63, 0x64];
  // [name, block data, dst_len, input offset of the failure in the block data (null: the block header), message part]
  const CASES: Array<[string, number[], number, number | null, string]> = [
    ["literals past the input", [21, 0x61, 0x62], 16, 1, "runs past the end of its block"],
    ["a length extension past the input", [0, 0, 0], 16, 3, "runs past the end of its block"],
    ["a match distance past the input", [21, ...abcd, 44, 0x0c], 20, 6, "runs past the end of its block"],
    ["literals past dst_len", [21, ...abcd, ...lzo.m3(14, 4), 1, 0x77, 0x78, 0x79, 0x7a, ...lzo.end], 20, 9, "4 literals decode past the block's dst_len"],
    ["M2 before the start of the block", [21, ...abcd, ...lzo.m2(3, 100), ...lzo.end], 20, 5, "match distance 100 reaches before the start of the block"],
    ["M1 before the start of the block", [18, 0x61, ...lzo.m1(2), ...lzo.end], 20, 2, "match distance 2 reaches before the start of the block"],
    ["M4 before the start of the block", [21, ...abcd, ...lzo.m4(3, 0x8000), ...lzo.end], 20, 5, "match distance 32768 reaches before the start of the block"],
    ["a match past dst_len", [21, ...abcd, ...lzo.m3(14, 4), ...lzo.end], 12, 5, "a 14-byte match decodes past the block's dst_len"],
    ["an end marker of length 4", [21, ...abcd, 0x12, 0, 0], 20, 5, "end marker with length 4 (must be 3)"],
    ["bytes after the end marker", [21, ...abcd, ...lzo.m3(14, 4), ...lzo.end, 0x55], 20, 11, "1 bytes follow the end marker inside the block"],
    ["fewer bytes than dst_len", [21, ...abcd, ...lzo.end], 20, null, "decodes to 0x4 bytes, its header says dst_len 0x14"],
  ];
  it.each(CASES)("%s", async (_name, data, dst, at, what) => {
    const file = lzopFile([{ dst, data: Uint8Array.from(data) }]);
    const blockAt = bareHeader.length;
    const r = await bothPaths(file, dst);
    expect(r.calls).toBe(1);
    const e = r.wasm.error as CodecError;
    expect(e).toBeInstanceOf(CodecError);
    expect(e.kind).toBe("corrupt");
    expect(e.offset).toBe(at === null ? blockAt : blockAt + 8 + at);
    expect(e.message).toContain(what);
    const t = r.ts.error as CodecError;
    expect({ kind: t.kind, offset: t.offset, message: t.message }).toEqual({ kind: e.kind, offset: e.offset, message: e.message });
    // the reference refuses it too
    expect(run("lzop", ["-dc"], file).status).not.toBe(0);
    // through a load: BAD_HEADER naming the file offset, RAM and ledger unchanged
    const vm = await vmWith({ "bad.lzo": file }, 64 * 1024);
    const err = await vm.loadKernel("bad.lzo", { at: BASE + 0x1000 }).catch((x) => x);
    expect(err).toBeInstanceOf(GuestImageError);
    expect(err.code).toBe("BAD_HEADER");
    expect(err.message).toContain(`file offset 0x${(at === null ? blockAt : blockAt + 8 + at).toString(16)}`);
    expect(vm.placed()).toEqual([]);
    expect(patternOutside(vm, 64 * 1024, 0, 0)).toBe(true);
  });

  it("a damaged block checksum (Adler-32, CRC-32; of the data and of the compressed bytes) is BAD_CHECKSUM, as lzop says", async () => {
    const d = codeLike(600 * 1024, 11);
    const plain = tool("lzop", ["-c", "--no-checksum"], d);
    const blocks = blocksOf(plain);
    const decoded = blocks.map((_, i) => d.subarray(i * 256 * 1024, Math.min(d.length, (i + 1) * 256 * 1024)));
    for (const flags of [0x1, 0x100, 0x1 | 0x2, 0x100 | 0x200]) {
      const good = lzopFile(blocks, flags, decoded);
      expect(eqBytes(tool("lzop", ["-dc"], good), d)).toBe(true);
      const ok = await bothPaths(good, d.length);
      expect(ok.wasm.error).toBeUndefined();
      expect(eqBytes(ok.wasmOut, d)).toBe(true);
      // the second block's first checksum word, then (with two words) its second
      const second = bareHeader.length + 8 + 4 * bits(flags) + blocks[0]!.data.length;
      const words = bits(flags) === 2 ? [0, 4] : [0];
      for (const w of words) {
        const bad = good.slice();
        bad[second + 8 + w] ^= 0x40;
        expect(run("lzop", ["-dc"], bad).status).not.toBe(0);
        const r = await bothPaths(bad, d.length);
        const e = r.wasm.error as CodecError;
        expect(e.kind).toBe("checksum");
        expect(e.offset).toBe(second);
        expect(e.message).toContain(w === 4 ? "of the compressed data" : "of the decompressed data");
        expect((r.ts.error as CodecError).message).toBe(e.message);
        const vm = await vmWith({ "c.lzo": bad }, 2 * MiB);
        const err = await vm.loadKernel("c.lzo", { at: BASE + 0x1000 }).catch((x) => x);
        expect(err).toBeInstanceOf(GuestImageError);
        expect(err.code).toBe("BAD_CHECKSUM");
        expect(vm.placed()).toEqual([]);
        expect(patternOutside(vm, 2 * MiB, 0, 0)).toBe(true);
      }
    }
  });

  it("a truncated file is TRUNCATED, too little room TOO_LARGE before anything is written, a block over 256 KiB UNSUPPORTED (lzop refuses it too)", async () => {
    const d = codeLike(700 * 1024, 12);
    const z = tool("lzop", ["-c", "-1"], d);
    const vm = await vmWith({ "t.lzo": z.subarray(0, z.length - 5000), "z.lzo": z }, MiB);
    const t = await vm.loadKernel("t.lzo", { at: BASE }).catch((x) => x);
    expect(t).toBeInstanceOf(GuestImageError);
    expect(t.code).toBe("TRUNCATED");
    const big = await vm.loadKernel("z.lzo", { at: BASE + 512 * 1024 }).catch((x) => x);
    expect(big).toBeInstanceOf(GuestImageError);
    expect(big.code).toBe("TOO_LARGE");
    expect(vm.placed()).toEqual([]);
    expect(patternOutside(vm, MiB, 0, 0)).toBe(true);
    // one 512 KiB block: a literal run then a long match
    const lits = codeLike(1000, 13);
    const block = Uint8Array.from([...lzo.literals(lits), ...lzo.m3(512 * 1024 - 1000, 1000), ...lzo.end]);
    const huge = lzopFile([{ dst: 512 * 1024, data: block }]);
    const ref = run("lzop", ["-dc"], huge);
    expect(ref.status).not.toBe(0);
    expect(ref.err).toContain("block size");
    const r = await bothPaths(huge, 512 * 1024);
    expect((r.wasm.error as CodecError).kind).toBe("unsupported");
    expect((r.ts.error as CodecError).message).toBe((r.wasm.error as CodecError).message);
  });

  it("damaged real streams: the core and the TypeScript loop agree on every result and error", async () => {
    const d = codeLike(300 * 1024, 14);
    const z = tool("lzop", ["-c", "-1", "--no-checksum"], d);
    const start = headerEnd(z) + 8;
    let x = 99;
    const next = (n: number) => (x = (x * 1103515245 + 12345) >>> 0) % n;
    let errors = 0;
    for (let i = 0; i < 300; i++) {
      const bad = z.slice();
      for (let k = 1 + next(3); k > 0; k--) bad[start + next(z.length - start - 4)] = next(256);
      const r = await bothPaths(bad, d.length);
      expect(r.calls).toBeGreaterThan(0);
      if (r.ts.error) {
        errors++;
        const a = r.wasm.error as CodecError;
        const b = r.ts.error as CodecError;
        expect(a).toBeInstanceOf(CodecError);
        expect({ kind: a.kind, offset: a.offset, message: a.message }).toEqual({ kind: b.kind, offset: b.offset, message: b.message });
      } else {
        expect(r.wasm.error).toBeUndefined();
        expect(r.wasm.value).toEqual(r.ts.value);
        expect(eqBytes(r.wasmOut, r.tsOut)).toBe(true);
      }
    }
    expect(errors).toBeGreaterThan(50);
  });
});

describe("the core's Adler-32 == zlib's", () => {
  it("every length 0..300 at every alignment 0..17, long runs of 0xff, and continued across calls", async () => {
    const vm = await createVm({ ram: [{ base: BASE, size: 4 * MiB }] });
    const data = new Uint8Array(400).map((_, i) => (i * 2654435761) >>> 24);
    vm.ram.write(BASE, data);
    const lin = vm.ram.view(BASE, 1).byteOffset;
    for (let off = 0; off < 18; off++) {
      for (let len = 0; len <= 300; len++) expect(vm.core.adler32(lin + off, len)).toBe(adlerRef(data.subarray(off, off + len)));
    }
    // the sums' worst case (every byte 0xff) over more than one 5552-byte stretch
    const ff = new Uint8Array(3 * MiB + 5).fill(0xff);
    vm.ram.write(BASE, ff);
    expect(vm.core.adler32(lin, ff.length)).toBe(adlerRef(ff));
    expect(vm.core.adler32(lin + 1, 100_003)).toBe(adlerRef(ff.subarray(1, 100_004)));
    const a = vm.core.adler32(lin, 12_345);
    expect(vm.core.adler32(lin + 12_345, ff.length - 12_345, a)).toBe(adlerRef(ff));
  });
});
