// Relocation tables built from the specifications in the test, for what Debian bookworm's
// binutils cannot link: LoongArch (no loongarch64 binutils in bookworm) and DT_RELR on machines
// whose ld 2.40 does not pack relocations (AArch64, RISC-V, s390x, sparc64, ppc32), with
// bitmaps spanning several words. The oracle is binutils' readelf, which decodes them from the
// dynamic section (`readelf -D -rW`): each expected value is readelf's addend (RELA) or the
// site's file bytes (RELR) plus the move.
import { rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createVm, fromMap, GuestImageError } from "../src/node.js";
import { writeElf } from "./helpers/elf-writer.js";
import { readelfDynRelocs, readelfDynRelr } from "./helpers/readelf.js";

// gABI "Dynamic Section" tags.
const DT_NULL = 0n, DT_RELA = 7n, DT_RELASZ = 8n, DT_RELAENT = 9n, DT_RELRSZ = 35n, DT_RELR = 36n, DT_RELRENT = 37n;
const ET_DYN = 3, PT_DYNAMIC = 2;

interface Spec {
  machine: number;
  class: 32 | 64;
  bigEndian: boolean;
  /** RELA entries: [r_offset, r_type, r_addend]. */
  rela?: Array<[bigint, number, bigint]>;
  /** RELR words, as the gABI encodes them. */
  relr?: bigint[];
}

const TEXT = 0x0n; // PT_LOAD 0 at 0: headers, dynamic array at 0x800, tables at 0x1000
const DATA = 0x4000n; // PT_LOAD 1: 0x4000 bytes of data (the sites), then 0x1000 of BSS
const DATA_LEN = 0x4000;

/** A PIE linked at 0 for `spec` (layout above), data filled with a pattern so sites hold values. */
function pie(spec: Spec): Uint8Array {
  const is64 = spec.class === 64;
  const le = !spec.bigEndian;
  const w = is64 ? 8 : 4;
  const text = new Uint8Array(0x3000);
  const tv = new DataView(text.buffer);
  const word = (dv: DataView, o: number, v: bigint) => (is64 ? dv.setBigUint64(o, BigInt.asUintN(64, v), le) : dv.setUint32(o, Number(BigInt.asUintN(32, v)), le));
  const dyn: Array<[bigint, bigint]> = [];
  let at = 0x1000;
  if (spec.rela) {
    const ent = is64 ? 24 : 12;
    spec.rela.forEach(([off, type, addend], i) => {
      word(tv, at + i * ent, off);
      word(tv, at + i * ent + w, BigInt(type)); // r_info: symbol 0, type (ELF64: low 32 bits; ELF32: low 8)
      word(tv, at + i * ent + 2 * w, addend);
    });
    dyn.push([DT_RELA, BigInt(at)], [DT_RELASZ, BigInt(spec.rela.length * ent)], [DT_RELAENT, BigInt(ent)]);
    at += spec.rela.length * ent;
  }
  if (spec.relr) {
    at = (at + 7) & ~7;
    spec.relr.forEach((v, i) => word(tv, at + i * w, v));
    dyn.push([DT_RELR, BigInt(at)], [DT_RELRSZ, BigInt(spec.relr.length * w)], [DT_RELRENT, BigInt(w)]);
  }
  dyn.push([DT_NULL, 0n]);
  dyn.forEach(([t, v], i) => {
    word(tv, 0x800 + i * 2 * w, t);
    word(tv, 0x800 + i * 2 * w + w, v);
  });
  const data = new Uint8Array(DATA_LEN).map((_, i) => (i * 37 + 11) & 0xff);
  return writeElf({
    class: spec.class, bigEndian: spec.bigEndian, type: ET_DYN, machine: spec.machine, entry: TEXT,
    segments: [
      { vaddr: TEXT, paddr: TEXT, data: text, offset: 0x1000n, flags: 5 },
      { vaddr: DATA, paddr: DATA, data, offset: 0x4000n, memsz: BigInt(DATA_LEN + 0x1000), flags: 6 },
      { type: PT_DYNAMIC, vaddr: TEXT + 0x800n, paddr: TEXT + 0x800n, data: text.subarray(0x800, 0x800 + dyn.length * 2 * w), offset: 0x1800n, align: 8n },
    ],
  });
}

