// The e820 map in the x86 zero page, checked against what Linux does with it, modelled here
// from the kernel source and docs (not from src/):
//   Documentation/arch/x86/zero-page.rst: alt_mem_k u32 at 0x1E0, e820_entries u8 at 0x1E8,
//     e820_table at 0x2D0, 128 × struct boot_e820_entry { u64 addr; u64 size; u32 type } packed.
//   arch/x86/kernel/e820.c append_e820_table(): "Only one memory region (or negative)? Ignore it"
//     — a map of fewer than 2 entries is dropped and e820__memory_setup_default() falls back to
//     RAM [0, LOWMEMSIZE = 640 KiB) and [HIGH_MEMORY = 1 MiB, + max(alt_mem_k, ext_mem_k) KiB).
//     An entry whose end wraps is refused too (start > end && size).
//   e820__update_table(): overlapping entries resolve to the larger type, adjacent equal types merge.
// What the map must say (issue 11 §3): RAM below 0x9FC00 usable, 0x9FC00–0x100000 reserved where
// RAM covers it, the rest of RAM usable, holes absent, caller-given ranges with their type.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { buildBootParams } from "../../src/boot/x86-boot-params.js";
import type { BzImageKernelArch } from "../../src/formats/bzimage.js";
import { bootLinux, createVm, fromMap, GuestImageError } from "../../src/node.js";
import { bzImage } from "./x86-synthetic.js";

const KiB = 1024;
const MiB = 1024 * KiB;

async function zeroPage(ram: { base: number; size: number }[], reserved?: { base: number; size: number; type?: number }[]) {
  // The kernel record comes from a load into a VM of its own; the map is built for `ram`.
  const vm = await createVm({ ram: [{ base: 0, size: 64 * MiB }], files: fromMap({ bzImage: bzImage() }) });
  const k = await vm.loadKernel("bzImage");
  return buildBootParams({ kernel: k.arch as unknown as BzImageKernelArch, ram, reserved });
}

interface Range {
  addr: bigint;
  size: bigint;
  type: number;
}

/** The raw table as the kernel reads it from the zero page. */
function readTable(zp: Uint8Array): { entries: Range[]; altMemK: number } {
  const dv = new DataView(zp.buffer, zp.byteOffset);
  const n = zp[0x1e8];
  const entries = Array.from({ length: n }, (_, i) => ({
    addr: dv.getBigUint64(0x2d0 + 20 * i, true),
    size: dv.getBigUint64(0x2d0 + 20 * i + 8, true),
    type: dv.getUint32(0x2d0 + 20 * i + 16, true),
  }));
  return { entries, altMemK: dv.getUint32(0x1e0, true) };
}

/** Linux's view: append_e820_table (or its fallback) then e820__update_table, as [start, end) per type. */
function linuxView(zp: Uint8Array): { usedTable: boolean; ranges: { start: bigint; end: bigint; type: number }[] } {
  const { entries, altMemK } = readTable(zp);
  let list: { start: bigint; end: bigint; type: number }[];
  const wraps = entries.some((e) => e.size !== 0n && e.addr + e.size - 1n > 0xffff_ffff_ffff_ffffn);
  const usedTable = entries.length >= 2 && !wraps;
  if (usedTable) list = entries.filter((e) => e.size > 0n).map((e) => ({ start: e.addr, end: e.addr + e.size, type: e.type }));
  else list = [{ start: 0n, end: 640n * 1024n, type: 1 }, { start: 0x100000n, end: 0x100000n + BigInt(altMemK) * 1024n, type: 1 }];
  // e820__update_table: at every change point, the largest type of the entries covering it.
  const pts = [...new Set(list.flatMap((e) => [e.start, e.end]))].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const out: { start: bigint; end: bigint; type: number }[] = [];
  for (let i = 0; i + 1 < pts.length; i++) {
    const t = Math.max(0, ...list.filter((e) => e.start <= pts[i] && pts[i] < e.end).map((e) => e.type));
    if (t === 0) continue;
    const last = out[out.length - 1];
    if (last && last.type === t && last.end === pts[i]) last.end = pts[i + 1];
    else out.push({ start: pts[i], end: pts[i + 1], type: t });
  }
  return { usedTable, ranges: out };
}

const r = (start: number, end: number, type: number) => ({ start: BigInt(start), end: BigInt(end), type });

