// zstd through the Wasm core's loops (assembly/zstd.ts): decode() given the VM's core and an
// `out` that is a view of its guest RAM, as a load calls it. Every test checks that the core's
// loops actually ran (a spy on Core.zstdSeq / zstdHuf4) and that the output equals `zstd -dc`
// (Debian's zstd, the reference), byte for byte. The hand-made frames below are built from RFC
// 8878 and fed to `zstd -dc` as well: valid ones must decode to what zstd says, corrupt ones must
// be refused by zstd too. The TypeScript loops (no core) must give the same result or the same
// error, message and offset included, for every input (a mutation sweep checks this).
import { spawnSync } from "node:child_process";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { CodecError } from "../../src/compress/codec.js";
import { zstdCodec } from "../../src/compress/zstd.js";
import { Core } from "../../src/core/core.js";
import { createVm, fromMap, type Vm } from "../../src/node.js";
import { codeLike, eqBytes } from "../helpers/gzip.js";
import { expectRefused, MiB, RAM_BASE } from "../helpers/vm.js";
import { readFixture } from "../qemu/fixtures.js";

/** Runs `zstd args` on `input`: its exit status and stdout. */
function zstd(args: string[], input: Uint8Array): { status: number | null; out: Uint8Array } {
  const r = spawnSync("zstd", args, { input, maxBuffer: 1 << 30 });
  if (r.error) throw r.error;
  return { status: r.status, out: new Uint8Array(r.stdout.buffer, r.stdout.byteOffset, r.stdout.length) };
}
function tool(args: string[], input: Uint8Array): Uint8Array {
  const r = zstd(args, input);
  if (r.status !== 0) throw new Error(`zstd ${args.join(" ")} exited ${r.status}`);
  return r.out;
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

let vm: Vm;
let kernel: Uint8Array;
const RAM = 96 * MiB;
beforeAll(async () => {
  kernel = readFixture("arm64/Image");
  vm = await createVm({ ram: [{ base: RAM_BASE, size: RAM }] });
});
afterEach(() => {
  vi.restoreAllMocks();
});

/** Counts calls of the core's zstd loops while `f` runs. */
function spyCore<T>(f: () => T): { value: T; seq: number; huf4: number } {
  const seq = vi.spyOn(Core.prototype, "zstdSeq");
  const huf4 = vi.spyOn(Core.prototype, "zstdHuf4");
  try {
    return { value: f(), seq: seq.mock.calls.length, huf4: huf4.mock.calls.length };
  } finally {
    seq.mockRestore();
    huf4.mockRestore();
  }
}

/** decode() into `room` bytes of the VM's guest RAM with its core (the core's loops). */
function viaCore(input: Uint8Array, room: number) {
  const out = vm.ram.view(RAM_BASE, room);
  return { out, ...spyCore(() => zstdCodec.decode(input, out, { core: vm.core })) };
}

/** The error decode() throws (or undefined). */
function thrown(f: () => unknown): CodecError | undefined {
  try {
    f();
  } catch (e) {
    if (!(e instanceof CodecError)) throw e;
    return e;
  }
  return undefined;
}

/** Decodes through the core into RAM and checks the output is `want` and the core's loops ran. */
function sameAsTool(z: Uint8Array, want: Uint8Array, room = want.length): void {
  const r = viaCore(z, room);
  expect(r.value.written).toBe(want.length);
  expect(r.seq, "the core's sequence loop must run").toBeGreaterThan(0);
  expect(eqBytes(r.out.subarray(0, want.length), want)).toBe(true);
}

describe("zstd through the Wasm core == zstd -dc", () => {
  const variants: Array<[string, string[], boolean]> = [
    ["level 3 with content size and checksum", ["-3"], false],
    ["level 12", ["-12"], false],
    ["level 1, no checksum", ["-1", "--no-check"], false],
    ["from a pipe: no Frame_Content_Size", ["-3"], true],
    ["--long=27: a 128 MiB window, no content size", ["-3", "--long=27"], true],
  ];
  it.each(variants)("Debian's arm64 kernel: %s", { timeout: 240_000 }, (_name, args, pipe) => {
    const z = pipe ? tool(["-q", "-c", ...args], kernel) : tool(["-q", "-c", ...args, "--content-size", `--stream-size=${kernel.length}`], kernel);
    const want = tool(["-dc", "--long=31"], z);
    expect(eqBytes(want, kernel)).toBe(true);
    const r = viaCore(z, want.length);
    expect(r.value).toEqual({ written: want.length, consumed: z.length });
    expect(r.seq).toBeGreaterThan(100);
    expect(r.huf4).toBeGreaterThan(100);
    expect(eqBytes(r.out, want)).toBe(true);
  });

  const small: Array<[string, () => Uint8Array]> = [
    ["empty", () => new Uint8Array(0)],
    ["one byte", () => Uint8Array.of(0x5a)],
    ["code-like 100 KiB", () => codeLike(100_000, 3)],
    ["one byte repeated 1 MiB", () => new Uint8Array(1 << 20).fill(7)],
    ["the kernel's first 3 MiB", () => kernel.subarray(0, 3 * MiB)],
  ];
  it.each(small)("%s (levels 1 and 19)", (_name, make) => {
    const d = make();
    for (const args of [["-1"], ["-19", "--no-check"]]) {
      const z = tool(["-q", "-c", ...args], d);
      const want = tool(["-dc"], z);
      const r = viaCore(z, Math.max(1, want.length));
      expect(r.value.written).toBe(want.length);
      expect(eqBytes(r.out.subarray(0, want.length), want)).toBe(true);
      if (d.length > 1000 && !d.every((b) => b === d[0])) expect(r.seq).toBeGreaterThan(0);
    }
  });

  it("several frames with a skippable frame between them", () => {
    const a = tool(["-q", "-c", "-5"], codeLike(300_000, 5));
    const b = tool(["-q", "-c", "-1"], codeLike(100_000, 6));
    const skip = cat(Uint8Array.of(0x5e, 0x2a, 0x4d, 0x18, 3, 0, 0, 0), Uint8Array.of(9, 9, 9));
    const stream = cat(a, skip, b, a);
    sameAsTool(stream, tool(["-dc"], stream));
  });

  it("a corrupt checksum, a truncated frame and too little room are refused as the TS loops refuse them", () => {
    const d = codeLike(400_000, 7);
    const z = tool(["-q", "-c", "-9"], d);
    const bad = z.slice();
    bad[bad.length - 2] ^= 0xff;
    expect(zstd(["-dc"], bad).status).not.toBe(0);
    const cases: Array<[Uint8Array, number, CodecError["kind"]]> = [
      [bad, d.length, "checksum"],
      [z.subarray(0, z.length - 50), d.length, "truncated"],
      [z, 1000, "too-large"],
    ];
    for (const [input, room, kind] of cases) {
      const e = thrown(() => viaCore(input, room));
      expect(e?.kind, e?.message).toBe(kind);
      const t = thrown(() => zstdCodec.decode(input, new Uint8Array(room)));
      expect(t).toEqual(e);
      expect(t?.message).toBe(e?.message);
    }
  });
});

// ── hand-made frames (RFC 8878) ──

/**
 * A frame with no Frame_Content_Size, no checksum and a 1 KiB window (Frame_Header_Descriptor 0,
 * Window_Descriptor 0), holding one compressed last block.
 */
function frame(block: Uint8Array): Uint8Array {
  const bh = (block.length << 3) | (2 << 1) | 1; // Block_Size, Block_Type 2 (compressed), Last_Block
  return cat(Uint8Array.of(0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x00, bh & 255, (bh >> 8) & 255, bh >> 16), block);
}

/**
 * A compressed block: raw literals (1-byte Literals_Section_Header, fewer than 32 of them), then
 * nseq sequences whose Literals_Length, Offset and Match_Length codes are RLE-mode symbols
 * (Symbol_Compression_Modes 0x54: no FSE state bits), then the bitstream.
 */
function block(lits: string, nseq: number, ll: number, of: number, ml: number, stream: Uint8Array): Uint8Array {
  const l = new TextEncoder().encode(lits);
  return cat(Uint8Array.of(l.length << 3), l, Uint8Array.of(nseq, 0x54, ll, of, ml), stream);
}

/**
 * The backward bitstream (§4.1) holding, in reading order, `bits` values of `width` bits each
 * (the Offset extra bits: the only ones with these codes), under the end mark.
 */
function stream(width: number, ...values: number[]): Uint8Array {
  let v = 1n;
  for (const x of values) v = (v << BigInt(width)) | BigInt(x);
  const out: number[] = [];
  while (v > 0n) {
    out.push(Number(v & 0xffn));
    v >>= 8n;
  }
  return Uint8Array.from(out);
}

describe("corruption inside the core's sequence loop", () => {
  // LL code 4 = 4 literals, OF code 2 with extra bits 0 = Offset_Value 4 = offset 1, ML code 5 =
  // 8 bytes: "abcd" then "dddddddd".
  const good = frame(block("abcd", 1, 4, 2, 5, stream(2, 0)));

  /** Our error through the core, which must equal the TS loops' and be a refusal zstd shares. */
  function refused(input: Uint8Array, kind: CodecError["kind"], text: string, room = 1024): void {
    expect(zstd(["-dc"], input).status, "zstd -dc must refuse it too").not.toBe(0);
    const e = thrown(() => viaCore(input, room));
    expect(e?.kind, e?.message).toBe(kind);
    expect(e?.message).toContain(text);
    // the refusal came from inside the core's loop (zstdSeq ran), not from the header parsing
    const calls = vi.spyOn(Core.prototype, "zstdSeq");
    thrown(() => zstdCodec.decode(input, vm.ram.view(RAM_BASE, room), { core: vm.core }));
    expect(calls).toHaveBeenCalled();
    calls.mockRestore();
    const t = thrown(() => zstdCodec.decode(input, new Uint8Array(room)));
    expect(t).toEqual(e);
    expect(t?.message).toBe(e?.message);
    expect(t?.offset).toBe(e?.offset);
  }

  it("the hand-made frame decodes as zstd -dc decodes it", () => {
    const want = tool(["-dc"], good);
    expect(new TextDecoder().decode(want)).toBe("abcddddddddd");
    sameAsTool(good, want);
  });
  it("a match offset reaching before the start of the output", () => {
    // OF code 5, extra 0: Offset_Value 32, offset 29 after 4 bytes of output
    refused(frame(block("abcd", 1, 4, 5, 5, stream(5, 0))), "corrupt", "match offset 29, reaching before the start of the frame's output (4 bytes)");
  });
  it("a repeat offset that becomes 0 (Offset_Value 3 with Literals_Length 0: Repeated_Offset1 - 1)", () => {
    refused(frame(block("abcd", 1, 0, 1, 5, stream(1, 1))), "corrupt", "has match offset 0");
  });
  it("a literal length past the block's literals", () => {
    refused(frame(block("abcd", 1, 10, 2, 5, stream(2, 0))), "corrupt", "takes 10 literals, only 4 are left");
  });
  it("a bitstream too short for its sequences", () => {
    refused(frame(block("abcd", 1, 2, 5, 5, stream(5))), "corrupt", "is too short for its 1 sequences");
  });
  it("bits left over after the last sequence", () => {
    refused(frame(block("abcd", 1, 4, 2, 5, stream(2, 0, 1))), "corrupt", "bits left over");
  });
  it("output past the room: in the match, in the literals, in the last literals", () => {
    for (const room of [11, 3]) {
      let e: CodecError | undefined;
      expect((e = thrown(() => viaCore(good, room)))?.kind).toBe("too-large");
      const t = thrown(() => zstdCodec.decode(good, new Uint8Array(room)));
      expect(t?.message).toBe(e?.message);
      expect(t?.offset).toBe(e?.offset);
    }
    // trailing literals: 1 sequence using 2 of 4 literals, then 2 more literals after it
    const tail = frame(block("abcd", 1, 2, 2, 0, stream(2, 0)));
    expect(new TextDecoder().decode(tool(["-dc"], tail))).toBe("abbbbcd");
    sameAsTool(tail, tool(["-dc"], tail));
    const e = thrown(() => viaCore(tail, 6));
    expect(e?.kind).toBe("too-large");
    expect(e?.message).toBe(thrown(() => zstdCodec.decode(tail, new Uint8Array(6)))?.message);
    // nothing past the room was written: the bytes after it in guest RAM keep their value
    const view = vm.ram.view(RAM_BASE, 64);
    view.fill(0xee);
    expect(thrown(() => zstdCodec.decode(tail, view.subarray(0, 6), { core: vm.core }))?.kind).toBe("too-large");
    expect(view.subarray(6).every((b) => b === 0xee)).toBe(true);
  });
});

describe("the core's loops and the TypeScript loops agree on every input", () => {
  it("random byte corruptions of real streams: same output, or the same error", { timeout: 240_000 }, () => {
    const sources = [
      tool(["-q", "-c", "-3"], kernel.subarray(0x100000, 0x100000 + 600_000)),
      tool(["-q", "-c", "-19"], codeLike(200_000, 11)),
      tool(["-q", "-c", "-1", "--no-check"], kernel.subarray(0x400000, 0x400000 + 300_000)),
    ];
    let x = 0x2545f491;
    const rnd = (n: number) => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return (x >>> 0) % n;
    };
    let errors = 0;
    let coreRuns = 0;
    for (let i = 0; i < 300; i++) {
      const z = sources[i % sources.length].slice();
      for (let k = 1 + rnd(3); k > 0; k--) z[rnd(z.length)] ^= 1 << rnd(8);
      const room = 700_000;
      const plain = new Uint8Array(room);
      let a: unknown;
      let b: unknown;
      try {
        a = zstdCodec.decode(z, plain);
      } catch (e) {
        a = e;
      }
      const out = vm.ram.view(RAM_BASE, room);
      const s = spyCore(() => {
        try {
          return zstdCodec.decode(z, out, { core: vm.core });
        } catch (e) {
          return e;
        }
      });
      b = s.value;
      if (s.seq > 0) coreRuns++;
      if (a instanceof CodecError) {
        errors++;
        expect(b).toBeInstanceOf(CodecError);
        expect({ kind: (b as CodecError).kind, offset: (b as CodecError).offset, message: (b as CodecError).message }).toEqual({ kind: a.kind, offset: a.offset, message: a.message });
      } else {
        expect(b).toEqual(a);
        const n = (a as { written: number }).written;
        expect(eqBytes(out.subarray(0, n), plain.subarray(0, n))).toBe(true);
      }
    }
    expect(errors).toBeGreaterThan(100);
    expect(coreRuns).toBeGreaterThan(250);
  });
});

