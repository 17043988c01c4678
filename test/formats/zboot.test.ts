// Linux EFI zboot images: the 64-byte header written field by field from
// drivers/firmware/efi/libstub/zboot-header.S (little-endian), the payload a gzip member
// (test/helpers/gzip.ts) of an arm64 Image (Documentation/arch/arm64/booting.rst) padded to its
// image_size, as drivers/firmware/efi/libstub/Makefile.zboot builds it. The unwrapped Image must
// load exactly as the Image itself would.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { GuestImageError, inspectFile, vm_load_guest_kernel, vm_load_guest_module } from "../../src/node.js";
import { bytesFile } from "../../src/sources/source.js";
import { codeLike, eqBytes, gzipMember } from "../helpers/gzip.js";
import { expectRefused, INFLATERS, MiB, RAM_BASE, vmWith, withInflater } from "../helpers/vm.js";


/** An arm64 Image padded to image_size (Makefile.zboot: `truncate -s image_size`). */
function arm64Image(imageSize: number, textOffset = 0n): Uint8Array {
  const b = codeLike(imageSize, 19);
  b.fill(0, imageSize - 0x1000); // BSS
  const dv = new DataView(b.buffer);
  dv.setUint32(0x00, 0xfa405a4d, true); // code0: "MZ" + branch (EFI stub kernel)
  dv.setUint32(0x04, 0, true);
  dv.setBigUint64(0x08, textOffset, true); // text_offset
  dv.setBigUint64(0x10, BigInt(imageSize), true); // image_size
  dv.setBigUint64(0x18, 0xan, true); // flags
  for (let o = 0x20; o < 0x38; o++) b[o] = 0;
  dv.setUint32(0x38, 0x644d5241, true); // "ARM\x64"
  dv.setUint32(0x3c, 0x40, true); // res5: PE header offset
  return b;
}

interface ZbootSpec {
  payload: Uint8Array;
  payloadOffset?: number;
  /** Overrides payload_size. */
  payloadSize?: number;
  compressionType?: string | Uint8Array;
  linuxMagic?: number;
}

function zboot(s: ZbootSpec): Uint8Array {
  const off = s.payloadOffset ?? 0x1000;
  const b = new Uint8Array(off + s.payload.length + 0x200); // the stub's code and data follow
  const dv = new DataView(b.buffer);
  b.set([0x4d, 0x5a], 0); // "MZ"
  b.set([0x7a, 0x69, 0x6d, 0x67], 4); // "zimg"
  dv.setUint32(0x08, off, true); // payload_offset
  dv.setUint32(0x0c, s.payloadSize ?? s.payload.length, true); // payload_size
  // 0x10: 8 reserved bytes
  const ct = typeof s.compressionType === "object" ? s.compressionType : Uint8Array.from(`${s.compressionType ?? "gzip"}\0`, (c) => c.charCodeAt(0));
  b.set(ct.subarray(0, 32), 0x18); // compression_type, NUL-terminated
  dv.setUint32(0x38, s.linuxMagic ?? 0x818223cd, true); // LINUX_PE_MAGIC cd 23 82 81
  dv.setUint32(0x3c, 0x40, true); // PE header offset
  b.set([0x50, 0x45, 0, 0], 0x40); // "PE\0\0"
  b.set(s.payload, off);
  return b;
}

describe("EFI zboot detection and inspect", () => {
  it("MZ + zimg is a zboot image (before the arm64 Image check), and inspect shows its header", async () => {
    const info = await inspectFile(bytesFile("vmlinuz.efi", zboot({ payload: gzipMember(arm64Image(0x10000)) })));
    expect(info.format).toBe("efi-zboot");
    expect(info).toMatchObject({ payload_offset: 0x1000, compression_type: "gzip", pe_header_offset: 0x40 });
    expect(info.contents).toBe("arm64-image");
    expect(info.gzip).toMatchObject({ isize: 0x10000 });
  });

  it("MZ without zimg is not zboot", async () => {
    const b = zboot({ payload: new Uint8Array(16) });
    b[4] = 0x41;
    expect((await inspectFile(bytesFile("x", b))).format).not.toBe("efi-zboot");
  });
});

