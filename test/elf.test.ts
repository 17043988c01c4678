// ELF loading against binutils' readelf (the reference ELF reader) on real files: this machine's
// own binaries and cross ELFs assembled in the test setup for six architectures, both byte
// orders and both classes. Expected placements, bytes and relocated values come from readelf
// and the files' bytes, never from our parser.
import { existsSync, readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { beforeAll, describe, expect, it } from "vitest";
import { createVm, fromMap, GuestImageError, inspectFile, vm_load_guest_kernel } from "../src/node.js";
import { openPath } from "../src/sources/directory.js";
import { buildCrossElfs, type CrossElf } from "./helpers/cross-elf.js";
import { readelfHeader, readelfHexDump, readelfRelocs, readelfRelr, readelfSegments, type ReadelfSegment } from "./helpers/readelf.js";

/** readelf's "Machine:" text → our short machine name. */
const MACHINE: Record<string, string> = {
  "Advanced Micro Devices X86-64": "x86_64",
  "Intel 80386": "i386",
  AArch64: "aarch64",
  "RISC-V": "riscv",
  ARM: "arm",
  "MIPS R3000": "mips",
  "IBM S/390": "s390",
  PowerPC64: "ppc64",
  PowerPC: "ppc",
  "Sparc v9": "sparcv9",
};

const HOST_BINARIES = ["/bin/ls", "/usr/bin/node", "/usr/lib/x86_64-linux-gnu/libc.so.6", "/usr/bin/readelf"].filter(existsSync);

let fixtures: CrossElf[];
beforeAll(() => {
  fixtures = buildCrossElfs();
});

const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));
const loads = (segs: ReadelfSegment[]) => segs.filter((s) => s.type === "LOAD" && s.memsz > 0n);

describe("cross ELF fixtures", () => {
  it("exist for every architecture (CI installs the cross binutils)", () => {
    const names = fixtures.map((f) => `${f.arch}/${f.kind}`).sort();
    expect(names).toEqual([
      "aarch64/exec", "aarch64/pie", "arm/exec", "arm/pie", "i686/exec", "i686/pie", "i686/relr", "mips/exec",
      "ppc/exec", "ppc/pie", "ppc64/exec", "ppc64/pie", "ppc64/relr", "ppc64le/exec", "ppc64le/pie", "ppc64le/relr",
      "riscv64/exec", "riscv64/pie", "s390x/exec", "s390x/pie", "sparc64/exec", "sparc64/pie",
      "x86_64/exec", "x86_64/pie", "x86_64/relr",
    ]);
  });
});

describe("inspect agrees with readelf -hW / -lW", () => {
  const check = async (path: string) => {
    const h = readelfHeader(path);
    const segs = readelfSegments(path);
    const file = openPath(path);
    try {
      const info = await inspectFile(file);
      expect(info.format).toBe("elf");
      expect(info.class).toBe(h.class);
      expect(info.endian).toBe(h.endian);
      expect(info.entry).toBe(h.entry);
      if (MACHINE[h.machine]) expect(info.machine).toBe(MACHINE[h.machine]);
      expect(info.segments).toHaveLength(segs.length);
      info.segments!.forEach((s, i) => {
        const r = segs[i];
        expect({ offset: s.offset, vaddr: s.vaddr, paddr: s.paddr, filesz: s.filesz, memsz: s.memsz, align: s.align }).toEqual({
          offset: r.offset, vaddr: r.vaddr, paddr: r.paddr, filesz: r.filesz, memsz: r.memsz, align: r.align,
        });
        expect(s.flags.replace(/ /g, "")).toBe(r.flags.replace(/ /g, ""));
        // readelf -W cuts type names to 14 characters ("RISCV_ATTRIBUT").
        expect(s.type.slice(0, 14)).toBe(r.type);
      });
    } finally {
      await file.close();
    }
  };
  it("on the cross fixtures", async () => {
    for (const f of fixtures) await check(f.path);
  });
  it.each(HOST_BINARIES)("on this machine's %s", async (path) => {
    await check(path);
  });
});

/** Loads `path` with RAM pre-filled with 0xEE so BSS zeroing and untouched gaps are visible. */
async function loadWithPattern(path: string, at: number | undefined, ramBase: number, ramSize: number) {
  const bytes = new Uint8Array(readFileSync(path));
  const vm = await createVm({ ram: [{ base: ramBase, size: ramSize }], files: fromMap({ k: bytes }) });
  vm.ram.view(ramBase, ramSize).fill(0xee);
  const k = await vm.loadKernel("k", at === undefined ? {} : { at });
  return { vm, k, bytes };
}

