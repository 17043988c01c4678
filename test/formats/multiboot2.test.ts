// Multiboot 2 kernels. Headers are built tag by tag from The Multiboot2 Specification 2.0, "3.1
// OS image format" (3.1.1 layout, 3.1.2 magic fields, 3.1.3 tag structure, 3.1.4-3.1.13 tags);
// expected placements follow the spec's rules (address tag: file offset = header offset −
// (header_addr − load_addr), BSS zeroed to bss_end_addr; relocatable: the lowest or highest base
// allowed by min_addr/max_addr/align), ELF containers' placements come from readelf, and the
// information structure is decoded here by the spec's 3.6 layout. Nothing expected comes from
// running the loader.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { bootMultiboot2, buildMultiboot2Info, createVm, fromMap, inspectFile, vm_load_guest_kernel, type Vm } from "../../src/node.js";
import { detect } from "../../src/formats/detect.js";
import type { Multiboot2KernelArch } from "../../src/formats/multiboot2.js";
import { bytesFile } from "../../src/sources/source.js";
import { writeElf } from "../helpers/elf-writer.js";
import { readelfSegments } from "../helpers/readelf.js";
import { expectRefused } from "../helpers/vm.js";

const MAGIC = 0xe85250d6; // spec 3.1.2
const RAM = 0x200_0000; // 32 MiB at guest physical 0
const dir = mkdtempSync(join(tmpdir(), "guest-image-mb2-fmt-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Tag {
  type: number;
  flags?: number;
  u32?: number[];
  /** Override the size field (default 8 + 4 × u32.length). */
  size?: number;
}

/** The header bytes: magic, architecture, header_length, checksum, tags 8-aligned, end tag. */
function header(tags: Tag[], o: { arch?: number; length?: number; checksum?: number; end?: boolean } = {}): Uint8Array {
  const parts: number[] = [];
  const push32 = (v: number) => parts.push(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff);
  const push16 = (v: number) => parts.push(v & 0xff, (v >>> 8) & 0xff);
  for (const t of [...tags, ...(o.end === false ? [] : [{ type: 0 }])]) {
    while (parts.length % 8) parts.push(0);
    const body = t.u32 ?? [];
    push16(t.type);
    push16(t.flags ?? 0);
    push32(t.size ?? 8 + 4 * body.length);
    body.forEach(push32);
  }
  const length = o.length ?? 16 + parts.length;
  const arch = o.arch ?? 0;
  const b = new Uint8Array(16 + parts.length);
  const d = new DataView(b.buffer);
  d.setUint32(0, MAGIC, true);
  d.setUint32(4, arch, true);
  d.setUint32(8, length, true);
  // checksum: magic + architecture + header_length + checksum ≡ 0 (mod 2^32)
  d.setUint32(12, o.checksum ?? (2 ** 32 - ((MAGIC + arch + length) % 2 ** 32)) % 2 ** 32, true);
  b.set(parts, 16);
  return b;
}

function pattern(size: number): Uint8Array {
  const b = new Uint8Array(size);
  for (let i = 0; i < size; i++) b[i] = (i * 7 + 3) & 0xff;
  return b;
}

function image(hdr: Uint8Array, at = 0x40, size = 0x3000): Uint8Array {
  const b = pattern(size);
  b.set(hdr, at);
  return b;
}

/**
 * Kernel A: address tag (header at file offset 0x40, header_addr 0x100040, load_addr 0x100000:
 * the load starts at file offset 0; load_end 0x102000; BSS to 0x105000), entry 0x100080.
 */
const A = { header_addr: 0x100040, load_addr: 0x100000, load_end_addr: 0x102000, bss_end_addr: 0x105000 };
const addrTag = (a: Partial<typeof A> = {}): Tag => {
  const x = { ...A, ...a };
  return { type: 2, u32: [x.header_addr, x.load_addr, x.load_end_addr, x.bss_end_addr] };
};
const entryTag = (e = 0x100080): Tag => ({ type: 3, u32: [e] });
const kernelA = (extra: Tag[] = [], a: Partial<typeof A> = {}, entry = 0x100080) => image(header([addrTag(a), entryTag(entry), ...extra]));

async function vmWith(files: Record<string, Uint8Array>): Promise<Vm> {
  const vm = await createVm({ ram: [{ base: 0, size: RAM }], files: fromMap(files) });
  vm.ram.view(0, RAM).fill(0xee);
  return vm;
}

async function refuse(bytes: Uint8Array, code: string, field?: string, text?: RegExp) {
  const vm = await vmWith({ k: bytes });
  const e = await expectRefused(vm, () => vm.loadKernel("k"), code, field);
  if (text) expect(e.message).toMatch(text);
  await expectRefused(vm, () => bootMultiboot2(vm, { kernel: "k" }), code, field);
  return e;
}

const eq = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));
const all = (a: Uint8Array, v: number) => a.every((x) => x === v);
const arch = (a: unknown) => a as Multiboot2KernelArch;

