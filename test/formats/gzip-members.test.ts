// gzip data with more than one member or with bytes after the last member, read as `gzip -dc`
// reads it (the reference: its output is what must land in guest RAM). The case from issue 13:
// an Image.gz padded after its member used to be refused with "ISIZE is 0".
import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { decompressionStreamInflater } from "../../src/compress/inflate.js";
import { codeLike, eqBytes } from "../helpers/gzip.js";
import { expectRefused, MiB, RAM_BASE, vmWith, withInflater } from "../helpers/vm.js";

const gzip = (d: Uint8Array, ...args: string[]) => new Uint8Array(spawnSync("gzip", ["-c", ...args], { input: d, maxBuffer: 1 << 28 }).stdout);
/** gzip -dc's output; gzip exits 2 on "trailing garbage ignored", which is only a warning. */
const gunzip = (d: Uint8Array) => {
  const r = spawnSync("gzip", ["-dc"], { input: d, maxBuffer: 1 << 28 });
  expect([0, 2]).toContain(r.status);
  return new Uint8Array(r.stdout);
};
const cat = (...p: Uint8Array[]) => new Uint8Array(p.flatMap((x) => [...x]));

/** An arm64 Image (booting.rst header; text_offset 0) of n bytes. */
function arm64Image(n: number): Uint8Array {
  const b = codeLike(n, 31);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, 0xfa405a4d, true);
  dv.setBigUint64(0x08, 0n, true);
  dv.setBigUint64(0x10, BigInt(n), true);
  dv.setBigUint64(0x18, 0xan, true);
  for (let o = 0x20; o < 0x38; o++) b[o] = 0;
  dv.setUint32(0x38, 0x644d5241, true);
  return b;
}

const IMG = arm64Image(0x10_0000);

describe("gzip data read as gzip -dc reads it (node:zlib inflater)", () => {
  const cases: Array<[string, () => Uint8Array]> = [
    ["padded with zeros after the member (issue 13: was \"ISIZE is 0\")", () => cat(gzip(IMG, "-9"), new Uint8Array(4096))],
    ["followed by other bytes, then zero padding", () => cat(gzip(IMG), new Uint8Array(300).fill(0x55), new Uint8Array(512))],
    ["two members (the second small), then padding", () => cat(gzip(IMG.subarray(0, 0xf_0000)), gzip(IMG.subarray(0xf_0000), "-1"), new Uint8Array(512))],
    ["three members, then padding", () => cat(gzip(IMG.subarray(0, 0x8_0000)), gzip(IMG.subarray(0x8_0000, 0xf_f000)), gzip(IMG.subarray(0xf_f000)), new Uint8Array(64))],
  ];
  it.each(cases)("%s: loads what gzip -dc outputs", async (_name, make) => {
    const file = make();
    const want = gunzip(file);
    expect(eqBytes(want, IMG)).toBe(true);
    const vm = await vmWith({ "Image.gz": file });
    const k = await vm.loadKernel("Image.gz", { at: RAM_BASE });
    expect(k).toMatchObject({ format: "arm64-image", paddr: RAM_BASE, size: IMG.length });
    expect(eqBytes(vm.ram.read(RAM_BASE, want.length), want)).toBe(true);
  });

  it("members with nothing after them: the last ISIZE reads as a (lying) whole size, refused as a bomb would be, nothing written", async () => {
    const file = cat(gzip(IMG.subarray(0, 0xf_0000)), gzip(IMG.subarray(0xf_0000)));
    expect(eqBytes(gunzip(file), IMG)).toBe(true); // gzip -dc reads it; we do not (README, "gzip members")
    const vm = await vmWith({ "Image.gz": file }, 16 * MiB);
    await expectRefused(vm, () => vm.loadKernel("Image.gz", { at: RAM_BASE }), "TOO_LARGE", "ISIZE");
  });

  it("followed by other bytes at the very end: their last 4 bytes read as an ISIZE past the RAM, refused before decompressing", async () => {
    const file = cat(gzip(IMG), new Uint8Array(300).fill(0x55));
    expect(eqBytes(gunzip(file), IMG)).toBe(true);
    const vm = await vmWith({ "Image.gz": file }, 16 * MiB);
    await expectRefused(vm, () => vm.loadKernel("Image.gz", { at: RAM_BASE }), "TOO_LARGE", "ISIZE");
  });

  it("a bad CRC in a later member is BAD_CHECKSUM, nothing written", async () => {
    const second = gzip(IMG.subarray(0xf_0000));
    second[second.length - 6] ^= 1; // its CRC32
    const vm = await vmWith({ "Image.gz": cat(gzip(IMG.subarray(0, 0xf_0000)), second, new Uint8Array(16)) }, 16 * MiB);
    await expectRefused(vm, () => vm.loadKernel("Image.gz", { at: RAM_BASE }), "BAD_CHECKSUM", "CRC32");
  });
});

describe("with DecompressionStream, which cannot say where a member ends", () => {
  withInflater(decompressionStreamInflater);
  it("padding after the member is still refused (ISIZE 0), nothing written", async () => {
    const vm = await vmWith({ "Image.gz": cat(gzip(IMG), new Uint8Array(4096)) }, 16 * MiB);
    await expectRefused(vm, () => vm.loadKernel("Image.gz", { at: RAM_BASE }), "BAD_HEADER", "ISIZE");
  });
});
