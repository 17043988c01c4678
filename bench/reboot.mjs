// Case 10 (reboot): the three figures of issue 15, each beside its baseline in the same run.
//   12a  vm.reset() of a booted Debian arm64 VM vs C memcpy of the same bytes (bench/c/load.c, mem, warm)
//   12b  VMs/s from one prepared boot vs bootLinux from scratch: Debian arm64 Image.gz + initrd,
//        and the Debian amd64 bzImage (xz inside; direct boot when the library has x86Direct)
//   12c  VMs/s loaded by a pool of 1 and 2 Node workers into one shared memory, vs the main
//        thread alone, for prepared instances and for bootLinux from scratch
// Inputs: the fixture cache (scripts/fetch-fixtures.sh) plus a generated 16 MiB initrd; nothing
// is downloaded.
import { existsSync, readFileSync } from "node:fs";
import { serialize } from "node:v8";
import { homedir } from "node:os";
import { join } from "node:path";
import { MiB, fillRandom } from "./lib/gen.mjs";
import { now } from "./lib/stats.mjs";

const FIXTURES = process.env.GUEST_IMAGE_FIXTURES ?? join(homedir(), ".cache", "guest-image-fixtures");
const A64 = [{ base: 0x4000_0000, size: 128 * MiB }];
const X86 = [{ base: 0, size: 0x9fc00 }, { base: 0x100000, size: 127 * MiB }];

function fixture(rel) {
  const p = join(FIXTURES, rel);
  if (!existsSync(p)) throw new Error(`case 12 (reboot): fixture ${p} is missing (bash scripts/fetch-fixtures.sh)`);
  return new Uint8Array(readFileSync(p));
}

