// The x86 GDT, page tables and CPU state bootLinux hands over, decoded here from guest RAM by the
// rules of the Intel SDM vol. 3 (not from src/): §3.4.5 segment descriptors (limit 15:0, base
// 23:0, access byte = type | S << 4 | DPL << 5 | P << 7, limit 19:16, flags AVL/L/D/G, base
// 31:24), §4.5 4-level paging (PML4E 47:39, PDPTE 38:30, PDE 29:21 with PS = 2 MiB page; bit 0
// P, bit 1 R/W; address bits 51:12), control bits CR0.PE 0 / PG 31, CR4.PAE 5, EFER.LME 8 /
// LMA 10. What they must say comes from Linux Documentation/arch/x86/boot.rst: __BOOT_CS 0x10
// execute/read, __BOOT_DS 0x18 read/write, both flat 4 GiB; 32-bit: %esi = boot_params, %ebp =
// %edi = %ebx = 0, paging off; 64-bit: paging on, the kernel's init_size range from its load
// address, the zero page and the command line identity-mapped.
// That QEMU decodes the same segments from the same bytes, and that Linux boots from them, is
// test/realboot/x86.test.ts.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { X86CpuState } from "../../src/boot/cpu-x86.js";
import { bootLinux, createVm, fromMap, GuestImageError, type Vm } from "../../src/node.js";
import { placeX86Tables } from "../../src/boot/x86-tables.js";
import { bzImage } from "./x86-synthetic.js";

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

function descriptor(vm: Vm, gdtBase: bigint, selector: number) {
  const b = vm.ram.read(Number(gdtBase) + (selector & ~7), 8);
  const limitRaw = b[0] | (b[1] << 8) | ((b[6] & 0xf) << 16);
  const g = (b[6] & 0x80) !== 0;
  return {
    base: BigInt(b[2] | (b[3] << 8) | (b[4] << 16)) | (BigInt(b[7]) << 24n),
    limit: g ? limitRaw * 4096 + 4095 : limitRaw,
    type: b[5] & 0xf,
    s: (b[5] & 0x10) !== 0,
    dpl: (b[5] >> 5) & 3,
    present: (b[5] & 0x80) !== 0,
    avl: (b[6] & 0x10) !== 0,
    l: (b[6] & 0x20) !== 0,
    db: (b[6] & 0x40) !== 0,
    g,
  };
}

/** Intel SDM 4-level walk of `va` from cr3; returns the physical address or why it faults. */
function walk(vm: Vm, cr3: bigint, va: bigint): bigint | string {
  const entry = (table: bigint, index: bigint) => new DataView(vm.ram.read(Number(table + index * 8n), 8).buffer).getBigUint64(0, true);
  const addr = (e: bigint) => e & 0x000f_ffff_ffff_f000n;
  const pml4e = entry(cr3 & ~0xfffn, (va >> 39n) & 511n);
  if (!(pml4e & 1n) || !(pml4e & 2n)) return "PML4E not present/writable";
  const pdpte = entry(addr(pml4e), (va >> 30n) & 511n);
  if (!(pdpte & 1n) || !(pdpte & 2n)) return "PDPTE not present/writable";
  if (pdpte & 0x80n) return addr(pdpte) & ~0x3fff_ffffn | (va & 0x3fff_ffffn);
  const pde = entry(addr(pdpte), (va >> 21n) & 511n);
  if (!(pde & 1n) || !(pde & 2n)) return "PDE not present/writable";
  if (pde & 0x80n) return (addr(pde) & ~0x1f_ffffn) | (va & 0x1f_ffffn);
  const pte = entry(addr(pde), (va >> 12n) & 511n);
  if (!(pte & 1n)) return "PTE not present";
  return addr(pte) | (va & 0xfffn);
}

async function boot(opts: { x86Mode?: "protected" | "long"; x86Tables?: boolean; ram?: { base: number; size: number }[] } = {}) {
  const vm = await createVm({ ram: opts.ram ?? [{ base: 0, size: 64 * MiB }], files: fromMap({ bzImage: bzImage(), initrd: new Uint8Array(0x2000).fill(9) }) });
  const b = await bootLinux(vm, { arch: "x86_64", kernel: "bzImage", initrd: "initrd", cmdline: "console=ttyS0", x86Mode: opts.x86Mode, x86Tables: opts.x86Tables });
  return { vm, b, cpu: b.cpu as X86CpuState };
}

