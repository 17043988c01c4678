/**
 * Test oracle: QEMU (Debian 12's 7.2) as the reference loader.
 *
 * `runQemu()` starts `qemu-system-<arch>` paused (`-S -nodefaults -display none`) with a QMP
 * socket, so machine init and reset have run and every ROM blob is already in guest RAM. Through
 * QMP's `human-monitor-command` it reads `info roms` (where QEMU put each blob) and saves guest
 * physical memory with `pmemsave`. Optionally a gdbstub socket lets a test run the guest to a
 * breakpoint first (x86: the real-mode setup entry, after the option ROM has copied the kernel).
 *
 * Only local unix sockets in a private temp directory. QEMU is always killed: on `close()`, on
 * any error, after a per-run timeout, and (through `setpriv --pdeathsig`) when this process dies.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface RomBlob {
  /** The `name="…"` field: a file path, "bootloader", "dtb", "<path> ELF program header segment 1"… */
  name: string;
  /** Guest physical address; undefined for fw_cfg-only blobs (`fw=…` lines). */
  addr?: bigint;
  size: number;
  /** "ram" / "rom" for addressed blobs; the fw_cfg file name for `fw=` blobs. */
  mem?: string;
  fw?: string;
}

export interface QemuOptions {
  /** "aarch64", "arm", "riscv64", "x86_64", "m68k", … → qemu-system-<arch>. */
  arch: string;
  /** e.g. ["-M", "virt", "-cpu", "cortex-a57", "-m", "256M", "-kernel", path]. */
  args: string[];
  /** Open a gdbstub socket too (x86 capture). */
  gdb?: boolean;
  /** Kill QEMU after this long (default 20 s). */
  timeoutMs?: number;
}

export interface Qemu {
  /** The `info roms` listing, parsed. */
  roms(): Promise<RomBlob[]>;
  /** Guest physical memory [addr, addr+size) as QEMU has it. */
  read(addr: bigint | number, size: number): Promise<Uint8Array>;
  /** Any monitor command; returns its text. */
  hmp(command: string): Promise<string>;
  /** Continue to a hardware breakpoint at `addr` (needs `gdb: true`); resolves when stopped there. */
  runTo(addr: number): Promise<void>;
  /**
   * One raw gdb remote packet (needs `gdb: true`), e.g. "P1b=1100000000000000" (write a register);
   * resolves with the reply, or at once with "" when `noReply` (e.g. "c": the guest runs until
   * QEMU is killed).
   */
  gdbPacket(body: string, opts?: { noReply?: boolean }): Promise<string>;
  /** QEMU's stderr so far. */
  stderr(): string;
  /** QEMU's process id (for tests of the harness). */
  pid: number;
}

export const qemuBinary = (arch: string) => `qemu-system-${arch}`;

/** True when qemu-system-<arch> is installed. */
export function haveQemu(arch: string): boolean {
  const r = spawnSync(qemuBinary(arch), ["--version"], { encoding: "utf8" });
  return r.status === 0;
}

/** `info roms` text → blobs. Lines look like (QEMU 7.2, hw/core/loader.c hmp_info_roms):
 *   addr=0000000040200000 size=0x1f6dfc0 mem=ram name="/path/Image"
 *   fw=genroms/linuxboot_dma.bin size=0x00c000 name="linuxboot_dma.bin"
 *   /rom@etc/acpi/tables size=0x200000 name="etc/acpi/tables"
 */
export function parseInfoRoms(text: string): RomBlob[] {
  const out: RomBlob[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === "") continue;
    let m = /^addr=([0-9a-f]+) size=0x([0-9a-f]+) mem=(\w+) name="(.*)"$/i.exec(line);
    if (m) {
      out.push({ addr: BigInt(`0x${m[1]}`), size: parseInt(m[2], 16), mem: m[3], name: m[4] });
      continue;
    }
    m = /^(?:fw=(\S+)|(\/rom@\S+)) size=0x([0-9a-f]+) name="(.*)"$/i.exec(line);
    if (m) {
      out.push({ fw: m[1] ?? m[2], size: parseInt(m[3], 16), name: m[4] });
      continue;
    }
    throw new Error(`qemu: unexpected 'info roms' line: ${JSON.stringify(line)}`);
  }
  return out;
}

/** JSON-lines QMP client over a unix socket. */
class Qmp {
  private buf = "";
  private waiters: Array<(msg: Record<string, unknown>) => void> = [];
  private queue: Record<string, unknown>[] = [];
  private closedErr: Error | undefined;

