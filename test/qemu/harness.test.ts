// The QEMU harness itself (test/helpers/qemu.ts): `info roms` parsing, QEMU's own errors reaching
// the test, and no QEMU left running after a failure or a timeout.
import { describe, expect, it } from "vitest";
import { parseInfoRoms, runQemu } from "../helpers/qemu.js";

/** Signal 0: does the process exist (and is not yet reaped)? */
const running = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe.concurrent("QEMU harness", () => {
  it("parses QEMU 7.2's info roms lines", () => {
    const text = [
      '/rom@etc/acpi/tables size=0x200000 name="etc/acpi/tables"',
      'addr=0000000040000000 size=0x000028 mem=ram name="bootloader"',
      'addr=0000000040200000 size=0x1f6dfc0 mem=ram name="/x/arm64/Image"',
      'fw=genroms/linuxboot_dma.bin size=0x00c000 name="linuxboot_dma.bin"',
      "",
    ].join("\r\n");
    expect(parseInfoRoms(text)).toEqual([
      { fw: "/rom@etc/acpi/tables", size: 0x200000, name: "etc/acpi/tables" },
      { addr: 0x40000000n, size: 0x28, mem: "ram", name: "bootloader" },
      { addr: 0x40200000n, size: 0x1f6dfc0, mem: "ram", name: "/x/arm64/Image" },
      { fw: "genroms/linuxboot_dma.bin", size: 0xc000, name: "linuxboot_dma.bin" },
    ]);
    expect(() => parseInfoRoms("something else")).toThrow(/unexpected 'info roms' line/);
  });

  it("a QEMU that refuses its arguments fails the test with QEMU's message", async () => {
    await expect(runQemu({ arch: "aarch64", args: ["-M", "no-such-machine"] }, async () => 1)).rejects.toThrow(/no-such-machine/);
  });

  it("a run that hangs is killed at its timeout, and nothing is left running", async () => {
    let pid = -1;
    const t0 = Date.now();
    await expect(
      runQemu({ arch: "x86_64", gdb: true, timeoutMs: 1500, args: ["-M", "pc", "-m", "16M"] }, async (q) => {
        pid = q.pid;
        expect(running(pid)).toBe(true);
        await q.runTo(0x7000_0000); // never reached: the BIOS finds nothing to boot and halts
      }),
    ).rejects.toThrow(/timeout/);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(pid).toBeGreaterThan(0);
    expect(running(pid), `QEMU pid ${pid} still running`).toBe(false);
  });
});
