// Guest RAM: several regions at arbitrary guest physical bases with holes, mapped into one
// WebAssembly.Memory (ours or the caller's, at an offset), views that survive memory.grow.
import { describe, expect, it } from "vitest";
import { createVm, fromMap, GuestImageError, SCRATCH_BYTES } from "../src/index.js";

const MiB = 1024 * 1024;

describe("guest RAM regions", () => {
  it("maps regions back to back in linear memory in the order given", async () => {
    const vm = await createVm({ ram: [{ base: 0x8000_0000, size: 2 * MiB }, { base: 0x1000, size: MiB }] });
    vm.ram.write(0x8000_0000, new Uint8Array([1, 2, 3]));
    vm.ram.write(0x1000, new Uint8Array([9]));
    const lin = new Uint8Array(vm.memory.buffer);
    expect([...lin.subarray(0, 3)]).toEqual([1, 2, 3]); // first region at linear 0
    expect(lin[2 * MiB]).toBe(9); // second region right after the first
    expect(vm.ram.size).toBe(3 * MiB);
  });

  it("accepts guest physical addresses far above 4 GiB, exactly", async () => {
    const base = 2 ** 52 + 0x1000; // not representable in 32 bits, exact as a double
    const vm = await createVm({ ram: [{ base, size: MiB }] });
    vm.ram.write(base + MiB - 4, new Uint8Array([0xde, 0xad, 0xbe, 0xef]));
    expect([...vm.ram.read(base + MiB - 4, 4)]).toEqual([0xde, 0xad, 0xbe, 0xef]);
    expect(() => vm.ram.read(base + MiB - 2, 4)).toThrow(GuestImageError);
  });

  it("refuses reads and writes that touch a hole, writing nothing", async () => {
    const vm = await createVm({ ram: [{ base: 0, size: 0x1000 }, { base: 0x2000, size: 0x1000 }] });
    const err = (() => { try { vm.ram.write(0xff0, new Uint8Array(0x20).fill(7)); } catch (e) { return e; } })();
    expect(err).toBeInstanceOf(GuestImageError);
    expect((err as GuestImageError).code).toBe("OUT_OF_RAM");
    expect((err as GuestImageError).message).toContain("0x1000");
    expect(vm.ram.read(0xff0, 0x10).every((b) => b === 0)).toBe(true);
  });

  it("reads and writes across adjacent regions; view() stays within one region", async () => {
    const vm = await createVm({ ram: [{ base: 0x1000, size: 0x1000 }, { base: 0x2000, size: 0x1000 }] });
    const data = new Uint8Array(0x20).map((_, i) => i + 1);
    vm.ram.write(0x1ff0, data);
    expect([...vm.ram.read(0x1ff0, 0x20)]).toEqual([...data]);
    expect(vm.ram.view(0x1ff0, 0x10)[0]).toBe(1);
    expect(() => vm.ram.view(0x1ff0, 0x20)).toThrow(/more than one RAM region/);
  });

  it("view() is zero-copy: writes through it are guest RAM", async () => {
    const vm = await createVm({ ram: [{ base: 0x4000_0000, size: MiB }] });
    vm.ram.view(0x4000_0100, 4).set([5, 6, 7, 8]);
    expect([...vm.ram.read(0x4000_0100, 4)]).toEqual([5, 6, 7, 8]);
  });

  it("rejects overlapping, empty and non-integer regions", async () => {
    await expect(createVm({ ram: [{ base: 0, size: 0x2000 }, { base: 0x1000, size: 0x1000 }] })).rejects.toMatchObject({ code: "BAD_ARGUMENT" });
    await expect(createVm({ ram: [{ base: 0, size: 0 }] })).rejects.toMatchObject({ code: "BAD_ARGUMENT" });
    await expect(createVm({ ram: [{ base: 0.5, size: 0x1000 }] })).rejects.toMatchObject({ code: "BAD_ARGUMENT" });
    await expect(createVm({ ram: [] })).rejects.toMatchObject({ code: "BAD_ARGUMENT" });
    await expect(createVm({ ram: [{ base: 0, size: 2 ** 32 }] })).rejects.toMatchObject({ code: "TOO_LARGE" });
  });
});