function expectFlatSegments(vm: Vm, cpu: X86CpuState, long: boolean) {
  const cs = descriptor(vm, cpu.gdtr!.base, 0x10);
  const ds = descriptor(vm, cpu.gdtr!.base, 0x18);
  // boot.rst: __BOOT_CS execute/read, __BOOT_DS read/write, both flat 4 GiB, present, ring 0.
  expect(cs.s && (cs.type & 0b1010) === 0b1010 && cs.present && cs.dpl === 0).toBe(true);
  expect(ds.s && (ds.type & 0b1010) === 0b0010 && ds.present && ds.dpl === 0).toBe(true);
  for (const d of [cs, ds]) expect([d.base, d.limit]).toEqual([0n, 0xffffffff]);
  expect([cs.l, cs.db]).toEqual(long ? [true, false] : [false, true]);
  expect(ds.db).toBe(true);
  // The reported segments are what the GDT says (a VMM loading them with KVM_SET_SREGS and one
  // letting the CPU read the GDT get the same state).
  for (const [name, sel] of [["cs", 0x10], ["ds", 0x18], ["es", 0x18], ["ss", 0x18], ["fs", 0x18], ["gs", 0x18]] as const) {
    const d = descriptor(vm, cpu.gdtr!.base, sel);
    const s = cpu.segments[name];
    expect({ selector: s.selector, base: s.base, limit: s.limit, type: s.type, s: s.s, dpl: s.dpl, present: s.present, avl: s.avl, l: s.l, db: s.db, g: s.g }).toEqual({ selector: sel, ...d });
    // VMX access-rights layout (SDM vol. 3 §24.4.1): type 3:0, S 4, DPL 6:5, P 7, AVL 12, L 13, D/B 14, G 15.
    const ar = d.type | (+d.s << 4) | (d.dpl << 5) | (+d.present << 7) | (+d.avl << 12) | (+d.l << 13) | (+d.db << 14) | (+d.g << 15);
    expect(s.access).toBe(ar);
    expect(cpu.regs[name]).toBe(BigInt(sel));
  }
  expect(cpu.gdtr!.limit).toBeGreaterThanOrEqual(0x18 + 7);
}

