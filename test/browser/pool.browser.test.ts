// A load pool of Web Workers (createWebLoadPool) in Chromium: two module workers load four VMs
// side by side into one shared WebAssembly.Memory — two instances of a prepared boot, two
// bootLinux jobs — and each VM's RAM equals the page's own bootLinux with the same seed (the
// reference). The page is cross-origin isolated (vitest.config.ts), which shared memory needs.
import { describe, expect, it } from "vitest";
import { bootLinux, createVm, createWebLoadPool, fromMap, poolSlots, prepareBoot, shareFiles } from "../../src/index.js";

const MiB = 0x100000;
const RAM = [{ base: 0x4000_0000, size: 32 * MiB }];
const get = async (name: string) => new Uint8Array(await (await fetch(`/gi/norange/${name}`)).arrayBuffer());

describe("load pool (Web Workers)", () => {
  it("2 workers, 4 VMs in one shared memory, each the page's bootLinux bytes", async () => {
    expect(crossOriginIsolated).toBe(true);
    const files = shareFiles({ k: await get("linux"), i: await get("rootfs.cpio.gz") });
    const opts = { arch: "arm64" as const, kernel: "k", initrd: "i", cmdline: "console=ttyAMA0" };
    const t = await prepareBoot({ ...opts, files: fromMap(files), ram: RAM });
    const { memory, slots } = poolSlots(4, RAM);
    const pool = createWebLoadPool(2, new URL("../../src/pool/web-worker.ts", import.meta.url));
    try {
      const results = await Promise.all(slots.map((s, n) =>
        n < 2 ? pool.run({ memory, ...s, ram: RAM, template: t.toData(true), seed: n }) : pool.run({ memory, ...s, ram: RAM, boot: { ...opts, seed: n }, files })));
      for (let n = 0; n < 4; n++) {
        const ref = await createVm({ ram: RAM, files: fromMap(files) });
        const rb = await bootLinux(ref, { ...opts, seed: n });
        expect(results[n].placed).toEqual(ref.placed());
        expect(results[n].boot.cpu).toEqual(rb.cpu);
        const mine = new Uint8Array(memory.buffer, slots[n].memoryOffset, RAM[0].size);
        const theirs = ref.ram.view(RAM[0].base, RAM[0].size);
        let same = mine.length === theirs.length;
        for (let i = 0; same && i < mine.length; i++) same = mine[i] === theirs[i];
        expect(same, `VM ${n}`).toBe(true);
      }
    } finally {
      await pool.close();
    }
  });
});
