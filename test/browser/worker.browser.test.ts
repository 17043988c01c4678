// Emulator-owned shared memory: the page (the "emulator") owns a shared WebAssembly.Memory and
// hands it to a Web Worker, which loads the samples into guest RAM at an offset in it. The page
// sees every byte without any copy back, also after the memory grew on either side, and the
// guest RAM digest equals Node's for the same load. The test page is cross-origin isolated
// (COOP/COEP headers set in vitest.config.ts), which shared memory needs.
import { describe, expect, it } from "vitest";
import { commands } from "vitest/browser";
import { createVm, fromUrl, SCRATCH_BYTES } from "../../src/index.js";
import { SCENARIOS } from "./cases/scenario.js";
import { expectBytes, sha256 } from "./cases/url.cases.js";
import type { Step } from "./fixtures/load-worker.js";

const PAGE = 65536;
const OFFSET = 16 * PAGE; // the emulator's own state lives below guest RAM

function worker() {
  const w = new Worker(new URL("./fixtures/load-worker.ts", import.meta.url), { type: "module" });
  const step = (s: Step) =>
    new Promise<{ ok: boolean; error?: string; placed: Array<{ name: string; paddr: number; size: number }>; bytes: number }>((ok, fail) => {
      w.onmessage = (e) => ok(e.data);
      w.onerror = (e) => fail(new Error(e.message));
      w.postMessage(s);
    });
  return { step, terminate: () => w.terminate() };
}

describe("a load in a Web Worker into shared memory", () => {
  it("runs cross-origin isolated (else SharedArrayBuffer is not available)", () => {
    expect(crossOriginIsolated).toBe(true);
  });

  it("is visible to the main thread, across memory.grow on both sides, with Node's digest", async () => {
    const { ram } = SCENARIOS.samples;
    const memory = new WebAssembly.Memory({ initial: OFFSET / PAGE + ram.size / PAGE, maximum: 8192, shared: true });
    expect(Object.prototype.toString.call(memory.buffer)).toBe("[object SharedArrayBuffer]");
    const w = worker();
    try {
      const created = await w.step({ op: "create", memory, memoryOffset: OFFSET, ram, base: new URL("/gi/range/", location.href).href });
      expect(created).toMatchObject({ ok: true, placed: [] });
      // The worker grew the memory for its scratch area; the page sees the new size.
      const grown = OFFSET + ram.size + Math.ceil(SCRATCH_BYTES / PAGE) * PAGE;
      expect(created.bytes).toBe(grown);
      expect(memory.buffer.byteLength).toBe(grown);

      expect(await w.step({ op: "kernel", name: "linux" })).toMatchObject({ ok: true });
      memory.grow(4); // the emulator grows its memory between loads
      for (const m of SCENARIOS.samples.modules) expect(await w.step({ op: "module", ...m })).toMatchObject({ ok: true });

      const ramView = () => new Uint8Array(memory.buffer, OFFSET, ram.size);
      const dtb = new Uint8Array(await (await fetch("/gi/norange/linux.dtb")).arrayBuffer());
      expectBytes(ramView().subarray(0x4f00_0000 - ram.base, 0x4f00_0000 - ram.base + dtb.length), dtb);
      expect(new Uint8Array(memory.buffer, 0, OFFSET).every((b) => b === 0)).toBe(true); // emulator state untouched

      const node = await commands.nodeLoad("samples");
      expect(await sha256(ramView())).toBe(node.sha256);
    } finally {
      w.terminate();
    }
  });

  it("createVm on the main thread with a shared memory: loads, then keeps working after grow", async () => {
    const pages = 36 + Math.ceil(SCRATCH_BYTES / PAGE); // RAM, then the scratch area at page 36
    const memory = new WebAssembly.Memory({ initial: pages, maximum: 100, shared: true });
    const vm = await createVm({ ram: [{ base: 0x1000, size: 2 << 20 }], memory, memoryOffset: PAGE, scratchOffset: 36 * PAGE, files: fromUrl("/gi/range/") });
    await vm.loadModule("linux.dtb", { at: 0x2000 });
    const before = memory.buffer;
    memory.grow(10);
    expect(before.byteLength).toBe(pages * PAGE); // a SharedArrayBuffer is never detached, it just keeps its old length
    await vm.loadModule("rootfs.cpio.gz", { at: 0x10_0000 });
    const gz = new Uint8Array(await (await fetch("/gi/norange/rootfs.cpio.gz")).arrayBuffer());
    expectBytes(vm.ram.read(0x10_0000, gz.length), gz);
    expectBytes(new Uint8Array(memory.buffer, PAGE + 0x10_0000 - 0x1000, gz.length), gz);
  });
});
