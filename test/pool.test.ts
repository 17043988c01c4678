/**
 * Load pools of Node worker threads (dist/, as a user gets it: `npm test` builds first): many VMs
 * loaded side by side into one shared WebAssembly.Memory, each byte-identical to bootLinux on the
 * main thread (the reference); a failing job leaves its slot untouched and the others load.
 */
import { describe, expect, it } from "vitest";
import { readFixture } from "./qemu/fixtures.js";

const MiB = 0x100000;
const RAM = [{ base: 0x4000_0000, size: 64 * MiB }];
const lib = () => import("../dist/node.js") as Promise<typeof import("../src/node.js")>;

describe("load pool (Node worker_threads)", { timeout: 120_000 }, () => {
  it("2 workers, 4 VMs from a prepared boot and 2 by bootLinux, in one shared memory: each is bootLinux's RAM", async () => {
    const g = await lib();
    const files = g.shareFiles({ k: readFixture("arm64/Image.gz"), i: readFixture("initrd/initrd.cpio.gz") });
    const opts = { arch: "arm64" as const, kernel: "k", initrd: "i", cmdline: "console=ttyAMA0" };
    const t = await g.prepareBoot({ ...opts, files: g.fromMap(files), ram: RAM });
    const data = t.toData(true);
    const { memory, slots } = g.poolSlots(7, RAM);
    expect(Object.prototype.toString.call(memory.buffer)).toBe("[object SharedArrayBuffer]");
    const pool = g.createNodeLoadPool(2);
    try {
      const jobs = slots.map((s, n) =>
        n < 4 ? pool.run({ memory, ...s, ram: RAM, template: data, seed: n })
          : n < 6 ? pool.run({ memory, ...s, ram: RAM, boot: { ...opts, seed: n }, files })
            : pool.run({ memory, ...s, ram: RAM, boot: { ...opts, kernel: "missing" }, files }).catch((e) => e),
      );
      const results = await Promise.all(jobs);
      const err = results[6] as InstanceType<typeof g.GuestImageError>;
      expect(err).toBeInstanceOf(g.GuestImageError);
      expect(err.code).toBe("NOT_FOUND");
      for (let n = 0; n < 6; n++) {
        const ref = await g.createVm({ ram: RAM, files: g.fromMap(files) });
        const rb = await g.bootLinux(ref, { ...opts, seed: n });
        const r = results[n] as Awaited<ReturnType<typeof pool.run>>;
        expect(r.placed).toEqual(ref.placed());
        expect(r.boot.cpu).toEqual(rb.cpu);
        const mine = new Uint8Array(memory.buffer, slots[n].memoryOffset, RAM[0].size);
        const theirs = ref.ram.read(RAM[0].base, RAM[0].size);
        expect(Buffer.compare(Buffer.from(mine), Buffer.from(theirs)), `VM ${n}`).toBe(0);
      }
      // The failed job's slot: untouched (all zero).
      expect(new Uint8Array(memory.buffer, slots[6].memoryOffset, RAM[0].size).every((b) => b === 0)).toBe(true);
    } finally {
      await pool.close();
    }
  });
});