function expectPlaced(vm: Awaited<ReturnType<typeof createVm>>, bytes: Uint8Array, segs: ReadelfSegment[], delta: bigint) {
  const ls = loads(segs);
  for (const s of ls) {
    const dst = Number(s.paddr + delta);
    const ram = vm.ram.read(dst, Number(s.memsz));
    expect(Buffer.from(ram.subarray(0, Number(s.filesz))).equals(Buffer.from(bytes.subarray(Number(s.offset), Number(s.offset + s.filesz))))).toBe(true);
    expect(ram.subarray(Number(s.filesz)).every((b) => b === 0)).toBe(true);
  }
  // Bytes just outside every segment (and in gaps between them) keep the pattern.
  const sorted = [...ls].sort((a, b) => (a.paddr < b.paddr ? -1 : 1));
  for (let i = 0; i < sorted.length; i++) {
    const end = Number(sorted[i].paddr + sorted[i].memsz + delta);
    const next = i + 1 < sorted.length ? Number(sorted[i + 1].paddr + delta) : end + 16;
    if (next > end) expect(vm.ram.read(end, Math.min(16, next - end)).every((b) => b === 0xee)).toBe(true);
  }
  const first = Number(sorted[0].paddr + delta);
  expect(vm.ram.read(first - 16, 16).every((b) => b === 0xee)).toBe(true);
}

describe("loading at the link address", () => {
  it("places every PT_LOAD at p_paddr: file bytes, then zeros to p_memsz, gaps untouched", async () => {
    for (const f of fixtures.filter((x) => x.kind === "exec")) {
      const segs = readelfSegments(f.path);
      const { vm, k, bytes } = await loadWithPattern(f.path, undefined, 0x10_0000, 0x40_0000);
      const ls = loads(segs);
      const lo = ls.reduce((m, s) => (s.paddr < m ? s.paddr : m), ls[0].paddr);
      const hi = ls.reduce((m, s) => (s.paddr + s.memsz > m ? s.paddr + s.memsz : m), 0n);
      expect(k.paddr, f.arch).toBe(Number(lo));
      expect(k.size, f.arch).toBe(Number(hi - lo));
      expect(k.entry, f.arch).toBe(readelfHeader(f.path).entry);
      expect(vm.placed()).toEqual([{ name: "k", paddr: Number(lo), size: Number(hi - lo) }]);
      expectPlaced(vm, bytes, segs, 0n);
    }
  });

  it("loads this machine's /bin/ls (ELF64 PIE, linked at 0) at its own address", async () => {
    const segs = readelfSegments("/bin/ls");
    const hi = loads(segs).reduce((m, s) => (s.paddr + s.memsz > m ? s.paddr + s.memsz : m), 0n);
    const { vm, k, bytes } = await loadWithPattern("/bin/ls", undefined, 0, Number(hi) + 0x10_0000);
    expect(k.paddr).toBe(0);
    expect(k.size).toBe(Number(hi));
    // RELA RELATIVE entries are applied at the link address too (B + A, with B = 0); the symbolic
    // ones are the dynamic linker's and are left alone there.
    const relative = readelfRelocs("/bin/ls").filter((r) => r.type === "R_X86_64_RELATIVE");
    expect(relative.length).toBeGreaterThan(0);
    expect(k.arch.format === "elf" && k.arch.relocations).toBe(relative.length);
    for (const r of relative) expect(new DataView(vm.ram.read(Number(r.offset), 8).buffer).getBigUint64(0, true)).toBe(r.addend);
    const ls = loads(segs);
    for (const s of ls) {
      const ram = vm.ram.read(Number(s.paddr), Number(s.memsz));
      expect(Buffer.from(ram.subarray(0, Number(s.filesz))).equals(Buffer.from(bytes.subarray(Number(s.offset), Number(s.offset + s.filesz))))).toBe(true);
      expect(ram.subarray(Number(s.filesz)).every((b) => b === 0)).toBe(true);
    }
  });
});

