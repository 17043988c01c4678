// lz4 files on the path a real load takes: vm.loadKernel of an `.lz4` file decodes every LZ4
// block in the Wasm core (assembly/lz4.ts), straight into guest RAM, feeding the block through
// the core's 256 KiB input area in pieces. What lands there must equal `lz4 -dc` byte for byte
// (real Debian arm64 kernel in the legacy frame Linux builds and in standard frames of every block
// size, linked and independent, with and without content size and checksums; edge cases); bad
// blocks fail inside the loop with the kind and input offset the block format says, the same
// error as the TypeScript loop (used for outputs outside a core's memory), and leave RAM and the
// ledger as they were.
import { spawnSync } from "node:child_process";
import { beforeAll, describe, expect, it, vi } from "vitest";
import { CodecError } from "../../src/compress/codec.js";
import { lz4Codec } from "../../src/compress/lz4.js";
import { createVm, fromMap, GuestImageError, type Vm } from "../../src/node.js";
import { codeLike, eqBytes } from "../helpers/gzip.js";
import { readFixture } from "../qemu/fixtures.js";

const MiB = 2 ** 20;
const BASE = 0x4000_0000;

function run(cmd: string, args: string[], input: Uint8Array): { status: number | null; out: Uint8Array; err: string } {
  const r = spawnSync(cmd, args, { input, maxBuffer: 1 << 30 });
  if (r.error) throw r.error;
  return { status: r.status, out: new Uint8Array(r.stdout.buffer, r.stdout.byteOffset, r.stdout.length), err: r.stderr.toString() };
}

