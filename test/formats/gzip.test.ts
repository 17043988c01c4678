// gzip-compressed kernels (Image.gz, vmlinux.gz) and modules (initrd.gz). Members are written
// field by field from RFC 1952 (test/helpers/gzip.ts; deflate data and CRC-32 from node:zlib);
// the payloads are an arm64 Image built from Documentation/arch/arm64/booting.rst and ELFs from
// the gABI layout. Expected placements come from those specs: an Image.gz loads where the Image
// inside it would. Every test runs with both inflaters (node:zlib and DecompressionStream).
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import zlib from "node:zlib";
import { afterAll, describe, expect, it } from "vitest";
import { nodeInflater } from "../../src/compress/inflate-node.js";
import { GuestImageError, inspectFile, vm_load_guest_kernel, vm_load_guest_module } from "../../src/node.js";
import { bytesFile } from "../../src/sources/source.js";
import { writeElf } from "../helpers/elf-writer.js";
import { codeLike, eqBytes, gzipMember } from "../helpers/gzip.js";
import { expectRefused, INFLATERS, MiB, RAM_BASE, vmWith, withInflater } from "../helpers/vm.js";


/** An arm64 Image (booting.rst "Call the kernel image": 64-byte header, little-endian). */
function arm64Image(size: number, textOffset: bigint, imageSize: bigint): Uint8Array {
  const b = codeLike(size, 11);
  const dv = new DataView(b.buffer);
  dv.setUint32(0x00, 0x14000010, true); // code0: b past the header
  dv.setUint32(0x04, 0, true); // code1
  dv.setBigUint64(0x08, textOffset, true); // text_offset
  dv.setBigUint64(0x10, imageSize, true); // image_size
  dv.setBigUint64(0x18, 0xan, true); // flags: LE, 4K pages, anywhere
  for (let o = 0x20; o < 0x38; o++) b[o] = 0; // res2..res4
  dv.setUint32(0x38, 0x644d5241, true); // magic "ARM\x64"
  dv.setUint32(0x3c, 0, true); // res5
  return b;
}

/** An aarch64 EXEC ELF with two PT_LOADs at 0x40080000 and 0x40100000, plus a tail the plan never reads. */
function elfKernel(): { bytes: Uint8Array; text: Uint8Array; data: Uint8Array } {
  const text = codeLike(0x3000, 5);
  const data = codeLike(0x1800, 9);
  const bytes = writeElf({
    class: 64, machine: 183, entry: 0x4008_0040n,
    segments: [
      { vaddr: 0x4008_0000n, paddr: 0x4008_0000n, data: text, flags: 5 },
      { vaddr: 0x4010_0000n, paddr: 0x4010_0000n, data, memsz: 0x2000n, flags: 6 },
    ],
    trailer: codeLike(0x20000, 13), // symbols, debug info… (not loaded, but part of the gzip data)
  });
  return { bytes, text, data };
}

describe("gzip detection and inspect", () => {
  it("a gzip member is detected as gzip, and inspect names what is inside", async () => {
    const img = arm64Image(0x3000, 0x80000n, 0x4000n);
    const info = await inspectFile(bytesFile("Image.gz", gzipMember(img, { fname: "Image", mtime: 1234 })));
    expect(info.format).toBe("gzip");
    expect(info.gzip).toMatchObject({ flg: 0x08, mtime: 1234, os: 3, fname: "Image", crc32: zlib.crc32(img), isize: 0x3000 });
    expect(info.contents).toBe("arm64-image");
  });

  it("1f 8b with a method other than deflate is not gzip (raw)", async () => {
    const b = gzipMember(codeLike(100), { cm: 7 });
    expect((await inspectFile(bytesFile("x", b))).format).toBe("raw");
  });
});

