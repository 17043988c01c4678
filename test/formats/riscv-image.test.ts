// RISC-V Image: headers built field by field from Documentation/arch/riscv/boot-image-header.rst
// (64 bytes, little-endian; magic2 "RSC\x05" at 0x38, where arm64 keeps its magic). Placement as
// for arm64: a 2 MiB-aligned base (the RV64 PMD size, Documentation/arch/riscv/boot.rst) plus
// text_offset; image_size is mandatory. Expected values come from those rules.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { createVm, fromMap, GuestImageError, inspectFile, vm_load_guest_kernel } from "../../src/node.js";
import type { RiscvImageArch } from "../../src/formats/arm64-image.js";
import { bytesFile } from "../../src/sources/source.js";
import { expectRefused, vmWith as vmWithFiles } from "../helpers/vm.js";

const MiB = 0x10_0000;
const RAM_BASE = 0x8000_0000; // QEMU riscv virt DRAM base

interface HeaderFields {
  size?: number;
  code0?: number;
  text_offset?: bigint;
  image_size?: bigint;
  flags?: bigint;
  version?: number;
  magic?: bigint;
  magic2?: number;
}

function riscvImage(f: HeaderFields = {}): Uint8Array {
  const size = f.size ?? 0x1000;
  const b = new Uint8Array(size);
  for (let i = 64; i < size; i++) b[i] = (i * 13 + 1) & 0xff;
  const dv = new DataView(b.buffer);
  dv.setUint32(0x00, f.code0 ?? 0x0400006f, true); // code0: j +0x40
  dv.setUint32(0x04, 0, true); // code1
  dv.setBigUint64(0x08, f.text_offset ?? 0x20_0000n, true); // text_offset (RV64 head.S: 2 MiB)
  dv.setBigUint64(0x10, f.image_size ?? BigInt(size), true); // image_size
  dv.setBigUint64(0x18, f.flags ?? 0n, true); // flags: bit 0 = BE
  dv.setUint32(0x20, f.version ?? 0x0000_0002, true); // version 0.2 (major 16-31, minor 0-15)
  dv.setUint32(0x24, 0, true); // res1
  dv.setBigUint64(0x28, 0n, true); // res2
  dv.setBigUint64(0x30, f.magic ?? 0x5643534952n, true); // magic "RISCV\0\0\0" (deprecated)
  dv.setUint32(0x38, f.magic2 ?? 0x05435352, true); // magic2 "RSC\x05"
  dv.setUint32(0x3c, 0, true); // res3
  return b;
}

const vmWith = (bytes: Uint8Array, ramSize = 64 * MiB, ramBase = RAM_BASE) => vmWithFiles({ Image: bytes, initrd: new Uint8Array(0x100).fill(0x55) }, ramSize, ramBase);

const archOf = (a: unknown) => a as RiscvImageArch;
const eq = (a: Uint8Array, b: Uint8Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));


describe("RISC-V Image detection", () => {
  it("recognises magic2 at 0x38", async () => {
    const info = await inspectFile(bytesFile("Image", riscvImage()));
    expect(info.format).toBe("riscv-image");
    expect(info.machine).toBe("riscv");
  });

  // boot-image-header.rst: "The "magic" field is deprecated as of version 0.2 … The "magic2"
  // field replaces it": a version 0.1 header has "RISCV\0\0\0" at 0x30 and 0x38 reserved (0).
  it("a version 0.1 header (only the deprecated magic at 0x30, no magic2) is a RISC-V Image", async () => {
    const info = await inspectFile(bytesFile("Image", riscvImage({ magic2: 0, version: 0x0000_0001 })));
    expect(info).toMatchObject({ format: "riscv-image", machine: "riscv", version: "0.1", magic_riscv: true });
  });

  it("neither magic → raw; a near miss of the v0.1 magic (\"RISCV\" then a non-NUL) → raw", async () => {
    expect((await inspectFile(bytesFile("Image", riscvImage({ magic2: 0, magic: 0n })))).format).toBe("raw");
    expect((await inspectFile(bytesFile("Image", riscvImage({ magic2: 0, magic: 0x5643534952n | (0x41n << 40n) })))).format).toBe("raw");
  });

  it("a 63-byte file with magic2 is raw", async () => {
    expect((await inspectFile(bytesFile("short", riscvImage({ size: 64 }).slice(0, 63))))).toMatchObject({ format: "raw" });
  });
});

