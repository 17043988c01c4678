/**
 * The arm64 / arm / riscv hand-off as data (boot.cpu), the boot stubs, the device tree seeds and
 * size limits. Oracles: the GNU cross assemblers (the stubs' words must be what `as` makes of
 * the instructions their comments name), fdtget/dtc (the written trees), and the booting
 * documents for the register values. The real boots are in test/realboot/.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { bootLinux, createVm, fdt, fromMap, GuestImageError, writeFdt, type Vm } from "../../src/node.js";
import { arm64Stub } from "../../src/boot/stubs/arm64.js";
import { armStub } from "../../src/boot/stubs/arm.js";
import { riscvStub } from "../../src/boot/stubs/riscv.js";
import { fixture } from "../qemu/fixtures.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const MiB = 0x100000;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "guest-image-handoff-"));

function run(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

/** What the GNU assembler makes of `source` (the .text section's bytes). */
function assemble(prefix: string, source: string, asFlags: string[] = []): Uint8Array {
  const base = path.join(tmp, `s${Math.random().toString(36).slice(2)}`);
  fs.writeFileSync(`${base}.s`, source);
  run(`${prefix}as`, [...asFlags, `${base}.s`, "-o", `${base}.o`]);
  run(`${prefix}objcopy`, ["-O", "binary", "-j", ".text", `${base}.o`, `${base}.bin`]);
  return new Uint8Array(fs.readFileSync(`${base}.bin`));
}

function arm64Image(): Uint8Array {
  const b = new Uint8Array(0x10000);
  const dv = new DataView(b.buffer);
  dv.setBigUint64(16, 0x300000n, true); // image_size
  dv.setBigUint64(24, 0xan, true);
  dv.setUint32(0x38, 0x644d5241, true); // "ARM\x64"
  return b;
}
function riscvImage(): Uint8Array {
  const b = new Uint8Array(0x10000);
  const dv = new DataView(b.buffer);
  dv.setBigUint64(8, 0x200000n, true);
  dv.setBigUint64(16, 0x100000n, true);
  dv.setUint32(0x20, 2, true);
  dv.setUint32(0x38, 0x05435352, true); // "RSC\x05"
  return b;
}
function zImage(): Uint8Array {
  const z = new Uint8Array(0x2000);
  const dv = new DataView(z.buffer);
  dv.setUint32(0x24, 0x016f2818, true);
  dv.setUint32(0x2c, z.length, true);
  dv.setUint32(0x30, 0x04030201, true);
  return z;
}

const fdtget = (blob: Uint8Array, node: string, prop: string, type = "bx") => {
  const f = path.join(tmp, `t${Math.random().toString(36).slice(2)}.dtb`);
  fs.writeFileSync(f, blob);
  return run("fdtget", ["-t", type, f, node, prop]).trim();
};

