// The fast paths of execute(): when each is taken, and that the invariants hold on both sides of
// it — every check before the first write, and a failed load leaving guest RAM and the ledger
// exactly as they were.
import { readFileSync } from "node:fs";
import zlib, { gunzipSync } from "node:zlib";
import { afterEach, describe, expect, it, vi } from "vitest";
import { Core } from "../src/core/core.js";
import { planElf, readElf } from "../src/formats/elf.js";
import { planRaw } from "../src/formats/raw.js";
import { createVm, fromCpio, fromMap, GuestImageError, parseCpio, type Vm } from "../src/node.js";
import { check, execute, READ_CHUNK } from "../src/plan.js";
import { Ledger } from "../src/ram/ledger.js";
import { bytesFile, type ImageFile, type Source } from "../src/sources/source.js";
import { writeElf } from "./helpers/elf-writer.js";
import { gzipMember } from "./helpers/gzip.js";
import { expectRefused, MiB } from "./helpers/vm.js";

/** The bundled sample initrd (a newc archive), unpacked. */
const rootfs = new Uint8Array(gunzipSync(readFileSync(new URL("../examples/images/rootfs.cpio.gz", import.meta.url))));
const pattern = (n: number, seed = 1) => new Uint8Array(n).map((_, i) => (i * 31 + seed + (i >>> 12)) & 0xff);
const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));

/** A VM whose RAM was written before (0xee everywhere): a journaled load has to save every chunk. */
async function dirtyVm(files: Source = fromMap({}), size = 32 * MiB, base = 0x4000_0000) {
  const vm = await createVm({ ram: [{ base, size }], files });
  vm.ram.view(base, size).fill(0xee);
  return vm;
}