  constructor(private readonly sock: Socket) {
    sock.setEncoding("utf8");
    sock.on("data", (d: string) => {
      this.buf += d;
      let nl: number;
      while ((nl = this.buf.indexOf("\n")) >= 0) {
        const line = this.buf.slice(0, nl).trim();
        this.buf = this.buf.slice(nl + 1);
        if (!line) continue;
        const msg = JSON.parse(line) as Record<string, unknown>;
        if ("event" in msg) continue; // asynchronous events (STOP, RESUME, …) are not replies
        const w = this.waiters.shift();
        if (w) w(msg);
        else this.queue.push(msg);
      }
    });
    const fail = (e?: Error) => {
      this.closedErr = e ?? new Error("qemu: QMP connection closed");
      for (const w of this.waiters.splice(0)) w({ error: { desc: this.closedErr.message } });
    };
    sock.on("error", fail);
    sock.on("close", () => fail());
  }

  next(): Promise<Record<string, unknown>> {
    const q = this.queue.shift();
    if (q) return Promise.resolve(q);
    if (this.closedErr) return Promise.reject(this.closedErr);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  async execute(cmd: string, args?: Record<string, unknown>): Promise<unknown> {
    this.sock.write(JSON.stringify(args ? { execute: cmd, arguments: args } : { execute: cmd }) + "\n");
    const r = await this.next();
    if ("error" in r) throw new Error(`qemu: QMP ${cmd} failed: ${JSON.stringify(r["error"])}`);
    return r["return"];
  }
}

/** Minimal GDB remote serial protocol client: enough to set a breakpoint and continue. */
class Gdb {
  private buf = "";
  private waiter: ((pkt: string) => void) | undefined;
  private packets: string[] = [];

  constructor(private readonly sock: Socket) {
    sock.setEncoding("latin1");
    sock.on("data", (d: string) => {
      this.buf += d;
      for (;;) {
        this.buf = this.buf.replace(/^[+-]+/, "");
        const m = /^\$([^#]*)#[0-9a-fA-F]{2}/.exec(this.buf);
        if (!m) {
          const start = this.buf.indexOf("$");
          if (start > 0) this.buf = this.buf.slice(start);
          break;
        }
        this.buf = this.buf.slice(m[0].length);
        sock.write("+");
        const w = this.waiter;
        this.waiter = undefined;
        if (w) w(m[1]);
        else this.packets.push(m[1]);
      }
    });
  }

  command(body: string): Promise<string> {
    let sum = 0;
    for (const c of body) sum = (sum + c.charCodeAt(0)) & 0xff;
    const reply = this.packets.length
      ? Promise.resolve(this.packets.shift()!)
      : new Promise<string>((resolve) => (this.waiter = resolve));
    this.sock.write(`$${body}#${sum.toString(16).padStart(2, "0")}`);
    return reply;
  }
}

function connectUnix(path: string, deadline: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const s = connect(path);
      s.once("connect", () => resolve(s));
      s.once("error", (e) => {
        s.destroy();
        if (Date.now() > deadline) reject(new Error(`qemu: cannot connect to ${path}: ${e.message}`));
        else setTimeout(attempt, 10);
      });
    };
    attempt();
  });
}

const HAVE_SETPRIV = existsSync("/usr/bin/setpriv");

/**
 * Runs QEMU paused with `opts`, hands `body` a client, and kills QEMU afterwards whatever happens.
 */