describe("x86 64-bit entry: GDT, identity page tables and the CPU state", () => {
  it("GDT with flat __BOOT_CS (64-bit) / __BOOT_DS, recorded in the ledger as \"gdt\"; segments reported as the GDT says", async () => {
    const { vm, b, cpu } = await boot();
    expect(cpu.mode).toBe("long");
    expect(cpu.tables).toBe("placed");
    const gdt = vm.placed().find((p) => p.name === "gdt")!;
    expect(BigInt(gdt.paddr)).toBe(cpu.gdtr!.base);
    expect(gdt.size).toBe(cpu.gdtr!.limit + 1);
    expect(b.placements.find((p) => p.role === "gdt")!.paddr).toBe(gdt.paddr);
    expect(cpu.gdtr!.base).toBe(0n); // lowest free RAM: where GDTR points after reset
    expectFlatSegments(vm, cpu, true);
  });

  it("page tables identity-map 0–4 GiB, the kernel's init_size range, the zero page and the command line; cr0/cr4/efer as long mode needs", async () => {
    const { vm, b, cpu } = await boot();
    const pt = vm.placed().find((p) => p.name === "page tables")!;
    expect(BigInt(pt.paddr)).toBe(cpu.cr3);
    expect(pt.paddr + pt.size).toBeLessThanOrEqual(4 * GiB);
    const cr3 = cpu.cr3!;
    const initSize = new DataView(bzImage().buffer).getUint32(0x260, true);
    const must = [0n, 0x1000n, BigInt(b.kernel.paddr), BigInt(b.kernel.paddr + initSize - 1), BigInt(b.zeroPage!.paddr), BigInt(b.cmdline!.paddr), cpu.pc,
      0x1234_5678n, 0xffff_f000n, 0xffff_ffffn, BigInt(b.initrd!.paddr)];
    for (const va of must) expect(walk(vm, cr3, va), `0x${va.toString(16)}`).toBe(va);
    // Every 2 MiB page below 4 GiB.
    for (let va = 0n; va < 4n * BigInt(GiB); va += 0x20_0000n) if (walk(vm, cr3, va) !== va) throw new Error(`0x${va.toString(16)} not identity-mapped`);
    expect(cpu.cr0 & 1n).toBe(1n); // PE
    expect(cpu.cr0 & (1n << 31n)).toBe(1n << 31n); // PG
    expect(cpu.cr0 & (3n << 29n)).toBe(0n); // CD/NW clear: caches on
    expect(cpu.cr4 & (1n << 5n)).toBe(1n << 5n); // PAE
    expect(cpu.efer & (1n << 8n)).toBe(1n << 8n); // LME
    expect(cpu.efer & (1n << 10n)).toBe(1n << 10n); // LMA, what the CPU reports once PG is set
    expect(cpu.rflags & (1n << 9n)).toBe(0n); // IF = 0: interrupts off
    expect(cpu.rflags & 2n).toBe(2n); // bit 1 is always 1
  });

  it("registers: rsi = zero page, every other general register listed and zero; rip = pc = the 64-bit entry (load address + 0x200)", async () => {
    const { b, cpu } = await boot();
    const gprs = ["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"];
    for (const r of gprs) expect(cpu.regs[r], r).toBe(r === "rsi" ? BigInt(b.zeroPage!.paddr) : 0n);
    expect(cpu.pc).toBe(BigInt(b.kernel.paddr) + 0x200n); // boot.rst: 64-bit entry at load address + 0x200
    expect(cpu.rip).toBe(cpu.pc);
  });

  it("x86Tables: false places no GDT or page tables and says so (gdtr and cr3 null); the segments stay described", async () => {
    const { vm, cpu } = await boot({ x86Tables: false });
    expect(vm.placed().map((p) => p.name)).not.toContain("gdt");
    expect(vm.placed().map((p) => p.name)).not.toContain("page tables");
    expect(cpu.gdtr).toBeNull();
    expect(cpu.cr3).toBeNull();
    expect(cpu.tables).toBe("vmm");
    expect(cpu.segments.cs).toMatchObject({ selector: 0x10, l: true, present: true });
  });

  it("placeX86Tables: ranges to map above 4 GiB add their 1 GiB slots (sparse), not everything below them", async () => {
    const vm = await createVm({ ram: [{ base: 0, size: 16 * MiB }] });
    const far = 2 ** 40 + 5 * GiB; // 1 TiB + 5 GiB: a second PDPT
    const t = await placeX86Tables(vm, { long: true, map: [{ base: 6 * GiB - 0x1000, size: 0x2000 }, { base: far, size: 0x1000 }], avoid: [] });
    const cr3 = BigInt(t.pageTables!.paddr);
    for (const va of [0n, 4n * BigInt(GiB) - 1n, 5n * BigInt(GiB), 6n * BigInt(GiB) + 0xfffn, BigInt(far), BigInt(far) + 0xfffn]) expect(walk(vm, cr3, va), `0x${va.toString(16)}`).toBe(va);
    for (const va of [4n * BigInt(GiB), 7n * BigInt(GiB), BigInt(far) - BigInt(GiB)]) expect(typeof walk(vm, cr3, va), `0x${va.toString(16)}`).toBe("string");
    // PML4, 2 PDPTs (0–512 GiB, 1 TiB–), page directories for GiB 0–3, 5, 6 and 1029.
    expect(t.pageTables!.size).toBe((1 + 2 + 7) * 4096);
    const placed = vm.placed();
    const e = await placeX86Tables(vm, { long: true, map: [{ base: 2 ** 48, size: 1 }], avoid: [] }).then(() => undefined, (x: unknown) => x);
    expect((e as GuestImageError).code).toBe("UNSUPPORTED");
    expect(vm.placed()).toEqual(placed); // refused before the GDT was placed
  });
});

describe("x86 32-bit entry", () => {
  it("GDT with flat 32-bit __BOOT_CS / __BOOT_DS; esi = zero page, ebx = ebp = edi = 0; paging off", async () => {
    const { vm, b, cpu } = await boot({ x86Mode: "protected" });
    expect(cpu.mode).toBe("protected");
    expectFlatSegments(vm, cpu, false);
    expect(vm.placed().map((p) => p.name)).not.toContain("page tables");
    for (const r of ["eax", "ebx", "ecx", "edx", "esi", "edi", "ebp", "esp"]) expect(cpu.regs[r], r).toBe(r === "esi" ? BigInt(b.zeroPage!.paddr) : 0n);
    expect(cpu.pc).toBe(BigInt(b.kernel.paddr)); // boot.rst: 32-bit entry at the load address
    expect(cpu.cr0 & 1n).toBe(1n);
    expect(cpu.cr0 & (1n << 31n)).toBe(0n);
    expect(cpu.cr3).toBe(0n);
    expect(cpu.efer & (1n << 8n)).toBe(0n);
  });

  it("with a full low region, the zero page and command line are still placed below 4 GiB (RAM above is not used for them)", async () => {
    // The synthetic kernel: its file at 0x100000 (code32_start), its decompression window [16 MiB, +init_size 4 MiB).
    const ram = [{ base: 0x100000, size: 0x3000 }, { base: 0x1000000, size: 4 * MiB }, { base: 0x3000000, size: 0x5000 }, { base: 5 * GiB, size: 64 * MiB }];
    const { b } = await boot({ x86Mode: "protected", ram });
    for (const p of [b.zeroPage!, b.cmdline!]) expect(p.paddr + p.size).toBeLessThanOrEqual(4 * GiB);
  });

  it("no free RAM below 4 GiB for the zero page: OUT_OF_RAM naming the constraint, nothing placed", async () => {
    // The relocatable kernel goes to its pref_address (16 MiB) and its init_size window fills that
    // region: the only other RAM is above 4 GiB.
    const vm = await createVm({ ram: [{ base: 0x1000000, size: 4 * MiB }, { base: 5 * GiB, size: 64 * MiB }], files: fromMap({ bzImage: bzImage() }) });
    const e = await bootLinux(vm, { arch: "x86_64", kernel: "bzImage", x86Mode: "protected" }).then(() => undefined, (x: unknown) => x);
    expect(e).toBeInstanceOf(GuestImageError);
    expect((e as GuestImageError).code).toBe("OUT_OF_RAM");
    expect((e as GuestImageError).message).toMatch(/below 4 GiB.*32-bit/);
    expect(vm.placed()).toEqual([]);
  });
});

