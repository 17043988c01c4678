/**
 * Debian bookworm's armmp zImage boots to a userspace marker in QEMU 7.2 (virt, cortex-a15,
 * 256 MiB, TCG) from guest-image's RAM and CPU state alone, QEMU without -kernel/-initrd/-dtb
 * (qemu-boot.ts). On arm both layouts' addresses for the zImage (booting.rst's RAM + 0x8000,
 * QEMU's RAM + 0x10000) lie inside QEMU's own 1 MiB dtb blob at the RAM base. Declared reserved
 * (`--reserve` / `reserved`, from `info roms`), the zImage moves to the next free page (RAM +
 * 1 MiB) and the generic loader alone loads everything; undeclared, that window goes in through
 * the gdbstub.
 *
 *   CLI, default layout, --stub,     pieces + PC from the generic loader alone (the stub sets r0–r2)
 *     --reserve
 *   library, qemu layout, stub,      the same through the library
 *     reserved
 *   library, qemu layout             r0–r2, CPSR and PC from boot.cpu through the gdbstub, the
 *                                    dtb blob's window through `restore`
 *   negative control                 the reserved-range stub boot with the stub's r2 literal one
 *                                    page past the DTB: no marker
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { fixture } from "../qemu/fixtures.js";
import { markerInitrd } from "./initrd.js";
import { bootQemu, inTmp, machineDtb, MACHINES, prepareCli, prepareLib, qemuBlobs, withWrongStubDtb, type PrepareOptions } from "./qemu-boot.js";

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

  it("CLI, default layout, --stub, QEMU's dtb blob --reserve'd: the generic loader alone; the stub sets r0, r1, r2", async () => {
    const marker = `arm-cli-stub-${randomUUID()}`;
    const reserved = await qemuBlobs(M);
    expect(reserved).toEqual([{ base: 0x40000000, size: 0x100000 }]); // QEMU virt's "dtb" blob
    await inTmp(async (dir) => {
      const p = prepareCli(options(marker, { stub: true, reserved }), fixture("armhf/zImage"), dir);
      // RAM + 0x8000 is inside the blob: the next free page.
      expect(p.json!["cpu"]).toMatchObject({ arch: "arm", cpuMode: "svc", cpsr: "0x1d3", isa: "arm", target: "0x40100000", regs: { r0: "0x0", r1: "0xffffffff" } });
      const r = await bootQemu({ machine: M, ...p, marker, timeoutMs: BOOT_MS });
      expect(r.gdbScript, "no gdbstub needed: the generic loader alone").toBeUndefined();
      expect(r.found, `${r.command}\n${r.serial.slice(-3000)}`).toBe(true);
      firstMs = r.ms;
    });
  });

  it("library, qemu layout, stub, QEMU's dtb blob reserved: the generic loader alone", async () => {
    const marker = `arm-lib-stub-${randomUUID()}`;
    const p = await prepareLib(options(marker, { layout: "qemu", stub: true, reserved: await qemuBlobs(M) }));
    expect(p.cpu).toMatchObject({ target: 0x40100000n }); // QEMU's RAM + 0x10000 is inside the blob
    const r = await bootQemu({ machine: M, ...p, marker, timeoutMs: BOOT_MS });
    expect(r.gdbScript, "no gdbstub needed: the generic loader alone").toBeUndefined();
    expect(r.found, `${r.command}\n${r.serial.slice(-3000)}`).toBe(true);
    firstMs = Math.max(firstMs, r.ms);
  });

  it("library, qemu layout, no stub: r0–r2, CPSR and PC from boot.cpu", async () => {
    const marker = `arm-lib-${randomUUID()}`;
    const p = await prepareLib(options(marker, { layout: "qemu" }));
    expect(p.cpu.pc).toBe(0x40010000n); // QEMU's KERNEL_LOAD_ADDR
    const r = await bootQemu({ machine: M, ...p, marker, timeoutMs: BOOT_MS });
    expect(r.found, `${r.command}\n${r.gdbScript}\n${r.serial.slice(-3000)}`).toBe(true);
    firstMs = Math.max(firstMs, r.ms);
  });

  it("negative control: the stub's r2 not pointing at the DTB never reaches the marker", async () => {
    const marker = `arm-neg-${randomUUID()}`;
    const p = withWrongStubDtb(await prepareLib(options(marker, { layout: "qemu", stub: true, reserved: await qemuBlobs(M) })));
    const r = await bootQemu({ machine: M, ...p, marker, timeoutMs: Math.max(15_000, 2 * firstMs) });
    expect(r.gdbScript).toBeUndefined();
    expect(r.found).toBe(false);
  });
});
