/**
 * Debian bookworm's armmp zImage boots to a userspace marker in QEMU 7.2 (virt, cortex-a15,
 * 256 MiB, TCG) from guest-image's RAM and CPU state alone, QEMU without -kernel/-initrd/-dtb
 * (qemu-boot.ts). On arm both layouts put the zImage inside QEMU's own 1 MiB dtb blob at the
 * RAM base (booting.rst's RAM + 0x8000, QEMU's RAM + 0x10000), so that window always goes in
 * through the gdbstub; the rest through the generic loader.
 *
 *   CLI, default layout, --stub   pieces + PC from the loader (the stub sets r0–r2)
 *   library, qemu layout          r0–r2, CPSR and PC from boot.cpu through the gdbstub
 *   negative control              r2 one page past the DTB: no marker
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { fixture } from "../qemu/fixtures.js";
import { markerInitrd } from "./initrd.js";
import { bootQemu, inTmp, machineDtb, MACHINES, prepareCli, prepareLib, type PrepareOptions } from "./qemu-boot.js";

const M = MACHINES.arm;
const BOOT_MS = 60_000;
const TEST_MS = 150_000;

function options(marker: string, o: Partial<PrepareOptions>): PrepareOptions {
  return {
    arch: "arm", machine: M, kernel: "armhf/zImage", initrd: markerInitrd("armhf", { marker }), dtb: machineDtb(M),
    cmdline: `console=${M.console}`, layout: "default", ...o,
  };
}

describe("arm real boot (QEMU virt, no -kernel)", { timeout: TEST_MS }, () => {
  let firstMs = 0;

  it("CLI, default layout, --stub: pieces and the PC; the stub sets r0, r1, r2", async () => {
    const marker = `arm-cli-stub-${randomUUID()}`;
    await inTmp(async (dir) => {
      const p = prepareCli(options(marker, { stub: true }), fixture("armhf/zImage"), dir);
      expect(p.json!["cpu"]).toMatchObject({ arch: "arm", cpuMode: "svc", cpsr: "0x1d3", isa: "arm", target: "0x40008000", regs: { r0: "0x0", r1: "0xffffffff" } });
      const r = await bootQemu({ machine: M, ...p, marker, timeoutMs: BOOT_MS });
      expect(r.found, `${r.command}\n${r.gdbScript}\n${r.serial.slice(-3000)}`).toBe(true);
      expect(r.gdbScript).not.toMatch(/set \$r/); // registers come from the stub, not from gdb
      firstMs = r.ms;
    });
  });

  it("library, qemu layout, no stub: r0–r2, CPSR and PC from boot.cpu", async () => {
    const marker = `arm-lib-${randomUUID()}`;
    const p = await prepareLib(options(marker, { layout: "qemu" }));
    expect(p.cpu.pc).toBe(0x40010000n); // QEMU's KERNEL_LOAD_ADDR
    const r = await bootQemu({ machine: M, ...p, marker, timeoutMs: BOOT_MS });
    expect(r.found, `${r.command}\n${r.gdbScript}\n${r.serial.slice(-3000)}`).toBe(true);
    firstMs = Math.max(firstMs, r.ms);
  });

  it("negative control: r2 not pointing at the DTB never reaches the marker", async () => {
    const marker = `arm-neg-${randomUUID()}`;
    const p = await prepareLib(options(marker, { layout: "qemu" }));
    const regs = { ...p.cpu.regs, r2: BigInt(p.cpu.regs["r2"]) + 0x1000n };
    const r = await bootQemu({ machine: M, ...p, cpu: { ...p.cpu, regs }, marker, timeoutMs: Math.max(15_000, 2 * firstMs) });
    expect(r.found).toBe(false);
  });
});
