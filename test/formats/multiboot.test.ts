// Multiboot 1 kernels. Headers are built field by field from the GNU Multiboot Specification
// 0.6.96, "3.1 OS image format" (3.1.1 header layout, 3.1.2 magic fields, 3.1.3 address fields,
// 3.1.4 graphics fields); expected placements follow the spec's rules (file offset of the load
// region = header offset − (header_addr − load_addr); BSS zeroed up to bss_end_addr), and for ELF
// kernels (flags bit 16 clear) the program headers readelf reports. Nothing expected here comes
// from running the loader.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createVm, fromMap, GuestImageError, inspectFile, vm_load_guest_kernel } from "../../src/node.js";
import { detect } from "../../src/formats/detect.js";
import type { MultibootKernelArch } from "../../src/formats/multiboot.js";
import { bytesFile } from "../../src/sources/source.js";
import { writeElf } from "../helpers/elf-writer.js";
import { haveTools } from "../helpers/cross-elf.js";
import { readelfHeader, readelfSegments } from "../helpers/readelf.js";

const MAGIC = 0x1badb002; // spec 3.1.2 "magic"
const EAX_MAGIC = 0x2badb002; // spec 3.2 "Machine state": EAX
const RAM = 0x40_0000; // 4 MiB at guest physical 0
const F_PAGE_ALIGN = 1 << 0;
const F_MEM_INFO = 1 << 1;
const F_VIDEO = 1 << 2;
const F_ADDR = 1 << 16;

interface Addr {
  header_addr: number;
  load_addr: number;
  load_end_addr: number;
  bss_end_addr: number;
  entry_addr: number;
}

/** Writes a Multiboot header at `off` (spec 3.1.1 layout, all fields u32 little-endian). */
function putHeader(b: Uint8Array, off: number, flags: number, addr?: Partial<Addr>, video?: number[], checksum?: number) {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  dv.setUint32(off + 0, MAGIC, true); // magic
  dv.setUint32(off + 4, flags >>> 0, true); // flags
  // checksum: magic + flags + checksum ≡ 0 (mod 2^32)
  dv.setUint32(off + 8, checksum ?? (0x1_0000_0000 - ((MAGIC + (flags >>> 0)) % 0x1_0000_0000)) % 0x1_0000_0000, true);
  if (addr) {
    dv.setUint32(off + 12, addr.header_addr ?? 0, true);
    dv.setUint32(off + 16, addr.load_addr ?? 0, true);
    dv.setUint32(off + 20, addr.load_end_addr ?? 0, true);
    dv.setUint32(off + 24, addr.bss_end_addr ?? 0, true);
    dv.setUint32(off + 28, addr.entry_addr ?? 0, true);
  }
  if (video) video.forEach((v, i) => dv.setUint32(off + 32 + 4 * i, v, true)); // mode_type, width, height, depth
}

/** A file of `size` pattern bytes ((i·7 + 3) mod 256: never zero-runs, never the magic). */
function pattern(size: number): Uint8Array {
  const b = new Uint8Array(size);
  for (let i = 0; i < size; i++) b[i] = (i * 7 + 3) & 0xff;
  return b;
}

/**
 * Kernel A (a.out kludge): 0x3000 bytes, header at file offset 0x40 with header_addr 0x100040,
 * so the load region starts at file offset 0x40 − (0x100040 − 0x100000) = 0; load_end 0x102000
 * (0x2000 bytes), BSS to 0x105000, entry 0x100080.
 */
const A: Addr = { header_addr: 0x100040, load_addr: 0x100000, load_end_addr: 0x102000, bss_end_addr: 0x105000, entry_addr: 0x100080 };
function kernelA(over: Partial<Addr> = {}, flags = F_PAGE_ALIGN | F_MEM_INFO | F_ADDR, size = 0x3000): Uint8Array {
  const b = pattern(size);
  putHeader(b, 0x40, flags, { ...A, ...over });
  return b;
}

async function vmWith(files: Record<string, Uint8Array>) {
  const vm = await createVm({ ram: [{ base: 0, size: RAM }], files: fromMap(files) });
  vm.ram.view(0, RAM).fill(0xee);
  return vm;
}
type Vm = Awaited<ReturnType<typeof createVm>>;

