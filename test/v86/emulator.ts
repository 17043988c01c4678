/**
 * v86 in Node for the tests and the bench: an emulator created the way the adapter needs it
 * (autostart: false, no BIOS), its COM1 output collected from the `serial0-output-byte` event,
 * and a wait for a line on it with a deadline that names what was seen.
 */
import { createRequire } from "node:module";
import { V86 } from "v86";

const require = createRequire(import.meta.url);
/** v86's Wasm build as shipped in the npm package. */
export const V86_WASM = require.resolve("v86/build/v86.wasm");

export interface TestEmulator {
  emulator: V86;
  /** Everything the guest wrote to COM1 so far, as Latin-1 text. */
  serial(): string;
  /** Milliseconds from run() to the first COM1 byte (NaN before run or before the first byte). */
  firstByteMs(): number;
  /**
   * Instructions v86 executed from run() to the first COM1 byte (NaN before it), from v86's
   * own counter (emulator.get_instruction_counter(), a u32 that wraps: sampled every 50 ms and
   * summed modulo 2^32, far more often than it can wrap).
   */
  instructionsToFirstByte(): number;
  /** Resolves with the serial text once `text` appears in it; rejects after `ms` with the tail seen. */
  waitFor(text: string, ms: number): Promise<string>;
  run(): void;
  destroy(): Promise<void>;
}

export interface EmulatorOptions {
  memorySize?: number;
  autostart?: boolean;
  /** Extra V86 constructor options (bios, bzimage, initrd, cmdline for the SeaBIOS comparison). */
  extra?: Record<string, unknown>;
}

/** A v86 emulator that has fired "emulator-ready" (created, not running unless autostart). */
export async function createEmulator(opts: EmulatorOptions = {}): Promise<TestEmulator> {
  const emulator = new V86({
    wasm_path: V86_WASM,
    memory_size: opts.memorySize ?? 64 * 1024 * 1024,
    vga_memory_size: 8 * 1024 * 1024,
    autostart: opts.autostart ?? false,
    disable_keyboard: true,
    disable_mouse: true,
    disable_speaker: true,
    ...opts.extra,
  } as ConstructorParameters<typeof V86>[0]);
  let out = "";
  let t0 = NaN;
  let first = NaN;
  let instructions = 0;
  let lastCounter = 0;
  let firstInstructions = NaN;
  let sampler: ReturnType<typeof setInterval> | undefined;
  const count = () => {
    const n = emulator.get_instruction_counter();
    instructions += (n - lastCounter) >>> 0;
    lastCounter = n;
    return instructions;
  };
  const waiters = new Set<() => void>();
  emulator.add_listener("serial0-output-byte", (b: number) => {
    if (out.length === 0) {
      first = performance.now();
      if (sampler !== undefined) firstInstructions = count();
    }
    out += String.fromCharCode(b);
    for (const w of waiters) w();
  });
  await new Promise<void>((resolve) => emulator.add_listener("emulator-loaded", () => resolve()));
  if (opts.autostart) t0 = performance.now();
  return {
    emulator,
    serial: () => out,
    firstByteMs: () => first - t0,
    instructionsToFirstByte: () => firstInstructions,
    waitFor(text, ms) {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (!out.includes(text)) return false;
          done();
          resolve(out);
          return true;
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`no ${JSON.stringify(text)} on v86's COM1 within ${ms} ms; last output: ${JSON.stringify(out.slice(-600))}`));
        }, ms);
        const done = () => {
          clearTimeout(timer);
          waiters.delete(w);
        };
        const w = () => void check();
        waiters.add(w);
        check();
      });
    },
    run() {
      t0 = performance.now();
      lastCounter = emulator.get_instruction_counter();
      sampler = setInterval(count, 50);
      void emulator.run();
    },
    async destroy() {
      if (sampler !== undefined) clearInterval(sampler);
      await emulator.destroy();
    },
  };
}