function tool(cmd: string, args: string[], input: Uint8Array): Uint8Array {
  const r = run(cmd, args, input);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} exited ${r.status}: ${r.err}`);
  return r.out;
}

const le32 = (n: number) => Uint8Array.of(n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, n >>> 24);
const cat = (...parts: ArrayLike<number>[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
};
/** A legacy frame (lz4 -l) of the given blocks. */
const legacyFile = (...blocks: Uint8Array[]) => cat(Uint8Array.of(0x02, 0x21, 0x4c, 0x18), ...blocks.flatMap((b) => [le32(b.length), b]));

function xorshift(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

const PATTERN = (i: number) => (i * 31 + 7) & 0xff;

async function vmWith(files: Record<string, Uint8Array>, size: number): Promise<Vm> {
  const vm = await createVm({ ram: [{ base: BASE, size }], files: fromMap(files) });
  vm.ram.write(BASE, new Uint8Array(size).map((_, i) => PATTERN(i)));
  return vm;
}

/** Loads `name` as a kernel at `at`, counting the core's LZ4 loop calls. */
async function loadCounting(vm: Vm, name: string, at: number) {
  const spy = vi.spyOn(vm.core, "lz4");
  try {
    const k = await vm.loadKernel(name, { at });
    return { k, calls: spy.mock.calls.length };
  } finally {
    spy.mockRestore();
  }
}

function patternOutside(vm: Vm, size: number, lo: number, hi: number): boolean {
  const all = vm.ram.read(BASE, size);
  for (let i = 0; i < size; i++) {
    const p = BASE + i;
    if ((p < lo || p >= hi) && all[i] !== PATTERN(i)) return false;
  }
  return true;
}

/** Decodes with the core into guest RAM and with the TypeScript loop into a host buffer. */
async function bothPaths(file: Uint8Array, room: number) {
  const vm = await createVm({ ram: [{ base: BASE, size: Math.max(room, 4096) + 4096 }] });
  const spy = vi.spyOn(vm.core, "lz4");
  const catchIt = (f: () => unknown) => {
    try {
      return { value: f() };
    } catch (e) {
      return { error: e };
    }
  };
  const view = vm.ram.view(BASE + 1, room);
  const wasm = catchIt(() => lz4Codec.decode(file, view, { core: vm.core }));
  const calls = spy.mock.calls.length;
  spy.mockRestore();
  const host = new Uint8Array(room);
  const ts = catchIt(() => lz4Codec.decode(file, host));
  return { wasm, ts, calls, wasmOut: view.slice(), tsOut: host };
}

let kernel: Uint8Array;
beforeAll(() => {
  kernel = readFixture("arm64/Image");
});

describe("lz4 kernels loaded into guest RAM by the core's LZ4 loop == lz4 -dc", { timeout: 240_000 }, () => {
  it.each([
    [["-l"]],
    [[]],
    [["-B4", "-BD", "--content-size"]],
    [["-B5", "-BX", "--no-frame-crc"]],
    [["-B6", "-BD", "-9"]],
    [["-B7", "--content-size", "-BX"]],
  ])("Debian's arm64 Image, lz4 %s", async (args) => {
    const z = tool("lz4", ["-c", "-q", ...args], kernel);
    const want = tool("lz4", ["-dc"], z);
    expect(eqBytes(want, kernel)).toBe(true);
    const size = want.length + 4 * MiB;
    const vm = await vmWith({ "Image.lz4": z }, size);
    const { k, calls } = await loadCounting(vm, "Image.lz4", BASE + 2 * MiB);
    expect(k.format).toBe("arm64-image");
    // at least one call per block and a refill every 256 KiB of compressed input
    expect(calls).toBeGreaterThanOrEqual(Math.ceil(z.length / (256 * 1024)));
    expect(eqBytes(vm.ram.read(k.paddr, want.length), want)).toBe(true);
    expect(patternOutside(vm, size, k.paddr, k.paddr + k.size)).toBe(true);
  });
});

const EDGE: Array<[string, () => Uint8Array]> = [
  ["one byte", () => Uint8Array.of(0x5a)],
  ["12 bytes", () => codeLike(12, 2)],
  ["5 MiB of zeros (offset-1 runs, long match lengths)", () => new Uint8Array(5 * MiB)],
  ...[2, 3, 5, 7, 9, 13, 16, 17, 31].map((period): [string, () => Uint8Array] => [
    `period ${period} repeated over 300 KiB (overlapping matches)`,
    () => new Uint8Array(300 * 1024).map((_, i) => (i % period) * 37 + 1),
  ]),
  ["incompressible 1 MiB (legacy: literal runs longer than the 256 KiB input area)", () => xorshift(MiB, 0x9e3779b9)],
  ["a 60 KiB random chunk repeated (matches near 64 KiB back)", () => {
    const chunk = xorshift(60 * 1024, 777);
    return cat(chunk, chunk, codeLike(3000, 9), chunk, chunk);
  }],
  ["code-like 9 MiB (two legacy blocks)", () => codeLike(9 * MiB, 5)],
];

describe("edge cases, loaded into guest RAM at an odd address ending 3 bytes before the end of RAM, == lz4 -dc", { timeout: 120_000 }, () => {
  it.each(EDGE)("%s", async (_name, make) => {
    const d = make();
    for (const args of [["-l"], ["-B4", "-BD"], ["-B7", "-BX", "--content-size"]]) {
      const z = tool("lz4", ["-c", "-q", ...args], d);
      const want = tool("lz4", ["-dc"], z);
      expect(eqBytes(want, d)).toBe(true);
      const size = want.length + 64 * 1024;
      const at = BASE + size - want.length - 3;
      const vm = await vmWith({ "x.lz4": z }, size);
      const { k, calls } = await loadCounting(vm, "x.lz4", at);
      expect(k.size).toBe(want.length);
      // a legacy frame has no stored blocks: every block goes through the core
      if (args[0] === "-l") expect(calls).toBeGreaterThan(0);
      expect(eqBytes(vm.ram.read(at, want.length), want)).toBe(true);
      expect(patternOutside(vm, size, at, at + want.length)).toBe(true);
    }
  });

  it("an output over the core's input area, or outside its memory, takes the TypeScript loop: the same bytes", async () => {
    const d = codeLike(200 * 1024, 8);
    const z = tool("lz4", ["-c", "-q", "-l"], d);
    const vm = await createVm({ ram: [{ base: BASE, size: MiB }] });
    const spy = vi.spyOn(vm.core, "lz4");
    const over = new Uint8Array(vm.core.memory.buffer, vm.core.lzoInput - 1000, d.length);
    expect(lz4Codec.decode(z, over, { core: vm.core }).written).toBe(d.length);
    expect(eqBytes(over, d)).toBe(true);
    const host = new Uint8Array(d.length);
    expect(lz4Codec.decode(z, host, { core: vm.core }).written).toBe(d.length);
    expect(eqBytes(host, d)).toBe(true);
    expect(spy).not.toHaveBeenCalled();
    spy.mockRestore();
  });
});

describe("the core's XXH32 is the content checksum lz4 writes", () => {
  it("frames of every length 0..80 and around 64 KiB, at odd addresses, decoded through the core (a wrong checksum would fail them)", async () => {
    const vm = await createVm({ ram: [{ base: BASE, size: MiB }] });
    const spy = vi.spyOn(vm.core, "xxh32");
    const lengths = [...Array.from({ length: 81 }, (_, i) => i), 65535, 65536, 65537, 65551];
    for (const n of lengths) {
      const d = codeLike(n, n + 1);
      const z = tool("lz4", ["-c", "-q", "--frame-crc"], d);
      const view = vm.ram.view(BASE + 3 + (n % 13), n + 16);
      expect(lz4Codec.decode(z, view, { core: vm.core }).written).toBe(n);
      expect(eqBytes(view.subarray(0, n), d)).toBe(true);
      // a damaged checksum word is BAD_CHECKSUM on the core's path too
      const bad = z.slice();
      bad[bad.length - 2] ^= 1;
      expect(() => lz4Codec.decode(bad, view, { core: vm.core })).toThrow(/content checksum/);
    }
    expect(spy.mock.calls.length).toBe(2 * lengths.length);
    spy.mockRestore();
  });
});

describe("bad blocks: fail inside the core's loop, the same error on both paths, RAM and ledger unchanged", { timeout: 120_000 }, () => {
  // [name, block bytes, kind, offset of the failure in the block, message part]; the block format
  // (doc/lz4_Block_format.md): token (literals << 4 | match length - 4), [255…] literal length
  // bytes, literals, 2-byte little-endian offset, [255…] match length bytes.
  const CASES: Array<[string, number[], string, number, string]> = [
    ["literals past the block", [0x30, 0x61], "corrupt", 1, "3 literals run past the end of the block"],
    ["literal length bytes past the block", [0xf0, 0xff], "corrupt", 2, "literal length runs past the end of the block"],
    ["a block ending inside the offset", [0x10, 0x61, 0x01], "corrupt", 2, "match offset runs past the end of the block"],
    ["offset 0", [0x10, 0x61, 0x00, 0x00, 0x00], "corrupt", 2, "match offset 0 at input offset 0xa reaches before the start of the window (1 bytes of output behind it)"],
    ["an offset before the block", [0x10, 0x61, 0x02, 0x00, 0x00], "corrupt", 2, "match offset 2 at input offset 0xa reaches before the start"],
    ["an offset before the first output", [0x00, 0x01, 0x00, 0x00], "corrupt", 1, "match offset 1 at input offset 0x9 reaches before the start of the block (0 bytes of output behind it)"],
    ["match length bytes past the block", [0x1f, 0x61, 0x01, 0x00], "corrupt", 4, "match length runs past the end of the block"],
    ["a match past the room", [0x1f, 0x61, 0x01, 0x00, 0xff, 0xff, 0x10, 0x00], "too-large", 2, "writes 545 bytes at output offset 0x1"],
  ];
  it.each(CASES)("%s", async (_name, block, kind, at, what) => {
    const file = legacyFile(Uint8Array.from(block));
    const r = await bothPaths(file, 256);
    expect(r.calls).toBe(1);
    const e = r.wasm.error as CodecError;
    expect(e).toBeInstanceOf(CodecError);
    expect(e.kind).toBe(kind);
    expect(e.offset).toBe(8 + at);
    expect(e.message).toContain(what);
    const t = r.ts.error as CodecError;
    expect({ kind: t.kind, offset: t.offset, message: t.message }).toEqual({ kind: e.kind, offset: e.offset, message: e.message });
    if (kind !== "corrupt") return;
    expect(run("lz4", ["-dc"], file).status).not.toBe(0);
    // through a load: a typed error naming the file offset, RAM and ledger unchanged
    const vm = await vmWith({ "bad.lz4": file }, 64 * 1024);
    const err = await vm.loadKernel("bad.lz4", { at: BASE + 0x1000 }).catch((x) => x);
    expect(err).toBeInstanceOf(GuestImageError);
    expect(vm.placed()).toEqual([]);
    expect(patternOutside(vm, 64 * 1024, 0, 0)).toBe(true);
  });

  it("a bad offset deep in a 4 MiB block (past several 256 KiB pieces) is found by the core at its input offset", async () => {
    const d = codeLike(4 * MiB, 21);
    const z = tool("lz4", ["-c", "-q", "-B7", "-BD", "--no-frame-crc"], d);
    // the first block's data starts after magic, FLG, BD, HC and the block size word
    const data = 4 + 3 + 4;
    const mid = data + 600 * 1024;
    // Damage a byte far into the block; both paths must agree whatever it does.
    let checked = 0;
    for (let k = 0; k < 80; k++) {
      const bad = z.slice();
      bad[mid + k * 97] ^= 0x5a;
      const r = await bothPaths(bad, d.length);
      expect(r.calls).toBeGreaterThan(2);
      if (r.ts.error) {
        const a = r.wasm.error as CodecError;
        const b = r.ts.error as CodecError;
        expect({ kind: a.kind, offset: a.offset, message: a.message }).toEqual({ kind: b.kind, offset: b.offset, message: b.message });
        checked++;
      } else {
        expect(eqBytes(r.wasmOut, r.tsOut)).toBe(true);
      }
    }
    expect(checked).toBeGreaterThan(0);
  });

  it.each([[["-l"]], [["-B5", "-BD", "--no-frame-crc"]], [["-B4"]]])("damaged real streams (lz4 %s): the core, the TypeScript loop and the measuring scan agree on every result and error", async (args) => {
    const d = cat(codeLike(500 * 1024, 14), xorshift(300 * 1024, 5), codeLike(200 * 1024, 15));
    const z = tool("lz4", ["-c", "-q", ...args], d);
    let x = 99;
    const next = (n: number) => (x = (x * 1103515245 + 12345) >>> 0) % n;
    let errors = 0;
    for (let i = 0; i < 150; i++) {
      const bad = z.slice();
      for (let k = 1 + next(3); k > 0; k--) bad[12 + next(z.length - 16)] = next(256);
      const r = await bothPaths(bad, d.length);
      // the measuring pass (for streams that declare no size) scans without output: same verdict
      let m: { written: number } | CodecError;
      try {
        m = lz4Codec.measure!(bad, d.length);
      } catch (e) {
        m = e as CodecError;
      }
      const te = r.ts.error as CodecError | undefined;
      if (te && te.kind !== "checksum") {
        expect(m).toBeInstanceOf(CodecError);
        expect({ kind: (m as CodecError).kind, offset: (m as CodecError).offset }).toEqual({ kind: te.kind, offset: te.offset });
        if (te.kind !== "too-large") expect((m as CodecError).message).toBe(te.message);
      } else if (!te) {
        expect((m as { written: number }).written).toBe((r.ts.value as { written: number }).written);
      }
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
    expect(errors).toBeGreaterThan(15);
  });
});