const eq = (a: Uint8Array, b: Uint8Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
const all = (a: Uint8Array, v: number) => a.every((x) => x === v);
const arch = (a: unknown) => a as MultibootKernelArch;

/** Asserts a load fails with `code` naming `field`, leaving guest RAM and the ledger as they were. */
async function expectRefused(vm: Vm, load: () => Promise<unknown>, code: string, field?: string, text?: string | RegExp): Promise<GuestImageError> {
  const before = vm.ram.read(0, RAM).slice();
  const placed = vm.placed();
  const e = await load().then(() => undefined, (x: unknown) => x);
  expect(e).toBeInstanceOf(GuestImageError);
  const err = e as GuestImageError;
  expect(err.code, err.message).toBe(code);
  if (field !== undefined) {
    expect(err.field).toBe(field);
    expect(err.message).toContain(field);
  }
  if (text !== undefined) expect(err.message).toMatch(text);
  expect(eq(vm.ram.read(0, RAM), before)).toBe(true);
  expect(vm.placed()).toEqual(placed);
  return err;
}

async function refuse(bytes: Uint8Array, code: string, field?: string, text?: string | RegExp) {
  const vm = await vmWith({ k: bytes });
  // Both APIs: the idiomatic one (image's own address) and seL4's (an explicit address).
  await expectRefused(vm, () => vm.loadKernel("k"), code, field, text);
  await expectRefused(vm, () => vm_load_guest_kernel(vm, "k", 0x100000, 0), code, field, text);
}

describe("detection (spec 3.1.1: magic + valid checksum, 4-byte aligned, first 8192 bytes)", () => {
  it("finds a header at any aligned offset up to the last 12 bytes of the first 8 KiB", () => {
    for (const off of [0, 4, 0x40, 0x1ff0, 8192 - 12]) {
      const b = pattern(0x3000);
      putHeader(b, off, 0);
      expect(detect(b.subarray(0, 8192), b.length).name, hex(off)).toBe("multiboot");
    }
  });

  it("ignores a magic at an unaligned offset, beyond 8 KiB, or with a bad checksum (raw)", () => {
    const unaligned = pattern(0x3000);
    putHeader(unaligned, 0x42, 0);
    expect(detect(unaligned.subarray(0, 8192), unaligned.length).name).toBe("raw");
    const late = pattern(0x3000);
    putHeader(late, 8192, 0);
    expect(detect(late.subarray(0, 8192), late.length).name).toBe("raw");
    const badSum = pattern(0x3000);
    putHeader(badSum, 0x40, 0, undefined, undefined, 0x12345678);
    expect(detect(badSum.subarray(0, 8192), badSum.length).name).toBe("raw");
  });

  it("a bad-checksum header is not a Multiboot kernel: loaded raw at the given address", async () => {
    const b = kernelA();
    new DataView(b.buffer).setUint32(0x48, 0, true); // checksum
    const vm = await vmWith({ k: b });
    const k = await vm.loadKernel("k", { at: 0x200000 });
    expect(k.format).toBe("raw");
    expect(k.paddr).toBe(0x200000);
    expect(k.size).toBe(b.length);
  });

  it("skips a magic with a bad checksum and takes the next valid header", async () => {
    const b = pattern(0x3000);
    putHeader(b, 0x10, F_ADDR, undefined, undefined, 0); // bad checksum: not a header
    putHeader(b, 0x40, F_ADDR, A);
    const vm = await vmWith({ k: b });
    const k = await vm.loadKernel("k");
    expect(k.format).toBe("multiboot");
    expect(arch(k.arch).header_offset).toBe(0x40);
  });

  it("never takes a Linux bzImage (\"HdrS\" at 0x202) for a Multiboot kernel", () => {
    const b = pattern(0x3000);
    new DataView(b.buffer).setUint32(0x202, 0x53726448, true); // boot.rst setup header: "HdrS"
    putHeader(b, 0x1000, F_ADDR, { header_addr: 0x101000, load_addr: 0x100000, entry_addr: 0x100000 });
    expect(detect(b.subarray(0, 8192), b.length).name).not.toBe("multiboot");
    // Without HdrS the same bytes are Multiboot.
    new DataView(b.buffer).setUint32(0x202, 0, true);
    expect(detect(b.subarray(0, 8192), b.length).name).toBe("multiboot");
  });

  it("is tried before ELF: an ELF with a Multiboot header is a Multiboot kernel", () => {
    const seg = pattern(0x100);
    putHeader(seg, 0, F_MEM_INFO);
    const elf = writeElf({ class: 32, machine: 3, entry: 0x100010n, segments: [{ vaddr: 0x100000n, paddr: 0x100000n, data: seg, flags: 5 }] });
    expect(detect(elf, elf.length).name).toBe("multiboot");
  });
});

describe("a.out kludge (flags bit 16, spec 3.1.3)", () => {
  it("copies [load offset, +load_end−load) to load_addr, zeroes to bss_end_addr, enters at entry_addr", async () => {
    const b = kernelA();
    const vm = await vmWith({ k: b });
    const k = await vm.loadKernel("k");
    expect(k.format).toBe("multiboot");
    expect(k.paddr).toBe(0x100000);
    expect(k.size).toBe(0x5000); // bss_end_addr − load_addr
    expect(k.entry).toBe(0x100080n);
    expect(eq(vm.ram.read(0x100000, 0x2000), b.subarray(0, 0x2000))).toBe(true);
    expect(all(vm.ram.read(0x102000, 0x3000), 0)).toBe(true); // BSS, was 0xEE
    expect(all(vm.ram.read(0x105000, 0x100), 0xee)).toBe(true); // after the image
    expect(all(vm.ram.read(0xfff00, 0x100), 0xee)).toBe(true); // before it
    expect(vm.placed()).toEqual([{ name: "k", paddr: 0x100000, size: 0x5000 }]);
    const a = arch(k.arch);
    expect(a).toMatchObject({
      format: "multiboot", entry: 0x100080n, magic_eax: EAX_MAGIC, flags: 0x10003, header_offset: 0x40,
      header_addr: 0x100040, load_addr: 0x100000, load_end_addr: 0x102000, bss_end_addr: 0x105000, entry_addr: 0x100080,
      mode_type: null, width: null, height: null, depth: null,
      requirements: { page_align_modules: true, memory_info: true, video_mode: false },
      loaded_by: "address-fields", elf: null,
    });
  });

  it("load_end_addr 0 loads to the end of the file from offset header offset − (header_addr − load_addr)", async () => {
    const b = pattern(0x1800);
    putHeader(b, 0x1000, F_ADDR, { header_addr: 0x200800, load_addr: 0x200000, load_end_addr: 0, bss_end_addr: 0, entry_addr: 0x200000 });
    const vm = await vmWith({ k: b });
    const k = await vm.loadKernel("k");
    // load offset = 0x1000 − 0x800 = 0x800; 0x1800 − 0x800 = 0x1000 bytes; no BSS.
    expect([k.paddr, k.size, k.entry]).toEqual([0x200000, 0x1000, 0x200000n]);
    expect(eq(vm.ram.read(0x200000, 0x1000), b.subarray(0x800))).toBe(true);
    expect(all(vm.ram.read(0x201000, 0x100), 0xee)).toBe(true);
  });

  it("loads through the seL4 API at the header's address", async () => {
    const b = kernelA();
    const vm = await vmWith({ k: b });
    const g = await vm_load_guest_kernel(vm, "k", 0x100000, 0x1000);
    expect(g.kernel_image).toEqual({ load_paddr: 0x100000, alignment: 0x1000, size: 0x5000 });
    expect(g.kernel_image_arch).toMatchObject({ format: "multiboot", entry: 0x100080n, magic_eax: EAX_MAGIC });
    expect(eq(vm.ram.read(0x100000, 0x2000), b.subarray(0, 0x2000))).toBe(true);
    expect(all(vm.ram.read(0x102000, 0x3000), 0)).toBe(true);
  });

  it("takes the address fields over the ELF headers when bit 16 is set, even in an ELF64", async () => {
    // writeElf puts the first segment's data at file offset 128 (64 + 56, 16-aligned).
    const seg = pattern(0x200);
    const elf = writeElf({ class: 64, machine: 62, entry: 0x400000n, segments: [{ vaddr: 0x400000n, paddr: 0x400000n, data: seg, flags: 5 }] });
    expect(elf.subarray(128, 128 + 0x200)).toEqual(seg);
    putHeader(elf, 128, F_ADDR, { header_addr: 0x100080, load_addr: 0x100000, load_end_addr: 0, bss_end_addr: 0x101000, entry_addr: 0x1000c0 });
    const vm = await vmWith({ k: elf });
    const k = await vm.loadKernel("k");
    expect([k.format, k.paddr, k.size, k.entry]).toEqual(["multiboot", 0x100000, 0x1000, 0x1000c0n]);
    expect(eq(vm.ram.read(0x100000, elf.length), elf)).toBe(true); // the whole file from offset 0
    expect(all(vm.ram.read(0x100000 + elf.length, 0x1000 - elf.length), 0)).toBe(true);
    expect(all(vm.ram.read(0x400000 - 0x100, 0x100), 0xee)).toBe(true); // not at the ELF's p_paddr
    expect(arch(k.arch).loaded_by).toBe("address-fields");
  });

  it("records the graphics fields (bit 2) and ignores optional flag bits 17-31", async () => {
    const b = pattern(0x3000);
    putHeader(b, 0x40, F_ADDR | F_VIDEO | (1 << 20), A, [1, 80, 25, 0]);
    const vm = await vmWith({ k: b });
    const a = arch((await vm.loadKernel("k")).arch);
    expect(a).toMatchObject({ mode_type: 1, width: 80, height: 25, depth: 0, ignored_flags: 1 << 20 });
    expect(a.requirements.video_mode).toBe(true);
  });

  it("inspect shows the header fields", async () => {
    const info = await inspectFile(bytesFile("k", kernelA()));
    expect(info.format).toBe("multiboot");
    expect(info.entry).toBe(0x100080n);
    expect(info["multiboot"]).toMatchObject({ header_offset: 0x40, load_addr: 0x100000, load_offset: 0, load_size: 0x2000, bss_size: 0x3000 });
  });
});

describe("header checks (crosvm multiboot.rs, QEMU CVE-2017-14167 / GHSA-f49v-45qp-cv53 fixes)", () => {
  it("unknown required flag bit (0-15) → UNSUPPORTED: the spec says the loader must fail", async () => {
    for (const bit of [3, 5, 15]) {
      await refuse(kernelA({}, F_ADDR | (1 << bit)), "UNSUPPORTED", "flags", `unknown required flag bit ${bit}`);
    }
  });

  it("header_addr < load_addr → BAD_HEADER", async () => {
    await refuse(kernelA({ header_addr: 0xfffc0 }), "BAD_HEADER", "header_addr");
  });

  it("load region starting before the file (header_addr − load_addr > header offset) → BAD_HEADER", async () => {
    // 0x100 > 0x40: QEMU's u32 file offset 0x40 − 0x100 wrapped to 0xffffff40 (CVE-2017-14167).
    await refuse(kernelA({ header_addr: 0x100100, load_addr: 0x100000 }), "BAD_HEADER", "load_addr");
    // The extreme: header_addr − load_addr = 0xffffffe0.
    await refuse(kernelA({ header_addr: 0xfffffff0, load_addr: 0x10, entry_addr: 0x20 }), "BAD_HEADER", "load_addr");
  });

  it("load_end_addr < load_addr → BAD_HEADER", async () => {
    await refuse(kernelA({ load_end_addr: 0xff000 }), "BAD_HEADER", "load_end_addr");
  });

  it("load region past the end of the file → TRUNCATED", async () => {
    await refuse(kernelA({ load_end_addr: 0x103001, bss_end_addr: 0 }), "TRUNCATED", "load_end_addr");
    // load_end_addr 0xffffffff from load_addr 0: 4 GiB − 1 bytes to read (QEMU would malloc them).
    await refuse(kernelA({ header_addr: 0x40, load_addr: 0, load_end_addr: 0xffffffff, bss_end_addr: 0, entry_addr: 0x80 }), "TRUNCATED", "load_end_addr");
  });

  it("bss_end_addr below the loaded bytes' end → BAD_HEADER (GHSA-f49v-45qp-cv53: load_end > bss_end)", async () => {
    await refuse(kernelA({ load_end_addr: 0x102000, bss_end_addr: 0x101000 }), "BAD_HEADER", "bss_end_addr");
    // With load_end_addr 0 the loaded bytes end at load_addr + (file size − offset) = 0x103000.
    await refuse(kernelA({ load_end_addr: 0, bss_end_addr: 0x102fff }), "BAD_HEADER", "bss_end_addr");
  });

  it("entry_addr outside [load_addr, load end) → BAD_HEADER (in the BSS or below the image)", async () => {
    await refuse(kernelA({ entry_addr: 0x102000 }), "BAD_HEADER", "entry_addr"); // first BSS byte
    await refuse(kernelA({ entry_addr: 0xfffff }), "BAD_HEADER", "entry_addr");
    await refuse(kernelA({ entry_addr: 0x105000 }), "BAD_HEADER", "entry_addr");
  });

  it("32-bit wrap: load_addr near 4 GiB with the load running to end of file → BAD_HEADER", async () => {
    // load_addr 0xfffff000 + 0x3000 bytes (to EOF) = 0x1_0000_2000: wraps a u32 (CVE-2017-14167 shape).
    await refuse(kernelA({ header_addr: 0xfffff040, load_addr: 0xfffff000, load_end_addr: 0, bss_end_addr: 0, entry_addr: 0xfffff080 }), "BAD_HEADER", "load_addr", /32-bit/);
  });

  it("a header whose fields run past the file or the first 8192 bytes", async () => {
    const short = pattern(0x40 + 20); // bit 16 needs 32 bytes of header
    putHeader(short, 0x40, F_ADDR);
    const vm = await vmWith({ k: short });
    await expectRefused(vm, () => vm.loadKernel("k"), "TRUNCATED", "flags");
    const edge = pattern(0x3000);
    putHeader(edge, 8192 - 16, F_ADDR); // magic inside, address fields beyond 8192
    const vm2 = await vmWith({ k: edge });
    await expectRefused(vm2, () => vm2.loadKernel("k"), "BAD_HEADER", "flags", /8192/);
  });

  it("a BSS that runs past RAM is refused by the placement check, nothing written", async () => {
    const vm = await vmWith({ k: kernelA({ bss_end_addr: 0xffffffff }) });
    await expectRefused(vm, () => vm.loadKernel("k"), "OUT_OF_RAM");
  });
});

describe("placement: Multiboot kernels are not relocatable", () => {
  it("a requested address other than load_addr → BAD_ADDRESS naming both (both APIs)", async () => {
    const vm = await vmWith({ k: kernelA() });
    const e = await expectRefused(vm, () => vm.loadKernel("k", { at: 0x200000 }), "BAD_ADDRESS");
    expect(e.message).toContain("0x100000");
    expect(e.message).toContain("0x200000");
    await expectRefused(vm, () => vm_load_guest_kernel(vm, "k", 0x200000, 0), "BAD_ADDRESS");
    // 0xff001 rounded up to 0x1000 is 0x100000: accepted.
    const g = await vm_load_guest_kernel(vm, "k", 0xff001, 0x1000);
    expect(g.kernel_image.load_paddr).toBe(0x100000);
  });

  it("an alignment load_addr does not meet → BAD_ADDRESS", async () => {
    const vm = await vmWith({ k: kernelA() });
    await expectRefused(vm, () => vm.loadKernel("k", { align: 0x200000 }), "BAD_ADDRESS", "alignment");
  });

  it("relocs data → BAD_ARGUMENT", async () => {
    const vm = await vmWith({ k: kernelA(), r: new Uint8Array(8) });
    await expectRefused(vm, () => vm.loadKernel("k", { relocs: "r" }), "BAD_ARGUMENT", "relocs");
  });
});

describe("ELF kernels (flags bit 16 clear: 'the boot loader uses the ELF header')", () => {
  it("a non-ELF file without bit 16 → BAD_HEADER", async () => {
    const b = pattern(0x1000);
    putHeader(b, 0x40, F_PAGE_ALIGN | F_MEM_INFO);
    await refuse(b, "BAD_HEADER", "flags", /bit 16 clear and not an ELF image/);
  });

  it("ELF64 x86-64 without bit 16 loads by its program headers (GRUB's multiboot loader does; QEMU refuses)", async () => {
    const seg = pattern(0x100);
    putHeader(seg, 0, F_MEM_INFO);
    const elf = writeElf({ class: 64, machine: 62, entry: 0x100010n, segments: [{ vaddr: 0x100000n, paddr: 0x100000n, data: seg, memsz: 0x300n, flags: 5 }] });
    const vm = await vmWith({ k: elf });
    const k = await vm.loadKernel("k");
    expect([k.format, k.paddr, k.size, k.entry]).toEqual(["multiboot", 0x100000, 0x300, 0x100010n]);
    expect(eq(vm.ram.read(0x100000, 0x100), seg)).toBe(true);
    expect(all(vm.ram.read(0x100100, 0x200), 0)).toBe(true);
    expect(arch(k.arch).elf!.class).toBe("ELF64");
  });

  it("ELF64 for another machine, or with its entry above 4 GiB → refused", async () => {
    const seg = pattern(0x100);
    putHeader(seg, 0, F_MEM_INFO);
    const aarch64 = writeElf({ class: 64, machine: 183, entry: 0x100010n, segments: [{ vaddr: 0x100000n, paddr: 0x100000n, data: seg, flags: 5 }] });
    await refuse(aarch64, "UNSUPPORTED", "e_machine", /ELF64 e_machine 183/);
    const high = writeElf({ class: 64, machine: 62, entry: 0x1_0000_0010n, segments: [{ vaddr: 0x1_0000_0000n, paddr: 0x1_0000_0000n, data: seg, flags: 5 }] });
    await refuse(high, "BAD_HEADER", undefined, /4 GiB/);
  });

  it("an ELF32 for another machine → UNSUPPORTED", async () => {
    const seg = pattern(0x100);
    putHeader(seg, 0, F_MEM_INFO);
    const elf = writeElf({ class: 32, machine: 40, entry: 0x100010n, segments: [{ vaddr: 0x100000n, paddr: 0x100000n, data: seg, flags: 5 }] });
    await refuse(elf, "UNSUPPORTED", "e_machine");
  });

  it("a segment crossing 4 GiB → BAD_HEADER", async () => {
    const seg = pattern(0x100);
    putHeader(seg, 0, F_MEM_INFO);
    const elf = writeElf({ class: 32, machine: 3, entry: 0xfffff010n, segments: [{ vaddr: 0xfffff000n, paddr: 0xfffff000n, data: seg, memsz: 0x2000n, flags: 7 }] });
    // readElf's own ELF32 range check or the Multiboot one (32-bit protected mode, paging off).
    await refuse(elf, "BAD_HEADER", undefined, /2\^32|4 GiB/);
  });

  it("e_entry in no segment → BAD_HEADER", async () => {
    const seg = pattern(0x100);
    putHeader(seg, 0, F_MEM_INFO);
    const elf = writeElf({ class: 32, machine: 3, entry: 0n, segments: [{ vaddr: 0x100000n, paddr: 0x100000n, data: seg, flags: 5 }] });
    await refuse(elf, "BAD_HEADER", "e_entry");
  });

  it("hand-built ELF32: PT_LOADs at p_paddr, BSS zeroed, requested address must be the link address", async () => {
    const text = pattern(0x300);
    putHeader(text, 0, F_PAGE_ALIGN | F_MEM_INFO);
    const data = pattern(0x80).map((x) => x ^ 0x55);
    const elf = writeElf({
      class: 32, machine: 3, entry: 0x100020n,
      segments: [
        { vaddr: 0x100000n, paddr: 0x100000n, data: text, flags: 5 },
        { vaddr: 0x102000n, paddr: 0x102000n, data, memsz: 0x1000n, flags: 6 },
      ],
    });
    const vm = await vmWith({ k: elf });
    await expectRefused(vm, () => vm.loadKernel("k", { at: 0x200000 }), "BAD_ADDRESS");
    const k = await vm.loadKernel("k", { at: 0x100000 });
    expect([k.format, k.paddr, k.size, k.entry]).toEqual(["multiboot", 0x100000, 0x3000, 0x100020n]);
    expect(eq(vm.ram.read(0x100000, 0x300), text)).toBe(true);
    expect(all(vm.ram.read(0x100300, 0x1d00), 0xee)).toBe(true); // gap between segments untouched
    expect(eq(vm.ram.read(0x102000, 0x80), data)).toBe(true);
    expect(all(vm.ram.read(0x102080, 0xf80), 0)).toBe(true);
    const a = arch(k.arch);
    expect(a).toMatchObject({ loaded_by: "elf", header_addr: null, load_addr: null, entry_addr: null, magic_eax: EAX_MAGIC });
    expect(a.elf).toMatchObject({ class: "ELF32", machine: "i386", e_entry: 0x100020n });
    expect(a.elf!.segments.map((s) => [s.paddr, s.filesz, s.memsz])).toEqual([[0x100000n, 0x300n, 0x300n], [0x102000n, 0x80n, 0x1000n]]);
  });
});

// Real i386 Multiboot ELF kernels assembled and linked with Debian's i686 cross binutils; the
// expected layout is what readelf reports.
const ASM = `
	.section .multiboot, "a"
	.balign	4
	.long	0x1BADB002		/* magic */
	.long	0x00000003		/* flags: page-align modules, memory info */
	.long	-(0x1BADB002 + 0x00000003)	/* checksum */

	.text
	.globl	_start
_start:
	mov	$stack_top, %esp
	cmp	$0x2BADB002, %eax
1:	hlt
	jmp	1b

	.data
	.ascii	"guest-image multiboot data"
	.long	0x11223344

	.bss
	.balign	16
stack:	.skip	0x4000
stack_top:
`;
const LD_IDENTITY = `
ENTRY(_start)
SECTIONS {
	. = 0x100000;
	.text : { *(.multiboot) *(.text) }
	. = ALIGN(0x1000);
	.data : { *(.data) }
	.bss : { *(.bss) }
}
`;
// A higher-half kernel: linked at 0xC0100000, loaded at 0x100000 (AT), so e_entry is virtual.
const LD_HIGHER_HALF = `
ENTRY(_start)
SECTIONS {
	. = 0xC0100000;
	.text : AT(0x100000) { *(.multiboot) *(.text) }
	. = ALIGN(0x1000);
	.data : AT(ADDR(.data) - 0xC0000000) { *(.data) }
	.bss : AT(ADDR(.bss) - 0xC0000000) { *(.bss) }
}
`;

const tmpDirs: string[] = [];
function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "guest-image-multiboot-"));
  tmpDirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
});

