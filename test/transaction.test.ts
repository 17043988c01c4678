// Several loads as one: vm.transaction() and bootLinux(), which uses it. A failure at any step
// must leave guest RAM byte for byte, the ledger and the event log as they were before the
// first step — including the zero fill and relocation work of loads that had already committed.
import { describe, expect, it } from "vitest";
import { bootLinux, createVm, fromMap, GuestImageError } from "../src/node.js";
import { writeElf } from "./helpers/elf-writer.js";

const MiB = 0x100000;

/** arm64 Image header (booting.rst): text_offset @8, image_size @16, flags @24, "ARM\x64" @0x38. */
function arm64Image(imageSize = 0x300000n, len = 0x100000): Uint8Array {
  const b = new Uint8Array(len).map((_, i) => (i * 7) & 0xff);
  const dv = new DataView(b.buffer);
  dv.setBigUint64(8, 0n, true);
  dv.setBigUint64(16, imageSize, true);
  dv.setBigUint64(24, 0xan, true);
  dv.setUint32(0x38, 0x644d5241, true);
  return b;
}

function snapshot(vm: Awaited<ReturnType<typeof createVm>>) {
  return { ram: vm.ram.regions.map((r) => vm.ram.read(r.base, r.size)), placed: vm.placed(), events: vm.measurements() };
}

describe("vm.transaction", () => {
  it("undoes every load of a failed transaction: RAM (incl. BSS zeroing over dirty RAM), ledger, event log", async () => {
    const elf = writeElf({
      class: 64, machine: 183, entry: 0x40_0000n,
      segments: [{ vaddr: 0x40_0000n, paddr: 0x40_0000n, data: new Uint8Array(0x1000).fill(0x11), memsz: 0x3000n }],
    });
    const vm = await createVm({ ram: [{ base: 0, size: 16 * MiB }], files: fromMap({ k: elf, m: new Uint8Array(0x2000).fill(0x22) }), measure: true });
    vm.ram.view(0, 16 * MiB).fill(0xee); // dirty RAM: the BSS zero fill must be undone too
    await vm.place("resident", new Uint8Array(16).fill(1), { at: 0x10_0000 });
    const before = snapshot(vm);
    const err = await vm
      .transaction(async (tx) => {
        await tx.loadKernel("k");
        await tx.loadModule("m", { at: 0x50_0000 });
        await tx.loadModule("m", { at: 0x10_0000 }); // overlaps "resident"
      })
      .catch((e) => e);
    expect(err).toBeInstanceOf(GuestImageError);
    expect(err.code).toBe("OVERLAP");
    const after = snapshot(vm);
    expect(after.placed).toEqual(before.placed);
    expect(after.events).toEqual(before.events);
    expect(after.ram.every((r, i) => Buffer.from(r).equals(Buffer.from(before.ram[i])))).toBe(true);
  });

  it("keeps everything when the transaction succeeds", async () => {
    const vm = await createVm({ ram: [{ base: 0, size: MiB }], files: fromMap({ m: new Uint8Array(16).fill(3) }) });
    await vm.transaction(async (tx) => {
      await tx.loadModule("m", { at: 0x1000 });
      await tx.loadModule("m", { at: 0x2000 });
    });
    expect(vm.placed().map((p) => p.paddr)).toEqual([0x1000, 0x2000]);
    expect(vm.ram.read(0x2000, 16).every((b) => b === 3)).toBe(true);
  });
});

describe("bootLinux is all or nothing", () => {
  it("a boot whose initrd does not fit leaves no kernel or device tree behind", async () => {
    // 8 MiB of RAM: the kernel (3 MiB reserved) fits, a 6 MiB initrd does not fit beside it.
    const vm = await createVm({
      ram: [{ base: 0x4000_0000, size: 8 * MiB }],
      files: fromMap({ Image: arm64Image(), initrd: new Uint8Array(6 * MiB).fill(5) }),
      measure: true,
    });
    vm.ram.view(0x4000_0000, 8 * MiB).fill(0xee);
    const before = snapshot(vm);
    const err = await bootLinux(vm, { arch: "arm64", kernel: "Image", initrd: "initrd" }).catch((e) => e);
    expect(err).toBeInstanceOf(GuestImageError);
    expect(err.code).toBe("OUT_OF_RAM");
    const after = snapshot(vm);
    expect(after.placed).toEqual([]);
    expect(after.events).toEqual([]);
    expect(Buffer.from(after.ram[0]).equals(Buffer.from(before.ram[0]))).toBe(true);
  });
});