const saved: string[] = [];
afterAll(() => {
  for (const p of saved) rmSync(p, { force: true });
});

/** Writes `bytes` where readelf can read them (removed after the file's tests). */
function save(name: string, bytes: Uint8Array): string {
  const path = join(tmpdir(), `guest-image-spec-${process.pid}-${name}.elf`);
  writeFileSync(path, bytes);
  saved.push(path);
  return path;
}

const B = 0x4010_0000;
async function load(bytes: Uint8Array, at = B) {
  const vm = await createVm({ ram: [{ base: 0x4000_0000, size: 0x100_0000 }], files: fromMap({ k: bytes }) });
  vm.ram.view(0x4000_0000, 0x100_0000).fill(0xee);
  return { vm, k: await vm.loadKernel("k", { at }) };
}

function wordAt(bytes: Uint8Array, off: number, width: number, le: boolean): bigint {
  const dv = new DataView(bytes.buffer, bytes.byteOffset + off, width);
  return width === 8 ? dv.getBigUint64(0, le) : BigInt(dv.getUint32(0, le));
}

describe("LoongArch (R_LARCH_RELATIVE = 3, LoongArch ELF psABI), built from the spec", () => {
  const rela: Array<[bigint, number, bigint]> = [
    [DATA + 0x10n, 3, 0x123n],
    [DATA + 0x18n, 0, 0n], // R_LARCH_NONE
    [DATA + 0x100n, 3, DATA + 0x20n],
    [DATA + 0x3ff8n, 3, 0xdead_beefn], // the last 8 bytes of the file bytes
    [DATA + 0x4008n, 3, TEXT + 0x40n], // in the BSS
  ];
  it("readelf decodes the table as R_LARCH_RELATIVE; moved to B every site holds readelf's addend + B", async () => {
    const bytes = pie({ machine: 258, class: 64, bigEndian: false, rela });
    const relocs = readelfDynRelocs(save("larch", bytes));
    expect(relocs.map((r) => r.type)).toEqual(["R_LARCH_RELATIVE", "R_LARCH_NONE", "R_LARCH_RELATIVE", "R_LARCH_RELATIVE", "R_LARCH_RELATIVE"]);
    const { vm, k } = await load(bytes);
    expect(k.arch.format === "elf" && k.arch.machine).toBe("loongarch");
    expect(k.arch.format === "elf" && k.arch.relocations).toBe(4);
    for (const r of relocs.filter((x) => x.type === "R_LARCH_RELATIVE")) {
      expect(wordAt(vm.ram.read(B + Number(r.offset), 8), 0, 8, true)).toBe(r.addend! + BigInt(B));
    }
    // R_LARCH_NONE leaves its site as the file has it.
    expect(wordAt(vm.ram.read(B + Number(DATA) + 0x18, 8), 0, 8, true)).toBe(wordAt(bytes, 0x4018, 8, true));
  });

  it("a symbolic LoongArch relocation (R_LARCH_64 = 2) cannot be applied by a loader: refused, nothing written", async () => {
    const bytes = pie({ machine: 258, class: 64, bigEndian: false, rela: [...rela, [DATA + 0x20n, 2, 0n]] });
    expect(readelfDynRelocs(save("larch64", bytes)).at(-1)!.type).toBe("R_LARCH_64");
    const vm = await createVm({ ram: [{ base: 0x4000_0000, size: 0x100_0000 }], files: fromMap({ k: bytes }) });
    const err = await vm.loadKernel("k", { at: B }).catch((e) => e);
    expect(err).toBeInstanceOf(GuestImageError);
    expect(err.code).toBe("RELOCATION");
    expect(err.message).toContain("entry 5");
    expect(vm.placed()).toEqual([]);
    expect(vm.ram.read(0x4000_0000, 0x100_0000).every((b) => b === 0)).toBe(true);
  });
});

