// Fault injection: every load of every format is repeated with a source that fails at each of its
// reads in turn — header reads while planning, each 8 MiB chunk while copying, each compressed
// chunk while decompressing — in four ways: it throws (a foreign Error → IO), it ends early
// (TRUNCATED), or it writes half of what it was asked for into guest RAM first and then does one
// of those. Every time, the load must fail with that GuestImageError and leave guest RAM byte for
// byte and the ledger entry for entry as before; afterwards a clean load of the same image into
// the same VM must still work. A directory source whose file is cut short on disk in the middle
// of a load is tried the same way.
import { mkdtempSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createVm, fromDirectory, GuestImageError, vm_load_guest_kernel, vm_load_guest_module, type ImageFile, type Source, type Vm } from "../../src/node.js";
import * as b from "../../fuzz/builders.mjs";

const MiB = 1 << 20;
const RAM = [
  { base: 0, size: 32 * MiB },
  { base: 0x40000000, size: 32 * MiB },
];
type Mode = "throw" | "truncated" | "half-throw" | "half-truncated";
const MODES: Mode[] = ["throw", "truncated", "half-throw", "half-truncated"];

/** A source over one file; read number `failAt` fails as `mode` says (counting every read). */
function faulty(name: string, bytes: Uint8Array, failAt: number, mode: Mode, log?: Array<[number, number]>): Source {
  return {
    async open(n) {
      if (n !== name) throw new GuestImageError("NOT_FOUND", `no ${n}`, { image: n });
      let reads = 0;
      const f: ImageFile = {
        name,
        size: bytes.length,
        async read(dst, pos) {
          const i = reads++;
          log?.push([pos, dst.length]);
          await new Promise((r) => setImmediate(r));
          if (pos < 0 || pos + dst.length > bytes.length) throw new GuestImageError("TRUNCATED", "read past the end", { image: name });
          if (i === failAt) {
            if (mode.startsWith("half")) dst.set(bytes.subarray(pos, pos + (dst.length >> 1)));
            if (mode.endsWith("throw")) throw new Error(`injected failure at read ${i}`);
            throw new GuestImageError("TRUNCATED", `injected: the source ended at read ${i}`, { image: name });
          }
          dst.set(bytes.subarray(pos, pos + dst.length));
        },
        async close() {},
      };
      return f;
    },
  };
}

type Api = "kernel" | "kernel-sel4" | "module" | "module-sel4";
interface Case {
  name: string;
  bytes: () => Uint8Array;
  api: Api;
  at?: number;
}

async function load(vm: Vm, c: Case): Promise<{ paddr: number; size: number }> {
  if (c.api === "kernel") return vm.loadKernel(c.name, { at: c.at });
  if (c.api === "module") return vm.loadModule(c.name, { at: c.at! });
  if (c.api === "kernel-sel4") {
    const g = await vm_load_guest_kernel(vm, c.name, c.at ?? 0, 0);
    return { paddr: g.kernel_image.load_paddr, size: g.kernel_image.size };
  }
  const g = await vm_load_guest_module(vm, c.name, c.at!, 0);
  return { paddr: g.load_paddr, size: g.size };
}

/** A VM whose RAM holds stale bytes (so a rollback must restore, not just zero) and one image. */
async function freshVm(source: Source): Promise<Vm> {
  const vm = await createVm({ ram: RAM, files: source });
  for (const r of RAM) vm.ram.write(r.base + r.size / 4, new Uint8Array(r.size / 2).fill(0x77));
  await vm.place("resident", new Uint8Array(0x1000).fill(0xa5), { at: 0x41f00000 });
  return vm;
}
const ramBytes = (vm: Vm) => Buffer.from(vm.memory.buffer, 0, vm.ram.linEnd);

