/**
 * Reserved ranges on the device-tree architectures (arm64, arm, riscv): every placement keeps out
 * of them (automatic ones look elsewhere, a layout's fixed address moves to the next suitable free
 * address, what cannot move is refused with OVERLAP), the device tree lists them as /memreserve/
 * (read back with dtc, the tree's other fields with fdtget), and riscv `firmwareAt` hands over to
 * a firmware already in the machine. Expected addresses are computed here from booting.rst /
 * QEMU's rules and the RAM map, by hand.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { afterAll, describe, expect, it } from "vitest";
import { bootLinux, createVm, fromMap, GuestImageError, type Vm } from "../../src/node.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const MiB = 0x100000;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "guest-image-reserved-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** arm64 Image header (booting.rst): text_offset @8, image_size @16, flags @24, magic "ARM\x64" @0x38. */
function arm64Image(textOffset = 0n, imageSize = 0x300000n, len = 0x100000): Uint8Array {
  const b = new Uint8Array(len);
  const dv = new DataView(b.buffer);
  dv.setBigUint64(8, textOffset, true);
  dv.setBigUint64(16, imageSize, true);
  dv.setBigUint64(24, 0xan, true);
  dv.setUint32(0x38, 0x644d5241, true);
  for (let i = 64; i < len; i++) b[i] = i & 0xff;
  return b;
}
/** RISC-V Image header (boot-image-header.rst): text_offset @8, image_size @16, version @0x20, magic2 "RSC\x05" @0x38. */
function riscvImage(): Uint8Array {
  const b = new Uint8Array(0x80000);
  const dv = new DataView(b.buffer);
  dv.setBigUint64(8, 0x200000n, true);
  dv.setBigUint64(16, 0x100000n, true);
  dv.setUint32(0x20, 2, true);
  dv.setUint32(0x38, 0x05435352, true);
  return b;
}
/** arm zImage header (arch/arm/boot/compressed/head.S): magic @0x24, start 0 @0x28 (position independent), end @0x2c. */
function zImage(len = 0x40000): Uint8Array {
  const z = new Uint8Array(len);
  const dv = new DataView(z.buffer);
  dv.setUint32(0x24, 0x016f2818, true);
  dv.setUint32(0x2c, len, true);
  dv.setUint32(0x30, 0x04030201, true);
  return z;
}
const INITRD = new Uint8Array(0x30000).fill(0x5a);

function file(blob: Uint8Array): string {
  const f = path.join(tmp, `t${Math.random().toString(36).slice(2)}.dtb`);
  fs.writeFileSync(f, blob);
  return f;
}
const run = (cmd: string, args: string[]) => {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
};
/** The tree's /memreserve/ entries as dtc prints them. */
const memreserves = (blob: Uint8Array) =>
  [...run("dtc", ["-I", "dtb", "-O", "dts", file(blob)]).matchAll(/\/memreserve\/\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+);/g)].map((m) => [Number(m[1]), Number(m[2])]);
const fdtget = (blob: Uint8Array, node: string, prop: string) => run("fdtget", ["-t", "x", file(blob), node, prop]).trim();

const overlaps = (p: { paddr: number; size: number }, r: { base: number; size: number }) => p.paddr < r.base + r.size && r.base < p.paddr + p.size;
const dtbOf = (vm: Vm, b: { dtb?: { paddr: number; size: number } }) => vm.ram.read(b.dtb!.paddr, b.dtb!.size);

async function expectFails(vm: Vm, p: () => Promise<unknown>, code: string, re: RegExp): Promise<GuestImageError> {
  const before = vm.placed();
  const ram = vm.ram.read(vm.ram.regions[0].base, vm.ram.regions[0].size).slice();
  try {
    await p();
  } catch (e) {
    expect(e).toBeInstanceOf(GuestImageError);
    expect((e as GuestImageError).code, (e as Error).message).toBe(code);
    expect((e as GuestImageError).message).toMatch(re);
    expect(vm.placed()).toEqual(before);
    expect(Buffer.from(vm.ram.read(vm.ram.regions[0].base, vm.ram.regions[0].size)).equals(Buffer.from(ram)), "guest RAM unchanged").toBe(true);
    return e as GuestImageError;
  }
  throw new Error(`expected ${code}`);
}