describe("detection (spec 3.1: magic + valid checksum, 8-byte aligned, within the first 32768 bytes)", () => {
  it("finds a header at any 8-aligned offset whose fixed part lies in the first 32 KiB", () => {
    for (const off of [0, 8, 0x40, 0x2000, 32768 - 24]) {
      const b = image(header([]), off, 0x9000);
      expect(detect(b.subarray(0, 32768), b.length).name, off.toString(16)).toBe("multiboot2");
    }
  });

  it("ignores a magic at a 4- (not 8-) aligned offset, past 32 KiB, or with a bad checksum", () => {
    expect(detect(image(header([]), 0x44), 0x3000).name).toBe("raw");
    const late = image(header([]), 32768, 0x9000);
    expect(detect(late.subarray(0, 32768), late.length).name).toBe("raw");
    expect(detect(image(header([], { checksum: 1 })), 0x3000).name).toBe("raw");
  });

  it("a kernel with both a Multiboot 1 and a Multiboot 2 header is Multiboot 2 (the documented rule)", () => {
    const b = kernelA();
    const d = new DataView(b.buffer);
    d.setUint32(0x1000, 0x1badb002, true);
    d.setUint32(0x1004, 0, true);
    d.setUint32(0x1008, (2 ** 32 - 0x1badb002) % 2 ** 32, true);
    expect(detect(b, b.length).name).toBe("multiboot2");
  });
});

describe("address tag (spec 3.1.5) and entry address tag (3.1.6)", () => {
  it("copies file[load_offset, +load_end_addr−load_addr) to load_addr, zeroes to bss_end_addr, enters at entry_addr", async () => {
    const file = kernelA();
    const vm = await vmWith({ k: file });
    const k = await vm.loadKernel("k");
    expect([k.format, k.paddr, k.size, k.entry]).toEqual(["multiboot2", 0x100000, 0x5000, 0x100080n]);
    expect(eq(vm.ram.read(0x100000, 0x2000), file.subarray(0, 0x2000))).toBe(true);
    expect(all(vm.ram.read(0x102000, 0x3000), 0)).toBe(true);
    expect(vm.ram.read(0x105000, 1)[0]).toBe(0xee);
    expect(vm.ram.read(0xfffff, 1)[0]).toBe(0xee);
    const a = arch(k.arch);
    expect(a.loaded_by).toBe("address-tag");
    expect(a.magic_eax).toBe(0x36d76289);
  });

  it("load_end_addr 0: the rest of the file; bss_end_addr 0: no BSS; load_addr −1: from the file's start", async () => {
    const whole = kernelA([], { load_end_addr: 0, bss_end_addr: 0 });
    const vm = await vmWith({ k: whole });
    const k = await vm.loadKernel("k");
    expect([k.paddr, k.size]).toEqual([0x100000, 0x3000]);
    // load_addr −1: the file starts where the header's own offset puts it (header_addr − 0x40).
    const fromStart = kernelA([], { header_addr: 0x200040, load_addr: 0xffffffff, load_end_addr: 0, bss_end_addr: 0 }, 0x200100);
    const vm2 = await vmWith({ k: fromStart });
    const k2 = await vm2.loadKernel("k");
    expect([k2.paddr, k2.size, k2.entry]).toEqual([0x200000, 0x3000, 0x200100n]);
    expect(eq(vm2.ram.read(0x200000, 0x3000), fromStart)).toBe(true);
  });

  it("the seL4 API at the image's own address, refused elsewhere (not relocatable)", async () => {
    const vm = await vmWith({ k: kernelA() });
    const g = await vm_load_guest_kernel(vm, "k", 0x100000, 0);
    expect(g.kernel_image).toEqual({ load_paddr: 0x100000, alignment: 0, size: 0x5000 });
    const vm2 = await vmWith({ k: kernelA() });
    await expectRefused(vm2, () => vm2.loadKernel("k", { at: 0x200000 }), "BAD_ADDRESS", "at");
  });

  // The CVE-2017-14167 / GHSA-f49v-45qp-cv53 shapes of Multiboot 1, in the Multiboot 2 tag.
  it("header_addr below load_addr → BAD_HEADER", () => refuse(kernelA([], { header_addr: 0xfffff }), "BAD_HEADER", "header_addr"));
  it("load would start before the file → BAD_HEADER", () => refuse(kernelA([], { header_addr: 0x100100 }), "BAD_HEADER", "load_addr"));
  it("load_end_addr below load_addr → BAD_HEADER", () => refuse(kernelA([], { load_end_addr: 0xff000 }), "BAD_HEADER", "load_end_addr"));
  it("load_end_addr past the file → TRUNCATED", () => refuse(kernelA([], { load_end_addr: 0x104000 }), "TRUNCATED", "load_end_addr"));
  it("bss_end_addr below the loaded bytes → BAD_HEADER", () => refuse(kernelA([], { bss_end_addr: 0x101000 }), "BAD_HEADER", "bss_end_addr"));
  it("a load crossing 4 GiB → BAD_HEADER", () =>
    refuse(kernelA([], { header_addr: 0xfffff040, load_addr: 0xfffff000, load_end_addr: 0, bss_end_addr: 0 }, 0xfffff080), "BAD_HEADER", "load_addr", /32-bit/));
  it("load_addr −1 with header_addr below the header's offset → BAD_HEADER", () =>
    refuse(kernelA([], { header_addr: 0x20, load_addr: 0xffffffff, load_end_addr: 0, bss_end_addr: 0 }, 0x30), "BAD_HEADER", "header_addr"));
  it("no entry address tag with the address tag → BAD_HEADER", () => refuse(image(header([addrTag()])), "BAD_HEADER", "entry_addr"));
  it("entry outside the loaded bytes (in the BSS) → BAD_HEADER", () => refuse(kernelA([], {}, 0x103000), "BAD_HEADER", "entry_addr"));
  it("an address tag shorter than 24 bytes → BAD_HEADER", () => refuse(image(header([{ type: 2, u32: [0x100040, 0x100000, 0] }, entryTag()])), "BAD_HEADER", "tag.size"));
  it("two address tags → BAD_HEADER", () => refuse(image(header([addrTag(), addrTag(), entryTag()])), "BAD_HEADER", "tag.type"));
});

