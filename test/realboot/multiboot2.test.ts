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
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bootGrub, bootOurs, buildKernel, checksum, MiB, parse, type BootInput, type Parsed, type Variant } from "./mb2/harness.js";

const dir = mkdtempSync(join(tmpdir(), "guest-image-mb2-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const kernels = new Map<Variant, string>();
beforeAll(() => {
  for (const v of ["elf32", "elf64", "elf32-reloc", "aout"] as const) kernels.set(v, buildKernel(dir, v));
});

/** Module contents: deterministic, different lengths, not page multiples. */
function moduleBytes(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    b[i] = s >>> 24;
  }
  return b;
}

const input = (v: Variant): BootInput => ({
  kernel: kernels.get(v)!,
  cmdline: "console=ttyS0 guest-image mb2 x=1",
  modules: [
    { name: "m0", bytes: moduleBytes(0x2345, 1), cmdline: "first module arg=1" },
    { name: "m1", bytes: moduleBytes(0x10001, 2), cmdline: "second" },
  ],
});

/** readelf's view of the kernel file: the oracle for the ELF sections tag. */
function readelfSections(path: string) {
  const header = execFileSync("readelf", ["-hW", path], { encoding: "utf8" });
  const num = (re: RegExp) => Number(re.exec(header)![1]);
  const entry = parseInt(/Entry point address:\s+0x([0-9a-f]+)/.exec(header)![1], 16);
  const sections = execFileSync("readelf", ["-SW", path], { encoding: "utf8" })
    .split("\n")
    .map((l) => /^\s*\[\s*(\d+)\]\s+(.*)$/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => {
      const t = m[2].trim().split(/\s+/);
      if (!(m[1] === "0" && t[0] === "NULL")) t.shift(); // the name (section 0 has none)
      return { i: Number(m[1]), type: t[0], addr: parseInt(t[1], 16), off: parseInt(t[2], 16), size: parseInt(t[3], 16) };
    });
  return {
    entry,
    shnum: num(/Number of section headers:\s+(\d+)/),
    shentsize: num(/Size of section headers:\s+(\d+)/),
    shstrndx: num(/Section header string table index:\s+(\d+)/),
    sections,
  };
}

/** A symbol's address as nm reports it. */
function nmSymbol(path: string, name: string): number {
  const line = execFileSync("nm", [path], { encoding: "utf8" }).split("\n").find((l) => l.endsWith(` ${name}`));
  if (!line) throw new Error(`nm: no ${name} in ${path}`);
  return parseInt(line.split(" ")[0], 16);
}

const SHT: Record<string, number> = { NULL: 0, PROGBITS: 1, SYMTAB: 2, STRTAB: 3, NOBITS: 8 };

/**
 * The checks a correct hand-off passes, expected values from the test's own inputs and readelf.
 * Returns nothing; throws (through expect) on the first difference.
 */
function expectHandOff(p: Parsed, inp: BootInput, loader: string, expectedStart: number) {
  expect(p.eax.toString(16), "EAX (spec 3.3: 0x36d76289)").toBe("36d76289");
  expect(p.badWalk, "the tag walk stayed inside total_size").toBe(false);
  expect(p.cr0 & 1, "CR0.PE").toBe(1);
  expect(p.cr0 >>> 31, "CR0.PG").toBe(0);
  expect(p.eflags & (1 << 9), "EFLAGS.IF").toBe(0);
  expect(p.eflags & (1 << 17), "EFLAGS.VM").toBe(0);
  expect(p.start.toString(16), "where _start runs").toBe(expectedStart.toString(16));
  expect(p.cmdline).toBe(inp.cmdline);
  expect(p.loader).toBe(loader);
  expect(p.modules.map((m) => m.str)).toEqual(inp.modules.map((m) => m.cmdline));
  expect(p.modules.map((m) => m.sum.toString(16)), "module bytes' checksums").toEqual(inp.modules.map((m) => checksum(m.bytes).toString(16)));
  expect(p.modules.map((m) => m.end - m.start)).toEqual(inp.modules.map((m) => m.bytes.length));
  for (const m of p.modules) expect(m.start % 0x1000, "module alignment tag: page-aligned modules").toBe(0);
  expect(p.mmap?.entrySize).toBe(24);
  expect(p.mmap?.version).toBe(0);
  expect(p.end, "an end tag").toBeDefined();
}

/** The ELF sections tag against readelf and the file's bytes. */
function expectSections(p: Parsed, path: string) {
  const re = readelfSections(path);
  const file = new Uint8Array(readFileSync(path));
  expect(p.elf, "ELF sections tag").toBeDefined();
  expect([p.elf!.num, p.elf!.entsize, p.elf!.shndx]).toEqual([re.shnum, re.shentsize, re.shstrndx]);
  expect(p.elf!.sections.map((s) => [s.i, s.type, s.size])).toEqual(re.sections.map((s) => [s.i, SHT[s.type] ?? -1, s.size]));
  // Every section with bytes is in memory where its sh_addr says (symbol and string tables too:
  // "All sections are loaded"), holding the file's bytes.
  const sums = re.sections.map((s) => (s.type === "NULL" || s.type === "NOBITS" || s.size === 0 ? null : checksum(file.subarray(s.off, s.off + s.size)).toString(16)));
  expect(p.elf!.sections.map((s) => (s.sum === null ? null : s.sum.toString(16))), "section bytes in memory").toEqual(sums);
}

describe("Multiboot 2 test kernel booted from guest-image's RAM in QEMU", () => {
  for (const v of ["elf32", "elf64"] as const) {
    it(`${v}: prints the command line, modules, memory map and ELF sections the test gave`, async () => {
      const inp = input(v);
      const { boot, out, raw } = await bootOurs(dir, inp);
      const p = parse(out);
      const re = readelfSections(inp.kernel);
      expectHandOff(p, inp, "guest-image", re.entry);
      // The memory map of what this test declared: RAM [0, 256 MiB) with the PC legacy area
      // [0x9fc00, 1 MiB) reserved (bootMultiboot2's default for i386 kernels).
      expect(p.mmap!.entries).toEqual([
        { base: 0x0n, length: 0x9fc00n, type: 1 },
        { base: 0x9fc00n, length: 0x60400n, type: 2 },
        { base: 0x100000n, length: BigInt(255 * MiB), type: 1 },
      ]);
      // Spec 3.6.3: lower memory from 0 (639 KiB before the reserved area), upper from 1 MiB to the first hole.
      expect(p.meminfo).toEqual({ lower: 639, upper: 255 * 1024 });
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