describe("reserved ranges on arm64, arm and riscv", () => {
  it("arm64 default layout, QEMU virt's 1 MiB dtb blob reserved (createVm): the kernel moves to the next 2 MiB base, the tree lists the range", async () => {
    const blob = { base: 0x40000000, size: MiB };
    const vm = await createVm({ ram: [{ base: 0x40000000, size: 256 * MiB }], reserved: [blob], files: fromMap({ Image: arm64Image(), initrd: INITRD }) });
    const b = await bootLinux(vm, { arch: "arm64", kernel: "Image", initrd: "initrd", cmdline: "console=ttyAMA0", stub: true, seed: 1 });
    // booting.rst: a 2 MiB-aligned base + text_offset (0): the first such base past the blob.
    expect(b.kernel.paddr).toBe(0x40200000);
    expect(b.cpu.target).toBe(0x40200000n);
    for (const p of b.placements) expect(overlaps(p, blob), `${p.role} at 0x${p.paddr.toString(16)}`).toBe(false);
    const dtb = dtbOf(vm, b);
    expect(memreserves(dtb)).toEqual([[0x40000000, MiB]]);
    expect(fdtget(dtb, "/chosen", "linux,initrd-start")).toBe(`0 ${b.initrd!.paddr.toString(16)}`);
  });

  it("arm64 without reserved ranges: the kernel stays at the RAM base and the tree has no /memreserve/", async () => {
    const vm = await createVm({ ram: [{ base: 0x40000000, size: 256 * MiB }], files: fromMap({ Image: arm64Image() }) });
    const b = await bootLinux(vm, { arch: "arm64", kernel: "Image", seed: 1 });
    expect(b.kernel.paddr).toBe(0x40000000);
    expect(memreserves(dtbOf(vm, b))).toEqual([]);
  });

  it("arm64 text_offset 0x80000: the footprint from base + text_offset is what must be clear", async () => {
    // Reserved [RAM + 0x80000, +4 KiB) lies inside base + text_offset: next base is RAM + 2 MiB.
    const r = { base: 0x40080000, size: 0x1000 };
    const vm = await createVm({ ram: [{ base: 0x40000000, size: 64 * MiB }], files: fromMap({ Image: arm64Image(0x80000n) }) });
    const b = await bootLinux(vm, { arch: "arm64", kernel: "Image", reserved: [r], seed: 1 });
    expect(b.kernel.paddr).toBe(0x40280000);
  });

  it("arm zImage, both layouts: RAM + 0x8000 (booting.rst) / RAM + 0x10000 (QEMU) inside a reserved 1 MiB → the next free page, in the first 128 MiB", async () => {
    for (const layout of ["default", "qemu"] as const) {
      const blob = { base: 0x40000000, size: MiB };
      const vm = await createVm({ ram: [{ base: 0x40000000, size: 256 * MiB }], files: fromMap({ zImage: zImage(), initrd: INITRD }) });
      const b = await bootLinux(vm, { arch: "arm", kernel: "zImage", initrd: "initrd", layout, reserved: [blob], stub: true, seed: 1 });
      expect(b.kernel.paddr, layout).toBe(0x40100000);
      expect(b.cpu.target).toBe(0x40100000n);
      for (const p of b.placements) expect(overlaps(p, blob), `${layout}: ${p.role}`).toBe(false);
      expect(memreserves(dtbOf(vm, b))).toEqual([[0x40000000, MiB]]);
      // The stub's r2 literal (offset 0x14, stubs/arm.ts) names the tree.
      expect(new DataView(vm.ram.read(b.cpu.stub!.paddr, 0x1c).slice().buffer).getUint32(0x14, true)).toBe(b.dtb!.paddr);
    }
  });

  it("arm zImage: no free page in the first 128 MiB → OUT_OF_RAM, nothing placed", async () => {
    const vm = await createVm({ ram: [{ base: 0x40000000, size: 256 * MiB }], files: fromMap({ zImage: zImage() }) });
    await expectFails(vm, () => bootLinux(vm, { arch: "arm", kernel: "zImage", reserved: [{ base: 0x40000000, size: 128 * MiB }], seed: 1 }), "OUT_OF_RAM", /no free range/);
  });

  it("riscv64 qemu layout: QEMU's fdt blob at 0x8fe00000 reserved → our fdt takes the next 2 MiB slot below; the initrd keeps QEMU's address", async () => {
    const blob = { base: 0x8fe00000, size: MiB };
    const vm = await createVm({ ram: [{ base: 0x80000000, size: 256 * MiB }], files: fromMap({ Image: riscvImage(), initrd: INITRD }) });
    const b = await bootLinux(vm, { arch: "riscv64", kernel: "Image", initrd: "initrd", layout: "qemu", reserved: [blob], seed: 1 });
    expect(b.kernel.paddr).toBe(0x80200000);
    expect(b.initrd!.paddr).toBe(0x80200000 + 128 * MiB); // hw/riscv/boot.c: kernel + min(RAM / 2, 128 MiB)
    expect(b.dtb!.paddr).toBe(0x8fc00000); // align_down(RAM end − 1 MiB, 2 MiB) = 0x8fe00000 is taken
    expect(memreserves(dtbOf(vm, b))).toEqual([[0x8fe00000, MiB]]);
  });

  it("only the parts of a reserved range inside RAM become /memreserve/ entries", async () => {
    const vm = await createVm({ ram: [{ base: 0x80000000, size: 64 * MiB }], files: fromMap({ Image: riscvImage() }) });
    const b = await bootLinux(vm, { arch: "riscv64", kernel: "Image", reserved: [{ base: 0x7ff00000, size: 2 * MiB }, { base: 0x10000000, size: 0x1000 }], seed: 1 });
    expect(memreserves(dtbOf(vm, b))).toEqual([[0x80000000, MiB]]);
  });

  it("riscv64 firmwareAt (QEMU's own OpenSBI at 0x80000000): M-mode at the firmware, a2 = our fw_dynamic_info naming the kernel, S-mode", async () => {
    const sbi = { base: 0x80000000, size: 0x40000 };
    const vm = await createVm({ ram: [{ base: 0x80000000, size: 256 * MiB }], files: fromMap({ Image: riscvImage() }) });
    const b = await bootLinux(vm, { arch: "riscv64", kernel: "Image", firmwareAt: 0x80000000, reserved: [sbi], seed: 1 });
    expect(b.kernel.paddr).toBe(0x80200000); // RAM + text_offset, clear of the firmware
    expect(b.cpu).toMatchObject({ priv: "M", sbi: "firmware", firmware: "external", pc: 0x80000000n, target: 0x80000000n, regs: { a0: 0n, a1: BigInt(b.dtb!.paddr) } });
    expect(b.placements.map((p) => p.role)).not.toContain("firmware");
    const info = b.placements.find((p) => p.role === "fw_dynamic_info")!;
    expect(BigInt(info.paddr)).toBe((b.cpu.regs as { a2: bigint }).a2);
    // OpenSBI include/sbi/fw_dynamic.h: magic "OSBI", version 2, next_addr, next_mode (1 = S), options, boot_hart.
    const dv = new DataView(vm.ram.read(info.paddr, 48).slice().buffer);
    expect([0, 8, 16, 24, 32, 40].map((o) => dv.getBigUint64(o, true))).toEqual([0x4942534fn, 2n, 0x80200000n, 1n, 0n, 0n]);
    for (const p of b.placements) expect(overlaps(p, sbi), p.role).toBe(false);
    expect(memreserves(dtbOf(vm, b))).toEqual([[0x80000000, 0x40000]]);
  });

  it("riscv64 firmwareAt with a stub: the M-mode stub jumps to the firmware with a0–a2 (its literals)", async () => {
    const vm = await createVm({ ram: [{ base: 0x80000000, size: 256 * MiB }], files: fromMap({ Image: riscvImage() }) });
    const b = await bootLinux(vm, { arch: "riscv64", kernel: "Image", firmwareAt: 0x80000000, reserved: [{ base: 0x80000000, size: 0x40000 }], stub: true, seed: 1 });
    expect(b.cpu.pc).toBe(BigInt(b.cpu.stub!.paddr));
    const s = new DataView(vm.ram.read(b.cpu.stub!.paddr, 0x40).slice().buffer);
    // First word: csrci mstatus, 8 (M-mode variant); literals hart, dtb, a2, target at 0x20 (stubs/riscv.ts).
    expect(s.getUint32(0, true)).toBe(0x30047073);
    expect([0x20, 0x28, 0x30, 0x38].map((o) => s.getBigUint64(o, true))).toEqual([0n, BigInt(b.dtb!.paddr), (b.cpu.regs as { a2: bigint }).a2, 0x80000000n]);
  });

  it("bad requests: firmwareAt with firmware, on arm64, not an address; a reserved range of size 0 → BAD_ARGUMENT, nothing placed", async () => {
    const vm = await createVm({ ram: [{ base: 0x80000000, size: 64 * MiB }], files: fromMap({ Image: riscvImage(), fw: new Uint8Array(0x1000), a64: arm64Image() }) });
    await expectFails(vm, () => bootLinux(vm, { arch: "riscv64", kernel: "Image", firmware: "fw", firmwareAt: 0x80000000 }), "BAD_ARGUMENT", /not both/);
    await expectFails(vm, () => bootLinux(vm, { arch: "arm64", kernel: "a64", firmwareAt: 0x80000000 }), "BAD_ARGUMENT", /firmwareAt is for riscv/);
    await expectFails(vm, () => bootLinux(vm, { arch: "riscv64", kernel: "Image", firmwareAt: -1 }), "BAD_ARGUMENT", /firmwareAt must be/);
    await expectFails(vm, () => bootLinux(vm, { arch: "riscv64", kernel: "Image", reserved: [{ base: 0x80000000, size: 0 }] }), "BAD_ARGUMENT", /size is 0/);
  });

  it("reserved ranges that leave no room for the device tree → OUT_OF_RAM, guest RAM and the ledger unchanged", async () => {
    const vm = await createVm({ ram: [{ base: 0x40000000, size: 16 * MiB }], files: fromMap({ Image: arm64Image() }) });
    // The kernel fits at the RAM base; everything above its image_size (3 MiB) is reserved.
    await expectFails(vm, () => bootLinux(vm, { arch: "arm64", kernel: "Image", reserved: [{ base: 0x40300000, size: 13 * MiB }], seed: 1 }), "OUT_OF_RAM", /no free range/);
  });

  it("an arm64 Image.gz moves too: its decompressed header gives the footprint", async () => {
    const vm = await createVm({ ram: [{ base: 0x40000000, size: 64 * MiB }], files: fromMap({ "Image.gz": gzipSync(arm64Image()) }) });
    const b = await bootLinux(vm, { arch: "arm64", kernel: "Image.gz", reserved: [{ base: 0x40100000, size: 0x1000 }], seed: 1 });
    expect(b.kernel.paddr).toBe(0x40200000);
    expect(b.kernel.size).toBe(0x300000); // image_size
  });

  it("what cannot move is refused with OVERLAP: a raw arm64 kernel, riscv firmware at the RAM base", async () => {
    const raw = new Uint8Array(0x10000).fill(0x11);
    const vm = await createVm({ ram: [{ base: 0x40000000, size: 64 * MiB }], files: fromMap({ raw }) });
    const e = await expectFails(vm, () => bootLinux(vm, { arch: "arm64", kernel: "raw", reserved: [{ base: 0x40000000, size: 0x1000 }], seed: 1 }), "OVERLAP", /reserved range \[0x40000000, 0x40001000\)/);
    expect(e.field).toBe("reserved");
    const rv = await createVm({ ram: [{ base: 0x80000000, size: 64 * MiB }], files: fromMap({ Image: riscvImage(), fw: new Uint8Array(0x1000).fill(1) }) });
    await expectFails(rv, () => bootLinux(rv, { arch: "riscv64", kernel: "Image", firmware: "fw", reserved: [{ base: 0x80000000, size: 0x1000 }], seed: 1 }), "OVERLAP", /firmwareAt/);
  });
});

