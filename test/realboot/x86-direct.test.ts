// Proof by booting (issue 13 §2): Debian's kernels reach a userspace marker in QEMU 7.2 (TCG,
// no -kernel) after DIRECT boot — the library decompressed the bzImage's xz payload on the host,
// laid out the vmlinux's segments and entered startup_64 (amd64) or startup_32 (686) itself. The
// bzImage's own decompressor never runs: with earlyprintk on, it would print "Decompressing
// Linux" on the serial port (arch/x86/boot/compressed/misc.c), which the normal path shows and
// these boots must not. Negative control: the same hand-off entering 4 KiB past startup_64.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { bootLinux, createVm, fromMap } from "../../src/node.js";
import type { X86CpuState } from "../../src/boot/cpu-x86.js";
import { fixture, readFixture } from "../qemu/fixtures.js";
import { markerInitrd } from "./initrd.js";
import { bootX86, piecesFromDump, type BootResult, type CpuLike } from "./x86-qemu.js";

const MiB = 1024 * 1024;
const MARKER = "GUEST-IMAGE-X86-DIRECT-OK";
const CMDLINE = "console=ttyS0 earlyprintk=serial,ttyS0 panic=-1";
const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const work = mkdtempSync(join(tmpdir(), "gi-x86-direct-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

async function directBoot(opts: { arch: "x86_64" | "x86"; fixture: string; initrdArch: "amd64" | "i386"; at?: number }) {
  const vm = await createVm({
    ram: [{ base: 0, size: 256 * MiB }],
    files: fromMap({ bzImage: readFixture(opts.fixture), initrd: markerInitrd(opts.initrdArch, { marker: MARKER }) }),
  });
  const b = await bootLinux(vm, { arch: opts.arch, kernel: "bzImage", initrd: "initrd", cmdline: CMDLINE, x86Direct: opts.at === undefined ? true : { at: opts.at } });
  const pieces = vm.placed().map((p) => ({ paddr: p.paddr, bytes: vm.ram.read(p.paddr, p.size) }));
  return { cpu: b.cpu as X86CpuState, pieces, boot: b };
}

function expectMarker(r: BootResult) {
  if (!r.marker) throw new Error(`no marker after ${r.seconds.toFixed(1)} s; serial tail:\n${r.serial.slice(-3000)}`);
  expect(r.marker).toBe(true);
}

describe.concurrent("bzImage direct boot reaches userspace in QEMU (no -kernel, no bzImage decompressor)", () => {
  it("Debian amd64: xz payload decompressed by the library, vmlinux at 16 MiB, 64-bit entry at startup_64", async () => {
    const { cpu, pieces, boot } = await directBoot({ arch: "x86_64", fixture: "amd64/bzImage", initrdArch: "amd64" });
    expect(cpu.mode).toBe("long");
    const k = boot.placements.find((p) => p.role === "kernel")!;
    expect(k.format).toBe("vmlinux (direct)");
    // readelf -h of the decompressed payload: Entry point address 0x1000000 (phys_startup_64).
    expect(cpu.pc).toBe(0x1000000n);
    const r = await bootX86({ cpu, pieces, marker: MARKER, timeoutMs: 200_000 });
    expectMarker(r);
    expect(r.serial).not.toMatch(/Decompressing Linux/);
    expect(r.serial).toMatch(/Linux version 6\./);
  }, 600_000);

  it("Debian 686: xz payload, vmlinux at its link address, 32-bit entry at startup_32", async () => {
    const { cpu, pieces } = await directBoot({ arch: "x86", fixture: "i386/bzImage", initrdArch: "i386" });
    expect(cpu.mode).toBe("protected");
    expect(cpu.pc).toBe(0x1000000n);
    const r = await bootX86({ cpu, pieces, marker: MARKER, timeoutMs: 200_000 });
    expectMarker(r);
    expect(r.serial).not.toMatch(/Decompressing Linux/);
  }, 600_000);

  it("Debian 686 moved to 32 MiB: the 32-bit relocations applied by the library make it run there", async () => {
    const { cpu, pieces, boot } = await directBoot({ arch: "x86", fixture: "i386/bzImage", initrdArch: "i386", at: 32 * MiB });
    expect(cpu.pc).toBe(BigInt(32 * MiB));
    expect(boot.placements.find((p) => p.role === "kernel")!.paddr).toBe(32 * MiB);
    const r = await bootX86({ cpu, pieces, marker: MARKER, timeoutMs: 200_000 });
    expectMarker(r);
  }, 600_000);

  it("negative control: the 686 kernel laid out for its link address but run at 32 MiB (no relocations) never reaches the marker", async () => {
    const { cpu, pieces, boot } = await directBoot({ arch: "x86", fixture: "i386/bzImage", initrdArch: "i386" });
    const k = boot.placements.find((p) => p.role === "kernel")!;
    const shift = 32 * MiB - k.paddr;
    expect(shift).toBe(16 * MiB);
    // Only the kernel moves (the rest of the hand-off is unchanged): exactly what skipping relocation would give.
    const moved = pieces.map((p) => (p.paddr === k.paddr ? { paddr: p.paddr + shift, bytes: p.bytes } : p));
    const wrong = { ...cpu, rip: cpu.rip + BigInt(shift), pc: cpu.pc + BigInt(shift) };
    const r = await bootX86({ cpu: wrong, pieces: moved, marker: MARKER, timeoutMs: 40_000 });
    expect(r.marker).toBe(false);
  }, 600_000);

  it("Debian amd64 moved to 32 MiB: startup_64 finds its physical offset itself (no relocations on x86_64)", async () => {
    const { cpu, pieces } = await directBoot({ arch: "x86_64", fixture: "amd64/bzImage", initrdArch: "amd64", at: 32 * MiB });
    expect(cpu.pc).toBe(BigInt(32 * MiB));
    const r = await bootX86({ cpu, pieces, marker: MARKER, timeoutMs: 200_000 });
    expectMarker(r);
  }, 600_000);

  it("CLI: guest-image boot --direct (amd64), RAM from --dump-ram and the cpu from --json", async () => {
    const initrdPath = join(work, "initrd.cpio");
    writeFileSync(initrdPath, markerInitrd("amd64", { marker: MARKER }));
    const dump = join(work, "direct.ram");
    const r = spawnSync(process.execPath, [join(ROOT, "dist/cli/main.js"), "boot", "--arch", "x86_64", "--kernel", fixture("amd64/bzImage"), "--initrd", initrdPath,
      "--cmdline", CMDLINE, "--ram", "0:256M", "--direct", "--dump-ram", dump, "--json"], { encoding: "utf8", maxBuffer: 64 * MiB });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout);
    const pieces = piecesFromDump(new Uint8Array(readFileSync(dump)), j.ram, j.placed);
    rmSync(dump);
    const cpu = j.cpu as CpuLike;
    expect(cpu.mode).toBe("long");
    expect(BigInt(cpu.pc)).toBe(0x1000000n);
    const b = await bootX86({ cpu, pieces, marker: MARKER, timeoutMs: 200_000 });
    expectMarker(b);
    expect(b.serial).not.toMatch(/Decompressing Linux/);
  }, 600_000);

  it("negative control: the amd64 direct hand-off entering 4 KiB past startup_64 never reaches the marker", async () => {
    const { cpu, pieces } = await directBoot({ arch: "x86_64", fixture: "amd64/bzImage", initrdArch: "amd64" });
    const wrong = { ...cpu, rip: cpu.rip + 0x1000n, pc: cpu.pc + 0x1000n };
    const r = await bootX86({ cpu: wrong, pieces, marker: MARKER, timeoutMs: 40_000 });
    expect(r.marker).toBe(false);
  }, 600_000);
});
