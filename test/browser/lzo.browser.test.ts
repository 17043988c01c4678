// lzop data loaded in Chromium through the Wasm core's LZO1X loop (assembly/lzo.ts) gives what
// lzop gives: the vector in fixtures/codecs/ was made by lzop and its decompressed SHA-256 taken
// with sha256sum (fixtures/codecs/README.md). Loaded with vm.loadKernel into guest RAM (the path a
// page's load takes), hashed with WebCrypto; the core and the TypeScript loop agree on a damaged copy.
import { describe, expect, it, vi } from "vitest";
import { CodecError } from "../../src/compress/codec.js";
import { lzoCodec } from "../../src/compress/lzo.js";
import { createVm, fromMap, GuestImageError } from "../../src/index.js";

const SIZE = 327680;
const SHA256 = "1c97993c2583b07a98eecb8d6f0060427c5f9d7fb3ee7f3ffea3b7865e118c35";
const BASE = 0x4000_0000;

async function vector(name: string): Promise<Uint8Array> {
  const r = await fetch(new URL(`./fixtures/codecs/${name}`, import.meta.url));
  expect(r.ok).toBe(true);
  return new Uint8Array(await r.arrayBuffer());
}

const hex = (b: ArrayBuffer) => Array.from(new Uint8Array(b), (x) => x.toString(16).padStart(2, "0")).join("");

describe("lzo in Chromium == lzop", () => {
  it("arm64-slice320.lzo loaded into guest RAM by the core: lzop's bytes, each block through the core", async () => {
    const input = await vector("arm64-slice320.lzo");
    const vm = await createVm({ ram: [{ base: BASE, size: 1 << 20 }], files: fromMap({ "slice.lzo": input }) });
    const spy = vi.spyOn(vm.core, "lzo1x");
    await vm.loadKernel("slice.lzo", { at: BASE + 0x1000 });
    expect(spy.mock.calls.length).toBe(2);
    spy.mockRestore();
    expect(hex(await crypto.subtle.digest("SHA-256", vm.ram.read(BASE + 0x1000, SIZE)))).toBe(SHA256);
    expect(vm.placed()).toEqual([{ name: "slice.lzo", paddr: BASE + 0x1000, size: SIZE }]);
  });

  it("a damaged copy: the same error from the core and the TypeScript loop; the load is refused with RAM and ledger unchanged", async () => {
    const bad = (await vector("arm64-slice320.lzo")).slice();
    bad[bad.length - 5000] ^= 0x5a; // inside the second block's LZO1X data
    const vm = await createVm({ ram: [{ base: BASE, size: 1 << 20 }], files: fromMap({ "bad.lzo": bad }) });
    const grab = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return e as CodecError;
      }
      throw new Error("the decoder must fail");
    };
    const a = grab(() => lzoCodec.decode(bad, vm.ram.view(BASE, SIZE), { core: vm.core }));
    const b = grab(() => lzoCodec.decode(bad, new Uint8Array(SIZE)));
    expect(a).toBeInstanceOf(CodecError);
    expect(["corrupt", "checksum"]).toContain(a.kind);
    expect({ kind: a.kind, offset: a.offset, message: a.message }).toEqual({ kind: b.kind, offset: b.offset, message: b.message });
    vm.ram.write(BASE, new Uint8Array(SIZE + 0x1000).fill(0xa5));
    const e = await vm.loadKernel("bad.lzo", { at: BASE + 0x1000 }).catch((x) => x);
    expect(e).toBeInstanceOf(GuestImageError);
    expect(vm.placed()).toEqual([]);
    expect(vm.ram.read(BASE, SIZE + 0x1000).every((x) => x === 0xa5)).toBe(true);
  });
});
