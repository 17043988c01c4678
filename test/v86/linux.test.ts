// Debian bookworm's 32-bit kernel (linux-image-686, non-PAE; fixture i386/bzImage) and a busybox
// initrd built at test time, placed by guest-image/v86 into v86's own RAM and entered by the
// 32-bit boot protocol without any BIOS, reach userspace: /init prints a marker on COM1. The
// oracle is the guest itself (the marker only exists inside the initrd, and /proc/cmdline is
// printed by the kernel from the command line it found through the zero page). The negative
// control enters the same placement with ESI not pointing at the zero page: no marker.
import { afterEach, describe, expect, it } from "vitest";
import { bootV86, setV86CpuState } from "../../src/adapters/v86.js";
import type { X86CpuState } from "../../src/boot/cpu-x86.js";
import { fromMap, GuestImageError } from "../../src/index.js";
import { readFixture } from "../qemu/fixtures.js";
import { markerInitrd } from "../realboot/initrd.js";
import { createEmulator, type TestEmulator } from "./emulator.js";

const MiB = 1024 * 1024;
const MEMORY = 128 * MiB;
const BOOT_MS = 240_000;
/** How long the positive boot took to its marker on this machine now (the negative control waits longer). */
let positiveMs: number | undefined;

let emu: TestEmulator | undefined;
afterEach(async () => {
  await emu?.destroy();
  emu = undefined;
});

const marker = () => `GUEST-IMAGE-V86-${Math.random().toString(36).slice(2, 10).toUpperCase()}`;

describe("v86 boots Debian's 686 kernel placed by guest-image/v86 (32-bit boot protocol, no BIOS)", () => {
  it("reaches the userspace marker, with the command line it was given", { timeout: BOOT_MS + 30_000 }, async () => {
    const m = marker();
    const tag = `v86tag=${m.toLowerCase()}`;
    const files = fromMap({ bzImage: readFixture("i386/bzImage"), "initrd.cpio": markerInitrd("i386", { marker: m, script: "echo CMDLINE=$(cat /proc/cmdline)" }) });
    emu = await createEmulator({ memorySize: MEMORY });
    const cmdline = `console=ttyS0 quiet ${tag}`;
    const boot = await bootV86(emu.emulator, { files, kernel: "bzImage", initrd: "initrd.cpio", cmdline });
    expect(boot.protocol).toBe("linux");
    expect(boot.linux!.kernel.format).toBe("bzimage");
    // The boot record's x86 state is what v86's CPU now holds (ESI = zero page, GDTR, CS:EIP).
    const c = (emu.emulator as unknown as { v86: { cpu: Record<string, { [i: number]: number }> } }).v86.cpu;
    const x = boot.cpu as X86CpuState;
    expect(c.reg32[6] >>> 0).toBe(boot.linux!.zeroPage!.paddr);
    expect(c.instruction_pointer[0] >>> 0).toBe(Number(x.pc));
    expect([c.gdtr_offset[0] >>> 0, c.gdtr_size[0]]).toEqual([Number(x.gdtr!.base), x.gdtr!.limit]);
    expect([c.sreg[1], c.sreg[3], c.segment_limits[1] >>> 0, c.cr[0] & 0x80000001]).toEqual([0x10, 0x18, 0xffffffff, 1]);
    const t0 = performance.now();
    emu.run();
    const out = await emu.waitFor(m, BOOT_MS); // the tty ends lines with \r\n
    positiveMs = performance.now() - t0;
    expect(out).toContain(`CMDLINE=${cmdline}`);
  });

  it("negative control: the same placement entered with ESI not at the zero page never reaches the marker", { timeout: BOOT_MS + 30_000 }, async () => {
    // Wait 1.5 times as long as the good boot took here (at least 60 s): long enough that a
    // marker would have appeared if the hand-off did not matter.
    const waitMs = Math.min(BOOT_MS, Math.max(60_000, 1.5 * (positiveMs ?? 120_000)));
    const m = marker();
    const files = fromMap({ bzImage: readFixture("i386/bzImage"), "initrd.cpio": markerInitrd("i386", { marker: m }) });
    emu = await createEmulator({ memorySize: MEMORY });
    const boot = await bootV86(emu.emulator, { files, kernel: "bzImage", initrd: "initrd.cpio", cmdline: "console=ttyS0" });
    const zp = boot.linux!.zeroPage!.paddr;
    // A zeroed page nothing was placed on, in place of the zero page.
    const wrong = 0x30000;
    expect(boot.placed.every((p) => p.paddr + p.size <= wrong || p.paddr >= wrong + 0x1000)).toBe(true);
    expect(wrong).not.toBe(zp);
    setV86CpuState(emu.emulator, { ...boot.cpu, regs: { ...boot.cpu.regs, esi: BigInt(wrong) } });
    emu.run();
    await expect(emu.waitFor(m, waitMs)).rejects.toThrow(/no .* on v86's COM1 within/);
  });

  it("a truncated bzImage is refused with a typed error before v86 runs", async () => {
    const full = readFixture("i386/bzImage");
    emu = await createEmulator({ memorySize: MEMORY });
    const e = await bootV86(emu.emulator, { files: fromMap({ bzImage: full.subarray(0, full.length >> 1) }), kernel: "bzImage" }).then(() => null, (x: unknown) => x);
    expect(e).toBeInstanceOf(GuestImageError);
    expect((e as GuestImageError).code).toBe("TRUNCATED");
    expect((e as GuestImageError).image).toBe("bzImage");
    expect(emu.emulator.is_running()).toBe(false);
  });
});