/** An in-memory file whose read() counts its calls (execute()'s fast path copies from `bytes`). */
function countingFile(name: string, bytes: Uint8Array): ImageFile & { reads: number } {
  const inner = bytesFile(name, bytes);
  const f = {
    name, size: bytes.length, bytes, reads: 0,
    async read(dst: Uint8Array, position: number) {
      f.reads++;
      await inner.read(dst, position);
    },
    async close() {},
  };
  return f;
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("in-memory files: one copy per piece, no rollback journal, when nothing can fail", () => {
  it("fromMap without progress: no read() call, no zero test, no saved copy; the bytes land", async () => {
    const vm = await dirtyVm();
    const bytes = pattern(20 * MiB);
    const file = countingFile("img", bytes);
    const isZero = vi.spyOn(vm.core, "isZero");
    const slice = vi.spyOn(Uint8Array.prototype, "slice");
    const c = check(planRaw(file, 0x4000_1000), vm.ram, vm.ledger, vm.core);
    await execute(c, vm.ram, vm.ledger, vm.core);
    expect(file.reads).toBe(0);
    expect(isZero).not.toHaveBeenCalled();
    expect(slice).not.toHaveBeenCalled();
    expect(same(vm.ram.read(0x4000_1000, bytes.length), bytes)).toBe(true);
    expect(vm.ram.read(0x4000_0fff, 1)[0]).toBe(0xee);
    expect(vm.ram.read(0x4000_1000 + bytes.length, 1)[0]).toBe(0xee);
    expect(vm.placed()).toEqual([{ name: "img", paddr: 0x4000_1000, size: bytes.length }]);
  });

  it("through vm.loadModule (fromMap and fromCpio) and vm.place(): the journal is skipped", async () => {
    const bytes = pattern(3 * MiB, 7);
    const entry = parseCpio(rootfs).find((e) => (e.mode & 0o170000) === 0o100000 && e.size > 0)!;
    const loads: Array<() => Promise<unknown>> = [
      async () => (await dirtyVm(fromMap({ img: bytes }))).loadModule("img", { at: 0x4010_0000 }),
      async () => (await dirtyVm(fromCpio(rootfs))).loadModule(entry.name, { at: 0x4010_0000 }),
      async () => (await dirtyVm()).place("blob", bytes, { at: 0x4010_0000 }),
    ];
    for (const load of loads) {
      const isZero = vi.spyOn(Core.prototype, "isZero");
      await load();
      expect(isZero).not.toHaveBeenCalled();
      isZero.mockRestore();
    }
  });

  it("pieces in RAM regions that are not adjacent in linear memory each get their bytes", async () => {
    // Guest physical [1 MiB, 3 MiB) is two regions, laid out in linear memory in reverse order.
    const vm = await createVm({ ram: [{ base: 2 * MiB, size: MiB }, { base: MiB, size: MiB }] });
    const bytes = pattern(MiB, 3);
    const c = check(planRaw(countingFile("x", bytes), 2 * MiB - 0x1000), vm.ram, vm.ledger, vm.core);
    await execute(c, vm.ram, vm.ledger, vm.core);
    expect(same(vm.ram.read(2 * MiB - 0x1000, bytes.length), bytes)).toBe(true);
  });

  it("with a progress callback it reads chunk by chunk and keeps the journal", async () => {
    const vm = await dirtyVm();
    const bytes = pattern(2 * READ_CHUNK + 5);
    const file = countingFile("img", bytes);
    const isZero = vi.spyOn(vm.core, "isZero");
    const progress: number[] = [];
    const c = check(planRaw(file, 0x4000_0000), vm.ram, vm.ledger, vm.core);
    await execute(c, vm.ram, vm.ledger, vm.core, (n) => progress.push(n));
    expect(file.reads).toBe(3);
    expect(isZero).toHaveBeenCalledTimes(3);
    expect(progress).toEqual([READ_CHUNK, 2 * READ_CHUNK, 2 * READ_CHUNK + 5]);
    expect(same(vm.ram.read(0x4000_0000, bytes.length), bytes)).toBe(true);
  });

  it("a progress callback that throws still rolls the load back (dirty RAM restored, ledger as before)", async () => {
    const bytes = pattern(2 * READ_CHUNK + 5);
    const vm = await dirtyVm(fromMap({ img: bytes }));
    await vm.place("resident", new Uint8Array(16).fill(1), { at: 0x4000_0000 });
    let calls = 0;
    const err = await expectRefused(vm, () => vm.loadModule("img", { at: 0x4010_0000, onProgress: () => {
      if (++calls === 2) throw new Error("stop");
    } }), "IO");
    expect(calls).toBe(2);
    expect(err.message).toContain("stop");
  });

  it("inside a transaction the journal is kept, so the transaction can undo the load", async () => {
    const bytes = pattern(READ_CHUNK + 3);
    const vm = await dirtyVm(fromMap({ img: bytes }));
    const before = vm.ram.read(0x4000_0000, 32 * MiB);
    const err = await vm.transaction(async (tx) => {
      await tx.loadModule("img", { at: 0x4010_0000 });
      throw new Error("later step failed");
    }).catch((e: unknown) => e);
    expect((err as Error).message).toBe("later step failed");
    expect(vm.placed()).toEqual([]);
    expect(same(vm.ram.read(0x4000_0000, 32 * MiB), before)).toBe(true);
  });

  it("bytes taken away between check() and execute() (a transferred buffer): IO before the first write", async () => {
    const vm = await dirtyVm();
    const bytes = pattern(4 * MiB);
    const before = vm.ram.read(0x4000_0000, 32 * MiB);
    const c = check(planRaw(bytesFile("gone", bytes), 0x4000_0000), vm.ram, vm.ledger, vm.core);
    structuredClone(bytes.buffer, { transfer: [bytes.buffer] });
    expect(bytes.length).toBe(0);
    const err = await execute(c, vm.ram, vm.ledger, vm.core).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GuestImageError);
    expect((err as GuestImageError).code).toBe("IO");
    expect((err as GuestImageError).message).toContain("transferred");
    expect(vm.placed()).toEqual([]);
    expect(same(vm.ram.read(0x4000_0000, 32 * MiB), before)).toBe(true);
    // The reservation was released: the same range can be loaded again.
    await vm.place("again", pattern(16), { at: 0x4000_0000 });
  });

  it("a read of a transferred in-memory buffer is IO, not a short read (the journaled path)", async () => {
    const bytes = pattern(64);
    const f = bytesFile("gone", bytes);
    structuredClone(bytes.buffer, { transfer: [bytes.buffer] });
    const err = await f.read(new Uint8Array(16), 0).catch((e: unknown) => e);
    expect((err as GuestImageError).code).toBe("IO");
  });
});