describe("whole-image relocation (seL4 x86 rule) with RELATIVE relocations", () => {
  /** The word at `addr` in the file as readelf's hex dump of `section` shows it. */
  function fileWord(path: string, section: string, addr: bigint, width: number, le: boolean): bigint {
    const { addr: base, bytes } = readelfHexDump(path, section);
    const dv = new DataView(bytes.buffer, bytes.byteOffset + Number(addr - base), width);
    return width === 8 ? dv.getBigUint64(0, le) : BigInt(dv.getUint32(0, le));
  }

  it("moves each PIE to B and patches every site to readelf's addend + D", async () => {
    const B = 0x4020_0000;
    for (const f of fixtures.filter((x) => x.kind === "pie")) {
      const segs = readelfSegments(f.path);
      const relocs = readelfRelocs(f.path);
      expect(relocs.length, f.arch).toBeGreaterThanOrEqual(4);
      const lo = loads(segs).reduce((m, s) => (s.paddr < m ? s.paddr : m), loads(segs)[0].paddr);
      const delta = BigInt(B) - lo;
      const { vm, k, bytes } = await loadWithPattern(f.path, B, 0x4000_0000, 0x100_0000);
      expect(k.paddr).toBe(B);
      expect(k.entry).toBe(readelfHeader(f.path).entry + delta);
      expect(k.arch.format === "elf" && k.arch.relocation_offset).toBe(delta);
      expect(k.arch.format === "elf" && k.arch.relocations, f.arch).toBe(relocs.length);
      const width = f.class === 64 ? 8 : 4;
      const le = f.endian === "little";
      const mask = (1n << BigInt(width * 8)) - 1n;
      const sites = new Map<number, bigint>();
      for (const r of relocs) {
        expect(r.type.endsWith("_RELATIVE"), `${f.arch} ${r.type}`).toBe(true);
        // RELA: the addend readelf prints; REL: the implicit addend stored at the site.
        const addend = r.addend ?? fileWord(f.path, ".data", r.offset, width, le);
        sites.set(Number(r.offset - lo), (addend + delta) & mask);
      }
      const image = vm.ram.read(B, k.size);
      const dv = new DataView(image.buffer);
      for (const [off, want] of sites) {
        const got = width === 8 ? dv.getBigUint64(off, le) : BigInt(dv.getUint32(off, le));
        expect(got, `${f.arch} site +0x${off.toString(16)}`).toBe(want);
      }
      // Every other byte is exactly what readelf's segments say: file bytes, then zeros.
      const patched = new Set<number>();
      for (const off of sites.keys()) for (let i = 0; i < width; i++) patched.add(off + i);
      for (const s of loads(segs)) {
        const at = Number(s.paddr - lo);
        for (let i = 0; i < Number(s.memsz); i++) {
          if (patched.has(at + i)) continue;
          const want = i < Number(s.filesz) ? bytes[Number(s.offset) + i] : 0;
          if (image[at + i] !== want) throw new Error(`${f.arch}: byte +0x${(at + i).toString(16)} is ${image[at + i]}, want ${want}`);
        }
      }
    }
  });

  it("relocates through the seL4 API: B = load_address rounded up to alignment", async () => {
    const f = fixtures.find((x) => x.arch === "aarch64" && x.kind === "pie")!;
    const vm = await createVm({ ram: [{ base: 0x4000_0000, size: 0x100_0000 }], files: fromMap({ linux: new Uint8Array(readFileSync(f.path)) }) });
    const g = await vm_load_guest_kernel(vm, "linux", 0x4000_0001, 0x20_0000);
    expect(g.kernel_image.load_paddr).toBe(0x4020_0000);
    expect(g.kernel_image.alignment).toBe(0x20_0000);
    const ls = loads(readelfSegments(f.path));
    const hi = ls.reduce((m, s) => (s.paddr + s.memsz > m ? s.paddr + s.memsz : m), 0n);
    const lo = ls.reduce((m, s) => (s.paddr < m ? s.paddr : m), ls[0].paddr);
    expect(g.kernel_image.size).toBe(Number(hi - lo));
    expect(g.kernel_image_arch.relocation_offset).toBe(0x4020_0000n - lo);
    expect(g.kernel_image_arch.link_paddr).toBe(lo);
  });

  it("moves a non-PIE ELF as a whole (no relocation data: the kernel relocates itself)", async () => {
    for (const f of fixtures.filter((x) => x.kind === "exec")) {
      const segs = readelfSegments(f.path);
      const B = 0x80_0000;
      const lo = loads(segs).reduce((m, s) => (s.paddr < m ? s.paddr : m), loads(segs)[0].paddr);
      const { vm, k, bytes } = await loadWithPattern(f.path, B, 0x10_0000, 0x100_0000);
      expect(k.arch.format === "elf" && k.arch.relocations).toBe(0);
      expect(k.entry).toBe(readelfHeader(f.path).entry + BigInt(B) - lo);
      expectPlaced(vm, bytes, segs, BigInt(B) - lo);
    }
  });

  it("refuses to move /bin/ls, whose symbolic relocations only a dynamic linker can apply", async () => {
    const bytes = new Uint8Array(readFileSync("/bin/ls"));
    const vm = await createVm({ ram: [{ base: 0x100_0000, size: 0x100_0000 }], files: fromMap({ ls: bytes }) });
    const err = await vm.loadKernel("ls", { at: 0x100_0000 }).catch((e) => e);
    expect(err).toBeInstanceOf(GuestImageError);
    expect(err.code).toBe("RELOCATION");
    expect(err.message).toMatch(/relocation type \d+/);
    expect(vm.placed()).toEqual([]);
    expect(vm.ram.read(0x100_0000, 0x100_0000).every((b: number) => b === 0)).toBe(true);
  });
});