describe("boot stubs: our words are what the assembler makes of the instructions named", () => {
  it("arm64", () => {
    const ours = arm64Stub({ dtb: 0x1122334455667788n, entry: 0x99aabbccddeeff00n });
    const ref = assemble("aarch64-linux-gnu-", `
      msr daifset, #0xf
      ldr x0, 1f
      mov x1, xzr
      mov x2, xzr
      mov x3, xzr
      ldr x4, 2f
      br x4
      nop
    1: .quad 0x1122334455667788
    2: .quad 0x99aabbccddeeff00
    `);
    expect(Buffer.from(ours).toString("hex")).toBe(Buffer.from(ref).toString("hex"));
  });

  it("arm", () => {
    const ours = armStub({ dtb: 0x48001000n, entry: 0x40010000n });
    const ref = assemble("arm-linux-gnueabihf-", `
      .arm
      cpsid if
      mov r0, #0
      mvn r1, #0
      ldr r2, 1f
      ldr pc, 2f
    1: .word 0x48001000
    2: .word 0x40010000
    `, ["-march=armv7-a"]);
    expect(Buffer.from(ours).toString("hex")).toBe(Buffer.from(ref).toString("hex"));
  });

  for (const xlen of [64, 32] as const) {
    for (const priv of ["M", "S"] as const) {
      it(`riscv${xlen}, ${priv}-mode`, () => {
        const ours = riscvStub({ xlen, priv, hart: 3n, dtb: 0x8fe00000n, a2: priv === "M" ? 0x8fffffd0n : 0n, target: priv === "M" ? 0x80000000n : 0x80200000n });
        const l = xlen === 64 ? "ld" : "lw";
        const w = xlen === 64 ? ".dword" : ".word";
        // Literal i at base + 0x20 + i·xlen/8, from t0 = base + 8 (the layout in stubs/riscv.ts).
        const o = (i: number) => 0x18 + (i * xlen) / 8;
        const ref = assemble("riscv64-linux-gnu-", `
          .option norvc
          ${priv === "M" ? "csrci mstatus, 8\n csrw mie, zero" : "csrci sstatus, 2\n csrw satp, zero"}
          auipc t0, 0
          ${l} a0, ${o(0)}(t0)
          ${l} a1, ${o(1)}(t0)
          ${l} a2, ${o(2)}(t0)
          ${l} t0, ${o(3)}(t0)
          jalr zero, 0(t0)
          ${w} 3
          ${w} 0x8fe00000
          ${w} ${priv === "M" ? "0x8fffffd0" : "0"}
          ${w} ${priv === "M" ? "0x80000000" : "0x80200000"}
        `, [`-march=rv${xlen}gc_zicsr`, `-mabi=${xlen === 64 ? "lp64" : "ilp32"}`, "-mno-relax"]);
        expect(Buffer.from(ours).toString("hex")).toBe(Buffer.from(ref).toString("hex"));
      });
    }
  }
});

