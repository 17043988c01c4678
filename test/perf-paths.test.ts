// The fast paths of execute(): when each is taken, and that the invariants hold on both sides of
// it — every check before the first write, and a failed load leaving guest RAM and the ledger
// exactly as they were.
import { readFileSync } from "node:fs";
import zlib, { gunzipSync } from "node:zlib";
import { afterEach, describe, expect, it, vi } from "vitest";
import { Core } from "../src/core/core.js";
import { planRaw } from "../src/formats/raw.js";
import { createVm, fromCpio, fromMap, GuestImageError, parseCpio } from "../src/node.js";
import { check, execute, READ_CHUNK } from "../src/plan.js";
import { bytesFile, type ImageFile, type Source } from "../src/sources/source.js";
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
    const err = await vm.transaction(async () => {
      await vm.loadModule("img", { at: 0x4010_0000 });
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
