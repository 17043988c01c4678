// arm64 Image: headers built field by field from Documentation/arch/arm64/booting.rst ("Call the
// kernel image": the 64-byte header, all fields little-endian), expected placements computed from
// the protocol's rule — the Image sits text_offset bytes above a 2 MiB-aligned base and
// image_size bytes from its start must be free — never from running the loader.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { createVm, fromMap, GuestImageError, inspectFile, vm_load_guest_kernel } from "../../src/node.js";
import type { Arm64ImageArch } from "../../src/formats/arm64-image.js";
import { bytesFile } from "../../src/sources/source.js";
import { expectRefused, vmWith as vmWithFiles } from "../helpers/vm.js";

const MiB = 0x10_0000;
const RAM_BASE = 0x4000_0000;

interface HeaderFields {
  /** Total file size (≥ 64). */
  size?: number;
  code0?: number;
  text_offset?: bigint;
  image_size?: bigint;
  flags?: bigint;
  magic?: number;
}

/** An arm64 Image: the booting.rst header, then a recognisable byte pattern. */
function arm64Image(f: HeaderFields = {}): Uint8Array {
  const size = f.size ?? 0x1000;
  const b = new Uint8Array(size);
  for (let i = 64; i < size; i++) b[i] = (i * 7 + 3) & 0xff;
  const dv = new DataView(b.buffer);
  dv.setUint32(0x00, f.code0 ?? 0x14000010, true); // code0: "b" to past the header
  dv.setUint32(0x04, 0, true); // code1
  dv.setBigUint64(0x08, f.text_offset ?? 0x80000n, true); // text_offset
  dv.setBigUint64(0x10, f.image_size ?? BigInt(size), true); // image_size
  dv.setBigUint64(0x18, f.flags ?? 0xan, true); // flags: LE, 4K pages, placement anywhere
  // 0x20..0x38: res2, res3, res4 = 0
  dv.setUint32(0x38, f.magic ?? 0x644d5241, true); // magic "ARM\x64"
  dv.setUint32(0x3c, 0, true); // res5
  return b;
}

const vmWith = (bytes: Uint8Array, ramSize = 64 * MiB, ramBase = RAM_BASE) => vmWithFiles({ Image: bytes, other: new Uint8Array(0x100).fill(0x77) }, ramSize, ramBase);

const archOf = (a: unknown) => a as Arm64ImageArch;
const eq = (a: Uint8Array, b: Uint8Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));


describe("arm64 Image detection", () => {
  it("recognises the magic at 0x38", async () => {
    const info = await inspectFile(bytesFile("Image", arm64Image()));
    expect(info.format).toBe("arm64-image");
    expect(info.machine).toBe("aarch64");
  });

  it("a 63-byte file with the magic at 0x38 is not an Image (the header is 64 bytes): raw", async () => {
    const b = arm64Image({ size: 64 }).slice(0, 63);
    expect(new DataView(b.buffer).getUint32(0x38, true)).toBe(0x644d5241);
    expect((await inspectFile(bytesFile("short", b))).format).toBe("raw");
    const vm = await vmWith(b);
    const k = await vm.loadKernel("Image", { at: RAM_BASE });
    expect(k.format).toBe("raw");
  });

  it("without the magic the same bytes are raw", async () => {
    expect((await inspectFile(bytesFile("x", arm64Image({ magic: 0x644d5240 })))).format).toBe("raw");
  });
});