describe("CLI: --reserve on device-tree architectures, --firmware-at", () => {
  it("boot --arch riscv64 --firmware-at … --reserve … --stub --json: cpu.firmware external, the tree's /memreserve/", () => {
    const dir = fs.mkdtempSync(path.join(tmp, "cli-"));
    fs.writeFileSync(path.join(dir, "Image"), riscvImage());
    const dtbOut = path.join(dir, "out.dtb");
    const r = spawnSync(process.execPath, [path.join(ROOT, "dist/cli/main.js"), "boot", "--arch", "riscv64", "--ram", "0x80000000:256M", "--kernel", "Image",
      "--firmware-at", "0x80000000", "--reserve", "0x80000000:0x40000", "--reserve", "0x8fe00000:1M", "--stub", "--json", "--dump-dtb", dtbOut], { cwd: dir, encoding: "utf8" });
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout) as { cpu: Record<string, unknown>; placements: Array<{ load_paddr: string; size: string }> };
    expect(j.cpu).toMatchObject({ priv: "M", sbi: "firmware", firmware: "external", target: "0x80000000" });
    for (const p of j.placements) {
      for (const res of [{ base: 0x80000000, size: 0x40000 }, { base: 0x8fe00000, size: MiB }]) expect(overlaps({ paddr: Number(p.load_paddr), size: Number(p.size) }, res)).toBe(false);
    }
    expect(memreserves(new Uint8Array(fs.readFileSync(dtbOut)))).toEqual([[0x80000000, 0x40000], [0x8fe00000, MiB]]);
    const bad = spawnSync(process.execPath, [path.join(ROOT, "dist/cli/main.js"), "boot", "--arch", "arm64", "--ram", "0x40000000:64M", "--kernel", "Image", "--firmware-at", "0"], { cwd: dir, encoding: "utf8" });
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/--firmware-at is for --arch riscv64/);
  });
});