function run(cmd: string, args: string[], cwd: string) {
  const r = spawnSync(cmd, args, { cwd, encoding: "utf8", env: { ...process.env, LC_ALL: "C" } });
  if (r.error || r.status !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${r.error?.message ?? r.stderr}`);
}

function buildKernel(script: string, x86_64 = false): string {
  const d = tmpDir();
  fs.writeFileSync(path.join(d, "k.s"), x86_64 ? `\t.code32\n${ASM}` : ASM);
  fs.writeFileSync(path.join(d, "k.ld"), script);
  if (x86_64) {
    // The same 32-bit code in an ELF64 x86-64 container (how 64-bit kernels ship their 32-bit
    // Multiboot entry).
    run("x86_64-linux-gnu-as", ["--64", "-o", "k.o", "k.s"], d);
    run("x86_64-linux-gnu-ld", ["-m", "elf_x86_64", "--build-id=none", "-static", "-z", "max-page-size=0x1000", "-T", "k.ld", "-o", "k.elf", "k.o"], d);
  } else {
    run("i686-linux-gnu-as", ["--32", "-o", "k.o", "k.s"], d);
    run("i686-linux-gnu-ld", ["-m", "elf_i386", "--build-id=none", "-static", "-z", "max-page-size=0x1000", "-T", "k.ld", "-o", "k.elf", "k.o"], d);
  }
  return path.join(d, "k.elf");
}

describe.skipIf(!haveTools("i686"))("i386 Multiboot ELF kernels from i686 binutils (readelf is the oracle)", () => {
  let identity: string;
  let higher: string;
  beforeAll(() => {
    identity = buildKernel(LD_IDENTITY);
    higher = buildKernel(LD_HIGHER_HALF);
  });

  const expectLoaded = (vm: Vm, file: Uint8Array, elfPath: string) => {
    for (const s of readelfSegments(elfPath).filter((x) => x.type === "LOAD" && x.memsz > 0n)) {
      const ram = vm.ram.read(Number(s.paddr), Number(s.memsz));
      expect(eq(ram.subarray(0, Number(s.filesz)), file.subarray(Number(s.offset), Number(s.offset + s.filesz)))).toBe(true);
      expect(all(ram.subarray(Number(s.filesz)), 0)).toBe(true);
    }
  };

  it("identity-mapped: detected as multiboot, PT_LOADs at p_paddr, BSS zeroed, entry = e_entry", async () => {
    const file = new Uint8Array(fs.readFileSync(identity));
    const h = readelfHeader(identity);
    const loads = readelfSegments(identity).filter((s) => s.type === "LOAD" && s.memsz > 0n);
    expect(loads.some((s) => s.memsz - s.filesz >= 0x4000n)).toBe(true); // the fixture has a BSS
    const lo = loads.reduce((m, s) => (s.paddr < m ? s.paddr : m), loads[0].paddr);
    const hi = loads.reduce((m, s) => (s.paddr + s.memsz > m ? s.paddr + s.memsz : m), 0n);
    const vm = await vmWith({ k: file });
    const k = await vm.loadKernel("k");
    expect([k.format, k.paddr, k.size, k.entry]).toEqual(["multiboot", Number(lo), Number(hi - lo), h.entry]);
    expectLoaded(vm, file, identity);
    const a = arch(k.arch);
    expect(a.flags).toBe(3);
    expect(a.requirements).toEqual({ page_align_modules: true, memory_info: true, video_mode: false });
    expect(a.elf!.segments.map((s) => [s.offset, s.paddr, s.filesz, s.memsz])).toEqual(loads.map((s) => [s.offset, s.paddr, s.filesz, s.memsz]));
    // The seL4 API at the link address.
    const vm2 = await vmWith({ k: file });
    const g = await vm_load_guest_kernel(vm2, "k", Number(lo), 0);
    expect(g.kernel_image).toEqual({ load_paddr: Number(lo), alignment: 0, size: Number(hi - lo) });
    expect(g.kernel_image_arch.entry).toBe(h.entry);
    expectLoaded(vm2, file, identity);
  });

  it("the same kernel as an ELF64 x86-64 (x86_64 binutils): PT_LOADs at p_paddr, entry = e_entry, as GRUB loads it", async () => {
    const elf64 = buildKernel(LD_IDENTITY, true);
    const file = new Uint8Array(fs.readFileSync(elf64));
    const h = readelfHeader(elf64);
    expect(h.class).toBe("ELF64");
    expect(h.machine).toMatch(/X86-64/);
    const loads = readelfSegments(elf64).filter((s) => s.type === "LOAD" && s.memsz > 0n);
    const lo = loads.reduce((m, s) => (s.paddr < m ? s.paddr : m), loads[0].paddr);
    const hi = loads.reduce((m, s) => (s.paddr + s.memsz > m ? s.paddr + s.memsz : m), 0n);
    const vm = await vmWith({ k: file });
    const k = await vm.loadKernel("k");
    expect([k.format, k.paddr, k.size, k.entry]).toEqual(["multiboot", Number(lo), Number(hi - lo), h.entry]);
    expect(arch(k.arch).loaded_by).toBe("elf");
    expect(arch(k.arch).magic_eax).toBe(EAX_MAGIC);
    expectLoaded(vm, file, elf64);
  });

  it("higher-half: entry is e_entry translated to the physical address of its segment (as GRUB does)", async () => {
    const file = new Uint8Array(fs.readFileSync(higher));
    const h = readelfHeader(higher);
    const loads = readelfSegments(higher).filter((s) => s.type === "LOAD" && s.memsz > 0n);
    const seg = loads.find((s) => h.entry >= s.vaddr && h.entry < s.vaddr + s.memsz)!;
    expect(seg.vaddr).not.toBe(seg.paddr);
    const vm = await vmWith({ k: file });
    const k = await vm.loadKernel("k");
    expect(k.entry).toBe(h.entry - seg.vaddr + seg.paddr);
    expect(arch(k.arch).elf!.e_entry).toBe(h.entry);
    expectLoaded(vm, file, higher);
  });
});

describe("CLI", () => {
  const ROOT = fileURLToPath(new URL("../..", import.meta.url));
  it("load --json reports format, load_paddr and entry of an a.out-kludge kernel", () => {
    const d = tmpDir();
    const f = path.join(d, "mb.bin");
    fs.writeFileSync(f, kernelA());
    const r = spawnSync(process.execPath, ["dist/cli/main.js", "load", "--ram", "0:4M", "--kernel", f, "--json"], { cwd: ROOT, encoding: "utf8", timeout: 30_000 });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.kernel).toMatchObject({ format: "multiboot", load_paddr: "0x100000", size: "0x5000", entry: "0x100080" });
    expect(j.kernel.arch).toMatchObject({ format: "multiboot", magic_eax: "0x2badb002", load_addr: "0x100000", bss_end_addr: "0x105000" });
  });

  it("load --json fails with the header check's code", () => {
    const d = tmpDir();
    const f = path.join(d, "bad.bin");
    fs.writeFileSync(f, kernelA({ load_end_addr: 0x102000, bss_end_addr: 0x101000 }));
    const r = spawnSync(process.execPath, ["dist/cli/main.js", "load", "--ram", "0:4M", "--kernel", f, "--json"], { cwd: ROOT, encoding: "utf8", timeout: 30_000 });
    expect(r.status).toBe(1);
    expect(JSON.parse(r.stdout).error.code).toBe("BAD_HEADER");
  });
});

function hex(v: number): string {
  return `0x${v.toString(16)}`;
}
