// Proof by booting (issue 14 §2): Debian's amd64 kernel (CONFIG_PVH=y) reaches a userspace marker
// in QEMU 7.2 (TCG, no -kernel, no firmware) entered by PVH from our RAM: the library decompressed
// the bzImage's payload, found XEN_ELFNOTE_PHYS32_ENTRY in the vmlinux's notes, built
// hvm_start_info and handed over 32-bit protected mode with EBX = start info.
// Oracles: readelf -n for the note; the kernel's own dmesg for what it read from the start info
// (the command line, and the memory map printed as "BIOS-e820" lines); QEMU's own PVH boot
// (`-kernel vmlinux`, QEMU 7.2's x86_load_linux → load_elfboot) of the same vmlinux as control.
// Negative control: EBX pointing 8 bytes past the start info (its magic is then wrong, and
// xen_prepare_pvh stops).
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bootLinux, createVm, fromMap } from "../../src/node.js";
import type { X86CpuState } from "../../src/boot/cpu-x86.js";
import { prepareX86Direct } from "../../src/boot/x86-direct.js";
import { fixture, readFixture } from "../qemu/fixtures.js";
import { markerInitrd } from "./initrd.js";
import { bootX86, piecesFromDump, qemuKernelBoot, type BootResult, type CpuLike } from "./x86-qemu.js";

