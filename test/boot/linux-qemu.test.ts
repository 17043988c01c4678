// bootLinux(layout: "qemu") against QEMU 7.2 itself (Debian 12's qemu-system-*): the same inputs
// on both sides; QEMU runs paused (-S), `info roms` says where each blob went, pmemsave dumps it.
// Ours must give the same addresses, the same kernel and initrd bytes, and a device tree whose
// /chosen and /memory properties equal QEMU's (compared property by property with the tests'
// own FDT walker, test/qemu/fdt-walk.ts: QEMU's trees carry random seeds and unzeroed padding).
// The measured-boot digests of kernel and initrd must equal sha256sum of QEMU's dumps.
//
// Kernels: Debian 12's arm64 Image and armmp zImage, and amd64 bzImage (scripts/fetch-fixtures.sh).
// Debian 12 has no riscv64 kernel, so riscv uses a RISC-V Image synthesized from
// Documentation/arch/riscv/boot-image-header.rst (QEMU does not read its header anyway).
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { bootLinux, createVm, fromPaths, type LinuxBoot, type Vm } from "../../src/node.js";
import { runQemu, romNamed, type RomBlob } from "../helpers/qemu.js";
import { fdtProperties } from "../qemu/fdt-walk.js";
import { expectSameBytes, fixture, hex, le32, le64, ramBytes, readFixture } from "../qemu/fixtures.js";

