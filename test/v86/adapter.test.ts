// guest-image/v86's refusals: an emulator that already runs, a v86 build without a field the
// adapter needs, and bad images. Each fails with a typed GuestImageError before v86 runs, and
// v86's whole memory (guest RAM, the borrowed SVGA scratch, v86's own state) and CPU state are
// byte for byte what they were.
import { createHash } from "node:crypto";
import { afterEach, describe, expect, it } from "vitest";
import { bootV86, setV86CpuState, type V86Emulator } from "../../src/adapters/v86.js";
import { fromMap, GuestImageError } from "../../src/index.js";
import { createEmulator, type TestEmulator } from "./emulator.js";
import { buildMbiKernel } from "./mbi-kernel.js";

const MiB = 1024 * 1024;
let emu: TestEmulator | undefined;
afterEach(async () => {
  await emu?.destroy();
  emu = undefined;
});

type Cpu = Record<string, { [i: number]: number; buffer: ArrayBuffer }>;
const cpuOf = (e: TestEmulator) => (e.emulator as unknown as { v86: { cpu: Cpu & { wasm_memory: WebAssembly.Memory } } }).v86.cpu;
/** A digest of all of v86's linear memory: guest RAM, VGA memory and v86's own data. */
const memoryDigest = (e: TestEmulator) => createHash("sha256").update(new Uint8Array(cpuOf(e).wasm_memory.buffer)).digest("hex");
const cpuSnapshot = (e: TestEmulator) => {
  const c = cpuOf(e);
  return { ip: c.instruction_pointer[0], cr0: c.cr[0], pm: c.protected_mode[0], cs: c.sreg[1], eax: c.reg32[0], esi: c.reg32[6], bytes: c.wasm_memory.buffer.byteLength };
};

async function refusal(p: Promise<unknown>): Promise<GuestImageError> {
  const e = await p.then(() => null, (x: unknown) => x);
  expect(e, "expected a GuestImageError").toBeInstanceOf(GuestImageError);
  return e as GuestImageError;
}

describe("guest-image/v86 refuses before v86 runs, leaving v86 unchanged", () => {
  it("an emulator created with autostart: true is refused with BAD_ARGUMENT naming autostart", async () => {
    emu = await createEmulator({ memorySize: 16 * MiB, autostart: true });
    const e = await refusal(bootV86(emu.emulator, { files: fromMap({ k: buildMbiKernel() }), kernel: "k" }));
    expect([e.code, e.field]).toEqual(["BAD_ARGUMENT", "autostart"]);
    expect(e.message).toMatch(/autostart: false/);
  });

  it("a v86 build without a field the adapter uses fails with UNSUPPORTED naming the field, not a TypeError", async () => {
    emu = await createEmulator({ memorySize: 16 * MiB });
    const cpu = cpuOf(emu);
    for (const missing of ["segment_limits", "update_state_flags", "wasm_memory", "instruction_pointer", "mem8"]) {
      const renamed = new Proxy(cpu, { get: (t, p) => (p === missing ? undefined : Reflect.get(t, p)) });
      const fake: V86Emulator = { v86: { cpu: renamed }, is_running: () => false };
      const before = memoryDigest(emu);
      const e = await refusal(bootV86(fake, { files: fromMap({ k: buildMbiKernel() }), kernel: "k" }));
      expect([e.code, e.field]).toEqual(["UNSUPPORTED", `cpu.${missing}`]);
      expect(e.message).toContain(missing);
      expect(memoryDigest(emu)).toBe(before);
    }
    const e = await refusal(bootV86({ is_running: () => false } as V86Emulator, { files: fromMap({}), kernel: "k" }));
    expect([e.code, e.field]).toEqual(["UNSUPPORTED", "emulator.v86"]);
  });

  it("a truncated Multiboot kernel and an initrd larger than v86's RAM: typed errors, memory and CPU unchanged", async () => {
    emu = await createEmulator({ memorySize: 16 * MiB });
    const kernel = buildMbiKernel();
    const before = memoryDigest(emu);
    const cpu0 = cpuSnapshot(emu);
    // Cut inside the PT_LOAD's file bytes (readelf: the segment starts at file offset 0x1000).
    const cut = kernel.subarray(0, 0x1100);
    const t = await refusal(bootV86(emu.emulator, { files: fromMap({ k: cut }), kernel: "k" }));
    expect(t.code).toBe("TRUNCATED");
    expect(t.image).toBe("k");
    expect(memoryDigest(emu)).toBe(before);
    expect(cpuSnapshot(emu)).toEqual(cpu0);

    const big = new Uint8Array(16 * MiB + 1);
    const o = await refusal(bootV86(emu.emulator, { files: fromMap({ k: kernel, big }), kernel: "k", initrd: "big" }));
    expect(["TOO_LARGE", "OUT_OF_RAM"]).toContain(o.code);
    expect(o.image).toBe("big");
    expect(memoryDigest(emu)).toBe(before);
    expect(cpuSnapshot(emu)).toEqual(cpu0);
  });

  it("a Multiboot kernel that requires video mode information (a requirement bit it cannot meet) is refused, v86 unchanged", async () => {
    emu = await createEmulator({ memorySize: 16 * MiB });
    // Spec 3.1.1/3.1.2: magic, flags (bit 16 address fields, bit 2 video mode), checksum, then
    // header_addr load_addr load_end_addr bss_end_addr entry_addr, mode_type width height depth.
    const k = new Uint8Array(0x80);
    const dv = new DataView(k.buffer);
    const flags = 0x0001_0004;
    [0x1badb002, flags, (-(0x1badb002 + flags)) >>> 0, 0x100000, 0x100000, 0x100080, 0x100080, 0x100040, 0, 80, 25, 0].forEach((v, i) => dv.setUint32(i * 4, v, true));
    k[0x40] = 0xf4; // hlt
    const before = memoryDigest(emu);
    const e = await refusal(bootV86(emu.emulator, { files: fromMap({ k }), kernel: "k" }));
    expect([e.code, e.field, e.image]).toEqual(["UNSUPPORTED", "flags", "k"]);
    expect(memoryDigest(emu)).toBe(before);
  });

  it("a CPU state v86 cannot enter (long mode, a 64-bit register value) is refused before any register is written", async () => {
    emu = await createEmulator({ memorySize: 16 * MiB });
    const cpu0 = cpuSnapshot(emu);
    expect(() => setV86CpuState(emu!.emulator, { arch: "x86_64", mode: "long", pc: 0x100000n, regs: { rsi: 0x1000n } })).toThrow(GuestImageError);
    const e = (() => {
      try {
        setV86CpuState(emu!.emulator, { arch: "x86", mode: "protected", pc: 0x100000n, regs: { esi: 0x1000n, ebx: 1n << 32n } });
      } catch (x) {
        return x as GuestImageError;
      }
    })();
    expect([e?.code, e?.field]).toEqual(["BAD_ARGUMENT", "cpu.regs.ebx"]);
    expect(cpuSnapshot(emu)).toEqual(cpu0);
  });
});
