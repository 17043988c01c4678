// Compressed kernels in every container: raw streams (`Image.zst`, `Image.lz4`, `vmlinux.xz`…),
// EFI zboot payloads of each compression_type Makefile.zboot writes, and uImage IH_COMP data.
// Every compressed file is made by the reference tool (zstd, lz4, lzop, xz, bzip2, lzma, mkimage)
// the way Linux's build makes it (scripts/Makefile.lib: `lz4 -l -c1`, `lzop -9`, `zstd -22
// --ultra`, … followed by size_append's 4-byte little-endian size), `<tool> -dc` is checked to
// give the Image back, and the load must equal loading the uncompressed file itself.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { beforeAll, describe, expect, it } from "vitest";
import { GuestImageError, inspectFile, type Vm } from "../../src/node.js";
import { bytesFile } from "../../src/sources/source.js";
import { codeLike, eqBytes } from "../helpers/gzip.js";
import { expectRefused, MiB, RAM_BASE, vmWith } from "../helpers/vm.js";
import { readFixture } from "../qemu/fixtures.js";

function tool(cmd: string, args: string[], input: Uint8Array): Uint8Array {
  const r = spawnSync(cmd, args, { input, maxBuffer: 1 << 30 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} exited ${r.status}: ${r.stderr.toString()}`);
  return new Uint8Array(r.stdout.buffer, r.stdout.byteOffset, r.stdout.length);
}
const sh = (script: string, input: Uint8Array) => tool("sh", ["-c", script], input);

const cat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
};

/** scripts/Makefile.lib size_append: the uncompressed size, 4 bytes little-endian. */
const sizeAppend = (n: number) => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
};

/** How Linux's build compresses (scripts/Makefile.lib cmd_*), and how to decompress with the tool. */
const KERNEL_COMPRESSORS: Array<{ codec: string; zboot: string; uimage?: string; make: string; unmake: string }> = [
  { codec: "bzip2", zboot: "bzip2", uimage: "bzip2", make: "bzip2 -9", unmake: "bzip2 -dc" },
  { codec: "lz4", zboot: "lz4", uimage: "lz4", make: "lz4 -l -9 -c - -", unmake: "lz4 -dc" },
  { codec: "lzma", zboot: "lzma", uimage: "lzma", make: "lzma -9", unmake: "lzma -dc" },
  { codec: "lzo", zboot: "lzo", uimage: "lzo", make: "lzop -9", unmake: "lzop -dc" },
  { codec: "xz", zboot: "xzkern", make: "xz --check=crc32 --lzma2=dict=1MiB", unmake: "xz -dc" },
  { codec: "zstd", zboot: "zstd22", uimage: "zstd", make: "zstd -q -22 --ultra", unmake: "zstd -dc" },
];

/** An arm64 Image (Documentation/arch/arm64/booting.rst) of `imageSize` bytes, text_offset 0, BSS at the end. */
function arm64Image(imageSize: number): Uint8Array {
  const b = codeLike(imageSize, 23);
  b.fill(0, imageSize - 0x2000);
  const dv = new DataView(b.buffer);
  dv.setUint32(0x00, 0xfa405a4d, true); // "MZ" + branch
  dv.setBigUint64(0x08, 0n, true); // text_offset
  dv.setBigUint64(0x10, BigInt(imageSize), true); // image_size
  dv.setBigUint64(0x18, 0xan, true); // flags: LE, 4K pages, anywhere
  for (let o = 0x20; o < 0x38; o++) b[o] = 0;
  dv.setUint32(0x38, 0x644d5241, true); // "ARM\x64"
  dv.setUint32(0x3c, 0x40, true);
  return b;
}

/** drivers/firmware/efi/libstub/zboot-header.S: MZ, zimg, payload_offset/size, compression_type, Linux PE magic. */
function zboot(payload: Uint8Array, compressionType: string, after: Uint8Array): Uint8Array {
  const off = 0x1000;
  const b = new Uint8Array(off + payload.length + after.length + 0x200);
  const dv = new DataView(b.buffer);
  b.set([0x4d, 0x5a], 0);
  b.set([0x7a, 0x69, 0x6d, 0x67], 4);
  dv.setUint32(0x08, off, true);
  dv.setUint32(0x0c, payload.length, true);
  b.set(Uint8Array.from(`${compressionType}\0`, (c) => c.charCodeAt(0)), 0x18);
  dv.setUint32(0x38, 0x818223cd, true);
  dv.setUint32(0x3c, 0x40, true);
  b.set([0x50, 0x45, 0, 0], 0x40);
  b.set(payload, off);
  b.set(after, off + payload.length); // size_append, outside payload_size
  return b;
}

/** The same load of the uncompressed Image, as the reference. */
async function plainLoad(img: Uint8Array, at: number, ramSize = 64 * MiB): Promise<{ vm: Vm; k: Awaited<ReturnType<Vm["loadKernel"]>> }> {
  const vm = await vmWith({ Image: img }, ramSize);
  return { vm, k: await vm.loadKernel("Image", { at }) };
}

function expectSameLoad(vm: Vm, ref: Vm, ramSize = 64 * MiB): void {
  expect(eqBytes(vm.ram.read(RAM_BASE, ramSize), ref.ram.read(RAM_BASE, ramSize))).toBe(true);
}

const IMG = arm64Image(0x18_0000);

describe("raw compressed kernels (Image.bz2, Image.lz4, Image.lzma, Image.lzo, Image.xz, Image.zst)", () => {
  it.each(KERNEL_COMPRESSORS)("$codec: as Linux's build makes it (with size_append) and as the tool makes it alone", async ({ codec, make, unmake }) => {
    const alone = sh(make, IMG);
    const built = cat(alone, sizeAppend(IMG.length));
    expect(eqBytes(sh(unmake, alone), IMG)).toBe(true);
    const ref = await plainLoad(IMG, RAM_BASE + 0x1234);
    for (const file of [alone, built]) {
      const vm = await vmWith({ [`Image.${codec}`]: file });
      const k = await vm.loadKernel(`Image.${codec}`, { at: RAM_BASE + 0x1234 });
      expect(k).toMatchObject({ format: "arm64-image", paddr: ref.k.paddr, size: ref.k.size, entry: ref.k.entry });
      const { compression, compressed_size, decompressed_size, ...arch } = k.arch as unknown as Record<string, unknown>;
      expect({ compression, compressed_size, decompressed_size }).toEqual({ compression: codec, compressed_size: file.length, decompressed_size: IMG.length });
      expect(arch).toEqual(ref.k.arch);
      expectSameLoad(vm, ref.vm);
      expect(vm.placed()).toEqual([{ name: `Image.${codec}`, paddr: ref.k.paddr, size: ref.k.size }]);
    }
  });

  it("Debian's arm64 kernel recompressed with lz4 -l (Image.lz4 as arm64's Makefile builds it) and zstd loads as the Image does", { timeout: 240_000 }, async () => {
    const kernel = readFixture("arm64/Image");
    const ram = 256 * MiB;
    const ref = await plainLoad(kernel, RAM_BASE, ram);
    for (const [name, file] of [
      ["Image.lz4", cat(sh("lz4 -l -9 -c - -", kernel), sizeAppend(kernel.length))],
      ["Image.zst", sh("zstd -q -3 -c", kernel)],
    ] as const) {
      const vm = await vmWith({ [name]: file }, ram);
      const k = await vm.loadKernel(name, { at: RAM_BASE });
      expect(k).toMatchObject({ format: "arm64-image", paddr: ref.k.paddr, size: ref.k.size });
      expectSameLoad(vm, ref.vm, ram);
    }
  });

  it("an ELF kernel compressed (vmlinux.xz, vmlinux.zst): its segments placed as the ELF's own", async () => {
    const elf = new Uint8Array(readFileSync(new URL("../../examples/images/linux", import.meta.url)));
    const ref = await vmWith({ linux: elf });
    const rk = await ref.loadKernel("linux");
    for (const [name, file] of [["vmlinux.xz", sh("xz -c", elf)], ["vmlinux.zst", sh("zstd -q -c", elf)]] as const) {
      const vm = await vmWith({ [name]: file });
      const k = await vm.loadKernel(name);
      expect(k).toMatchObject({ format: "elf", paddr: rk.paddr, size: rk.size, entry: rk.entry });
      expectSameLoad(vm, ref);
    }
  });

  it("inspect names the compression, both sizes and what is inside", async () => {
    const info = await inspectFile(bytesFile("Image.zst", sh("zstd -q -c", IMG)));
    expect(info).toMatchObject({ format: "zstd", compression: "zstd", decompressed_size: IMG.length, contents: "arm64-image" });
    const lz = await inspectFile(bytesFile("Image.lz4", sh("lz4 -l -c - -", IMG)));
    expect(lz).toMatchObject({ format: "lz4", decompressed_size: IMG.length, size_from: "measured", contents: "arm64-image" });
  });

  it("as a module the file is placed verbatim (an initrd stays compressed)", async () => {
    const z = sh("zstd -q -c", codeLike(5000, 2));
    const vm = await vmWith({ "initrd.zst": z });
    const m = await vm.loadModule("initrd.zst", { at: RAM_BASE + 0x100_0000 });
    expect(m).toMatchObject({ format: "zstd", size: z.length });
    expect(eqBytes(vm.ram.read(RAM_BASE + 0x100_0000, z.length), z)).toBe(true);
  });

  it("compressed twice (a .gz inside a .zst) is refused", async () => {
    const vm = await vmWith({ k: sh("gzip -c | zstd -q -c", IMG) });
    await expectRefused(vm, () => vm.loadKernel("k", { at: RAM_BASE }), "UNSUPPORTED", "zstd");
  });

  it("corruption found while writing guest RAM rolls the load back (RAM and ledger unchanged)", async () => {
    // zstd declares Frame_Content_Size and lzop's blocks state their sizes, so planning decodes
    // only the head: the damage near the end is met by execute(), after guest RAM was written
    // (a dry run, which plans and checks but does not write, succeeds).
    const z = sh(`zstd -q -c -3 --stream-size=${IMG.length}`, IMG).slice();
    z[z.length - 300] ^= 0x5a;
    const lz = sh("lzop -c -1", IMG).slice();
    lz[lz.length - 300] ^= 0x5a;
    const vm = await vmWith({ "Image.zst": z, "Image.lzo": lz, other: codeLike(0x1000, 1) });
    await vm.loadModule("other", { at: RAM_BASE + 0x200_0000 });
    for (const name of ["Image.zst", "Image.lzo"]) {
      const dry = await vmWith({ [name]: name.endsWith("zst") ? z : lz });
      await dry.loadKernel(name, { at: RAM_BASE, dryRun: true });
      const before = vm.ram.read(RAM_BASE, 64 * MiB);
      const placed = vm.placed();
      const e = await vm.loadKernel(name, { at: RAM_BASE }).then(() => undefined, (x: unknown) => x);
      expect(e).toBeInstanceOf(GuestImageError);
      expect(["BAD_HEADER", "BAD_CHECKSUM", "TOO_LARGE", "TRUNCATED"]).toContain((e as GuestImageError).code);
      expect((e as GuestImageError).message).toMatch(/file offset 0x[0-9a-f]+/);
      expect(vm.placed()).toEqual(placed);
      expect(eqBytes(vm.ram.read(RAM_BASE, 64 * MiB), before)).toBe(true);
    }
  });

  it("a declared size larger than the RAM at the base is TOO_LARGE before anything is written; so is a measured one", async () => {
    const vm = await vmWith({ "Image.zst": sh("zstd -q -c", IMG), "Image.lz4": sh("lz4 -c - -", IMG) }, 2 * MiB);
    await expectRefused(vm, () => vm.loadKernel("Image.zst", { at: RAM_BASE + MiB }), "TOO_LARGE", "zstd");
    await expectRefused(vm, () => vm.loadKernel("Image.lz4", { at: RAM_BASE + MiB }), "TOO_LARGE", "lz4");
  });

  it("a truncated stream is refused, nothing written", async () => {
    const z = sh("zstd -q -c", IMG);
    const vm = await vmWith({ "Image.zst": z.subarray(0, z.length - 1000) });
    await expectRefused(vm, () => vm.loadKernel("Image.zst", { at: RAM_BASE }), "TRUNCATED", "zstd");
  });
});

describe("EFI zboot payloads of every compression_type", () => {
  it.each(KERNEL_COMPRESSORS)("$zboot: the payload (with size_append after it) loads as the Image inside", async ({ codec, zboot: type, make, unmake }) => {
    const payload = sh(make, IMG);
    expect(eqBytes(sh(unmake, payload), IMG)).toBe(true);
    const ref = await plainLoad(IMG, RAM_BASE + 0x1234);
    const vm = await vmWith({ "vmlinuz.efi": zboot(payload, type, sizeAppend(IMG.length)) });
    const k = await vm.loadKernel("vmlinuz.efi", { at: RAM_BASE + 0x1234 });
    expect(k).toMatchObject({ format: "arm64-image", paddr: ref.k.paddr, size: ref.k.size, entry: ref.k.entry });
    expect(k.arch).toMatchObject({ compression: codec, container: "efi-zboot", decompressed_size: IMG.length });
    expectSameLoad(vm, ref.vm);
    const info = await inspectFile(bytesFile("vmlinuz.efi", zboot(payload, type, sizeAppend(IMG.length))));
    expect(info).toMatchObject({ format: "efi-zboot", compression_type: type, compression: codec, decompressed_size: IMG.length, contents: "arm64-image" });
  });

  it("a size_append smaller than the payload decodes to: TOO_LARGE, rolled back", async () => {
    const payload = sh("lz4 -l -c - -", IMG);
    const vm = await vmWith({ z: zboot(payload, "lz4", sizeAppend(IMG.length - 0x1000)) });
    await expectRefused(vm, () => vm.loadKernel("z", { at: RAM_BASE }), "TOO_LARGE", "lz4");
  });
});

describe("uImage kernels with IH_COMP bzip2, lzma, lzo, lz4, zstd (mkimage -C)", () => {
  const load = 0x4008_0000;
  let made: Record<string, Uint8Array>;
  beforeAll(() => {
    made = {};
    for (const c of KERNEL_COMPRESSORS.filter((x) => x.uimage)) {
      const data = sh(c.make, IMG);
      made[c.uimage!] = sh(`f=$(mktemp) && cat > $f.in && mkimage -A arm64 -O linux -T kernel -C ${c.uimage} -a 0x${load.toString(16)} -e 0x${load.toString(16)} -n test -d $f.in $f >/dev/null && cat $f && rm -f $f $f.in`, data);
    }
  });

  it.each(KERNEL_COMPRESSORS.filter((x) => x.uimage))("$uimage: the data decompressed at ih_load equals $unmake of it", async ({ uimage, unmake }) => {
    const img = made[uimage!];
    const want = sh(unmake, img.subarray(64));
    const vm = await vmWith({ uImage: img });
    const k = await vm.loadKernel("uImage");
    expect(k).toMatchObject({ format: "uimage", paddr: load, size: want.length, entry: BigInt(load) });
    expect(k.arch).toMatchObject({ compression: uimage, ih_comp_name: uimage, compressed_size: img.length - 64, decompressed_size: want.length });
    expect(eqBytes(vm.ram.read(load, want.length), want)).toBe(true);
  });

  it("a wrong ih_dcrc (CRC-32 of the compressed data) is BAD_CHECKSUM, nothing written", async () => {
    const img = made.zstd.slice();
    img[img.length - 10] ^= 1;
    const vm = await vmWith({ uImage: img });
    await expectRefused(vm, () => vm.loadKernel("uImage"), "BAD_CHECKSUM", "ih_dcrc");
  });

  it("a RAMDISK uImage's compressed data stays as it is", async () => {
    const data = sh("zstd -q -c", codeLike(3000, 5));
    const img = sh(`f=$(mktemp) && cat > $f.in && mkimage -A arm64 -O linux -T ramdisk -C zstd -d $f.in $f >/dev/null && cat $f && rm -f $f $f.in`, data);
    const vm = await vmWith({ rd: img });
    const m = await vm.loadModule("rd", { at: 0x4200_0000 });
    expect(m.size).toBe(data.length);
    expect(eqBytes(vm.ram.read(0x4200_0000, data.length), data)).toBe(true);
  });
});
