// Multiboot 2 real boots (issue 14 §1). The test kernel (test/realboot/mb2/kernel.S, assembled
// here with Debian's i686 and x86_64 binutils into ELF32 and ELF64 containers, plus a relocatable
// ELF32) walks the information structure it is handed and prints it over COM1.
//
// Booted from guest-image's RAM in QEMU 7.2 (no -kernel, no BIOS run), it must print exactly what
// this test gave: the command line, each module's string and the checksum of the module file's
// bytes, the memory map of the RAM this test declared (plus the PC legacy area reserved), the ELF
// section table readelf reports with each section's bytes, and the load base of the relocatable
// variant where the relocatable tag's rule puts it. Oracle for the structure: the same kernel and
// modules booted by GRUB 2.06 (Debian grub-pc-bin) print the same tags with the same contents —
// memory maps differ by design (SeaBIOS's e820 against our RAM list), so those are compared by
// shape. Negative controls: a wrong magic in EAX and a wrong EBX are seen by the kernel and fail
// the same checks.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectHandOff, expectPcMemory, expectSections, mb2Input, nmSymbol, readelfSections } from "./mb2/expect.js";
import { bootGrub, bootOurs, buildKernel, MiB, parse, type BootInput, type Parsed, type Variant } from "./mb2/harness.js";

