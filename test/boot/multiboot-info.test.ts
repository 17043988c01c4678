// The Multiboot information structure, read back from guest RAM after vm.place() at the offsets
// of the GNU Multiboot Specification 0.6.96, "3.3 Boot information format":
//   0 flags | 4 mem_lower | 8 mem_upper | 12 boot_device | 16 cmdline | 20 mods_count |
//   24 mods_addr | 28-43 syms | 44 mmap_length | 48 mmap_addr | 52 drives_length |
//   56 drives_addr | 60 config_table | 64 boot_loader_name | 68 apm_table | 72-87 vbe_* |
//   88-115 framebuffer_*
// Module entries (16 bytes): mod_start, mod_end, string, reserved. Memory map entries: size
// (bytes after itself), base_addr (u64), length (u64), type (1 = available RAM), walked as the
// spec's example does: next = entry + size + 4.
import { describe, expect, it } from "vitest";
import { buildMultibootInfo } from "../../src/boot/multiboot-info.js";
import { createVm, fromMap, GuestImageError } from "../../src/node.js";
import type { MultibootKernelArch } from "../../src/formats/multiboot.js";

const KiB = 1024;
const MiB = 1024 * KiB;

type Vm = Awaited<ReturnType<typeof createVm>>;

/** Reads a NUL-terminated string from guest RAM. */
function cstr(vm: Vm, addr: number): string {
  const out: number[] = [];
  for (let a = addr; ; a++) {
    const b = vm.ram.read(a, 1)[0];
    if (b === 0) break;
    out.push(b);
  }
  return new TextDecoder().decode(new Uint8Array(out));
}

const u32 = (vm: Vm, addr: number) => new DataView(vm.ram.read(addr, 4).slice().buffer).getUint32(0, true);
const u64 = (vm: Vm, addr: number) => new DataView(vm.ram.read(addr, 8).slice().buffer).getBigUint64(0, true);

/** The memory map as the spec's example code walks it. */
function mmap(vm: Vm, addr: number, length: number) {
  const out: Array<{ size: number; base: bigint; length: bigint; type: number }> = [];
  for (let p = addr; p < addr + length; p += u32(vm, p) + 4) {
    out.push({ size: u32(vm, p), base: u64(vm, p + 4), length: u64(vm, p + 12), type: u32(vm, p + 20) });
  }
  return out;
}

// A PC-like layout: 640 KiB low memory, a hole to 1 MiB, 127 MiB above.
const PC_RAM = [{ base: 0, size: 640 * KiB }, { base: MiB, size: 127 * MiB }];

