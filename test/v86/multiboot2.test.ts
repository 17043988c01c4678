// Issue 14 §1 in v86: the Multiboot 2 test kernel (test/realboot/mb2/kernel.S, assembled here
// with Debian's i686 / x86_64 binutils) is detected by bootV86, placed with bootMultiboot2 in
// v86's own RAM and entered with EAX = 0x36d76289 and EBX = the information structure (no BIOS).
// It walks the tags it got and prints them over COM1; the checks are the QEMU/GRUB test's
// (test/realboot/mb2/expect.ts): exactly the command line, module strings and module bytes'
// checksums this test gave, the memory map of the RAM v86 has (PC legacy area reserved), and the
// ELF section table readelf reports. Negative controls: a Multiboot 1 magic in EAX, or EBX off by
// 8, set in v86's CPU after the placement, fail those checks.
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { bootV86, setV86CpuState, type V86Boot } from "../../src/adapters/v86.js";
import { fromMap, GuestImageError } from "../../src/index.js";
import { expectHandOff, expectPcMemory, expectSections, mb2Input, readelfSections } from "../realboot/mb2/expect.js";
import { buildKernel, finished, lines, parse, type BootInput, type Parsed, type Variant } from "../realboot/mb2/harness.js";
import { withSlot } from "../realboot/qemu-boot.js";
import { createEmulator, type TestEmulator } from "./emulator.js";

const MiB = 0x100000;
const MEMORY = 64 * MiB;
const RUN_MS = 60_000;

const dir = mkdtempSync(join(tmpdir(), "guest-image-v86-mb2-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const kernels = new Map<Variant, string>();
beforeAll(() => {
  for (const v of ["elf32", "elf64"] as const) kernels.set(v, buildKernel(dir, v));
});

let emu: TestEmulator | undefined;
afterEach(async () => {
  await emu?.destroy();
  emu = undefined;
});

function filesOf(inp: BootInput) {
  const files: Record<string, Uint8Array> = { kernel: new Uint8Array(readFileSync(inp.kernel)) };
  for (const m of inp.modules) files[m.name] = m.bytes;
  return fromMap(files);
}

/** Places with bootV86, lets `tweak` change the CPU, runs v86 until the kernel is done; its parsed report. */
async function bootInV86(inp: BootInput, tweak?: (boot: V86Boot, e: TestEmulator) => void): Promise<{ boot: V86Boot; p: Parsed; raw: string }> {
  return withSlot(async () => {
    emu = await createEmulator({ memorySize: MEMORY });
    const boot = await bootV86(emu.emulator, { files: filesOf(inp), kernel: "kernel", cmdline: inp.cmdline, modules: inp.modules.map((m) => ({ name: m.name, cmdline: m.cmdline })) });
    tweak?.(boot, emu);
    emu.run();
    const until = Date.now() + RUN_MS;
    while (!finished(emu.serial().replace(/\r/g, "")) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    const raw = emu.serial().replace(/\r/g, "");
    await emu.destroy();
    emu = undefined;
    return { boot, p: parse(lines(raw)), raw };
  });
}

describe("v86 boots the Multiboot 2 test kernel placed by guest-image/v86", () => {
  for (const v of ["elf32", "elf64"] as const) {
    it(`${v}: detected as Multiboot 2; prints the command line, modules, memory map and ELF sections the test gave`, { timeout: RUN_MS + 30_000 }, async () => {
      const inp = mb2Input(kernels.get(v)!);
      const { boot, p, raw } = await bootInV86(inp);
      expect(boot.protocol).toBe("multiboot2");
      expect(raw).toMatch(/MB2T END/);
      expectHandOff(p, inp, "guest-image", readelfSections(inp.kernel).entry);
      expectPcMemory(p, MEMORY);
      expectSections(p, inp.kernel);
      expect(p.tags.map((t) => t.type)).toEqual([1, 2, 3, 3, 4, 6, 9]);
      expect(p.end).toBe(boot.multiboot2!.info.size);
    });
  }

  it("negative controls: a Multiboot 1 magic in EAX, or EBX off by 8, fail the checks", { timeout: 2 * RUN_MS + 30_000 }, async () => {
    const inp = mb2Input(kernels.get("elf32")!);
    const entry = readelfSections(inp.kernel).entry;
    const wrongMagic = await bootInV86(inp, (b, e) => setV86CpuState(e.emulator, { ...b.cpu, regs: { ...b.cpu.regs, eax: 0x2badb002n } }));
    expect(() => expectHandOff(wrongMagic.p, inp, "guest-image", entry)).toThrow(/EAX/);
    const wrongInfo = await bootInV86(inp, (b, e) => setV86CpuState(e.emulator, { ...b.cpu, regs: { ...b.cpu.regs, ebx: b.cpu.regs.ebx + 8n } }));
    expect(wrongInfo.p.eax.toString(16)).toBe("36d76289");
    expect(() => {
      expectHandOff(wrongInfo.p, inp, "guest-image", entry);
      expectPcMemory(wrongInfo.p, MEMORY);
    }).toThrow();
  });

  it("Multiboot 2 refuses direct boot and takes modules only for Multiboot 2; v86 is left as it was", async () => {
    const inp = mb2Input(kernels.get("elf32")!);
    emu = await createEmulator({ memorySize: 16 * MiB });
    const e = await bootV86(emu.emulator, { files: filesOf(inp), kernel: "kernel", direct: true }).then(() => null, (x: unknown) => x);
    expect(e).toBeInstanceOf(GuestImageError);
    expect([(e as GuestImageError).code, (e as GuestImageError).field]).toEqual(["BAD_ARGUMENT", "direct"]);
    const e2 = await bootV86(emu.emulator, { files: filesOf(inp), kernel: "kernel", protocol: "linux", modules: [{ name: "m0" }] }).then(() => null, (x: unknown) => x);
    expect([(e2 as GuestImageError).code, (e2 as GuestImageError).field]).toEqual(["BAD_ARGUMENT", "modules"]);
    expect(emu.emulator.is_running()).toBe(false);
  });

  it("a module larger than v86's RAM fails the whole Multiboot 2 placement: typed error, v86's memory byte for byte unchanged", async () => {
    const inp = mb2Input(kernels.get("elf32")!);
    emu = await createEmulator({ memorySize: 16 * MiB });
    const mem = () => createHash("sha256").update(new Uint8Array((emu!.emulator as unknown as { v86: { cpu: { wasm_memory: WebAssembly.Memory } } }).v86.cpu.wasm_memory.buffer)).digest("hex");
    const before = mem();
    const files = fromMap({ kernel: new Uint8Array(readFileSync(inp.kernel)), small: new Uint8Array(4096).fill(7), huge: new Uint8Array(17 * MiB) });
    // The kernel and the first module are placed before the second is refused: all of it is undone.
    const e = await bootV86(emu.emulator, { files, kernel: "kernel", modules: [{ name: "small", cmdline: "a" }, { name: "huge", cmdline: "b" }] }).then(() => null, (x: unknown) => x);
    expect(e).toBeInstanceOf(GuestImageError);
    expect([(e as GuestImageError).code, (e as GuestImageError).image]).toEqual(["OUT_OF_RAM", "huge"]);
    expect(mem()).toBe(before);
    expect(emu.emulator.is_running()).toBe(false);
  });
});