describe("tables asked for where no low RAM is free", () => {
  it("64-bit entry: OUT_OF_RAM naming the tables and x86Tables; RAM and ledger unchanged. x86Tables: false boots the same RAM", async () => {
    // Low RAM: the kernel's file and window, and three pages (GDT, command line, zero page) — no room for page tables.
    const ram = [{ base: 0, size: 0x3000 }, { base: 0x100000, size: 0x3000 }, { base: 0x1000000, size: 4 * MiB }, { base: 5 * GiB, size: 64 * MiB }];
    const files = fromMap({ bzImage: bzImage() });
    const vm = await createVm({ ram, files });
    const before = vm.ram.read(0, 0x3000);
    const e = await bootLinux(vm, { arch: "x86_64", kernel: "bzImage" }).then(() => undefined, (x: unknown) => x);
    expect(e).toBeInstanceOf(GuestImageError);
    expect((e as GuestImageError).code).toBe("OUT_OF_RAM");
    expect((e as GuestImageError).field).toBe("x86Tables");
    expect((e as GuestImageError).message).toMatch(/below 4 GiB.*page tables|page tables.*below 4 GiB/);
    expect(vm.placed()).toEqual([]);
    expect(vm.ram.read(0, 0x3000)).toEqual(before);
    const ok = await bootLinux(vm, { arch: "x86_64", kernel: "bzImage", x86Tables: false });
    expect((ok.cpu as X86CpuState).cr3).toBeNull();
  });
});

describe("CLI: --x86-entry, --no-x86-tables", () => {
  const root = fileURLToPath(new URL("../..", import.meta.url));
  const cli = (...args: string[]) => spawnSync(process.execPath, [join(root, "dist/cli/main.js"), ...args], { encoding: "utf8" });
  it("--x86-entry 32/64 and --no-x86-tables reach the JSON cpu object; bad values are usage errors", async () => {
    const { mkdtempSync, writeFileSync, rmSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const dir = mkdtempSync(join(tmpdir(), "gi-x86cli-"));
    try {
      const k = join(dir, "bzImage");
      writeFileSync(k, bzImage());
      const run = (...extra: string[]) => {
        const r = cli("boot", "--arch", "x86_64", "--ram", "0:64M", "--kernel", k, "--json", ...extra);
        expect(r.stderr).toBe("");
        return JSON.parse(r.stdout).cpu;
      };
      const c64 = run("--x86-entry", "64");
      expect(c64.mode).toBe("long");
      expect(c64.gdtr).toEqual({ base: "0x0", limit: "0x1f" });
      expect(c64.segments.cs).toMatchObject({ selector: "0x10", l: true, access: "0xa09b" });
      expect(c64.regs.rsi).toMatch(/^0x[0-9a-f]+$/);
      expect(c64.regs.r15).toBe("0x0");
      expect(Object.keys(c64)).toEqual(expect.arrayContaining(["mode", "pc", "regs"])); // the contract's keys stay
      const c32 = run("--x86-entry", "32");
      expect(c32.mode).toBe("protected");
      expect(c32.regs.esi).toMatch(/^0x[0-9a-f]+$/);
      const none = run("--no-x86-tables");
      expect(none.gdtr).toBeNull();
      expect(none.cr3).toBeNull();
      expect(cli("boot", "--arch", "x86_64", "--ram", "0:64M", "--kernel", k, "--x86-entry", "16").status).toBe(2);
      expect(cli("boot", "--arch", "arm64", "--ram", "0:64M", "--kernel", k, "--no-x86-tables").status).toBe(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