describe("header fields and tag structure (spec 3.1.1-3.1.3)", () => {
  it("architecture 4 (MIPS32) is accepted, anything else but 0 → UNSUPPORTED", async () => {
    const vm = await vmWith({ k: image(header([addrTag(), entryTag()], { arch: 4 })) });
    expect(arch((await vm.loadKernel("k")).arch).architecture).toBe("mips32");
    await refuse(image(header([addrTag(), entryTag()], { arch: 1 })), "UNSUPPORTED", "architecture");
  });
  it("header_length shorter than fixed part + end tag → BAD_HEADER", () => refuse(image(header([], { length: 16 })), "BAD_HEADER", "header_length"));
  it("header_length past the first 32 KiB → BAD_HEADER", () => refuse(image(header([], { length: 0x8000 }), 0x40, 0x9000), "BAD_HEADER", "header_length"));
  it("header_length past the end of the file → TRUNCATED", () => refuse(image(header([], { length: 0x1000 }), 0x40, 0x100), "TRUNCATED", "header_length"));
  it("a tag smaller than 8 bytes → BAD_HEADER", () => refuse(image(header([{ type: 6, size: 4 }])), "BAD_HEADER", "tag.size"));
  it("a tag running past header_length → BAD_HEADER", () => refuse(image(header([{ type: 6, size: 0x100 }])), "BAD_HEADER", "tag.size"));
  it("no end tag → BAD_HEADER", () => refuse(image(header([{ type: 6 }], { end: false })), "BAD_HEADER", "header_length", /end tag/));
  it("an end tag of size 16 → BAD_HEADER", () => refuse(image(header([{ type: 0, size: 16, u32: [0, 0] }], { end: false })), "BAD_HEADER", "tag.size"));
  it("an unknown tag without the optional flag → UNSUPPORTED; with it, skipped", async () => {
    await refuse(kernelA([{ type: 11 }]), "UNSUPPORTED", "tag.type", /type 11/);
    const vm = await vmWith({ k: kernelA([{ type: 11, flags: 1 }]) });
    expect(arch((await vm.loadKernel("k")).arch).ignored_tags).toEqual([11]);
  });
});

