/**
 * bootLinux default layout and checks, and the CLI `boot` command. Kernels are synthesized from
 * their booting documents (arm64 booting.rst, riscv boot-image-header.rst), plus Debian's amd64
 * bzImage from the fixture cache for x86. Device trees are read back with dtc. Expected addresses
 * follow the rules in src/boot/layout.ts, computed here by hand from the RAM map.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { bootLinux, createVm, fdt, fromMap, GuestImageError, writeFdt, type Vm } from "../../src/node.js";
import { fixture, le32, readFixture } from "../qemu/fixtures.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const MiB = 0x100000;
const SAMPLE_DTB = new Uint8Array(fs.readFileSync(path.join(ROOT, "examples/images/linux.dtb")));
const INITRD = new Uint8Array(fs.readFileSync(path.join(ROOT, "examples/images/rootfs.cpio.gz")));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "guest-image-boot-"));

/** arm64 Image header (booting.rst): code0/1, text_offset @8, image_size @16, flags @24, magic "ARM\x64" @0x38. */
function arm64Image(textOffset = 0n, imageSize = 0x300000n, len = 0x100000): Uint8Array {
  const b = new Uint8Array(len);
  const dv = new DataView(b.buffer);
  dv.setBigUint64(8, textOffset, true);
  dv.setBigUint64(16, imageSize, true);
  dv.setBigUint64(24, 0xan, true); // 4K pages, placement anywhere
  dv.setUint32(0x38, 0x644d5241, true);
  for (let i = 64; i < len; i++) b[i] = i & 0xff;
  return b;
}

/** RISC-V Image header (boot-image-header.rst): text_offset @8, image_size @16, version @0x20, magic2 "RSC\x05" @0x38. */
function riscvImage(textOffset = 0x200000n): Uint8Array {
  const b = new Uint8Array(0x80000);
  const dv = new DataView(b.buffer);
  dv.setBigUint64(8, textOffset, true);
  dv.setBigUint64(16, 0x100000n, true);
  dv.setUint32(0x20, 2, true);
  dv.setUint32(0x38, 0x05435352, true);
  return b;
}

function dts(blob: Uint8Array): string {
  const f = path.join(tmp, `x${Math.random().toString(36).slice(2)}.dtb`);
  fs.writeFileSync(f, blob);
  const r = spawnSync("dtc", ["-I", "dtb", "-O", "dts", f], { encoding: "utf8" });
  expect(r.stderr).toBe("");
  return r.stdout;
}

async function expectFails(vm: Vm, p: () => Promise<unknown>, code: string, re: RegExp): Promise<GuestImageError> {
  const before = vm.placed();
  try {
    await p();
  } catch (e) {
    expect(e).toBeInstanceOf(GuestImageError);
    expect((e as GuestImageError).code).toBe(code);
    expect((e as GuestImageError).message).toMatch(re);
    expect(vm.placed()).toEqual(before);
    return e as GuestImageError;
  }
  throw new Error(`expected ${code}`);
}

