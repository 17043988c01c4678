// zstd in Chromium through the Wasm core's loops (assembly/zstd.ts), as a load runs them: decoded
// into a VM's guest RAM with the VM's core. The vector is Debian's arm64 kernel slice made by
// `zstd -19` (fixtures/codecs/README.md), its decompressed SHA-256 taken with sha256sum; the
// output is hashed with WebCrypto. A corrupted copy must fail the same way on the core's loops
// and on the TypeScript ones.
import { afterEach, describe, expect, it, vi } from "vitest";
import { CodecError } from "../../src/compress/codec.js";
import { zstdCodec } from "../../src/compress/zstd.js";
import { Core } from "../../src/core/core.js";
import { createVm } from "../../src/index.js";

const SIZE = 196608;
const SHA256 = "1766860fc07e198cacaf1469eedd21bebe90b8b57a029dd07102ece30ad7ccf8";
const hex = (b: ArrayBuffer) => Array.from(new Uint8Array(b), (x) => x.toString(16).padStart(2, "0")).join("");

afterEach(() => {
  vi.restoreAllMocks();
});

describe("zstd in Chromium, through the Wasm core", () => {
  it("decodes zstd -19's stream into guest RAM to the reference bytes; a corrupt stream fails as on the TS loops", async () => {
    const r = await fetch(new URL("./fixtures/codecs/arm64-slice.zst", import.meta.url));
    expect(r.ok).toBe(true);
    const input = new Uint8Array(await r.arrayBuffer());
    const vm = await createVm({ ram: [{ base: 0x4000_0000, size: 1 << 20 }] });
    const seq = vi.spyOn(Core.prototype, "zstdSeq");
    const out = vm.ram.view(0x4000_0000, SIZE);
    expect(zstdCodec.decode(input, out, { core: vm.core })).toEqual({ written: SIZE, consumed: input.length });
    expect(seq).toHaveBeenCalled();
    expect(hex(await crypto.subtle.digest("SHA-256", out.slice()))).toBe(SHA256);

    const bad = input.slice();
    for (let i = 0; i < 16; i++) bad[(bad.length >> 1) + i] ^= 0x3c;
    const fail = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return e as CodecError;
      }
      return undefined;
    };
    const e = fail(() => zstdCodec.decode(bad, vm.ram.view(0x4000_0000, SIZE), { core: vm.core }));
    const t = fail(() => zstdCodec.decode(bad, new Uint8Array(SIZE)));
    expect(e).toBeInstanceOf(CodecError);
    expect({ kind: e?.kind, offset: e?.offset, message: e?.message }).toEqual({ kind: t?.kind, offset: t?.offset, message: t?.message });
  });
});
