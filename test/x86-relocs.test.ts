// Linux x86 `relocs` data (the output of arch/x86/tools/relocs appended to the kernel, as seL4's
// configurations do). The expected values follow arch/x86/boot/compressed/misc.c
// handle_relocations(): reading u32 words backwards from the end, the 32-bit group
// (*(u32*)site += delta), then the inverse 32-bit group (*(i32*)site -= delta), then the 64-bit
// group (*(u64*)site += delta); each group ends (reading backwards) at a zero word. A 32-bit
// kernel has only the 32-bit group. libsel4vm applies only the 32-bit group; we apply all three.
import { describe, expect, it } from "vitest";
import { createVm, fromMap, vm_load_guest_kernel, type guest_kernel_image_t } from "../src/index.js";
import { u32le, writeElf } from "./helpers/elf-writer.js";

const VBASE = 0xffff_ffff_8100_0000n; // __START_KERNEL_map + 16 MiB, as x86-64 Linux links
const PBASE = 0x100_0000n;

interface Site {
  off: number; // offset in the image (= vaddr − VBASE)
  width: 4 | 8;
  value: bigint;
}

/** An x86-64 kernel: text at PBASE, data+bss after it, with the given initial site contents. */
function kernel64(sites: Site[], trailer?: Uint8Array) {
  const text = new Uint8Array(0x2000);
  const data = new Uint8Array(0x1000);
  const img = new Uint8Array(0x3000);
  const dv = new DataView(img.buffer);
  for (const s of sites) {
    if (s.width === 4) dv.setUint32(s.off, Number(s.value & 0xffffffffn), true);
    else dv.setBigUint64(s.off, s.value, true);
  }
  text.set(img.subarray(0, 0x2000));
  data.set(img.subarray(0x2000, 0x3000));
  return writeElf({
    class: 64, machine: 62, entry: PBASE,
    segments: [
      { vaddr: VBASE, paddr: PBASE, data: text, flags: 5 },
      { vaddr: VBASE + 0x2000n, paddr: PBASE + 0x2000n, data, memsz: 0x3000n, flags: 6 },
    ],
    trailer,
  });
}

/** The relocs stream in file order: 0, 64-bit…, 0, inverse 32-bit…, 0, 32-bit… */
function stream64(g32: number[], inv32: number[], g64: number[]) {
  return u32le([0, ...g64, 0, ...inv32, 0, ...g32]);
}

const addr32 = (off: number) => Number((VBASE + BigInt(off)) & 0xffffffffn);

