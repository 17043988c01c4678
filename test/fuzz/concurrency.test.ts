// Concurrency: loads started at once into one VM, from sources whose reads resolve on later turns
// of the event loop (timers of random length), so their planning, checking and copying
// interleave. Issue #6: when two targets overlap, exactly one load succeeds, the other fails with
// OVERLAP, and guest RAM holds only the winner — byte for byte what the winner alone would have
// left. Loads that do not overlap must not disturb each other, whichever of them fails, also
// inside a VM transaction (bootLinux is one).
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { bootLinux, createVm, fromMap, GuestImageError, type ImageFile, type Source, type Vm } from "../../src/node.js";
import * as b from "../../fuzz/builders.mjs";

const MiB = 1 << 20;
const RAM = [
  { base: 0, size: 4 * MiB },
  { base: 0x40000000, size: 16 * MiB },
];
const RUNS = Number(process.env.PROPERTY_RUNS ?? 60);
const SEED = Number(process.env.PROPERTY_SEED ?? 7077);

/**
 * A source whose reads wait before they land: `delays` (ms) is used in turn by every read, or per
 * file when it is a record. `fail` makes read number `read` of file `name` write half its bytes and
 * then throw, like a disk that goes away.
 */
function delayed(files: Record<string, Uint8Array>, delays: number[] | Record<string, number[]>, fail?: { name: string; read: number }): Source {
  let k = 0;
  const perFile: Record<string, number> = {};
  const wait = (name: string) => {
    if (Array.isArray(delays)) return delays.length ? delays[k++ % delays.length] : 0;
    const d = delays[name] ?? [0];
    const i = (perFile[name] = (perFile[name] ?? -1) + 1);
    return d[Math.min(i, d.length - 1)];
  };
  return {
    async open(name) {
      const key = name.replace(/^\.\//, "");
      const bytes = files[key];
      if (!bytes) throw new GuestImageError("NOT_FOUND", `no ${name}`, { image: name });
      let reads = 0;
      const f: ImageFile = {
        name,
        size: bytes.length,
        async read(dst, pos) {
          const i = reads++;
          await new Promise((r) => setTimeout(r, wait(key)));
          if (pos < 0 || pos + dst.length > bytes.length) throw new GuestImageError("TRUNCATED", "past the end", { image: name });
          if (fail && fail.name === key && i === fail.read) {
            dst.set(bytes.subarray(pos, pos + (dst.length >> 1)));
            throw new Error("the disk went away");
          }
          dst.set(bytes.subarray(pos, pos + dst.length));
        },
        async close() {},
      };
      return f;
    },
  };
}

async function vmWith(source: Source): Promise<Vm> {
  const vm = await createVm({ ram: RAM, files: source });
  for (const r of RAM) vm.ram.write(r.base, new Uint8Array(r.size / 2).fill(0x3c));
  return vm;
}
const ramOf = (vm: Vm) => Buffer.concat(RAM.map((r) => Buffer.from(vm.ram.read(r.base, r.size))));

type Load = { kind: "kernel" | "module"; name: string; at?: number };
const run = (vm: Vm, l: Load) => (l.kind === "kernel" ? vm.loadKernel(l.name, { at: l.at }) : vm.loadModule(l.name, { at: l.at ?? 0x40000000 }));

/** Images that each land at a known address given `at`, all big enough to need several reads. */
function images(): Record<string, { bytes: Uint8Array; load: (at: number) => Load }> {
  const raw = b.filler(3 * MiB, 21);
  const arm = b.arm64Image({ len: 0x180000, image_size: 0x200000n });
  const elf = b.elf({ class: 64, machine: b.EM.aarch64, segments: [{ vaddr: 0x40000000n, paddr: 0x40000000n, data: b.filler(0x80000, 22), memsz: 0x100000n }] });
  const gzK = b.gzip(b.arm64Image({ len: 0x100000 }).bytes);
  const gzM = b.gzip(b.filler(0x100000, 23));
  const uimg = b.uImage(b.filler(0x120000, 24), { type: b.IH.KERNEL_NOLOAD, load: 0, ep: 0 });
  return {
    "raw.bin": { bytes: raw, load: (at) => ({ kind: "kernel", name: "raw.bin", at }) },
    "mod.bin": { bytes: raw.slice(0, 2 * MiB), load: (at) => ({ kind: "module", name: "mod.bin", at }) },
    "Image": { bytes: arm.bytes, load: (at) => ({ kind: "kernel", name: "Image", at }) },
    "vmlinux": { bytes: elf.bytes, load: (at) => ({ kind: "kernel", name: "vmlinux", at }) },
    "Image.gz": { bytes: gzK.bytes, load: (at) => ({ kind: "kernel", name: "Image.gz", at }) },
    "initrd.gz": { bytes: gzM.bytes, load: (at) => ({ kind: "module", name: "initrd.gz", at }) },
    "uImage": { bytes: uimg.bytes, load: (at) => ({ kind: "kernel", name: "uImage", at }) },
  };
}

describe("two loads at once into one VM", () => {
  const all = images();
  const files = Object.fromEntries(Object.entries(all).map(([k, v]) => [k, v.bytes]));
  const names = Object.keys(all);

  it("overlapping targets: exactly one succeeds, the other fails with OVERLAP, RAM holds only the winner", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...names), fc.constantFrom(...names),
        fc.constantFrom(0x40000000, 0x40200000), fc.integer({ min: 0, max: 0x40 }).map((n) => n * 0x1000),
        fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 12 }),
        async (na, nb, base, offset, delays) => {
          // Both land at or near base (arm64 Images round up to 2 MiB), so their ranges overlap.
          const la = all[na].load(base);
          const lb = all[nb].load(base + (all[nb].load(0).kind === "kernel" && nb !== "raw.bin" && nb !== "uImage" ? 0 : offset));
          const vm = await vmWith(delayed(files, delays));
          const before = vm.placed();
          const [ra, rb] = await Promise.allSettled([run(vm, la), run(vm, lb)]);
          const won = [ra, rb].filter((r) => r.status === "fulfilled");
          const lost = [ra, rb].filter((r) => r.status === "rejected") as PromiseRejectedResult[];
          expect(won).toHaveLength(1);
          expect(lost[0].reason).toBeInstanceOf(GuestImageError);
          expect((lost[0].reason as GuestImageError).code, (lost[0].reason as Error).message).toBe("OVERLAP");
          // The winner alone, in a fresh VM, leaves exactly this RAM.
          const winner = ra.status === "fulfilled" ? la : lb;
          const solo = await vmWith(fromMap(files));
          await run(solo, winner);
          expect(ramOf(vm).equals(ramOf(solo)), "RAM is what the winner alone leaves").toBe(true);
          expect(vm.placed()).toEqual(solo.placed());
          expect(vm.placed().length).toBe(before.length + 1);
        },
      ),
      { numRuns: RUNS, seed: SEED },
    );
  }, 120_000);

  it("disjoint targets: both succeed, each as if alone; a failing one leaves the other intact", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom("raw.bin", "mod.bin", "Image.gz", "initrd.gz", "uImage"), fc.constantFrom("raw.bin", "mod.bin", "initrd.gz"),
        fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 8 }), fc.integer({ min: -1, max: 3 }),
        async (na, nb, delays, failRead) => {
          fc.pre(na !== nb);
          const la = all[na].load(0x40000000);
          const lb = all[nb].load(0x40c00000);
          const fail = failRead >= 0 ? { name: nb, read: failRead } : undefined;
          const vm = await vmWith(delayed(files, delays, fail));
          const [ra, rb] = await Promise.allSettled([run(vm, la), run(vm, lb)]);
          expect(ra.status, ra.status === "rejected" ? String(ra.reason) : "").toBe("fulfilled");
          const solo = await vmWith(fromMap(files));
          await run(solo, la);
          if (rb.status === "fulfilled") await run(solo, lb);
          else expect((rb.reason as GuestImageError).code).toBe("IO");
          expect(ramOf(vm).equals(ramOf(solo)), "RAM holds exactly the loads that succeeded").toBe(true);
          expect(vm.placed()).toEqual(solo.placed());
        },
      ),
      { numRuns: RUNS, seed: SEED },
    );
  }, 120_000);
});

