// A Multiboot 1 kernel assembled at test time boots in v86 through guest-image/v86 and prints,
// over COM1, the machine state and the information structure it received. The expected lines
// come from the spec (GNU Multiboot 0.6.96, 3.2 "Machine state", 3.3 "Boot information
// format") applied to what this test asked for, never from the adapter's own output.
import { afterEach, describe, expect, it } from "vitest";
import { bootV86, setV86CpuState } from "../../src/adapters/v86.js";
import { fromMap } from "../../src/index.js";
import { createEmulator, type TestEmulator } from "./emulator.js";
import { buildMbiKernel } from "./mbi-kernel.js";

const MiB = 1024 * 1024;
const hex8 = (n: number) => (n >>> 0).toString(16).padStart(8, "0");
const hex16 = (n: number) => n.toString(16).padStart(16, "0");

let emu: TestEmulator | undefined;
afterEach(async () => {
  await emu?.destroy();
  emu = undefined;
});

/** The lines test/v86/mbi-kernel.s prints for a structure built as the spec says from these inputs. */
function expectedReport(o: { memorySize: number; cmdline: string; module: Uint8Array; moduleName: string }): string {
  // Spec 3.3 flags: 0 mem_*, 2 cmdline, 3 mods, 6 mmap, 9 boot_loader_name.
  const flags = (1 << 0) | (1 << 2) | (1 << 3) | (1 << 6) | (1 << 9);
  const sum = o.module.reduce((a, b) => a + b, 0);
  return [
    `eax=${hex8(0x2badb002)}`, // spec 3.2: EAX must contain the magic value 0x2BADB002
    "ebx_nonzero=00000001",
    `flags=${hex8(flags)}`,
    `mem_lower=${hex8(640)}`, // RAM from 0 is contiguous far past 640 KiB: the spec's maximum
    `mem_upper=${hex8((o.memorySize - MiB) / 1024)}`, // KiB from 1 MiB to the first hole (the end of RAM)
    `cmdline=${o.cmdline}`,
    "mods_count=00000001",
    "mod0_start_page_offset=00000000", // the kernel's header sets flags bit 0: page-aligned modules
    `mod0_len=${hex8(o.module.length)}`,
    `mod0_sum=${hex8(sum)}`,
    `mod0_string=${o.moduleName}`,
    `mmap=${hex16(0)} ${hex16(o.memorySize)} 00000001`, // one region [0, memory_size), available
    "boot_loader_name=guest-image",
    "END",
  ].join("\n") + "\n";
}

describe("v86 boots a Multiboot 1 kernel placed by guest-image/v86", () => {
  it("the kernel reports the magic, the memory sizes, the command line, its module and the memory map it was given", async () => {
    const kernel = buildMbiKernel();
    const memorySize = 32 * MiB;
    const module = new Uint8Array(12345);
    for (let i = 0; i < module.length; i++) module[i] = (i * 131 + 7) & 0xff;
    const cmdline = "console=ttyS0 guest-image v86 test";
    emu = await createEmulator({ memorySize });
    // The SVGA framebuffer the adapter borrows for its scratch area, and v86's memory size.
    const cpu = (emu.emulator as unknown as { v86: { cpu: { wasm_memory: WebAssembly.Memory; devices: { vga: { svga_memory: { byteOffset: number; length: number } } } } } }).v86.cpu;
    const svga = cpu.devices.vga.svga_memory;
    const svgaBefore = new Uint8Array(cpu.wasm_memory.buffer, svga.byteOffset, svga.length).slice();
    const bytesBefore = cpu.wasm_memory.buffer.byteLength;
    const boot = await bootV86(emu.emulator, { files: fromMap({ "mbi.elf": kernel, "payload.bin": module }), kernel: "mbi.elf", initrd: "payload.bin", cmdline });
    expect(boot.protocol).toBe("multiboot");
    expect(boot.scratch).toBe("svga");
    expect(cpu.wasm_memory.buffer.byteLength).toBe(bytesBefore); // not grown
    expect(Buffer.compare(new Uint8Array(cpu.wasm_memory.buffer, svga.byteOffset, svga.length), svgaBefore)).toBe(0); // put back
    emu.run();
    const out = await emu.waitFor("END\n", 30_000);
    expect(out).toBe(expectedReport({ memorySize, cmdline, module, moduleName: "payload.bin" }));
  });

  it("negative control: the same placement entered with EAX not the Multiboot magic and EBX at an empty page reports that, not the structure", async () => {
    const kernel = buildMbiKernel();
    emu = await createEmulator({ memorySize: 32 * MiB });
    const boot = await bootV86(emu.emulator, { files: fromMap({ k: kernel }), kernel: "k", cmdline: "x" });
    // An empty page in guest RAM (nothing placed there): the kernel must see zero flags.
    const empty = 0x20000;
    expect(boot.placed.every((p) => p.paddr + p.size <= empty || p.paddr >= empty + 0x1000)).toBe(true);
    setV86CpuState(emu.emulator, { ...boot.cpu, regs: { ...boot.cpu.regs, eax: 0x12345678n, ebx: BigInt(empty) } });
    emu.run();
    const out = await emu.waitFor("END\n", 30_000);
    expect(out).toBe(["eax=12345678", "ebx_nonzero=00000001", "flags=00000000", "mem_lower=00000000", "mem_upper=00000000", "END", ""].join("\n"));
  });
});