describe("buildMultibootInfo: fields at the spec's offsets, read back from guest RAM", () => {
  it("flags, mem_lower/upper, cmdline, modules, mmap with a hole, boot loader name", async () => {
    const vm = await createVm({ ram: PC_RAM });
    const at = 0x9500; // where QEMU puts its info (ADDR_MBI)
    const info = buildMultibootInfo({
      at,
      ram: vm.ram.regions,
      cmdline: "console=ttyS0 root=/dev/ram",
      modules: [{ paddr: 0x200000, size: 0x1234, cmdline: "initrd.img quiet" }, { paddr: 0x300000, size: 0x10 }],
      bootLoaderName: "guest-image",
    });
    expect(info.size).toBe(info.bytes.length);
    // 116-byte struct + 2 module entries + 2 mmap entries + strings (with NULs).
    expect(info.size).toBe(116 + 2 * 16 + 2 * 24 + "console=ttyS0 root=/dev/ram".length + 1 + "initrd.img quiet".length + 1 + "guest-image".length + 1);
    const placed = await vm.place("multiboot-info", info.bytes, { at });
    expect(placed.paddr).toBe(at);
    expect(vm.placed()).toEqual([{ name: "multiboot-info", paddr: at, size: info.size }]);

    // flags: 0 mem, 2 cmdline, 3 mods, 6 mmap, 9 boot_loader_name.
    expect(u32(vm, at + 0)).toBe((1 << 0) | (1 << 2) | (1 << 3) | (1 << 6) | (1 << 9));
    expect(u32(vm, at + 4)).toBe(640); // mem_lower: KiB from 0, at most 640
    expect(u32(vm, at + 8)).toBe(127 * 1024); // mem_upper: KiB from 1 MiB to the first hole
    expect(u32(vm, at + 12)).toBe(0); // boot_device: flag 1 clear
    expect(cstr(vm, u32(vm, at + 16))).toBe("console=ttyS0 root=/dev/ram");
    expect(u32(vm, at + 20)).toBe(2); // mods_count
    const mods = u32(vm, at + 24);
    expect([u32(vm, mods), u32(vm, mods + 4)]).toEqual([0x200000, 0x201234]); // mod_start, mod_end
    expect(cstr(vm, u32(vm, mods + 8))).toBe("initrd.img quiet");
    expect(u32(vm, mods + 12)).toBe(0); // reserved
    expect([u32(vm, mods + 16), u32(vm, mods + 20), u32(vm, mods + 24), u32(vm, mods + 28)]).toEqual([0x300000, 0x300010, 0, 0]);
    for (let o = 28; o < 44; o += 4) expect(u32(vm, at + o), `syms @${o}`).toBe(0);
    const mmapLength = u32(vm, at + 44);
    expect(mmapLength).toBe(48);
    expect(mmap(vm, u32(vm, at + 48), mmapLength)).toEqual([
      { size: 20, base: 0n, length: 640n * 1024n, type: 1 },
      { size: 20, base: 0x100000n, length: 127n * 1024n * 1024n, type: 1 },
    ]);
    for (const o of [52, 56, 60, 68]) expect(u32(vm, at + o), `field @${o}`).toBe(0); // drives, config_table, apm_table
    expect(cstr(vm, u32(vm, at + 64))).toBe("guest-image");
    for (let o = 72; o < 116; o += 4) expect(u32(vm, at + o), `vbe/framebuffer @${o}`).toBe(0);
    // Every pointer lies inside the placed blob.
    for (const p of [u32(vm, at + 16), mods, u32(vm, mods + 8), u32(vm, at + 48), u32(vm, at + 64)]) {
      expect(p >= at && p < at + info.size).toBe(true);
    }
    expect(info.layout).toMatchObject({ info: at, mods_addr: mods, mmap_addr: u32(vm, at + 48), mmap_length: 48 });
  });

  it("only the memory fields when nothing else is given", async () => {
    const vm = await createVm({ ram: [{ base: 0, size: 2 * MiB }] });
    const info = buildMultibootInfo({ at: 0x1000, ram: vm.ram.regions });
    await vm.place("mbi", info.bytes, { at: 0x1000 });
    expect(u32(vm, 0x1000)).toBe((1 << 0) | (1 << 6));
    // One region [0, 2 MiB): lower capped at 640 KiB, upper = 2 MiB − 1 MiB.
    expect([u32(vm, 0x1004), u32(vm, 0x1008)]).toEqual([640, 1024]);
    expect([u32(vm, 0x1010), u32(vm, 0x1014), u32(vm, 0x1018), u32(vm, 0x1040)]).toEqual([0, 0, 0, 0]);
    expect(mmap(vm, u32(vm, 0x1030), u32(vm, 0x102c))).toEqual([{ size: 20, base: 0n, length: 2n * 1024n * 1024n, type: 1 }]);
    expect(info.size).toBe(116 + 24);
  });

  it("an empty module list still sets flag 3 with mods_count 0", async () => {
    const info = buildMultibootInfo({ at: 0x1000, ram: [{ base: 0, size: 2 * MiB }], modules: [] });
    const dv = new DataView(info.bytes.buffer);
    expect(dv.getUint32(0, true) & (1 << 3)).toBe(1 << 3);
    expect(dv.getUint32(20, true)).toBe(0);
  });

  it("mem_upper stops at the first hole above 1 MiB; adjacent regions are one range", () => {
    const mb = (ram: Array<{ base: number; size: number }>) => {
      const i = buildMultibootInfo({ at: 0x1000, ram });
      const dv = new DataView(i.bytes.buffer);
      const n = dv.getUint32(44, true) / 24;
      return { lower: dv.getUint32(4, true), upper: dv.getUint32(8, true), entries: n };
    };
    // A hole at [2 MiB, 3 MiB): upper is 1 MiB; two map entries.
    expect(mb([{ base: MiB, size: MiB }, { base: 3 * MiB, size: MiB }])).toEqual({ lower: 0, upper: 1024, entries: 2 });
    // Adjacent regions given out of order merge: [1 MiB, 3 MiB) is 2 MiB of upper memory.
    expect(mb([{ base: 2 * MiB, size: MiB }, { base: MiB, size: MiB }])).toEqual({ lower: 0, upper: 2048, entries: 1 });
    // No RAM at 1 MiB: upper is 0. Low RAM below 640 KiB counts in full KiB.
    expect(mb([{ base: 0, size: 0x9fc00 }, { base: 0x4000_0000, size: MiB }])).toEqual({ lower: 0x9fc00 / 1024, upper: 0, entries: 2 });
  });

  it("describes RAM above 4 GiB in the map (base and length are u64)", () => {
    const i = buildMultibootInfo({ at: 0x1000, ram: [{ base: 0, size: MiB }, { base: 2 ** 32, size: 16 * MiB }] });
    const dv = new DataView(i.bytes.buffer);
    const e = 116 + 24; // the second entry
    expect([dv.getUint32(e, true), dv.getBigUint64(e + 4, true), dv.getBigUint64(e + 12, true), dv.getUint32(e + 20, true)]).toEqual([20, 2n ** 32n, 16n * 1024n * 1024n, 1]);
  });
});