const MiB = 0x100000;
const dir = mkdtempSync(join(tmpdir(), "guest-image-bootlinux-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sha256sum = (b: Uint8Array) => spawnSync("sha256sum", ["-b", "-"], { input: b, encoding: "utf8" }).stdout.split(" ")[0];

/** /chosen and /memory properties, minus QEMU's random seeds. */
function chosenAndMemory(blob: Uint8Array): Map<string, string> {
  const out = new Map<string, string>();
  for (const [k, v] of fdtProperties(blob)) {
    if (!/^\/(chosen|memory)/.test(k) || /:(rng-seed|kaslr-seed)$/.test(k)) continue;
    out.set(k, v);
  }
  return out;
}

interface Case {
  qemuArch: string;
  machine: string[];
  ram: { base: number; size: number };
  arch: "arm64" | "arm" | "riscv64";
  kernel: string;
  initrd: string;
  dtb?: string;
  firmware?: string;
  cmdline: string;
  /** ROM names QEMU gives: kernel file, initrd file, device tree. */
  dtbRom: "dtb" | "fdt";
}

async function both(c: Case) {
  const args = [...c.machine, "-m", `${c.ram.size / MiB}M`, "-kernel", c.kernel, "-initrd", c.initrd, "-append", c.cmdline, ...(c.dtb ? ["-dtb", c.dtb] : [])];
  const q = await runQemu({ arch: c.qemuArch, args }, async (qm) => {
    const roms = await qm.roms();
    const k = romNamed(roms, c.kernel.split("/").pop()!);
    const i = romNamed(roms, c.initrd.split("/").pop()!);
    const d = romNamed(roms, c.dtbRom);
    return {
      roms,
      kernel: { addr: k.addr, size: k.size, bytes: await qm.read(k.addr, k.size) },
      initrd: { addr: i.addr, size: i.size, bytes: await qm.read(i.addr, i.size) },
      dtb: { addr: d.addr, size: d.size, bytes: await qm.read(d.addr, d.size) },
      finfo: roms.some((r) => r.name === "mrom.finfo") ? await qm.read(romNamed(roms, "mrom.finfo").addr, 48) : undefined,
    };
  });
  const vm = await createVm({ ram: [c.ram], files: fromPaths(), measure: true });
  const b = await bootLinux(vm, { arch: c.arch, kernel: c.kernel, initrd: c.initrd, dtb: c.dtb, cmdline: c.cmdline, layout: "qemu", firmware: c.firmware });
  return { q, vm, b };
}

function compare(q: Awaited<ReturnType<typeof both>>["q"], vm: Vm, b: LinuxBoot, userDtb: boolean) {
  const role = (r: string) => b.placements.find((p) => p.role === r)!;
  // Addresses and sizes as QEMU's `info roms` lists them.
  expect(hex(role("kernel").paddr), "kernel address").toBe(hex(q.kernel.addr));
  expect(hex(role("initrd").paddr), "initrd address").toBe(hex(q.initrd.addr));
  expect(role("initrd").size).toBe(q.initrd.size);
  expect(hex(role("dtb").paddr), "device tree address").toBe(hex(q.dtb.addr));
  expect(hex(role("dtb").size), "device tree blob size").toBe(hex(q.dtb.size));
  // The same kernel and initrd bytes.
  expectSameBytes(ramBytes(vm, q.kernel.addr, q.kernel.size), q.kernel.bytes, "kernel", Number(q.kernel.addr));
  expectSameBytes(ramBytes(vm, q.initrd.addr, q.initrd.size), q.initrd.bytes, "initrd", Number(q.initrd.addr));
  // The device tree's /chosen and /memory say the same.
  const ours = chosenAndMemory(ramBytes(vm, b.dtb!.paddr, b.dtb!.size));
  const theirs = chosenAndMemory(q.dtb.bytes);
  if (!userDtb) {
    // QEMU's generated tree describes its whole machine (stdout-path names its UART); ours, made
    // without a machine description, holds what bootLinux is responsible for, which must agree.
    for (const k of [...theirs.keys()]) if (!/:(bootargs|linux,initrd-start|linux,initrd-end|reg|device_type)$|^\/(chosen|memory@[0-9a-f]+)$/.test(k)) theirs.delete(k);
  }
  expect(Object.fromEntries(ours)).toEqual(Object.fromEntries(theirs));
  expect(ours.get("/chosen:linux,initrd-start"), "initrd-start present").toBeDefined();
  // Measured boot: the initrd digest is sha256sum of what QEMU placed; the kernel's covers QEMU's blob
  // plus the BSS we zero (QEMU's RAM past its blob is zero too).
  const ev = vm.measurements();
  const kev = ev.find((e) => e.name === role("kernel").name)!;
  expect(kev.digest).toBe(sha256sum(ramBytes(vm, kev.paddr, kev.size)));
  if (kev.size === q.kernel.size) expect(kev.digest).toBe(sha256sum(q.kernel.bytes));
  expect(ev.find((e) => e.name === role("initrd").name)!.digest).toBe(sha256sum(q.initrd.bytes));
  expect(ev.map((e) => e.paddr)).toEqual(b.placements.map((p) => p.paddr));
}

describe.concurrent("bootLinux layout qemu = QEMU 7.2", () => {
  const ARM64: Omit<Case, "dtb"> = {
    qemuArch: "aarch64", machine: ["-M", "virt", "-cpu", "cortex-a57"], ram: { base: 0x4000_0000, size: 256 * MiB }, arch: "arm64",
    kernel: "", initrd: "", cmdline: "console=ttyAMA0 guest-image", dtbRom: "dtb",
  };
  for (const withDtb of [true, false]) {
    it(`arm64: Debian Image + initrd${withDtb ? " + user dtb" : " (generated tree)"}`, async () => {
      const { q, vm, b } = await both({ ...ARM64, kernel: fixture("arm64/Image"), initrd: fixture("initrd/initrd.cpio.gz"), dtb: withDtb ? fixture("dtb/tiny-arm.dtb") : undefined });
      expect(hex(q.kernel.addr)).toBe("0x40200000"); // qemu-reference.md
      expect(hex(q.initrd.addr)).toBe("0x48000000");
      expect(hex(q.dtb.addr)).toBe("0x48200000");
      compare(q, vm, b, withDtb);
      expect(b.cpu).toEqual({ arch: "arm64", mode: b.cpu.mode, pc: 0x40200000n, regs: { x0: 0x48200000n, x1: 0n, x2: 0n, x3: 0n } });
    });
  }
  it("arm64: 128 MiB of RAM (initrd at RAM/2)", async () => {
    const { q, vm, b } = await both({ ...ARM64, ram: { base: 0x4000_0000, size: 128 * MiB }, kernel: fixture("arm64/Image"), initrd: fixture("initrd/initrd.cpio"), dtb: fixture("dtb/tiny-arm.dtb") });
    expect(hex(q.initrd.addr)).toBe("0x44000000");
    compare(q, vm, b, true);
  });
  for (const withDtb of [true, false]) {
    it(`arm: Debian armmp zImage + initrd${withDtb ? " + user dtb" : " (generated tree)"}`, async () => {
      const { q, vm, b } = await both({
        qemuArch: "arm", machine: ["-M", "virt"], ram: { base: 0x4000_0000, size: 256 * MiB }, arch: "arm",
        kernel: fixture("armhf/zImage"), initrd: fixture("initrd/initrd.cpio.gz"), dtb: withDtb ? fixture("dtb/tiny-arm.dtb") : undefined,
        cmdline: "console=ttyAMA0", dtbRom: "dtb",
      });
      expect(hex(q.kernel.addr)).toBe("0x40010000");
      expect(hex(q.dtb.addr)).toBe("0x48001000"); // after the initrd, 4 KiB aligned
      compare(q, vm, b, withDtb);
      expect(b.cpu.pc).toBe(0x40010000n);
      expect(b.cpu.regs).toEqual({ r0: 0n, r1: 0xffffffffn, r2: 0x48001000n });
    });
  }

  const OPENSBI = "/usr/share/qemu/opensbi-riscv64-generic-fw_dynamic.bin";
  for (const [what, firmware, withDtb] of [["with QEMU's OpenSBI as firmware", OPENSBI, false], ["without firmware", undefined, false], ["user dtb", undefined, true]] as const) {
    it(`riscv64: synthesized Image + initrd, ${what}`, async () => {
      expect(existsSync(OPENSBI), `${OPENSBI} (qemu-system-data)`).toBe(true);
      const image = riscvImage();
      const kpath = join(dir, "Image");
      writeFileSync(kpath, image);
      const { q, vm, b } = await both({
        qemuArch: "riscv64", machine: ["-M", "virt"], ram: { base: 0x8000_0000, size: 256 * MiB }, arch: "riscv64",
        kernel: kpath, initrd: fixture("initrd/initrd.cpio.gz"), firmware, dtb: withDtb ? fixture("dtb/tiny-arm.dtb") : undefined,
        cmdline: "console=ttyS0", dtbRom: "fdt",
      });
      expect(hex(q.kernel.addr)).toBe("0x80200000");
      expect(hex(q.initrd.addr)).toBe("0x88200000");
      expect(hex(q.dtb.addr)).toBe("0x8fe00000");
      compare(q, vm, b, withDtb);
      if (firmware) {
        const fw = b.placements.find((p) => p.role === "firmware")!;
        const qfw = romNamed(q.roms, OPENSBI.split("/").pop()!);
        expect([hex(fw.paddr), fw.size]).toEqual([hex(qfw.addr), qfw.size]);
        // Our fw_dynamic_info equals QEMU's mrom.finfo word for word.
        const info = b.placements.find((p) => p.role === "fw_dynamic_info")!;
        expectSameBytes(ramBytes(vm, info.paddr, 48), q.finfo!, "fw_dynamic_info");
        expect(b.cpu).toEqual({ arch: "riscv64", mode: "m", pc: 0x80000000n, regs: { a0: 0n, a1: 0x8fe00000n, a2: BigInt(info.paddr) } });
        expect(le64(q.finfo!, 16)).toBe(0x80200000n); // next_addr
      } else {
        expect(b.cpu.pc).toBe(0x80200000n);
        expect(b.cpu.regs).toEqual({ a0: 0n, a1: 0x8fe00000n });
      }
    });
  }

  it("x86_64: Debian bzImage + initrd: the setup header fields QEMU writes, and the same placements", async () => {
    const CMD = "console=ttyS0 guest-image";
    const file = readFixture("amd64/bzImage");
    const setupSize = ((file[0x1f1] || 4) + 1) * 512;
    const headerEnd = 0x202 + file[0x201];
    const q = await runQemu(
      { arch: "x86_64", gdb: true, args: ["-M", "pc", "-m", "256M", "-kernel", fixture("amd64/bzImage"), "-initrd", fixture("initrd/initrd.cpio.gz"), "-append", CMD] },
      async (qm) => {
        await qm.runTo(0x10200); // the real-mode setup entry, once linuxboot_dma has placed everything
        const setup = await qm.read(0x10000, setupSize);
        return { setup, cmdline: await qm.read(0x20000, CMD.length + 1), initrd: await qm.read(le32(setup, 0x218), le32(setup, 0x21c)) };
      },
    );
    const vm = await createVm({ ram: [{ base: 0, size: 256 * MiB }], files: fromPaths(), measure: true });
    const b = await bootLinux(vm, { arch: "x86_64", kernel: fixture("amd64/bzImage"), initrd: fixture("initrd/initrd.cpio.gz"), cmdline: CMD, layout: "qemu" });
    const setup = ramBytes(vm, 0x10000, setupSize);
    const f = (o: number, n: 1 | 2 | 4) => (n === 1 ? (b: Uint8Array) => b[o] : n === 2 ? (b: Uint8Array) => b[o] | (b[o + 1] << 8) : (b: Uint8Array) => le32(b, o));
    const fields: Array<[string, number, 1 | 2 | 4]> = [
      ["type_of_loader", 0x210, 1], ["loadflags", 0x211, 1], ["ramdisk_image", 0x218, 4], ["ramdisk_size", 0x21c, 4],
      ["heap_end_ptr", 0x224, 2], ["cmd_line_ptr", 0x228, 4],
    ];
    for (const [name, o, n] of fields) expect(hex(f(o, n)(setup)), name).toBe(hex(f(o, n)(q.setup)));
    expect(setup[0x210]).toBe(0xb0);
    // The whole real-mode part, header included, equals QEMU's.
    expectSameBytes(setup.subarray(0, headerEnd), q.setup.subarray(0, headerEnd), "setup (through the header)", 0x10000);
    expectSameBytes(ramBytes(vm, 0x20000, CMD.length + 1), q.cmdline, "command line", 0x20000);
    const initrd = b.initrd!;
    expectSameBytes(ramBytes(vm, initrd.paddr, initrd.size), q.initrd, "initrd", initrd.paddr);
    // linuxboot_dma's hand-off (the rest of the x86 state is checked by booting: test/realboot/x86.test.ts).
    expect(b.cpu).toMatchObject({ arch: "x86_64", mode: "real", pc: 0x10200n });
    expect(b.cpu.regs).toMatchObject({ cs: 0x1020n, ip: 0n, ds: 0x1000n, es: 0x1000n, fs: 0x1000n, gs: 0x1000n, ss: 0x1000n, sp: 0xfff0n });
    expect(vm.measurements().find((e) => e.name.endsWith("initrd.cpio.gz"))!.digest).toBe(sha256sum(q.initrd));
  });
});

/** A RISC-V Image: boot-image-header.rst fields (text_offset 0x200000, as Linux writes), then a deterministic payload. */
function riscvImage(): Uint8Array {
  const b = new Uint8Array(256 * 1024);
  const dv = new DataView(b.buffer);
  dv.setUint32(0x00, 0x0000006f, true); // code0: j .
  dv.setBigUint64(0x08, 0x200000n, true); // text_offset
  dv.setBigUint64(0x10, BigInt(b.length + 0x10000), true); // image_size (with BSS)
  dv.setUint32(0x20, 0x2, true); // version 0.2
  dv.setBigUint64(0x30, 0x5643534952n, true); // "RISCV"
  dv.setUint32(0x38, 0x05435352, true); // magic2 "RSC\x05"
  for (let i = 64; i < b.length; i++) b[i] = (i * 2654435761) >>> 24;
  return b;
}

// unused-type guard
export type { RomBlob };