describe.each(INFLATERS)("gzip kernels with the $name inflater", (inflater) => {
  withInflater(inflater);

  it("Image.gz loads exactly like the arm64 Image inside it", async () => {
    // booting.rst: base = B rounded up to 2 MiB; the Image at base + text_offset; image_size
    // bytes from there reserved (BSS beyond the file zeroed).
    const img = arm64Image(0x30000, 0x80000n, 0x40000n);
    const vm = await vmWith({ "Image.gz": gzipMember(img, { fname: "Image" }) });
    const k = await vm.loadKernel("Image.gz", { at: RAM_BASE + 1 });
    expect(k.format).toBe("arm64-image");
    expect(k.paddr).toBe(0x4028_0000);
    expect(k.size).toBe(0x40000);
    expect(k.entry).toBe(0x4028_0000n);
    expect(k.arch).toMatchObject({ format: "arm64-image", base: 0x4020_0000n, text_offset: 0x80000n, image_size: 0x40000n, compression: "gzip" });
    expect(eqBytes(vm.ram.read(0x4028_0000, img.length), img)).toBe(true);
    expect(vm.ram.read(0x4028_0000 + img.length, 0x10000).every((b) => b === 0)).toBe(true);
    expect(vm.placed()).toEqual([{ name: "Image.gz", paddr: 0x4028_0000, size: 0x40000 }]);

    const plain = await vmWith({ Image: img });
    const p = await plain.loadKernel("Image", { at: RAM_BASE + 1 });
    const { compression, ...arch } = k.arch as unknown as Record<string, unknown>;
    expect(compression).toBe("gzip");
    expect(arch).toEqual(p.arch);
    expect({ paddr: k.paddr, size: k.size, entry: k.entry }).toEqual({ paddr: p.paddr, size: p.size, entry: p.entry });
    expect(eqBytes(vm.ram.read(RAM_BASE, 64 * MiB), plain.ram.read(RAM_BASE, 64 * MiB))).toBe(true);
  });

  it("through the seL4 API", async () => {
    const img = arm64Image(0x20000, 0x80000n, 0x20000n);
    const vm = await vmWith({ "Image.gz": gzipMember(img) });
    const g = await vm_load_guest_kernel(vm, "Image.gz", RAM_BASE, 0x1000);
    expect(g.kernel_image).toEqual({ load_paddr: 0x4008_0000, alignment: 0x1000, size: 0x20000 });
    expect(g.kernel_image_arch).toMatchObject({ format: "arm64-image", entry: 0x4008_0000n, compression: "gzip" });
  });

  it("an ELF.gz places its segments at p_paddr, and the part no segment covers is still verified", async () => {
    const { bytes, text, data } = elfKernel();
    const vm = await vmWith({ "vmlinux.gz": gzipMember(bytes) });
    const k = await vm.loadKernel("vmlinux.gz");
    expect(k.format).toBe("elf");
    expect(k.entry).toBe(0x4008_0040n);
    expect(k.arch).toMatchObject({ format: "elf", compression: "gzip" });
    expect(eqBytes(vm.ram.read(0x4008_0000, text.length), text)).toBe(true);
    expect(eqBytes(vm.ram.read(0x4010_0000, data.length), data)).toBe(true);
    expect(vm.ram.read(0x4010_0000 + data.length, 0x800).every((b) => b === 0)).toBe(true);

    // A wrong CRC32 is caught although the bad bytes' position (the tail) is never loaded.
    const bad = await vmWith({ "vmlinux.gz": gzipMember(bytes, { crc32: zlib.crc32(bytes) ^ 0x100 }) });
    await expectRefused(bad, () => bad.loadKernel("vmlinux.gz"), "BAD_CHECKSUM", "CRC32");
  });

  it("a raw payload in gzip goes to B like a raw image", async () => {
    const raw = codeLike(0x5000, 3);
    const vm = await vmWith({ "fw.gz": gzipMember(raw) });
    const k = await vm.loadKernel("fw.gz", { at: 0x4100_0000 });
    expect(k).toMatchObject({ format: "raw", paddr: 0x4100_0000, size: 0x5000, entry: 0x4100_0000n });
    expect(eqBytes(vm.ram.read(0x4100_0000, raw.length), raw)).toBe(true);
  });

  it("a load address outside RAM: OUT_OF_RAM", async () => {
    const vm = await vmWith({ "fw.gz": gzipMember(codeLike(0x100)) });
    await expectRefused(vm, () => vm.loadKernel("fw.gz", { at: 0x1000 }), "OUT_OF_RAM");
  });

  it("a decompression bomb (256 MiB of zeros) into 16 MiB of RAM: TOO_LARGE quickly, memory bounded", async () => {
    const bomb = new Uint8Array(zlib.gzipSync(new Uint8Array(256 * MiB)));
    expect(bomb.length).toBeLessThan(MiB);
    // ISIZE honest: refused from the trailer, before decompressing; ISIZE lying (1 MiB): refused
    // as soon as the output passes 1 MiB, after which the load is rolled back.
    const liar = bomb.slice();
    new DataView(liar.buffer).setUint32(liar.length - 4, MiB, true);
    const vm = await vmWith({ bomb, liar }, 16 * MiB);
    const mem0 = process.memoryUsage();
    const t0 = performance.now();
    const e = await expectRefused(vm, () => vm.loadKernel("bomb", { at: RAM_BASE }), "TOO_LARGE", "ISIZE");
    expect(e.message).toContain("0x10000000");
    await expectRefused(vm, () => vm.loadKernel("liar", { at: RAM_BASE }), "TOO_LARGE", "ISIZE");
    expect(performance.now() - t0).toBeLessThan(5000);
    const mem1 = process.memoryUsage();
    expect(mem1.arrayBuffers - mem0.arrayBuffers).toBeLessThan(64 * MiB);
    expect(mem1.rss - mem0.rss).toBeLessThan(128 * MiB);
  });

  it("corrupt deflate data in the middle of the payload: BAD_HEADER, load rolled back", async () => {
    const img = codeLike(2 * MiB, 21);
    const gz = gzipMember(img);
    for (let i = gz.length >> 1; i < (gz.length >> 1) + 64; i++) gz[i] ^= 0xa5;
    const vm = await vmWith({ "fw.gz": gz });
    const e = await vm.loadKernel("fw.gz", { at: RAM_BASE }).then(() => undefined, (x: unknown) => x);
    // Flipped bits usually break the deflate coding (BAD_HEADER), may turn into a block that
    // needs more data than there is (TRUNCATED), or decode to other bytes that the CRC32 check
    // refuses (BAD_CHECKSUM).
    expect(["BAD_HEADER", "TRUNCATED", "BAD_CHECKSUM"]).toContain((e as GuestImageError).code);
    expect(vm.placed()).toEqual([]);
    expect(vm.ram.read(RAM_BASE, 4 * MiB).every((b) => b === 0xee)).toBe(true);
  });

  it("ISIZE larger than the data: TRUNCATED, rolled back", async () => {
    const img = codeLike(MiB, 4);
    const vm = await vmWith({ "fw.gz": gzipMember(img, { isize: img.length + 4096 }) });
    await expectRefused(vm, () => vm.loadKernel("fw.gz", { at: RAM_BASE }), "TRUNCATED", "ISIZE");
  });

  it("ISIZE smaller than the data: TOO_LARGE, rolled back", async () => {
    const img = codeLike(MiB, 4);
    const vm = await vmWith({ "fw.gz": gzipMember(img, { isize: img.length - 4096 }) });
    await expectRefused(vm, () => vm.loadKernel("fw.gz", { at: RAM_BASE }), "TOO_LARGE", "ISIZE");
  });

  it("concatenated members are refused", async () => {
    const a = codeLike(200_000, 1);
    const b = codeLike(200_000, 2);
    const vm = await vmWith({ "two.gz": new Uint8Array([...gzipMember(a), ...gzipMember(b)]) });
    await expectRefused(vm, () => vm.loadKernel("two.gz", { at: RAM_BASE }), inflater === nodeInflater ? "UNSUPPORTED" : "BAD_CHECKSUM");
  });

  it("gzip inside gzip is refused", async () => {
    const vm = await vmWith({ "x.gz.gz": gzipMember(gzipMember(codeLike(1000))) });
    await expectRefused(vm, () => vm.loadKernel("x.gz.gz", { at: RAM_BASE }), "UNSUPPORTED", "ID1");
  });

  it("a bad header field is refused before anything is decompressed", async () => {
    const vm = await vmWith({ "a.gz": gzipMember(codeLike(1000), { extraFlags: 0x40 }), "b.gz": gzipMember(codeLike(1000), { fhcrc: true, hcrc: 1 }) });
    await expectRefused(vm, () => vm.loadKernel("a.gz", { at: RAM_BASE }), "BAD_HEADER", "FLG");
    await expectRefused(vm, () => vm.loadKernel("b.gz", { at: RAM_BASE }), "BAD_CHECKSUM", "FHCRC");
  });
});