describe("x86 relocs data, 64-bit kernel, all three groups", () => {
  const s32: Site[] = [
    { off: 0x10, width: 4, value: 0x8100_0100n }, // a 32-bit sign-extended kernel pointer
    { off: 0x2004, width: 4, value: 0x8100_2000n },
  ];
  const sInv: Site[] = [{ off: 0x40, width: 4, value: 0x10n }];
  const s64: Site[] = [
    { off: 0x100, width: 8, value: VBASE + 0x123n },
    { off: 0x2ff8, width: 8, value: VBASE + 0x2000n }, // last 8 bytes of the data file bytes
  ];
  const relocs = stream64(s32.map((s) => addr32(s.off)), sInv.map((s) => addr32(s.off)), s64.map((s) => addr32(s.off)));
  const file = kernel64([...s32, ...sInv, ...s64], relocs);

  async function loadAt(at: number, align = 0) {
    const vm = await createVm({ ram: [{ base: 0, size: 0x800_0000 }], files: fromMap({ bzimage: file }) });
    const k = await vm.loadKernel("bzimage", { at, align, relocs: "bzimage" });
    return { vm, k };
  }

  it("applies +delta to 32-bit sites, −delta to inverse sites, +delta to 64-bit sites", async () => {
    const B = 0x300_0000;
    const { vm, k } = await loadAt(B);
    const delta = BigInt(B) - PBASE;
    expect(k.arch.format === "elf" && k.arch.relocation_offset).toBe(delta);
    expect(k.arch.format === "elf" && k.arch.relocations).toBe(5);
    const dv = new DataView(vm.ram.read(B, 0x3000).buffer);
    for (const s of s32) expect(dv.getUint32(s.off, true)).toBe(Number((s.value + delta) & 0xffffffffn));
    for (const s of sInv) expect(dv.getInt32(s.off, true)).toBe(Number(BigInt.asIntN(32, s.value - delta)));
    for (const s of s64) expect(dv.getBigUint64(s.off, true)).toBe((s.value + delta) & 0xffff_ffff_ffff_ffffn);
    // Bytes that are not sites are the file's bytes.
    expect(dv.getUint32(0x14, true)).toBe(0);
  });

  it("applies nothing when the kernel stays at its link address", async () => {
    const { vm, k } = await loadAt(Number(PBASE));
    expect(k.arch.format === "elf" && k.arch.relocations).toBe(0);
    const dv = new DataView(vm.ram.read(Number(PBASE), 0x3000).buffer);
    expect(dv.getUint32(0x10, true)).toBe(0x8100_0100);
    expect(dv.getBigUint64(0x100, true)).toBe(VBASE + 0x123n);
  });

  it("works through the seL4 API with is_reloc_enabled and relocs_file (the kernel file itself)", async () => {
    const vm = await createVm({ ram: [{ base: 0x1000_0000, size: 0x1000_0000 }], files: fromMap({ bzimage: file }) });
    const g: guest_kernel_image_t = {
      kernel_image: { load_paddr: 0, alignment: 0, size: 0 },
      kernel_image_arch: { is_reloc_enabled: true, relocs_file: "bzimage" },
    };
    // camkes-vm-examples issue #95's numbers: RAM at 0x10003000, 4 MiB alignment → 0x10400000.
    const r = await vm_load_guest_kernel(vm, "bzimage", 0x1000_3000, 0x40_0000, g);
    expect(r).toBe(g);
    expect(g.kernel_image).toEqual({ load_paddr: 0x1040_0000, alignment: 0x40_0000, size: 0x5000 });
    const delta = 0x1040_0000n - PBASE;
    expect(g.kernel_image_arch.relocation_offset).toBe(delta);
    expect(g.kernel_image_arch.entry).toBe(PBASE + delta);
    expect(g.kernel_image_arch.link_paddr).toBe(PBASE);
    expect(g.kernel_image_arch.link_vaddr).toBe(VBASE);
    const dv = new DataView(vm.ram.read(0x1040_0000, 0x3000).buffer);
    expect(dv.getBigUint64(0x100, true)).toBe(VBASE + 0x123n + delta);
  });

  it("refuses a site outside the image's segments before writing anything", async () => {
    const bad = kernel64(s32, stream64([addr32(0x10), addr32(0x5000)], [], []));
    const vm = await createVm({ ram: [{ base: 0, size: 0x800_0000 }], files: fromMap({ k: bad }) });
    await expect(vm.loadKernel("k", { at: 0x300_0000, relocs: "k" })).rejects.toMatchObject({ code: "RELOCATION" });
    expect(vm.placed()).toEqual([]);
    expect(vm.ram.read(0x300_0000, 0x3000).every((b) => b === 0)).toBe(true);
  });

  it("refuses a 64-bit site whose 8 bytes cross the end of a segment", async () => {
    const bad = kernel64([], stream64([], [], [addr32(0x4ffc)]));
    const vm = await createVm({ ram: [{ base: 0, size: 0x800_0000 }], files: fromMap({ k: bad }) });
    await expect(vm.loadKernel("k", { at: 0x300_0000, relocs: "k" })).rejects.toThrow(/64-bit group entry 0/);
  });

  it("with 32-bit groups, refuses a move that takes the kernel out of the sign-extended 32-bit space (BAD_ADDRESS)", async () => {
    // misc.c adds delta to u32 sites: a kernel at 0xffffffff81000000 moved by 4 GiB (or by 2 GiB)
    // would keep the move modulo 2^32 in those sites while its 64-bit sites get all of it.
    for (const at of [0x1_0100_0000, 0x8100_0000]) {
      const vm = await createVm({ ram: [{ base: at - 0x10_0000, size: 0x100_0000 }], files: fromMap({ bzimage: file }) });
      vm.ram.view(at - 0x10_0000, 0x100_0000).fill(0xee);
      const err = await vm.loadKernel("bzimage", { at, relocs: "bzimage" }).catch((e) => e);
      expect(err.code, err.message).toBe("BAD_ADDRESS");
      expect(err.message).toContain("32-bit");
      expect(vm.placed()).toEqual([]);
      expect(vm.ram.read(at - 0x10_0000, 0x100_0000).every((b) => b === 0xee)).toBe(true);
    }
    // The same kernel with only a 64-bit group loads there, every 64-bit site moved by all of it.
    const only64 = kernel64(s64, stream64([], [], s64.map((s) => addr32(s.off))));
    const at = 0x1_0100_0000;
    const vm = await createVm({ ram: [{ base: at, size: 0x100_0000 }], files: fromMap({ k: only64 }) });
    await vm.loadKernel("k", { at, relocs: "k" });
    const dv = new DataView(vm.ram.read(at, 0x3000).buffer);
    for (const s of s64) expect(dv.getBigUint64(s.off, true)).toBe((s.value + BigInt(at) - PBASE) & 0xffff_ffff_ffff_ffffn);
  });

  it("refuses data without its terminating zero words", async () => {
    const trailer = u32le([addr32(0x10), addr32(0x14)]); // no zero word anywhere
    const bad = kernel64([], trailer);
    const vm = await createVm({ ram: [{ base: 0, size: 0x800_0000 }], files: fromMap({ k: bad }) });
    await expect(vm.loadKernel("k", { at: 0x300_0000, relocs: "k" })).rejects.toMatchObject({ code: "RELOCATION" });
  });
});

