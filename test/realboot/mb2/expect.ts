// The expectations of the Multiboot 2 real boots, shared by the QEMU/GRUB test
// (test/realboot/multiboot2.test.ts) and the v86 one (test/v86/multiboot2.test.ts): the inputs a
// test gives the kernel (test/realboot/mb2/kernel.S), readelf's and nm's view of the kernel file,
// and the checks a correct hand-off passes — expected values from the test's inputs, the spec
// and readelf, never from the loader's own output.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { expect } from "vitest";
import { checksum, type BootInput, type Parsed } from "./harness.js";

/** Module contents: deterministic, different lengths, not page multiples. */
export function moduleBytes(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    b[i] = s >>> 24;
  }
  return b;
}

/** What every Multiboot 2 boot test gives the kernel at `kernel`: a command line and two modules with strings. */
export const mb2Input = (kernel: string): BootInput => ({
  kernel,
  cmdline: "console=ttyS0 guest-image mb2 x=1",
  modules: [
    { name: "m0", bytes: moduleBytes(0x2345, 1), cmdline: "first module arg=1" },
    { name: "m1", bytes: moduleBytes(0x10001, 2), cmdline: "second" },
  ],
});

/** readelf's view of the kernel file: the oracle for the ELF sections tag. */
export function readelfSections(path: string) {
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
export function nmSymbol(path: string, name: string): number {
  const line = execFileSync("nm", [path], { encoding: "utf8" }).split("\n").find((l) => l.endsWith(` ${name}`));
  if (!line) throw new Error(`nm: no ${name} in ${path}`);
  return parseInt(line.split(" ")[0], 16);
}

const SHT: Record<string, number> = { NULL: 0, PROGBITS: 1, SYMTAB: 2, STRTAB: 3, NOBITS: 8 };

/**
 * The checks a correct hand-off passes, expected values from the test's own inputs and readelf.
 * Returns nothing; throws (through expect) on the first difference.
 */
export function expectHandOff(p: Parsed, inp: BootInput, loader: string, expectedStart: number) {
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
export function expectSections(p: Parsed, path: string) {
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


/**
 * The memory map and basic memory information for RAM [0, ramBytes) with the PC legacy area
 * [0x9fc00, 1 MiB) reserved (bootMultiboot2's default for i386 kernels); spec 3.6.3: lower memory
 * from 0 (639 KiB before the reserved area), upper from 1 MiB to the first hole, in KiB.
 */
export function expectPcMemory(p: Parsed, ramBytes: number) {
  const MiB = 0x100000;
  expect(p.mmap!.entries, "memory map").toEqual([
    { base: 0x0n, length: 0x9fc00n, type: 1 },
    { base: 0x9fc00n, length: 0x60400n, type: 2 },
    { base: 0x100000n, length: BigInt(ramBytes - MiB), type: 1 },
  ]);
  expect(p.meminfo, "basic memory information").toEqual({ lower: 639, upper: (ramBytes - MiB) / 1024 });
}
