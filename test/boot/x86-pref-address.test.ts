// bootLinux, x86, layout "default": where a bzImage goes. Oracle: Documentation/arch/x86/boot.rst,
// read independently here with a DataView at the offsets it gives (setup header at 0x1F1):
//   pref_address (0x258, u64, protocol 2.10+): "If nonzero, represents a preferred load address
//     for the kernel. A relocating bootloader should attempt to load at this address if possible.
//     A non-relocatable kernel will unconditionally move itself and to run at this address."
//   relocatable_kernel (0x234, u8), kernel_alignment (0x230, u32), code32_start (0x214, u32),
//   init_size (0x260, u32): the kernel runs (decompresses) at
//     runtime_start = align_up(max(load, pref_address), kernel_alignment) for init_size bytes.
// Kernel: Debian bookworm's amd64 bzImage (relocatable, pref_address 16 MiB).
import { describe, expect, it } from "vitest";
import { bootLinux, createVm, fromMap, GuestImageError } from "../../src/node.js";
import { readFixture } from "../qemu/fixtures.js";

const MiB = 0x100000;
const BZ = readFixture("amd64/bzImage");
const dv = new DataView(BZ.buffer, BZ.byteOffset, BZ.byteLength);
const hdr = {
  setupSects: dv.getUint8(0x1f1),
  code32Start: dv.getUint32(0x214, true),
  kernelAlignment: dv.getUint32(0x230, true),
  relocatable: dv.getUint8(0x234),
  prefAddress: Number(dv.getBigUint64(0x258, true)),
  initSize: dv.getUint32(0x260, true),
};
const kernelSize = BZ.length - (hdr.setupSects + 1) * 512;

function withHeader(patch: (d: DataView) => void): Uint8Array {
  const b = BZ.slice();
  patch(new DataView(b.buffer));
  return b;
}

describe("x86 default layout: a relocatable bzImage goes to pref_address first (boot.rst)", () => {
  it("the fixture is what the cases need: relocatable, pref_address above code32_start", () => {
    expect(hdr.relocatable).toBe(1);
    expect(hdr.prefAddress).toBeGreaterThan(hdr.code32Start);
    expect(hdr.prefAddress % hdr.kernelAlignment).toBe(0);
  });

  it("free RAM at pref_address: the kernel is loaded there; the window [pref, +init_size) is reserved", async () => {
    const vm = await createVm({ ram: [{ base: 0, size: 256 * MiB }], files: fromMap({ bzImage: BZ }) });
    const b = await bootLinux(vm, { arch: "x86_64", kernel: "bzImage" });
    expect(b.kernel.paddr).toBe(hdr.prefAddress);
    expect(b.cpu.pc).toBe(BigInt(hdr.prefAddress + 0x200)); // boot.rst: 64-bit entry at +0x200
    // The protected-mode part verbatim at pref_address.
    expect(Buffer.from(vm.ram.read(hdr.prefAddress, 4096)).equals(Buffer.from(BZ.subarray((hdr.setupSects + 1) * 512, (hdr.setupSects + 1) * 512 + 4096)))).toBe(true);
    const k = vm.placed().find((p) => p.name === "bzImage")!;
    expect(k.paddr).toBe(hdr.prefAddress);
    expect(k.size).toBe(Math.max(kernelSize, hdr.initSize));
    // 32-bit protocol too: entry = load address.
    const vm32 = await createVm({ ram: [{ base: 0, size: 256 * MiB }], files: fromMap({ bzImage: BZ }) });
    expect((await bootLinux(vm32, { arch: "x86", kernel: "bzImage" })).cpu.pc).toBe(BigInt(hdr.prefAddress));
  });

  it("pref_address taken: the lowest kernel_alignment-aligned free range above it that holds kernel and window", async () => {
    const vm = await createVm({ ram: [{ base: 0, size: 256 * MiB }], files: fromMap({ bzImage: BZ }) });
    vm.place("firmware-table", new Uint8Array(0x1000).fill(0xaa), { at: hdr.prefAddress + 0x10000 });
    const b = await bootLinux(vm, { arch: "x86_64", kernel: "bzImage" });
    // [pref, pref + kernel_alignment) holds the table; the next aligned start is free.
    const expected = hdr.prefAddress + hdr.kernelAlignment;
    expect(b.kernel.paddr).toBe(expected);
    // runtime_start = align_up(max(load, pref), kernel_alignment) = load: the window starts there.
    const k = vm.placed().find((p) => p.name === "bzImage")!;
    expect(k).toEqual({ name: "bzImage", paddr: expected, size: Math.max(kernelSize, hdr.initSize) });
    expect(vm.ram.read(hdr.prefAddress + 0x10000, 0x1000).every((x) => x === 0xaa)).toBe(true);
  });

  it("not relocatable (relocatable_kernel 0): at code32_start, decompressing at pref_address", async () => {
    const vm = await createVm({ ram: [{ base: 0, size: 256 * MiB }], files: fromMap({ bzImage: withHeader((d) => d.setUint8(0x234, 0)) }) });
    const b = await bootLinux(vm, { arch: "x86_64", kernel: "bzImage" });
    expect(b.kernel.paddr).toBe(hdr.code32Start);
    // The kernel at code32_start and, separately, its window at pref_address (boot.rst init_size).
    expect(vm.placed().filter((p) => p.name.startsWith("bzImage"))).toEqual([
      { name: "bzImage", paddr: hdr.code32Start, size: kernelSize },
      { name: "bzImage (decompression window)", paddr: hdr.prefAddress, size: hdr.initSize },
    ]);
  });

  it("pref_address 0 (none): where the header asks, code32_start", async () => {
    const vm = await createVm({ ram: [{ base: 0, size: 256 * MiB }], files: fromMap({ bzImage: withHeader((d) => d.setBigUint64(0x258, 0n, true)) }) });
    expect((await bootLinux(vm, { arch: "x86_64", kernel: "bzImage" })).kernel.paddr).toBe(hdr.code32Start);
  });

  it("no RAM from pref_address on: refused with the reason pref_address failed, nothing placed", async () => {
    const vm = await createVm({ ram: [{ base: 0, size: hdr.prefAddress }], files: fromMap({ bzImage: BZ }) });
    const e = await bootLinux(vm, { arch: "x86_64", kernel: "bzImage" }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(GuestImageError);
    expect((e as GuestImageError).code).toBe("OUT_OF_RAM");
    expect(vm.placed()).toEqual([]);
  });
});