describe("arm64 Image placement: base = B rounded up to 2 MiB, image at base + text_offset", () => {
  it("B = 0x4000_0001, text_offset 0x80000 → 0x4020_0000 + 0x80000", async () => {
    const bytes = arm64Image({ text_offset: 0x80000n, image_size: 0x2000n, size: 0x2000 });
    const vm = await vmWith(bytes);
    const k = await vm.loadKernel("Image", { at: 0x4000_0001 });
    expect(k.format).toBe("arm64-image");
    expect(k.paddr).toBe(0x4028_0000);
    expect(k.entry).toBe(0x4028_0000n);
    expect(k.size).toBe(0x2000);
    const a = archOf(k.arch);
    expect(a.base).toBe(0x4020_0000n);
    expect(a.entry).toBe(0x4028_0000n);
    expect(a.text_offset).toBe(0x80000n);
    expect(vm.placed()).toEqual([{ name: "Image", paddr: 0x4028_0000, size: 0x2000 }]);
    expect(eq(vm.ram.read(0x4028_0000, bytes.length), bytes)).toBe(true);
    // Bytes just before and after are untouched.
    expect(vm.ram.read(0x4027_fff0, 16).every((x) => x === 0xee)).toBe(true);
    expect(vm.ram.read(0x4028_2000, 16).every((x) => x === 0xee)).toBe(true);
  });

  it("a B already on a 2 MiB boundary is kept", async () => {
    const vm = await vmWith(arm64Image({ text_offset: 0x80000n }));
    expect((await vm.loadKernel("Image", { at: 0x4060_0000 })).paddr).toBe(0x4068_0000);
  });

  it("no address: B is the lowest RAM base (booting.rst: text_offset from the base of RAM)", async () => {
    const vm = await createVm({
      ram: [{ base: 0x8000_0000, size: 4 * MiB }, { base: RAM_BASE, size: 4 * MiB }],
      files: fromMap({ Image: arm64Image({ text_offset: 0x80000n }) }),
    });
    const k = await vm.loadKernel("Image");
    expect(k.paddr).toBe(RAM_BASE + 0x80000);
    expect(archOf(k.arch).base).toBe(BigInt(RAM_BASE));
  });

  it("no address, RAM base not 2 MiB aligned: rounded up", async () => {
    const vm = await vmWith(arm64Image({ text_offset: 0x1000n }), 8 * MiB, 0x4010_0000);
    expect((await vm.loadKernel("Image")).paddr).toBe(0x4020_1000);
  });

  it("a larger alignment asked for raises the base's alignment too", async () => {
    const vm = await vmWith(arm64Image({ text_offset: 0x80000n }), 16 * MiB, 0x4020_0000);
    // B = 0x4020_0000 rounded up to 4 MiB = 0x4040_0000 (already 2 MiB aligned).
    expect((await vm.loadKernel("Image", { at: 0x4020_0000, align: 0x40_0000 })).paddr).toBe(0x4048_0000);
    const vm2 = await vmWith(arm64Image({ text_offset: 0x80000n }), 16 * MiB, 0x4020_0000);
    expect((await vm2.loadKernel("Image", { align: 0x40_0000 })).paddr).toBe(0x4048_0000);
  });

  it("text_offset ≥ 2 MiB is accepted (booting.rst sets no bound)", async () => {
    const vm = await vmWith(arm64Image({ text_offset: 0x30_0000n }));
    expect((await vm.loadKernel("Image", { at: RAM_BASE })).paddr).toBe(RAM_BASE + 0x30_0000);
  });
});