export async function runQemu<T>(opts: QemuOptions, body: (q: Qemu) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), "guest-image-qemu-"));
  const qmpPath = join(dir, "qmp.sock");
  const gdbPath = join(dir, "gdb.sock");
  const args = [
    "-S", "-nodefaults", "-display", "none", "-no-user-config",
    "-qmp", `unix:${qmpPath},server=on,wait=off`,
    ...(opts.gdb ? ["-gdb", `unix:${gdbPath},server=on,wait=off`] : []),
    ...opts.args,
  ];
  const exe = qemuBinary(opts.arch);
  // --pdeathsig: if the test process dies, the kernel kills QEMU (no orphans left paused forever).
  const child: ChildProcess = HAVE_SETPRIV
    ? spawn("/usr/bin/setpriv", ["--pdeathsig", "KILL", "--", exe, ...args], { stdio: ["ignore", "pipe", "pipe"] })
    : spawn(exe, args, { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  child.stdout!.resume();
  let exited: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const exitP = new Promise<void>((resolve) => {
    child.once("exit", (code, signal) => {
      exited = { code, signal };
      resolve();
    });
    child.once("error", (e) => {
      stderr += `\nspawn error: ${e.message}`;
      exited = { code: -1, signal: null };
      resolve();
    });
  });
  const timeoutMs = opts.timeoutMs ?? 20_000;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill("SIGKILL");
  }, timeoutMs);
  const sockets: Socket[] = [];
  const describe = () => `${exe} ${args.join(" ")}\n${stderr.trim()}`;
  const early = exitP.then(() => {
    throw new Error(`qemu exited (${exited?.code ?? exited?.signal})${timedOut ? ` after the ${timeoutMs} ms timeout` : ""} before the test finished: ${describe()}`);
  });
  early.catch(() => undefined);
  const race = <R>(p: Promise<R>) => Promise.race([p, early]);
  try {
    const deadline = Date.now() + timeoutMs;
    const qsock = await race(connectUnix(qmpPath, deadline));
    sockets.push(qsock);
    const qmp = new Qmp(qsock);
    const greeting = await race(qmp.next());
    if (!("QMP" in greeting)) throw new Error(`qemu: unexpected QMP greeting ${JSON.stringify(greeting)}`);
    await race(qmp.execute("qmp_capabilities"));
    const hmp = async (command: string) => (await race(qmp.execute("human-monitor-command", { "command-line": command }))) as string;
    let gdb: Gdb | undefined;
    if (opts.gdb) {
      const gsock = await race(connectUnix(gdbPath, deadline));
      sockets.push(gsock);
      gdb = new Gdb(gsock);
    }
    let dumps = 0;
    const q: Qemu = {
      roms: async () => parseInfoRoms(await hmp("info roms")),
      hmp,
      stderr: () => stderr,
      pid: child.pid ?? -1,
      async read(addr, size) {
        if (size === 0) return new Uint8Array(0);
        const file = join(dir, `dump${dumps++}.bin`);
        const out = await hmp(`pmemsave 0x${BigInt(addr).toString(16)} 0x${size.toString(16)} "${file}"`);
        if (out.trim() !== "") throw new Error(`qemu: pmemsave 0x${BigInt(addr).toString(16)} 0x${size.toString(16)}: ${out.trim()}`);
        const bytes = new Uint8Array(readFileSync(file));
        rmSync(file);
        if (bytes.length !== size) throw new Error(`qemu: pmemsave gave ${bytes.length} bytes, asked for ${size}`);
        return bytes;
      },
      async runTo(addr) {
        if (!gdb) throw new Error("qemu: runTo needs { gdb: true }");
        const ok = await race(gdb.command(`Z1,${addr.toString(16)},1`));
        if (ok !== "OK") throw new Error(`qemu: gdbstub refused a hardware breakpoint at 0x${addr.toString(16)}: ${JSON.stringify(ok)}`);
        const stop = await race(gdb.command("c"));
        if (!/^T05/.test(stop)) throw new Error(`qemu: expected a breakpoint stop (T05…), got ${JSON.stringify(stop)}`);
        // Remove it so the state QEMU keeps is the guest's alone.
        await race(gdb.command(`z1,${addr.toString(16)},1`));
      },
      async gdbPacket(body, opts = {}) {
        if (!gdb) throw new Error("qemu: gdbPacket needs { gdb: true }");
        const reply = gdb.command(body);
        if (opts.noReply) {
          reply.catch(() => undefined);
          return "";
        }
        return race(reply);
      },
    };
    return await body(q);
  } catch (e) {
    if (e instanceof Error && !e.message.includes(stderr.trim())) e.message += `\n[${describe()}]`;
    throw e;
  } finally {
    clearTimeout(timer);
    for (const s of sockets) s.destroy();
    if (!exited) {
      child.kill("SIGKILL");
      await exitP;
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The blob whose name is `name` or ends with `/name`; throws with the listing when absent. */
export function romNamed(roms: RomBlob[], name: string): RomBlob & { addr: bigint } {
  const hits = roms.filter((r) => r.addr !== undefined && (r.name === name || r.name.endsWith(`/${name}`)));
  if (hits.length !== 1) {
    throw new Error(`qemu: expected one 'info roms' blob named ${JSON.stringify(name)}, found ${hits.length}:\n${roms.map((r) => `  ${r.addr?.toString(16) ?? r.fw} ${r.size.toString(16)} ${r.name}`).join("\n")}`);
  }
  return hits[0] as RomBlob & { addr: bigint };
}