/** A legacy uImage (U-Boot include/image.h): 64-byte big-endian header, then the data. */
function uImage(data: Uint8Array, dcrc = zlib.crc32(data)): Uint8Array {
  const b = new Uint8Array(64 + data.length);
  const dv = new DataView(b.buffer);
  dv.setUint32(0x00, 0x2705_1956, false); // ih_magic
  dv.setUint32(0x0c, data.length, false); // ih_size
  dv.setUint32(0x10, 0x4008_0000, false); // ih_load
  dv.setUint32(0x14, 0x4008_0000, false); // ih_ep
  dv.setUint32(0x18, dcrc, false); // ih_dcrc
  b[0x1c] = 5; // ih_os: IH_OS_LINUX
  b[0x1d] = 22; // ih_arch: IH_ARCH_ARM64
  b[0x1e] = 2; // ih_type: IH_TYPE_KERNEL
  b[0x1f] = 0; // ih_comp: IH_COMP_NONE
  dv.setUint32(0x04, zlib.crc32(b.subarray(0, 64)), false); // ih_hcrc over the header with ih_hcrc = 0
  b.set(data, 64);
  return b;
}

describe("in-memory files with a checksum: verified over the file's bytes before the first write", () => {
  const data = pattern(3 * MiB + 12, 5);

  it("a good uImage: no journal, the data lands", async () => {
    const vm = await dirtyVm(fromMap({ u: uImage(data) }));
    const isZero = vi.spyOn(vm.core, "isZero");
    const k = await vm.loadKernel("u");
    expect(k.paddr).toBe(0x4008_0000);
    expect(isZero).not.toHaveBeenCalled();
    expect(same(vm.ram.read(0x4008_0000, data.length), data)).toBe(true);
  });

  it("a wrong ih_dcrc: BAD_CHECKSUM before anything is written (no journal needed), RAM and ledger unchanged", async () => {
    const vm = await dirtyVm(fromMap({ u: uImage(data, zlib.crc32(data) ^ 1) }));
    const isZero = vi.spyOn(vm.core, "isZero");
    await expectRefused(vm, () => vm.loadKernel("u"), "BAD_CHECKSUM", "ih_dcrc");
    expect(isZero).not.toHaveBeenCalled(); // the journaled path tests every chunk of dirty RAM first
  });

  it("with a progress callback: copied with the journal, checked in RAM, rolled back on a wrong ih_dcrc", async () => {
    const vm = await dirtyVm(fromMap({ u: uImage(data, zlib.crc32(data) ^ 1) }));
    const isZero = vi.spyOn(vm.core, "isZero");
    let calls = 0;
    await expectRefused(vm, () => vm.loadKernel("u", { onProgress: () => calls++ }), "BAD_CHECKSUM", "ih_dcrc");
    expect(calls).toBe(1);
    expect(isZero).toHaveBeenCalled();
  });

  it("bytes in shared memory (another thread could change them between check and copy): checked in RAM", async () => {
    const u = uImage(data, zlib.crc32(data) ^ 1);
    const shared = new Uint8Array(new SharedArrayBuffer(u.length));
    shared.set(u);
    const vm = await dirtyVm(fromMap({ u: shared }));
    const isZero = vi.spyOn(vm.core, "isZero");
    await expectRefused(vm, () => vm.loadKernel("u"), "BAD_CHECKSUM", "ih_dcrc");
    expect(isZero).toHaveBeenCalled();
    shared.set(uImage(data));
    await vm.loadKernel("u");
    expect(same(vm.ram.read(0x4008_0000, data.length), data)).toBe(true);
  });

  it("a checked range that is not exactly one copy: copied with the journal and checked in RAM", async () => {
    const vm = await dirtyVm();
    const file = countingFile("two", data);
    const half = 0x10_0000;
    const plan = {
      ...planRaw(file, 0x4000_0000),
      copies: [{ dst: 0x4000_0000, src: 0, len: half }, { dst: 0x4000_0000 + half, src: half, len: data.length - half }],
      verify: [{ what: "data", field: "crc", paddr: 0x4000_0000, len: data.length, crc32: zlib.crc32(data) ^ 1 }],
    };
    const isZero = vi.spyOn(vm.core, "isZero");
    await expectRefused(vm, async () => execute(check(plan, vm.ram, vm.ledger, vm.core), vm.ram, vm.ledger, vm.core), "BAD_CHECKSUM", "crc");
    expect(isZero).toHaveBeenCalledTimes(2);
    expect(file.reads).toBe(2);
  });
});

