// The Wasm core: its shape (only env.memory imported, no data segment, so all of linear memory
// can be guest RAM) and its loops against independent references (a CRC-32 reference given by
// the caller, plain JS). Shared by test/core.test.ts (Node, zlib's CRC-32) and
// test/browser/core.browser.test.ts (Chromium, a bitwise CRC-32 written from the definition).
import { describe, expect, it } from "vitest";
import { Core, coreModule, coreWasmBytes, SCRATCH_BYTES } from "../../../src/core/core.js";

export interface Crc32Reference {
  /** What the reference is, for test names ("zlib"). */
  name: string;
  crc32(data: Uint8Array): number;
}

/** Section ids of a wasm binary, read from the spec's module encoding (magic, version, sections). */
function sectionIds(bin: Uint8Array): number[] {
  expect([...bin.subarray(0, 8)]).toEqual([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
  const ids: number[] = [];
  let p = 8;
  while (p < bin.length) {
    const id = bin[p++];
    let size = 0;
    let shift = 0;
    for (;;) {
      const b = bin[p++];
      size |= (b & 0x7f) << shift;
      shift += 7;
      if (!(b & 0x80)) break;
    }
    ids.push(id);
    p += size;
  }
  expect(p).toBe(bin.length);
  return ids;
}

async function coreWithMemory(pages = 2 + Math.ceil(SCRATCH_BYTES / 65536)) {
  const memory = new WebAssembly.Memory({ initial: pages });
  const scratch = pages * 65536 - SCRATCH_BYTES;
  return { memory, core: await Core.create(memory, scratch), scratch };
}

/**
 * The memory import's limits, read from the import section per the spec's binary format
 * (limits flags: 0x00 min, 0x01 min+max, 0x03 shared min+max).
 */
function memoryImportLimits(bin: Uint8Array): { flags: number; min: number; max?: number } {
  let p = 8;
  const leb = () => {
    let v = 0;
    let shift = 0;
    for (;;) {
      const b = bin[p++];
      v += (b & 0x7f) * 2 ** shift;
      shift += 7;
      if (!(b & 0x80)) return v;
    }
  };
  while (p < bin.length) {
    const id = bin[p++];
    const size = leb();
    const next = p + size;
    if (id === 2) {
      const count = leb();
      for (let i = 0; i < count; i++) {
        for (let k = 0; k < 2; k++) {
          const len = leb(); // module name, then field name
          p += len;
        }
        const kind = bin[p++];
        if (kind !== 2) throw new Error(`import ${i} is not a memory (kind ${kind})`);
        const flags = bin[p++];
        const min = leb();
        return flags & 1 ? { flags, min, max: leb() } : { flags, min };
      }
    }
    p = next;
  }
  throw new Error("no import section");
}

export function coreCases(ref: Crc32Reference) {
  for (const shared of [false, true]) {
    const variant = shared ? "shared-memory build" : "plain build";
    const newMemory = (initial: number) => new WebAssembly.Memory(shared ? { initial, maximum: 64, shared: true } : { initial });

    describe(`Wasm core module (${variant})`, () => {
      it("imports only env.memory", async () => {
        const mod = await coreModule(shared);
        expect(WebAssembly.Module.imports(mod)).toEqual([{ module: "env", name: "memory", kind: "memory" }]);
      });

      it(shared ? "declares the memory shared, maximum 65536 pages (the wasm32 limit)" : "declares the memory plain, with no maximum", () => {
        expect(memoryImportLimits(coreWasmBytes(shared))).toEqual(shared ? { flags: 3, min: 0, max: 65536 } : { flags: 0, min: 0 });
      });

      it("has no data section (id 11) and no data-count section (id 12)", () => {
        const ids = sectionIds(coreWasmBytes(shared));
        expect(ids).not.toContain(11);
        expect(ids).not.toContain(12);
        expect(ids).toContain(2); // import section
      });

      it("does not write linear memory when instantiated", async () => {
        const memory = newMemory(2);
        new Uint8Array(memory.buffer).fill(0x5a);
        await Core.create(memory, 65536); // the scratch area is the second page
        expect(new Uint8Array(memory.buffer, 0, 65536).every((b) => b === 0x5a)).toBe(true);
      });

      it("exports the copy, fill, CRC-32, zero-test, relocation, lzo, lz4 and zstd loops (and re-exports the imported memory)", async () => {
        const mod = await coreModule(shared);
        const names = WebAssembly.Module.exports(mod).map((e) => e.name).sort();
        expect(names).toEqual(
          ["copy", "crc32", "crc32Init", "elfRelocApply", "elfRelocCheck", "fill", "isZero", "memory", "rela64le", "relocCount", "relrApply", "relrCheck", "x86RelocApply", "x86RelocCheck",
            "adler32", "lzo1xDecode", "lzoErrArg", "lzoErrAt", "lzoOut",
            "lz4Decode", "lz4ErrArg", "lz4ErrAt", "lz4In", "lz4Out", "lz4Xxh32",
            "zstdFseBuild", "zstdHuf1", "zstdHuf4", "zstdHufTable", "zstdInfo", "zstdOut", "zstdSeq", "zstdXxh64Low"].sort(),
        );
      });

      it("is the build Core.create picks for such a memory (the other one cannot link to it)", async () => {
        const memory = newMemory(2);
        const core = await Core.create(memory, 65536);
        core.bytes()[5] = 7;
        core.copy(10, 5, 1);
        expect(new Uint8Array(memory.buffer)[10]).toBe(7);
        await expect(WebAssembly.instantiate(await coreModule(!shared), { env: { memory } })).rejects.toBeInstanceOf(WebAssembly.LinkError);
      });
    });
  }

describe("core loops", () => {
  it(`CRC-32 equals ${ref.name}'s for every length 0..300 and at every alignment`, async () => {
    const { core } = await coreWithMemory();
    const data = new Uint8Array(4096).map((_, i) => (i * 2654435761) >>> 24);
    core.bytes().set(data, 0);
    for (let off = 0; off < 8; off++) {
      for (let len = 0; len <= 300; len++) {
        expect(core.crc32(off, len)).toBe(ref.crc32(data.subarray(off, off + len)));
      }
    }
  });

  it("CRC-32 continues across calls like zlib's crc32(prev, buf)", async () => {
    const { core } = await coreWithMemory();
    const data = new Uint8Array(100_000).map((_, i) => (i * 7 + (i >> 5)) & 0xff);
    const whole = ref.crc32(data);
    expect(core.crc32Bytes(data)).toBe(whole);
    const a = core.crc32Bytes(data.subarray(0, 12_345));
    expect(core.crc32Bytes(data.subarray(12_345), a)).toBe(whole);
    // The well-known check value of CRC-32/ISO-HDLC.
    expect(core.crc32Bytes(new TextEncoder().encode("123456789"))).toBe(0xcbf43926);
  });

  it("copies and fills exactly the requested range", async () => {
    const { core } = await coreWithMemory();
    const m = core.bytes();
    for (let i = 0; i < 1000; i++) m[i] = i & 0xff;
    core.copy(5000, 10, 100);
    core.fill(7000, 0xab, 33);
    expect([...m.subarray(5000, 5100)]).toEqual([...m.subarray(10, 110)]);
    expect(m[4999]).toBe(0);
    expect(m[5100]).toBe(0);
    expect(m.subarray(7000, 7033).every((b) => b === 0xab)).toBe(true);
    expect(m[6999]).toBe(0);
    expect(m[7033]).toBe(0);
  });

  it("isZero finds a single non-zero byte anywhere, at any alignment", async () => {
    const { core } = await coreWithMemory();
    const m = core.bytes();
    for (const start of [0, 1, 7, 15, 16, 17]) {
      for (const len of [0, 1, 15, 16, 63, 64, 65, 200]) {
        expect(core.isZero(start, len)).toBe(true);
        for (const at of new Set([0, len >> 1, len - 1])) {
          if (len === 0) continue;
          m[start + at] = 1;
          expect(core.isZero(start, len)).toBe(false);
          m[start + at] = 0;
        }
      }
    }
  });
});
}