describe("x86 relocs data, 32-bit kernel, separate relocs file", () => {
  // 32-bit Linux links at PAGE_OFFSET (0xC0000000) + 16 MiB with physical 16 MiB.
  const V = 0xc100_0000;
  const P = 0x100_0000;
  const data = new Uint8Array(0x1000);
  const dv0 = new DataView(data.buffer);
  dv0.setUint32(0x20, V + 0x300, true);
  dv0.setUint32(0x24, 0x1234, true);
  const file = writeElf({ class: 32, machine: 3, entry: BigInt(P), segments: [{ vaddr: BigInt(V), paddr: BigInt(P), data, memsz: 0x2000n }] });
  const relocs = u32le([0xdead, 0xbeef, 0, V + 0x20]); // leading junk is never read: reading stops at the zero

  it("applies the 32-bit group only", async () => {
    const vm = await createVm({ ram: [{ base: 0, size: 0x400_0000 }], files: fromMap({ k: file, r: relocs }) });
    const k = await vm.loadKernel("k", { at: 0x200_0000, relocs: "r" });
    expect(k.arch.format === "elf" && k.arch.relocations).toBe(1);
    const dv = new DataView(vm.ram.read(0x200_0000, 0x1000).buffer);
    expect(dv.getUint32(0x20, true)).toBe(V + 0x300 + 0x100_0000);
    expect(dv.getUint32(0x24, true)).toBe(0x1234);
  });

  it("refuses to place or relocate it at or above 4 GiB (BAD_ADDRESS): its addresses are 32-bit", async () => {
    for (const at of [0x1_0000_0000, 0x4000_0000]) {
      // 0x40000000: physically below 4 GiB, but the move takes its virtual addresses (0xc1000000 on) past 2^32.
      const vm = await createVm({ ram: [{ base: at, size: 0x100_0000 }], files: fromMap({ k: file, r: relocs }) });
      const err = await vm.loadKernel("k", { at, relocs: "r" }).catch((e) => e);
      expect(err.code, err.message).toBe("BAD_ADDRESS");
      expect(err.message).toContain(`0x${at.toString(16)}`);
      expect(vm.placed()).toEqual([]);
    }
  });

  it("refuses relocs data for a kernel that is not x86", async () => {
    const arm = writeElf({ class: 32, machine: 40, entry: BigInt(P), segments: [{ vaddr: BigInt(V), paddr: BigInt(P), data }] });
    const vm = await createVm({ ram: [{ base: 0, size: 0x400_0000 }], files: fromMap({ k: arm, r: relocs }) });
    await expect(vm.loadKernel("k", { at: 0x200_0000, relocs: "r" })).rejects.toMatchObject({ code: "UNSUPPORTED" });
  });
});
