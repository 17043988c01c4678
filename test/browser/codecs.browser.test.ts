// The xz, lzma and bzip2 decoders in Chromium give what the reference tools give: the vectors in
// fixtures/codecs/ were made by xz-utils and bzip2 and their decompressed SHA-256 taken with
// sha256sum (fixtures/codecs/README.md); here they are decoded into a WebAssembly.Memory (as guest
// RAM is) and hashed with WebCrypto.
import { describe, expect, it } from "vitest";
import { bzip2 } from "../../src/compress/bzip2.js";
import { CodecError, type Codec } from "../../src/compress/codec.js";
import { lzma } from "../../src/compress/lzma.js";
import { xz } from "../../src/compress/xz.js";

const SIZE = 196608;
const SHA256 = "1766860fc07e198cacaf1469eedd21bebe90b8b57a029dd07102ece30ad7ccf8";

async function vector(name: string): Promise<Uint8Array> {
  const r = await fetch(new URL(`./fixtures/codecs/${name}`, import.meta.url));
  expect(r.ok).toBe(true);
  return new Uint8Array(await r.arrayBuffer());
}

const hex = (b: ArrayBuffer) => Array.from(new Uint8Array(b), (x) => x.toString(16).padStart(2, "0")).join("");

describe("decoders in Chromium == the reference tools", () => {
  for (const [codec, file] of [[xz, "arm64-slice.xz"], [lzma, "arm64-slice.lzma"], [bzip2, "arm64-slice.bz2"]] as Array<[Codec, string]>) {
    it(`${codec.name}: ${file}`, async () => {
      const input = await vector(file);
      const mem = new WebAssembly.Memory({ initial: 8 });
      const out = new Uint8Array(mem.buffer, 4096, SIZE);
      const r = codec.decode(input, out);
      expect(r.written).toBe(SIZE);
      expect(r.consumed).toBe(input.length);
      expect(hex(await crypto.subtle.digest("SHA-256", out.slice()))).toBe(SHA256);
      const e = (() => {
        try {
          codec.decode(input.subarray(0, input.length >> 1), new Uint8Array(SIZE));
        } catch (x) {
          return x;
        }
      })();
      expect(e).toBeInstanceOf(CodecError);
      expect((e as CodecError).kind).toBe("truncated");
    });
  }
});
