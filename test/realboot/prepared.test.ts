/**
 * Prepared boots and resets, booted for real (QEMU 7.2, no -kernel; the harnesses of arm64.test.ts
 * and x86.test.ts): an instance of a prepareBoot template reaches the userspace marker; so does a
 * VM whose images the "guest" overwrote, after vm.reset(). Negative control: the same overwritten
 * VM without the reset never reaches the marker.
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createVm, fromMap, prepareBoot, type Vm } from "../../src/node.js";
import type { X86CpuState } from "../../src/index.js";
import { readFixture } from "../qemu/fixtures.js";
import { markerInitrd } from "./initrd.js";
import { bootQemu, machineDtb, MACHINES } from "./qemu-boot.js";
import { bootX86 } from "./x86-qemu.js";

const M = MACHINES.arm64;
const MiB = 0x100000;
const BOOT_MS = 60_000;

/** The guest at work: every placed image overwritten (with a pattern a kernel cannot survive). */
function scribble(vm: Vm): void {
  for (const p of vm.placed()) vm.ram.view(p.paddr, p.size).fill(0xa5);
}

const lib = (vm: Vm, placements: Array<{ role: string; paddr: number; size: number }>) => ({ read: (paddr: number, size: number) => vm.ram.read(paddr, size), placements });

describe("arm64: a prepared instance and a reset VM boot to userspace", { timeout: 400_000 }, () => {
  it("instance boots; after the guest overwrote it, reset() boots again; without reset, no marker", async () => {
    const marker = `arm64-prepared-${randomUUID()}`;
    const t = await prepareBoot({
      arch: "arm64", kernel: "k", initrd: "i", dtb: machineDtb(M), cmdline: `console=${M.console}`,
      files: fromMap({ k: readFixture("arm64/Image"), i: markerInitrd("arm64", { marker }) }), ram: [M.ram],
    });
    const vm = await createVm({ ram: [M.ram] });
    const b = await t.instantiate(vm);
    const first = await bootQemu({ machine: M, ...lib(vm, b.placements), cpu: b.cpu, marker, timeoutMs: BOOT_MS });
    expect(first.found, `${first.command}\n${first.serial.slice(-3000)}`).toBe(true);

    scribble(vm);
    const dead = await bootQemu({ machine: M, ...lib(vm, b.placements), cpu: b.cpu, marker, timeoutMs: Math.max(15_000, 2 * first.ms) });
    expect(dead.found, "overwritten images must not boot (negative control)").toBe(false);

    const r = await vm.reset({ zero: true });
    const again = await bootQemu({ machine: M, ...lib(vm, b.placements), cpu: r.cpu!, marker, timeoutMs: BOOT_MS });
    expect(again.found, `${again.command}\n${again.serial.slice(-3000)}`).toBe(true);
  });
});

describe("x86_64 direct boot: a prepared instance and a reset VM boot to userspace", { timeout: 600_000 }, () => {
  it("instance of a direct boot (xz payload decompressed on the host, 64-bit entry) boots; reset after overwrite boots again", async () => {
    const marker = "GUEST-IMAGE-X86-USERSPACE-OK";
    const ram = [{ base: 0, size: 256 * MiB }];
    const t = await prepareBoot({
      arch: "x86_64", kernel: "bz", initrd: "i", cmdline: "console=ttyS0 earlyprintk=serial,ttyS0 panic=-1",
      files: fromMap({ bz: readFixture("amd64/bzImage"), i: markerInitrd("amd64", { marker }) }), ram, x86Direct: true,
    });
    expect(t.images.find((i) => i.name === "bz")?.format).toBe("vmlinux (direct)");
    const vm = await createVm({ ram });
    const b = await t.instantiate(vm);
    const pieces = () => vm.placed().map((p) => ({ paddr: p.paddr, bytes: vm.ram.read(p.paddr, p.size) }));
    const first = await bootX86({ cpu: b.cpu as X86CpuState, pieces: pieces(), marker });
    expect(first.marker, first.serial.slice(-3000)).toBe(true);
    scribble(vm);
    const r = await vm.reset();
    const again = await bootX86({ cpu: r.cpu as X86CpuState, pieces: pieces(), marker });
    expect(again.marker, again.serial.slice(-3000)).toBe(true);
  });
});
