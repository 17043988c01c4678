// v86 in headless Chromium boots Debian's 686 kernel and a busybox initrd that guest-image/v86
// streams with fromUrl from the test server (helpers/v86-server.ts) straight into v86's own
// guest RAM, then enters by the 32-bit boot protocol without a BIOS. The guest's /init prints the
// marker (it exists only inside the initrd) and the command line the kernel found. Then the same
// boot with v86 and the loader running in a Web Worker (fixtures/v86-worker.ts).
import { describe, expect, it } from "vitest";
import { V86 } from "v86";
import v86WasmUrl from "v86/build/v86.wasm?url";
import { bootV86 } from "../../src/adapters/v86.js";
import { fromUrl } from "../../src/index.js";
import { V86_BROWSER_MARKER } from "./cases/v86.marker.js";

describe("v86 in Chromium boots what guest-image/v86 places from URLs", () => {
  it("Debian 686 bzImage + marker initrd via fromUrl reach userspace", { timeout: 330_000 }, async () => {
    const emulator = new V86({ wasm_path: v86WasmUrl, memory_size: 128 * 1024 * 1024, vga_memory_size: 8 * 1024 * 1024, autostart: false, disable_keyboard: true, disable_mouse: true, disable_speaker: true } as ConstructorParameters<typeof V86>[0]);
    try {
      let out = "";
      const seen = new Promise<void>((resolve) => {
        emulator.add_listener("serial0-output-byte", (b: number) => {
          out += String.fromCharCode(b);
          if (out.includes(V86_BROWSER_MARKER)) resolve();
        });
      });
      await new Promise<void>((resolve) => emulator.add_listener("emulator-loaded", () => resolve()));
      const cmdline = "console=ttyS0 quiet v86browser=1";
      const boot = await bootV86(emulator, { files: fromUrl(new URL("/v86f/", location.origin).href), kernel: "bzImage", initrd: "initrd.cpio", cmdline });
      expect(boot.protocol).toBe("linux");
      expect(boot.placed.map((p) => p.name)).toEqual(expect.arrayContaining(["bzImage", "cmdline", "initrd.cpio", "zero-page"]));
      await emulator.run();
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([seen, new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`no marker within 280 s; COM1 tail: ${JSON.stringify(out.slice(-600))}`)), 280_000)))]);
      clearTimeout(timer);
      expect(out).toContain(`CMDLINE=${cmdline}`);
    } finally {
      await emulator.destroy();
    }
  });

  it("the same boot with v86 and guest-image/v86 in a Web Worker", { timeout: 330_000 }, async () => {
    const w = new Worker(new URL("./fixtures/v86-worker.ts", import.meta.url), { type: "module" });
    let out = "";
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const cmdline = "console=ttyS0 quiet v86worker=1";
      let placed: string[] = [];
      await new Promise<void>((resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`no marker from the worker within 280 s; COM1 tail: ${JSON.stringify(out.slice(-600))}`)), 280_000);
        w.onerror = (e) => reject(new Error(`worker error: ${e.message}`));
        w.onmessage = (e) => {
          if (e.data.error) reject(new Error(e.data.error));
          if (e.data.placed) placed = e.data.placed;
          if (e.data.serial) out += e.data.serial;
          if (out.includes(V86_BROWSER_MARKER)) resolve();
        };
        w.postMessage({ base: new URL("/v86f/", location.origin).href, cmdline, memorySize: 128 * 1024 * 1024 });
      });
      expect(placed).toEqual(expect.arrayContaining(["bzImage", "initrd.cpio", "zero-page"]));
      expect(out).toContain(`CMDLINE=${cmdline}`);
    } finally {
      clearTimeout(timer);
      w.terminate();
    }
  });
});