describe("loads running while a VM transaction runs", () => {
  const a = b.filler(2 * MiB, 31);
  const c = b.filler(2 * MiB, 32);

  it("inside one transaction, a load that fails does not undo a concurrent load that succeeded", async () => {
    // a.bin starts copying first; its copy (read 1, after the head read 0) fails 30 ms later, when
    // c.bin has long been copied and committed.
    const vm = await vmWith(delayed({ "a.bin": a, "c.bin": c }, { "a.bin": [0, 30], "c.bin": [2] }, { name: "a.bin", read: 1 }));
    await vm.transaction(async (tx) => {
      const [ra, rc] = await Promise.allSettled([tx.loadModule("a.bin", { at: 0x40000000 }), tx.loadModule("c.bin", { at: 0x40400000 })]);
      expect(ra.status).toBe("rejected");
      expect(rc.status).toBe("fulfilled");
    });
    const solo = await vmWith(fromMap({ "c.bin": c }));
    await solo.loadModule("c.bin", { at: 0x40400000 });
    expect(vm.placed()).toEqual(solo.placed());
    expect(ramOf(vm).equals(ramOf(solo)), "c.bin's bytes are still in RAM").toBe(true);
  });

  it("a load started outside a failing bootLinux keeps its bytes and its ledger entry", async () => {
    // The boot places its kernel, then fails: the initrd's disk goes away while it is copied (its
    // read 1; read 0 is the size probe). other.bin, loaded at the same time by someone else into a
    // range the boot does not touch, succeeds meanwhile.
    const kernel = b.arm64Image({ len: 0x10000, image_size: 0x20000n }).bytes;
    const files = { Image: kernel, "initrd.img": b.filler(4 * MiB, 33), "other.bin": c };
    const vm = await vmWith(delayed(files, { Image: [2], "initrd.img": [2, 40], "other.bin": [5] }, { name: "initrd.img", read: 1 }));
    const [boot, other] = await Promise.allSettled([
      bootLinux(vm, { arch: "arm64", kernel: "Image", initrd: "initrd.img" }),
      vm.loadModule("other.bin", { at: 0x40e00000 }),
    ]);
    expect(boot.status).toBe("rejected");
    expect((boot as PromiseRejectedResult).reason.code).toBe("IO");
    expect(other.status, other.status === "rejected" ? String(other.reason) : "").toBe("fulfilled");
    const solo = await vmWith(fromMap(files));
    await solo.loadModule("other.bin", { at: 0x40e00000 });
    expect(vm.placed()).toEqual(solo.placed());
    expect(ramOf(vm).equals(ramOf(solo)), "other.bin's bytes are still in RAM").toBe(true);
  });
});