describe("gzip modules", () => {
  it("an initrd.gz is placed verbatim (the kernel decompresses it), through both APIs", async () => {
    const gz = gzipMember(codeLike(50_000, 8), { fname: "rootfs.cpio" });
    const vm = await vmWith({ "initrd.gz": gz, "initrd2.gz": gz });
    const m = await vm.loadModule("initrd.gz", { at: 0x4200_0000, align: 0x1000 });
    expect(m).toEqual({ name: "initrd.gz", format: "gzip", paddr: 0x4200_0000, alignment: 0x1000, size: gz.length });
    expect(eqBytes(vm.ram.read(0x4200_0000, gz.length), gz)).toBe(true);
    const g = await vm_load_guest_module(vm, "initrd2.gz", 0x4300_0001, 0x1000);
    expect(g).toEqual({ load_paddr: 0x4300_1000, alignment: 0x1000, size: gz.length });
  });

  it("a corrupt gzip module is still placed verbatim (the kernel is the one to read it)", async () => {
    const vm = await vmWith({ "x.gz": gzipMember(codeLike(100), { crc32: 1 }) });
    expect((await vm.loadModule("x.gz", { at: 0x4200_0000 })).format).toBe("gzip");
  });
});

describe("gzip through the CLI", () => {
  const ROOT = fileURLToPath(new URL("../..", import.meta.url));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "guest-image-gzip-"));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const cli = (...args: string[]) => spawnSync(process.execPath, ["dist/cli/main.js", ...args], { cwd: ROOT, encoding: "utf8" });

  it("load --json: an Image.gz reports the Image's format and placement, and compression gzip", () => {
    const k = path.join(dir, "Image.gz");
    const m = path.join(dir, "initrd.gz");
    fs.writeFileSync(k, gzipMember(arm64Image(0x8000, 0x80000n, 0x10000n)));
    fs.writeFileSync(m, gzipMember(codeLike(3000)));
    const r = cli("load", "--ram", "0x40000000:64M", "--kernel", k, "--kernel-addr", "0x40000001", "--module", `${m}@0x42000000`, "--json");
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.kernel).toMatchObject({ format: "arm64-image", load_paddr: "0x40280000", entry: "0x40280000", size: "0x10000" });
    expect(j.kernel.arch).toMatchObject({ format: "arm64-image", compression: "gzip" });
    expect(JSON.stringify(j)).toContain('"gzip"');
  });

  it("a bomb fails with TOO_LARGE and one line on stderr", () => {
    const b = path.join(dir, "bomb.gz");
    fs.writeFileSync(b, zlib.gzipSync(new Uint8Array(64 * MiB)));
    const r = cli("load", "--ram", "0x40000000:16M", "--kernel", b, "--kernel-addr", "0x40000000", "--json");
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("TOO_LARGE");
    expect(JSON.parse(r.stdout).error.code).toBe("TOO_LARGE");
  });

  it("inspect --json shows the gzip header and what is inside", () => {
    const k = path.join(dir, "Image2.gz");
    fs.writeFileSync(k, gzipMember(arm64Image(0x4000, 0x80000n, 0x4000n), { fname: "Image" }));
    const r = cli("inspect", k, "--json");
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.format).toBe("gzip");
    expect(j.contents).toBe("arm64-image");
    expect(j.gzip.fname).toBe("Image");
  });
});