// ---------------------------------------------------------------------------------------------
// Relocation tables applied where they lie in guest RAM.

const EM_X86_64 = 62, ET_DYN = 3, PT_DYNAMIC = 2, R_X86_64_RELATIVE = 8;
const DT_NULL = 0n, DT_RELA = 7n, DT_RELASZ = 8n, DT_RELAENT = 9n; // gABI "Dynamic Section"
const LINK = 0x1_0000n;
const B = 0x4020_0000; // load address: delta = B − LINK
const DELTA = BigInt(B) - LINK;

interface Rela {
  offset: bigint;
  addend: bigint;
}

/** The default entries: 64 RELATIVE sites, 8 bytes apart, in the second PT_LOAD. */
const sites = (n = 64): Rela[] => Array.from({ length: n }, (_, i) => ({ offset: LINK + 0x1000n + BigInt(8 * i), addend: LINK + BigInt(0x40 * i) }));

/**
 * An x86-64 PIE linked at LINK (ELF layout from the gABI; RELA entries r_offset, r_info, r_addend).
 * PT_LOAD 0 (0x1000 bytes): the RELA table at 0x100 and the dynamic array at 0xf00 ("start"), or
 * the dynamic array at 0 and the table ending the segment, which is last in the file ("end").
 * PT_LOAD 1 (0x1000 bytes): the sites. PT_DYNAMIC over the dynamic array.
 */
function pie(entries: Rela[], layout: "start" | "end" = "start"): { elf: Uint8Array; tableOff: number; table: Uint8Array } {
  const len = entries.length * 24;
  const seg0 = new Uint8Array(0x1000).fill(0x5a);
  const tableOff = layout === "start" ? 0x100 : 0x1000 - len;
  const dynOff = layout === "start" ? 0xf00 : 0;
  const dv = new DataView(seg0.buffer);
  entries.forEach((e, i) => {
    dv.setBigUint64(tableOff + i * 24, e.offset, true);
    dv.setBigUint64(tableOff + i * 24 + 8, BigInt(R_X86_64_RELATIVE), true);
    dv.setBigUint64(tableOff + i * 24 + 16, e.addend, true);
  });
  [[DT_RELA, LINK + BigInt(tableOff)], [DT_RELASZ, BigInt(len)], [DT_RELAENT, 24n], [DT_NULL, 0n]].forEach(([t, v], i) => {
    dv.setBigUint64(dynOff + i * 16, t, true);
    dv.setBigUint64(dynOff + i * 16 + 8, v, true);
  });
  const off0 = layout === "start" ? 0x1000n : 0x2000n;
  const elf = writeElf({
    class: 64, type: ET_DYN, machine: EM_X86_64, entry: LINK,
    segments: [
      { vaddr: LINK, paddr: LINK, data: seg0, offset: off0, flags: 4 },
      { vaddr: LINK + 0x1000n, paddr: LINK + 0x1000n, data: pattern(0x1000, 9), offset: layout === "start" ? 0x2000n : 0x1000n },
      { type: PT_DYNAMIC, vaddr: LINK + BigInt(dynOff), paddr: LINK + BigInt(dynOff), data: seg0.subarray(dynOff, dynOff + 64), offset: off0 + BigInt(dynOff), align: 8n },
    ],
  });
  return { elf, tableOff, table: seg0.slice(tableOff, tableOff + len) };
}