describe("RISC-V Image placement", () => {
  it("no address: RAM base + text_offset 0x200000 = 0x80200000 (where QEMU virt puts it too)", async () => {
    const bytes = riscvImage({ size: 0x2000, image_size: 0x8000n });
    const vm = await vmWith(bytes);
    const k = await vm.loadKernel("Image");
    expect(k.format).toBe("riscv-image");
    expect(k.paddr).toBe(0x8020_0000);
    expect(k.entry).toBe(0x8020_0000n);
    expect(k.size).toBe(0x8000);
    expect(eq(vm.ram.read(0x8020_0000, 0x2000), bytes)).toBe(true);
    expect(vm.ram.read(0x8020_2000, 0x6000).every((x) => x === 0)).toBe(true);
    expect(vm.ram.read(0x8020_8000, 16).every((x) => x === 0xee)).toBe(true);
  });

  it("version 0.1 header: placed at the 2 MiB base + text_offset, image_size reserved and its tail zeroed", async () => {
    const bytes = riscvImage({ size: 0x2000, image_size: 0x8000n, magic2: 0, version: 0x0000_0001 });
    const vm = await vmWith(bytes);
    const k = await vm.loadKernel("Image");
    expect(k).toMatchObject({ format: "riscv-image", paddr: 0x8020_0000, entry: 0x8020_0000n, size: 0x8000 });
    expect(archOf(k.arch).version).toBe("0.1");
    expect(vm.placed()).toEqual([{ name: "Image", paddr: 0x8020_0000, size: 0x8000 }]);
    expect(eq(vm.ram.read(0x8020_0000, 0x2000), bytes)).toBe(true);
    expect(vm.ram.read(0x8020_2000, 0x6000).every((x) => x === 0)).toBe(true);
    // The reservation is real: a module inside image_size overlaps.
    await expectRefused(vm, () => vm.loadModule("initrd", { at: 0x8020_7000 }), "OVERLAP");
  });

  it("B = 0x80000001 → base 0x80200000, image at 0x80400000", async () => {
    const vm = await vmWith(riscvImage());
    const k = await vm.loadKernel("Image", { at: 0x8000_0001 });
    expect(k.paddr).toBe(0x8040_0000);
    expect(archOf(k.arch).base).toBe(0x8020_0000n);
  });

  it("RV32 (text_offset 0x400000): asking for a 4 MiB alignment puts the base on a 4 MiB boundary", async () => {
    const vm = await vmWith(riscvImage({ text_offset: 0x40_0000n }), 64 * MiB);
    const k = await vm.loadKernel("Image", { at: 0x8020_0000, align: 0x40_0000 });
    expect(archOf(k.arch).base).toBe(0x8040_0000n);
    expect(k.paddr).toBe(0x8080_0000);
  });

  it("image_size > file size: the tail is reserved; a module there overlaps", async () => {
    const vm = await vmWith(riscvImage({ size: 0x1000, image_size: 0x4_0000n }));
    await vm.loadKernel("Image");
    const before = vm.ram.read(RAM_BASE, 64 * MiB).slice();
    const e = await vm.loadModule("initrd", { at: 0x8020_0000 + 0x3_f000 }).catch((x: unknown) => x);
    expect((e as GuestImageError).code).toBe("OVERLAP");
    expect(vm.placed()).toEqual([{ name: "Image", paddr: 0x8020_0000, size: 0x4_0000 }]);
    expect(eq(vm.ram.read(RAM_BASE, 64 * MiB), before)).toBe(true);
  });

  it("seL4 API: load_address 0x80000000, alignment 0x200000", async () => {
    const vm = await vmWith(riscvImage({ image_size: 0x1_0000n }));
    const g = await vm_load_guest_kernel(vm, "Image", RAM_BASE, 0x20_0000);
    expect(g.kernel_image).toEqual({ load_paddr: 0x8020_0000, alignment: 0x20_0000, size: 0x1_0000 });
    const a = g.kernel_image_arch as unknown as RiscvImageArch;
    expect(a).toMatchObject({ format: "riscv-image", entry: 0x8020_0000n, base: 0x8000_0000n, text_offset: 0x20_0000n, image_size: 0x1_0000n, version: "0.2", endian: "little", efi_stub: false });
  });
});