describe("caller-owned memory (an emulator's)", () => {
  it("places guest RAM at memoryOffset and keeps the loader's scratch out of it", async () => {
    const memory = new WebAssembly.Memory({ initial: 32 });
    const before = memory.buffer.byteLength;
    const vm = await createVm({
      ram: [{ base: 0x8000_0000, size: MiB }],
      memory,
      memoryOffset: 0x10_0000,
      files: fromMap({ k: new Uint8Array([0xaa, 0xbb]) }),
    });
    // Default: the memory grew by the scratch pages and guest RAM was left alone.
    expect(memory.buffer.byteLength).toBe(before + Math.ceil(SCRATCH_BYTES / 65536) * 65536);
    await vm.loadModule("k", { at: 0x8000_0010 });
    const lin = new Uint8Array(memory.buffer);
    expect([lin[0x10_0010], lin[0x10_0011]]).toEqual([0xaa, 0xbb]);
    expect(lin.subarray(0, 0x10_0000).every((b) => b === 0)).toBe(true);
  });

  it("uses a caller-given scratchOffset and refuses one inside guest RAM", async () => {
    const memory = new WebAssembly.Memory({ initial: 32 });
    const size = memory.buffer.byteLength;
    await createVm({ ram: [{ base: 0, size: MiB }], memory, scratchOffset: MiB });
    expect(memory.buffer.byteLength).toBe(size); // not grown
    await expect(createVm({ ram: [{ base: 0, size: MiB }], memory, scratchOffset: 0x1000 })).rejects.toMatchObject({ code: "BAD_ARGUMENT" });
  });

  it("keeps working after the emulator grows the memory (views are re-derived)", async () => {
    const memory = new WebAssembly.Memory({ initial: 20 });
    const vm = await createVm({ ram: [{ base: 0x1000, size: MiB }], memory, files: fromMap({ a: new Uint8Array([1, 2, 3]) }) });
    const old = memory.buffer;
    memory.grow(3);
    expect(old.byteLength).toBe(0); // detached
    await vm.loadModule("a", { at: 0x2000 });
    expect([...vm.ram.read(0x2000, 3)]).toEqual([1, 2, 3]);
  });

  it("refuses guest RAM that does not fit in the given memory", async () => {
    const memory = new WebAssembly.Memory({ initial: 1 });
    await expect(createVm({ ram: [{ base: 0, size: MiB }], memory })).rejects.toMatchObject({ code: "BAD_ARGUMENT" });
  });
});

describe("rollback on a VM whose memory the library made", () => {
  // A source that serves header reads (detection reads the first 8 KiB) but whose read of the
  // whole file writes half of it into guest RAM and then fails, like a disk error mid-read.
  const failing = (size: number) => ({
    async open(name: string) {
      return {
        name, size,
        async read(dst: Uint8Array) {
          if (dst.length < size) return;
          dst.fill(0x77, 0, dst.length >> 1);
          throw new Error("disk error");
        },
        async close() {},
      };
    },
  });

  it("restores bytes written through vm.memory (the fast path that skips the zero test must not apply)", async () => {
    const vm = await createVm({ ram: [{ base: 0, size: MiB }], files: failing(0x3000) });
    new Uint8Array(vm.memory.buffer, 0x2000, 0x3000).fill(0x5a); // an emulator writing guest RAM
    await expect(vm.loadModule("m", { at: 0x2000 })).rejects.toMatchObject({ code: "IO" });
    expect(vm.ram.read(0x2000, 0x3000).every((b) => b === 0x5a)).toBe(true);
  });

  it("restores bytes written through view() and write()", async () => {
    for (const how of ["view", "write"] as const) {
      const vm = await createVm({ ram: [{ base: 0, size: MiB }], files: failing(0x3000) });
      if (how === "view") vm.ram.view(0x2000, 0x3000).fill(0x5b);
      else vm.ram.write(0x2000, new Uint8Array(0x3000).fill(0x5b));
      await expect(vm.loadModule("m", { at: 0x2000 })).rejects.toMatchObject({ code: "IO" });
      expect(vm.ram.read(0x2000, 0x3000).every((b) => b === 0x5b), how).toBe(true);
    }
  });

  it("zeroes again what a failed load wrote into fresh RAM", async () => {
    const vm = await createVm({ ram: [{ base: 0, size: MiB }], files: failing(0x3000) });
    await expect(vm.loadModule("m", { at: 0x2000 })).rejects.toMatchObject({ code: "IO" });
    expect(vm.ram.read(0, MiB).every((b) => b === 0)).toBe(true);
  });
});
