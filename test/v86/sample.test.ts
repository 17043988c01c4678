// The bundled x86 sample (examples/images/hello-x86.mb, hand-encoded by examples/make-samples.mjs
// so the samples need no assembler) boots in v86 through guest-image/v86 and prints its greeting
// and the command line it found through the Multiboot info structure. The demo page's Boot
// button boots the same file.
import { readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { bootV86 } from "../../src/adapters/v86.js";
import { fromMap } from "../../src/index.js";
import { V86 } from "v86";
import { createEmulator, V86_WASM, type TestEmulator } from "./emulator.js";

const sample = new URL("../../examples/images/hello-x86.mb", import.meta.url);
let emu: TestEmulator | undefined;
afterEach(async () => {
  await emu?.destroy();
  emu = undefined;
});

describe("the bundled x86 sample kernel in v86", () => {
  it("prints the greeting and the command line it was given over COM1", async () => {
    emu = await createEmulator({ memorySize: 16 * 1024 * 1024 });
    const cmdline = "sample cmdline 42";
    const boot = await bootV86(emu.emulator, { files: fromMap({ "hello-x86.mb": new Uint8Array(readFileSync(sample)) }), kernel: "hello-x86.mb", cmdline });
    expect(boot.protocol).toBe("multiboot");
    emu.run();
    const text = await emu.waitFor(`Command line: ${cmdline}\r\n`, 20_000);
    expect(text).toBe(`Hello from the guest-image x86 sample kernel, booted in v86!\r\nCommand line: ${cmdline}\r\n`);
  });

  it("bootV86 called right after new V86(…) waits for v86 to load, then boots", async () => {
    const emulator = new V86({ wasm_path: V86_WASM, memory_size: 16 * 1024 * 1024, autostart: false, disable_keyboard: true, disable_mouse: true, disable_speaker: true } as ConstructorParameters<typeof V86>[0]);
    try {
      let out = "";
      const done = new Promise<void>((resolve) =>
        emulator.add_listener("serial0-output-byte", (b: number) => {
          out += String.fromCharCode(b);
          if (out.endsWith("x\r\n")) resolve();
        }),
      );
      expect((emulator as unknown as { v86?: unknown }).v86).toBeUndefined(); // v86's Wasm is not compiled yet
      const boot = await bootV86(emulator, { files: fromMap({ k: new Uint8Array(readFileSync(sample)) }), kernel: "k", cmdline: "x" });
      expect(boot.protocol).toBe("multiboot");
      void emulator.run();
      await done;
      expect(out).toBe("Hello from the guest-image x86 sample kernel, booted in v86!\r\nCommand line: x\r\n");
    } finally {
      await emulator.destroy();
    }
  });
});