/** A file with no `bytes` (reads cannot be assumed to succeed: the journaled path). */
function plainFile(name: string, read: (dst: Uint8Array, position: number) => void, size: number): ImageFile {
  return { name, size, async read(dst, position) { read(dst, position); }, async close() {} };
}

const u64At = (vm: Vm, paddr: number) => new DataView(vm.ram.read(paddr, 8).buffer).getBigUint64(0, true);

/** Every site holds its addend + delta (x86-64 psABI: R_X86_64_RELATIVE = B + A). */
function expectPatched(vm: Vm, entries: Rela[]) {
  for (const e of entries) expect(u64At(vm, Number(e.offset + DELTA))).toBe(BigInt.asUintN(64, e.addend + DELTA));
}

describe("relocation tables inside the image: checked and applied where they land in guest RAM", () => {
  it("the plan holds no table bytes: the table lands with its segment's copy", async () => {
    const { elf, table } = pie(sites());
    const file = bytesFile("k", elf);
    const plan = await planElf(file, await readElf(file), { base: B });
    expect(plan.copies).toEqual([
      { dst: B, src: 0x1000, len: 0x1000 },
      { dst: B + 0x1000, src: 0x2000, len: 0x1000 },
    ]);
    const r = plan.relocs[0];
    expect(r.kind === "elf" && { table: r.table, imageOffset: r.imageOffset, src: r.src, len: r.len })
      .toEqual({ table: undefined, imageOffset: 0x100, src: 0x1100, len: table.length });
  });

  for (const source of ["in memory, fresh RAM", "in memory, dirty RAM", "journaled"] as const) {
    it(`${source}: one fused check-and-apply pass over the table in RAM; sites patched, table intact`, async () => {
      const entries = sites();
      const { elf, table } = pie(entries);
      const files: Source = source !== "journaled" ? fromMap({ k: elf }) : { open: async (n) => plainFile(n, (d, p) => d.set(elf.subarray(p, p + d.length)), elf.length) };
      const vm = source === "in memory, fresh RAM" ? await createVm({ ram: [{ base: 0x4000_0000, size: 32 * MiB }], files }) : await dirtyVm(files);
      const batches = vi.spyOn(vm.core, "forEachBatch");
      const check = vi.spyOn(vm.core, "elfRelocCheck");
      const apply = vi.spyOn(vm.core, "elfRelocApply");
      const fused = vi.spyOn(vm.core, "rela64leCheckApply");
      const k = await vm.loadKernel("k", { at: B });
      expect(batches).not.toHaveBeenCalled();
      const at = vm.ram.linear(B + 0x100, table.length);
      expect(fused.mock.calls.map((c) => [c[0], c[1]])).toEqual([[at, entries.length]]);
      expect(check).not.toHaveBeenCalled();
      expect(apply).not.toHaveBeenCalled();
      expect(k.arch.format === "elf" && k.arch.relocations).toBe(entries.length);
      expectPatched(vm, entries);
      expect(same(vm.ram.read(B + 0x100, table.length), table)).toBe(true);
      expect(same(vm.ram.read(B, 0x100), elf.subarray(0x1000, 0x1100))).toBe(true);
    });

    it(`${source}: a bad entry found in RAM rolls the load back (RAM and ledger as before)`, async () => {
      const entries = sites();
      entries[40] = { offset: LINK + 0x5000n, addend: 0n }; // past the image
      const { elf } = pie(entries);
      const files: Source = source !== "journaled" ? fromMap({ k: elf }) : { open: async (n) => plainFile(n, (d, p) => d.set(elf.subarray(p, p + d.length)), elf.length) };
      const vm = source === "in memory, fresh RAM" ? await createVm({ ram: [{ base: 0x4000_0000, size: 32 * MiB }], files }) : await dirtyVm(files);
      const err = await expectRefused(vm, () => vm.loadKernel("k", { at: B }), "RELOCATION");
      expect(err.message).toMatch(/entry 40: RELATIVE site 0x15000 is outside/);
      if (source === "in memory, fresh RAM") expect(vm.ram.read(0x4000_0000, 32 * MiB).every((x) => x === 0)).toBe(true);
    });
  }

  /**
   * A PIE with `n` RELATIVE entries (more than one of the core's 1024-entry blocks), the table in
   * PT_LOAD 0 and the sites in PT_LOAD 1, whose last 0x8000 bytes are BSS (zero-filled at load).
   */
  function bigPie(entries: Rela[]): Uint8Array {
    const len = entries.length * 24;
    const seg0 = new Uint8Array(Math.ceil((0x100 + len + 0x100) / 0x1000) * 0x1000).fill(0x5a);
    const dv = new DataView(seg0.buffer);
    entries.forEach((e, i) => {
      dv.setBigUint64(0x100 + i * 24, e.offset, true);
      dv.setBigUint64(0x100 + i * 24 + 8, BigInt(R_X86_64_RELATIVE), true);
      dv.setBigUint64(0x100 + i * 24 + 16, e.addend, true);
    });
    const dynOff = seg0.length - 0x80;
    [[DT_RELA, LINK + 0x100n], [DT_RELASZ, BigInt(len)], [DT_RELAENT, 24n], [DT_NULL, 0n]].forEach(([t, v], i) => {
      dv.setBigUint64(dynOff + i * 16, t, true);
      dv.setBigUint64(dynOff + i * 16 + 8, v, true);
    });
    const s1 = LINK + BigInt(seg0.length);
    return writeElf({
      class: 64, type: ET_DYN, machine: EM_X86_64, entry: LINK,
      segments: [
        { vaddr: LINK, paddr: LINK, data: seg0, offset: 0x1000n, flags: 4 },
        { vaddr: s1, paddr: s1, data: pattern(0x8000, 3), memsz: 0x10000n, offset: 0x1000n + BigInt(seg0.length) },
        { type: PT_DYNAMIC, vaddr: LINK + BigInt(dynOff), paddr: LINK + BigInt(dynOff), data: seg0.subarray(dynOff, dynOff + 64), offset: 0x1000n + BigInt(dynOff), align: 8n },
      ],
    });
  }
  // 3000 sites, 8 bytes apart from the start of PT_LOAD 1: the last ones lie in its BSS.
  const bigSites = (seg0: number): Rela[] => Array.from({ length: 3000 }, (_, i) => ({ offset: LINK + BigInt(seg0 + 8 * i * 2), addend: LINK + BigInt(i) }));
  const seg0Of = (n: number) => Math.ceil((0x100 + n * 24 + 0x100) / 0x1000) * 0x1000;

  for (const ram of ["fresh", "dirty"] as const) {
    it(`fused pass, ${ram} RAM: 3000 entries in three blocks, sites in the BSS too, all patched`, async () => {
      const entries = bigSites(seg0Of(3000));
      const files = fromMap({ k: bigPie(entries) });
      const vm = ram === "fresh" ? await createVm({ ram: [{ base: 0x4000_0000, size: 32 * MiB }], files }) : await dirtyVm(files);
      const fused = vi.spyOn(vm.core, "rela64leCheckApply");
      const k = await vm.loadKernel("k", { at: B });
      expect(fused).toHaveBeenCalledTimes(1);
      expect(k.arch.format === "elf" && k.arch.relocations).toBe(3000);
      expectPatched(vm, entries);
    });

    it(`fused pass, ${ram} RAM: a bad entry after two blocks were applied undoes them and the zero fill`, async () => {
      const entries = bigSites(seg0Of(3000));
      entries[2500] = { offset: LINK + 0x10_0000n, addend: 0n }; // past the image
      const files = fromMap({ k: bigPie(entries) });
      const vm = ram === "fresh" ? await createVm({ ram: [{ base: 0x4000_0000, size: 32 * MiB }], files }) : await dirtyVm(files);
      const fused = vi.spyOn(vm.core, "rela64leCheckApply");
      const err = await expectRefused(vm, () => vm.loadKernel("k", { at: B }), "RELOCATION");
      expect(fused).toHaveBeenCalledTimes(1);
      expect(fused.mock.results[0].value).toBe(2500);
      expect(err.message).toMatch(/entry 2500: RELATIVE site 0x110000 is outside/);
    });
  }

  it("a site inside the table itself: the table is copied out of RAM before any patch and applied from the copy", async () => {
    // Entry 0 patches entry 5's r_addend. Applied from the copy, entry 5 still uses its addend as
    // checked; applied in place it would read the patched one.
    const entries = sites();
    entries[0] = { offset: LINK + BigInt(0x100 + 5 * 24 + 16), addend: 0x1234n };
    const { elf } = pie(entries);
    const vm = await dirtyVm(fromMap({ k: elf }));
    const apply = vi.spyOn(vm.core, "elfRelocApply");
    await vm.loadKernel("k", { at: B });
    expect(apply.mock.calls.length).toBeGreaterThan(0);
    expect(apply.mock.calls.every(([ptr]) => ptr === vm.core.batch)).toBe(true);
    expect(u64At(vm, B + 0x100 + 5 * 24 + 16)).toBe(0x1234n + DELTA);
    expectPatched(vm, entries.slice(1));
  });

  it("a file that changes after planning: the table checked is the one that landed, and a bad one is refused", async () => {
    const entries = sites();
    const good = pie(entries);
    // The same file with every entry now naming a site 1 MiB below the image.
    const evil = pie(entries.map((e) => ({ ...e, offset: e.offset - 0x10_0000n }))).elf;
    let now = good.elf;
    const file = plainFile("k", (d, p) => d.set(now.subarray(p, p + d.length)), good.elf.length);
    const vm = await dirtyVm();
    const before = vm.ram.read(0x4000_0000, 32 * MiB);
    const plan = await planElf(file, await readElf(file), { base: B });
    const c = check(plan, vm.ram, vm.ledger, vm.core);
    now = evil;
    const err = await execute(c, vm.ram, vm.ledger, vm.core).catch((e) => e);
    expect(err).toBeInstanceOf(GuestImageError);
    expect(err.code).toBe("RELOCATION");
    expect(same(vm.ram.read(0x4000_0000, 32 * MiB), before)).toBe(true);
    expect(vm.placed()).toEqual([]);
  });

  it("a dry run checks the table as read from the file, and writes nothing", async () => {
    const entries = sites();
    const vm = await dirtyVm(fromMap({ k: pie(entries).elf, bad: pie(entries.map((e, i) => (i === 7 ? { ...e, offset: 0n } : e))).elf }));
    const before = vm.ram.read(0x4000_0000, 32 * MiB);
    const k = await vm.loadKernel("k", { at: B, dryRun: true });
    expect(k.arch.format === "elf" && k.arch.relocations).toBe(entries.length);
    const err = await vm.loadKernel("bad", { at: B, dryRun: true }).catch((e) => e);
    expect(err.code).toBe("RELOCATION");
    expect(err.message).toContain("entry 7");
    expect(same(vm.ram.read(0x4000_0000, 32 * MiB), before)).toBe(true);
  });

  it("a read failing after the table's neighbours were copied: RAM and ledger as before", async () => {
    const { elf } = pie(sites());
    let reads = 0;
    const vm = await dirtyVm({ open: async (n) => plainFile(n, (d, p) => {
      if (d.length === 0x1000 && ++reads === 2) throw new Error("disk gone");
      d.set(elf.subarray(p, p + d.length));
    }, elf.length) });
    await expectRefused(vm, () => vm.loadKernel("k", { at: B }), "IO");
  });

  it("a transaction undoes the table it wrote (dirty RAM restored byte for byte)", async () => {
    const { elf } = pie(sites());
    const vm = await dirtyVm(fromMap({ k: elf }));
    const before = vm.ram.read(0x4000_0000, 32 * MiB);
    await vm.transaction(async (tx) => {
      await tx.loadKernel("k", { at: B });
      throw new Error("next step failed");
    }).catch(() => undefined);
    expect(vm.placed()).toEqual([]);
    expect(same(vm.ram.read(0x4000_0000, 32 * MiB), before)).toBe(true);
  });

  it("without its relocations the plan still places every file byte; the relocation step alone then works on the image in RAM", async () => {
    const entries = sites();
    const { elf } = pie(entries);
    const file = bytesFile("k", elf);
    const plan = await planElf(file, await readElf(file), { base: B });
    const vm = await dirtyVm();
    await execute(check({ ...plan, relocs: [] }, vm.ram, vm.ledger, vm.core), vm.ram, vm.ledger, vm.core);
    expect(same(vm.ram.read(B, 0x1000), elf.subarray(0x1000, 0x2000))).toBe(true);
    expect(same(vm.ram.read(B + 0x1000, 0x1000), elf.subarray(0x2000, 0x3000))).toBe(true);
    // The relocation step alone, on the image already in RAM (as bench/ times it).
    const fused = vi.spyOn(vm.core, "rela64leCheckApply");
    const l = new Ledger();
    await execute(check({ ...plan, copies: [], zeros: [] }, vm.ram, l, vm.core), vm.ram, l, vm.core);
    expect(fused.mock.calls.map((c) => c[0])).toEqual([vm.ram.linear(B + 0x100, 24)]);
    expectPatched(vm, entries);
  });

  it("a zero fill over the table: refused before anything is written", async () => {
    const { elf } = pie(sites());
    const file = bytesFile("k", elf);
    const plan = await planElf(file, await readElf(file), { base: B });
    const vm = await dirtyVm();
    const over = { ...plan, zeros: [...plan.zeros, { dst: B + 0x100, len: 24 }] };
    await expectRefused(vm, async () => execute(check(over, vm.ram, vm.ledger, vm.core), vm.ram, vm.ledger, vm.core), "UNSUPPORTED");
  });

  it("a copy whose bytes are not its length is refused before anything is written", async () => {
    const { elf } = pie(sites());
    const file = bytesFile("k", elf);
    const plan = await planElf(file, await readElf(file), { base: B });
    const vm = await dirtyVm();
    const bad = { ...plan, copies: [...plan.copies, { dst: B, src: 0x1000, len: 0x10, bytes: new Uint8Array(0x11) }] };
    await expectRefused(vm, async () => execute(check(bad, vm.ram, vm.ledger, vm.core), vm.ram, vm.ledger, vm.core), "UNSUPPORTED");
  });

  it("gzip'd, with the table as the last bytes: a payload that decompresses differently at load time is still CRC-checked", async () => {
    // Stored deflate blocks (level 0), so a payload of the same length compresses to the same length.
    const { elf } = pie(sites(), "end");
    const member = (payload: Uint8Array) => gzipMember(payload, { deflate: new Uint8Array(zlib.deflateRawSync(payload, { level: 0 })), crc32: zlib.crc32(elf) });
    const good = member(elf);
    const changed = elf.slice();
    changed[0x1800] ^= 0xff; // in the sites' segment, read at load time
    const evil = member(changed);
    expect(evil.length).toBe(good.length);
    // The file changes between planning and the load: its second pass over the deflate data sees the new bytes.
    let passes = 0;
    const file = plainFile("k.gz", (d, p) => {
      if (p === 10) passes++; // the deflate data starts after the 10-byte header
      const now = passes >= 2 ? evil : good;
      d.set(now.subarray(p, p + d.length));
    }, good.length);
    const vm = await dirtyVm({ open: async () => file });
    await expectRefused(vm, () => vm.loadKernel("k.gz", { at: B }), "BAD_CHECKSUM");
    expect(passes).toBe(2);
  });

  it("gzip'd, with the table as the last bytes: the member is still verified (a bad CRC32 refused, nothing changed)", async () => {
    const entries = sites();
    const { elf, tableOff, table } = pie(entries, "end");
    expect(0x2000 + tableOff + table.length).toBe(elf.length); // the table ends the file
    const bad = gzipMember(elf, { crc32: zlib.crc32(elf) ^ 1 });
    const vm = await dirtyVm(fromMap({ "k.gz": bad, "ok.gz": gzipMember(elf) }));
    await expectRefused(vm, () => vm.loadKernel("k.gz", { at: B }), "BAD_CHECKSUM");
    const fused = vi.spyOn(vm.core, "rela64leCheckApply");
    await vm.loadKernel("ok.gz", { at: B });
    expect(fused.mock.calls[0][0]).toBe(vm.ram.linear(B + tableOff, table.length));
    expectPatched(vm, entries);
  });
});