/** The file offset of link-time address `addr`, through readelf's PT_LOADs. */
function fileOffsetOf(segs: ReadelfSegment[], addr: bigint): number {
  const s = loads(segs).find((x) => addr >= x.vaddr && addr < x.vaddr + x.filesz)!;
  return Number(s.offset + (addr - s.vaddr));
}

const lowest = (segs: ReadelfSegment[]) => loads(segs).reduce((m, s) => (s.paddr < m ? s.paddr : m), loads(segs)[0].paddr);

/** The word of `width` bytes at `off` in `bytes`. */
function wordAt(bytes: Uint8Array, off: number, width: number, le: boolean): bigint {
  const dv = new DataView(bytes.buffer, bytes.byteOffset + off, width);
  return width === 8 ? dv.getBigUint64(0, le) : BigInt(dv.getUint32(0, le));
}

describe("DT_RELR (gABI packed relative relocations), linked by ld -z pack-relative-relocs", () => {
  it("moves each RELR PIE to B: every site readelf decodes holds its in-place addend + D, every other byte as in the file", async () => {
    const B = 0x4020_0000;
    const relr = fixtures.filter((x) => x.kind === "relr");
    expect(relr.length).toBe(4);
    for (const f of relr) {
      const segs = readelfSegments(f.path);
      const sites = readelfRelr(f.path).flatMap((x) => x.offsets);
      expect(sites.length, f.arch).toBe(5);
      const lo = lowest(segs);
      const delta = BigInt(B) - lo;
      const { vm, k, bytes } = await loadWithPattern(f.path, B, 0x4000_0000, 0x100_0000);
      expect(k.arch.format === "elf" && k.arch.relocations, f.arch).toBe(sites.length);
      const width = f.class === 64 ? 8 : 4;
      const le = f.endian === "little";
      const mask = (1n << BigInt(width * 8)) - 1n;
      const image = vm.ram.read(B, k.size);
      const patched = new Set<number>();
      for (const site of sites) {
        const off = Number(site - lo);
        const want = (wordAt(bytes, fileOffsetOf(segs, site), width, le) + delta) & mask;
        expect(wordAt(image, off, width, le), `${f.arch} site ${site.toString(16)}`).toBe(want);
        for (let i = 0; i < width; i++) patched.add(off + i);
      }
      for (const s of loads(segs)) {
        const at = Number(s.paddr - lo);
        for (let i = 0; i < Number(s.memsz); i++) {
          if (patched.has(at + i)) continue;
          const want = i < Number(s.filesz) ? bytes[Number(s.offset) + i] : 0;
          if (image[at + i] !== want) throw new Error(`${f.arch}: byte +0x${(at + i).toString(16)} is ${image[at + i]}, want ${want}`);
        }
      }
    }
  });

  it("at the link address a RELR table has nothing to do (the addends are in place)", async () => {
    for (const f of fixtures.filter((x) => x.kind === "relr")) {
      const segs = readelfSegments(f.path);
      const { vm, k, bytes } = await loadWithPattern(f.path, undefined, 0, 0x10_0000);
      expect(k.arch.format === "elf" && k.arch.relocations, f.arch).toBe(0);
      for (const s of loads(segs)) {
        const ram = vm.ram.read(Number(s.paddr), Number(s.memsz));
        expect(same(ram.subarray(0, Number(s.filesz)), bytes.subarray(Number(s.offset), Number(s.offset + s.filesz))), f.arch).toBe(true);
        expect(ram.subarray(Number(s.filesz)).every((b) => b === 0)).toBe(true);
      }
    }
  });

  it("a RELR site outside the segments is refused before anything is written", async () => {
    const f = fixtures.find((x) => x.arch === "x86_64" && x.kind === "relr")!;
    const bytes = new Uint8Array(readFileSync(f.path));
    const segs = readelfSegments(f.path);
    // The table's first word is an address entry (gABI: even); point it past the image.
    const relrSec = readelfRelr(f.path)[0];
    expect(relrSec.offsets.length).toBe(5);
    const dyn = readelfHexDump(f.path, ".relr.dyn");
    const off = fileOffsetOf(segs, dyn.addr);
    expect(wordAt(bytes, off, 8, true)).toBe(relrSec.offsets[0]);
    new DataView(bytes.buffer).setBigUint64(off, 0x10_0000n, true);
    const vm = await createVm({ ram: [{ base: 0x4000_0000, size: 0x100_0000 }], files: fromMap({ k: bytes }) });
    vm.ram.view(0x4000_0000, 0x100_0000).fill(0xee);
    const err = await vm.loadKernel("k", { at: 0x4020_0000 }).catch((e) => e);
    expect(err).toBeInstanceOf(GuestImageError);
    expect(err.code).toBe("RELOCATION");
    expect(err.message).toContain("0x100000");
    expect(vm.placed()).toEqual([]);
    expect(vm.ram.read(0x4000_0000, 0x100_0000).every((b: number) => b === 0xee)).toBe(true);
  });
});