describe("a zstd kernel loaded into a VM", () => {
  it("decodes through the core; a stream corrupted inside a block is refused and RAM is unchanged", { timeout: 120_000 }, async () => {
    // the size declared (Frame_Content_Size), so planning reads only headers and the head
    const z = tool(["-q", "-c", "-3", "--no-check", `--stream-size=${kernel.length}`], kernel);
    const v = await createVm({ ram: [{ base: RAM_BASE, size: 64 * MiB }], files: fromMap({ "Image.zst": z, "bad.zst": (() => {
      // bytes in the middle of the stream (inside a compressed block, well past the head that
      // planning decodes) changed: the frame's headers stay valid
      const bad = z.slice();
      for (let i = 0; i < 64; i++) bad[(z.length >> 1) + i] ^= 0x5a;
      return bad;
    })() }) });
    v.ram.view(RAM_BASE, 64 * MiB).fill(0xee);
    const seq = vi.spyOn(Core.prototype, "zstdSeq");
    const err = await expectRefused(v, () => v.loadKernel("bad.zst", { at: RAM_BASE }), "BAD_HEADER");
    expect(err.message, err.message).toContain("zstd");
    expect(seq).toHaveBeenCalled();
    seq.mockClear();
    const k = await v.loadKernel("Image.zst", { at: RAM_BASE });
    expect(k.format).toBe("arm64-image");
    expect(seq.mock.calls.length).toBeGreaterThan(100);
    expect(eqBytes(v.ram.read(RAM_BASE, kernel.length), tool(["-dc"], z))).toBe(true);
  });
});

describe("zstd: a Frame_Content_Size past 2^53 is named exactly (fuzz finding: it read \"Infinity\")", () => {
  it("decode() and measure() name the 64-bit value in hex (RFC 8878: FCS_Field_Size 8 is an unsigned 64-bit value)", () => {
    // Single segment, FCS flag 3 (8 bytes) = 2^64 − 1, then a raw last block of 0 bytes.
    const frame = new Uint8Array([0x28, 0xb5, 0x2f, 0xfd, 0xe0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x00, 0x00]);
    for (const run of [() => zstdCodec.decode(frame, new Uint8Array(0x1000)), () => zstdCodec.measure!(frame, 0x1000)]) {
      const e = (() => { try { run(); } catch (x) { return x; } })() as CodecError;
      expect(e).toBeInstanceOf(CodecError);
      expect(e.kind).toBe("too-large");
      expect(e.message).toContain("Frame_Content_Size 0xffffffffffffffff");
      expect(e.message).not.toMatch(/Infinity|NaN/);
    }
  });
});
