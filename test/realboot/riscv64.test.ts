/**
 * Debian trixie's riscv64 Image boots to a userspace marker in QEMU 7.2 (virt, 256 MiB, TCG)
 * from guest-image's RAM and CPU state alone, QEMU without -kernel/-initrd/-dtb (qemu-boot.ts).
 *
 * With firmware (OpenSBI fw_dynamic passed to bootLinux, QEMU -bios none): the CPU starts in
 * M-mode at the firmware (or the stub) with a0 = hart, a1 = DTB, a2 = fw_dynamic_info.
 * Without (cpu.sbi "required"): the kernel needs an SBI below it; QEMU's own OpenSBI (default
 * -bios) provides it and drops to S-mode, where the state from boot.cpu is set.
 *
 * With QEMU's own OpenSBI as the firmware (firmwareAt 0x80000000, default -bios, its blob and
 * QEMU's fdt blob declared reserved): the M-mode stub sets a0–a2 (a2 = our fw_dynamic_info) and
 * jumps to it, skipping QEMU's reset ROM.
 *
 *   CLI, qemu layout, firmware, --stub,      the generic loader alone (pieces + PC); QEMU's fdt
 *     --reserve                              blob reserved, so our tree goes below it
 *   library, default layout, firmwareAt      the generic loader alone: QEMU's OpenSBI entered by
 *     (QEMU's OpenSBI), stub, reserved       the M-mode stub
 *   library, default layout, firmware        a0–a2 and PC through the gdbstub, M-mode
 *   library, default layout, no firmware     QEMU's OpenSBI, then a0, a1, PC in S-mode
 *   CLI, qemu layout, no firmware, --stub    QEMU's OpenSBI, then only the PC (the S-mode stub)
 *   negative control                          the firmwareAt stub boot with the stub's a1 literal
 *                                             one page past the DTB: no marker
 */
import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { fixture } from "../qemu/fixtures.js";
import { markerInitrd } from "./initrd.js";
import { bootQemu, inTmp, machineDtb, MACHINES, prepareCli, prepareLib, qemuBlobs, withWrongStubDtb, type PrepareOptions } from "./qemu-boot.js";

const M = MACHINES.riscv64;
const BOOT_MS = 60_000;
const TEST_MS = 150_000;
const OPENSBI = "/usr/share/qemu/opensbi-riscv64-generic-fw_dynamic.bin";

function options(marker: string, o: Partial<PrepareOptions>): PrepareOptions {
  return {
    arch: "riscv64", machine: M, kernel: "riscv64/Image", initrd: markerInitrd("riscv64", { marker }), dtb: machineDtb(M),
    cmdline: `console=${M.console}`, layout: "default", ...o,
  };
}