const dir = mkdtempSync(join(tmpdir(), "guest-image-mb2-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const kernels = new Map<Variant, string>();
beforeAll(() => {
  for (const v of ["elf32", "elf64", "elf32-reloc", "aout"] as const) kernels.set(v, buildKernel(dir, v));
});

const input = (v: Variant): BootInput => mb2Input(kernels.get(v)!);

describe("Multiboot 2 test kernel booted from guest-image's RAM in QEMU", () => {
  for (const v of ["elf32", "elf64"] as const) {
    it(`${v}: prints the command line, modules, memory map and ELF sections the test gave`, async () => {
      const inp = input(v);
      const { boot, out, raw } = await bootOurs(dir, inp);
      const p = parse(out);
      const re = readelfSections(inp.kernel);
      expectHandOff(p, inp, "guest-image", re.entry);
      // The memory map of what this test declared: RAM [0, 256 MiB), PC legacy area reserved.
      expectPcMemory(p, 256 * MiB);
      expectSections(p, inp.kernel);
      expect(p.loadBase, "no load base tag for a kernel that is not relocatable").toBeUndefined();
      expect(p.end).toBe(boot.info.size);
      expect(p.tags.map((t) => t.type)).toEqual([1, 2, 3, 3, 4, 6, 9]);
      expect(raw).toMatch(/MB2T END/);
    }, 120_000);
  }

  it("relocatable ELF32: moved to the lowest 2 MiB-aligned base >= min_addr, load base tag says so", async () => {
    const inp = input("elf32-reloc");
    const { boot, out } = await bootOurs(dir, inp);
    const p = parse(out);
    const re = readelfSections(inp.kernel);
    // Relocatable tag: min_addr 0x300000, align 0x200000, preference lowest; the GDT at 0 and
    // nothing else sits there, so the base is 0x400000. The image was linked at 0x200000.
    const base = 0x400000;
    expectHandOff(p, inp, "guest-image", re.entry - 0x200000 + base);
    expect(p.loadBase?.toString(16)).toBe(base.toString(16));
    expect(boot.loadBase).toBe(base);
    expect(p.tags.map((t) => t.type)).toEqual([21, 1, 2, 3, 3, 4, 6, 9]);
  }, 120_000);

  it("address tag (flat binary): loaded by its address and entry tags, no ELF sections tag", async () => {
    const inp = input("aout");
    const { boot, out } = await bootOurs(dir, inp);
    const p = parse(out);
    expect(boot.kernel.format).toBe("multiboot2");
    expectHandOff(p, inp, "guest-image", nmSymbol(`${inp.kernel}.elf`, "_start"));
    expect(p.tags.map((t) => t.type)).toEqual([1, 2, 3, 3, 4, 6]);
    expect(p.end).toBe(boot.info.size);
  }, 120_000);

  it("negative controls: a Multiboot 1 magic in EAX, or EBX off by 8, fail the checks", async () => {
    const inp = input("elf32");
    const re = readelfSections(inp.kernel);
    const wrongMagic = await bootOurs(dir, inp, { eax: 0x2badb002n });
    expect(() => expectHandOff(parse(wrongMagic.out), inp, "guest-image", re.entry)).toThrow(/EAX/);
    const wrongInfo = await bootOurs(dir, inp, { ebxDelta: 8n });
    expect(() => expectHandOff(parse(wrongInfo.out), inp, "guest-image", re.entry)).toThrow();
  }, 180_000);
});

describe("the same kernel booted by GRUB 2.06 (the oracle for the structure's layout)", () => {
  for (const v of ["elf32", "elf64"] as const) {
    it(`${v}: GRUB hands over the same tags, command line, module strings and bytes, and ELF sections`, async () => {
      const inp = input(v);
      const grub = parse((await bootGrub(dir, inp)).out);
      const ours = parse((await bootOurs(dir, inp)).out);
      const re = readelfSections(inp.kernel);
      expect(grub.loader, "GRUB names itself").toMatch(/^GRUB/);
      expectHandOff(grub, inp, grub.loader!, re.entry);
      expectSections(grub, inp.kernel);
      // Every tag we write, GRUB writes too, and with the same size where the size does not depend
      // on the machine (strings, modules, basic meminfo, ELF sections).
      const ourTypes = ours.tags.map((t) => t.type);
      expect(grub.tags.map((t) => t.type).filter((t) => ourTypes.includes(t)).sort()).toEqual([...ourTypes].sort());
      const size = (p: Parsed, type: number) => p.tags.filter((t) => t.type === type).map((t) => t.size);
      for (const t of [1, 3, 4, 9]) expect(size(ours, t), `tag ${t} size`).toEqual(size(grub, t));
      // Memory maps: the same entry format, sorted, non-overlapping, RAM at 1 MiB in both.
      for (const p of [ours, grub]) {
        const e = p.mmap!.entries;
        for (let i = 1; i < e.length; i++) expect(e[i].base >= e[i - 1].base + e[i - 1].length).toBe(true);
        expect(e.some((x) => x.type === 1 && x.base <= 0x100000n && x.base + x.length > 0x100000n)).toBe(true);
      }
      expect(ours.meminfo!.lower).toBe(grub.meminfo!.lower);
    }, 240_000);
  }

  it("address tag (flat binary): GRUB hands over the same command line, modules and memory information", async () => {
    const inp = input("aout");
    const grub = parse((await bootGrub(dir, inp)).out);
    const ours = parse((await bootOurs(dir, inp)).out);
    expectHandOff(grub, inp, grub.loader!, nmSymbol(`${inp.kernel}.elf`, "_start"));
    const ourTypes = ours.tags.map((t) => t.type);
    expect(grub.tags.map((t) => t.type).filter((t) => ourTypes.includes(t)).sort()).toEqual([...ourTypes].sort());
    // GRUB answers the kernel's ELF sections request with an empty tag (num 0); we leave the tag
    // out, as the spec says for information that is not available (3.1.4).
    expect(grub.elf?.num ?? 0, "no ELF sections for a flat binary").toBe(0);
    expect(ours.elf).toBeUndefined();
  }, 240_000);

  it("relocatable ELF32: GRUB also reports a load base honouring the tag, where the kernel runs", async () => {
    const inp = input("elf32-reloc");
    const grub = parse((await bootGrub(dir, inp)).out);
    const re = readelfSections(inp.kernel);
    expect(grub.loadBase, "load base tag").toBeDefined();
    const base = grub.loadBase!;
    expect(base % 0x200000).toBe(0);
    expect(base >= 0x300000 && base + 0x2000 <= 0x2000000).toBe(true);
    expectHandOff(grub, inp, grub.loader!, re.entry - 0x200000 + base);
  }, 240_000);
});
