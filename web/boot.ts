// "Boot in v86": boots the chosen kernel (x86 bzImage, Multiboot or Multiboot 2), initrd and command line in
// v86 (npm "v86") right on the page, through guest-image/v86: the images are streamed from their
// File or URL straight into v86's own guest RAM and the CPU is started in the protocol's entry
// state, no BIOS. The guest's COM1 is shown live in an xterm.js terminal (which handles \r\n and
// ANSI colours) and keys typed there go back to COM1, so a booted shell is usable.
import { Terminal } from "@xterm/xterm";
import "@xterm/xterm/css/xterm.css";
import { V86 } from "v86";
import v86WasmUrl from "v86/build/v86.wasm?url";
import { GuestImageError, type Source } from "guest-image";
import { bootV86, type V86Boot } from "guest-image/v86";
import { openRef, type ImageRef } from "./load.js";

/** v86's guest RAM on the page: enough for Debian's 686 kernel with a busybox initrd. */
export const BOOT_RAM = 128 * 1024 * 1024;

export interface BootRequest {
  kernel: ImageRef;
  initrd?: ImageRef;
  cmdline: string;
  /** bzImage: direct boot (host decompression, the kernel's own 32-bit entry). */
  direct?: boolean;
}

export interface BootCallbacks {
  /** Placing progress (bytes copied into guest RAM). */
  onProgress(done: number, total: number): void;
  /** The images are placed and the CPU is about to run. */
  onPlaced(boot: V86Boot): void;
  /** The first byte from the guest, ms after the click. */
  onFirstByte(ms: number): void;
  /** Bytes received so far (for the status line). */
  onBytes(count: number): void;
}

let current: { emulator: V86; term: Terminal; resize?: () => void } | null = null;
let serialText = "";

/** Everything the guest has written to COM1 in the current boot (the e2e test reads it). */
export function serialOutput(): string {
  return serialText;
}

/** Stops and frees the running guest, if any. */
export async function stopBoot(): Promise<void> {
  const c = current;
  current = null;
  if (!c) return;
  c.term.dispose();
  await c.emulator.destroy();
}

/**
 * Creates a v86 emulator, places the images with guest-image/v86 and runs it, with COM1 shown in
 * a terminal inside `termEl`. Resolves once the guest runs; throws a GuestImageError (or what v86
 * throws) when placing fails, with nothing left running.
 */
export async function bootInV86(req: BootRequest, termEl: HTMLElement, t0: number, cb: BootCallbacks): Promise<V86Boot> {
  await stopBoot();
  serialText = "";
  termEl.replaceChildren();
  const term = new Terminal({ convertEol: false, cols: 100, rows: 26, scrollback: 5000, fontSize: 13, cursorBlink: false, theme: { background: "#0b1020" } });
  term.open(termEl);
  const emulator = new V86({
    wasm_path: v86WasmUrl,
    memory_size: BOOT_RAM,
    vga_memory_size: 8 * 1024 * 1024,
    autostart: false,
    disable_keyboard: true,
    disable_mouse: true,
    disable_speaker: true,
  } as ConstructorParameters<typeof V86>[0]);
  current = { emulator, term };

  // Batch the guest's bytes into one terminal write per frame: the page stays responsive even when
  // the kernel prints thousands of lines.
  let pending: number[] = [];
  let scheduled = false;
  let count = 0;
  const flush = () => {
    scheduled = false;
    if (current?.term !== term) return;
    term.write(new Uint8Array(pending));
    pending = [];
    cb.onBytes(count);
  };
  emulator.add_listener("serial0-output-byte", (b: number) => {
    if (count++ === 0) cb.onFirstByte(performance.now() - t0);
    pending.push(b);
    serialText += String.fromCharCode(b);
    if (!scheduled) {
      scheduled = true;
      requestAnimationFrame(flush);
    }
  });
  term.onData((data) => emulator.serial0_send(data));

  try {
    await new Promise<void>((resolve) => emulator.add_listener("emulator-loaded", () => resolve()));
    const refs = [req.kernel, ...(req.initrd ? [req.initrd] : [])];
    const files: Source = {
      async open(name) {
        const ref = refs.find((r) => r.name === name);
        if (!ref) throw new GuestImageError("NOT_FOUND", `no image named "${name}" in this boot`, { image: name });
        return openRef(ref);
      },
    };
    const boot = await bootV86(emulator, { files, kernel: req.kernel.name, initrd: req.initrd?.name, cmdline: req.cmdline, direct: req.direct, onProgress: cb.onProgress });
    cb.onPlaced(boot);
    await emulator.run();
    return boot;
  } catch (e) {
    await stopBoot();
    throw e;
  }
}
