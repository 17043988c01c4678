// What every real-boot harness does with an emulator process (qemu-boot.ts for arm64, arm and
// riscv64; x86-qemu.ts for x86; the v86 tests take the slot too): hold one of the machine-wide
// slots, start QEMU so that it dies with the test, keep its serial console in a file, and wait for
// the marker line.
//
// The serial console goes to a file, not a pipe: QEMU drops serial bytes when a pipe stays full
// (serial_xmit gives up after its retries), and a pipe fills whenever this process is busy
// elsewhere (another test decompressing a kernel on the main thread) — the marker line among the
// lost bytes. A file never pushes back.
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync, rmSync, unlinkSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

// ── at most two emulators at a time, across vitest workers (a 2-core machine) ──

const SLOTS = 2;
/** Runs `fn` holding one of the machine-wide emulator slots (every real-boot harness uses these). */
export async function withSlot<T>(fn: () => Promise<T>): Promise<T> {
  for (;;) {
    for (let i = 0; i < SLOTS; i++) {
      const path = join(tmpdir(), `guest-image-realboot-slot-${i}.lock`);
      try {
        const fd = openSync(path, "wx");
        writeSync(fd, String(process.pid));
        closeSync(fd);
        try {
          return await fn();
        } finally {
          rmSync(path, { force: true });
        }
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
        // A lock left by a process that no longer exists is stale.
        const owner = Number(readFileSync(path, "utf8") || "0");
        let alive = owner > 0;
        try {
          if (alive) process.kill(owner, 0);
        } catch {
          alive = false;
        }
        if (!alive) {
          try {
            unlinkSync(path);
          } catch {
            /* someone else took it over */
          }
        }
      }
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

const HAVE_SETPRIV = existsSync("/usr/bin/setpriv");
/** Spawns `exe` so that it is killed if the test process dies (setpriv --pdeathsig): no QEMU left running. */
export function spawnKillable(exe: string, args: string[]): ChildProcess {
  return HAVE_SETPRIV
    ? spawn("/usr/bin/setpriv", ["--pdeathsig", "KILL", "--", exe, ...args], { stdio: ["ignore", "pipe", "pipe"] })
    : spawn(exe, args, { stdio: ["ignore", "pipe", "pipe"] });
}

/** The marker as a whole line of serial output. */
export function hasMarker(serial: string, marker: string): boolean {
  return serial.includes(`${marker}\n`) || serial.includes(`${marker}\r\n`);
}

export interface Qemu {
  /** The full command line, for failure messages. */
  command: string;
  /** The serial console so far. */
  serial(): string;
  /** QEMU's own messages (stderr, and stdout when the console is in a file). */
  output(): string;
  /** QEMU ended (by itself or killed). */
  exited(): boolean;
  /** Kills QEMU unless it already ended, and waits for it to close. */
  stop(): Promise<void>;
}

/**
 * Starts `qemu-system-<arch>` with `args` plus its serial console: `-serial file:<serialFile>` by
 * default, or `-serial stdio` when `serialFile` is undefined (then serial() is QEMU's stdout).
 */
export function startQemu(arch: string, args: string[], serialFile: string | undefined): Qemu {
  const full = [...args, "-serial", serialFile ? `file:${serialFile}` : "stdio"];
  const proc = spawnKillable(`qemu-system-${arch}`, full);
  let out = "";
  let err = "";
  let ended = false;
  proc.stdout!.on("data", (d: Buffer) => (out += d.toString("latin1")));
  proc.stderr!.on("data", (d: Buffer) => (err += d.toString("latin1")));
  const closed = new Promise<void>((r) => proc.once("close", () => ((ended = true), r())));
  return {
    command: `qemu-system-${arch} ${full.join(" ")}`,
    serial: () => (serialFile === undefined ? out : existsSync(serialFile) ? readFileSync(serialFile, "latin1") : ""),
    output: () => (serialFile === undefined ? err : out + err),
    exited: () => ended,
    stop: async () => {
      if (!ended) proc.kill("SIGKILL");
      await closed;
    },
  };
}

/**
 * Waits until the marker line is on `q`'s serial console, QEMU ends, `stopOn` matches, or
 * performance.now() reaches `deadline`. Returns the serial console and whether the marker came.
 */
export async function waitForMarker(q: Qemu, marker: string, deadline: number, stopOn?: RegExp): Promise<{ serial: string; found: boolean }> {
  let serial = q.serial();
  while (!hasMarker(serial, marker) && !q.exited() && performance.now() < deadline && !stopOn?.test(serial)) {
    await new Promise((r) => setTimeout(r, 50));
    serial = q.serial();
  }
  serial = q.serial(); // the last bytes, also those written as QEMU ended
  return { serial, found: hasMarker(serial, marker) };
}