describe("RELA RELATIVE at the link address (B + A, the addend authoritative)", () => {
  it("a PIE whose sites hold 0 (as lld leaves them) gets readelf's addends when loaded where it was linked", async () => {
    for (const f of fixtures.filter((x) => x.kind === "pie")) {
      const relocs = readelfRelocs(f.path);
      const rela = relocs[0].addend !== null;
      const segs = readelfSegments(f.path);
      const bytes = new Uint8Array(readFileSync(f.path));
      const width = f.class === 64 ? 8 : 4;
      const le = f.endian === "little";
      for (const r of relocs) bytes.fill(0, fileOffsetOf(segs, r.offset), fileOffsetOf(segs, r.offset) + width);
      const lo = lowest(segs);
      const vm = await createVm({ ram: [{ base: 0, size: 0x10_0000 }], files: fromMap({ k: bytes }) });
      const k = await vm.loadKernel("k");
      expect(k.paddr).toBe(Number(lo));
      expect(k.arch.format === "elf" && k.arch.relocations, f.arch).toBe(rela ? relocs.length : 0);
      for (const r of relocs) {
        // RELA: B + A with B = 0; REL (i386, ARM): the addend is the site itself, so it stays 0.
        const got = wordAt(vm.ram.read(Number(r.offset), width), 0, width, le);
        expect(got, `${f.arch} ${r.offset.toString(16)}`).toBe(rela ? r.addend! : 0n);
      }
    }
  });
});