const MiB = 1024 * 1024;
const MARKER = "GUEST-IMAGE-PVH-OK";
// No earlyprintk: the console replays the whole log once registered, and under load the early
// serial writes can lose bytes.
const CMDLINE = "console=ttyS0 panic=-1 guest-image-pvh=1";
const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const work = mkdtempSync(join(tmpdir(), "gi-pvh-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

let vmlinuxPath = "";
let vmlinux: Uint8Array;
let initrd: Uint8Array;
beforeAll(async () => {
  // The vmlinux inside the bzImage, decompressed by the library's direct-boot code.
  const vm = await createVm({ ram: [{ base: 0, size: 256 * MiB }], files: fromMap({ bzImage: readFixture("amd64/bzImage") }) });
  vmlinux = (await prepareX86Direct(vm, "bzImage", { arch: "x86_64" })).vmlinux;
  vmlinuxPath = join(work, "vmlinux");
  writeFileSync(vmlinuxPath, vmlinux);
  initrd = markerInitrd("amd64", { marker: MARKER });
  writeFileSync(join(work, "initrd"), initrd);
}, 120_000);

async function pvhBoot(kernel: "bzImage" | "vmlinux") {
  const vm = await createVm({
    ram: [{ base: 0, size: 256 * MiB }],
    files: fromMap({ bzImage: readFixture("amd64/bzImage"), vmlinux, initrd }),
  });
  const b = await bootLinux(vm, { arch: "x86_64", kernel, initrd: "initrd", cmdline: CMDLINE, x86Entry: "pvh" });
  const pieces = vm.placed().map((p) => ({ paddr: p.paddr, bytes: vm.ram.read(p.paddr, p.size) }));
  return { cpu: b.cpu as X86CpuState, pieces, boot: b };
}

/** readelf -n: the descriptor bytes of the Xen note of type 0x12 (XEN_ELFNOTE_PHYS32_ENTRY). */
function readelfPvhEntry(path: string): bigint {
  const r = spawnSync("readelf", ["-nW", path], { encoding: "utf8", maxBuffer: 64 * MiB });
  expect(r.status).toBe(0);
  const m = /^\s*Xen\s+0x0000000[48]\s+Unknown note type: \(0x00000012\)\s+description data: ((?:[0-9a-f]{2} ?)+)/m.exec(r.stdout);
  if (!m) throw new Error(`readelf -n shows no Xen note of type 0x12:\n${r.stdout}`);
  const bytes = m[1].trim().split(" ");
  return BigInt(`0x${bytes.reverse().join("")}`);
}

/** "BIOS-e820: [mem 0x…-0x…] usable" lines: [start, end] inclusive and the type word. */
function e820Lines(serial: string): string[] {
  return [...serial.matchAll(/BIOS-e820: \[mem (0x[0-9a-f]+)-(0x[0-9a-f]+)\] (\w+)/g)].map((m) => `${BigInt(m[1]).toString(16)}-${BigInt(m[2]).toString(16)} ${m[3]}`);
}

function expectMarker(r: BootResult | { marker: boolean; serial: string }) {
  if (!r.marker) throw new Error(`no marker; serial tail:\n${r.serial.slice(-3000)}`);
  expect(r.marker).toBe(true);
}

describe.concurrent("PVH boot reaches userspace in QEMU from our RAM (no -kernel, no firmware)", () => {
  it("the entry is readelf's XEN_ELFNOTE_PHYS32_ENTRY; the state is 32-bit protected mode, paging off, EBX = hvm_start_info", async () => {
    const { cpu, boot } = await pvhBoot("bzImage");
    const want = readelfPvhEntry(vmlinuxPath);
    expect(cpu.pc).toBe(want);
    expect(cpu.rip).toBe(want);
    expect(cpu.mode).toBe("protected");
    expect(cpu.cr0 & 0x8000_0001n).toBe(1n); // PE set, PG clear
    expect(cpu.cr4).toBe(0n);
    expect(cpu.rflags & 0x2_0300n).toBe(0n); // VM, IF, TF clear
    expect(cpu.segments.tr.limit).toBe(0x67);
    expect(cpu.regs.ebx).toBe(BigInt(boot.pvh!.startInfo.paddr));
    const si = boot.placements.find((p) => p.role === "start_info")!;
    expect(si.paddr).toBe(boot.pvh!.startInfo.paddr);
  }, 120_000);

  it("Debian amd64 bzImage: vmlinux decompressed by the library, entered at its PVH entry; the kernel reads our command line and memory map", async () => {
    const { cpu, pieces } = await pvhBoot("bzImage");
    const r = await bootX86({ cpu, pieces, marker: MARKER, timeoutMs: 200_000, serialFile: true });
    expectMarker(r);
    expect(r.serial).toContain(`Kernel command line: ${CMDLINE}`);
    // Our memmap (x86-e820.ts for 256 MiB at 0: usable below the legacy hole, reserved hole, usable above).
    // Linux's init_pvh_bootparams adds the ISA range 0xa0000–0xfffff reserved itself.
    const map = e820Lines(r.serial);
    expect(map).toContain("0-9fbff usable");
    expect(map).toContain("100000-fffffff usable");
  }, 600_000);

  it("the ELF vmlinux itself as the kernel file: same entry, same boot", async () => {
    const { cpu, pieces, boot } = await pvhBoot("vmlinux");
    expect(cpu.pc).toBe(readelfPvhEntry(vmlinuxPath));
    expect(boot.kernel.format).toBe("elf");
    const r = await bootX86({ cpu, pieces, marker: MARKER, timeoutMs: 200_000, serialFile: true });
    expectMarker(r);
  }, 600_000);

  it("control: QEMU's own PVH boot (-kernel vmlinux) of the same file reaches the marker", async () => {
    const r = await qemuKernelBoot({ kernel: vmlinuxPath, initrd: join(work, "initrd"), cmdline: CMDLINE, marker: MARKER, timeoutMs: 300_000 });
    expectMarker(r);
    // QEMU 7.2 refuses an ELF without the note ("Error loading uncompressed kernel without PVH ELF Note"), so this was a PVH entry.
  }, 600_000);

  it("CLI: guest-image boot --x86-entry pvh, RAM from --dump-ram and the cpu from --json", async () => {
    const dump = join(work, "pvh.ram");
    const r = spawnSync(process.execPath, [join(ROOT, "dist/cli/main.js"), "boot", "--arch", "x86_64", "--kernel", fixture("amd64/bzImage"), "--initrd", join(work, "initrd"),
      "--cmdline", CMDLINE, "--ram", "0:256M", "--x86-entry", "pvh", "--dump-ram", dump, "--json"], { encoding: "utf8", maxBuffer: 64 * MiB });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout);
    const pieces = piecesFromDump(new Uint8Array(readFileSync(dump)), j.ram, j.placed);
    rmSync(dump);
    const cpu = j.cpu as CpuLike;
    expect(BigInt(cpu.pc)).toBe(readelfPvhEntry(vmlinuxPath));
    expect(BigInt(cpu.regs.ebx)).toBe(BigInt(j.pvh.start_info.load_paddr));
    const b = await bootX86({ cpu, pieces, marker: MARKER, timeoutMs: 200_000, serialFile: true });
    expectMarker(b);
  }, 600_000);

  it("negative control: EBX 8 bytes past hvm_start_info never reaches the marker", async () => {
    const { cpu, pieces } = await pvhBoot("bzImage");
    const wrong = { ...cpu, regs: { ...cpu.regs, ebx: cpu.regs.ebx + 8n } };
    const r = await bootX86({ cpu: wrong, pieces, marker: MARKER, timeoutMs: 40_000, serialFile: true });
    expect(r.marker).toBe(false);
  }, 600_000);
});
