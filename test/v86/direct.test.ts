// Issue 13 §2 in v86: Debian bookworm's 686 kernel (fixture i386/bzImage, xz payload) boots by
// DIRECT boot — bootV86(…, { direct: true }) has bootLinux decompress the payload on the host
// straight into v86's RAM and enter the vmlinux's own startup_32 with the 32-bit boot protocol
// state — and reaches the busybox initrd's userspace marker. Oracles: the guest itself (the
// marker exists only in the initrd; /proc/cmdline comes from the zero page), and v86's own
// instruction counter: on the normal path the bzImage's decompressor (arch/x86/boot/compressed)
// runs in the guest before the kernel prints its first byte ("Linux version", with earlyprintk
// on COM1) — about 2.3 billion instructions for this xz payload — while direct boot's kernel
// prints its first byte after a few million; the second test measures the normal path and
// compares. (The decompressor's own "Decompressing Linux" message needs CONFIG_X86_VERBOSE_BOOTUP,
// which Debian's kernels leave out: the text is in neither path's output, checked anyway.)
// Negative control: the same direct placement entered with ESI not at the zero page never
// reaches the marker.
import { afterEach, describe, expect, it } from "vitest";
import { bootV86, setV86CpuState } from "../../src/adapters/v86.js";
import type { X86CpuState } from "../../src/boot/cpu-x86.js";
import { fromMap, GuestImageError } from "../../src/index.js";
import { readFixture } from "../qemu/fixtures.js";
import { markerInitrd } from "../realboot/initrd.js";
import { withSlot } from "../realboot/qemu-boot.js";
import { createEmulator, type TestEmulator } from "./emulator.js";

const MiB = 1024 * 1024;
const MEMORY = 128 * MiB;
const BOOT_MS = 240_000;
/** The kernel's early console on COM1 (arch/x86/boot/early_serial_console.c), which the decompressor writes to. */
const CMDLINE = "console=ttyS0 earlyprintk=serial,ttyS0,115200 quiet";
const DECOMPRESSING = "Decompressing Linux";
let positiveMs: number | undefined;
/** Instructions v86 ran before the direct-booted kernel's first COM1 byte. */
let directInstructions = NaN;

let emu: TestEmulator | undefined;
afterEach(async () => {
  await emu?.destroy();
  emu = undefined;
});

const marker = () => `GUEST-IMAGE-V86D-${Math.random().toString(36).slice(2, 10).toUpperCase()}`;
const cpuOf = (e: TestEmulator) => (e.emulator as unknown as { v86: { cpu: Record<string, { [i: number]: number }> } }).v86.cpu;

describe("v86 boots Debian's 686 kernel by direct boot (host decompression, startup_32 entry)", () => {
  it("reaches the userspace marker with its command line, and the guest's decompressor never runs", { timeout: BOOT_MS + 60_000 }, async () => {
    const m = marker();
    const tag = `v86direct=${m.toLowerCase()}`;
    const files = fromMap({ bzImage: readFixture("i386/bzImage"), "initrd.cpio": markerInitrd("i386", { marker: m, script: "echo CMDLINE=$(cat /proc/cmdline)" }) });
    await withSlot(async () => {
      emu = await createEmulator({ memorySize: MEMORY });
      const cmdline = `${CMDLINE} ${tag}`;
      const boot = await bootV86(emu.emulator, { files, kernel: "bzImage", initrd: "initrd.cpio", cmdline, direct: true });
      expect(boot.protocol).toBe("linux");
      const k = boot.linux!.kernel;
      expect(k.format).toBe("vmlinux (direct)");
      // v86's CPU holds the direct entry: EIP at the vmlinux's entry (startup_32), inside the
      // placed kernel, ESI at the zero page.
      const c = cpuOf(emu);
      const x = boot.cpu as X86CpuState;
      expect(c.instruction_pointer[0] >>> 0).toBe(Number(x.pc));
      expect(Number(x.pc)).toBeGreaterThanOrEqual(k.paddr);
      expect(Number(x.pc)).toBeLessThan(k.paddr + k.size);
      expect(c.reg32[6] >>> 0).toBe(boot.linux!.zeroPage!.paddr);
      const t0 = performance.now();
      emu.run();
      const out = await emu.waitFor(m, BOOT_MS);
      positiveMs = performance.now() - t0;
      directInstructions = emu.instructionsToFirstByte();
      expect(out).toContain(`CMDLINE=${cmdline}`);
      expect(out.split("\n")[0], "the kernel's banner is the first line on COM1").toMatch(/^\[ *0\.0+\] Linux version/);
      expect(out).not.toContain(DECOMPRESSING);
    });
  });

  it("control: the normal bzImage path runs the guest's decompressor first — over 20 times the instructions to the kernel's first byte", { timeout: BOOT_MS + 60_000 }, async () => {
    const files = fromMap({ bzImage: readFixture("i386/bzImage"), "initrd.cpio": markerInitrd("i386", { marker: marker() }) });
    await withSlot(async () => {
      emu = await createEmulator({ memorySize: MEMORY });
      const boot = await bootV86(emu.emulator, { files, kernel: "bzImage", initrd: "initrd.cpio", cmdline: CMDLINE });
      expect(boot.linux!.kernel.format).toBe("bzimage");
      emu.run();
      const out = await emu.waitFor("Linux version", BOOT_MS);
      expect(out.split("\n")[0], "the kernel's banner is the first line on COM1").toMatch(/^\[ *0\.0+\] Linux version/);
      expect(out).not.toContain(DECOMPRESSING);
      const normal = emu.instructionsToFirstByte();
      expect(directInstructions, "the direct boot's count (first test)").toBeGreaterThan(0);
      expect(normal).toBeGreaterThan(20 * directInstructions);
    });
  });

  it("negative control: the same direct placement entered with ESI not at the zero page never reaches the marker", { timeout: BOOT_MS + 60_000 }, async () => {
    // 1.5 times as long as the good direct boot took here, at least 30 s.
    const waitMs = Math.min(BOOT_MS, Math.max(30_000, 1.5 * (positiveMs ?? 120_000)));
    const m = marker();
    const files = fromMap({ bzImage: readFixture("i386/bzImage"), "initrd.cpio": markerInitrd("i386", { marker: m }) });
    await withSlot(async () => {
      emu = await createEmulator({ memorySize: MEMORY });
      const boot = await bootV86(emu.emulator, { files, kernel: "bzImage", initrd: "initrd.cpio", cmdline: CMDLINE, direct: true });
      const wrong = 0x30000; // a zeroed page nothing was placed on
      expect(boot.placed.every((p) => p.paddr + p.size <= wrong || p.paddr >= wrong + 0x1000)).toBe(true);
      setV86CpuState(emu.emulator, { ...boot.cpu, regs: { ...boot.cpu.regs, esi: BigInt(wrong) } });
      emu.run();
      await expect(emu.waitFor(m, waitMs)).rejects.toThrow(/no .* on v86's COM1 within/);
    });
  });

  it("direct must be true, false or { at }; a Multiboot kernel is refused; v86 is left as it was", async () => {
    emu = await createEmulator({ memorySize: 16 * MiB });
    const files = fromMap({ bzImage: readFixture("i386/bzImage") });
    const e = await bootV86(emu.emulator, { files, kernel: "bzImage", direct: "yes" as unknown as boolean }).then(() => null, (x: unknown) => x);
    expect(e).toBeInstanceOf(GuestImageError);
    expect([(e as GuestImageError).code, (e as GuestImageError).field]).toEqual(["BAD_ARGUMENT", "direct"]);
    expect(emu.emulator.is_running()).toBe(false);
  });
});