describe("bootLinux default layout", () => {
  it("arm64: kernel at the RAM base + text_offset, DTB at the top (2 MiB aligned), initrd just below; x0 = DTB", async () => {
    const ram = [{ base: 0x40000000, size: 256 * MiB }, { base: 0x80000000, size: 16 * MiB }];
    const vm = await createVm({ ram, files: fromMap({ Image: arm64Image(), initrd: INITRD, dtb: SAMPLE_DTB }), measure: true });
    const b = await bootLinux(vm, { arch: "arm64", kernel: "Image", initrd: "initrd", dtb: "dtb", cmdline: "console=ttyAMA0 quiet" });
    // DTB: highest 2 MiB-aligned slot of RAM = the top 2 MiB of the second region.
    expect(b.dtb!.paddr).toBe(0x80e00000);
    // initrd: highest page below the DTB, above the kernel, in the kernel's 1 GiB window [0x40000000, +32 GiB).
    expect(b.initrd!.paddr).toBe(0x80e00000 - 0x1000);
    expect(b.kernel.paddr).toBe(0x40000000);
    expect(b.kernel.size).toBe(0x300000); // image_size
    expect(b.cpu).toMatchObject({ arch: "arm64", pc: 0x40000000n, regs: { x0: 0x80e00000n, x1: 0n, x2: 0n, x3: 0n } });
    const text = dts(vm.ram.read(b.dtb!.paddr, b.dtb!.size));
    expect(text).toContain('bootargs = "console=ttyAMA0 quiet";');
    expect(text).toContain(`linux,initrd-start = <0x00 0x80dff000>;`);
    expect(text).toContain(`linux,initrd-end = <0x00 ${"0x" + (0x80dff000 + INITRD.length).toString(16)}>;`);
    expect(text).toContain("reg = <0x00 0x40000000 0x00 0x10000000 0x00 0x80000000 0x00 0x1000000>;");
    // 64 KiB of free space for firmware that edits the tree in place.
    expect(b.dtb!.size - new DataView(vm.ram.read(b.dtb!.paddr, 40).buffer).getUint32(36, false)).toBeGreaterThan(0x10000);
    expect(b.placements.map((p) => [p.role, p.format])).toEqual([["kernel", "arm64-image"], ["initrd", "gzip"], ["dtb", "fdt"]]);
    expect(vm.measurements().map((e) => e.name)).toEqual(["Image", "initrd", "dtb"]);
  });

  it("arm64: free space never takes the DTB past 2 MiB (booting.rst); content over 2 MiB is refused before anything is placed", async () => {
    const vm = await createVm({ ram: [{ base: 0x40000000, size: 64 * MiB }], files: fromMap({ Image: arm64Image() }) });
    const b = await bootLinux(vm, { arch: "arm64", kernel: "Image", fdtFreeSpace: 2 * MiB });
    expect(b.dtb!.size).toBe(2 * MiB);
    const blob = vm.ram.read(b.dtb!.paddr, b.dtb!.size);
    expect(new DataView(blob.buffer).getUint32(4, false)).toBe(2 * MiB); // totalsize (devicetree spec §5.2)
    expect(dts(blob)).toContain("chosen"); // dtc reads the whole blob
    // A tree whose content alone is over 2 MiB: a 2 MiB property.
    const big = fdt.emptyFdt();
    fdt.setProp(big.root, "#address-cells", fdt.u32Value(2));
    fdt.setProp(big.root, "#size-cells", fdt.u32Value(2));
    fdt.setProp(big.root, "blob", new Uint8Array(2 * MiB));
    const vm2 = await createVm({ ram: [{ base: 0x40000000, size: 64 * MiB }], files: fromMap({ Image: arm64Image() }) });
    await expectFails(vm2, () => bootLinux(vm2, { arch: "arm64", kernel: "Image", dtb: writeFdt(big) }), "TOO_LARGE", /content is 0x2.* at most 0x200000/);
    expect(vm2.placed()).toEqual([]);
  });

  it("arm: zImage at RAM + 0x8000, initrd and DTB from RAM + min(RAM/2, 128 MiB); r0 = 0, r1 = ~0, r2 = DTB", async () => {
    const z = new Uint8Array(0x2000);
    const dv = new DataView(z.buffer);
    dv.setUint32(0x24, 0x016f2818, true); // zImage magic (head.S)
    dv.setUint32(0x2c, z.length, true); // end (start 0: position independent)
    dv.setUint32(0x30, 0x04030201, true); // little-endian flag
    const vm = await createVm({ ram: [{ base: 0x40000000, size: 64 * MiB }], files: fromMap({ zImage: z, initrd: INITRD }) });
    const b = await bootLinux(vm, { arch: "arm", kernel: "zImage", initrd: "initrd" });
    expect(b.kernel.paddr).toBe(0x40008000);
    expect(b.initrd!.paddr).toBe(0x42000000); // RAM/2 = 32 MiB
    expect(b.dtb!.paddr).toBe(0x42001000);
    expect(b.cpu.regs).toEqual({ r0: 0n, r1: 0xffffffffn, r2: 0x42001000n });
    const text = dts(vm.ram.read(b.dtb!.paddr, b.dtb!.size));
    expect(text).toContain("linux,initrd-start = <0x00 0x42000000>;"); // the generated tree has 2 address cells
    expect(text).not.toContain("bootargs"); // no cmdline given: left alone
  });

  it("riscv64: kernel at RAM + text_offset, fdt at the top, initrd below it; a0 = hart id, a1 = fdt", async () => {
    const vm = await createVm({ ram: [{ base: 0x80000000, size: 64 * MiB }], files: fromMap({ Image: riscvImage(), initrd: INITRD }) });
    const b = await bootLinux(vm, { arch: "riscv64", kernel: "Image", initrd: "initrd", hartId: 3, cmdline: "earlycon" });
    expect(b.kernel.paddr).toBe(0x80200000);
    expect(b.dtb!.paddr).toBe(0x83e00000);
    expect(b.initrd!.paddr).toBe(0x83dff000);
    expect(b.cpu).toMatchObject({ arch: "riscv64", pc: 0x80200000n, regs: { a0: 3n, a1: 0x83e00000n } });
    expect(b.placements.map((p) => p.name)).toEqual(["Image", "initrd", "fdt"]);
  });

  it("x86_64 (Debian bzImage): 64-bit protocol, rsi = zero page; the zero page says where cmdline and initrd are", async () => {
    const vm = await createVm({ ram: [{ base: 0, size: 256 * MiB }], files: fromMap({ bzImage: readFixture("amd64/bzImage"), initrd: INITRD }) });
    const b = await bootLinux(vm, { arch: "x86_64", kernel: "bzImage", initrd: "initrd", cmdline: "console=ttyS0" });
    expect(b.cpu.mode).toBe("long");
    const zp = vm.ram.read(b.zeroPage!.paddr, 4096);
    expect(b.cpu.regs.rsi).toBe(BigInt(b.zeroPage!.paddr));
    // boot.rst: a relocating loader "should attempt to load at" pref_address (u64 at 0x258);
    // the 64-bit entry is the load address + 0x200.
    const pref = new DataView(readFixture("amd64/bzImage").buffer).getBigUint64(0x258, true);
    expect(b.cpu.pc).toBe(pref + 0x200n);
    expect(zp[0x210]).toBe(0xff); // type_of_loader: undefined
    expect(le32(zp, 0x228)).toBe(b.cmdline!.paddr);
    expect(new TextDecoder().decode(vm.ram.read(b.cmdline!.paddr, 14))).toBe("console=ttyS0\0");
    expect(le32(zp, 0x218)).toBe(b.initrd!.paddr);
    expect(le32(zp, 0x21c)).toBe(INITRD.length);
    // as high as possible: the last page of RAM (XLF_CAN_BE_LOADED_ABOVE_4G, so no initrd_addr_max bound)
    expect(b.initrd!.paddr).toBe(256 * MiB - 0x1000);
    expect(zp[0x1e8]).toBe(3); // e820_entries: RAM, the legacy 0x9FC00–1 MiB reserved, RAM
    expect(b.zeroPage!.paddr).toBeLessThan(0x100000);
    const p32 = await bootLinux(await createVm({ ram: [{ base: 0, size: 256 * MiB }], files: fromMap({ bzImage: readFixture("amd64/bzImage") }) }), { arch: "x86", kernel: "bzImage" });
    expect(p32.cpu.mode).toBe("protected");
    expect(p32.cpu.pc).toBe(pref); // 32-bit entry: the load address itself
  });
});