describe("x86 e820 map (Linux's reading of the zero page)", () => {
  it("one RAM region from 0: RAM below 0x9FC00, 0x9FC00–1 MiB reserved, the rest RAM; alt_mem_k = RAM above 1 MiB", async () => {
    const zp = await zeroPage([{ base: 0, size: 256 * MiB }]);
    const v = linuxView(zp);
    expect(v.usedTable).toBe(true);
    expect(v.ranges).toEqual([r(0, 0x9fc00, 1), r(0x9fc00, 0x100000, 2), r(0x100000, 256 * MiB, 1)]);
    expect(readTable(zp).altMemK).toBe(255 * 1024);
  });

  it("the PC map with the 640 KiB–1 MiB hole: the hole stays absent, the EBDA KiB below it reserved", async () => {
    const zp = await zeroPage([{ base: 0, size: 0xa0000 }, { base: 0x100000, size: 63 * MiB }]);
    const v = linuxView(zp);
    expect(v.usedTable).toBe(true);
    expect(v.ranges).toEqual([r(0, 0x9fc00, 1), r(0x9fc00, 0xa0000, 2), r(0x100000, 64 * MiB, 1)]);
    expect(readTable(zp).altMemK).toBe(63 * 1024);
  });

  it("one RAM range alone (no low memory) still makes a table of ≥ 2 entries that Linux uses, not the 640 KiB fallback", async () => {
    for (const ram of [[{ base: 0x100000, size: 127 * MiB }], [{ base: 0, size: 0x9f000 }], [{ base: 0x1_0000_0000, size: 64 * MiB }]]) {
      const zp = await zeroPage(ram);
      expect(readTable(zp).entries.length).toBeGreaterThanOrEqual(2);
      const v = linuxView(zp);
      expect(v.usedTable).toBe(true);
      expect(v.ranges).toEqual([r(ram[0].base, ram[0].base + ram[0].size, 1)]);
    }
    // alt_mem_k: RAM contiguous from 1 MiB only.
    expect(readTable(await zeroPage([{ base: 0x100000, size: 127 * MiB }])).altMemK).toBe(127 * 1024);
    expect(readTable(await zeroPage([{ base: 0, size: 0x9f000 }])).altMemK).toBe(0);
  });

  it("holes between regions are absent; regions above 4 GiB listed", async () => {
    const zp = await zeroPage([{ base: 0, size: 0xa0000 }, { base: 0x100000, size: 15 * MiB }, { base: 32 * MiB, size: 32 * MiB }, { base: 0x1_0000_0000, size: 16 * MiB }]);
    expect(linuxView(zp).ranges).toEqual([
      r(0, 0x9fc00, 1), r(0x9fc00, 0xa0000, 2), r(0x100000, 16 * MiB, 1), r(32 * MiB, 64 * MiB, 1), r(0x1_0000_0000, 0x1_0100_0000, 1),
    ]);
    expect(readTable(zp).altMemK).toBe(15 * 1024); // stops at the first hole above 1 MiB
  });

  it("caller-given reserved ranges: their type over RAM, and outside RAM as given; usable RAM is what is left", async () => {
    const zp = await zeroPage([{ base: 0, size: 128 * MiB }], [
      { base: 0x7f00000, size: 0x100000, type: 3 }, // ACPI tables at the top of RAM
      { base: 0x200000, size: 0x1000 }, // default type 2
      { base: 0xfec00000, size: 0x1000 }, // an IOAPIC window outside RAM
    ]);
    expect(linuxView(zp).ranges).toEqual([
      r(0, 0x9fc00, 1), r(0x9fc00, 0x100000, 2), r(0x100000, 0x200000, 1), r(0x200000, 0x201000, 2), r(0x201000, 0x7f00000, 1),
      r(0x7f00000, 0x8000000, 3), r(0xfec00000, 0xfec01000, 2),
    ]);
    expect(readTable(zp).altMemK).toBe(1024); // 1 MiB..2 MiB, then the reservation
  });

  it("bad reserved ranges: BAD_ARGUMENT naming the entry and field; 129 entries: TOO_LARGE", async () => {
    const bad = async (reserved: unknown[], field: string) => {
      const e = await zeroPage([{ base: 0, size: 64 * MiB }], reserved as never).then(() => undefined, (x: unknown) => x);
      expect(e).toBeInstanceOf(GuestImageError);
      expect((e as GuestImageError).code).toBe("BAD_ARGUMENT");
      expect((e as GuestImageError).field).toBe(field);
    };
    await bad([{ base: 0x1000, size: 0x1000, type: 1 }], "reserved[0].type");
    await bad([{ base: 0x1000, size: 0 }], "reserved[0].size");
    await bad([{ base: -1, size: 0x1000 }], "reserved[0].base");
    await bad([{ base: 2 ** 53 - 2, size: 0x1000 }], "reserved[0].size");
    await bad([{ base: 0x1000, size: 0x2000, type: 2 }, { base: 0x2000, size: 0x1000, type: 3 }], "reserved[1]");
    const many = Array.from({ length: 64 }, (_, i) => ({ base: 0x200000 + i * 0x2000, size: 0x1000 }));
    const e = await zeroPage([{ base: 0, size: 64 * MiB }], many).then(() => undefined, (x: unknown) => x);
    expect((e as GuestImageError).code).toBe("TOO_LARGE");
    expect((e as GuestImageError).field).toBe("e820_table");
  });

  it("createVm refuses bad reserved ranges before creating anything", async () => {
    const e = await createVm({ ram: [{ base: 0, size: MiB }], reserved: [{ base: 0, size: 0x1000, type: 1 }] }).then(() => undefined, (x: unknown) => x);
    expect((e as GuestImageError).code).toBe("BAD_ARGUMENT");
    expect((e as GuestImageError).field).toBe("reserved[0].type");
  });
});