describe.each(INFLATERS)("EFI zboot kernels with the $name inflater", (inflater) => {
  withInflater(inflater);

  it("the payload is decompressed and loads exactly like the arm64 Image inside", async () => {
    // booting.rst with text_offset 0: the Image at a 2 MiB-aligned base, image_size reserved.
    const img = arm64Image(0x50000);
    const vm = await vmWith({ "vmlinuz.efi": zboot({ payload: gzipMember(img) }) });
    const k = await vm.loadKernel("vmlinuz.efi", { at: RAM_BASE + 0x1234 });
    expect(k).toMatchObject({ format: "arm64-image", paddr: 0x4020_0000, size: 0x50000, entry: 0x4020_0000n });
    expect(k.arch).toMatchObject({ format: "arm64-image", efi_stub: true, image_size: 0x50000n, compression: "gzip", container: "efi-zboot" });
    expect(eqBytes(vm.ram.read(0x4020_0000, img.length), img)).toBe(true);
    expect(vm.placed()).toEqual([{ name: "vmlinuz.efi", paddr: 0x4020_0000, size: 0x50000 }]);

    const plain = await vmWith({ Image: img });
    const p = await plain.loadKernel("Image", { at: RAM_BASE + 0x1234 });
    const { compression, container, ...arch } = k.arch as unknown as Record<string, unknown>;
    expect([compression, container]).toEqual(["gzip", "efi-zboot"]);
    expect(arch).toEqual(p.arch);
    expect(eqBytes(vm.ram.read(RAM_BASE, 64 * MiB), plain.ram.read(RAM_BASE, 64 * MiB))).toBe(true);
  });

  it("through the seL4 API", async () => {
    const vm = await vmWith({ "vmlinuz.efi": zboot({ payload: gzipMember(arm64Image(0x20000, 0x80000n)) }) });
    const g = await vm_load_guest_kernel(vm, "vmlinuz.efi", RAM_BASE, 0);
    expect(g.kernel_image).toEqual({ load_paddr: 0x4008_0000, alignment: 0, size: 0x20000 });
    expect(g.kernel_image_arch).toMatchObject({ format: "arm64-image", container: "efi-zboot" });
  });

  it("a corrupt payload is refused and the load rolled back", async () => {
    const gz = gzipMember(arm64Image(0x50000));
    const vm = await vmWith({ z: zboot({ payload: gzipMember(arm64Image(0x50000), { crc32: 0 }) }), y: zboot({ payload: gz.subarray(0, gz.length - 100) }) });
    await expectRefused(vm, () => vm.loadKernel("z", { at: RAM_BASE }), "BAD_CHECKSUM", "CRC32");
    const e = await vm.loadKernel("y", { at: RAM_BASE }).then(() => undefined, (x: unknown) => x);
    expect(e).toBeInstanceOf(GuestImageError);
    expect(vm.placed()).toEqual([]);
  });

  it("a payload that does not fit the RAM from the base: TOO_LARGE", async () => {
    const vm = await vmWith({ z: zboot({ payload: gzipMember(arm64Image(0x200000)) }) }, 2 * MiB);
    await expectRefused(vm, () => vm.loadKernel("z", { at: RAM_BASE + MiB }), "TOO_LARGE", "ISIZE");
  });
});

describe("EFI zboot header checks", () => {
  const payload = gzipMember(arm64Image(0x10000));

  // Makefile.zboot writes gzip, bzip2, lz4, lzma, lzo, xzkern and zstd22 (test/formats/compressed.test.ts)
  it.each(["zstd", "xz", "lz4hc", "none"])('compression_type "%s" (not a name Makefile.zboot writes): UNSUPPORTED naming it', async (ct) => {
    const vm = await vmWith({ z: zboot({ payload, compressionType: ct }) });
    const e = await expectRefused(vm, () => vm.loadKernel("z", { at: RAM_BASE }), "UNSUPPORTED", "compression_type");
    expect(e.message).toContain(`"${ct}"`);
  });

  it("compression_type without a NUL in its 32 bytes: BAD_HEADER", async () => {
    const vm = await vmWith({ z: zboot({ payload, compressionType: new Uint8Array(32).fill(0x67) }) });
    await expectRefused(vm, () => vm.loadKernel("z", { at: RAM_BASE }), "BAD_HEADER", "compression_type");
  });

  it("no Linux PE magic at 0x38: BAD_MAGIC", async () => {
    const vm = await vmWith({ z: zboot({ payload, linuxMagic: 0x644d5241 }) });
    await expectRefused(vm, () => vm.loadKernel("z", { at: RAM_BASE }), "BAD_MAGIC", "linux_magic");
  });

  it("payload past the end of the file: TRUNCATED", async () => {
    const vm = await vmWith({ z: zboot({ payload, payloadSize: payload.length + 0x1000 }) });
    await expectRefused(vm, () => vm.loadKernel("z", { at: RAM_BASE }), "TRUNCATED", "payload_size");
  });

  it("payload_offset inside the header: BAD_HEADER", async () => {
    const b = zboot({ payload });
    new DataView(b.buffer).setUint32(0x08, 0x20, true);
    const vm = await vmWith({ z: b });
    await expectRefused(vm, () => vm.loadKernel("z", { at: RAM_BASE }), "BAD_HEADER", "payload_offset");
  });

  it("a file shorter than the header: TRUNCATED", async () => {
    const vm = await vmWith({ z: zboot({ payload }).slice(0, 48) });
    await expectRefused(vm, () => vm.loadKernel("z", { at: RAM_BASE }), "TRUNCATED", "zimg");
  });

  it("as a module it is placed verbatim, like any file", async () => {
    const b = zboot({ payload });
    const vm = await vmWith({ z: b });
    const g = await vm_load_guest_module(vm, "z", 0x4200_0000, 0);
    expect(g.size).toBe(b.length);
    expect(eqBytes(vm.ram.read(0x4200_0000, b.length), b)).toBe(true);
  });
});

describe("EFI zboot through the CLI", () => {
  const ROOT = fileURLToPath(new URL("../..", import.meta.url));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "guest-image-zboot-"));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("load --json reports the arm64 Image's placement, compression and container", () => {
    const f = path.join(dir, "vmlinuz.efi");
    fs.writeFileSync(f, zboot({ payload: gzipMember(arm64Image(0x30000)) }));
    const r = spawnSync(process.execPath, ["dist/cli/main.js", "load", "--ram", "0x40000000:64M", "--kernel", f, "--kernel-addr", "0x40000000", "--json"], { cwd: ROOT, encoding: "utf8" });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.kernel).toMatchObject({ format: "arm64-image", load_paddr: "0x40000000", entry: "0x40000000", size: "0x30000" });
    expect(j.kernel.arch).toMatchObject({ compression: "gzip", container: "efi-zboot" });
  });
});