// Images larger than the 8 MiB copy chunk, or (compressed ones) several times the 256 KiB chunk in
// which compressed input is read, so a load makes several reads of each kind.
const big = (n: number, seed: number) => b.filler(n, seed);
const CASES: Case[] = [
  { name: "raw.bin", bytes: () => big(20 * MiB, 1), api: "kernel", at: 0x40000000 },
  { name: "raw.bin", bytes: () => big(20 * MiB, 1), api: "module-sel4", at: 0x40100000 },
  { name: "vmlinux", bytes: () => b.elf({ class: 64, machine: b.EM.aarch64, relocs: 16, segments: [{ vaddr: 0x40000000n, paddr: 0x40000000n, data: big(9 * MiB, 2) }, { vaddr: 0x40a00000n, paddr: 0x40a00000n, data: big(9 * MiB, 3), memsz: 10n * BigInt(MiB) }] }).bytes, api: "kernel-sel4", at: 0x40200000 },
  { name: "Image", bytes: () => b.arm64Image({ len: 18 * MiB, image_size: 24n * BigInt(MiB) }).bytes, api: "kernel", at: 0x40000000 },
  { name: "Image.gz", bytes: () => b.gzip(b.arm64Image({ len: 2 * MiB }).bytes, { level: 1 }).bytes, api: "kernel", at: 0x40000000 },
  { name: "zboot.efi", bytes: () => b.zboot(b.gzip(b.arm64Image({ len: 2 * MiB }).bytes, { level: 1 }).bytes).bytes, api: "kernel-sel4", at: 0x40000000 },
  { name: "uImage", bytes: () => b.uImage(big(17 * MiB, 4), { load: 0x40000000 }).bytes, api: "kernel" },
  { name: "uImage.gz", bytes: () => b.uImage(b.gzip(big(2 * MiB, 5), { level: 1 }).bytes, { type: b.IH.KERNEL_NOLOAD, comp: b.IH.COMP_GZIP, load: 0 }).bytes, api: "kernel", at: 0x40000000 },
  { name: "uInitrd", bytes: () => b.uImage(big(9 * MiB, 6), { type: b.IH.RAMDISK, load: 0 }).bytes, api: "module", at: 0x40000000 },
  { name: "bzImage", bytes: () => b.bzImage({ kernelLen: 10 * MiB, init_size: 12 * MiB, pref_address: 0x1000000n }).bytes, api: "kernel" },
  { name: "zImage", bytes: () => b.zImage({ len: 10 * MiB }).bytes, api: "kernel", at: 0x40008000 },
  { name: "multiboot", bytes: () => b.multibootAout({ len: 10 * MiB }).bytes, api: "kernel" },
  { name: "riscv", bytes: () => b.riscvImage({ len: 9 * MiB, text_offset: 0n }).bytes, api: "kernel-sel4", at: 0x40000000 },
  { name: "linux.dtb", bytes: () => b.fdt(b.sampleTree()).bytes, api: "module", at: 0x40000000 },
  { name: "initrd.gz", bytes: () => b.gzip(big(2 * MiB, 7), { level: 1 }).bytes, api: "module", at: 0x40000000 },
];

describe("fault injection at every read of a load", () => {
  for (const c of CASES) {
    it(`${c.name} (${c.api}): fails cleanly at each read, then loads`, async () => {
      const bytes = c.bytes();
      // A clean load first, counting its reads.
      const log: Array<[number, number]> = [];
      const clean = await freshVm(faulty(c.name, bytes, -1, "throw", log));
      const want = await load(clean, c);
      const reads = log.length;
      expect(reads, "the load should need several reads").toBeGreaterThan(1);
      let failures = 0;
      for (let k = 0; k < reads; k++) {
        for (const mode of MODES) {
          const vm = await freshVm(faulty(c.name, bytes, k, mode));
          const before = Buffer.from(ramBytes(vm));
          const placed = vm.placed();
          let err: unknown;
          try {
            await load(vm, c);
          } catch (e) {
            err = e;
          }
          const where = `read ${k} of ${reads} (${log[k][1]} bytes at ${log[k][0]}), ${mode}`;
          expect(err, `${where}: the load should fail`).toBeInstanceOf(GuestImageError);
          expect((err as GuestImageError).code, `${where}: ${(err as Error).message}`).toBe(mode.endsWith("throw") ? "IO" : "TRUNCATED");
          expect(ramBytes(vm).equals(before), `${where}: guest RAM changed`).toBe(true);
          expect(vm.placed(), where).toEqual(placed);
          failures++;
          // The VM is still usable: the same image loads cleanly afterwards.
          if (k === reads - 1 && mode === "half-throw") {
            const again = await load(await freshVm(faulty(c.name, bytes, -1, "throw")), c);
            expect(again).toMatchObject({ paddr: want.paddr, size: want.size });
          }
        }
      }
      expect(failures).toBe(reads * MODES.length);
    }, 120_000);
  }

  it("a file cut short on disk in the middle of a load (fromDirectory)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "guest-image-faults-"));
    const bytes = big(20 * MiB, 9);
    for (const cut of [0, 4096, 8 * MiB - 1, 8 * MiB, 12 * MiB, 20 * MiB - 1]) {
      writeFileSync(join(dir, "k.bin"), bytes);
      const src = fromDirectory(dir);
      // Truncate the file once the load has opened it and read its head.
      const cutting: Source = {
        async open(n) {
          const f = await src.open(n);
          let reads = 0;
          return {
            name: f.name, size: f.size, close: () => f.close(),
            async read(dst, pos) {
              if (reads++ === 1) truncateSync(join(dir, "k.bin"), cut);
              return f.read(dst, pos);
            },
          };
        },
      };
      const vm = await freshVm(cutting);
      const before = Buffer.from(ramBytes(vm));
      const err = await vm.loadKernel("k.bin", { at: 0x40000000 }).then(() => undefined, (e) => e);
      expect(err, `cut at ${cut}`).toBeInstanceOf(GuestImageError);
      expect((err as GuestImageError).code).toBe("TRUNCATED");
      expect(ramBytes(vm).equals(before), `cut at ${cut}: guest RAM changed`).toBe(true);
      expect(vm.placed().map((p) => p.name)).toEqual(["resident"]);
    }
  });
});