describe("information request (3.1.4), EFI (3.1.7, 3.1.8, 3.1.12), console (3.1.9), framebuffer (3.1.10), module alignment (3.1.11)", () => {
  it("required tags this loader provides are accepted; an unprovidable required one → UNSUPPORTED naming it; optional ones are skipped", async () => {
    const vm = await vmWith({ k: kernelA([{ type: 1, u32: [1, 2, 3, 4, 6, 9, 21] }, { type: 1, flags: 1, u32: [5, 7, 10] }]) });
    const a = arch((await vm.loadKernel("k")).arch);
    expect(a.required_info).toEqual([1, 2, 3, 4, 6, 9, 21]);
    expect(a.optional_info).toEqual([5, 7, 10]);
    await refuse(kernelA([{ type: 1, u32: [1, 5] }]), "UNSUPPORTED", "mbi_tag_types", /tag 5 \(BIOS boot device\)/);
    await refuse(kernelA([{ type: 1, u32: [99] }]), "UNSUPPORTED", "mbi_tag_types", /99/);
  });
  it("an information request whose size is not 8 + 4n → BAD_HEADER", () => refuse(kernelA([{ type: 1, u32: [1], size: 10 }]), "BAD_HEADER", "tag.size"));
  it("a required EFI entry tag → UNSUPPORTED (needs UEFI boot services); optional or the EFI boot services tag → boots", async () => {
    await refuse(kernelA([{ type: 8, u32: [0x100080] }]), "UNSUPPORTED", "tag.type", /UEFI/);
    await refuse(kernelA([{ type: 9, u32: [0x100080] }]), "UNSUPPORTED", "tag.type", /UEFI/);
    const vm = await vmWith({ k: kernelA([{ type: 7 }, { type: 9, flags: 1, u32: [0x100080] }]) });
    const a = arch((await vm.loadKernel("k")).arch);
    expect(a.efi_boot_services).toBe(true);
    expect(a.ignored_tags).toEqual([9]);
  });
  it("a required framebuffer tag or console without a framebuffer → UNSUPPORTED from bootMultiboot2, nothing placed", async () => {
    for (const [tags, field] of [[[{ type: 5, u32: [1024, 768, 32] }], "framebuffer"], [[{ type: 4, u32: [1] }], "console_flags"]] as const) {
      const vm = await vmWith({ k: kernelA([...tags]) });
      await expectRefused(vm, () => bootMultiboot2(vm, { kernel: "k" }), "UNSUPPORTED", field);
      // Given a framebuffer, the same kernel boots and gets tag 8.
      const b = await bootMultiboot2(vm, { kernel: "k", framebuffer: { addr: 0xfd000000, pitch: 4096, width: 1024, height: 768, bpp: 32, type: "rgb", rgb: { red: [16, 8], green: [8, 8], blue: [0, 8] } } });
      expect(b.info.tags.map((t) => t.type)).toContain(8);
    }
    // Optional tags: boots without.
    const vm = await vmWith({ k: kernelA([{ type: 5, flags: 1, u32: [0, 0, 0] }, { type: 4, flags: 1, u32: [1] }]) });
    await bootMultiboot2(vm, { kernel: "k" });
  });
  it("module alignment: modules start on 4 KiB boundaries", async () => {
    const vm = await vmWith({ k: kernelA([{ type: 6 }]), m: pattern(0x123) });
    const b = await bootMultiboot2(vm, { kernel: "k", modules: [{ name: "m", cmdline: "x" }] });
    expect(b.modules[0].paddr % 0x1000).toBe(0);
    expect(arch(b.kernel.arch).module_align).toBe(true);
  });
});