describe("DT_RELR built from the gABI encoding, decoded by readelf", () => {
  /**
   * Sites every word from DATA + 0x10 for 70 words (one address word, then bitmaps across two
   * words of 63 / 31 bits), a gap, some scattered ones, a bitmap with no bit set.
   */
  function relrWords(is64: boolean): { words: bigint[]; n: number } {
    const w = BigInt(is64 ? 8 : 4);
    const bits = is64 ? 63n : 31n;
    const words: bigint[] = [DATA + 0x10n]; // address: site DATA+0x10, next = DATA+0x10+w
    let next = DATA + 0x10n + w;
    let n = 1;
    for (let left = 69n; left > 0n;) {
      const k = left < bits ? left : bits;
      words.push((((1n << k) - 1n) << 1n) | 1n);
      n += Number(k);
      left -= k;
      next += bits * w;
    }
    words.push(1n); // a bitmap with no bit set: moves on, patches nothing
    next += bits * w;
    words.push(DATA + 0x2000n); // a new address
    n++;
    words.push((1n << 1n) | (1n << 5n) | (1n << 30n) | 1n); // sites +0, +4w, +29w after it
    n += 3;
    return { words, n };
  }

  for (const t of [
    { name: "aarch64 ELF64 LE", machine: 183, class: 64 as const, bigEndian: false },
    { name: "riscv64 ELF64 LE", machine: 243, class: 64 as const, bigEndian: false },
    { name: "s390x ELF64 BE", machine: 22, class: 64 as const, bigEndian: true },
    { name: "sparc64 ELF64 BE", machine: 43, class: 64 as const, bigEndian: true },
    { name: "arm ELF32 LE", machine: 40, class: 32 as const, bigEndian: false },
    { name: "ppc ELF32 BE", machine: 20, class: 32 as const, bigEndian: true },
  ]) {
    it(`${t.name}: every site readelf decodes holds its file value + B, every other byte as in the file`, async () => {
      const is64 = t.class === 64;
      const width = is64 ? 8 : 4;
      const le = !t.bigEndian;
      const { words, n } = relrWords(is64);
      const bytes = pie({ ...t, relr: words });
      const sites = readelfDynRelr(save(`relr-${t.machine}-${t.class}`, bytes));
      expect(sites.length).toBe(n);
      const { vm, k } = await load(bytes);
      expect(k.arch.format === "elf" && k.arch.relocations).toBe(n);
      const mask = (1n << BigInt(width * 8)) - 1n;
      const image = vm.ram.read(B + Number(DATA), DATA_LEN + 0x1000);
      const patched = new Set<number>();
      for (const s of sites) {
        const off = Number(s - DATA);
        expect(wordAt(image, off, width, le), `site ${s.toString(16)}`).toBe((wordAt(bytes, 0x4000 + off, width, le) + BigInt(B)) & mask);
        for (let i = 0; i < width; i++) patched.add(off + i);
      }
      for (let i = 0; i < DATA_LEN; i++) if (!patched.has(i) && image[i] !== bytes[0x4000 + i]) throw new Error(`byte +0x${i.toString(16)} changed`);
    });
  }

  it("a site past the segments (in a bitmap's reach) is refused before anything is written", async () => {
    const words = [DATA + 0x3ff0n, 0b111n]; // sites DATA+0x3ff0, then +0x3ff8 and +0x4000 (BSS start: fine), …
    const ok = pie({ machine: 183, class: 64, bigEndian: false, relr: words });
    expect(readelfDynRelr(save("relr-edge", ok))).toEqual([DATA + 0x3ff0n, DATA + 0x3ff8n, DATA + 0x4000n]);
    await load(ok);
    const far = [DATA + 0x4ff0n, 1n | (1n << 62n)]; // the BSS's last word, then the bitmap's last bit: 61 words past its end
    const bad = pie({ machine: 183, class: 64, bigEndian: false, relr: far });
    expect(readelfDynRelr(save("relr-far", bad))).toEqual([DATA + 0x4ff0n, DATA + 0x4ff8n + 61n * 8n]);
    const vm = await createVm({ ram: [{ base: 0x4000_0000, size: 0x100_0000 }], files: fromMap({ k: bad }) });
    const err = await vm.loadKernel("k", { at: B }).catch((e) => e);
    expect(err.code).toBe("RELOCATION");
    expect(err.field).toBe("DT_RELR");
    expect(err.message).toContain("word 1");
    expect(vm.placed()).toEqual([]);
    expect(vm.ram.read(0x4000_0000, 0x100_0000).every((b) => b === 0)).toBe(true);
  });
});