describe("bootLinux checks: nothing is placed when an input is wrong", () => {
  it("kernel of another architecture, bad arch/layout, hostile DTB, missing initrd", async () => {
    const hostile = SAMPLE_DTB.slice();
    new DataView(hostile.buffer).setUint32(8, 0x20, false); // off_dt_struct inside the header
    const vm = await createVm({ ram: [{ base: 0x40000000, size: 64 * MiB }], files: fromMap({ Image: arm64Image(), rv: riscvImage(), bad: hostile }) });
    await expectFails(vm, () => bootLinux(vm, { arch: "riscv64", kernel: "Image" }), "UNSUPPORTED", /arm64-image cannot boot as riscv64/);
    await expectFails(vm, () => bootLinux(vm, { arch: "mips" as never, kernel: "Image" }), "BAD_ARGUMENT", /arch must be one of/);
    await expectFails(vm, () => bootLinux(vm, { arch: "arm64", kernel: "Image", layout: "u-boot" as never }), "BAD_ARGUMENT", /layout/);
    const e = await expectFails(vm, () => bootLinux(vm, { arch: "arm64", kernel: "Image", dtb: "bad" }), "BAD_HEADER", /off_dt_struct/);
    expect(e.image).toBe("bad");
    await expectFails(vm, () => bootLinux(vm, { arch: "arm64", kernel: "Image", initrd: "nope" }), "NOT_FOUND", /nope/);
    await expectFails(vm, () => bootLinux(vm, { arch: "arm64", kernel: "Image", cmdline: "a\0b" }), "BAD_ARGUMENT", /NUL/);
    await expectFails(vm, () => bootLinux(vm, { arch: "arm64", kernel: "Image", firmware: "rv" }), "BAD_ARGUMENT", /firmware is for riscv/);
  });
  it("a failure after a placement names the step and what was placed", async () => {
    const big = new Uint8Array(62 * MiB); // 64 MiB RAM − 3 MiB kernel − 2 MiB DTB slot leaves 59
    const vm = await createVm({ ram: [{ base: 0x40000000, size: 64 * MiB }], files: fromMap({ Image: arm64Image(), initrd: big }) });
    let err: GuestImageError | undefined;
    try {
      await bootLinux(vm, { arch: "arm64", kernel: "Image", initrd: "initrd" });
    } catch (e) {
      err = e as GuestImageError;
    }
    expect(err?.code).toBe("OUT_OF_RAM");
    expect(err?.image).toBe("initrd");
    expect(err?.message).toMatch(/while placing the initrd; already placed: kernel at 0x40000000/);
  });
});

