// lz4 data loaded in Chromium through the Wasm core's LZ4 loop (assembly/lz4.ts) gives what lz4
// gives: the vectors in fixtures/codecs/ were made by lz4 and their decompressed SHA-256 taken with
// sha256sum (fixtures/codecs/README.md). Loaded with vm.loadKernel into guest RAM (the path a
// page's load takes), hashed with WebCrypto; the core and the TypeScript loop agree on damaged copies.
import { describe, expect, it, vi } from "vitest";
import { CodecError } from "../../src/compress/codec.js";
import { lz4Codec } from "../../src/compress/lz4.js";
import { createVm, fromMap, GuestImageError } from "../../src/index.js";

const BASE = 0x4000_0000;
const VECTORS: Array<[string, number, string, number]> = [
  // name, size, SHA-256, fewest core calls (legacy: one block in two input pieces; frame: five linked blocks)
  ["arm64-slice640.lz4", 655360, "dc5a214a044ac3d349546f519b482bd5f4df82378b8875becfa57ce5aa5781d2", 2],
  ["arm64-slice320.lz4", 327680, "1c97993c2583b07a98eecb8d6f0060427c5f9d7fb3ee7f3ffea3b7865e118c35", 5],
];

async function vector(name: string): Promise<Uint8Array> {
  const r = await fetch(new URL(`./fixtures/codecs/${name}`, import.meta.url));
  expect(r.ok).toBe(true);
  return new Uint8Array(await r.arrayBuffer());
}

const hex = (b: ArrayBuffer) => Array.from(new Uint8Array(b), (x) => x.toString(16).padStart(2, "0")).join("");

describe("lz4 in Chromium == lz4", () => {
  it.each(VECTORS)("%s loaded into guest RAM by the core: lz4's bytes", async (name, size, sha, calls) => {
    const input = await vector(name);
    const vm = await createVm({ ram: [{ base: BASE, size: 2 << 20 }], files: fromMap({ [name]: input }) });
    const spy = vi.spyOn(vm.core, "lz4");
    await vm.loadKernel(name, { at: BASE + 0x1001 });
    expect(spy.mock.calls.length).toBeGreaterThanOrEqual(calls);
    spy.mockRestore();
    expect(hex(await crypto.subtle.digest("SHA-256", vm.ram.read(BASE + 0x1001, size)))).toBe(sha);
    expect(vm.placed()).toEqual([{ name, paddr: BASE + 0x1001, size }]);
  });

  it.each(VECTORS)("%s damaged: the same errors from the core and the TypeScript loop; a failing load leaves RAM and ledger unchanged", async (name, size) => {
    const good = await vector(name);
    let failed = 0;
    for (let k = 0; k < 20; k++) {
      const bad = good.slice();
      bad[good.length - 1000 - k * 9973] ^= 0x5a;
      const vm = await createVm({ ram: [{ base: BASE, size: 2 << 20 }], files: fromMap({ bad: bad }) });
      const run = (f: () => unknown) => {
        try {
          f();
          return undefined;
        } catch (e) {
          return e as CodecError;
        }
      };
      const view = vm.ram.view(BASE, size);
      const a = run(() => lz4Codec.decode(bad, view, { core: vm.core }));
      const host = new Uint8Array(size);
      const b = run(() => lz4Codec.decode(bad, host));
      if (!b) {
        expect(a).toBeUndefined();
        expect(view.every((x, i) => x === host[i])).toBe(true);
        continue;
      }
      failed++;
      expect(a).toBeInstanceOf(CodecError);
      expect({ kind: a!.kind, offset: a!.offset, message: a!.message }).toEqual({ kind: b.kind, offset: b.offset, message: b.message });
      // a longer output only fails for want of room here; a load has more
      if (b.kind === "too-large") continue;
      vm.ram.write(BASE, new Uint8Array(size + 0x1000).fill(0xa5));
      const e = await vm.loadKernel("bad", { at: BASE + 0x1000 }).catch((x) => x);
      expect(e instanceof GuestImageError, String(e?.message ?? e?.format)).toBe(true);
      expect(vm.placed()).toEqual([]);
      expect(vm.ram.read(BASE, size + 0x1000).every((x) => x === 0xa5)).toBe(true);
    }
    expect(failed).toBeGreaterThan(0);
  });
});