describe("arm64 Image size: reserve max(file size, image_size)", () => {
  it("image_size > file size: reserves image_size, zero-fills the tail, a module in the tail overlaps", async () => {
    const bytes = arm64Image({ size: 0x3000, text_offset: 0x80000n, image_size: 0x10_0000n });
    const vm = await vmWith(bytes);
    const k = await vm.loadKernel("Image", { at: RAM_BASE });
    const load = RAM_BASE + 0x80000;
    expect(k.paddr).toBe(load);
    expect(k.size).toBe(0x10_0000);
    expect(vm.placed()).toEqual([{ name: "Image", paddr: load, size: 0x10_0000 }]);
    expect(eq(vm.ram.read(load, 0x3000), bytes)).toBe(true);
    // The BSS tail [file size, image_size) is zeroed, not left with stale RAM contents.
    expect(vm.ram.read(load + 0x3000, 0x10_0000 - 0x3000).every((x) => x === 0)).toBe(true);
    expect(vm.ram.read(load + 0x10_0000, 16).every((x) => x === 0xee)).toBe(true);
  });

  it("a module inside the BSS tail fails with OVERLAP naming the kernel; RAM and ledger unchanged", async () => {
    const bytes = arm64Image({ size: 0x3000, text_offset: 0x80000n, image_size: 0x10_0000n });
    const vm = await vmWith(bytes);
    await vm.loadKernel("Image", { at: RAM_BASE });
    const before = vm.ram.read(RAM_BASE, 64 * MiB).slice();
    const placed = vm.placed();
    const e = await vm.loadModule("other", { at: RAM_BASE + 0x80000 + 0x8_0000 }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(GuestImageError);
    expect((e as GuestImageError).code).toBe("OVERLAP");
    expect((e as GuestImageError).message).toContain('"Image"');
    expect(vm.placed()).toEqual(placed);
    expect(eq(vm.ram.read(RAM_BASE, 64 * MiB), before)).toBe(true);
    // Right after image_size the space is free.
    const m = await vm.loadModule("other", { at: RAM_BASE + 0x80000 + 0x10_0000 });
    expect(m.paddr).toBe(RAM_BASE + 0x18_0000);
  });

  it("image_size < file size: the whole file is copied and reserved", async () => {
    const bytes = arm64Image({ size: 0x4000, image_size: 0x1000n });
    const vm = await vmWith(bytes);
    const k = await vm.loadKernel("Image", { at: RAM_BASE });
    expect(k.size).toBe(0x4000);
    expect(eq(vm.ram.read(k.paddr, 0x4000), bytes)).toBe(true);
  });

  it("image_size 0 (pre-3.17): text_offset is taken as 0x80000 whatever the field says, size = file size", async () => {
    const bytes = arm64Image({ size: 0x2000, text_offset: 0x12345n, image_size: 0n, flags: 0n });
    const vm = await vmWith(bytes);
    // Something already sits where base 0x40000000 would put the image, so 0x40200000 is the
    // lowest base left (a pre-4.6 kernel must take the lowest: see "physical placement" below).
    await vm.loadModule("other", { at: 0x4008_0000 });
    const k = await vm.loadKernel("Image", { at: 0x4000_0001 });
    expect(k.paddr).toBe(0x4020_0000 + 0x80000);
    expect(k.size).toBe(0x2000);
    expect(archOf(k.arch).text_offset).toBe(0x80000n);
    expect(archOf(k.arch).image_size).toBe(0n);
  });

  it("image_size 0: the flags field did not exist yet and is not read", async () => {
    const vm = await vmWith(arm64Image({ image_size: 0n, flags: 1n }));
    const k = await vm.loadKernel("Image", { at: RAM_BASE });
    expect(k.paddr).toBe(RAM_BASE + 0x80000);
  });

  it("an image_size larger than RAM fails OUT_OF_RAM", async () => {
    const vm = await vmWith(arm64Image({ image_size: 0x800_0000n }), 4 * MiB);
    const e = await vm.loadKernel("Image", { at: RAM_BASE }).catch((x: unknown) => x);
    expect((e as GuestImageError).code).toBe("OUT_OF_RAM");
    expect(vm.placed()).toEqual([]);
  });
});

// booting.rst, flags bit 3 "Kernel physical placement": 0 — "2MB aligned base should be as close
// as possible to the base of DRAM, since memory below it is not accessible via the linear
// mapping"; 1 — "all image_size bytes counted from the start of the image are within the 48-bit
// addressable range of physical memory". Expected bases come from that text and the RAM map.
describe("arm64 Image physical placement (flags bit 3)", () => {
  const OLD = 0x2n; // LE, 4K pages, bit 3 clear: a kernel before 4.6

  it("bit 3 clear, a base 2 MiB above the RAM base while the RAM base is free → BAD_ADDRESS naming both bases", async () => {
    const vm = await vmWith(arm64Image({ text_offset: 0x80000n, flags: OLD }));
    const e = await expectRefused(vm, () => vm.loadKernel("Image", { at: RAM_BASE + 2 * MiB }), "BAD_ADDRESS", "flags");
    expect(e.message).toContain("0x40200000");
    expect(e.message).toContain("0x40000000");
    expect(e.message).toContain("as close as possible to the base of DRAM");
  });

  it("bit 3 clear: at the lowest 2 MiB base, or with no address (RAM base), it loads", async () => {
    const vm = await vmWith(arm64Image({ text_offset: 0x80000n, flags: OLD }));
    expect((await vm.loadKernel("Image", { at: RAM_BASE })).paddr).toBe(RAM_BASE + 0x80000);
    const vm2 = await vmWith(arm64Image({ text_offset: 0x80000n, flags: OLD }));
    expect((await vm2.loadKernel("Image")).paddr).toBe(RAM_BASE + 0x80000);
  });

  it("bit 3 clear: RAM base rounded up to 2 MiB is the lowest suitable base (RAM starting off a 2 MiB boundary)", async () => {
    const vm = await vmWith(arm64Image({ text_offset: 0x80000n, flags: OLD }), 16 * MiB, 0x4010_0000);
    expect((await vm.loadKernel("Image", { at: 0x4020_0000 })).paddr).toBe(0x4028_0000);
    const vm2 = await vmWith(arm64Image({ text_offset: 0x80000n, flags: OLD }), 16 * MiB, 0x4010_0000);
    await expectRefused(vm2, () => vm2.loadKernel("Image", { at: 0x4040_0000 }), "BAD_ADDRESS", "flags");
  });

  it("bit 3 clear: lower bases taken by images already placed do not count; the lowest free one is accepted", async () => {
    const vm = await vmWith(arm64Image({ text_offset: 0x80000n, flags: OLD }));
    await vm.loadModule("other", { at: RAM_BASE + 0x80000 }); // inside the image range of base 0x40000000
    expect((await vm.loadKernel("Image", { at: RAM_BASE + 2 * MiB })).paddr).toBe(RAM_BASE + 2 * MiB + 0x80000);
    const vm2 = await vmWith(arm64Image({ text_offset: 0x80000n, flags: OLD }));
    await vm2.loadModule("other", { at: RAM_BASE + 0x80000 });
    const e = await expectRefused(vm2, () => vm2.loadKernel("Image", { at: RAM_BASE + 4 * MiB }), "BAD_ADDRESS", "flags");
    expect(e.message).toContain("0x40200000");
  });

  it("bit 3 set (Debian's flags 0xa): any 2 MiB base is fine", async () => {
    const vm = await vmWith(arm64Image({ text_offset: 0x80000n, flags: 0xan }));
    expect((await vm.loadKernel("Image", { at: RAM_BASE + 32 * MiB })).paddr).toBe(RAM_BASE + 32 * MiB + 0x80000);
  });

  it("bit 3 set: the image must end at or below 2^48 (RAM above it) → BAD_ADDRESS; ending exactly at 2^48 loads", async () => {
    const top = 2 ** 48;
    const img = arm64Image({ text_offset: 0n, image_size: 0x1000n, size: 0x1000, flags: 0xan });
    const vm = await vmWithFiles({ Image: img }, 8 * MiB, top - 4 * MiB);
    await expectRefused(vm, () => vm.loadKernel("Image", { at: top }), "BAD_ADDRESS", "image_size");
    const vm2 = await vmWithFiles({ Image: arm64Image({ text_offset: 0x1ff000n, image_size: 0x1000n, size: 0x1000, flags: 0xan }) }, 8 * MiB, top - 4 * MiB);
    const k = await vm2.loadKernel("Image", { at: top - 2 * MiB });
    expect(k.paddr + k.size).toBe(top);
  });
});

describe("arm64 Image header checks", () => {
  it("flags bit 0 (big-endian kernel) → UNSUPPORTED", async () => {
    const vm = await vmWith(arm64Image({ flags: 0xbn }));
    const e = await expectRefused(vm, () => vm.loadKernel("Image", { at: RAM_BASE }), "UNSUPPORTED", "flags");
    expect(e.message).toContain("big-endian");
    expect(e.message).toContain("0xb");
  });

  it("flags bit 0 through the seL4 API → UNSUPPORTED, struct untouched", async () => {
    const vm = await vmWith(arm64Image({ flags: 1n }));
    const g = { kernel_image: { load_paddr: 1, alignment: 2, size: 3 }, kernel_image_arch: {} };
    await expectRefused(vm, () => vm_load_guest_kernel(vm, "Image", RAM_BASE, 0, g), "UNSUPPORTED", "flags");
    expect(g).toEqual({ kernel_image: { load_paddr: 1, alignment: 2, size: 3 }, kernel_image_arch: {} });
  });

  it("image_size 0 and text_offset = 0x80000 stored big-endian → UNSUPPORTED (pre-3.17 BE kernel)", async () => {
    const b = arm64Image({ image_size: 0n, flags: 0n });
    new DataView(b.buffer).setBigUint64(0x08, 0x80000n, false); // text_offset in the kernel's (big) endianness
    const vm = await vmWith(b);
    const e = await expectRefused(vm, () => vm.loadKernel("Image", { at: RAM_BASE }), "UNSUPPORTED", "text_offset");
    expect(e.message).toContain("big-endian");
  });

  it("text_offset + image_size past 2^64 → BAD_HEADER", async () => {
    const vm = await vmWith(arm64Image({ text_offset: (1n << 64n) - 0x1000n, image_size: 0x2000n }));
    const e = await expectRefused(vm, () => vm.loadKernel("Image", { at: RAM_BASE }), "BAD_HEADER", "text_offset");
    expect(e.message).toContain("0xfffffffffffff000");
  });

  it("base + text_offset past 2^53 - 1 → BAD_ADDRESS", async () => {
    const vm = await vmWith(arm64Image({ text_offset: 1n << 60n }));
    const e = await expectRefused(vm, () => vm.loadKernel("Image", { at: RAM_BASE }), "BAD_ADDRESS", "text_offset");
    expect(e.message).toContain("0x1000000000000000");
  });

  it("load address + image_size past 2^53 - 1 → BAD_ADDRESS", async () => {
    const vm = await vmWith(arm64Image({ image_size: 1n << 56n }));
    await expectRefused(vm, () => vm.loadKernel("Image", { at: RAM_BASE }), "BAD_ADDRESS", "image_size");
  });
});

describe("arm64 Image arch fields", () => {
  it.each([
    [0x0n, "unspecified", false],
    [0x2n, "4K", false],
    [0x4n, "16K", false],
    [0x6n, "64K", false],
    [0xan, "4K", true],
    [0xen, "64K", true],
  ] as const)("flags %s → page_size %s, phys_placement_anywhere %s", async (flags, page, anywhere) => {
    const vm = await vmWith(arm64Image({ flags }));
    const a = archOf((await vm.loadKernel("Image", { at: RAM_BASE })).arch);
    expect(a.flags).toBe(flags);
    expect(a.page_size).toBe(page);
    expect(a.phys_placement_anywhere).toBe(anywhere);
    expect(a.endian).toBe("little");
    expect(a.efi_stub).toBe(false);
  });
});

describe("a Debian-shaped arm64 Image (EFI stub: MZ at 0, text_offset 0, image_size 0x2010000, flags 0xa)", () => {
  // qemu-reference.md, "Getting real kernels from Debian": Debian 12's arm64 vmlinuz is a raw
  // Image that is also a PE/COFF EFI application. The file here is 64 KiB of it: the header as
  // Debian's has it; image_size (0x2010000) is far larger than the file.
  const debian = () => {
    const b = arm64Image({ size: 0x1_0000, code0: 0xfa405a4d, text_offset: 0n, image_size: 0x201_0000n, flags: 0xan });
    new DataView(b.buffer).setUint32(0x3c, 0x40, true); // res5: PE header offset
    return b;
  };

  it("loads at RAM base with no address; at 0x40200000 (QEMU's address, past its boot stub) when asked", async () => {
    const vm = await vmWith(debian(), 256 * MiB);
    const k = await vm.loadKernel("Image");
    expect(k.paddr).toBe(RAM_BASE);
    expect(k.size).toBe(0x201_0000);
    const a = archOf(k.arch);
    expect(a.efi_stub).toBe(true);
    expect(a.page_size).toBe("4K");
    expect(a.phys_placement_anywhere).toBe(true);
    expect(a.text_offset).toBe(0n);

    const vm2 = await vmWith(debian(), 256 * MiB);
    const k2 = await vm2.loadKernel("Image", { at: 0x4020_0000 });
    expect(k2.paddr).toBe(0x4020_0000);
    expect(k2.entry).toBe(0x4020_0000n);
    expect(eq(vm2.ram.read(0x4020_0000, 0x1_0000), debian())).toBe(true);
    expect(vm2.ram.read(0x4020_0000 + 0x1_0000, 0x201_0000 - 0x1_0000).every((x) => x === 0)).toBe(true);
  });

  it("through the seL4 API: load_address 0x40000001, alignment 0x1000 → base 0x40200000", async () => {
    const vm = await vmWith(debian(), 256 * MiB);
    const g = await vm_load_guest_kernel(vm, "Image", 0x4000_0001, 0x1000);
    expect(g.kernel_image).toEqual({ load_paddr: 0x4020_0000, alignment: 0x1000, size: 0x201_0000 });
    const a = g.kernel_image_arch as unknown as Arm64ImageArch;
    expect(a.format).toBe("arm64-image");
    expect(a.entry).toBe(0x4020_0000n);
    expect(a.base).toBe(0x4020_0000n);
    expect(a.image_size).toBe(0x201_0000n);
    expect(a.flags).toBe(0xan);
    expect(a.efi_stub).toBe(true);
    expect(vm.placed()).toEqual([{ name: "Image", paddr: 0x4020_0000, size: 0x201_0000 }]);
  });

  it("inspect reports the header fields", async () => {
    const info = await inspectFile(bytesFile("vmlinuz", debian()));
    expect(info).toMatchObject({
      format: "arm64-image", machine: "aarch64", endian: "little",
      text_offset: 0n, image_size: 0x201_0000n, flags: 0xan, page_size: "4K",
      phys_placement_anywhere: true, efi_stub: true, res5: 0x40, code0: 0xfa405a4d,
    });
  });
});

describe("arm64 Image through the CLI", () => {
  const ROOT = fileURLToPath(new URL("../..", import.meta.url));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "guest-image-arm64-"));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("load --json reports format, load_paddr, entry and the arch fields", () => {
    const f = path.join(dir, "Image");
    fs.writeFileSync(f, arm64Image({ size: 0x2000, text_offset: 0x80000n, image_size: 0x4000n }));
    const r = spawnSync(process.execPath, ["dist/cli/main.js", "load", "--ram", "0x40000000:64M", "--kernel", f, "--kernel-addr", "0x40000001", "--json"], { cwd: ROOT, encoding: "utf8" });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.kernel.format).toBe("arm64-image");
    expect(j.kernel.load_paddr).toBe("0x40280000");
    expect(j.kernel.entry).toBe("0x40280000");
    expect(j.kernel.size).toBe("0x4000");
    expect(j.kernel.arch).toMatchObject({ format: "arm64-image", base: "0x40200000", text_offset: "0x80000", image_size: "0x4000", page_size: "4K" });
  });

  it("inspect --json prints the header", () => {
    const f = path.join(dir, "Image2");
    fs.writeFileSync(f, arm64Image({ text_offset: 0x80000n }));
    const r = spawnSync(process.execPath, ["dist/cli/main.js", "inspect", f, "--json"], { cwd: ROOT, encoding: "utf8" });
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.format).toBe("arm64-image");
    expect(j.text_offset).toBe("0x80000");
  });
});