describe("bootLinux on x86: the map, reserved ranges and automatic placement", () => {
  const overlaps = (a: { paddr: number; size: number }, base: number, end: number) => a.paddr < end && base < a.paddr + a.size;

  it("createVm and bootLinux reserved ranges reach the e820 map and are kept out of by automatic placement", async () => {
    const initrd = new Uint8Array(0x3000).fill(7);
    const vm = await createVm({ ram: [{ base: 0, size: 64 * MiB }], reserved: [{ base: 63 * MiB, size: MiB, type: 4 }], files: fromMap({ bzImage: bzImage(), initrd }) });
    const b = await bootLinux(vm, { arch: "x86_64", kernel: "bzImage", initrd: "initrd", cmdline: "x", reserved: [{ base: 0x1000, size: 0x4000 }] });
    const zp = vm.ram.read(b.zeroPage!.paddr, 4096);
    expect(linuxView(zp).ranges).toEqual([r(0, 0x1000, 1), r(0x1000, 0x5000, 2), r(0x5000, 0x9fc00, 1), r(0x9fc00, 0x100000, 2), r(0x100000, 63 * MiB, 1), r(63 * MiB, 64 * MiB, 4)]);
    for (const p of b.placements) {
      expect(overlaps(p, 0x1000, 0x5000), `${p.role} at 0x${p.paddr.toString(16)}`).toBe(false);
      expect(overlaps(p, 63 * MiB, 64 * MiB), `${p.role} at 0x${p.paddr.toString(16)}`).toBe(false);
    }
    expect(b.initrd!.paddr + b.initrd!.size).toBeLessThanOrEqual(63 * MiB);
  });

  it("automatic placement keeps out of 0x9FC00–0x100000 even when the low pages are taken", async () => {
    const vm = await createVm({ ram: [{ base: 0, size: 64 * MiB }], files: fromMap({ bzImage: bzImage() }) });
    await vm.place("low", new Uint8Array(0x9f000 - 0x1000).fill(1), { at: 0x1000 });
    const b = await bootLinux(vm, { arch: "x86_64", kernel: "bzImage", cmdline: "console=ttyS0" });
    for (const p of b.placements) expect(overlaps(p, 0x9fc00, 0x100000), `${p.role} at 0x${p.paddr.toString(16)}`).toBe(false);
  });

  it("bootLinux reserved with a bad range on a device-tree architecture: BAD_ARGUMENT, nothing placed", async () => {
    // (Valid ranges are accepted there since issue 11 §2: test/boot/reserved-dt.test.ts.)
    const vm = await createVm({ ram: [{ base: 0x40000000, size: 64 * MiB }], files: fromMap({ bzImage: bzImage() }) });
    const e = await bootLinux(vm, { arch: "arm64", kernel: "bzImage", reserved: [{ base: 0x40000000, size: 0 }] }).then(() => undefined, (x: unknown) => x);
    expect((e as GuestImageError).code).toBe("BAD_ARGUMENT");
    expect((e as GuestImageError).field).toBe("reserved[0].size");
    expect(vm.placed()).toEqual([]);
  });
});

describe("CLI --reserve", () => {
  it("boot --reserve base:size[:type] lists the range in the e820 map of the dumped RAM", () => {
    const root = fileURLToPath(new URL("../..", import.meta.url));
    const dir = mkdtempSync(join(tmpdir(), "gi-e820-"));
    try {
      writeFileSync(join(dir, "bzImage"), bzImage());
      const res = spawnSync(process.execPath, [join(root, "dist/cli/main.js"), "boot", "--arch", "x86_64", "--ram", "0:0xa0000", "--ram", "0x100000:63M",
        "--kernel", "bzImage", "--reserve", "0x3f00000:1M:3", "--reserve", "0xfec00000:4K", "--dump-ram", "ram.bin", "--json"], { cwd: dir, encoding: "utf8" });
      expect(res.stderr).toBe("");
      expect(res.status).toBe(0);
      const out = JSON.parse(res.stdout);
      const ram = readFileSync(join(dir, "ram.bin"));
      const zpAt = Number(out.zero_page.load_paddr); // JSON numbers are hex strings; below 0xa0000: the dump's first region starts at 0
      const zp = new Uint8Array(ram.buffer, ram.byteOffset + zpAt, 4096);
      expect(linuxView(zp).ranges).toEqual([r(0, 0x9fc00, 1), r(0x9fc00, 0xa0000, 2), r(0x100000, 0x3f00000, 1), r(0x3f00000, 0x4000000, 3), r(0xfec00000, 0xfec01000, 2)]);
      const bad = spawnSync(process.execPath, [join(root, "dist/cli/main.js"), "boot", "--arch", "x86_64", "--ram", "0:64M", "--kernel", "bzImage", "--reserve", "0x1000"], { cwd: dir, encoding: "utf8" });
      expect(bad.status).toBe(2);
      expect(bad.stderr).toContain("--reserve");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