describe("RISC-V Image header checks", () => {
  it("image_size 0 → BAD_HEADER (image_size is mandatory)", async () => {
    const vm = await vmWith(riscvImage({ image_size: 0n }));
    await expectRefused(vm, () => vm.loadKernel("Image"), "BAD_HEADER", "image_size");
  });

  it("flags bit 0 (big-endian) → UNSUPPORTED", async () => {
    const vm = await vmWith(riscvImage({ flags: 1n }));
    const e = await expectRefused(vm, () => vm.loadKernel("Image", { at: RAM_BASE }), "UNSUPPORTED", "flags");
    expect(e.message).toContain("big-endian");
  });

  it("big-endian through the seL4 API", async () => {
    const vm = await vmWith(riscvImage({ flags: 1n }));
    await expectRefused(vm, () => vm_load_guest_kernel(vm, "Image", RAM_BASE, 0), "UNSUPPORTED", "flags");
  });

  it("text_offset + image_size past 2^64 → BAD_HEADER", async () => {
    const vm = await vmWith(riscvImage({ text_offset: (1n << 64n) - 0x100n, image_size: 0x1000n }));
    await expectRefused(vm, () => vm.loadKernel("Image"), "BAD_HEADER", "text_offset");
  });

  it("text_offset past 2^53 → BAD_ADDRESS", async () => {
    const vm = await vmWith(riscvImage({ text_offset: 1n << 62n }));
    await expectRefused(vm, () => vm.loadKernel("Image"), "BAD_ADDRESS", "text_offset");
  });
});

describe("RISC-V Image arch and inspect", () => {
  it("version major.minor and EFI stub (\"MZ\" code0)", async () => {
    const vm = await vmWith(riscvImage({ version: 0x0001_0003, code0: 0xa0015a4d }));
    const a = archOf((await vm.loadKernel("Image")).arch);
    expect(a.version).toBe("1.3");
    expect(a.efi_stub).toBe(true);
  });

  it("inspect reports the header fields", async () => {
    const info = await inspectFile(bytesFile("Image", riscvImage({ image_size: 0x123_4000n, size: 0x100 })));
    expect(info).toMatchObject({
      format: "riscv-image", machine: "riscv", endian: "little", text_offset: 0x20_0000n, image_size: 0x123_4000n,
      flags: 0n, version: "0.2", magic_riscv: true, efi_stub: false,
    });
  });
});

describe("RISC-V Image through the CLI", () => {
  const ROOT = fileURLToPath(new URL("../..", import.meta.url));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "guest-image-riscv-"));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("load --json with no address: RAM base + text_offset", () => {
    const f = path.join(dir, "Image");
    fs.writeFileSync(f, riscvImage({ size: 0x2000, image_size: 0x3000n }));
    const r = spawnSync(process.execPath, ["dist/cli/main.js", "load", "--ram", "0x80000000:16M", "--kernel", f, "--json"], { cwd: ROOT, encoding: "utf8" });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.kernel).toMatchObject({ format: "riscv-image", load_paddr: "0x80200000", entry: "0x80200000", size: "0x3000" });
    expect(j.kernel.arch).toMatchObject({ format: "riscv-image", version: "0.2", text_offset: "0x200000" });
  });
});