describe("relocatable header tag (spec 3.1.13)", () => {
  const reloc = (min: number, max: number, align: number, pref: number): Tag => ({ type: 10, u32: [min, max, align, pref] });
  it("preference lowest/none: the lowest aligned base >= min_addr; highest: the highest base ending <= max_addr", async () => {
    // Image: 0x5000 bytes (kernel A). align 0x100000.
    for (const [pref, base] of [[0, 0x300000], [1, 0x300000], [2, 0x1b00000]] as const) {
      const vm = await vmWith({ k: kernelA([reloc(0x280000, 0x1c00000, 0x100000, pref)]) });
      const k = await vm.loadKernel("k");
      expect(k.paddr, `preference ${pref}`).toBe(base);
      // The image moved whole: the entry moved with it, and the load base is reported.
      expect(k.entry).toBe(BigInt(base + 0x80));
      expect(arch(k.arch).load_base).toBe(base);
      expect(arch(k.arch).link_base).toBe(0x100000);
      expect(eq(vm.ram.read(base, 0x2000), kernelA([reloc(0x280000, 0x1c00000, 0x100000, pref)]).subarray(0, 0x2000))).toBe(true);
    }
  });
  it("at: a base inside the range is used; one outside, or misaligned → BAD_ADDRESS", async () => {
    const file = kernelA([reloc(0x200000, 0x1000000, 0x200000, 1)]);
    const vm = await vmWith({ k: file });
    expect((await vm.loadKernel("k", { at: 0x800000 })).paddr).toBe(0x800000);
    const vm2 = await vmWith({ k: file });
    await expectRefused(vm2, () => vm2.loadKernel("k", { at: 0x900000 }), "BAD_ADDRESS", "at");
    await expectRefused(vm2, () => vm2.loadKernel("k", { at: 0x1000000 }), "BAD_ADDRESS", "at");
  });
  it("bootMultiboot2 moves it to free RAM the tag allows and hands over the load base (tag 21)", async () => {
    const vm = await vmWith({ k: kernelA([reloc(0x200000, 0x1000000, 0x200000, 1)]) });
    await vm.place("occupant", new Uint8Array(0x1000), { at: 0x201000 });
    const b = await bootMultiboot2(vm, { kernel: "k" });
    expect(b.loadBase).toBe(0x400000);
    const t = b.info.tags.find((x) => x.type === 21)!;
    expect(new DataView(vm.ram.read(b.info.paddr + t.offset, 12).buffer).getUint32(8, true)).toBe(0x400000);
  });
  it("align not a power of two, preference 3, min_addr above max_addr, image larger than the range → BAD_HEADER", async () => {
    await refuse(kernelA([reloc(0x200000, 0x1000000, 0x3000, 1)]), "BAD_HEADER", "align");
    await refuse(kernelA([reloc(0x200000, 0x1000000, 0x1000, 3)]), "BAD_HEADER", "preference");
    await refuse(kernelA([reloc(0x1000000, 0x200000, 0x1000, 1)]), "BAD_HEADER", "min_addr");
    await refuse(kernelA([reloc(0x200000, 0x203000, 0x1000, 1)]), "BAD_HEADER", "max_addr");
  });
  it("no RAM in the allowed range → OUT_OF_RAM", () => refuse(kernelA([reloc(0x4000000, 0x8000000, 0x1000, 1)]), "OUT_OF_RAM"));
});

describe("ELF containers (no address tag: program headers, readelf is the oracle)", () => {
  const elfKernel = (cls: 32 | 64, machine: number, extra: Tag[] = [], entry = 0xc0100010n) => {
    const text = pattern(0x800);
    text.set(header(extra), 0);
    // A higher-half kernel: vaddr 0xc0100000 loaded at paddr 0x100000, plus a BSS.
    return writeElf({ class: cls, machine, entry, segments: [{ vaddr: 0xc0100000n, paddr: 0x100000n, data: text, memsz: 0x1800n, flags: 7 }] });
  };
  for (const [cls, machine] of [[32, 3], [64, 62]] as const) {
    it(`ELF${cls} e_machine ${machine}: PT_LOADs at p_paddr, BSS zeroed, entry = e_entry translated to physical`, async () => {
      const file = elfKernel(cls, machine);
      const p = join(dir, `k${cls}`);
      writeFileSync(p, file);
      const loads = readelfSegments(p).filter((s) => s.type === "LOAD");
      const vm = await vmWith({ k: file });
      const k = await vm.loadKernel("k");
      expect([k.format, k.paddr, k.size, k.entry]).toEqual(["multiboot2", Number(loads[0].paddr), Number(loads[0].memsz), 0x100010n]);
      const s = loads[0];
      expect(eq(vm.ram.read(Number(s.paddr), Number(s.filesz)), file.subarray(Number(s.offset), Number(s.offset + s.filesz)))).toBe(true);
      expect(all(vm.ram.read(Number(s.paddr + s.filesz), Number(s.memsz - s.filesz)), 0)).toBe(true);
      expect(arch(k.arch).elf!.class).toBe(`ELF${cls}`);
    });
  }
  it("an entry address tag overrides e_entry (as GRUB); outside every segment → BAD_HEADER", async () => {
    const vm = await vmWith({ k: elfKernel(32, 3, [entryTag(0x100400)]) });
    expect((await vm.loadKernel("k")).entry).toBe(0x100400n);
    await refuse(elfKernel(32, 3, [entryTag(0x300000)]), "BAD_HEADER", "entry_addr");
  });
  it("ELF32 x86-64, ELF64 i386, or another machine → UNSUPPORTED", async () => {
    await refuse(elfKernel(32, 62), "UNSUPPORTED", "e_machine");
    await refuse(elfKernel(64, 3), "UNSUPPORTED", "e_machine");
    await refuse(elfKernel(64, 183), "UNSUPPORTED", "e_machine");
  });
  it("a segment crossing 4 GiB → BAD_HEADER", async () => {
    const text = pattern(0x100);
    text.set(header([]), 0);
    const elf = writeElf({ class: 64, machine: 62, entry: 0xfffff010n, segments: [{ vaddr: 0xfffff000n, paddr: 0xfffff000n, data: text, memsz: 0x2000n, flags: 7 }] });
    await refuse(elf, "BAD_HEADER", "p_paddr", /4 GiB/);
  });
  it("neither an address tag nor an ELF → BAD_HEADER", () => refuse(image(header([])), "BAD_HEADER", "tags"));
});