describe("riscv64 real boot (QEMU virt, no -kernel)", { timeout: TEST_MS }, () => {
  let firstMs = 0;

  it("CLI, qemu layout, OpenSBI as --firmware, --stub, QEMU's fdt blob --reserve'd: the generic loader alone (M-mode stub → firmware → kernel)", async () => {
    const marker = `rv-cli-fw-stub-${randomUUID()}`;
    const reserved = await qemuBlobs(M, false); // -bios none: QEMU's "fdt" blob only
    expect(reserved).toEqual([{ base: 0x8fe00000, size: 0x100000 }]);
    await inTmp(async (dir) => {
      const p = prepareCli(options(marker, { layout: "qemu", stub: true, firmware: OPENSBI, reserved }), fixture("riscv64/Image"), dir);
      expect(p.json!["cpu"]).toMatchObject({ arch: "riscv64", priv: "M", sbi: "firmware", firmware: "placed", target: "0x80000000", satp: "0x0", regs: { a0: "0x0" } });
      const r = await bootQemu({ machine: M, ...p, marker, timeoutMs: BOOT_MS });
      expect(r.gdbScript, "no gdbstub needed: the generic loader alone").toBeUndefined();
      expect(r.found, `${r.command}\n${r.serial.slice(-3000)}`).toBe(true);
      firstMs = r.ms;
    });
  });

  it("library, default layout, firmwareAt QEMU's own OpenSBI, stub, QEMU's blobs reserved: the generic loader alone", async () => {
    const marker = `rv-lib-fwat-stub-${randomUUID()}`;
    const reserved = await qemuBlobs(M); // default -bios: OpenSBI at the RAM base and the "fdt" blob
    expect(reserved.map((r) => r.base).sort()).toEqual([0x80000000, 0x8fe00000]);
    const p = await prepareLib(options(marker, { stub: true, firmwareAt: 0x80000000, reserved }));
    expect(p.cpu).toMatchObject({ priv: "M", sbi: "firmware", firmware: "external", target: 0x80000000n });
    const r = await bootQemu({ machine: M, ...p, marker, timeoutMs: BOOT_MS });
    expect(r.gdbScript, "no gdbstub needed: the generic loader alone").toBeUndefined();
    expect(r.command).not.toMatch(/-bios none/); // QEMU's own OpenSBI is the firmware
    expect(r.found, `${r.command}\n${r.serial.slice(-3000)}`).toBe(true);
    firstMs = Math.max(firstMs, r.ms);
  });

  it("library, default layout, OpenSBI as firmware, no stub: a0–a2 and PC in M-mode", async () => {
    const marker = `rv-lib-fw-${randomUUID()}`;
    const p = await prepareLib(options(marker, { firmware: OPENSBI }));
    expect(p.cpu).toMatchObject({ priv: "M", pc: 0x80000000n });
    const r = await bootQemu({ machine: M, ...p, marker, timeoutMs: BOOT_MS });
    expect(r.found, `${r.command}\n${r.gdbScript}\n${r.serial.slice(-3000)}`).toBe(true);
    firstMs = Math.max(firstMs, r.ms);
  });

  it("library, default layout, no firmware: S-mode under QEMU's OpenSBI, a0, a1 and PC from boot.cpu", async () => {
    const marker = `rv-lib-s-${randomUUID()}`;
    const p = await prepareLib(options(marker, {}));
    expect(p.cpu).toMatchObject({ priv: "S", sbi: "required", satp: 0n, pc: 0x80200000n });
    const r = await bootQemu({ machine: M, ...p, marker, timeoutMs: BOOT_MS });
    expect(r.found, `${r.command}\n${r.gdbScript}\n${r.serial.slice(-3000)}`).toBe(true);
    firstMs = Math.max(firstMs, r.ms);
  });

  it("CLI, qemu layout, no firmware, --stub: QEMU's OpenSBI enters the S-mode stub (only the PC is set)", async () => {
    const marker = `rv-cli-s-stub-${randomUUID()}`;
    await inTmp(async (dir) => {
      const p = prepareCli(options(marker, { layout: "qemu", stub: true }), fixture("riscv64/Image"), dir);
      expect(p.json!["cpu"]).toMatchObject({ priv: "S", sbi: "required", target: "0x80200000" });
      const r = await bootQemu({ machine: M, ...p, marker, timeoutMs: BOOT_MS });
      expect(r.found, `${r.command}\n${r.gdbScript}\n${r.serial.slice(-3000)}`).toBe(true);
      // After OpenSBI's drop to S-mode (hbreak *0) only the PC is set: a0/a1 come from the stub.
      expect(r.gdbScript!.split("hbreak *0\n")[1]).not.toMatch(/set \$a/);
    });
  });

  it("negative control: the stub's a1 not pointing at the DTB never reaches the marker", async () => {
    const marker = `rv-neg-${randomUUID()}`;
    const p = withWrongStubDtb(await prepareLib(options(marker, { stub: true, firmwareAt: 0x80000000, reserved: await qemuBlobs(M) })));
    const r = await bootQemu({ machine: M, ...p, marker, timeoutMs: Math.max(15_000, 2 * firstMs) });
    expect(r.gdbScript).toBeUndefined();
    expect(r.found).toBe(false);
  });
});