describe("ELF32 addresses are 32-bit (gABI Elf32_Addr)", () => {
  it("an ELF32 PIE asked to load at or above 4 GiB is refused (BAD_ADDRESS), nothing written", async () => {
    for (const f of fixtures.filter((x) => x.class === 32 && x.kind !== "exec")) {
      const bytes = new Uint8Array(readFileSync(f.path));
      for (const at of [0x1_0000_0000, 0xffff_f000]) {
        const vm = await createVm({ ram: [{ base: 0xfff0_0000, size: 0x20_0000 }], files: fromMap({ k: bytes }) });
        vm.ram.view(0xfff0_0000, 0x20_0000).fill(0xee);
        const err = await vm.loadKernel("k", { at }).catch((e) => e);
        expect(err, `${f.arch}/${f.kind} at ${at.toString(16)}`).toBeInstanceOf(GuestImageError);
        expect(err.code).toBe("BAD_ADDRESS");
        expect(err.message).toContain(`0x${at.toString(16)}`);
        expect(err.message).toContain("4 GiB");
        expect(vm.placed()).toEqual([]);
        expect(vm.ram.read(0xfff0_0000, 0x20_0000).every((b: number) => b === 0xee)).toBe(true);
      }
      // Just below 4 GiB, with room for the whole image, it loads.
      const segs = readelfSegments(f.path);
      const size = loads(segs).reduce((m, s) => (s.paddr + s.memsz > m ? s.paddr + s.memsz : m), 0n) - lowest(segs);
      const at = Number((0x1_0000_0000n - size) & ~0xfffn) - 0x1000;
      const vm = await createVm({ ram: [{ base: 0xfff0_0000, size: 0x20_0000 }], files: fromMap({ k: bytes }) });
      const k = await vm.loadKernel("k", { at });
      expect(k.paddr + k.size).toBeLessThanOrEqual(2 ** 32);
    }
  });
});

describe("p_align congruence (gABI: p_vaddr ≡ p_offset modulo p_align)", () => {
  it("with no alignment given, a base that moves a PIE by other than a multiple of p_align is refused naming both", async () => {
    for (const f of fixtures.filter((x) => x.kind === "pie")) {
      const segs = readelfSegments(f.path);
      const align = loads(segs).reduce((m, s) => (s.align > m ? s.align : m), 0n);
      expect(align, f.arch).toBe(0x1000n);
      const bytes = new Uint8Array(readFileSync(f.path));
      const vm = await createVm({ ram: [{ base: 0x4000_0000, size: 0x100_0000 }], files: fromMap({ k: bytes }) });
      vm.ram.view(0x4000_0000, 0x100_0000).fill(0xee);
      const at = 0x4020_0800;
      const err = await vm.loadKernel("k", { at }).catch((e) => e);
      expect(err, f.arch).toBeInstanceOf(GuestImageError);
      expect(err.code).toBe("BAD_ALIGNMENT");
      expect(err.field).toBe("p_align");
      expect(err.message).toContain("0x40200800");
      expect(err.message).toContain("p_align 0x1000");
      expect(vm.placed()).toEqual([]);
      expect(vm.ram.read(0x4000_0000, 0x100_0000).every((b: number) => b === 0xee)).toBe(true);
      // A base that keeps the congruence, or an alignment the caller asks for, loads.
      expect((await vm.loadKernel("k", { at: 0x4020_1000 })).paddr).toBe(0x4020_1000);
      const vm2 = await createVm({ ram: [{ base: 0x4000_0000, size: 0x100_0000 }], files: fromMap({ k: bytes }) });
      expect((await vm2.loadKernel("k", { at, align: 0x1000 })).paddr).toBe(0x4020_1000);
    }
  });
});

describe("a compressed PIE (gzip container around the ELF)", () => {
  it("applies and reports the relocations readelf lists, dry run included, as the plain file does", async () => {
    for (const f of fixtures.filter((x) => x.kind !== "exec")) {
      const raw = new Uint8Array(readFileSync(f.path));
      const want = f.kind === "relr" ? readelfRelr(f.path).flatMap((x) => x.offsets).length : readelfRelocs(f.path).length;
      const gz = new Uint8Array(gzipSync(raw));
      const mk = (b: Uint8Array) => createVm({ ram: [{ base: 0x4000_0000, size: 0x100_0000 }], files: fromMap({ k: b }) });
      const dry = await (await mk(gz)).loadKernel("k", { at: 0x4020_0000, dryRun: true });
      const vmGz = await mk(gz);
      const k = await vmGz.loadKernel("k", { at: 0x4020_0000 });
      const vmRaw = await mk(raw);
      const r = await vmRaw.loadKernel("k", { at: 0x4020_0000 });
      expect(k.arch).not.toBe(r.arch);
      expect(Object.keys(k.arch).length, f.arch).toBeGreaterThan(Object.keys(r.arch).length); // the container's fields added
      for (const x of [dry, k, r]) expect(x.arch.format === "elf" && x.arch.relocations, `${f.arch}/${f.kind}`).toBe(want);
      expect(same(vmGz.ram.read(0x4020_0000, r.size), vmRaw.ram.read(0x4020_0000, r.size)), f.arch).toBe(true);
    }
  });
});