export async function rebootCase({ lib, node, C, runs, input, interleave, cTime, row, notes, quick }) {
  const initrd = new Uint8Array(16 * MiB);
  fillRandom(initrd, 7);
  const files = lib.fromMap({ k: fixture("arm64/Image.gz"), i: initrd, bz: fixture("amd64/bzImage") });
  const arm = { arch: "arm64", kernel: "k", initrd: "i", cmdline: "console=ttyAMA0" };

  // ---- 12a. reset vs C memcpy of the same bytes -----------------------------------------------
  {
    const vm = await lib.createVm({ ram: A64, files, resettable: true });
    await lib.bootLinux(vm, arm);
    const kept = vm.keptImages();
    const bytes = kept.reduce((n, i) => n + i.size, 0);
    // The C side copies the same images from one buffer holding them back to back, to the same offsets.
    const src = new Uint8Array(bytes);
    let o = 0;
    const ops = kept.map((i) => {
      src.set(i.bytes, o);
      const op = `c:${i.paddr - A64[0].base}:${o}:${i.size}`;
      o += i.size;
      return op;
    });
    const path = input(`reset-images-${bytes}.bin`, () => src);
    const s = await interleave(runs, [
      // The C program times its copy right after an untimed one (bench/c/load.c's warm-up
      // iteration: source and destination as warm as they get); ours gets the same untimed reset first.
      { name: "ours", before: () => vm.reset({ seed: 1 }), run: () => vm.reset({ seed: 1 }) },
      { name: "c", run: cTime(C.load, [path, "mem", "warm", 1, 0, A64[0].size, ...ops]) },
    ]);
    row({ id: "12a", name: `vm.reset(): Debian arm64 VM, ${kept.length} images, ${(bytes / MiB).toFixed(1)} MiB`, kind: "throughput", bytes, ours: s.ours, base: s.c, baseName: "C memcpy", target: 0.9 });
  }

  // ---- 12b. prepared instances vs bootLinux from scratch ----------------------------------------
  const shared = (() => {
    const pages = Math.ceil((128 * MiB + lib.SCRATCH_BYTES) / 65536);
    const memory = new WebAssembly.Memory({ initial: pages });
    new Uint8Array(memory.buffer).fill(1);
    return { memory, scratchOffset: pages * 65536 - lib.SCRATCH_BYTES };
  })();
  const vmIn = (ram) => {
    new Uint8Array(shared.memory.buffer, 0, 128 * MiB).fill(0);
    return lib.createVm({ ram, memory: shared.memory, scratchOffset: shared.scratchOffset, files });
  };
  const x86 = { arch: "x86_64", kernel: "bz", initrd: "i", cmdline: "console=ttyS0", x86Direct: true };
  for (const [label, ram, opts] of [["Debian arm64 Image.gz + 16 MiB initrd", A64, arm], ["Debian amd64 bzImage (xz) + 16 MiB initrd", X86, x86]]) {
    let t;
    try {
      t = await lib.prepareBoot({ ...opts, files, ram });
    } catch (e) {
      notes.push(`12b ${label}: ${e.message}`);
      continue;
    }
    const direct = opts.x86Direct && t.images.some((i) => i.format === "vmlinux (direct)");
    let vm;
    const s = await interleave(runs, [
      { name: "ours", before: async () => (vm = await vmIn(ram)), run: () => t.instantiate(vm) },
      { name: "base", before: async () => (vm = await vmIn(ram)), run: () => lib.bootLinux(vm, opts) },
    ]);
    const name = opts.arch === "x86_64" ? `${label}${direct ? ", direct boot" : ", boot protocol (no x86Direct in this build)"}` : label;
    row({ id: "12b", name: `VMs/s, prepared instance: ${name}`, kind: "rate", unit: "VMs/s", ours: s.ours, base: s.base, baseName: "bootLinux from scratch" });
    // Template memory: its image bytes plus everything else it holds (boot record, device tree,
    // ledger, digests) as V8 serializes it; beside the bytes it places.
    const data = t.toData();
    const rest = serialize({ ...data, images: data.images.map(({ bytes: _b, ...i }) => i) }).length;
    const placed = t.images.reduce((n, i) => n + i.size, 0);
    row({ id: "12b", name: `  template memory − placed bytes (${((t.bytes + rest) / MiB).toFixed(2)} − ${(placed / MiB).toFixed(2)} MiB): ${label}`, kind: "value", unit: "MiB", ours: [(t.bytes + rest - placed) / MiB], limit: 1 });
  }

  // ---- 12c. worker pools -----------------------------------------------------------------------
  {
    const count = quick ? 4 : 8;
    const shareable = node.shareFiles({ k: fixture("arm64/Image.gz"), i: initrd });
    const t = await lib.prepareBoot({ ...arm, files, ram: A64 });
    const data = t.toData(true);
    const { memory, slots } = node.poolSlots(count, A64);
    const jobs = {
      prepared: (s) => ({ memory, ...s, ram: A64, template: data }),
      bootLinux: (s) => ({ memory, ...s, ram: A64, boot: arm, files: shareable }),
    };
    for (const [kind, job] of Object.entries(jobs)) {
      const pools = { 1: node.createNodeLoadPool(1), 2: node.createNodeLoadPool(2) };
      try {
        const s = await interleave(runs, [
          { name: "main", run: async () => { for (const sl of slots) await node.runLoadJob(job(sl)); } },
          { name: "w1", run: () => Promise.all(slots.map((sl) => pools[1].run(job(sl)))) },
          { name: "w2", run: () => Promise.all(slots.map((sl) => pools[2].run(job(sl)))) },
        ]);
        const per = (xs) => xs.map((ms) => ms / count);
        row({ id: "12c", name: `${count} VMs, ${kind}, 1 worker`, kind: "rate", unit: "VMs/s", ours: per(s.w1), base: per(s.main), baseName: "main thread alone" });
        row({ id: "12c", name: `${count} VMs, ${kind}, 2 workers`, kind: "rate", unit: "VMs/s", ours: per(s.w2), base: per(s.main), baseName: "main thread alone" });
      } finally {
        await pools[1].close();
        await pools[2].close();
      }
    }
  }
}