describe("the information structure (spec 3.6), decoded here by the spec's layout", () => {
  /** Tags as the spec lays them out: total_size, reserved, then {type, size} at 8-byte boundaries until type 0. */
  function decode(b: Uint8Array) {
    const d = new DataView(b.buffer, b.byteOffset, b.byteLength);
    const total = d.getUint32(0, true);
    const tags: Array<{ type: number; size: number; at: number }> = [];
    let o = 8;
    for (;;) {
      const type = d.getUint32(o, true);
      const size = d.getUint32(o + 4, true);
      tags.push({ type, size, at: o });
      if (type === 0) break;
      o = (o + size + 7) & ~7;
    }
    return { total, reserved: d.getUint32(4, true), tags, d };
  }
  const cstr = (b: Uint8Array, o: number) => new TextDecoder().decode(b.subarray(o, b.indexOf(0, o)));

  it("command line, loader name, modules, basic meminfo, memory map with reserved ranges, ELF sections, load base, ACPI, SMBIOS", () => {
    const headers = pattern(3 * 40);
    const rsdp1 = pattern(20), rsdp2 = pattern(36), smb = pattern(31);
    const info = buildMultiboot2Info({
      ram: [{ base: 0, size: 0x8000000 }, { base: 0x1_0000_0000, size: 0x1000_0000 }],
      memoryRanges: [{ base: 0x9fc00, size: 0x60400 }, { base: 0x7f00000, size: 0x100000, type: 3 }],
      cmdline: "root=/dev/x ünï", bootLoaderName: "guest-image",
      modules: [{ paddr: 0x200000, size: 0x1234, cmdline: "mod one" }, { paddr: 0x300000, size: 1 }],
      elfSections: { num: 3, entsize: 40, shndx: 2, headers }, loadBaseAddr: 0x400000,
      acpiRsdpV1: rsdp1, acpiRsdpV2: rsdp2, smbios: { major: 3, minor: 2, tables: smb },
    });
    const b = info.bytes;
    const { total, reserved, tags, d } = decode(b);
    expect([total, reserved, b.length]).toEqual([b.length, 0, b.length]);
    expect(tags.map((t) => t.type)).toEqual([21, 1, 2, 3, 3, 4, 6, 9, 13, 14, 15, 0]);
    for (const t of tags) expect(t.at % 8, `tag ${t.type} 8-byte aligned`).toBe(0);
    expect(tags.at(-1)!.size).toBe(8);
    expect(tags.at(-1)!.at + 8).toBe(total);
    const at = (type: number, i = 0) => tags.filter((t) => t.type === type)[i].at;
    expect(d.getUint32(at(21) + 8, true)).toBe(0x400000);
    expect(cstr(b, at(1) + 8)).toBe("root=/dev/x ünï");
    expect(tags.find((t) => t.type === 1)!.size).toBe(8 + new TextEncoder().encode("root=/dev/x ünï").length + 1);
    expect(cstr(b, at(2) + 8)).toBe("guest-image");
    expect([d.getUint32(at(3) + 8, true), d.getUint32(at(3) + 12, true), cstr(b, at(3) + 16)]).toEqual([0x200000, 0x201234, "mod one"]);
    expect([d.getUint32(at(3, 1) + 8, true), d.getUint32(at(3, 1) + 12, true), cstr(b, at(3, 1) + 16)]).toEqual([0x300000, 0x300001, ""]);
    // mem_lower: from 0 to the reserved range at 639 KiB; mem_upper: 1 MiB to the ACPI range at 127 MiB.
    expect([d.getUint32(at(4) + 8, true), d.getUint32(at(4) + 12, true)]).toEqual([639, 126 * 1024]);
    const mm = at(6);
    expect([d.getUint32(mm + 8, true), d.getUint32(mm + 12, true)]).toEqual([24, 0]);
    const n = (tags.find((t) => t.type === 6)!.size - 16) / 24;
    const entries = Array.from({ length: n }, (_, i) => {
      const o = mm + 16 + 24 * i;
      return [d.getBigUint64(o, true), d.getBigUint64(o + 8, true), d.getUint32(o + 16, true), d.getUint32(o + 20, true)];
    });
    expect(entries).toEqual([
      [0n, 0x9fc00n, 1, 0], [0x9fc00n, 0x60400n, 2, 0], [0x100000n, 0x7e00000n, 1, 0], [0x7f00000n, 0x100000n, 3, 0], [0x1_0000_0000n, 0x1000_0000n, 1, 0],
    ]);
    // ELF sections as GRUB lays them (u32 num, entsize, shndx, then the headers).
    expect([d.getUint32(at(9) + 8, true), d.getUint32(at(9) + 12, true), d.getUint32(at(9) + 16, true)]).toEqual([3, 40, 2]);
    expect(eq(b.subarray(at(9) + 20, at(9) + 20 + 120), headers)).toBe(true);
    expect([b[at(13) + 8], b[at(13) + 9]]).toEqual([3, 2]);
    expect(eq(b.subarray(at(13) + 16, at(13) + 16 + 31), smb)).toBe(true);
    expect(eq(b.subarray(at(14) + 8, at(14) + 28), rsdp1)).toBe(true);
    expect(eq(b.subarray(at(15) + 8, at(15) + 44), rsdp2)).toBe(true);
  });

  it("framebuffer info: common part, then indexed palette or RGB fields", () => {
    const rgb = buildMultiboot2Info({ ram: [{ base: 0, size: 0x1000000 }], framebuffer: { addr: 0xfd000000, pitch: 4096, width: 1024, height: 768, bpp: 32, type: "rgb", rgb: { red: [16, 8], green: [8, 8], blue: [0, 8] } } });
    const { tags, d } = decode(rgb.bytes);
    const t = tags.find((x) => x.type === 8)!;
    expect(t.size).toBe(38);
    expect([d.getBigUint64(t.at + 8, true), d.getUint32(t.at + 16, true), d.getUint32(t.at + 20, true), d.getUint32(t.at + 24, true), d.getUint8(t.at + 28), d.getUint8(t.at + 29)]).toEqual([0xfd000000n, 4096, 1024, 768, 32, 1]);
    expect([...rgb.bytes.subarray(t.at + 32, t.at + 38)]).toEqual([16, 8, 8, 8, 0, 8]);
    const idx = buildMultiboot2Info({ ram: [{ base: 0, size: 0x1000000 }], framebuffer: { addr: 0xa0000, pitch: 320, width: 320, height: 200, bpp: 8, type: "indexed", palette: [[1, 2, 3], [4, 5, 6]] } });
    const t2 = decode(idx.bytes).tags.find((x) => x.type === 8)!;
    expect([...idx.bytes.subarray(t2.at + 32, t2.at + 40)]).toEqual([2, 0, 1, 2, 3, 4, 5, 6]);
  });

  it("bad arguments: a module ending past 4 GiB, an unaligned module with module alignment, NUL in a string, short RSDP", () => {
    const ram = [{ base: 0, size: 0x1000000 }];
    expect(() => buildMultiboot2Info({ ram, modules: [{ paddr: 0xffff_f000, size: 0x1000 }] })).toThrow(expect.objectContaining({ code: "BAD_ADDRESS" }));
    expect(() => buildMultiboot2Info({ ram, modules: [{ paddr: 0x1100, size: 1 }], pageAlignModules: true })).toThrow(expect.objectContaining({ code: "BAD_ALIGNMENT" }));
    expect(() => buildMultiboot2Info({ ram, cmdline: "a\0b" })).toThrow(expect.objectContaining({ code: "BAD_ARGUMENT", field: "cmdline" }));
    expect(() => buildMultiboot2Info({ ram, acpiRsdpV2: new Uint8Array(20) })).toThrow(expect.objectContaining({ code: "BAD_ARGUMENT", field: "acpiRsdpV2" }));
  });

  it("bootMultiboot2 places the structure 8-byte aligned below 4 GiB, EAX/EBX as the spec says, and fails atomically", async () => {
    const vm = await vmWith({ k: kernelA(), m: pattern(0x10) });
    const b = await bootMultiboot2(vm, { kernel: "k", cmdline: "c", modules: [{ name: "m", cmdline: "s" }] });
    expect(b.info.paddr % 8).toBe(0);
    // Spec 3.3: EAX magic, EBX the structure; CR0.PE set, PG clear; IF and VM clear; flat segments.
    expect(b.cpu).toMatchObject({ arch: "x86", mode: "protected", pc: 0x100080n, rip: 0x100080n, regs: { eax: 0x36d76289n, ebx: BigInt(b.info.paddr) } });
    if (b.cpu.arch !== "x86") throw new Error("x86 expected");
    expect(b.cpu.cr0 & 1n).toBe(1n);
    expect(b.cpu.cr0 & 0x8000_0000n).toBe(0n);
    expect(b.cpu.rflags & ((1n << 9n) | (1n << 17n))).toBe(0n);
    for (const r of ["cs", "ds", "es", "fs", "gs", "ss"] as const) expect([b.cpu.segments[r].base, b.cpu.segments[r].limit, b.cpu.segments[r].db]).toEqual([0n, 0xffffffff, true]);
    expect(b.cpu.segments.cs.type & 0x8, "CS is a code segment").toBe(0x8);
    // The GDT it placed holds those descriptors (Intel SDM: base 0, limit 0xfffff × 4 KiB, D = 1).
    const gdt = b.placements.find((p) => p.role === "gdt")!;
    expect(b.cpu.gdtr).toEqual({ base: BigInt(gdt.paddr), limit: 31 });
    const g = new DataView(vm.ram.read(gdt.paddr, 32).buffer);
    expect(g.getBigUint64(b.cpu.segments.cs.selector, true) & 0x00cf_9800_0000_ffffn).toBe(0x00cf_9800_0000_ffffn);
    expect(g.getBigUint64(b.cpu.segments.ds.selector, true) & 0x00cf_9200_0000_ffffn).toBe(0x00cf_9200_0000_ffffn);
    expect(decode(vm.ram.read(b.info.paddr, b.info.size)).total).toBe(b.info.size);
    // x86Tables: false — the VMM's GDT: none placed, gdtr null.
    const vm3 = await vmWith({ k: kernelA() });
    const b3 = await bootMultiboot2(vm3, { kernel: "k", x86Tables: false });
    expect(b3.placements.map((p) => p.role)).toEqual(["kernel", "info"]);
    expect(b3.cpu.arch === "x86" && b3.cpu.gdtr).toBe(null);
    // A missing module after the kernel was placed: nothing stays.
    const vm2 = await vmWith({ k: kernelA() });
    await expectRefused(vm2, () => bootMultiboot2(vm2, { kernel: "k", modules: [{ name: "absent" }] }), "NOT_FOUND");
  });

  it("inspect lists the header tags", async () => {
    const r = await inspectFile(bytesFile("k", kernelA([{ type: 6 }])));
    expect(r.format).toBe("multiboot2");
    const m = r["multiboot2"] as { tags: Array<{ type: number }> };
    expect(m.tags.map((t) => t.type)).toEqual([2, 3, 6]);
  });
});

