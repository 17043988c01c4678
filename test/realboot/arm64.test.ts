/**
 * Debian bookworm's arm64 Image boots to a userspace marker in QEMU 7.2 (virt, cortex-a57,
 * 256 MiB, TCG) from guest-image's RAM and CPU state alone: QEMU runs without
 * -kernel/-initrd/-dtb (see qemu-boot.ts for how RAM and registers get in).
 *
 *   CLI, qemu layout, --stub      QEMU's generic loader alone: the placed pieces + the PC
 *   library, default layout,      QEMU's generic loader alone: QEMU's own 1 MiB dtb blob at the
 *     stub, reserved              RAM base is declared reserved (`info roms`), so the kernel
 *                                 goes to the next 2 MiB base and nothing overlaps the blob
 *   library, default layout       registers and PSTATE from boot.cpu through the gdbstub (the
 *                                 kernel at the RAM base overlaps QEMU's own 1 MiB dtb blob:
 *                                 that window is written through the gdbstub)
 *   negative control              the reserved-range stub boot with the stub's x0 literal one
 *                                 page past the DTB: no marker
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { fixture } from "../qemu/fixtures.js";
import { markerInitrd } from "./initrd.js";
import { bootQemu, inTmp, machineDtb, MACHINES, prepareCli, prepareLib, qemuBlobs, withWrongStubDtb, type PrepareOptions } from "./qemu-boot.js";

const M = MACHINES.arm64;
const BOOT_MS = 60_000;
const TEST_MS = 150_000;

function options(marker: string, o: Partial<PrepareOptions>): PrepareOptions {
  return {
    arch: "arm64", machine: M, kernel: "arm64/Image", initrd: markerInitrd("arm64", { marker }), dtb: machineDtb(M),
    cmdline: `console=${M.console}`, layout: "default", ...o,
  };
}

describe("arm64 real boot (QEMU virt, no -kernel)", { timeout: TEST_MS }, () => {
  let firstMs = 0;

  it("CLI, qemu layout, --stub: the generic loader alone (pieces + PC) boots to the marker", async () => {
    const marker = `arm64-cli-stub-${randomUUID()}`;
    await inTmp(async (dir) => {
      const p = prepareCli(options(marker, { layout: "qemu", stub: true }), fixture("arm64/Image"), dir);
      const cpu = p.json!["cpu"] as Record<string, unknown>;
      expect(cpu).toMatchObject({ arch: "arm64", el: 1, pstate: "0x3c5", target: "0x40200000", regs: { x1: "0x0", x2: "0x0", x3: "0x0" } });
      expect(cpu["pc"]).toBe((cpu["stub"] as { paddr: string }).paddr);
      const r = await bootQemu({ machine: M, ...p, marker, timeoutMs: BOOT_MS });
      expect(r.gdbScript, "no gdbstub needed: the generic loader alone").toBeUndefined();
      expect(r.found, `${r.command}\n${r.serial.slice(-3000)}`).toBe(true);
      firstMs = r.ms;
    });
  });

  it("library, default layout, stub, QEMU's blobs reserved: the generic loader alone boots to the marker", async () => {
    const marker = `arm64-lib-stub-${randomUUID()}`;
    const reserved = await qemuBlobs(M);
    expect(reserved).toEqual([{ base: 0x40000000, size: 0x100000 }]); // QEMU virt's "dtb" blob
    const p = await prepareLib(options(marker, { stub: true, reserved }));
    expect(p.cpu).toMatchObject({ target: 0x40200000n }); // the next 2 MiB-aligned base past the blob
    const r = await bootQemu({ machine: M, ...p, marker, timeoutMs: BOOT_MS });
    expect(r.gdbScript, "no gdbstub needed: the generic loader alone").toBeUndefined();
    expect(r.found, `${r.command}\n${r.serial.slice(-3000)}`).toBe(true);
    firstMs = Math.max(firstMs, r.ms);
  });

  it("library, default layout, no stub: registers and PSTATE from boot.cpu", async () => {
    const marker = `arm64-lib-${randomUUID()}`;
    const p = await prepareLib(options(marker, {}));
    expect(p.cpu.pc).toBe(0x40000000n); // default layout: RAM base + text_offset 0
    const r = await bootQemu({ machine: M, ...p, marker, timeoutMs: BOOT_MS });
    expect(r.found, `${r.command}\n${r.gdbScript}\n${r.serial.slice(-3000)}`).toBe(true);
    firstMs = Math.max(firstMs, r.ms);
  });

  it("negative control: the stub's x0 not pointing at the DTB never reaches the marker", async () => {
    const marker = `arm64-neg-${randomUUID()}`;
    const p = withWrongStubDtb(await prepareLib(options(marker, { stub: true, reserved: await qemuBlobs(M) })));
    // Twice the slowest good boot of this file (at least 15 s): long enough that a good hand-off would have printed.
    const r = await bootQemu({ machine: M, ...p, marker, timeoutMs: Math.max(15_000, 2 * firstMs) });
    expect(r.gdbScript).toBeUndefined();
    expect(r.found).toBe(false);
  });
});