describe("CLI boot", () => {
  const cli = (...args: string[]) => spawnSync(process.execPath, ["dist/cli/main.js", ...args], { cwd: ROOT, encoding: "utf8" });
  it("--json, --measure, --dump-dtb: the QEMU layout for Debian's arm64 Image", () => {
    const out = path.join(tmp, "boot.dtb");
    const r = cli("boot", "--arch", "arm64", "--ram", "0x40000000:256M", "--kernel", fixture("arm64/Image"), "--initrd", fixture("initrd/initrd.cpio.gz"),
      "--dtb", fixture("dtb/tiny-arm.dtb"), "--cmdline", "console=ttyAMA0", "--layout", "qemu", "--json", "--measure", "--dump-dtb", out);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.layout).toBe("qemu");
    expect(j.kernel.load_paddr).toBe("0x40200000");
    expect(j.kernel.format).toBe("arm64-image");
    expect(j.initrd.load_paddr).toBe("0x48000000");
    expect(j.dtb.load_paddr).toBe("0x48200000");
    expect(j.cpu.pc).toBe("0x40200000");
    expect(j.cpu.regs.x0).toBe("0x48200000");
    expect(j.placements.map((p: { role: string }) => p.role)).toEqual(["kernel", "initrd", "dtb"]);
    expect(j.events.map((e: { index: number }) => e.index)).toEqual([0, 1, 2]);
    const initrdSum = spawnSync("sha256sum", [fixture("initrd/initrd.cpio.gz")], { encoding: "utf8" }).stdout.split(" ")[0];
    expect(j.events[1].digest).toBe(initrdSum);
    const d = dts(new Uint8Array(fs.readFileSync(out)));
    expect(d).toContain("linux,initrd-start = <0x48000000>;");
    expect(fs.statSync(out).size).toBe(2 * (fs.statSync(fixture("dtb/tiny-arm.dtb")).size + 10000));
  });
  it("text output, and usage errors exit 2", () => {
    const r = cli("boot", "--arch", "riscv64", "--ram", "0x80000000:64M", "--kernel", path.join(ROOT, "examples/images/linux"));
    expect(r.status).toBe(1); // an aarch64 ELF cannot boot as riscv64
    expect(r.stderr).toMatch(/UNSUPPORTED: .*the ELF kernel is for aarch64 \(e_machine\), not riscv64/);
    for (const args of [["boot", "--ram", "0:1M", "--kernel", "x"], ["boot", "--arch", "arm64", "--kernel", "x"], ["boot", "--arch", "sparc", "--ram", "0:1M", "--kernel", "x"], ["boot", "--arch", "arm64", "--ram", "0:1M"], ["boot", "--arch", "arm64", "--ram", "0:1M", "--kernel", "x", "--layout", "grub"]]) {
      const u = cli(...args);
      expect(u.status, args.join(" ")).toBe(2);
      expect(u.stderr).toContain("guest-image boot --arch");
    }
    const t = cli("boot", "--arch", "arm64", "--ram", "0x40000000:256M", "--kernel", fixture("arm64/Image"), "--measure");
    expect(t.status, t.stderr).toBe(0);
    expect(t.stdout).toMatch(/first instruction: pc 0x40000000, .* x0=0x4fe00000/);
    expect(t.stdout).toMatch(/measured boot/);
  });
});