describe("CLI: guest-image multiboot2", () => {
  const ROOT = new URL("../..", import.meta.url).pathname;
  const cli = (args: string[]) => spawnSync(process.execPath, ["dist/cli/main.js", ...args], { cwd: ROOT, encoding: "utf8", timeout: 30_000 });
  it("--json reports the kernel, modules with their strings, the information structure and the CPU state", () => {
    const k = join(dir, "cli-k");
    const m = join(dir, "cli-m");
    writeFileSync(k, kernelA([{ type: 6 }]));
    writeFileSync(m, pattern(0x321));
    const r = cli(["multiboot2", "--ram", "0:32M", "--kernel", k, "--cmdline", "a b", "--module", m, "--module-cmdline", "mod str", "--json"]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.kernel).toMatchObject({ format: "multiboot2", load_paddr: "0x100000", size: "0x5000", entry: "0x100080" });
    expect(j.modules).toEqual([expect.objectContaining({ cmdline: "mod str", size: "0x321" })]);
    expect(parseInt(j.modules[0].load_paddr, 16) % 0x1000).toBe(0);
    expect(j.cpu).toMatchObject({ arch: "x86", mode: "protected", pc: "0x100080", regs: { eax: "0x36d76289", ebx: j.info.load_paddr } });
    expect(j.info.tags).toBe("1,2,3,4,6,0");
  });
  it("a bad header fails with its code; a usage error exits 2", () => {
    const k = join(dir, "cli-bad");
    writeFileSync(k, kernelA([], { bss_end_addr: 0x101000 }));
    const r = cli(["multiboot2", "--ram", "0:32M", "--kernel", k, "--json"]);
    expect(r.status).toBe(1);
    expect(JSON.parse(r.stdout).error.code).toBe("BAD_HEADER");
    expect(cli(["multiboot2", "--ram", "0:32M", "--kernel", k, "--module-cmdline", "x"]).status).toBe(2);
  });
});