describe("buildMultibootInfo checks", () => {
  const expectError = (f: () => unknown, code: string, field: string) => {
    let e: unknown;
    try {
      f();
    } catch (x) {
      e = x;
    }
    expect(e).toBeInstanceOf(GuestImageError);
    expect((e as GuestImageError).code).toBe(code);
    expect((e as GuestImageError).field).toBe(field);
    expect((e as GuestImageError).message).toContain(field);
  };
  const ram = [{ base: 0, size: 16 * MiB }];

  it("the structure must lie below 4 GiB (its pointers are 32-bit) → BAD_ADDRESS", () => {
    expectError(() => buildMultibootInfo({ at: 2 ** 32 - 100, ram }), "BAD_ADDRESS", "at");
    expect(buildMultibootInfo({ at: 2 ** 32 - 140, ram }).size).toBe(140); // ends exactly at 4 GiB
  });

  it("a module ending past 4 GiB → BAD_ADDRESS", () => {
    expectError(() => buildMultibootInfo({ at: 0x1000, ram, modules: [{ paddr: 0xffff_f000, size: 0x1000 }] }), "BAD_ADDRESS", "modules[0].paddr");
  });

  it("pageAlignModules (header flag bit 0): an unaligned module → BAD_ALIGNMENT", () => {
    const modules = [{ paddr: 0x200000, size: 0x100 }, { paddr: 0x300010, size: 0x100 }];
    expectError(() => buildMultibootInfo({ at: 0x1000, ram, modules, pageAlignModules: true }), "BAD_ALIGNMENT", "modules[1].paddr");
    expect(buildMultibootInfo({ at: 0x1000, ram, modules }).size).toBe(116 + 32 + 24);
  });

  it("strings with a NUL, bad addresses and empty RAM → BAD_ARGUMENT", () => {
    expectError(() => buildMultibootInfo({ at: 0x1000, ram, cmdline: "a\0b" }), "BAD_ARGUMENT", "cmdline");
    expectError(() => buildMultibootInfo({ at: 0x1000, ram, modules: [{ paddr: 0x200000, size: 1, cmdline: "x\0" }] }), "BAD_ARGUMENT", "modules[0].cmdline");
    expectError(() => buildMultibootInfo({ at: -1, ram }), "BAD_ARGUMENT", "at");
    expectError(() => buildMultibootInfo({ at: 0x1000, ram: [] }), "BAD_ARGUMENT", "ram");
  });

  it("placing it over the kernel is refused by vm.place (OVERLAP), nothing written", async () => {
    const b = new Uint8Array(0x2000);
    const dv = new DataView(b.buffer);
    // Spec 3.1.1 header at 0 with bit 16: load 0x100000..0x102000, entry 0x100000.
    const flags = (1 << 0) | (1 << 16);
    dv.setUint32(0, 0x1badb002, true);
    dv.setUint32(4, flags, true);
    dv.setUint32(8, (0x1_0000_0000 - ((0x1badb002 + flags) % 0x1_0000_0000)) % 0x1_0000_0000, true);
    dv.setUint32(12, 0x100000, true); // header_addr
    dv.setUint32(16, 0x100000, true); // load_addr
    dv.setUint32(20, 0x102000, true); // load_end_addr
    dv.setUint32(24, 0, true); // bss_end_addr
    dv.setUint32(28, 0x100000, true); // entry_addr
    const vm = await createVm({ ram, files: fromMap({ kernel: b, initrd: new Uint8Array(0x3000).fill(0x5a) }) });
    const k = await vm.loadKernel("kernel");
    const req = (k.arch as unknown as MultibootKernelArch).requirements;
    expect(req.page_align_modules).toBe(true);
    const m = await vm.loadModule("initrd", { at: 0x200000, align: 0x1000 });
    const info = buildMultibootInfo({
      at: 0x101000, ram: vm.ram.regions, cmdline: "k", modules: [{ paddr: m.paddr, size: m.size, cmdline: "initrd" }],
      bootLoaderName: "guest-image", pageAlignModules: req.page_align_modules,
    });
    const before = vm.ram.read(0x101000, info.size).slice();
    const e = await vm.place("multiboot-info", info.bytes, { at: 0x101000 }).then(() => undefined, (x: unknown) => x);
    expect((e as GuestImageError).code).toBe("OVERLAP");
    expect(vm.ram.read(0x101000, info.size)).toEqual(before);
    // Beside the kernel it goes in, and the ledger lists all three.
    const ok = buildMultibootInfo({ at: 0x9000, ram: vm.ram.regions, modules: [{ paddr: m.paddr, size: m.size }], pageAlignModules: true });
    await vm.place("multiboot-info", ok.bytes, { at: 0x9000 });
    expect(vm.placed().map((p) => p.name)).toEqual(["multiboot-info", "kernel", "initrd"]);
    expect(u32(vm, u32(vm, 0x9000 + 24) + 4)).toBe(0x203000); // mod_end
  });
});