async function expectRefused(vm: Vm, p: () => Promise<unknown>, code: string, re: RegExp): Promise<void> {
  const before = vm.placed();
  const ram = vm.ram.read(vm.ram.regions[0].base, Math.min(vm.ram.regions[0].size, 8 * MiB));
  let err: unknown;
  try {
    await p();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(GuestImageError);
  expect((err as GuestImageError).code).toBe(code);
  expect((err as GuestImageError).message).toMatch(re);
  expect(vm.placed()).toEqual(before);
  expect(Buffer.compare(vm.ram.read(vm.ram.regions[0].base, ram.length), ram)).toBe(0);
}

describe("boot.cpu: every protocol register, the privilege level, interrupts/MMU/caches", () => {
  it("arm64: EL1h with DAIF masked (PSTATE 0x3c5), x0 = DTB, x1–x3 = 0; with a stub pc is the stub, which holds the DTB and the entry", async () => {
    const vm = await createVm({ ram: [{ base: 0x40000000, size: 64 * MiB }], files: fromMap({ Image: arm64Image() }) });
    const b = await bootLinux(vm, { arch: "arm64", kernel: "Image", stub: true, seed: 1 });
    expect(b.cpu).toMatchObject({
      arch: "arm64", el: 1, pstate: 0x3c5n, interruptsMasked: true, mmu: false, dataCache: false,
      target: 0x40000000n, regs: { x0: BigInt(b.dtb!.paddr), x1: 0n, x2: 0n, x3: 0n },
    });
    const stub = b.placements.find((p) => p.role === "stub")!;
    expect(b.cpu.pc).toBe(BigInt(stub.paddr));
    expect(b.cpu.stub).toEqual({ paddr: stub.paddr, size: 0x30 });
    expect(stub.paddr % 8).toBe(0);
    // The stub in RAM disassembles (objdump) to the loads of the DTB and the kernel entry.
    const f = path.join(tmp, "stub-a64.bin");
    fs.writeFileSync(f, vm.ram.read(stub.paddr, stub.size));
    const dis = run("aarch64-linux-gnu-objdump", ["-D", "-b", "binary", "-m", "aarch64", f]);
    expect(dis).toMatch(/ldr\s+x0, 0x20/);
    expect(dis).toMatch(/br\s+x4/);
    const lit = new DataView(vm.ram.read(stub.paddr + 0x20, 16).buffer);
    expect([lit.getBigUint64(0, true), lit.getBigUint64(8, true)]).toEqual([BigInt(b.dtb!.paddr), 0x40000000n]);
  });

  it("arm: SVC, ARM state, IRQ/FIQ/A masked (CPSR 0x1d3), r0 = 0, r1 = ~0, r2 = DTB", async () => {
    const vm = await createVm({ ram: [{ base: 0x40000000, size: 64 * MiB }], files: fromMap({ zImage: zImage() }) });
    const b = await bootLinux(vm, { arch: "arm", kernel: "zImage" });
    expect(b.cpu).toMatchObject({ arch: "arm", cpuMode: "svc", cpsr: 0x1d3n, isa: "arm", interruptsMasked: true, mmu: false, dataCache: false, pc: 0x40008000n, target: 0x40008000n });
    expect(b.cpu.regs).toEqual({ r0: 0n, r1: 0xffffffffn, r2: BigInt(b.dtb!.paddr) });
    expect(b.cpu.stub).toBeUndefined();
  });

  it("riscv64: S-mode with sbi required and satp 0 without firmware; M-mode with a2 = fw_dynamic_info with it", async () => {
    const vm = await createVm({ ram: [{ base: 0x80000000, size: 64 * MiB }], files: fromMap({ Image: riscvImage(), fw: new Uint8Array(0x20000).fill(0x13) }) });
    const s = await bootLinux(vm, { arch: "riscv64", kernel: "Image", hartId: 2 });
    expect(s.cpu).toMatchObject({ arch: "riscv64", priv: "S", sbi: "required", satp: 0n, interruptsMasked: true, mmu: false, pc: 0x80200000n });
    expect(s.cpu.regs).toEqual({ a0: 2n, a1: BigInt(s.dtb!.paddr) });
    const vm2 = await createVm({ ram: [{ base: 0x80000000, size: 64 * MiB }], files: fromMap({ Image: riscvImage(), fw: new Uint8Array(0x20000).fill(0x13) }) });
    const m = await bootLinux(vm2, { arch: "riscv64", kernel: "Image", firmware: "fw", stub: true });
    const info = m.placements.find((p) => p.role === "fw_dynamic_info")!;
    const stub = m.placements.find((p) => p.role === "stub")!;
    expect(m.cpu).toMatchObject({ priv: "M", sbi: "firmware", target: 0x80000000n, pc: BigInt(stub.paddr), regs: { a0: 0n, a1: BigInt(m.dtb!.paddr), a2: BigInt(info.paddr) } });
    // The M-mode stub: mstatus.MIE cleared first, the firmware as the jump target (objdump).
    const f = path.join(tmp, "stub-rv.bin");
    fs.writeFileSync(f, vm2.ram.read(stub.paddr, stub.size));
    const dis = run("riscv64-linux-gnu-objdump", ["-D", "-b", "binary", "-m", "riscv:rv64", f]);
    expect(dis).toMatch(/0:\s+30047073\s+csrc\s+mstatus,8/);
    const lits = new DataView(vm2.ram.read(stub.paddr + 0x20, 32).buffer);
    expect([0, 8, 16, 24].map((o) => lits.getBigUint64(o, true))).toEqual([0n, BigInt(m.dtb!.paddr), BigInt(info.paddr), 0x80000000n]);
  });

  it("riscv32: the S-mode stub holds 32-bit literals (lw) and lies below 4 GiB", async () => {
    const vm = await createVm({ ram: [{ base: 0x80000000, size: 64 * MiB }], files: fromMap({ Image: riscvImage() }) });
    const b = await bootLinux(vm, { arch: "riscv32", kernel: "Image", stub: true, hartId: 1 });
    const stub = b.placements.find((p) => p.role === "stub")!;
    expect(stub.size).toBe(0x30);
    expect(b.cpu).toMatchObject({ arch: "riscv32", priv: "S", sbi: "required", pc: BigInt(stub.paddr), target: b.kernel.entry });
    const f = path.join(tmp, "stub-rv32.bin");
    fs.writeFileSync(f, vm.ram.read(stub.paddr, stub.size));
    const dis = run("riscv64-linux-gnu-objdump", ["-D", "-b", "binary", "-m", "riscv:rv32", f]);
    expect(dis).toMatch(/lw\s+a1,28\(t0\)/);
    const lits = new DataView(vm.ram.read(stub.paddr + 0x20, 16).buffer);
    expect([0, 4, 8, 12].map((o) => lits.getUint32(o, true))).toEqual([1, b.dtb!.paddr, 0, Number(b.kernel.entry)]);
  });

  it("arm: a stub whose kernel or tree lies above 4 GiB is refused (BAD_ADDRESS), nothing placed", async () => {
    // (a zImage is refused there by its own format; a raw kernel is not)
    const vm = await createVm({ ram: [{ base: 0x1_0000_0000, size: 64 * MiB }], files: fromMap({ kernel: new Uint8Array(0x1000).fill(0xe1) }) });
    await expectRefused(vm, () => bootLinux(vm, { arch: "arm", kernel: "kernel", stub: true }), "BAD_ADDRESS", /32-bit addresses: entry 0x100008000/);
  });

  it("a stub on x86 is refused (UNSUPPORTED) and nothing changes; so is a stub that is not a boolean", async () => {
    const vm = await createVm({ ram: [{ base: 0, size: 256 * MiB }], files: fromMap({ bzImage: new Uint8Array(fs.readFileSync(fixture("amd64/bzImage"))) }) });
    await expectRefused(vm, () => bootLinux(vm, { arch: "x86_64", kernel: "bzImage", stub: true }), "UNSUPPORTED", /no boot stub for x86_64/);
    const vm2 = await createVm({ ram: [{ base: 0x40000000, size: 64 * MiB }], files: fromMap({ Image: arm64Image() }) });
    await expectRefused(vm2, () => bootLinux(vm2, { arch: "arm64", kernel: "Image", stub: "yes" as unknown as boolean }), "BAD_ARGUMENT", /stub must be true or false/);
    await expectRefused(vm2, () => bootLinux(vm2, { arch: "arm64", kernel: "Image", seed: -1 }), "BAD_ARGUMENT", /seed must be an integer/);
  });
});

describe("/chosen rng-seed and kaslr-seed", () => {
  const boot = async (o: { seed?: number | bigint; dtb?: Uint8Array; arch?: "arm64" | "riscv64" }) => {
    const arch = o.arch ?? "arm64";
    const vm = await createVm({ ram: [{ base: arch === "arm64" ? 0x40000000 : 0x80000000, size: 64 * MiB }], files: fromMap({ Image: arch === "arm64" ? arm64Image() : riscvImage() }) });
    const b = await bootLinux(vm, { arch, kernel: "Image", seed: o.seed, dtb: o.dtb });
    return vm.ram.read(b.dtb!.paddr, b.dtb!.size);
  };

  it("are fresh for every boot (32 + 8 bytes, fdtget), on arm64 and riscv", async () => {
    for (const arch of ["arm64", "riscv64"] as const) {
      const [a, b] = [await boot({ arch }), await boot({ arch })];
      const [ra, rb] = [fdtget(a, "/chosen", "rng-seed"), fdtget(b, "/chosen", "rng-seed")];
      expect(ra.split(" ")).toHaveLength(32);
      expect(ra).not.toBe(rb);
      const [ka, kb] = [fdtget(a, "/chosen", "kaslr-seed", "x"), fdtget(b, "/chosen", "kaslr-seed", "x")];
      expect(ka.split(" ")).toHaveLength(2); // a u64: two cells
      expect(ka).not.toBe(kb);
    }
  });

  it("a seed makes the boot reproducible byte for byte; another seed differs", async () => {
    const [a, b, c] = [await boot({ seed: 42 }), await boot({ seed: 42n }), await boot({ seed: 43 })];
    expect(Buffer.compare(a, b)).toBe(0);
    expect(fdtget(a, "/chosen", "rng-seed")).not.toBe(fdtget(c, "/chosen", "rng-seed"));
  });

  it("never come from the input tree", async () => {
    const t = fdt.emptyFdt();
    fdt.setProp(t.root, "#address-cells", fdt.u32Value(2));
    fdt.setProp(t.root, "#size-cells", fdt.u32Value(2));
    const chosen = fdt.ensureNode(t, "/chosen");
    fdt.setProp(chosen, "rng-seed", new Uint8Array(32).fill(0xab));
    fdt.setProp(chosen, "kaslr-seed", new Uint8Array([0, 0, 0, 0x11, 0, 0, 0, 0x22]));
    const out = await boot({ dtb: writeFdt(t) });
    expect(fdtget(out, "/chosen", "rng-seed")).not.toContain("ab ab ab ab");
    expect(fdtget(out, "/chosen", "kaslr-seed", "x")).not.toBe("11 22");
  });
});

describe("device tree size limits", () => {
  it("arm, qemu layout, QEMU's own 1 MiB tree: QEMU's 2 × (size + 10000) padding shrinks so the tree ends within the 2 MiB head.S maps", async () => {
    const dumped = path.join(tmp, "virt-arm.dtb");
    const r = spawnSync("qemu-system-arm", ["-M", `virt,dumpdtb=${dumped}`, "-m", "256M", "-nodefaults", "-display", "none"], { encoding: "utf8" });
    expect(fs.existsSync(dumped), r.stderr).toBe(true);
    const tree = new Uint8Array(fs.readFileSync(dumped));
    const vm = await createVm({ ram: [{ base: 0x40000000, size: 256 * MiB }], files: fromMap({ zImage: zImage(), initrd: new Uint8Array(0x139e00) }) });
    const b = await bootLinux(vm, { arch: "arm", kernel: "zImage", initrd: "initrd", dtb: tree, layout: "qemu" });
    const at = b.dtb!.paddr;
    expect(at).toBe(0x4813a000); // after the initrd, 4 KiB aligned (QEMU's rule)
    const blob = vm.ram.read(at, b.dtb!.size);
    const totalsize = new DataView(blob.buffer).getUint32(4, false);
    expect(at - (at & ~(MiB - 1)) + totalsize).toBeLessThanOrEqual(2 * MiB);
    expect(fdtget(blob, "/chosen", "linux,initrd-start", "x")).toBe("48000000");
  });
});

describe("CLI boot --stub / --seed", () => {
  const cli = (...args: string[]) => spawnSync(process.execPath, ["dist/cli/main.js", ...args], { cwd: ROOT, encoding: "utf8" });
  it("--stub: cpu.pc is the stub, cpu.el a plain number, the full CPU state in --json; --seed reproduces the tree", () => {
    const img = path.join(tmp, "Image");
    fs.writeFileSync(img, arm64Image());
    const args = ["boot", "--arch", "arm64", "--ram", "0x40000000:64M", "--kernel", img, "--stub", "--seed", "0x1234", "--json"];
    const r1 = cli(...args, "--dump-dtb", path.join(tmp, "a.dtb"));
    const r2 = cli(...args, "--dump-dtb", path.join(tmp, "b.dtb"));
    expect(r1.status, r1.stderr).toBe(0);
    const j = JSON.parse(r1.stdout);
    expect(j.cpu).toMatchObject({ arch: "arm64", el: 1, pstate: "0x3c5", mmu: false, dataCache: false, interruptsMasked: true, target: "0x40000000" });
    expect(j.cpu.pc).toBe(j.cpu.stub.paddr);
    expect(j.placements.map((p: { role: string }) => p.role)).toEqual(["kernel", "dtb", "stub"]);
    expect(Buffer.compare(fs.readFileSync(path.join(tmp, "a.dtb")), fs.readFileSync(path.join(tmp, "b.dtb")))).toBe(0);
    expect(r2.status).toBe(0);
  });
  it("--stub on x86 fails with UNSUPPORTED (exit 1); a bad --seed is a usage error (exit 2)", () => {
    const r = cli("boot", "--arch", "x86_64", "--ram", "0:256M", "--kernel", fixture("amd64/bzImage"), "--stub", "--json");
    expect(r.status).toBe(1);
    expect(JSON.parse(r.stdout).error.code).toBe("UNSUPPORTED");
    const u = cli("boot", "--arch", "arm64", "--ram", "0x40000000:64M", "--kernel", "x", "--seed", "-3");
    expect(u.status).toBe(2);
    expect(u.stderr).toMatch(/--seed/);
  });
});
